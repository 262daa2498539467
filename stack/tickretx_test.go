package stack

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// lwipRetx is lwIP 2.1.3's retransmission, SYN and data: TCP_SYNMAXRTX 6,
// TCP_MAXRTX 12, a 3 s initial RTO, all on the 500 ms slow timer.
var lwipRetx = Behaviour{AbortError: AbortConnAborted, SynRetransmit: lwipSyn.SynRetransmit,
	TickRetransmit: TickRetransmit{Tick: 500 * time.Millisecond, InitialRTO: 3 * time.Second, Max: 12}}

// lwipData is an lwIP client's connection to a server whose silence and
// sends a test plays out.
type lwipData struct {
	t      *testing.T
	n      *Network
	client *Host
	server *Host
	other  *Host // a second server, for the host's first connect
	c      *Conn
	g      *giveUps
}

func newLwIPData(t *testing.T) *lwipData {
	n, client, servers := lwipHosts(t, lwipRetx, "server", "other")
	d := &lwipData{t: t, n: n, client: client, server: servers[0], other: servers[1], g: &giveUps{}}
	n.Observe(d.g)
	return d
}

// at runs the network until the virtual time at.
func (d *lwipData) at(at time.Duration) *lwipData {
	d.t.Helper()
	if err := d.n.RunUntil(at); err != nil {
		d.t.Fatal(err)
	}
	return d
}

func (d *lwipData) dial(to *Host) *Conn {
	d.t.Helper()
	c, err := d.client.Dial(netip.AddrPortFrom(to.Addr(), 80), KeepAlive{})
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

// sendToSilence silences the server and sends n octets it will never
// acknowledge.
func (d *lwipData) sendToSilence(n int) {
	d.t.Helper()
	d.n.Silence(d.server, Both)
	d.send(n)
}

func (d *lwipData) send(n int) {
	d.t.Helper()
	if _, err := d.c.Send(make([]byte, n)); err != nil {
		d.t.Fatal(err)
	}
}

// retransmissions returns when the dropped data went out, after the first
// copy (the data itself), and when the client's connection ended.
func (d *lwipData) retransmissions() ([]time.Duration, *StateChange) {
	var end *StateChange
	if len(d.g.ends) > 0 {
		end = &d.g.ends[len(d.g.ends)-1]
	}
	if len(d.g.retrans) == 0 {
		return nil, end
	}
	return d.g.retrans[1:], end
}

// TestTickRetransmitIsLwIPs: with no round trip measured, lwIP sends
// unacknowledged data again at the sixth tick after it (its 3 s initial
// RTO), then 6, 12, 24, 48, 96, 192 and five times 384 s apart
// (tcp_backoff shifts up to 7), and removes the connection at the tick
// after the 12th: no RST, ECONNABORTED. Measured against lwIP 2.1.3: the
// first five at 2.948, 6.007, 12.007, 24.023, 48.050 s apart.
func TestTickRetransmitIsLwIPs(t *testing.T) {
	d := newLwIPData(t)
	d.c = d.dial(d.server)
	d.at(300 * time.Millisecond)
	d.sendToSilence(100)
	d.at(time.Hour)
	got, end := d.retransmissions()
	want := seconds(3.25)
	for _, gap := range []float64{6, 12, 24, 48, 96, 192, 384, 384, 384, 384, 384} {
		want = append(want, want[len(want)-1]+time.Duration(gap*float64(time.Second)))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("retransmissions at %v, want at %v", got, want)
	}
	if end == nil || end.At != want[11]+500*time.Millisecond || end.GaveUp != GaveUpRetransmission || end.Retransmissions != 12 {
		t.Fatalf("end %+v; want a retransmission give-up at the tick after the 12th, %v", end, want[11]+500*time.Millisecond)
	}
	var op *OpError
	if _, err := d.c.Recv(make([]byte, 1)); !errors.As(err, &op) || op.Err.String() != (&tcpip.ErrConnectionAborted{}).String() {
		t.Errorf("Recv after the give-up = %v, want ECONNABORTED", err)
	}
}

// TestTickRetransmitLearnsTheRoundTrip: three sends answered within their
// tick are three samples of 0 ticks, which take sv from 6 to 3 (sa stays
// 0): the RTO is 1.5 s, so data the silent peer never acknowledges goes
// again at the third tick after it, then 3, 6 and 12 s apart. Measured
// against lwIP 2.1.3 (kasim conform --dut lwip): 1.254, 3.002, 6.009,
// 12.009 s.
func TestTickRetransmitLearnsTheRoundTrip(t *testing.T) {
	d := newLwIPData(t)
	d.c = d.dial(d.server)
	for _, at := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		d.at(at).send(10)
	}
	d.at(4 * time.Second)
	d.sendToSilence(10)
	d.at(30 * time.Second)
	got, _ := d.retransmissions()
	if want := seconds(5.25, 8.25, 14.25, 26.25); !slices.Equal(got, want) {
		t.Fatalf("retransmissions at %v, want at %v", got, want)
	}
}

// TestTickRetransmitAckResetsTheBackOff: an ACK of new data resets the
// count of retransmissions and the RTO to the estimator's, and the
// retransmission it acknowledges is a sample (lwIP times a retransmitted
// segment too, against Karn's rule): one sample of 0 ticks gives an RTO of
// 5 ticks for the next data.
func TestTickRetransmitAckResetsTheBackOff(t *testing.T) {
	d := newLwIPData(t)
	d.c = d.dial(d.server)
	d.at(300 * time.Millisecond)
	d.sendToSilence(100)
	d.at(10 * time.Second)
	d.n.Heal(d.server) // the retransmission at 21.25 s is answered
	d.at(30 * time.Second)
	d.sendToSilence(100)
	d.at(40 * time.Second)
	got, end := d.retransmissions()
	// The retransmission at 21.25 s reaches the peer, so it is not among
	// the dropped; without its sample the RTO would be 6 ticks, and the
	// new data's first retransmission at 32.75 s.
	if want := seconds(3.25, 9.25, 30, 32.25, 37.25); !slices.Equal(got, want) || end != nil {
		t.Fatalf("dropped data at %v (end %+v), want at %v (the third is the new data)", got, end, want)
	}
}

// TestLwIPTimesTheSYNOfALaterConnection: lwIP times any segment sent
// while none is, the SYN included, unless tcp_ticks is still 0; a SYN-ACK
// in SYN-SENT is no sample, so the first ACK after the handshake measures
// from the SYN. On a host whose ticks are running, a connect made at 1 s
// and first answered at 10 s learns a round trip of 18 ticks: sa 18, sv
// 23, an RTO of 25 ticks. The host's first connect is never timed.
func TestLwIPTimesTheSYNOfALaterConnection(t *testing.T) {
	d := newLwIPData(t)
	d.dial(d.other) // starts the ticks: 0.25 s, then every 500 ms
	d.at(time.Second)
	d.c = d.dial(d.server) // tcp_ticks 2
	d.at(10 * time.Second).send(10)
	d.at(11 * time.Second)
	d.sendToSilence(10)
	d.at(30 * time.Second)
	got, _ := d.retransmissions()
	if want := seconds(23.25); !slices.Equal(got, want) {
		t.Fatalf("retransmissions at %v, want at %v (the 25th tick after 11 s)", got, want)
	}
}

// TestTickRetransmitValidation: a tick, an RTO of one or more, and 1 to
// 255 retransmissions; and one retransmission rule per host.
func TestTickRetransmitValidation(t *testing.T) {
	for _, b := range []Behaviour{
		{TickRetransmit: TickRetransmit{InitialRTO: 3 * time.Second, Max: 12}},
		{TickRetransmit: TickRetransmit{Tick: time.Second, InitialRTO: 500 * time.Millisecond, Max: 12}},
		{TickRetransmit: TickRetransmit{Tick: time.Second, InitialRTO: 3 * time.Second}},
		{TickRetransmit: lwipRetx.TickRetransmit, LimitRetransmissions: true, MaxRetransmissions: 5},
		{TickRetransmit: lwipRetx.TickRetransmit, RetransmitTimeout: time.Minute},
	} {
		if err := b.validate(); err == nil {
			t.Errorf("%+v: accepted", b)
		}
	}
	if err := lwipRetx.validate(); err != nil {
		t.Errorf("lwIP's: %v", err)
	}
}

// freebsdRetx is FreeBSD's data retransmission (freebsdData in profile).
var freebsdRetx = Behaviour{BSDRetransmit: BSDRetransmit{InitialRTO: time.Second, MinRTO: 30 * time.Millisecond,
	Slop: 200 * time.Millisecond, MaxRTO: 64 * time.Second, Max: 12}}

// TestBSDRetransmitIsFreeBSDs: with no round trip measured (none from the
// handshake), FreeBSD sends unacknowledged data again tcp_rexmit_initial
// (1 s) after it, then at REXMTVAL (still 1 s) x tcp_backoff plus 200 ms
// of slop: 2.2, 4.2, 8.2, 16.2, 32.2 s, then 64 s (TCPTV_REXMTMAX); at the
// timeout after the 12th it drops the connection with RST+ACK at SND.MAX
// and ETIMEDOUT.
func TestBSDRetransmitIsFreeBSDs(t *testing.T) {
	c, g := deadPeerWithData(t, freebsdRetx, 0, 10*time.Minute)
	want := []time.Duration{2 * time.Second}
	for _, gap := range []time.Duration{2200, 4200, 8200, 16200, 32200, 64000, 64000, 64000, 64000, 64000, 64000} {
		want = append(want, want[len(want)-1]+gap*time.Millisecond)
	}
	if got := g.retrans[1:]; !slices.Equal(got, want) {
		t.Fatalf("retransmissions at %v, want %v", got, want)
	}
	end := g.ends[len(g.ends)-1]
	if end.At != want[11]+64*time.Second || end.GaveUp != GaveUpRetransmission || end.Retransmissions != 12 {
		t.Fatalf("end %+v; want a retransmission give-up 64 s after the 12th, at %v", end, want[11]+64*time.Second)
	}
	var op *OpError
	if _, err := c.Recv(make([]byte, 1)); !errors.As(err, &op) || op.Err.String() != (&tcpip.ErrTimeout{}).String() {
		t.Errorf("Recv after the give-up = %v, want ETIMEDOUT", err)
	}
	if err := (Behaviour{BSDRetransmit: freebsdRetx.BSDRetransmit, LimitRetransmissions: true}).validate(); err == nil {
		t.Error("FreeBSD's retransmission with gVisor's count limit: accepted")
	}
	if err := (Behaviour{BSDRetransmit: BSDRetransmit{Max: 13, InitialRTO: time.Second, MinRTO: time.Millisecond, MaxRTO: time.Second}}).validate(); err == nil {
		t.Error("13 retransmissions, past tcp_backoff: accepted")
	}
}
