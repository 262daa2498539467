package gvisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"

	"kasim/internal/dut"
	"kasim/internal/livetest"
)

// The lab of the live tests: the driver on a TAP device in a namespace of
// its own, and the kernel of that namespace, on the TAP device's other
// side, playing kasim's tester.
const (
	labIf        = "kd0"
	labDUTAddr   = "10.99.0.2/24"
	labDUTMAC    = "02:00:0a:63:00:02"
	labTester    = "10.99.0.1"
	labTesterMAC = "02:00:0a:63:00:01"
	labPort      = 7000
)

// testNS is a network namespace with no name: it goes when its handle is
// closed and no thread is in it any more.
type testNS struct {
	h  netns.NsHandle
	nl *netlink.Handle
}

// do runs fn on a thread of its own inside the namespace. The thread is
// never unlocked, so it ends with fn's goroutine instead of going back to
// the Go scheduler in the wrong namespace.
func (ns *testNS) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns.h); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// newLab makes the namespace: lo up, IPv6 off, the TAP device kd0 with
// the tester's MAC and address, up, and a permanent neighbour entry for
// the driver (so the kernel sends no ARP).
func newLab(t *testing.T) *testNS {
	t.Helper()
	livetest.Need(t)
	hc := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread is in the new namespace
		h, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		hc <- h
	}()
	ns := &testNS{}
	select {
	case ns.h = <-hc:
	case err := <-errc:
		t.Fatalf("making a network namespace: %v", err)
	}
	t.Cleanup(func() { ns.h.Close() })
	nl, err := netlink.NewHandleAt(ns.h)
	if err != nil {
		t.Fatalf("netlink in the namespace: %v", err)
	}
	ns.nl = nl
	t.Cleanup(nl.Close)
	err = ns.do(func() error {
		for _, conf := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		// A persistent TAP device, as kasim makes it: the driver
		// attaches to it with TUNSETIFF.
		fd, err := tun.OpenTAP(labIf)
		if err != nil {
			return fmt.Errorf("creating %s: %v", labIf, err)
		}
		defer unix.Close(fd)
		return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1)
	})
	if err != nil {
		t.Fatalf("setting up the namespace: %v", err)
	}
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo: %v", err)
	}
	link, err := nl.LinkByName(labIf)
	if err != nil {
		t.Fatalf("%s: %v", labIf, err)
	}
	t.Cleanup(func() { nl.LinkDel(link) })
	mac, _ := net.ParseMAC(labTesterMAC)
	dutMAC, _ := net.ParseMAC(labDUTMAC)
	addr, _ := netlink.ParseAddr(labTester + "/24")
	if err := nl.LinkSetHardwareAddr(link, mac); err != nil {
		t.Fatalf("%s's MAC: %v", labIf, err)
	}
	if err := nl.AddrAdd(link, addr); err != nil {
		t.Fatalf("%s's address: %v", labIf, err)
	}
	if err := nl.LinkSetUp(link); err != nil {
		t.Fatalf("%s up: %v", labIf, err)
	}
	if err := nl.NeighAdd(&netlink.Neigh{
		LinkIndex: link.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: net.ParseIP(strings.Split(labDUTAddr, "/")[0]), HardwareAddr: dutMAC,
	}); err != nil {
		t.Fatalf("the neighbour entry for the driver: %v", err)
	}
	return ns
}

// silence makes the kernel deaf and mute to the driver: without its
// address, it drops the driver's segments (not for it, and it does not
// forward) and answers none.
func (ns *testNS) silence(t *testing.T) {
	t.Helper()
	link, err := ns.nl.LinkByName(labIf)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr(labTester + "/24")
	if err := ns.nl.AddrDel(link, addr); err != nil {
		t.Fatalf("removing the tester's address: %v", err)
	}
}

// listen opens the kernel's listening socket, the tester's, in the lab.
func (ns *testNS) listen(t *testing.T) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	err := ns.do(func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf("%s:%d", labTester, labPort))
		return err
	})
	if err != nil {
		t.Fatalf("listening in the lab: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// runDriver starts Run in the lab, as kasim starts the driver, and
// returns the client speaking to it. The cleanup ends its input and checks
// that it returns 0.
func (ns *testNS) runDriver(t *testing.T) *client {
	t.Helper()
	env := map[string]string{
		dut.EnvProtocol: "1", dut.EnvIf: labIf, dut.EnvAddr: labDUTAddr, dut.EnvMAC: labDUTMAC,
		dut.EnvTesterAddr: labTester, dut.EnvTesterMAC: labTesterMAC,
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errw syncBuffer
	done := make(chan int, 1)
	go ns.do(func() error {
		// TUNSETIFF happens in Run, on this thread, in the lab.
		code := Run(inR, outW, &errw, func(k string) string { return env[k] })
		outW.Close()
		done <- code
		return nil
	})
	t.Cleanup(func() {
		inW.Close()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("Run returned %d at the end of input, want 0 (stderr: %q)", code, errw.String())
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of the end of input")
		}
	})
	return newClient(t, inW, outR)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// segment is a TCP segment seen on kd0.
type segment struct {
	t        int64 // CLOCK_MONOTONIC when read
	fromDUT  bool
	seq, ack uint32
	flags    header.TCPFlags
	len      int
}

func (s segment) String() string {
	dir := "tester->dut"
	if s.fromDUT {
		dir = "dut->tester"
	}
	return fmt.Sprintf("%.6f %s %s seq=%d ack=%d len=%d", float64(s.t)/1e9, dir, s.flags, s.seq, s.ack, s.len)
}

// capture records the TCP segments on kd0, both ways, from an AF_PACKET
// socket in the lab, until stop is called.
type capture struct {
	fd   int
	mu   sync.Mutex
	segs []segment
	stop func()
}

func (ns *testNS) capture(t *testing.T) *capture {
	t.Helper()
	var fd int
	err := ns.do(func() error {
		link, err := net.InterfaceByName(labIf)
		if err != nil {
			return err
		}
		proto := int(uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8) // htons
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: link.Index})
	})
	if err != nil {
		t.Fatalf("capturing on %s: %v", labIf, err)
	}
	c := &capture{fd: fd}
	quit := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer unix.Close(fd)
		buf := make([]byte, 2048)
		dutIP := net.ParseIP(strings.Split(labDUTAddr, "/")[0]).To4()
		for {
			select {
			case <-quit:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			at := now()
			if err != nil {
				continue // the timeout, to look at quit
			}
			eth := header.Ethernet(buf[:n])
			if n < header.EthernetMinimumSize+header.IPv4MinimumSize || eth.Type() != header.IPv4ProtocolNumber {
				continue
			}
			ip := header.IPv4(buf[header.EthernetMinimumSize:n])
			if !ip.IsValid(n-header.EthernetMinimumSize) || ip.TransportProtocol() != header.TCPProtocolNumber {
				continue
			}
			tcp := header.TCP(ip.Payload())
			src := ip.SourceAddress().As4()
			c.mu.Lock()
			c.segs = append(c.segs, segment{
				t: at, fromDUT: bytes.Equal(src[:], dutIP),
				seq: tcp.SequenceNumber(), ack: tcp.AckNumber(), flags: tcp.Flags(),
				len: len(ip.Payload()) - int(tcp.DataOffset()),
			})
			c.mu.Unlock()
		}
	}()
	var once sync.Once
	c.stop = func() { once.Do(func() { close(quit); <-ended }) }
	t.Cleanup(c.stop)
	return c
}

// stray sends, from the kernel's side of kd0, an IPv4 frame for a MAC that
// is not the driver's: on a real link a NIC drops it; gVisor's fdbased
// stops reading for good if it reads one.
func (c *capture) stray(t *testing.T) {
	t.Helper()
	frame := make([]byte, header.EthernetMinimumSize+header.IPv4MinimumSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{
		SrcAddr: "\x02\x00\x0a\x63\x00\x01", DstAddr: "\x02\x00\x0a\x63\x00\x99", Type: header.IPv4ProtocolNumber,
	})
	if err := unix.Send(c.fd, frame, 0); err != nil {
		t.Fatalf("sending a stray frame: %v", err)
	}
}

func (c *capture) segments() []segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.segs)
}

// tcpdump runs tcpdump -i kd0 -tt -n in the lab when KASIM_TCPDUMP=1, and
// logs what it printed at the end of the test: the measurement the
// package's tests report come from it.
func (ns *testNS) tcpdump(t *testing.T) {
	if os.Getenv("KASIM_TCPDUMP") != "1" {
		return
	}
	var out syncBuffer
	var cmd *exec.Cmd
	err := ns.do(func() error {
		cmd = exec.Command("tcpdump", "-i", labIf, "-tt", "-n", "-l", "-v")
		cmd.Stdout, cmd.Stderr = &out, &out
		return cmd.Start()
	})
	if err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // tcpdump's start
	t.Cleanup(func() {
		time.Sleep(200 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		t.Logf("tcpdump -i %s -tt -n -v:\n%s", labIf, out.String())
	})
}

// TestLiveKeepalive runs the driver on a TAP device against the kernel and
// holds real-time gVisor to its keep-alive: after idle 1 s, two probes 1 s
// apart, each a zero-length ACK at SND.NXT-1, and a blocked recv that
// fails with ETIMEDOUT when the second goes unanswered for 1 s, with no
// reset on the wire.
func TestLiveKeepalive(t *testing.T) {
	ns := newLab(t)
	ln := ns.listen(t)
	capt := ns.capture(t)
	ns.tcpdump(t)
	c := ns.runDriver(t)

	hello := c.next(10 * time.Second)
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
	capt.stray(t)

	fd := c.ok(dut.Request{Op: dut.OpSocket})
	c.ok(opt(dut.OpSetsockopt, fd, dut.SOL_SOCKET, dut.SO_KEEPALIVE, 1))
	c.ok(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 1))
	c.ok(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPINTVL, 1))
	c.ok(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPCNT, 2))
	if v := c.ok(opt(dut.OpGetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 0)); v != 1 {
		t.Fatalf("getsockopt TCP_KEEPIDLE = %d, want 1", v)
	}
	c.errno(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPCNT, 200), "EINVAL", 22)

	conn := c.errno(dut.Request{Op: dut.OpConnect, FD: fd, Addr: fmt.Sprintf("%s:%d", labTester, labPort)}, "EINPROGRESS", 115)
	if r := c.report(conn.ID, dut.EventConnect, 5*time.Second); r.Ret != 0 || r.ErrnoName != "" {
		t.Fatalf("connect report: got %+v, want success", r)
	}
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	kc, err := ln.Accept()
	if err != nil {
		t.Fatalf("the kernel's accept: %v", err)
	}
	defer kc.Close()

	// One octet from the kernel: gVisor arms keep-alive when it
	// processes a segment on an established connection (a handshake
	// alone does not: see TestLiveKeepaliveNotArmed).
	recv := c.call(dut.Request{Op: dut.OpRecv, FD: fd, N: 16})
	if _, err := kc.Write([]byte{'x'}); err != nil {
		t.Fatalf("the kernel's write: %v", err)
	}
	if r := c.report(recv.ID, dut.EventRecv, 5*time.Second); r.Ret != 1 || r.ErrnoName != "" {
		t.Fatalf("recv of the kernel's octet: got %+v, want 1", r)
	}
	ns.silence(t)
	recv = c.call(dut.Request{Op: dut.OpRecv, FD: fd, N: 16})
	r := c.report(recv.ID, dut.EventRecv, 8*time.Second)
	wantErrno(t, "recv after the silence", r, "ETIMEDOUT", 110)
	time.Sleep(300 * time.Millisecond) // for a reset, were there one
	capt.stop()

	// The wire: the octet, the driver's ACK, then the probes.
	segs := capt.segments()
	logSegments(t, segs)
	t.Logf("recv report at %.6f", float64(r.T)/1e9)
	data := slices.IndexFunc(segs, func(s segment) bool { return !s.fromDUT && s.len == 1 })
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
		t.Fatalf("got %d probes (zero-length ACKs at SND.NXT-1=%d), want 2", len(probes), last.ack-1)
	}
	within(t, "last segment received -> first probe", time.Duration(probes[0].t-last.t), time.Second)
	within(t, "first probe -> second probe", time.Duration(probes[1].t-probes[0].t), time.Second)
	within(t, "second probe -> ETIMEDOUT", time.Duration(r.T-probes[1].t), time.Second)
}

// probesAfter sorts the driver's segments after last, the last one it
// received: the keep-alive probes (zero-length ACKs at SND.NXT-1,
// acknowledging all of last; a SYN-ACK counts as one octet), the ACK
// of last, and others. A segment from the kernel fails the test: it was
// to be silent.
func probesAfter(t *testing.T, segs []segment, last segment) (probes, others []segment) {
	t.Helper()
	rcvNxt := last.seq + uint32(last.len)
	if last.flags&(header.TCPFlagSyn|header.TCPFlagFin) != 0 {
		rcvNxt++
	}
	for _, s := range segs {
		switch {
		case !s.fromDUT:
			t.Fatalf("the silent kernel sent %v", s)
		case s.len == 0 && s.flags == header.TCPFlagAck && s.seq == last.ack-1 && s.ack == rcvNxt:
			probes = append(probes, s)
		case s.len == 0 && s.flags == header.TCPFlagAck && s.seq == last.ack:
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

func logSegments(t *testing.T, segs []segment) {
	t.Helper()
	var b strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&b, "  %v\n", s)
	}
	t.Logf("segments on %s:\n%s", labIf, b.String())
}

// TestLiveKeepaliveNotArmed holds real-time gVisor to a quirk kasim's
// gvisor profile documents: keep-alive switched on before connect is not
// armed by the handshake, only by a segment processed once established
// (tcp/connect.go, handleSegmentsLocked) or an option set then
// (resetKeepaliveTimer). With a peer silent after the handshake, no probe
// goes until the application sets an option again.
func TestLiveKeepaliveNotArmed(t *testing.T) {
	ns := newLab(t)
	ln := ns.listen(t)
	capt := ns.capture(t)
	c := ns.runDriver(t)
	if h := c.next(10 * time.Second); h.Event != dut.EventHello {
		t.Fatalf("first line: got %+v, want the hello", h)
	}
	fd := c.ok(dut.Request{Op: dut.OpSocket})
	c.ok(opt(dut.OpSetsockopt, fd, dut.SOL_SOCKET, dut.SO_KEEPALIVE, 1))
	c.ok(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 1))
	c.ok(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPINTVL, 1))
	c.ok(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPCNT, 2))
	conn := c.errno(dut.Request{Op: dut.OpConnect, FD: fd, Addr: fmt.Sprintf("%s:%d", labTester, labPort)}, "EINPROGRESS", 115)
	if r := c.report(conn.ID, dut.EventConnect, 5*time.Second); r.Ret != 0 || r.ErrnoName != "" {
		t.Fatalf("connect report: got %+v, want success", r)
	}
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	kc, err := ln.Accept()
	if err != nil {
		t.Fatalf("the kernel's accept: %v", err)
	}
	defer kc.Close()
	ns.silence(t)
	recv := c.call(dut.Request{Op: dut.OpRecv, FD: fd, N: 16})

	// Armed, the first probe would go 1 s after the handshake.
	c.none(recv.ID, 2500*time.Millisecond)
	segs := capt.segments()
	hs := slices.IndexFunc(segs, func(s segment) bool { return !s.fromDUT && s.flags == header.TCPFlagSyn|header.TCPFlagAck })
	if hs < 0 {
		logSegments(t, segs)
		t.Fatalf("no SYN-ACK in the capture")
	}
	if probes, others := probesAfter(t, segs[hs+1:], segs[hs]); len(probes) != 0 || len(others) != 0 {
		logSegments(t, segs)
		t.Fatalf("before any option was set again the driver sent probes %v and %v; want nothing", probes, others)
	}

	// Setting an option arms it: idle 1 s from now, then 2 probes.
	set := c.call(opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 1))
	r := c.report(recv.ID, dut.EventRecv, 6*time.Second)
	wantErrno(t, "recv after the option", r, "ETIMEDOUT", 110)
	capt.stop()
	segs = capt.segments()
	probes, _ := probesAfter(t, segs[hs+1:], segs[hs])
	if len(probes) != 2 {
		logSegments(t, segs)
		t.Fatalf("after setting TCP_KEEPIDLE: %d probes, want 2", len(probes))
	}
	within(t, "setsockopt -> first probe", time.Duration(probes[0].t-set.T), time.Second)
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
