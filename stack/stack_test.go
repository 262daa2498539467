package stack

import (
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"kasim/internal/gctest"
)

// The runtime runs AddCleanup callbacks (timers.Clock recycling timer IDs)
// on a goroutine of its own; that one is not a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("runtime.runCleanups"))
}

// tape records what observers see, compactly.
type tape struct {
	segs    []string
	arrived []string
	states  []string
	links   []string
}

func (t *tape) Segment(s *Segment) {
	if s.TCP == nil {
		t.segs = append(t.segs, "non-tcp")
		return
	}
	line := s.At.String() + " " + s.From.Name() + " " + s.TCP.Flags().String()
	if s.Dropped {
		line += " dropped: " + s.DropReason
	}
	t.segs = append(t.segs, line)
}
func (t *tape) Deliver(s *Segment) {
	t.arrived = append(t.arrived, s.At.String()+" "+s.To.Name())
}
func (t *tape) State(c StateChange) {
	t.states = append(t.states, c.At.String()+" "+c.Conn.String()+" "+c.From.String()+">"+c.To.String())
}
func (t *tape) Link(c LinkChange) { t.links = append(t.links, c.At.String()+" "+c.Action) }

// pair builds a client and a server with a listener on port 80 that
// accepts into *accepted.
func pair(t *testing.T, cfg Config, accepted *[]*Conn) (*Network, *Host, *Host, *tape) {
	t.Helper()
	// Keep-alive armed at establishment: these tests are about what
	// follows once it is; TestKeepAliveBeforeConnect is about the arming.
	return pairWith(t, cfg, Behaviour{ArmAtEstablishment: true}, accepted)
}

// pairWith is pair with a client of behaviour b.
func pairWith(t *testing.T, cfg Config, b Behaviour, accepted *[]*Conn) (*Network, *Host, *Host, *tape) {
	t.Helper()
	n := NewNetwork(cfg)
	t.Cleanup(n.Close)
	tp := &tape{}
	n.Observe(tp)
	c, err := n.AddHostWith("client", HostOptions{Behaviour: b})
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.AddHost("server")
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		if _, err := s.Listen(network, 80, KeepAlive{}, func(c *Conn) {
			if accepted != nil {
				*accepted = append(*accepted, c)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	return n, c, s, tp
}

// TestKeepAliveBeforeConnect: gVisor alone never arms keep-alive switched
// on before connect when nothing follows the handshake (measured against
// gVisor in real time: kasim conform --dut gvisor); with
// ArmAtEstablishment, as Linux and Windows, the idle time starts at the
// handshake.
func TestKeepAliveBeforeConnect(t *testing.T) {
	for _, c := range []struct {
		arm  bool
		want []time.Duration
	}{
		{true, []time.Duration{time.Hour, time.Hour + 10*time.Second, time.Hour + 20*time.Second}},
		{false, nil},
	} {
		n, client, server, _ := pairWith(t, Config{Seed: 1}, Behaviour{ArmAtEstablishment: c.arm}, nil)
		var probes []time.Duration
		n.Observe(&probeClock{host: client, at: &probes})
		conn, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: time.Hour, Interval: 10 * time.Second, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		if conn.State() != Established {
			t.Fatalf("state %s after 1s, want ESTABLISHED", conn.State())
		}
		n.Silence(server, Both)
		if err := n.RunFor(3 * time.Hour); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(probes, c.want) {
			t.Errorf("ArmAtEstablishment %v: probes at %v, want %v", c.arm, probes, c.want)
		}
		wantState := Closed
		if !c.arm {
			wantState = Established
		}
		if conn.State() != wantState {
			t.Errorf("ArmAtEstablishment %v: state %s after 3h, want %s", c.arm, conn.State(), wantState)
		}
	}
}

// probeClock notes when host sends keep-alive probes: pure ACKs with no
// payload whose sequence number is one below what the host sent before.
type probeClock struct {
	host *Host
	at   *[]time.Duration
	next map[uint16]uint32
}

func (p *probeClock) Segment(s *Segment) {
	if s.TCP == nil || s.From != p.host {
		return
	}
	if p.next == nil {
		p.next = map[uint16]uint32{}
	}
	port, seq := s.TCP.SourcePort(), s.TCP.SequenceNumber()
	end := seq + uint32(s.Payload)
	if s.TCP.Flags()&(header.TCPFlagSyn|header.TCPFlagFin) != 0 {
		end++
	}
	next, seen := p.next[port]
	if seen && s.TCP.Flags() == header.TCPFlagAck && s.Payload == 0 && seq+1 == next {
		*p.at = append(*p.at, s.At)
		return
	}
	if !seen || end-next < 1<<31 { // end is at or after next, modulo 2^32
		p.next[port] = end
	}
}
func (p *probeClock) Deliver(*Segment)  {}
func (p *probeClock) State(StateChange) {}
func (p *probeClock) Link(LinkChange)   {}

func TestIPv6Connection(t *testing.T) {
	var accepted []*Conn
	n, client, server, tp := pair(t, Config{Seed: 3, Latency: time.Millisecond}, &accepted)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr6(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if c.State() != Established || len(accepted) != 1 || accepted[0].State() != Established {
		t.Fatalf("client %s, accepted %d; states %v", c.State(), len(accepted), tp.states)
	}
	if !c.RemoteAddr().Addr().Is6() || c.LocalAddr().Addr() != client.Addr6() {
		t.Errorf("addresses %s -> %s, want IPv6", c.LocalAddr(), c.RemoteAddr())
	}
	if accepted[0].RemoteAddr() != c.LocalAddr() {
		t.Errorf("server sees peer %s, client is %s", accepted[0].RemoteAddr(), c.LocalAddr())
	}
}

func TestDataAndOrderlyClose(t *testing.T) {
	var accepted []*Conn
	n, client, server, tp := pair(t, Config{Seed: 4, Latency: 2 * time.Millisecond}, &accepted)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(make([]byte, 8)); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("Recv on an empty connection = %v, want ErrWouldBlock", err)
	}
	if k, err := c.Send([]byte("ping")); err != nil || k != 4 {
		t.Fatalf("Send = %d, %v", k, err)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	k, err := accepted[0].Recv(buf)
	if err != nil || string(buf[:k]) != "ping" {
		t.Fatalf("server Recv = %q, %v", buf[:k], err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := accepted[0].Recv(buf); err != io.EOF {
		t.Fatalf("server Recv after the client's FIN = %v, want io.EOF", err)
	}
	accepted[0].Close()
	if err := n.RunFor(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tp.states, "\n")
	for _, want := range []string{"client/sock3 ESTABLISHED>FIN-WAIT-1", "FIN-WAIT-1>FIN-WAIT-2", "FIN-WAIT-2>TIME-WAIT", "TIME-WAIT>CLOSED",
		"server/sock4 ESTABLISHED>CLOSE-WAIT", "CLOSE-WAIT>LAST-ACK", "LAST-ACK>CLOSED"} {
		if !strings.Contains(got, want) {
			t.Errorf("state changes lack %q:\n%s", want, got)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	n, client, server, _ := pair(t, Config{Seed: 5}, nil)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 81), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	var got error
	c.OnEvent(func(c *Conn) {
		if _, err := c.Recv(make([]byte, 1)); err != nil && !errors.Is(err, ErrWouldBlock) && got == nil {
			got = err
		}
	})
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	var op *OpError
	if !errors.As(got, &op) {
		t.Fatalf("Recv error %v, want *OpError", got)
	}
	if _, ok := op.Err.(*tcpip.ErrConnectionRefused); !ok {
		t.Errorf("error %v, want connection refused", op.Err)
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(n *Network, client, server *Host)
		heal  func(n *Network, client, server *Host)
		why   string
	}{
		{"silence server both", func(n *Network, c, s *Host) { n.Silence(s, Both) }, func(n *Network, c, s *Host) { n.Heal(s) }, "silenced: server receives nothing"},
		{"silence server in", func(n *Network, c, s *Host) { n.Silence(s, Inbound) }, func(n *Network, c, s *Host) { n.Heal(s) }, "silenced: server receives nothing"},
		{"silence client out", func(n *Network, c, s *Host) { n.Silence(c, Outbound) }, func(n *Network, c, s *Host) { n.Heal(c) }, "silenced: client sends nothing"},
		{"partition", func(n *Network, c, s *Host) { n.Partition(c, s) }, func(n *Network, c, s *Host) { n.HealPartition(c, s) }, "partitioned: client cannot reach server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, client, server, tp := pair(t, Config{Seed: 6}, nil)
			c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: time.Minute, Interval: time.Second, Count: 5})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.RunFor(time.Second); err != nil {
				t.Fatal(err)
			}
			tc.fault(n, client, server)
			// Idle counts from establishment at 0s: probes at 60, 61
			// and 62s go unanswered; the network heals at 62.5s and
			// the fourth probe, at 63s, is answered.
			if err := n.RunUntil(time.Minute + 2*time.Second + 500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			tc.heal(n, client, server)
			if err := n.RunFor(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			if c.State() != Established {
				t.Fatalf("state %s, want ESTABLISHED after healing", c.State())
			}
			dropped := 0
			for _, s := range tp.segs {
				if strings.Contains(s, "dropped: "+tc.why) {
					dropped++
				}
			}
			if dropped != 3 {
				t.Errorf("%d segments dropped with %q, want 3:\n%s", dropped, tc.why, strings.Join(tp.segs, "\n"))
			}
			if len(tp.links) != 2 {
				t.Errorf("link changes %v, want fault and heal", tp.links)
			}
		})
	}
}

func TestLatencyDelaysArrival(t *testing.T) {
	n, client, server, tp := pair(t, Config{Seed: 7, Latency: 25 * time.Millisecond}, nil)
	if _, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{}); err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{"25ms server", "50ms client", "75ms server"}
	if strings.Join(tp.arrived, ",") != strings.Join(want, ",") {
		t.Errorf("arrivals %v, want %v", tp.arrived, want)
	}
	if err := n.SetLatency(client, server, -time.Second); err == nil {
		t.Error("negative latency accepted")
	}
}

func TestLossIsSeeded(t *testing.T) {
	run := func(seed uint64) string {
		n, client, server, tp := pair(t, Config{Seed: seed, Latency: time.Millisecond}, nil)
		if err := n.SetLoss(client, server, 0.5); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if _, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.RunFor(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		return strings.Join(tp.segs, "\n")
	}
	a, b := run(8), run(8)
	if a != b {
		t.Error("same seed, different losses")
	}
	if !strings.Contains(a, "lost: random loss") {
		t.Error("50% loss lost nothing")
	}
	if a == run(9) {
		t.Error("different seeds, same losses")
	}
	n := NewNetwork(Config{})
	defer n.Close()
	h, _ := n.AddHost("a")
	for _, p := range []float64{-0.1, 1.5} {
		if err := n.SetLoss(h, h, p); err == nil {
			t.Errorf("loss %v accepted", p)
		}
	}
}

func TestRunSemantics(t *testing.T) {
	n := NewNetwork(Config{Horizon: time.Hour})
	defer n.Close()
	var fired []time.Duration
	n.At(10*time.Second, func() { fired = append(fired, n.Now()) })
	n.At(20*time.Second, func() { fired = append(fired, n.Now()); n.Stop() })
	n.At(30*time.Second, func() { fired = append(fired, n.Now()) })
	if err := n.RunUntil(15 * time.Second); err != nil || n.Now() != 15*time.Second {
		t.Fatalf("RunUntil(15s): %v, now %v", err, n.Now())
	}
	if err := n.Run(); err != nil || n.Now() != 20*time.Second {
		t.Fatalf("Run with Stop at 20s: %v, now %v", err, n.Now())
	}
	if err := n.Run(); err != nil || n.Now() != 30*time.Second {
		t.Fatalf("Run to quiescence: %v, now %v", err, n.Now())
	}
	if len(fired) != 3 {
		t.Fatalf("fired at %v", fired)
	}
	n.At(2*time.Hour, func() {})
	if err := n.Run(); !errors.Is(err, ErrHorizon) {
		t.Fatalf("Run past the horizon = %v, want ErrHorizon", err)
	}
}

func TestLivelockIsAnError(t *testing.T) {
	n := NewNetwork(Config{})
	defer n.Close()
	n.workLimit = 10000
	var again func()
	again = func() { n.After(0, again) }
	n.After(time.Second, again)
	err := n.RunFor(time.Minute)
	if err == nil || !strings.Contains(err.Error(), "still busy") {
		t.Fatalf("RunFor = %v, want a livelock error", err)
	}
}

func TestBadInput(t *testing.T) {
	n := NewNetwork(Config{})
	defer n.Close()
	for _, name := range []string{"", "1host", "has space", strings.Repeat("x", 64)} {
		if _, err := n.AddHost(name); err == nil {
			t.Errorf("host name %q accepted", name)
		}
	}
	h, err := n.AddHost("h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddHost("h"); err == nil {
		t.Error("duplicate host name accepted")
	}
	if _, err := h.Socket("udp"); err == nil {
		t.Error("socket network udp accepted")
	}
	c, err := h.Socket("tcp4")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(netip.MustParseAddrPort("[2001:db8::9]:80")); err == nil {
		t.Error("IPv4 socket connected to an IPv6 address")
	}
	if err := c.SetKeepAlive(KeepAlive{Idle: -time.Second}); err == nil {
		t.Error("negative idle accepted")
	}
	if _, err := h.Listen("tcp4", 80, KeepAlive{Count: -1}, nil); err == nil {
		t.Error("negative count accepted by Listen")
	}
	for i := 0; i < MaxHosts-1; i++ {
		if _, err := n.AddHost("x" + string(rune('a'+i%26)) + strings.Repeat("y", i/26)); err != nil {
			t.Fatalf("host %d: %v", i+2, err)
		}
	}
	if _, err := n.AddHost("onetoomany"); err == nil {
		t.Errorf("host %d accepted", MaxHosts+1)
	}
}

func TestKeepAliveReadBack(t *testing.T) {
	n := NewNetwork(Config{})
	defer n.Close()
	h, _ := n.AddHost("h")
	c, _ := h.Socket("tcp4")
	if got := c.KeepAlive(); got.Enabled || got.Idle != 2*time.Hour || got.Interval != 75*time.Second || got.Count != 9 {
		t.Errorf("defaults %+v, want off, 2h, 75s, 9 (gVisor's)", got)
	}
	want := KeepAlive{Enabled: true, Idle: 90 * time.Second, Interval: 3 * time.Second, Count: 4}
	if err := c.SetKeepAlive(want); err != nil {
		t.Fatal(err)
	}
	if got := c.KeepAlive(); got != want {
		t.Errorf("read back %+v, want %+v", got, want)
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	n := NewNetwork(Config{})
	if _, err := n.AddHost("h"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	n.Close()
	if _, err := n.AddHost("g"); err == nil {
		t.Error("AddHost after Close succeeded")
	}
	if err := n.RunFor(time.Second); err == nil {
		t.Error("RunFor after Close succeeded")
	}
}

// A closed Network must be garbage: nothing (timer cleanups, gVisor
// globals) may keep its stacks alive. Each 10,000-connection run once
// leaked 400 MB this way.
func TestClosedNetworkIsCollected(t *testing.T) {
	var wait func()
	func() {
		n := NewNetwork(Config{Seed: 1}) // not pair: its t.Cleanup would hold n
		client, _ := n.AddHostWith("client", HostOptions{Behaviour: Behaviour{ArmAtEstablishment: true}})
		server, _ := n.AddHost("server")
		if _, err := server.Listen("tcp4", 80, KeepAlive{}, nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if _, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: time.Hour}); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		if n.Clock().Pending() == 0 {
			t.Fatal("no pending timers: the test would prove nothing")
		}
		n.Close()
		wait = gctest.Collectable(t, n, 10*time.Second)
	}()
	wait()
}

// segLog keeps what tests of the wire need from each TCP segment.
type segLog struct{ segs []loggedSeg }

type loggedSeg struct {
	at                time.Duration
	from              string
	flags             header.TCPFlags
	seq, ack          uint32
	payload           []byte
	probe, dropped    bool
	probeNo, answered int
	delivered         bool
	checksumOK        bool
}

func (l *segLog) Segment(s *Segment) {
	if s.TCP == nil {
		return
	}
	t := s.TCP
	payload := append([]byte(nil), t[t.DataOffset():]...)
	src := tcpip.AddrFromSlice(s.Src.Addr().AsSlice())
	dst := tcpip.AddrFromSlice(s.Dst.Addr().AsSlice())
	ok := t.IsChecksumValid(src, dst, checksum.Checksum(payload, 0), uint16(len(payload)))
	l.segs = append(l.segs, loggedSeg{at: s.At, from: s.From.Name(), flags: t.Flags(), seq: t.SequenceNumber(), ack: t.AckNumber(),
		payload: payload, probe: s.Probe, probeNo: s.ProbeNumber, dropped: s.Dropped, checksumOK: ok})
}
func (l *segLog) Deliver(s *Segment) {
	if s.Answered > 0 {
		l.segs = append(l.segs, loggedSeg{at: s.At, delivered: true, answered: s.Answered, from: s.From.Name()})
	}
}
func (l *segLog) State(StateChange) {}
func (l *segLog) Link(LinkChange)   {}

func TestOneOctetProbesAreAnswered(t *testing.T) {
	n, client, server, _ := pairWith(t, Config{Seed: 9, Latency: 5 * time.Millisecond}, Behaviour{ProbePayload: 1, ArmAtEstablishment: true}, nil)
	log := &segLog{}
	n.Observe(log)
	if _, err := n.AddHostWith("other", HostOptions{Behaviour: Behaviour{ProbePayload: 2}}); err == nil {
		t.Error("a two-octet probe payload was accepted")
	}
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: time.Minute, Interval: time.Second, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(3*time.Minute + 30*time.Second); err != nil {
		t.Fatal(err)
	}
	probes, answers := 0, 0
	for _, s := range log.segs {
		switch {
		case s.probe:
			probes++
			if s.from != "client" || len(s.payload) != 1 || s.payload[0] != 0 || s.flags != header.TCPFlagAck || !s.checksumOK {
				t.Errorf("probe %+v: want a bare ACK from the client with one 0x00 octet and valid checksums", s)
			}
		case s.delivered:
			answers += s.answered
		case !s.checksumOK:
			t.Errorf("segment with a bad checksum: %+v", s)
		}
	}
	if probes != 3 || answers != 3 || c.State() != Established {
		t.Errorf("%d probes, %d answered, state %s; want 3, 3, ESTABLISHED", probes, answers, c.State())
	}
}

func TestAbortRSTResetsThePeer(t *testing.T) {
	var accepted []*Conn
	n, client, server, _ := pairWith(t, Config{Seed: 10, Latency: 5 * time.Millisecond}, Behaviour{AbortRST: true, ArmAtEstablishment: true}, &accepted)
	log := &segLog{}
	n.Observe(log)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: time.Minute, Interval: time.Second, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	// The client hears nothing more, but the server still hears the client:
	// the probes get through and are answered in vain, then the RST arrives.
	n.Silence(client, Inbound)
	if err := n.RunFor(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if !c.AbortedByKeepAlive() || c.State() != Closed {
		t.Fatalf("client: aborted %v, state %s", c.AbortedByKeepAlive(), c.State())
	}
	last := log.segs[len(log.segs)-1]
	for _, s := range log.segs {
		if s.from == "client" && s.flags == header.TCPFlagRst|header.TCPFlagAck {
			last = s
		}
	}
	if last.flags != header.TCPFlagRst|header.TCPFlagAck || last.from != "client" || !last.checksumOK {
		t.Fatalf("no valid RST+ACK from the client; last segment %+v", last)
	}
	probe := log.segs[0]
	for _, s := range log.segs {
		if s.probe {
			probe = s
		}
	}
	if last.seq != probe.seq+1 || last.ack != probe.ack {
		t.Errorf("RST seq=%d ack=%d, want SND.NXT=%d and RCV.NXT=%d", last.seq, last.ack, probe.seq+1, probe.ack)
	}
	if want := time.Second + time.Minute - 995*time.Millisecond + 3*time.Second; last.at < want-time.Second || last.at > want+time.Second {
		t.Errorf("RST at %v, want about %v", last.at, want)
	}
	var op *OpError
	if _, err := accepted[0].Recv(make([]byte, 1)); !errors.As(err, &op) {
		t.Fatalf("server Recv after the RST = %v, want a reset error", err)
	} else if _, ok := op.Err.(*tcpip.ErrConnectionReset); !ok {
		t.Errorf("server error %v, want connection reset", op.Err)
	}
}

// A middlebox that forgets flows idle for 30 s drops the first keep-alive
// probe, sent a minute into the quiet connection, and every later one: the
// connection dies of keep-alive though both hosts are up. A flow opened
// before the box was put in place is unknown to it.
func TestMiddleboxForgetsIdleFlows(t *testing.T) {
	n, client, server, tp := pair(t, Config{Seed: 6}, nil)
	if err := n.SetMiddlebox(client, server, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: time.Minute, Interval: time.Second, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if !c.AbortedByKeepAlive() {
		t.Fatalf("state %s: keep-alive did not give up behind the middlebox:\n%s", c.State(), strings.Join(tp.segs, "\n"))
	}
	var forgotten, unknown int
	for _, s := range tp.segs {
		switch {
		case strings.Contains(s, "dropped: middlebox: flow idle 1m0s, longer than 30s: forgotten"):
			forgotten++
		case strings.Contains(s, "dropped: middlebox: no such flow"):
			unknown++
		case strings.Contains(s, "dropped"):
			t.Errorf("unexpected drop: %s", s)
		}
	}
	if forgotten != 1 || unknown != 2 {
		t.Errorf("%d probes dropped as idle and %d as unknown, want 1 and 2:\n%s", forgotten, unknown, strings.Join(tp.segs, "\n"))
	}
	if err := n.SetMiddlebox(client, server, -time.Second); err == nil {
		t.Error("a negative middlebox idle time was accepted")
	}
}
