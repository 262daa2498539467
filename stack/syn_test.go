package stack

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// synLog records the client's SYNs and RSTs, and its connect's end.
type synLog struct {
	clientEnds
	syns []time.Duration
	rsts int
}

func (l *synLog) Segment(s *Segment) {
	if s.TCP == nil || s.From.Name() != "client" {
		return
	}
	if s.TCP.Flags() == header.TCPFlagSyn {
		l.syns = append(l.syns, s.At)
	}
	if s.TCP.Flags().Contains(header.TCPFlagRst) {
		l.rsts++
	}
}

// end is the connect's end, if it ended.
func (l *synLog) end() *StateChange {
	if len(l.ends) == 0 {
		return nil
	}
	return &l.ends[len(l.ends)-1]
}

// connectToSilence connects a client of behaviour b (HZ wheel off: exact
// times) to a silent server, and runs for d.
func connectToSilence(t *testing.T, b Behaviour, userTimeout, d time.Duration) (*Conn, *synLog) {
	t.Helper()
	n, client, server, _ := pairWith(t, Config{Seed: 1, Latency: 50 * time.Microsecond}, b, nil)
	l := &synLog{}
	n.Observe(l)
	n.Silence(server, Both)
	c, err := client.Socket("tcp4")
	if err != nil {
		t.Fatal(err)
	}
	if userTimeout > 0 {
		if err := c.SetUserTimeout(userTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Connect(netip.AddrPortFrom(server.Addr(), 80)); err != nil {
		t.Fatal(err)
	}
	if err := n.RunUntil(d); err != nil {
		t.Fatal(err)
	}
	return c, l
}

func seconds(ss ...float64) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		out = append(out, time.Duration(s*float64(time.Second)))
	}
	return out
}

// TestSynRetransmitIsLinuxs: Linux 6.18's defaults (tcp_syn_retries 6,
// tcp_syn_linear_timeouts 4) send the SYN again after 1 s five times, then
// after 2, 4, 8, 16 and 32 s, and fail the connect 64 s after the last:
// 10 retransmissions, 131 s (measured: 1.010, 2.034, 3.058, 4.082, 5.106,
// 7.122, 11.31, 19.51, 35.63, 69.68 s, ETIMEDOUT at 135.2 s on its HZ=250
// wheel). That is after gVisor's own give-up (127 s), which kasim holds
// back. No RST goes out; the application gets ETIMEDOUT.
func TestSynRetransmitIsLinuxs(t *testing.T) {
	c, l := connectToSilence(t, Behaviour{SynRetransmit: SynRetransmit{Retries: 6, Linear: 4}}, 0, 200*time.Second)
	want := seconds(0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67)
	if len(l.syns) != len(want) {
		t.Fatalf("SYNs at %v, want at %v", l.syns, want)
	}
	for i := range want {
		if l.syns[i] != want[i] {
			t.Fatalf("SYNs at %v, want at %v", l.syns, want)
		}
	}
	if l.end() == nil || l.end().At != 131*time.Second || l.end().GaveUp != GaveUpSynRetries || l.end().Retransmissions != 10 || l.rsts != 0 {
		t.Fatalf("end %+v, %d RSTs; want a syn-retries give-up at 131s after 10 retransmissions, no RST", l.end(), l.rsts)
	}
	var op *OpError
	if _, err := c.Recv(make([]byte, 1)); !errors.As(err, &op) || op.Err.String() != (&tcpip.ErrTimeout{}).String() {
		t.Errorf("Recv after the give-up = %v, want a timeout", err)
	}
}

// TestSynRetriesGiveUpByTime: with tcp_syn_retries 2 Linux allows 7 s
// (tcp_model_timeout, 1 s base) since the SYN, which runs out at the
// timeout after the fifth retransmission, before the count of 6 (measured:
// ETIMEDOUT at 7.14 s, SYNs at 0, 1.03, 2.05, 3.08, 4.10, 5.12 s). And
// TCP_USER_TIMEOUT bounds SYN-SENT from the SYN, the timer clamped to it
// (measured with 3 s: ETIMEDOUT at 3.026 s, after two retransmissions).
func TestSynRetriesGiveUpByTime(t *testing.T) {
	_, l := connectToSilence(t, Behaviour{SynRetransmit: SynRetransmit{Retries: 2, Linear: 4}}, 0, time.Minute)
	if len(l.syns) != 6 || l.end() == nil || l.end().At != 7*time.Second || l.end().GaveUp != GaveUpSynRetries || l.end().Limit != 7*time.Second {
		t.Fatalf("SYNs %v, end %+v; want 6 SYNs and a syn-retries give-up at 7s", l.syns, l.end())
	}
	_, l = connectToSilence(t, Behaviour{SynRetransmit: SynRetransmit{Retries: 6, Linear: 4}}, 3*time.Second, time.Minute)
	if len(l.syns) != 3 || l.end() == nil || l.end().At != 3*time.Second || l.end().GaveUp != GaveUpUserTimeout {
		t.Fatalf("SYNs %v, end %+v; want 3 SYNs and a user-timeout give-up at 3s", l.syns, l.end())
	}
}

// TestSynAnsweredLateConnects: a SYN-ACK answering one of kasim's copies
// completes the connect, and the schedule stops.
func TestSynAnsweredLateConnects(t *testing.T) {
	n, client, server, _ := pairWith(t, Config{Seed: 1, Latency: 50 * time.Microsecond}, Behaviour{SynRetransmit: SynRetransmit{Retries: 6, Linear: 4}}, nil)
	l := &synLog{}
	n.Observe(l)
	n.Silence(server, Both)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunUntil(6500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	n.Heal(server)
	if err := n.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	if c.State() != Established || len(l.syns) != 7 || l.end() != nil {
		t.Fatalf("state %v after SYNs at %v (end %+v); want established by the SYN at 7s, the last", c.State(), l.syns, l.end())
	}
}
