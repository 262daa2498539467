package duttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"kasim/internal/live"
	"kasim/internal/livetest"
)

// TcpdumpEnv, set to 1, makes Tcpdump run tcpdump on kd0 and log it.
const TcpdumpEnv = "KASIM_TCPDUMP"

// Now reads CLOCK_MONOTONIC, the clock of a driver's t, in nanoseconds.
func Now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Lab is a network namespace of the test's own, with no name, holding lo
// (up) and the persistent TAP device kd0 that a driver attaches to, made
// as kasim makes it (live.MakeTAP). The namespace's kernel owns kd0's
// other side and plays kasim's tester: TesterAddr/24 and TesterMAC on
// kd0, IPv6 off, and, as kasim's tester has, a permanent neighbour entry
// for DUTAddr at DUTMAC.
//
// The lab's thread, locked, makes the namespace and stays in it until the
// test's cleanup; Do runs functions on it. Every thread that enters the
// lab leaves it before it is unlocked: a thread left in it would keep it,
// and Go never ends the main thread (a locked goroutine that ends on it
// wedges it). Nothing of the lab outlives the test, whichever way it
// ends.
type Lab struct {
	work chan func()
	done chan struct{} // closed when the lab's thread has left the lab
	ns   netns.NsHandle
	nl   *netlink.Handle
	link netlink.Link
}

// inNamespace locks the goroutine's thread, moves it into a network
// namespace with enter, runs f there and moves it back. The thread is
// unlocked only once it is back: should that fail, it ends with the
// goroutine. f may end the goroutine (runtime.Goexit).
func inNamespace(enter func() error, f func()) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("this thread's network namespace: %v", err)
	}
	leave := func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}
	if err := enter(); err != nil {
		leave()
		return err
	}
	defer leave()
	f()
	return nil
}

// NewLab builds the lab, or skips t where it cannot be built
// (livetest.Need: a failure with KASIM_REQUIRE_LIVE=1).
func NewLab(t testing.TB) *Lab {
	t.Helper()
	livetest.Need(t)
	l := &Lab{work: make(chan func()), done: make(chan struct{}), ns: -1}
	errc := make(chan error, 1)
	go func() {
		defer close(l.done)
		err := inNamespace(func() (err error) { l.ns, err = netns.New(); return err }, func() {
			errc <- nil
			for f := range l.work {
				f()
			}
		})
		if err != nil {
			errc <- err
		}
	}()
	if err := <-errc; err != nil {
		<-l.done
		t.Fatalf("making a network namespace: %v", err)
	}
	t.Cleanup(func() {
		close(l.work)
		<-l.done
		l.ns.Close()
	})
	var err error
	if l.nl, err = netlink.NewHandleAt(l.ns); err != nil {
		t.Fatalf("netlink in the lab: %v", err)
	}
	t.Cleanup(l.nl.Close)
	if err := l.Do(makeTAP); err != nil {
		t.Fatalf("setting up the lab: %v", err)
	}
	if l.link, err = l.nl.LinkByName(IfName); err != nil {
		t.Fatalf("%s: %v", IfName, err)
	}
	t.Cleanup(func() { l.nl.LinkDel(l.link) })
	lo, err := l.nl.LinkByName("lo")
	if err == nil {
		err = l.nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo: %v", err)
	}
	if err := l.nl.AddrAdd(l.link, testerAddr()); err != nil {
		t.Fatalf("%s's address: %v", IfName, err)
	}
	if err := l.nl.NeighAdd(l.neighbour()); err != nil {
		t.Fatalf("the neighbour entry for the driver: %v", err)
	}
	return l
}

// makeTAP, in the lab, switches IPv6 off and makes kd0 as kasim makes
// it, with the tester's MAC, up.
func makeTAP() error {
	for _, conf := range []string{"all", "default"} {
		// The kernel's IPv6 chatter would only clutter the capture.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return live.MakeTAP(IfName, TesterMAC)
}

func mac(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func testerAddr() *netlink.Addr {
	a, err := netlink.ParseAddr(TesterAddr + "/24")
	if err != nil {
		panic(err)
	}
	return a
}

func (l *Lab) neighbour() *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex: l.link.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: net.ParseIP(DUTAddr), HardwareAddr: mac(DUTMAC),
	}
}

// Do runs f on the lab's thread, in its namespace: sockets f opens and
// processes it starts are the lab's. One f runs at a time; none may block
// for long.
func (l *Lab) Do(f func() error) error {
	errc := make(chan error, 1)
	select {
	case l.work <- func() { errc <- f() }:
	case <-l.done:
		return errors.New("the lab's thread has ended")
	}
	select {
	case err := <-errc:
		return err
	case <-l.done:
		select {
		case err := <-errc:
			return err
		default:
			return errors.New("the lab's thread ended in Do")
		}
	}
}

// Silence makes the kernel deaf and mute to the driver: without its
// address it takes the driver's segments for 10.99.0.1 as not its own and
// drops them (it does not forward), answering none. The driver still
// knows its MAC, so what it sends goes on the wire.
func (l *Lab) Silence(t testing.TB) {
	t.Helper()
	if err := l.nl.AddrDel(l.link, testerAddr()); err != nil {
		t.Fatalf("removing the tester's address: %v", err)
	}
}

// ResolveByARP removes the kernel's permanent neighbour entry for the
// driver: the kernel then asks for the driver's MAC by ARP, and the
// driver's answers are on the wire too.
func (l *Lab) ResolveByARP(t testing.TB) {
	t.Helper()
	if err := l.nl.NeighDel(l.neighbour()); err != nil {
		t.Fatalf("removing the neighbour entry for the driver: %v", err)
	}
}

// Listen opens a listening socket of the kernel's at TesterAddr:port,
// closed by the test's cleanup.
func (l *Lab) Listen(t testing.TB, port int) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	if err := l.Do(func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(TesterAddr, strconv.Itoa(port)))
		return err
	}); err != nil {
		t.Fatalf("listening in the lab: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// Dial connects the kernel to the driver's DUTAddr:port within 5 s; the
// test's cleanup closes the connection.
func (l *Lab) Dial(t testing.TB, port int) *net.TCPConn {
	t.Helper()
	var c net.Conn
	if err := l.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(DUTAddr, strconv.Itoa(port)), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("the kernel's connect to the driver: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// Serve runs a driver in this process, as Serve does, on a thread of its
// own in the lab (a driver in Go attaches to kd0 from the thread that
// calls it).
func (l *Lab) Serve(t testing.TB, run DriverFunc) *Client {
	t.Helper()
	return serve(t, func(f func()) error {
		errc := make(chan error, 1)
		go func() {
			err := inNamespace(func() error { return netns.Set(l.ns) }, func() {
				errc <- nil
				f()
			})
			if err != nil {
				errc <- fmt.Errorf("entering the lab: %v", err)
			}
		}()
		return <-errc
	}, run)
}

// Start starts the driver program path in the lab, as kasim does: with
// Environ added to this process's environment and SIGKILL as its
// parent-death signal (it never outlives the test). The test's cleanup
// closes its input and checks that it exits 0 within ExitTimeout (it is
// killed if not).
func (l *Lab) Start(t testing.TB, path string, args ...string) *Client {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), Environ()...)
	// The parent-death signal follows the thread that starts the child:
	// the lab's, which lives at least as long as the lab.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr := &SyncBuffer{}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Do(cmd.Start); err != nil {
		t.Fatalf("starting the driver: %v", err)
	}
	c := newClient(t, in, stderr, cmd.Process.Pid)
	go c.read(out, cmd.Wait)
	c.cleanup(t, func() { cmd.Process.Kill() })
	return c
}

// Tcpdump runs tcpdump -i kd0 -tt -n -v in the lab when KASIM_TCPDUMP=1,
// and logs what it printed at the end of the test.
func (l *Lab) Tcpdump(t testing.TB) {
	t.Helper()
	if os.Getenv(TcpdumpEnv) != "1" {
		return
	}
	var out SyncBuffer
	cmd := exec.Command("tcpdump", "-i", IfName, "-tt", "-n", "-l", "-v")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.Do(cmd.Start); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // tcpdump's start
	t.Cleanup(func() {
		time.Sleep(200 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		t.Logf("tcpdump -i %s -tt -n -v:\n%s", IfName, out.String())
	})
}
