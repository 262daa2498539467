package gvisor

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"kasim/internal/dut"
	"kasim/internal/dut/duttest"
)

// labPort is where the kernel, the tester in the lab, listens.
const labPort = 7000

// runDriver builds the lab (duttest.NewLab), with the kernel listening on
// labPort, a capture of kd0 and, with KASIM_TCPDUMP=1, tcpdump, and
// starts Run in it as kasim starts the driver.
func runDriver(t *testing.T) (*duttest.Lab, *net.TCPListener, *duttest.Capture, *duttest.Client) {
	t.Helper()
	lab := duttest.NewLab(t)
	ln := lab.Listen(t, labPort)
	capt := lab.Capture(t)
	lab.Tcpdump(t)
	// TUNSETIFF happens in Run, on the lab's thread that serves it.
	c := lab.Serve(t, func(in io.Reader, out, errw io.Writer) int { return Run(in, out, errw, duttest.Getenv) })
	return lab, ln, capt, c
}

// connectKeepalive opens a socket with keep-alive on (idle 1 s, interval
// 1 s, 2 probes) and connects it to the kernel, which accepts. setup runs
// between the options and the connect.
func connectKeepalive(t *testing.T, c *duttest.Client, ln *net.TCPListener, setup func(fd int)) (int, net.Conn) {
	t.Helper()
	fd := c.OK(dut.Request{Op: dut.OpSocket})
	c.Keepalive(fd, 1, 1, 2)
	setup(fd)
	c.Connect(fd, fmt.Sprintf("%s:%d", duttest.TesterAddr, labPort))
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	kc, err := ln.Accept()
	if err != nil {
		t.Fatalf("the kernel's accept: %v", err)
	}
	t.Cleanup(func() { kc.Close() })
	return fd, kc
}

// TestLiveKeepalive runs the driver on a TAP device against the kernel and
// holds real-time gVisor to its keep-alive: after idle 1 s, two probes 1 s
// apart, each a zero-length ACK at SND.NXT-1, and a blocked recv that
// fails with ETIMEDOUT when the second goes unanswered for 1 s, with no
// reset on the wire.
func TestLiveKeepalive(t *testing.T) {
	lab, ln, capt, c := runDriver(t)

	hello := c.Next(10 * time.Second)
	if hello.Event != dut.EventHello || hello.Protocol != 1 || hello.Stack != "gVisor netstack" ||
		hello.API != "posix" || hello.Ret != os.Getpid() || hello.Version != goModVersion(t, "gvisor.dev/gvisor") ||
		!slices.Equal(hello.Options, []string{"SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT"}) {
		t.Fatalf("hello: got %+v", hello)
	}
	if d := now() - hello.T; d < 0 || d > int64(10*time.Second) {
		t.Fatalf("hello: t=%d is %v from now on CLOCK_MONOTONIC", hello.T, time.Duration(d))
	}

	// The driver's MAC filter keeps gVisor's link reading past a frame
	// for another station.
	capt.Stray(t)

	fd, kc := connectKeepalive(t, c, ln, func(fd int) {
		if v := c.OK(duttest.Opt(dut.OpGetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 0)); v != 1 {
			t.Fatalf("getsockopt TCP_KEEPIDLE = %d, want 1", v)
		}
		c.Errno(duttest.Opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPCNT, 200), "EINVAL", 22)
	})

	// One octet from the kernel: gVisor arms keep-alive when it
	// processes a segment on an established connection (a handshake
	// alone does not: see TestLiveKeepaliveNotArmed).
	recv := c.Call(dut.Request{Op: dut.OpRecv, FD: fd, N: 16})
	if _, err := kc.Write([]byte{'x'}); err != nil {
		t.Fatalf("the kernel's write: %v", err)
	}
	if r := c.Report(recv.ID, dut.EventRecv, 5*time.Second); r.Ret != 1 || r.ErrnoName != "" {
		t.Fatalf("recv of the kernel's octet: got %+v, want 1", r)
	}
	lab.Silence(t)
	recv = c.Call(dut.Request{Op: dut.OpRecv, FD: fd, N: 16})
	r := c.Report(recv.ID, dut.EventRecv, 8*time.Second)
	c.CheckErrno(r, "ETIMEDOUT", 110)
	time.Sleep(300 * time.Millisecond) // for a reset, were there one
	capt.Stop()

	// The wire: the octet, the driver's ACK, then the probes.
	segs := capt.Segments()
	duttest.LogSegments(t, segs)
	t.Logf("recv report at %.6f", float64(r.T)/1e9)
	data := slices.IndexFunc(segs, func(s duttest.Segment) bool { return !s.FromDUT && s.Len == 1 })
	if data < 0 {
		t.Fatalf("the kernel's octet is not in the capture")
	}
	last := segs[data]
	probes, others := probesAfter(t, segs[data+1:], last)
	if len(others) != 0 {
		// gVisor aborts on keep-alive without a reset
		// (tcp/connect.go, resetConnectionLocked: none for ErrTimeout).
		t.Errorf("after the octet's ACK the driver sent %v besides its probes; want nothing", others)
	}
	if len(probes) != 2 {
		t.Fatalf("got %d probes (zero-length ACKs at SND.NXT-1=%d), want 2", len(probes), last.Ack-1)
	}
	within(t, "last segment received -> first probe", time.Duration(probes[0].T-last.T), time.Second)
	within(t, "first probe -> second probe", time.Duration(probes[1].T-probes[0].T), time.Second)
	within(t, "second probe -> ETIMEDOUT", time.Duration(r.T-probes[1].T), time.Second)
}

// probesAfter sorts the driver's segments after last, the last one it
// received: the keep-alive probes (zero-length ACKs at SND.NXT-1,
// acknowledging all of last; a SYN-ACK counts as one octet), the ACK
// of last, and others. A segment from the kernel fails the test: it was
// to be silent.
func probesAfter(t *testing.T, segs []duttest.Segment, last duttest.Segment) (probes, others []duttest.Segment) {
	t.Helper()
	rcvNxt := last.Seq + uint32(last.Len)
	if last.Flags&(header.TCPFlagSyn|header.TCPFlagFin) != 0 {
		rcvNxt++
	}
	for _, s := range segs {
		switch {
		case !s.FromDUT:
			t.Fatalf("the silent kernel sent %v", s)
		case s.Len == 0 && s.Flags == header.TCPFlagAck && s.Seq == last.Ack-1 && s.Ack == rcvNxt:
			probes = append(probes, s)
		case s.Len == 0 && s.Flags == header.TCPFlagAck && s.Seq == last.Ack:
			// The ACK of last.
		default:
			others = append(others, s)
		}
	}
	return probes, others
}

func within(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got < want-300*time.Millisecond || got > want+300*time.Millisecond {
		t.Errorf("%s: %v, want %v ± 300ms", what, got, want)
	}
}

// TestLiveKeepaliveNotArmed holds real-time gVisor to a quirk kasim's
// gvisor profile documents: keep-alive switched on before connect is not
// armed by the handshake, only by a segment processed once established
// (tcp/connect.go, handleSegmentsLocked) or an option set then
// (resetKeepaliveTimer). With a peer silent after the handshake, no probe
// goes until the application sets an option again.
func TestLiveKeepaliveNotArmed(t *testing.T) {
	lab, ln, capt, c := runDriver(t)
	if h := c.Next(10 * time.Second); h.Event != dut.EventHello {
		t.Fatalf("first line: got %+v, want the hello", h)
	}
	fd, _ := connectKeepalive(t, c, ln, func(int) {})
	lab.Silence(t)
	recv := c.Call(dut.Request{Op: dut.OpRecv, FD: fd, N: 16})

	// Armed, the first probe would go 1 s after the handshake.
	c.None(recv.ID, 2500*time.Millisecond)
	segs := capt.Segments()
	hs := slices.IndexFunc(segs, func(s duttest.Segment) bool { return !s.FromDUT && s.Flags == header.TCPFlagSyn|header.TCPFlagAck })
	if hs < 0 {
		duttest.LogSegments(t, segs)
		t.Fatalf("no SYN-ACK in the capture")
	}
	if probes, others := probesAfter(t, segs[hs+1:], segs[hs]); len(probes) != 0 || len(others) != 0 {
		duttest.LogSegments(t, segs)
		t.Fatalf("before any option was set again the driver sent probes %v and %v; want nothing", probes, others)
	}

	// Setting an option arms it: idle 1 s from now, then 2 probes.
	set := c.Returns(duttest.Opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 1), 0)
	r := c.Report(recv.ID, dut.EventRecv, 6*time.Second)
	c.CheckErrno(r, "ETIMEDOUT", 110)
	capt.Stop()
	segs = capt.Segments()
	probes, _ := probesAfter(t, segs[hs+1:], segs[hs])
	if len(probes) != 2 {
		duttest.LogSegments(t, segs)
		t.Fatalf("after setting TCP_KEEPIDLE: %d probes, want 2", len(probes))
	}
	within(t, "setsockopt -> first probe", time.Duration(probes[0].T-set.T), time.Second)
	within(t, "setsockopt -> ETIMEDOUT", time.Duration(r.T-set.T), 3*time.Second)
}

// goModVersion is the version of module that kasim's go.mod requires.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	t.Fatalf("go.mod does not require %s", module)
	return ""
}
