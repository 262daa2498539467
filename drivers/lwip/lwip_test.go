//go:build linux

package lwip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"kasim/internal/dut"
	"kasim/internal/dut/duttest"
)

// requireEnv makes a missing liblwip-dev a failure instead of a skip.
const requireEnv = "KASIM_REQUIRE_LWIP"

// buildDir holds the driver this test binary builds, once.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kasim-lwip-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// driver builds the driver, or skips (fails, with KASIM_REQUIRE_LWIP=1)
// where lwIP or a compiler is missing.
func driver(t *testing.T) string {
	t.Helper()
	path, err := Build(buildDir)
	if errors.Is(err, ErrNoLwIP) || errors.Is(err, ErrNoCompiler) {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s=1, but: %v", requireEnv, err)
		}
		t.Skipf("lwIP driver test skipped: %v (set %s=1 to make this a failure)", err, requireEnv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBuildReuses(t *testing.T) {
	path := driver(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(path), "kasim-dut-lwip-") || fi.Mode()&0o111 == 0 {
		t.Fatalf("Build returned %s (mode %v): want an executable kasim-dut-lwip-HASH", path, fi.Mode())
	}
	again, err := Build(buildDir)
	if err != nil {
		t.Fatal(err)
	}
	fi2, err := os.Stat(again)
	if err != nil {
		t.Fatal(err)
	}
	if again != path || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("second Build: %s (modified %v), want %s reused (modified %v)", again, fi2.ModTime(), path, fi.ModTime())
	}
	if left, _ := filepath.Glob(filepath.Join(buildDir, ".build-*")); len(left) > 0 {
		t.Errorf("Build left temporary files: %v", left)
	}
}

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildErrors(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no /bin/sh for the fake tools")
	}
	sh, _ := exec.LookPath("sh")
	tools := t.TempDir()
	if err := os.Symlink(sh, filepath.Join(tools, "sh")); err != nil {
		t.Fatal(err)
	}
	cc := writeScript(t, tools, "fakecc", `echo "kasim-dut-lwip.c:1:1: error: the fake compiler says no" >&2; exit 1`)
	t.Setenv("CC", cc)

	t.Run("no pkg-config", func(t *testing.T) {
		t.Setenv("PATH", tools)
		_, err := Build(t.TempDir())
		if !errors.Is(err, ErrNoLwIP) || !strings.Contains(err.Error(), "apt-get install liblwip-dev") {
			t.Fatalf("Build without pkg-config: %v, want ErrNoLwIP", err)
		}
	})
	t.Run("no lwip.pc", func(t *testing.T) {
		bin := t.TempDir()
		writeScript(t, bin, "pkg-config", `echo "Package lwip was not found in the pkg-config search path." >&2; exit 1`)
		t.Setenv("PATH", bin+":"+tools)
		_, err := Build(t.TempDir())
		if !errors.Is(err, ErrNoLwIP) || !strings.Contains(err.Error(), "Package lwip was not found") {
			t.Fatalf("Build with pkg-config failing: %v, want ErrNoLwIP quoting pkg-config", err)
		}
	})
	t.Run("compile error", func(t *testing.T) {
		bin := t.TempDir()
		writeScript(t, bin, "pkg-config", `echo "-I/usr/include/lwip -llwip"`)
		t.Setenv("PATH", bin+":"+tools)
		dir := t.TempDir()
		_, err := Build(dir)
		if err == nil || errors.Is(err, ErrNoLwIP) || !strings.Contains(err.Error(), "the fake compiler says no") {
			t.Fatalf("Build with a failing compiler: %v, want the compiler's output", err)
		}
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("a failed Build left %d files in its directory", len(left))
		}
	})
	t.Run("no compiler", func(t *testing.T) {
		t.Setenv("CC", filepath.Join(tools, "no-such-cc"))
		_, err := Build(t.TempDir())
		if !errors.Is(err, ErrNoCompiler) {
			t.Fatalf("Build with CC missing: %v, want ErrNoCompiler", err)
		}
	})
}

// TestRefusesBadEnvironment needs no root: the driver checks its
// environment before it touches a device.
func TestRefusesBadEnvironment(t *testing.T) {
	path := driver(t)
	good := duttest.Env()
	good[dut.EnvIf] = "lo" // an interface that exists, though no TAP device
	for _, c := range []struct{ name, value, want string }{
		{"KASIM_DUT_IF", "", "KASIM_DUT_IF=(unset)"},
		{"KASIM_DUT_IF", "no-such-if0", "an existing TAP device"},
		{"KASIM_DUT_ADDR", "10.99.0.2", "KASIM_DUT_ADDR=10.99.0.2: want an IPv4 address and prefix"},
		{"KASIM_DUT_ADDR", "10.99.0.300/24", "KASIM_DUT_ADDR"},
		{"KASIM_DUT_MAC", "02:00:0a:63:00", "KASIM_DUT_MAC"},
		{"KASIM_TESTER_ADDR", "tester", "KASIM_TESTER_ADDR"},
		{"KASIM_TESTER_MAC", "", "KASIM_TESTER_MAC=(unset)"},
		{"KASIM_DUT_PROTOCOL", "2", "KASIM_DUT_PROTOCOL=2"},
	} {
		cmd := exec.Command(path)
		cmd.Env = []string{}
		for k, v := range good {
			if k != c.name {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		if c.value != "" {
			cmd.Env = append(cmd.Env, c.name+"="+c.value)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), c.want) || stdout.Len() > 0 {
			t.Errorf("%s=%q: %v, stdout %q, stderr %q: want exit 2, nothing on stdout and a message with %q",
				c.name, c.value, err, stdout.String(), stderr.String(), c.want)
		}
	}
}

// The lab (duttest.NewLab): the kernel on kd0's other side is the tester,
// 10.99.0.1, listening on port 7000; the driver runs lwIP on this side,
// 10.99.0.2.
const port = 7000

// tapif's low_level_init gives every netif this MAC; the driver must
// replace it before anything goes on the wire.
var tapifMAC = net.HardwareAddr{0x02, 0x12, 0x34, 0x56, 0x78, 0xab}

// TestLive runs the driver against the namespace's kernel: the protocol's
// hello, requests and reports, its robustness against bad lines, and
// lwIP's keep-alive on the wire until it gives up.
func TestLive(t *testing.T) {
	path := driver(t)
	lab := duttest.NewLab(t)
	// The kernel asks for lwIP's MAC by ARP: lwIP's answers go on the
	// wire too, and under the MAC check below.
	lab.ResolveByARP(t)
	ln := lab.Listen(t, port)
	capt := lab.Capture(t)
	lab.Tcpdump(t)
	start := duttest.Now()
	// The cleanup closes stdin: the driver must exit 0 at once.
	c := lab.Start(t, path)

	// The kernel's end of the connection: it accepts, sends 5 octets and
	// then says nothing more.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("hello"))
		accepted <- c
	}()

	hello := c.Next(10 * time.Second)
	if hello.Event != dut.EventHello || hello.Protocol != 1 || hello.Stack != "lwIP" || hello.API != dut.APIPOSIX ||
		!strings.HasPrefix(hello.Version, "2.") || hello.Ret != c.Pid() ||
		hello.T < start || hello.T > duttest.Now() {
		t.Fatalf("hello %s: want protocol 1, stack lwIP, api posix, ret the pid %d, t between %d and now", duttest.Line(hello), c.Pid(), start)
	}
	for _, o := range []string{"SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"} {
		if !slices.Contains(hello.Options, o) {
			t.Errorf("hello's options %v lack %s", hello.Options, o)
		}
	}
	if slices.Contains(hello.Options, "TCP_USER_TIMEOUT") {
		t.Errorf("hello's options %v list TCP_USER_TIMEOUT, which lwIP lacks", hello.Options)
	}
	t.Logf("hello: %s", duttest.Line(hello))

	tcpOpt := func(op string, fd int, name string, v int) dut.Request {
		return duttest.Opt(op, fd, dut.IPPROTO_TCP, name, v)
	}
	t.Run("robustness", func(t *testing.T) {
		defer c.For(t)()
		c.WriteLine(`{"id":1,"op":`) // line 1
		c.CheckFail(c.Next(5*time.Second), 0, "line 1: not JSON")
		c.WriteLine(strings.Repeat("x", 70*1024)) // line 2: over 64 KiB
		c.CheckFail(c.Next(5*time.Second), 0, "line 2: longer than")
		c.Fails(dut.Request{Op: "frob"}, `unknown op "frob"`) // id 101
		// Requests as dut.Request cannot write them: a field missing, a
		// field of the wrong type.
		c.WriteLine(`{"id":102,"op":"setsockopt","fd":1,"level":"SOL_SOCKET","opt":"SO_KEEPALIVE"}`)
		c.CheckFail(c.Reply(102), 102, `needs field "value"`)
		c.WriteLine(`{"id":103,"op":"getsockopt","fd":"one","level":"SOL_SOCKET","opt":"SO_KEEPALIVE"}`)
		c.CheckFail(c.Reply(103), 103, `field "fd": want an integer`)
		// Unknown fields are ignored, whatever they hold.
		c.WriteLine(`{"id":104,"op":"close","fd":77,"extra":{"a":[1,2.5,{"b":null}],"c":"\u00e9\"x"}}`)
		c.CheckErrno(c.Reply(104), "EBADF", unix.EBADF)
		fd := c.OK(dut.Request{Op: dut.OpSocket})
		c.Errno(tcpOpt(dut.OpSetsockopt, fd, "TCP_NO_SUCH_OPTION", 1), "ENOPROTOOPT", unix.ENOPROTOOPT)
		c.Errno(duttest.Opt(dut.OpGetsockopt, fd, "SOL_NO_SUCH_LEVEL", dut.SO_KEEPALIVE, 0), "ENOPROTOOPT", unix.ENOPROTOOPT)
		// Names this build has but lwIP does not handle: lwIP's own answer.
		c.Errno(tcpOpt(dut.OpSetsockopt, fd, dut.TCP_USER_TIMEOUT, 1000), "ENOPROTOOPT", unix.ENOPROTOOPT)
		// lwIP 2.1 checks no keep-alive value: it stores idle and interval
		// as milliseconds in a u32, so -1 s reads back as 4294966 s.
		c.Returns(tcpOpt(dut.OpSetsockopt, fd, dut.TCP_KEEPIDLE, 0), 0)
		c.Returns(tcpOpt(dut.OpGetsockopt, fd, dut.TCP_KEEPIDLE, 0), 0)
		c.Returns(tcpOpt(dut.OpSetsockopt, fd, dut.TCP_KEEPIDLE, -1), 0)
		c.Returns(tcpOpt(dut.OpGetsockopt, fd, dut.TCP_KEEPIDLE, 0), 4294966)
		c.Returns(tcpOpt(dut.OpGetsockopt, fd, dut.TCP_KEEPALIVE, 0), -1000)
		c.Returns(tcpOpt(dut.OpSetsockopt, fd, dut.TCP_KEEPCNT, 200), 0)
		c.Returns(tcpOpt(dut.OpGetsockopt, fd, dut.TCP_KEEPCNT, 0), 200)
		c.Returns(dut.Request{Op: dut.OpClose, FD: fd}, 0)
		c.Errno(dut.Request{Op: dut.OpClose, FD: fd}, "EBADF", unix.EBADF)
	})
	if t.Failed() {
		return
	}

	t.Run("server", func(t *testing.T) {
		defer c.For(t)()
		lfd := c.OK(dut.Request{Op: dut.OpSocket})
		c.Returns(dut.Request{Op: dut.OpBind, FD: lfd, Addr: duttest.DUTAddr + ":8000"}, 0)
		c.Returns(dut.Request{Op: dut.OpListen, FD: lfd, N: 1}, 0)
		accept := c.Returns(dut.Request{Op: dut.OpAccept, FD: lfd}, 0)
		kc := lab.Dial(t, 8000)
		a := c.Report(accept.ID, dut.EventAccept, 5*time.Second)
		if a.Ret < 0 || a.Ret == lfd || a.Detail != kc.LocalAddr().String() {
			t.Fatalf("accept report %s: want a new handle and detail %q", duttest.Line(a), kc.LocalAddr())
		}
		cfd := a.Ret

		recv := c.Returns(dut.Request{Op: dut.OpRecv, FD: cfd, N: 100}, 0)
		kc.Write([]byte("abc"))
		if r := c.Report(recv.ID, dut.EventRecv, 5*time.Second); r.Ret != 3 || r.FD != cfd {
			t.Fatalf("recv report %s: want the kernel's 3 octets", duttest.Line(r))
		}
		c.Returns(dut.Request{Op: dut.OpSend, FD: cfd, N: 10}, 10)
		c.Returns(dut.Request{Op: dut.OpShutdown, FD: cfd, N: 1}, 0)
		kc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := io.ReadAll(kc); err != nil || !bytes.Equal(got, make([]byte, 10)) {
			t.Fatalf("the kernel read %q, %v: want 10 zero octets, then the end of the stream", got, err)
		}

		// A close under a pending recv: lwIP 2.1 hangs in such a close if
		// the recv blocks in lwIP, so the driver's waits in lwip_poll,
		// which the close wakes. The recv's report comes first.
		recv = c.Returns(dut.Request{Op: dut.OpRecv, FD: cfd, N: 100}, 0)
		closeID := c.Send(dut.Request{Op: dut.OpClose, FD: cfd})
		r := c.Next(5 * time.Second)
		if r.ID != recv.ID || r.Event != dut.EventRecv || r.Ret != -1 || r.ErrnoName == "" {
			t.Fatalf("after a close under a pending recv: %s, want the recv's report, failed", duttest.Line(r))
		}
		t.Logf("recv under close: %s", duttest.Line(r))
		c.CheckRet(c.Reply(closeID), 0)
		// The slot is reused at once: lwIP asserts that no poller counts on it.
		s := c.OK(dut.Request{Op: dut.OpSocket})
		c.Returns(dut.Request{Op: dut.OpClose, FD: s}, 0)
		c.Returns(dut.Request{Op: dut.OpClose, FD: lfd}, 0)

		// A refused connect: the kernel answers the SYN with an RST, which
		// lwIP reports as ECONNRESET (ERR_RST), not ECONNREFUSED.
		s = c.OK(dut.Request{Op: dut.OpSocket})
		conn := c.Errno(dut.Request{Op: dut.OpConnect, FD: s, Addr: fmt.Sprintf("%s:%d", duttest.TesterAddr, port+1)}, "EINPROGRESS", unix.EINPROGRESS)
		if r := c.Report(conn.ID, dut.EventConnect, 5*time.Second); r.Ret != -1 || r.ErrnoName != "ECONNRESET" || r.Errno != int(unix.ECONNRESET) {
			t.Errorf("refused connect's report %s: want ret -1, ECONNRESET", duttest.Line(r))
		}
		c.Returns(dut.Request{Op: dut.OpClose, FD: s}, 0)
	})
	if t.Failed() {
		return
	}

	fd := c.OK(dut.Request{Op: dut.OpSocket})
	c.Keepalive(fd, 1, 1, 2)
	c.Returns(tcpOpt(dut.OpGetsockopt, fd, dut.TCP_KEEPIDLE, 0), 1)
	// lwIP answers SO_KEEPALIVE with its flag bit (SOF_KEEPALIVE, 8), not 1.
	if m := c.Call(duttest.Opt(dut.OpGetsockopt, fd, dut.SOL_SOCKET, dut.SO_KEEPALIVE, 0)); m.Ret <= 0 {
		t.Fatalf("getsockopt SO_KEEPALIVE after setting it: %s", duttest.Line(m))
	}

	c.Connect(fd, fmt.Sprintf("%s:%d", duttest.TesterAddr, port))
	var kconn net.Conn
	select {
	case kconn = <-accepted:
		defer kconn.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the kernel accepted nothing")
	}

	recv := c.Returns(dut.Request{Op: dut.OpRecv, FD: fd, N: 100}, 0)
	if r := c.Report(recv.ID, dut.EventRecv, 5*time.Second); r.Ret != 5 || r.ErrnoName != "" {
		t.Fatalf("recv report %s: want the kernel's 5 octets", duttest.Line(r))
	}

	// Once lwIP has acknowledged the 5 octets (its delayed ACK, up to
	// 250 ms late) the exchange is over: nothing is outstanding either way.
	acked := false
	for deadline := time.Now().Add(2 * time.Second); !acked && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		segs := capt.Segments()
		var data *duttest.Segment
		for i, f := range segs {
			if !f.FromDUT && f.Len == 5 {
				data = &segs[i]
			}
			if data != nil && f.FromDUT && f.Ack == data.Seq+5 {
				acked = true
			}
		}
	}
	if !acked {
		t.Fatal("lwIP did not acknowledge the kernel's 5 octets within 2 s")
	}

	// The tester falls silent; lwIP still knows its MAC, so its probes go
	// on the wire.
	lab.Silence(t)
	silent := duttest.Now()
	recv = c.Returns(dut.Request{Op: dut.OpRecv, FD: fd, N: 100}, 0)
	r := c.Report(recv.ID, dut.EventRecv, 8*time.Second)
	// lwIP 2.1's keep-alive gives up with ERR_ABRT, which its sockets map
	// to ECONNABORTED (not ETIMEDOUT, as Linux and RFC 9293 have it).
	c.CheckErrno(r, "ECONNABORTED", unix.ECONNABORTED)
	time.Sleep(50 * time.Millisecond) // the RST's frame, read by the capture

	frames, macs := capt.Segments(), capt.SourceMACs()
	for _, mac := range macs {
		if bytes.Equal(mac, tapifMAC) {
			t.Errorf("a frame left with tapif's built-in MAC %s, not KASIM_DUT_MAC", tapifMAC)
			break
		}
	}
	var syn *duttest.Segment
	lastIn := -1 // the last segment lwIP received before it gave up
	var probes []duttest.Segment
	var rst *duttest.Segment
	for i, f := range frames {
		if f.SrcPort != port && f.DstPort != port {
			continue // the server subtest's connection
		}
		switch {
		case f.FromDUT && f.SrcMAC.String() != duttest.DUTMAC:
			t.Errorf("segment %v from MAC %s, want KASIM_DUT_MAC %s", f, f.SrcMAC, duttest.DUTMAC)
		case f.FromDUT && f.Flags&header.TCPFlagSyn != 0:
			syn = &frames[i]
		case !f.FromDUT && f.T < silent:
			lastIn = i
		case f.FromDUT && f.Flags&header.TCPFlagRst != 0:
			rst = &frames[i]
		case f.FromDUT && f.T > silent && rst == nil:
			probes = append(probes, f)
		}
	}
	duttest.LogSegments(t, frames)
	if syn == nil || lastIn < 0 || rst == nil {
		t.Fatalf("capture: SYN %v, last segment in %d, RST %v: want all three", syn, lastIn, rst)
	}
	in := frames[lastIn]
	sndNxt := syn.Seq + 1 // lwIP sent no data
	for i, p := range probes {
		if p.Len != 0 || p.Seq != sndNxt-1 || p.Flags != header.TCPFlagAck {
			t.Errorf("probe %d: %v: want an ACK with seq SND.NXT-1 = %d and no data", i+1, p, sndNxt-1)
		}
	}
	if len(probes) != 2 {
		t.Fatalf("%d probes after the silence, want TCP_KEEPCNT = 2: %v", len(probes), probes)
	}
	if rst.Flags != header.TCPFlagRst|header.TCPFlagAck || rst.Seq != sndNxt {
		t.Errorf("RST %v: want RST|ACK with seq SND.NXT = %d", rst, sndNxt)
	}
	sec := func(a, b int64) float64 { return float64(b-a) / 1e9 }
	idle, gap, end, report := sec(in.T, probes[0].T), sec(probes[0].T, probes[1].T), sec(probes[1].T, rst.T), sec(rst.T, r.T)
	t.Logf("keep-alive idle 1s, intvl 1s, cnt 2: last segment in -> probe 1 %.3fs, probe 1 -> probe 2 %.3fs, probe 2 -> RST %.3fs, RST -> recv report %+.3fs (%s %d)",
		idle, gap, end, report, r.ErrnoName, r.Errno)
	// lwIP's keep-alive runs on its slow TCP timer, every 500 ms: the idle
	// time is up on the first tick after it has passed, so 1 to 1.5 s.
	if idle < 0.95 || idle > 1.6 {
		t.Errorf("first probe %.3fs after the last segment received: want 1 to 1.5 s (idle 1 s, 500 ms ticks)", idle)
	}
	if gap < 0.85 || gap > 1.2 || end < 0.85 || end > 1.2 {
		t.Errorf("probe 1 -> probe 2 %.3fs, probe 2 -> RST %.3fs: want the interval, 1 s", gap, end)
	}
	if report < -0.05 || report > 0.1 {
		t.Errorf("recv report %.3fs after the RST: want at once", report)
	}
}
