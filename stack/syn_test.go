package stack

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"kasim/timers"

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
// times) to a silent server, with the user timeout set if positive, and
// runs for d.
func connectToSilence(t *testing.T, b Behaviour, userTimeout, d time.Duration) (*Conn, *synLog) {
	t.Helper()
	return connectToSilenceWith(t, b, d, func(c *Conn) error {
		if userTimeout > 0 {
			return c.SetUserTimeout(userTimeout)
		}
		return nil
	})
}

// connectToSilenceWith is connectToSilence with the socket's options set
// by set, before the connect.
func connectToSilenceWith(t *testing.T, b Behaviour, d time.Duration, set func(*Conn) error) (*Conn, *synLog) {
	t.Helper()
	n, client, server, _ := pairWith(t, Config{Seed: 1, Latency: 50 * time.Microsecond}, b, nil)
	l := &synLog{}
	n.Observe(l)
	n.Silence(server, Both)
	c, err := client.Socket("tcp4")
	if err != nil {
		t.Fatal(err)
	}
	if err := set(c); err != nil {
		t.Fatal(err)
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

// lwipSyn is lwIP 2.1.3's SYN schedule: TCP_SYNMAXRTX 6, a 3 s RTO on the
// 500 ms slow timer.
var lwipSyn = Behaviour{AbortError: AbortConnAborted,
	SynRetransmit: SynRetransmit{Retries: 6, Every: 3 * time.Second, Tick: 500 * time.Millisecond}}

// lwipHosts makes a network with a client of behaviour b, its timers on
// lwIP's ticks (500 ms, from 250 ms after its first connect), and
// listening hosts of the given names.
func lwipHosts(t *testing.T, b Behaviour, servers ...string) (*Network, *Host, []*Host) {
	t.Helper()
	n := NewNetwork(Config{Seed: 1, Latency: 50 * time.Microsecond})
	t.Cleanup(n.Close)
	client, err := n.AddHostWith("client", HostOptions{Behaviour: b,
		Timers: timers.NewTickQueue(int64(500 * time.Millisecond)), TimersStart: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*Host
	for _, name := range servers {
		h, err := n.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Listen("tcp4", 80, KeepAlive{}, func(*Conn) {}); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	return n, client, hosts
}

// TestSynRetransmitIsLwIPs: lwIP sends the SYN again at the sixth tick
// after it, then every 3 s, six times, and fails the connect at the next
// tick: ECONNABORTED, no RST. Measured against lwIP 2.1.3 (kasim conform
// --dut lwip, a connect to a silent tester): SYNs at 0.001, 2.752, 5.755,
// 8.758, 11.762, 14.764, 17.769 s, ECONNABORTED at 18.270 s.
func TestSynRetransmitIsLwIPs(t *testing.T) {
	n, client, servers := lwipHosts(t, lwipSyn, "server")
	l := &synLog{}
	n.Observe(l)
	n.Silence(servers[0], Both)
	c, err := client.Dial(netip.AddrPortFrom(servers[0].Addr(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	want := seconds(0, 2.75, 5.75, 8.75, 11.75, 14.75, 17.75)
	if !slices.Equal(l.syns, want) {
		t.Fatalf("SYNs at %v, want at %v", l.syns, want)
	}
	end := l.end()
	if end == nil || end.At != 18250*time.Millisecond || end.GaveUp != GaveUpSynRetries || end.Retransmissions != 6 || end.Limit != 0 || l.rsts != 0 {
		t.Fatalf("end %+v, %d RSTs; want a syn-retries give-up at 18.25s after 6 retransmissions, no time limit, no RST", end, l.rsts)
	}
	var op *OpError
	if _, err := c.Recv(make([]byte, 1)); !errors.As(err, &op) || op.Err.String() != (&tcpip.ErrConnectionAborted{}).String() {
		t.Errorf("Recv after the give-up = %v, want ECONNABORTED", err)
	}
}

// TestLwIPSynCountsTicks: lwIP counts the RTO in ticks from the SYN, so a
// SYN sent between two ticks goes again at the sixth tick after it, less
// than 3 s later (the ticks here are anchored at the host's first
// connect, 250 ms before the first: a connect 100 ms after that one finds
// them 150 ms ahead). A SYN-ACK to a late copy completes the connect and
// stops the schedule.
func TestLwIPSynCountsTicks(t *testing.T) {
	n, client, servers := lwipHosts(t, lwipSyn, "server", "other")
	server, other := servers[0], servers[1]
	// The first connect anchors the client's ticks at 250 ms.
	if _, err := client.Dial(netip.AddrPortFrom(other.Addr(), 80), KeepAlive{}); err != nil {
		t.Fatal(err)
	}
	l := &synLog{}
	n.Silence(server, Both)
	if err := n.RunUntil(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	n.Observe(l)
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RunUntil(6 * time.Second); err != nil {
		t.Fatal(err)
	}
	n.Heal(server)
	if err := n.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	want := seconds(0.1, 2.75, 5.75, 8.75) // the last answered, after the heal at 6 s
	if !slices.Equal(l.syns, want) || c.State() != Established || l.end() != nil {
		t.Fatalf("SYNs at %v, state %v, end %+v; want SYNs at %v and the connect completed by the last", l.syns, c.State(), l.end(), want)
	}
}

// TestSynScheduleValidation: lwIP's schedule needs a tick, no linear
// count, and a first retransmission after gVisor's own (1 s, on the tick).
func TestSynScheduleValidation(t *testing.T) {
	for _, r := range []SynRetransmit{
		{Retries: 6, Every: 3 * time.Second},
		{Retries: 6, Every: 3 * time.Second, Tick: 500 * time.Millisecond, Linear: 1},
		{Retries: 6, Every: 1500 * time.Millisecond, Tick: 500 * time.Millisecond},
		{Retries: 6, Tick: 500 * time.Millisecond},
		{Retries: 2, ByCount: true},
		{Retries: 2, ByCount: true, Initial: 3 * time.Second, MaxRTO: time.Second},
		{Retries: 2, Initial: 3 * time.Second, MaxRTO: time.Minute},
		{Retries: 256, ByCount: true, Initial: 3 * time.Second, MaxRTO: time.Minute},
	} {
		if err := (Behaviour{SynRetransmit: r}).validate(); err == nil {
			t.Errorf("%+v: accepted", r)
		}
	}
	if err := lwipSyn.validate(); err != nil {
		t.Errorf("lwIP's: %v", err)
	}
}

// TestSynRetransmitByCountIsWindows: Windows retransmits the SYN after the
// initial RTO, doubling, TcpMaxConnectRetransmissions times, and gives up
// after double the last delay; no RST, a timeout. kasim takes over at the
// SYN when the initial RTO is below gVisor's 1 s, at gVisor's first
// retransmission otherwise (keeping it off the wire when Windows' comes
// later).
func TestSynRetransmitByCountIsWindows(t *testing.T) {
	for _, tc := range []struct {
		initial time.Duration
		retries int
		syns    []time.Duration
		end     time.Duration
	}{
		{3 * time.Second, 2, seconds(0, 3, 9), 21 * time.Second},
		{time.Second, 4, seconds(0, 1, 3, 7, 15), 31 * time.Second},
		{500 * time.Millisecond, 2, seconds(0, 0.5, 1.5), 3500 * time.Millisecond},
		{3 * time.Second, 0, seconds(0), 3 * time.Second},
	} {
		b := Behaviour{SynRetransmit: SynRetransmit{ByCount: true, Retries: tc.retries, Initial: tc.initial, MaxRTO: time.Minute}}
		if got := b.SynRetransmit.CountTimeout(); got != tc.end {
			t.Errorf("initial %v, %d retries: CountTimeout %v, want %v", tc.initial, tc.retries, got, tc.end)
		}
		c, l := connectToSilence(t, b, 0, time.Minute)
		end := l.end()
		if !slices.Equal(l.syns, tc.syns) || end == nil || end.At != tc.end || end.GaveUp != GaveUpSynRetries || end.Retransmissions != tc.retries || end.Limit != 0 || l.rsts != 0 {
			t.Errorf("initial %v, %d retries: SYNs at %v, end %+v, %d RSTs; want SYNs at %v and a syn-retries give-up at %v, no RST",
				tc.initial, tc.retries, l.syns, end, l.rsts, tc.syns, tc.end)
			continue
		}
		var op *OpError
		if _, err := c.Recv(make([]byte, 1)); !errors.As(err, &op) || op.Err.String() != (&tcpip.ErrTimeout{}).String() {
			t.Errorf("Recv after the give-up = %v, want a timeout", err)
		}
	}
}

// TestSynRetransmitWithSlopAndLimitIsFreeBSDs: FreeBSD's SYN goes again
// after 1 s, then after 1 s x 2^k plus a 200 ms slop, up to 64 s, and the
// connect fails at its keepinit, 75 s from the SYN (or at the socket's own
// limit), with no RST; a give-up by time reports its limit.
func TestSynRetransmitWithSlopAndLimitIsFreeBSDs(t *testing.T) {
	bsd := SynRetransmit{ByCount: true, Retries: 12, Initial: time.Second, MaxRTO: 64 * time.Second,
		Slop: 200 * time.Millisecond, Limit: 75 * time.Second}
	if got := bsd.CountTimeout(); got != 75*time.Second {
		t.Errorf("CountTimeout %v, want the limit, 75s", got)
	}
	noLimit := bsd
	noLimit.Limit = 0
	// 1 + 2.2 + 4.2 + 8.2 + 16.2 + 32.2 + 7 x 64
	if got, want := noLimit.CountTimeout(), 64*time.Second+448*time.Second; got != want {
		t.Errorf("without a limit: CountTimeout %v, want %v", got, want)
	}
	for _, tc := range []struct {
		connectTimeout time.Duration
		syns           []time.Duration
		end            time.Duration
	}{
		{0, seconds(0, 1, 3.2, 7.4, 15.6, 31.8, 64), 75 * time.Second},
		{10 * time.Second, seconds(0, 1, 3.2, 7.4), 10 * time.Second},
	} {
		_, l := connectToSilenceWith(t, Behaviour{SynRetransmit: bsd}, 2*time.Minute, func(c *Conn) error { return c.SetConnectTimeout(tc.connectTimeout) })
		end := l.end()
		if !slices.Equal(l.syns, tc.syns) || end == nil || end.At != tc.end || end.GaveUp != GaveUpSynRetries || end.Limit != tc.end || l.rsts != 0 {
			t.Errorf("connect timeout %v: SYNs at %v, end %+v, %d RSTs; want SYNs at %v, a give-up at %v by its limit, no RST",
				tc.connectTimeout, l.syns, end, l.rsts, tc.syns, tc.end)
		}
	}
	if err := (Behaviour{SynRetransmit: SynRetransmit{Retries: 6, Slop: time.Second}}).validate(); err == nil {
		t.Error("a slop without a schedule by count: accepted")
	}
}

// Linux turns TCP_DEFER_ACCEPT's seconds into SYN-ACK timeouts, 1 s
// doubling, the fewest that reach them (secs_to_retrans), and reads back
// their sum (retrans_to_secs): 5 reads back 7.
func TestDeferAcceptTimeouts(t *testing.T) {
	for _, c := range []struct{ secs, timeouts, back int }{
		{-1, 0, 0}, {0, 0, 0}, {1, 1, 1}, {2, 2, 3}, {3, 2, 3}, {5, 3, 7}, {7, 3, 7}, {8, 4, 15},
		{63, 6, 63}, {64, 7, 127}, {128, 8, 247}, // the timeout stops doubling at 120 s
	} {
		n := DeferAcceptTimeouts(c.secs)
		if back := DeferAcceptSeconds(n); n != c.timeouts || back != c.back {
			t.Errorf("TCP_DEFER_ACCEPT %d: %d timeouts, reads %d; want %d, %d", c.secs, n, back, c.timeouts, c.back)
		}
	}
}

// synAcks counts the SYN-ACKs a host sends.
type synAcks struct {
	host *Host
	at   []time.Duration
}

func (s *synAcks) Segment(seg *Segment) {
	if seg.From == s.host && seg.TCP != nil && seg.TCP.Flags() == header.TCPFlagSyn|header.TCPFlagAck {
		s.at = append(s.at, seg.At)
	}
}
func (s *synAcks) State(StateChange) {}
func (s *synAcks) Deliver(*Segment)  {}
func (s *synAcks) Link(LinkChange)   {}

// A Linux server answers duplicates of the SYN it is half-open for with
// its SYN-ACK again, at most once in tcp_invalid_ratelimit (500 ms), and
// those answers do not count toward tcp_synack_retries.
func TestDuplicateSynDrawsTheSynAck(t *testing.T) {
	n := NewNetwork(Config{Seed: 4})
	t.Cleanup(n.Close)
	client, err := n.AddHost("client")
	if err != nil {
		t.Fatal(err)
	}
	server, err := n.AddHostWith("server", HostOptions{Behaviour: Behaviour{SynAckRetries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Listen("tcp4", 80, KeepAlive{}, nil); err != nil {
		t.Fatal(err)
	}
	seen := &synAcks{host: server}
	n.Observe(seen)
	n.Silence(client, Inbound) // the SYN-ACKs are lost: the server stays half-open
	if _, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive{}); err != nil {
		t.Fatal(err)
	}
	if err := n.RunUntil(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var f *flow
	for _, fl := range server.flows {
		if fl.synAck.data != nil {
			f = fl
		}
	}
	if f == nil || len(seen.at) != 1 {
		t.Fatalf("half-open flow %v, SYN-ACKs %v: want one SYN-ACK kept for the request", f, seen.at)
	}
	for _, at := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		if err := n.RunUntil(at); err != nil {
			t.Fatal(err)
		}
		f.dupSyn = true
		n.answerDupSyn(server, f)
	}
	// 200 ms answered; 400 ms within 500 ms of it, not; 800 ms answered.
	if want := []time.Duration{0, 200 * time.Millisecond, 800 * time.Millisecond}; !slices.Equal(seen.at, want) {
		t.Fatalf("SYN-ACKs at %v, want %v", seen.at, want)
	}
	// The timer's own copy at 1 s is the one tcp_synack_retries=1 allows;
	// the request goes at the timeout after it.
	if err := n.RunUntil(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := seen.at[3:]; len(got) != 1 || !f.halfOpenGone {
		t.Errorf("the timer's copies at %v, gone %v; want one, then the request dropped", got, f.halfOpenGone)
	}
}
