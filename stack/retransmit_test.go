package stack

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// clientEnds records the client's changes to CLOSED; the observers of
// these tests embed it.
type clientEnds struct{ ends []StateChange }

func (e *clientEnds) Deliver(*Segment) {}
func (e *clientEnds) Link(LinkChange)  {}
func (e *clientEnds) State(c StateChange) {
	if c.To == Closed && c.Conn.Host().Name() == "client" {
		e.ends = append(e.ends, c)
	}
}

// giveUps records retransmissions of data and how connections were given
// up.
type giveUps struct {
	clientEnds
	retrans []time.Duration // when the client sent data again
}

func (g *giveUps) Segment(s *Segment) {
	if s.TCP != nil && s.From.Name() == "client" && s.Payload > 0 && s.TCP.Flags()&header.TCPFlagRst == 0 && s.Dropped && len(g.retrans) < 100 {
		g.retrans = append(g.retrans, s.At)
	}
}

// deadPeerWithData connects a client of behaviour b, silences the server
// at 1 s, sends 10 octets then, and runs for d.
func deadPeerWithData(t *testing.T, b Behaviour, userTimeout, d time.Duration) (*Conn, *giveUps) {
	t.Helper()
	n, client, server, _ := pairWith(t, Config{Seed: 1, Latency: 50 * time.Microsecond}, b, nil)
	g := &giveUps{}
	n.Observe(g)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if userTimeout > 0 {
		if err := c.SetUserTimeout(userTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.RunUntil(time.Second); err != nil {
		t.Fatal(err)
	}
	n.Silence(server, Both)
	if _, err := c.Send(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := n.RunUntil(d); err != nil {
		t.Fatal(err)
	}
	return c, g
}

// TestRetransmitTimeoutIsLinuxs: with tcp_retries2=3 Linux allows 3 s
// (200+400+800+1600 ms) from its first retransmission by the timer; the
// tail loss probe before it does not count. It retransmits while the next
// timeout is inside that time and gives up at the first one outside it:
// 4 retransmissions by the timer, ETIMEDOUT, no RST (measured against
// Linux 6.18: TLP +207 ms, then +208, +420, +832, +1664 ms, ETIMEDOUT
// 3.296 s after the last).
func TestRetransmitTimeoutIsLinuxs(t *testing.T) {
	if got := RetransmitTimeout(3); got != 3*time.Second {
		t.Fatalf("RetransmitTimeout(3) = %v, want 3s", got)
	}
	if got := RetransmitTimeout(15); got != 924600*time.Millisecond {
		t.Fatalf("RetransmitTimeout(15) = %v, want 924.6s (tcp_model_timeout)", got)
	}
	c, g := deadPeerWithData(t, Behaviour{RetransmitTimeout: RetransmitTimeout(3)}, 0, time.Minute)
	if len(g.ends) != 1 {
		t.Fatalf("client closed %d times, want once: %v", len(g.ends), g.ends)
	}
	end := g.ends[0]
	if end.GaveUp != GaveUpRetransmission || end.Retransmissions != 4 || end.Limit != 3*time.Second {
		t.Fatalf("give-up %q after %d retransmissions by the timer, limit %v; want retransmission, 4, 3s", end.GaveUp, end.Retransmissions, end.Limit)
	}
	// The loss probe, then four by the timer, the first of them the stamp.
	if len(g.retrans) != 6 || end.Since != g.retrans[2] {
		t.Fatalf("sends of the data %v, first by the timer stamped %v; want the original, a loss probe and 4", g.retrans, end.Since)
	}
	last := g.retrans[len(g.retrans)-1]
	if end.At-end.Since < end.Limit || last-end.Since >= end.Limit {
		t.Errorf("gave up at %v, %v after the stamp; the last retransmission was %v after it: want the limit (%v) crossed between them",
			end.At, end.At-end.Since, last-end.Since, end.Limit)
	}
	var op *OpError
	if _, err := c.Recv(make([]byte, 1)); !errors.As(err, &op) || op.Err.String() != (&tcpip.ErrTimeout{}).String() {
		t.Errorf("Recv after the give-up = %v, want a timeout", err)
	}
}

// TestUserTimeoutWithDataCountsFromTheFirstRetransmission: Linux drops
// the connection TCP_USER_TIMEOUT after its first retransmission by the
// timer (its timer clamped to that moment), where gVisor counts from the
// data's transmission before it (measured against Linux 6.18 with 3 s:
// ETIMEDOUT 3.419 s after the send, the first retransmission by the
// timer at 415 ms).
func TestUserTimeoutWithDataCountsFromTheFirstRetransmission(t *testing.T) {
	const uto = 3 * time.Second
	_, linux := deadPeerWithData(t, Behaviour{RetransmitTimeout: RetransmitTimeout(15)}, uto, time.Minute)
	_, gvisor := deadPeerWithData(t, Behaviour{}, uto, time.Minute)
	if len(linux.ends) != 1 || len(gvisor.ends) != 1 {
		t.Fatalf("closes: linux %v, gvisor %v; want one each", linux.ends, gvisor.ends)
	}
	l, g := linux.ends[0], gvisor.ends[0]
	if l.GaveUp != GaveUpUserTimeout || g.GaveUp != GaveUpUserTimeout {
		t.Fatalf("rules: linux %q, gvisor %q; want user-timeout for both", l.GaveUp, g.GaveUp)
	}
	if l.At-l.Since != uto {
		t.Errorf("linux gave up %v after its first retransmission by the timer, want exactly the user timeout %v", l.At-l.Since, uto)
	}
	// gVisor counts from the loss probe's transmission, one RTO earlier.
	if d := l.At - g.At; d < 150*time.Millisecond || d > 250*time.Millisecond {
		t.Errorf("linux gave up %v after gvisor, want one RTO (about 200 ms)", d)
	}
}

// TestAcknowledgedDataEndsTheAccount: data acknowledged after a few
// retransmissions leaves no limit behind: a later loss episode counts
// from its own first retransmission, and the user timeout is the
// application's again (keep-alive reads it).
func TestAcknowledgedDataEndsTheAccount(t *testing.T) {
	n, client, server, _ := pairWith(t, Config{Seed: 1, Latency: 50 * time.Microsecond}, Behaviour{RetransmitTimeout: RetransmitTimeout(3)}, nil)
	g := &giveUps{}
	n.Observe(g)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetUserTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		n.Silence(server, Both)
		if _, err := c.Send(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		// Retransmissions by the timer 0.4, 0.8, 1.6 and 3.2 s after the
		// send (after a loss probe at 0.2 s): heal before the last.
		if err := n.RunFor(3 * time.Second); err != nil {
			t.Fatal(err)
		}
		if c.retx.rule != GaveUpUserTimeout {
			t.Fatalf("round %d: rule %q while the user timeout runs, want user-timeout", round, c.retx.rule)
		}
		n.Heal(server)
		if err := n.RunFor(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if c.retx.active || len(g.ends) != 0 {
			t.Fatalf("round %d: account %+v, closes %v after the data was acknowledged; want none", round, c.retx, g.ends)
		}
		var uto tcpip.TCPUserTimeoutOption
		if err := c.ep.GetSockOpt(&uto); err != nil || time.Duration(uto) != 5*time.Second {
			t.Fatalf("round %d: gVisor's user timeout %v (%v) once the data was acknowledged, want the application's 5s back", round, time.Duration(uto), err)
		}
	}
}
