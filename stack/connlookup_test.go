package stack

import (
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// connSeen records, for every TCP segment routed, the sending and the
// receiving socket the network found for it.
type connSeen struct {
	from, to []*Conn
	src, dst []netip.AddrPort
	flags    []string
}

func (s *connSeen) Segment(seg *Segment) {
	if seg.TCP == nil {
		return
	}
	s.from = append(s.from, seg.FromConn)
	s.to = append(s.to, seg.ToConn)
	s.src, s.dst = append(s.src, seg.Src), append(s.dst, seg.Dst)
	s.flags = append(s.flags, seg.TCP.Flags().String())
}
func (s *connSeen) Deliver(*Segment)  {}
func (s *connSeen) State(StateChange) {}
func (s *connSeen) Link(LinkChange)   {}

// Two connections between the same hosts, one over IPv4 and one over
// IPv6, from the same local port to the same remote port: every segment
// of each is found on both ends as its own connection's.
func TestSegmentsFindTheirConnsByFamily(t *testing.T) {
	var accepted []*Conn
	n, client, server, _ := pair(t, Config{Seed: 5, Latency: time.Millisecond}, &accepted)
	seen := &connSeen{}
	n.Observe(seen)
	c4, err := client.Socket("tcp4")
	if err != nil {
		t.Fatal(err)
	}
	c6, err := client.Socket("tcp6")
	if err != nil {
		t.Fatal(err)
	}
	c6.ep.SocketOptions().SetV6Only(true) // so that both can have port 40000
	for _, c := range []struct {
		conn *Conn
		to   netip.Addr
	}{{c4, server.Addr()}, {c6, server.Addr6()}} {
		if err := c.conn.ep.Bind(tcpip.FullAddress{Port: 40000}); err != nil {
			t.Fatal(err)
		}
		if err := c.conn.Connect(netip.AddrPortFrom(c.to, 80)); err != nil && err != ErrWouldBlock {
			t.Fatal(err)
		}
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(accepted) != 2 || c4.State() != Established || c6.State() != Established {
		t.Fatalf("accepted %d, client states %s and %s", len(accepted), c4.State(), c6.State())
	}
	peer := map[*Conn]*Conn{}
	for _, a := range accepted {
		switch a.RemoteAddr() {
		case c4.LocalAddr():
			peer[c4], peer[a] = a, c4
		case c6.LocalAddr():
			peer[c6], peer[a] = a, c6
		}
	}
	if len(peer) != 4 {
		t.Fatalf("accepted %v and %v, clients at %s and %s", accepted[0].RemoteAddr(), accepted[1].RemoteAddr(), c4.LocalAddr(), c6.LocalAddr())
	}
	// Data each way on both: every segment from here on has both ends.
	*seen = connSeen{}
	for _, c := range []*Conn{c4, c6, accepted[0], accepted[1]} {
		if _, err := c.Send([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(seen.from) < 4 {
		t.Fatalf("%d segments after the sends, want at least 4", len(seen.from))
	}
	for i := range seen.from {
		from, to := seen.from[i], seen.to[i]
		if from == nil || to == nil || peer[from] != to || from.LocalAddr() != seen.src[i] || to.LocalAddr() != seen.dst[i] {
			t.Errorf("segment %d (%s) %s > %s: from %v to %v, want the sockets at those ends", i, seen.flags[i], seen.src[i], seen.dst[i], from, to)
		}
	}
}

// A connection dialled to an address no host has is still found as the
// sender of its SYNs.
func TestSegmentsFindAConnDialledIntoTheVoid(t *testing.T) {
	n := NewNetwork(Config{Seed: 1})
	t.Cleanup(n.Close)
	seen := &connSeen{}
	n.Observe(seen)
	h, err := n.AddHost("client")
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Dial(netip.MustParseAddrPort("192.0.2.200:80"), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(seen.from) < 2 {
		t.Fatalf("%d segments, want the SYN and a retransmission", len(seen.from))
	}
	for i, from := range seen.from {
		if from != c || seen.to[i] != nil {
			t.Errorf("segment %d (%s): from %v to %v, want from the dialled socket to nobody", i, seen.flags[i], from, seen.to[i])
		}
	}
}
