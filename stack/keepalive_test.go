package stack

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// FreeBSD's always_keepalive: a connection whose application never asked
// for keep-alive probes at the host's default idle time, with the host's
// default count (the stack runs keep-alive: KeepAlive reads Enabled).
func TestAlwaysKeepAliveWithHostDefaults(t *testing.T) {
	n, client, server, _ := pairWith(t, Config{Seed: 1}, Behaviour{
		ArmAtEstablishment: true,
		KeepAliveDefaults:  KeepAlive{Idle: time.Minute, Interval: 10 * time.Second, Count: 8},
		AlwaysKeepAlive:    true,
	}, nil)
	var probes []time.Duration
	n.Observe(&probeClock{host: client, at: &probes})
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.KeepAlive(); !got.Enabled || got.Count != 8 || got.Idle != time.Minute {
		t.Errorf("new socket's keep-alive %+v, want on, 1m, count 8", got)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	n.Silence(server, Both)
	if err := n.RunFor(time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(probes) != 8 || probes[0] != time.Minute || probes[7] != time.Minute+70*time.Second {
		t.Errorf("probes at %v, want 8 from 1m, 10s apart", probes)
	}
	if !c.AbortedByKeepAlive() {
		t.Error("the connection was not aborted by keep-alive")
	}
	if _, bad := n.AddHostWith("other", HostOptions{Behaviour: Behaviour{KeepAliveDefaults: KeepAlive{Count: -1}}}); bad == nil {
		t.Error("a negative default count was accepted")
	}
}

// After the client closes and the server acknowledges the FIN without
// closing, the client sits in FIN-WAIT-2 as an orphan. gVisor alone goes on
// probing it; lwIP probes only in ESTABLISHED and CLOSE-WAIT
// (Behaviour.KeepAliveStates), and on Linux close ends keep-alive
// (Behaviour.CloseStopsKeepAlive): neither sends anything.
func TestOrphanInFinWait2(t *testing.T) {
	probesInFinWait2 := func(states bool, closeStops bool) int {
		b := Behaviour{CloseStopsKeepAlive: closeStops, ArmAtEstablishment: true}
		if states {
			b.KeepAliveStates = []State{Established, CloseWait}
		}
		n, client, server, _ := pairWith(t, Config{Seed: 2}, b, nil)
		var probes []time.Duration
		n.Observe(&probeClock{host: client, at: &probes})
		c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: 2 * time.Second, Interval: time.Second, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.RunFor(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if c.State() != FinWait2 {
			t.Fatalf("state %s after close, want FIN-WAIT-2", c.State())
		}
		t.Logf("states %v, close stops %v: probes at %v", states, closeStops, probes)
		return len(probes)
	}
	// The FIN is acknowledged at 1 s; each probe is answered, so the next
	// waits the idle time again: 3, 5, 7, 9 and 11 s.
	if got := probesInFinWait2(false, false); got != 5 {
		t.Errorf("gVisor alone: %d probes in FIN-WAIT-2, want 5", got)
	}
	if got := probesInFinWait2(true, false); got != 0 {
		t.Errorf("%d probes in FIN-WAIT-2 with the states limited, want none", got)
	}
	if got := probesInFinWait2(false, true); got != 0 {
		t.Errorf("%d probes after close where close stops keep-alive, want none", got)
	}
}

// lwIP's sockets report a keep-alive abort as ECONNABORTED (ERR_ABRT).
func TestKeepAliveAbortError(t *testing.T) {
	n, client, server, _ := pairWith(t, Config{Seed: 3}, Behaviour{AbortError: AbortConnAborted, ArmAtEstablishment: true}, nil)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: 2 * time.Second, Interval: time.Second, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	n.Silence(server, Both)
	if err := n.RunFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	var op *OpError
	if _, err := c.Recv(make([]byte, 1)); !errors.As(err, &op) {
		t.Fatalf("Recv = %v, want an *OpError", err)
	} else if _, ok := op.Err.(*tcpip.ErrConnectionAborted); !ok {
		t.Errorf("Recv error %v, want connection aborted", op.Err)
	}
}

// A probe count of 0 (Windows 2000/XP/2003 with both registry counts 0)
// sends no probe and gives up at the idle time: that is keep-alive's
// abort, with the host's RST. Data left unacknowledged instead stops
// keep-alive, and retransmission, not keep-alive, ends the connection,
// after as many retransmissions as the host allows.
func TestGiveUpWithoutProbesAndByRetransmission(t *testing.T) {
	run := func(sendData bool) (*Conn, []time.Duration, int, time.Duration) {
		n, client, server, _ := pairWith(t, Config{Seed: 4}, Behaviour{AbortRST: true, LimitRetransmissions: true, MaxRetransmissions: 3, ArmAtEstablishment: true}, nil)
		var probes []time.Duration
		n.Observe(&probeClock{host: client, at: &probes})
		sent := &sentCounter{host: client}
		n.Observe(sent)
		c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true, Idle: 2 * time.Second, Interval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetKeepAliveCount(0); err != nil {
			t.Fatal(err)
		}
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		n.Silence(server, Inbound)
		if sendData {
			if _, err := c.Send([]byte("data")); err != nil {
				t.Fatal(err)
			}
		}
		var closedAt time.Duration
		c.OnEvent(func(c *Conn) {
			if c.State() == Closed && closedAt == 0 {
				closedAt = n.Now()
			}
		})
		if err := n.RunFor(time.Hour); err != nil {
			t.Fatal(err)
		}
		rsts := sent.rsts
		if sendData {
			// Sent at 1 s, retransmitted 3 times as gVisor's RTO (1 s
			// before any RTT sample) backs off.
			if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second}; !slices.Equal(sent.dataAt, want) {
				t.Errorf("data sent at %v, want %v: the first and 3 retransmissions", sent.dataAt, want)
			}
			rsts = -rsts // no RST is wanted: say how many there were
		}
		return c, probes, rsts, closedAt
	}

	c, probes, rsts, closedAt := run(false)
	if len(probes) != 0 || !c.AbortedByKeepAlive() || rsts != 1 || closedAt != 2*time.Second {
		t.Errorf("count 0: probes %v, aborted by keep-alive %v, %d RSTs, closed at %v; want none, true, 1, 2s",
			probes, c.AbortedByKeepAlive(), rsts, closedAt)
	}
	// Given up at 9 s, 4 s after the last retransmission: past the idle
	// time since the last receive, with nothing keep-alive did.
	c, probes, rsts, closedAt = run(true)
	if closedAt != 9*time.Second {
		t.Errorf("unacknowledged data given up at %v, want 9s", closedAt)
	}
	if len(probes) != 0 || c.AbortedByKeepAlive() || rsts != 0 || closedAt == 0 || !c.WasEstablished() {
		t.Errorf("unacknowledged data: probes %v, aborted by keep-alive %v, %d RSTs, closed at %v; want none, false, no RST, closed",
			probes, c.AbortedByKeepAlive(), -rsts, closedAt)
	}
}

// sentCounter counts the RSTs a host sends and notes when it sends data.
type sentCounter struct {
	host   *Host
	rsts   int
	dataAt []time.Duration
}

func (c *sentCounter) Segment(s *Segment) {
	if s.From != c.host || s.TCP == nil {
		return
	}
	if s.TCP.Flags().Contains(header.TCPFlagRst) {
		c.rsts++
	}
	if s.Payload > 0 {
		c.dataAt = append(c.dataAt, s.At)
	}
}
func (c *sentCounter) State(StateChange) {}
func (c *sentCounter) Deliver(*Segment)  {}
func (c *sentCounter) Link(LinkChange)   {}

// Keep-alive options set on an established connection, with exact timers:
// gVisor restarts the idle time from the call and forgets unanswered
// probes; a host with Linux's rule (Behaviour.KeepAliveTimerKept) counts a
// new idle time from the last segment received, leaves the interval's
// timer and the probes out alone, and probes at once when the idle time is
// already past.
func TestKeepAliveOptionsOnAnEstablishedConnection(t *testing.T) {
	s := time.Second
	run := func(kept bool, calls func(c *Conn, at time.Duration)) (probes []time.Duration, gaveUpAt time.Duration) {
		n, client, server, _ := pairWith(t, Config{Seed: 3}, Behaviour{ArmAtEstablishment: true, KeepAliveTimerKept: kept}, nil)
		n.Observe(&probeClock{host: client, at: &probes})
		c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.RunFor(s); err != nil {
			t.Fatal(err)
		}
		n.Silence(server, Both)
		for at := 2 * s; at <= 4*s; at += s {
			if err := n.RunFor(at - n.Now()); err != nil {
				t.Fatal(err)
			}
			calls(c, at)
		}
		for c.State() != Closed && n.Now() < time.Minute {
			if err := n.RunFor(100 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			gaveUpAt = n.Now()
		}
		if !c.AbortedByKeepAlive() {
			t.Errorf("kept %v: not aborted by keep-alive", kept)
		}
		if got := c.KeepAlive(); got.Idle != 3*s || got.Interval != s || got.Count != 3 {
			t.Errorf("kept %v: KeepAlive() %+v, want the application's 3s, 1s, 3", kept, got)
		}
		return probes, gaveUpAt
	}
	// TCP_KEEPIDLE 3 s at 2 s; TCP_KEEPINTVL 1 s at 3 s; TCP_KEEPCNT 3 at
	// 4 s, one probe out. The handshake's last segment came at about 0.
	set := func(c *Conn, at time.Duration) {
		var err error
		switch at {
		case 2 * s:
			err = c.SetKeepAliveIdle(3 * s)
		case 3 * s:
			err = c.SetKeepAliveInterval(s)
		case 4 * s:
			err = c.SetKeepAliveCount(3)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	round := func(ds []time.Duration) []time.Duration {
		out := make([]time.Duration, len(ds))
		for i, d := range ds {
			out[i] = d.Round(10 * time.Millisecond)
		}
		return out
	}
	probes, end := run(true, set)
	// Linux: the first probe 3 s after the last receive (3 s), the next
	// two 1 s apart, the count reached at 6 s.
	if want := []time.Duration{3 * s, 4 * s, 5 * s}; !slices.Equal(round(probes), want) || end.Round(100*time.Millisecond) != 6*s {
		t.Errorf("Linux's rule: probes at %v, given up at %v; want %v, 6s", probes, end, want)
	}
	probes, _ = run(false, set)
	// gVisor: the idle time from the last call (4 s): probes at 7, 8, 9 s.
	if want := []time.Duration{7 * s, 8 * s, 9 * s}; !slices.Equal(round(probes), want) {
		t.Errorf("gVisor's rule: probes at %v, want %v", probes, want)
	}

	// An idle time already past probes at once; one set again while
	// probes are out keeps them counted.
	past := func(c *Conn, at time.Duration) {
		switch at {
		case 2 * s:
			_ = c.SetKeepAliveInterval(s)
			_ = c.SetKeepAliveCount(3)
		case 3 * s:
			if err := c.SetKeepAliveIdle(2 * s); err != nil {
				t.Fatal(err)
			}
		case 4 * s:
			_ = c.SetKeepAliveIdle(3 * s) // two probes out: at once again, the third
		}
	}
	probes, end = run(true, past)
	if want := []time.Duration{3 * s, 4 * s, 4 * s}; !slices.Equal(round(probes), want) || end.Round(100*time.Millisecond) != 5*s {
		t.Errorf("an idle time already past: probes at %v, given up at %v; want %v, 5s", probes, end, want)
	}
}
