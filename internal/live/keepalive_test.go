//go:build linux

package live

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// recorder keeps the segments the tester's link saw.
type recorder struct {
	mu   sync.Mutex
	segs []Segment
}

func (r *recorder) add(s Segment) {
	r.mu.Lock()
	r.segs = append(r.segs, s)
	r.mu.Unlock()
}

func (r *recorder) all() []Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Segment(nil), r.segs...)
}

// waitFor polls until cond holds for the recorded segments.
func (r *recorder) waitFor(timeout time.Duration, cond func([]Segment) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond(r.all()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextEvent waits for the helper's next report of kind on fd, failing the
// test on any other report, on the helper's death or after timeout.
func nextEvent(t *testing.T, p *Peer, kind EventKind, fd int, timeout time.Duration) Event {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case ev, ok := <-p.Events():
		if !ok {
			t.Fatalf("waiting for %s on fd %d: the helper stopped: %v", kind, fd, p.deadErr())
		}
		if ev.Kind != kind || ev.FD != fd {
			t.Fatalf("waiting for %s on fd %d, got %v", kind, fd, ev)
		}
		return ev
	case <-tm.C:
		t.Fatalf("no %s report on fd %d within %v", kind, fd, timeout)
	}
	return Event{}
}

// must fails the test unless a peer call went through with the errno
// wanted (0 for success).
func must(t *testing.T, what string, want syscall.Errno) func(Result, error) Result {
	return func(r Result, err error) Result {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Errno != want {
			t.Fatalf("%s: errno %v (%s), want %v", what, r.Errno, r.ErrnoName(), want)
		}
		return r
	}
}

// keepAliveConn connects the kernel to a gVisor listener on the tester and
// returns the kernel's fd and the tester's connection.
func keepAliveConn(t *testing.T, lab *Lab) (int, net.Conn) {
	t.Helper()
	ln, err := lab.ListenTCP(80)
	if err != nil {
		t.Fatalf("listen on the tester: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()

	p := lab.Peer()
	fd := must(t, "socket", 0)(p.Socket()).Ret
	must(t, "connect", unix.EINPROGRESS)(p.Connect(fd, netip.AddrPortFrom(lab.TesterAddr(), 80)))
	ev := nextEvent(t, p, EventConnect, fd, 5*time.Second)
	if ev.Errno != 0 {
		t.Fatalf("connect completed with %s", ev.ErrnoName())
	}
	var conn net.Conn
	select {
	case c, ok := <-accepted:
		if !ok {
			t.Fatal("the tester's accept failed")
		}
		conn = c
	case <-time.After(5 * time.Second):
		t.Fatal("the tester accepted nothing within 5s")
	}
	t.Cleanup(func() { conn.Close() })
	return fd, conn
}

// setKeepAlive switches keep-alive on with idle, interval (seconds) and
// count, and reads each value back.
func setKeepAlive(t *testing.T, p *Peer, fd, idle, intvl, cnt int) {
	t.Helper()
	for _, o := range []struct {
		name  string
		level string
		v     int
	}{
		{"SO_KEEPALIVE", "SOL_SOCKET", 1},
		{"TCP_KEEPIDLE", "IPPROTO_TCP", idle},
		{"TCP_KEEPINTVL", "IPPROTO_TCP", intvl},
		{"TCP_KEEPCNT", "IPPROTO_TCP", cnt},
	} {
		must(t, "setsockopt "+o.name, 0)(p.Setsockopt(fd, o.level, o.name, o.v))
		if got := must(t, "getsockopt "+o.name, 0)(p.Getsockopt(fd, o.level, o.name)).Ret; got != o.v {
			t.Fatalf("getsockopt %s = %d, want %d", o.name, got, o.v)
		}
	}
}

func isProbe(s Segment, ack uint32) bool {
	return s.Dir == In && s.Flags == header.TCPFlagAck && s.Len == 0 && s.Seq == ack-1
}

// checkKernelTimes: every segment that was on the wire carries the
// kernel's timestamp, each direction's in wire order, and only segments
// the silence switch kept off the wire carry the tap's time.
//
// "In wire order" within stampSkew: the kernel stamps a frame as the
// sending CPU queues it, and frames queued on two CPUs can reach the
// tester in the other order (a data segment stamped 28 µs before the one
// ahead of it was seen). A stamp matched to the wrong segment would be off
// by far more.
func checkKernelTimes(t *testing.T, segs []Segment) {
	t.Helper()
	const stampSkew = time.Millisecond
	var last [2]Mono
	for _, s := range segs {
		onWire := !(s.Dir == Out && s.Dropped)
		if s.KernelTime != onWire {
			t.Errorf("%v: KernelTime %v, want %v", s, s.KernelTime, onWire)
		}
		if s.KernelTime && s.At < last[s.Dir]-Mono(stampSkew) {
			t.Errorf("%v: stamped %s before the segment ahead of it", s, ms(last[s.Dir].Sub(s.At)))
		}
		if s.KernelTime {
			last[s.Dir] = max(last[s.Dir], s.At)
		}
	}
}

func ms(d time.Duration) string { return d.Round(time.Microsecond).String() }

// TestKernelKeepAliveAgainstSilentTester: the kernel keeps a recv pending
// on a connection whose other end (the tester) falls silent after the
// handshake. Linux sends TCP_KEEPCNT probes, one TCP_KEEPINTVL apart, the
// first TCP_KEEPIDLE after the last segment it received, then gives up:
// an RST, and the pending recv fails with ETIMEDOUT.
func TestKernelKeepAliveAgainstSilentTester(t *testing.T) {
	rec := &recorder{}
	lab := newTestLab(t, Options{OnSegment: rec.add})
	p := lab.Peer()
	fd, _ := keepAliveConn(t, lab)
	lab.SetSilence(SilenceBoth)
	setKeepAlive(t, p, fd, 2, 1, 3)
	must(t, "recv", 0)(p.Recv(fd, 1))

	ev := nextEvent(t, p, EventRecv, fd, 10*time.Second)
	if ev.Errno != unix.ETIMEDOUT {
		t.Fatalf("the pending recv returned %d %s, want ETIMEDOUT", ev.Ret, ev.ErrnoName())
	}
	// The RST leaves before the error wakes the application; allow for
	// the tester's goroutines to record it.
	rec.waitFor(time.Second, func(s []Segment) bool {
		return len(s) > 0 && s[len(s)-1].Flags&header.TCPFlagRst != 0
	})

	segs := rec.all()
	for _, s := range segs {
		t.Logf("%d %v", s.At, s)
	}
	checkKernelTimes(t, segs)
	// The kernel's last receive is the tester's last segment that was not
	// dropped: its SYN-ACK.
	var last Segment
	for _, s := range segs {
		if s.Dir == Out && !s.Dropped {
			last = s
		}
	}
	if last.Flags != header.TCPFlagSyn|header.TCPFlagAck {
		t.Fatalf("the tester's last segment on the wire is %v, want its SYN-ACK", last)
	}
	var probes []Segment
	var rst *Segment
	for i, s := range segs {
		switch {
		case s.At <= last.At || s.Dir != In:
		case s.Flags == header.TCPFlagAck && s.Seq == last.Ack && s.Len == 0 && len(probes) == 0:
			// the handshake's final ACK
		case isProbe(s, last.Ack):
			probes = append(probes, s)
		case s.Flags&header.TCPFlagRst != 0 && rst == nil:
			rst = &segs[i]
		default:
			t.Errorf("unexpected segment from the kernel: %v", s)
		}
	}
	if len(probes) != 3 || rst == nil {
		t.Fatalf("got %d probes and RST %v, want 3 probes then an RST", len(probes), rst)
	}
	for i, s := range probes {
		t.Logf("probe %d at +%s (seq %d = the tester's ack - 1)", i+1, ms(s.At.Sub(last.At)), s.Seq)
	}
	t.Logf("RST (%s) at +%s, %s after probe 3", rst.FlagString(), ms(rst.At.Sub(last.At)), ms(rst.At.Sub(probes[2].At)))
	t.Logf("recv: ETIMEDOUT at +%s, %s after the RST", ms(ev.At.Sub(last.At)), ms(ev.At.Sub(rst.At)))

	between(t, "probe 1 after the last receive", probes[0].At.Sub(last.At), firstProbeMin, firstProbeMax+slack)
	within(t, "probe 2 after probe 1", probes[1].At.Sub(probes[0].At), interval, slack)
	within(t, "probe 3 after probe 2", probes[2].At.Sub(probes[1].At), interval, slack)
	within(t, "RST after probe 3", rst.At.Sub(probes[2].At), interval, slack)
	if rst.Flags&^(header.TCPFlagRst|header.TCPFlagAck) != 0 || rst.Seq != last.Ack {
		t.Errorf("RST %v: want flags R or RA and seq = SND.NXT (%d)", rst, last.Ack)
	}
	within(t, "ETIMEDOUT after the RST", ev.At.Sub(rst.At), 0, slack)
}

// TestKernelProbeAnsweredByTester: the tester stays alive, so gVisor
// answers each probe with an ACK; Linux then waits a full idle time after
// that answer before the next probe, and never gives up.
func TestKernelProbeAnsweredByTester(t *testing.T) {
	rec := &recorder{}
	lab := newTestLab(t, Options{OnSegment: rec.add})
	p := lab.Peer()
	fd, _ := keepAliveConn(t, lab)
	setKeepAlive(t, p, fd, 2, 1, 3)
	must(t, "recv", 0)(p.Recv(fd, 1))

	var synack Segment
	for _, s := range rec.all() {
		if s.Dir == Out && s.Flags == header.TCPFlagSyn|header.TCPFlagAck {
			synack = s
		}
	}
	// Watch until 7 s after the last receive: three probes, each answered.
	time.Sleep(time.Until(time.Now().Add(synack.At.Sub(Now()) + 7*time.Second)))
	select {
	case ev := <-p.Events():
		t.Fatalf("the pending recv returned: %v", ev)
	default:
	}

	segs := rec.all()
	for _, s := range segs {
		t.Logf("%d %v", s.At, s)
	}
	checkKernelTimes(t, segs)
	var probes, answers []Segment
	for _, s := range segs {
		switch {
		case s.At <= synack.At:
		case s.Flags&header.TCPFlagRst != 0:
			t.Errorf("a reset: %v", s)
		case isProbe(s, synack.Ack):
			probes = append(probes, s)
		case s.Dir == Out && s.Flags == header.TCPFlagAck && s.Len == 0 && len(probes) > len(answers):
			answers = append(answers, s)
		}
	}
	if len(probes) != 3 || len(answers) != 3 {
		t.Fatalf("got %d probes and %d answers within 7s, want 3 and 3", len(probes), len(answers))
	}
	for i := range probes {
		t.Logf("probe %d at +%s, answered %s later (ack %d)", i+1, ms(probes[i].At.Sub(synack.At)), answers[i].At.Sub(probes[i].At), answers[i].Ack)
		if answers[i].Ack != probes[i].Seq+1 {
			t.Errorf("answer %d acks %d, want RCV.NXT %d", i+1, answers[i].Ack, probes[i].Seq+1)
		}
	}
	between(t, "probe 1 after the last receive", probes[0].At.Sub(synack.At), firstProbeMin, firstProbeMax+slack)
	for i := 1; i < 3; i++ {
		t.Logf("probe %d after probe %d: %s", i+1, i, ms(probes[i].At.Sub(probes[i-1].At)))
		within(t, "probe spacing with answers", probes[i].At.Sub(probes[i-1].At), answeredSpacing, slack)
	}
}

// Linux's timer wheel with HZ=250: a timer more than 63 jiffies away lands
// on an 8-jiffy (32 ms) boundary, so 1 s (250 jiffies) between two
// boundary-aligned expiries becomes 256 jiffies, and a probe answered after
// an interval waits the rest of the idle time, 244 jiffies rounded to 248:
// 256+248 = 504 jiffies. The first probe's timer starts from the last
// receive, which the kernel keeps in jiffies (up to 4 ms early), and lands
// on the next boundary after idle (up to 32 ms late).
const (
	interval        = 1024 * time.Millisecond
	answeredSpacing = 2016 * time.Millisecond
	firstProbeMin   = 2*time.Second - 4*time.Millisecond
	firstProbeMax   = 2*time.Second + 32*time.Millisecond
)

// slack is what the times may stray from the kernel's by the time the
// tester sees them. Measured on a 2-core machine over 20 runs of both tests,
// the spacings strayed at most 2 ms from 1.024 s and 2.016 s, and 4 ms
// (8 ms once) with the race detector while two other race-enabled test
// binaries kept both cores busy; recv's ETIMEDOUT came within 4 ms of the
// tester seeing the RST (usually 0.1 ms before it). 20 ms leaves room for a
// busy CI machine and still tells 1.024 s from 1 s.
const slack = 20 * time.Millisecond

func within(t *testing.T, what string, got, want, slack time.Duration) {
	t.Helper()
	if got < want-slack || got > want+slack {
		t.Errorf("%s: %s, want %s ± %s", what, ms(got), ms(want), ms(slack))
	}
}

func between(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s: %s, want %s to %s", what, ms(got), ms(lo), ms(hi))
	}
}
