//go:build linux

package lwip

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kasim/internal/livetest"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
	good := map[string]string{
		"KASIM_DUT_IF": "lo", "KASIM_DUT_ADDR": "10.99.0.2/24", "KASIM_DUT_MAC": "02:00:0a:63:00:02",
		"KASIM_TESTER_ADDR": "10.99.0.1", "KASIM_TESTER_MAC": "02:00:0a:63:00:01",
	}
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

// The lab: a network namespace of the test's own, a persistent TAP device
// kd0 in it, and the namespace's kernel on the device's kernel side as the
// tester (10.99.0.1, listening on port 7000). The driver runs lwIP on the
// other side, 10.99.0.2.
const (
	tapName    = "kd0"
	dutAddr    = "10.99.0.2"
	testerAddr = "10.99.0.1"
	port       = 7000
)

var (
	dutMAC    = net.HardwareAddr{0x02, 0x00, 0x0a, 0x63, 0x00, 0x02}
	testerMAC = net.HardwareAddr{0x02, 0x00, 0x0a, 0x63, 0x00, 0x01}
	// tapif's low_level_init gives every netif this MAC; the driver must
	// replace it before anything goes on the wire.
	tapifMAC = net.HardwareAddr{0x02, 0x12, 0x34, 0x56, 0x78, 0xab}
)

// netns runs functions on one locked OS thread that has unshared its
// network namespace. The thread ends (and the namespace with the last
// process and socket in it) when the test's cleanup closes work.
type netns struct{ work chan func() }

func newNetns(t *testing.T) *netns {
	n := &netns{work: make(chan func())}
	errc := make(chan error)
	go func() {
		// Never unlocked: the thread, in a namespace of its own, must die
		// with this goroutine rather than return to the scheduler.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for f := range n.work {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("unshare(CLONE_NEWNET): %v", err)
	}
	t.Cleanup(func() { close(n.work) })
	return n
}

func (n *netns) do(f func() error) error {
	errc := make(chan error)
	n.work <- func() { errc <- f() }
	return <-errc
}

// setupLink makes kd0 and gives the kernel its tester end. Run in the
// namespace.
func setupLink() error {
	for _, conf := range []string{"all", "default"} {
		// The kernel's IPv6 chatter would only clutter the capture.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/net/tun: %v", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(tapName)
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("TUNSETIFF: %v", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("TUNSETPERSIST: %v", err)
	}
	for _, name := range []string{"lo", tapName} {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if name == tapName {
			if err := netlink.LinkSetHardwareAddr(link, testerMAC); err != nil {
				return err
			}
			addr, _ := netlink.ParseAddr(testerAddr + "/24")
			if err := netlink.AddrAdd(link, addr); err != nil {
				return err
			}
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return err
		}
	}
	return nil
}

// frame is a TCP segment seen on kd0, stamped with CLOCK_MONOTONIC as the
// driver's t is.
type frame struct {
	at           int64
	srcMAC       net.HardwareAddr
	src, dst     net.IP
	seq, ack     uint32
	flags        uint8
	payload      int
	sport, dport uint16
	fromDUT      bool
}

func (f frame) String() string {
	var fl []string
	for i, n := range []string{"FIN", "SYN", "RST", "PSH", "ACK"} {
		if f.flags&(1<<i) != 0 {
			fl = append(fl, n)
		}
	}
	return fmt.Sprintf("%s:%d > %s:%d %s seq=%d ack=%d len=%d", f.src, f.sport, f.dst, f.dport, strings.Join(fl, "|"), f.seq, f.ack, f.payload)
}

const (
	tcpFIN = 1 << iota
	tcpSYN
	tcpRST
	tcpPSH
	tcpACK
)

// capture reads every frame on kd0 (both ways) through a packet socket.
type capture struct {
	f      *os.File
	mu     sync.Mutex
	frames []frame
	macs   []net.HardwareAddr // source MACs of every frame, TCP or not
}

func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startCapture() (*capture, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(tapName)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &capture{f: os.NewFile(uintptr(fd), "packet")}
	go c.run()
	return c, nil
}

func (c *capture) run() {
	buf := make([]byte, 2048)
	for {
		n, err := c.f.Read(buf)
		if err != nil {
			return
		}
		at := monoNow()
		b := buf[:n]
		if len(b) < 14 {
			continue
		}
		c.mu.Lock()
		c.macs = append(c.macs, slices.Clone(net.HardwareAddr(b[6:12])))
		c.mu.Unlock()
		if binary.BigEndian.Uint16(b[12:14]) != 0x0800 || len(b) < 14+20 {
			continue
		}
		ip := b[14:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ip[9] != unix.IPPROTO_TCP || total > len(ip) || len(ip) < ihl+20 {
			continue
		}
		tcp := ip[ihl:total]
		off := int(tcp[12]>>4) * 4
		f := frame{
			at: at, srcMAC: slices.Clone(net.HardwareAddr(b[6:12])),
			src: slices.Clone(net.IP(ip[12:16])), dst: slices.Clone(net.IP(ip[16:20])),
			sport: binary.BigEndian.Uint16(tcp[0:2]), dport: binary.BigEndian.Uint16(tcp[2:4]),
			seq: binary.BigEndian.Uint32(tcp[4:8]), ack: binary.BigEndian.Uint32(tcp[8:12]),
			flags: tcp[13], payload: len(tcp) - off,
		}
		f.fromDUT = f.src.Equal(net.ParseIP(dutAddr))
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
	}
}

func (c *capture) snapshot() ([]frame, []net.HardwareAddr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.frames), slices.Clone(c.macs)
}

// msg is one line from the driver.
type msg struct {
	ID        int64    `json:"id"`
	Event     string   `json:"event"`
	FD        int      `json:"fd"`
	Ret       *int64   `json:"ret"`
	Errno     int      `json:"errno"`
	ErrnoName string   `json:"errno_name"`
	Fail      string   `json:"fail"`
	Detail    string   `json:"detail"`
	T         int64    `json:"t"`
	Protocol  int      `json:"protocol"`
	Stack     string   `json:"stack"`
	Version   string   `json:"version"`
	API       string   `json:"api"`
	Options   []string `json:"options"`
	raw       string
}

func (m msg) ret() int64 {
	if m.Ret == nil {
		return -999
	}
	return *m.Ret
}

// dut is a running driver and the test's end of its pipes.
type dut struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan msg
	errs   chan error
	stderr *syncBuffer
	early  []msg // reports read while waiting for a reply
	nextID int64
	exited chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDUT starts the driver; run in the namespace, as kasim does.
func startDUT(path string) (*dut, error) {
	d := &dut{lines: make(chan msg, 100), errs: make(chan error, 1), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(path)
	d.cmd.Env = append(os.Environ(),
		"KASIM_DUT_PROTOCOL=1", "KASIM_DUT_IF="+tapName, "KASIM_DUT_ADDR="+dutAddr+"/24",
		"KASIM_DUT_MAC="+dutMAC.String(), "KASIM_TESTER_ADDR="+testerAddr, "KASIM_TESTER_MAC="+testerMAC.String())
	// The parent-death signal follows the thread that started the child:
	// the namespace's thread, which lives as long as the test.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	d.cmd.Stderr = d.stderr
	var err error
	if d.in, err = d.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 64*1024)
		for n := 1; sc.Scan(); n++ {
			var m msg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				d.errs <- fmt.Errorf("driver line %d: not JSON: %v: %q", n, err, sc.Text())
				return
			}
			m.raw = sc.Text()
			d.lines <- m
		}
		if err := sc.Err(); err != nil {
			d.errs <- err
		}
		d.exited <- d.cmd.Wait()
	}()
	return d, nil
}

// next returns the driver's next line, failing the test after timeout.
func (d *dut) next(timeout time.Duration) msg {
	d.t.Helper()
	select {
	case m := <-d.lines:
		return m
	case err := <-d.errs:
		d.t.Fatalf("%v\nstderr: %s", err, d.stderr.String())
	case err := <-d.exited:
		d.t.Fatalf("driver exited: %v\nstderr: %s", err, d.stderr.String())
	case <-time.After(timeout):
		d.t.Fatalf("no line from the driver within %v\nstderr: %s", timeout, d.stderr.String())
	}
	return msg{}
}

func (d *dut) sendLine(s string) {
	d.t.Helper()
	if _, err := io.WriteString(d.in, s+"\n"); err != nil {
		d.t.Fatalf("writing to the driver: %v", err)
	}
}

// call sends a request and returns its reply; reports that come first are
// kept for report.
func (d *dut) call(op string, fields ...any) msg {
	d.t.Helper()
	d.nextID++
	req := map[string]any{"id": d.nextID, "op": op}
	for i := 0; i+1 < len(fields); i += 2 {
		req[fields[i].(string)] = fields[i+1]
	}
	b, _ := json.Marshal(req)
	d.sendLine(string(b))
	return d.reply(d.nextID)
}

func (d *dut) reply(id int64) msg {
	d.t.Helper()
	for {
		m := d.next(5 * time.Second)
		if m.Event != "" {
			d.early = append(d.early, m)
			continue
		}
		if m.ID != id {
			d.t.Fatalf("reply %s: want the reply to request %d", m.raw, id)
		}
		return m
	}
}

// report waits for request id's report.
func (d *dut) report(id int64, event string, timeout time.Duration) msg {
	d.t.Helper()
	for i, m := range d.early {
		if m.ID == id {
			d.early = slices.Delete(d.early, i, i+1)
			return d.checkReport(m, event)
		}
	}
	m := d.next(timeout)
	if m.ID != id || m.Event == "" {
		d.t.Fatalf("line %s: want the %s report of request %d", m.raw, event, id)
	}
	return d.checkReport(m, event)
}

func (d *dut) checkReport(m msg, event string) msg {
	d.t.Helper()
	if m.Event != event {
		d.t.Fatalf("report %s: want event %q", m.raw, event)
	}
	return m
}

// ok checks that a reply reports success with ret want.
func (d *dut) ok(m msg, want int64) {
	d.t.Helper()
	if m.Fail != "" || m.ErrnoName != "" || m.ret() != want {
		d.t.Fatalf("reply %s: want ret %d", m.raw, want)
	}
}

// errno checks that a reply reports failure with errno name.
func (d *dut) errno(m msg, name string, num syscall.Errno) {
	d.t.Helper()
	if m.ret() != -1 || m.ErrnoName != name || m.Errno != int(num) {
		d.t.Fatalf("reply %s: want ret -1, errno %d (%s)", m.raw, int(num), name)
	}
}

func (d *dut) fails(m msg, id int64, want string) {
	d.t.Helper()
	if m.ID != id || !strings.Contains(m.Fail, want) || m.T == 0 {
		d.t.Fatalf("line %s: want a fail for id %d saying %q", m.raw, id, want)
	}
}

// TestLive runs the driver against the namespace's kernel: the protocol's
// hello, requests and reports, its robustness against bad lines, and
// lwIP's keep-alive on the wire until it gives up.
func TestLive(t *testing.T) {
	path := driver(t)
	livetest.Need(t)

	ns := newNetns(t)
	var (
		ln  net.Listener
		cap *capture
		d   *dut
	)
	start := monoNow()
	if err := ns.do(func() error {
		if err := setupLink(); err != nil {
			return err
		}
		var err error
		if ln, err = net.Listen("tcp4", fmt.Sprintf("%s:%d", testerAddr, port)); err != nil {
			return err
		}
		if cap, err = startCapture(); err != nil {
			return err
		}
		d, err = startDUT(path)
		return err
	}); err != nil {
		t.Fatalf("setting up the lab: %v", err)
	}
	d.t = t
	t.Cleanup(func() {
		ln.Close()
		cap.f.Close()
	})
	t.Cleanup(func() {
		// EOF on stdin: the driver must exit 0 at once.
		d.in.Close()
		select {
		case err := <-d.exited:
			if err != nil {
				t.Errorf("driver after EOF: %v, want exit 0\nstderr: %s", err, d.stderr.String())
			}
		case <-time.After(2 * time.Second):
			d.cmd.Process.Kill()
			t.Errorf("driver still running 2s after EOF on stdin")
		}
	})

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

	hello := d.next(10 * time.Second)
	if hello.Event != "hello" || hello.Protocol != 1 || hello.Stack != "lwIP" || hello.API != "posix" ||
		!strings.HasPrefix(hello.Version, "2.") || hello.ret() != int64(d.cmd.Process.Pid) ||
		hello.T < start || hello.T > monoNow() {
		t.Fatalf("hello %s: want protocol 1, stack lwIP, api posix, ret the pid %d, t between %d and now", hello.raw, d.cmd.Process.Pid, start)
	}
	for _, o := range []string{"SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"} {
		if !slices.Contains(hello.Options, o) {
			t.Errorf("hello's options %v lack %s", hello.Options, o)
		}
	}
	if slices.Contains(hello.Options, "TCP_USER_TIMEOUT") {
		t.Errorf("hello's options %v list TCP_USER_TIMEOUT, which lwIP lacks", hello.Options)
	}
	t.Logf("hello: %s", hello.raw)

	t.Run("robustness", func(t *testing.T) {
		d.t = t
		defer func() { d.t = nil }()
		d.sendLine(`{"id":1,"op":`) // line 1
		d.fails(d.next(5*time.Second), 0, "line 1: not JSON")
		d.sendLine(strings.Repeat("x", 70*1024)) // line 2: over 64 KiB
		d.fails(d.next(5*time.Second), 0, "line 2: longer than")
		d.nextID = 100
		d.fails(d.call("frob"), 101, `unknown op "frob"`)
		d.fails(d.call("setsockopt", "fd", 1, "level", "SOL_SOCKET", "opt", "SO_KEEPALIVE"), 102, `needs field "value"`)
		d.fails(d.call("getsockopt", "fd", "one", "level", "SOL_SOCKET", "opt", "SO_KEEPALIVE"), 103, `field "fd": want an integer`)
		// Unknown fields are ignored, whatever they hold.
		d.sendLine(`{"id":104,"op":"close","fd":77,"extra":{"a":[1,2.5,{"b":null}],"c":"\u00e9\"x"}}`)
		d.errno(d.reply(104), "EBADF", unix.EBADF)
		fd := d.call("socket").ret()
		if fd < 0 {
			t.Fatalf("socket: %d", fd)
		}
		d.errno(d.call("setsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_NO_SUCH_OPTION", "value", 1), "ENOPROTOOPT", unix.ENOPROTOOPT)
		d.errno(d.call("getsockopt", "fd", fd, "level", "SOL_NO_SUCH_LEVEL", "opt", "SO_KEEPALIVE"), "ENOPROTOOPT", unix.ENOPROTOOPT)
		// Names this build has but lwIP does not handle: lwIP's own answer.
		d.errno(d.call("setsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_USER_TIMEOUT", "value", 1000), "ENOPROTOOPT", unix.ENOPROTOOPT)
		// lwIP 2.1 checks no keep-alive value: it stores idle and interval
		// as milliseconds in a u32, so -1 s reads back as 4294966 s.
		d.ok(d.call("setsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPIDLE", "value", 0), 0)
		d.ok(d.call("getsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPIDLE"), 0)
		d.ok(d.call("setsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPIDLE", "value", -1), 0)
		d.ok(d.call("getsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPIDLE"), 4294966)
		d.ok(d.call("getsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPALIVE"), -1000)
		d.ok(d.call("setsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPCNT", "value", 200), 0)
		d.ok(d.call("getsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPCNT"), 200)
		d.ok(d.call("close", "fd", fd), 0)
		d.errno(d.call("close", "fd", fd), "EBADF", unix.EBADF)
	})
	if t.Failed() {
		return
	}

	t.Run("server", func(t *testing.T) {
		d.t = t
		defer func() { d.t = nil }()
		lfd := d.call("socket").ret()
		d.ok(d.call("bind", "fd", lfd, "addr", dutAddr+":8000"), 0)
		d.ok(d.call("listen", "fd", lfd, "n", 1), 0)
		d.ok(d.call("accept", "fd", lfd), 0)
		acceptID := d.nextID
		var kc net.Conn
		if err := ns.do(func() (err error) {
			kc, err = net.DialTimeout("tcp4", dutAddr+":8000", 5*time.Second)
			return err
		}); err != nil {
			t.Fatalf("the kernel's connect to lwIP: %v", err)
		}
		defer kc.Close()
		a := d.report(acceptID, "accept", 5*time.Second)
		if a.ret() < 0 || a.ret() == lfd || a.Detail != kc.LocalAddr().String() {
			t.Fatalf("accept report %s: want a new handle and detail %q", a.raw, kc.LocalAddr())
		}
		cfd := a.ret()

		d.ok(d.call("recv", "fd", cfd, "n", 100), 0)
		kc.Write([]byte("abc"))
		if r := d.report(d.nextID, "recv", 5*time.Second); r.ret() != 3 || r.FD != int(cfd) {
			t.Fatalf("recv report %s: want the kernel's 3 octets", r.raw)
		}
		d.ok(d.call("send", "fd", cfd, "n", 10), 10)
		d.ok(d.call("shutdown", "fd", cfd, "n", 1), 0)
		kc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := io.ReadAll(kc); err != nil || !bytes.Equal(got, make([]byte, 10)) {
			t.Fatalf("the kernel read %q, %v: want 10 zero octets, then the end of the stream", got, err)
		}

		// A close under a pending recv: lwIP 2.1 hangs in such a close if
		// the recv blocks in lwIP, so the driver's waits in lwip_poll,
		// which the close wakes. The recv's report comes first.
		d.ok(d.call("recv", "fd", cfd, "n", 100), 0)
		recvID := d.nextID
		d.nextID++
		d.sendLine(fmt.Sprintf(`{"id":%d,"op":"close","fd":%d}`, d.nextID, cfd))
		r := d.next(5 * time.Second)
		if r.ID != recvID || r.Event != "recv" || r.ret() != -1 || r.ErrnoName == "" {
			t.Fatalf("after a close under a pending recv: %s, want the recv's report, failed", r.raw)
		}
		t.Logf("recv under close: %s", r.raw)
		d.ok(d.reply(d.nextID), 0)
		// The slot is reused at once: lwIP asserts that no poller counts on it.
		s := d.call("socket").ret()
		d.ok(d.call("close", "fd", s), 0)
		d.ok(d.call("close", "fd", lfd), 0)

		// A refused connect: the kernel answers the SYN with an RST, which
		// lwIP reports as ECONNRESET (ERR_RST), not ECONNREFUSED.
		s = d.call("socket").ret()
		d.errno(d.call("connect", "fd", s, "addr", fmt.Sprintf("%s:%d", testerAddr, port+1)), "EINPROGRESS", unix.EINPROGRESS)
		if c := d.report(d.nextID, "connect", 5*time.Second); c.ret() != -1 || c.ErrnoName != "ECONNRESET" || c.Errno != int(unix.ECONNRESET) {
			t.Errorf("refused connect's report %s: want ret -1, ECONNRESET", c.raw)
		}
		d.ok(d.call("close", "fd", s), 0)
	})
	if t.Failed() {
		return
	}
	d.t = t

	fd := d.call("socket").ret()
	if fd < 0 {
		t.Fatalf("socket: %d", fd)
	}
	for _, o := range []struct {
		level, opt string
		v          int
	}{{"SOL_SOCKET", "SO_KEEPALIVE", 1}, {"IPPROTO_TCP", "TCP_KEEPIDLE", 1}, {"IPPROTO_TCP", "TCP_KEEPINTVL", 1}, {"IPPROTO_TCP", "TCP_KEEPCNT", 2}} {
		d.ok(d.call("setsockopt", "fd", fd, "level", o.level, "opt", o.opt, "value", o.v), 0)
	}
	d.ok(d.call("getsockopt", "fd", fd, "level", "IPPROTO_TCP", "opt", "TCP_KEEPIDLE"), 1)
	// lwIP answers SO_KEEPALIVE with its flag bit (SOF_KEEPALIVE, 8), not 1.
	if m := d.call("getsockopt", "fd", fd, "level", "SOL_SOCKET", "opt", "SO_KEEPALIVE"); m.ret() <= 0 {
		t.Fatalf("getsockopt SO_KEEPALIVE after setting it: %s", m.raw)
	}

	m := d.call("connect", "fd", fd, "addr", fmt.Sprintf("%s:%d", testerAddr, port))
	d.errno(m, "EINPROGRESS", unix.EINPROGRESS)
	connectID := d.nextID
	if c := d.report(connectID, "connect", 5*time.Second); c.ErrnoName != "" || c.ret() != 0 || c.FD != int(fd) || c.T < m.T {
		t.Fatalf("connect report %s: want ret 0, no errno, fd %d, t after the reply's", c.raw, fd)
	}
	var kconn net.Conn
	select {
	case kconn = <-accepted:
		defer kconn.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the kernel accepted nothing")
	}

	d.ok(d.call("recv", "fd", fd, "n", 100), 0)
	if r := d.report(d.nextID, "recv", 5*time.Second); r.ret() != 5 || r.ErrnoName != "" {
		t.Fatalf("recv report %s: want the kernel's 5 octets", r.raw)
	}

	// Once lwIP has acknowledged the 5 octets (its delayed ACK, up to
	// 250 ms late) the exchange is over: nothing is outstanding either way.
	acked := false
	for deadline := time.Now().Add(2 * time.Second); !acked && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		frames, _ := cap.snapshot()
		var data *frame
		for i, f := range frames {
			if !f.fromDUT && f.payload == 5 {
				data = &frames[i]
			}
			if data != nil && f.fromDUT && f.ack == data.seq+5 {
				acked = true
			}
		}
	}
	if !acked {
		t.Fatal("lwIP did not acknowledge the kernel's 5 octets within 2 s")
	}

	// The tester falls silent: without its address the kernel takes the
	// frames for 10.99.0.1 as not its own and drops them, answering
	// nothing; lwIP still knows the MAC, so its probes go on the wire.
	if err := ns.do(func() error {
		link, err := netlink.LinkByName(tapName)
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr(testerAddr + "/24")
		return netlink.AddrDel(link, addr)
	}); err != nil {
		t.Fatal(err)
	}
	silent := monoNow()
	d.ok(d.call("recv", "fd", fd, "n", 100), 0)
	r := d.report(d.nextID, "recv", 8*time.Second)
	// lwIP 2.1's keep-alive gives up with ERR_ABRT, which its sockets map
	// to ECONNABORTED (not ETIMEDOUT, as Linux and RFC 9293 have it).
	d.errno(r, "ECONNABORTED", unix.ECONNABORTED)
	time.Sleep(50 * time.Millisecond) // the RST's frame, read by the capture

	frames, macs := cap.snapshot()
	for _, mac := range macs {
		if bytes.Equal(mac, tapifMAC) {
			t.Errorf("a frame left with tapif's built-in MAC %s, not KASIM_DUT_MAC", tapifMAC)
			break
		}
	}
	var syn *frame
	lastIn := -1 // the last segment lwIP received before it gave up
	var probes []frame
	var rst *frame
	for i, f := range frames {
		if f.sport != port && f.dport != port {
			continue // the server subtest's connection
		}
		switch {
		case f.fromDUT && !bytes.Equal(f.srcMAC, dutMAC):
			t.Errorf("segment %v from MAC %s, want KASIM_DUT_MAC %s", f, f.srcMAC, dutMAC)
		case f.fromDUT && f.flags&tcpSYN != 0:
			syn = &frames[i]
		case !f.fromDUT && f.at < silent:
			lastIn = i
		case f.fromDUT && f.flags&tcpRST != 0:
			rst = &frames[i]
		case f.fromDUT && f.at > silent && rst == nil:
			probes = append(probes, f)
		}
	}
	for _, f := range frames {
		t.Logf("%.6f %v", float64(f.at-start)/1e9, f)
	}
	if syn == nil || lastIn < 0 || rst == nil {
		t.Fatalf("capture: SYN %v, last segment in %d, RST %v: want all three", syn, lastIn, rst)
	}
	in := frames[lastIn]
	sndNxt := syn.seq + 1 // lwIP sent no data
	for i, p := range probes {
		if p.payload != 0 || p.seq != sndNxt-1 || p.flags != tcpACK {
			t.Errorf("probe %d: %v: want an ACK with seq SND.NXT-1 = %d and no data", i+1, p, sndNxt-1)
		}
	}
	if len(probes) != 2 {
		t.Fatalf("%d probes after the silence, want TCP_KEEPCNT = 2: %v", len(probes), probes)
	}
	if rst.flags != tcpRST|tcpACK || rst.seq != sndNxt {
		t.Errorf("RST %v: want RST|ACK with seq SND.NXT = %d", rst, sndNxt)
	}
	sec := func(a, b int64) float64 { return float64(b-a) / 1e9 }
	idle, gap, end, report := sec(in.at, probes[0].at), sec(probes[0].at, probes[1].at), sec(probes[1].at, rst.at), sec(rst.at, r.T)
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
