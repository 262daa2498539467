package duttest

import (
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
)

// netnsOf is the network namespace of a thread, by /proc path.
func netnsOf(t *testing.T, task string) string {
	s, err := os.Readlink(task + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fds lists this process's descriptors, with what they are.
func fds(t *testing.T) []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if s, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, e.Name()+" "+s)
		}
	}
	return out
}

// TestLab builds a lab, uses all of it, and checks that it leaves nothing
// behind: no descriptor, no thread in its namespace, no child, no kd0
// outside it.
func TestLab(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh for the fake driver")
	}
	var inLab string
	before := fds(t)
	t.Run("lab", func(t *testing.T) {
		lab := NewLab(t)
		if err := lab.Do(func() error {
			inLab = netnsOf(t, "/proc/thread-self")
			ifi, err := net.InterfaceByName(IfName)
			if err != nil {
				return err
			}
			addrs, err := ifi.Addrs()
			if err != nil {
				return err
			}
			if ifi.HardwareAddr.String() != TesterMAC || len(addrs) != 1 || addrs[0].String() != TesterAddr+"/24" || ifi.Flags&net.FlagUp == 0 {
				return fmt.Errorf("%s: %s %v %v, want %s, %s/24, up", IfName, ifi.HardwareAddr, addrs, ifi.Flags, TesterMAC, TesterAddr)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if inLab == netnsOf(t, "/proc/thread-self") {
			t.Fatalf("the lab's thread is in the test's namespace %s", inLab)
		}
		ln := lab.Listen(t, 7000)
		capt := lab.Capture(t)

		// A driver's end of kd0, which reads nothing (so answers nothing):
		// without one, kd0 has no carrier and the kernel sends nothing.
		var tap int
		if err := lab.Do(func() error {
			fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
			if err != nil {
				return err
			}
			ifr, _ := unix.NewIfreq(IfName)
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
				unix.Close(fd)
				return err
			}
			tap = fd
			return nil
		}); err != nil {
			t.Fatalf("attaching to %s: %v", IfName, err)
		}
		t.Cleanup(func() { unix.Close(tap) })
		// The carrier comes up as the queue attaches, but not at once: a
		// SYN sent before it is lost (CI saw no segment twice in a loaded
		// run), and the kernel's next is a second away.
		if err := lab.Do(func() error {
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				ifi, err := net.InterfaceByName(IfName)
				if err != nil {
					return err
				}
				if ifi.Flags&net.FlagRunning != 0 {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s has no carrier 2 s after the driver's end attached", IfName)
				}
			}
		}); err != nil {
			t.Fatal(err)
		}

		// The kernel's SYN to the driver goes to the driver's MAC without
		// ARP (the neighbour entry).
		start := Now()
		if err := lab.Do(func() error {
			_, err := net.DialTimeout("tcp4", DUTAddr+":8000", 200*time.Millisecond)
			return err
		}); err == nil {
			t.Fatalf("a connect to nobody succeeded")
		}
		segs := capt.Segments()
		for deadline := time.Now().Add(time.Second); len(segs) == 0 && time.Now().Before(deadline); segs = capt.Segments() {
			time.Sleep(10 * time.Millisecond) // the capture's reader may not have run yet on a loaded machine
		}
		LogSegments(t, segs)
		if len(segs) == 0 {
			t.Fatalf("no segment captured")
		}
		s := segs[0]
		if s.FromDUT || s.Flags != header.TCPFlagSyn || s.Src.String() != TesterAddr || s.Dst.String() != DUTAddr || s.DstPort != 8000 ||
			s.SrcMAC.String() != TesterMAC || s.T < start || s.T > Now() || s.Len != 0 {
			t.Errorf("first segment %v from %s at %d: want the kernel's SYN to %s:8000 from %s, after %d", s, s.SrcMAC, s.T, DUTAddr, TesterMAC, start)
		}
		if macs := capt.SourceMACs(); len(macs) != len(segs) {
			t.Errorf("source MACs %v for %d segments: want only the SYNs, no ARP", macs, len(segs))
		}
		// The stray frame reaches the driver's end.
		for {
			var b [2048]byte
			if n, err := unix.Read(tap, b[:]); err == nil {
				continue // the SYN
			} else if err != unix.EAGAIN || n > 0 {
				t.Fatal(err)
			}
			break
		}
		capt.Stray(t)
		stray := false
		for deadline := time.Now().Add(time.Second); !stray && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var b [2048]byte
			n, err := unix.Read(tap, b[:])
			stray = err == nil && n == header.EthernetMinimumSize+header.IPv4MinimumSize &&
				net.HardwareAddr(b[:6]).String() == "02:00:0a:63:00:99" && net.HardwareAddr(b[6:12]).String() == TesterMAC
		}
		if !stray {
			t.Errorf("the stray frame did not reach %s's other end", IfName)
		}

		// A driver in this process runs in the lab.
		c := lab.Serve(t, func(in io.Reader, out, errw io.Writer) int {
			ns, _ := os.Readlink("/proc/thread-self/ns/net")
			fmt.Fprintf(out, `{"event":"hello","ret":1,"t":%d,"stack":%q}`+"\n", Now(), ns)
			io.Copy(io.Discard, in)
			return 0
		})
		if h := c.Next(time.Second); h.Stack != inLab {
			t.Errorf("a served driver's namespace: %s, want the lab's %s", h.Stack, inLab)
		}

		// So does a program, with the driver's environment.
		p := lab.Start(t, "sh", "-c", `echo "{\"event\":\"hello\",\"ret\":$$,\"t\":1,\"stack\":\"$(readlink /proc/self/ns/net)\",\"version\":\"$KASIM_DUT_IF $KASIM_DUT_ADDR $KASIM_DUT_MAC $KASIM_TESTER_ADDR $KASIM_TESTER_MAC $KASIM_DUT_PROTOCOL\"}"; cat >/dev/null`)
		h := p.Next(5 * time.Second)
		if want := fmt.Sprintf("%s %s %s %s %s %d", IfName, DUTPrefix, DUTMAC, TesterAddr, TesterMAC, dut.Version); h.Stack != inLab || h.Version != want || h.Ret != p.Pid() {
			t.Errorf("a started driver's hello %s: want namespace %s, environment %q, ret %d", Line(h), inLab, want, p.Pid())
		}

		// Without the neighbour entry the kernel asks for the driver's MAC.
		lab.ResolveByARP(t)
		if err := lab.Do(func() error {
			_, err := net.DialTimeout("tcp4", DUTAddr+":8001", 200*time.Millisecond)
			return err
		}); err == nil {
			t.Fatalf("a connect to nobody succeeded")
		}
		if macs, segs := capt.SourceMACs(), capt.Segments(); len(macs) <= len(segs) {
			t.Errorf("after ResolveByARP, %d frames and %d segments: want ARP requests besides", len(macs), len(segs))
		}

		// Silence: the kernel no longer answers for the tester's address.
		ln.Close()
		lab.Silence(t)
		if err := lab.Do(func() error {
			_, err := net.Listen("tcp4", TesterAddr+":7001")
			return err
		}); err == nil {
			t.Errorf("the kernel still has %s after Silence", TesterAddr)
		}
	})

	// What is left: nothing.
	if left := slicesMinus(fds(t), before); len(left) > 0 {
		t.Errorf("descriptors left: %v", left)
	}
	// A thread that served a driver leaves the lab just after the driver
	// returns.
	var left []string
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		left = nil
		tasks, _ := filepath.Glob("/proc/self/task/*")
		for _, task := range tasks {
			if ns, err := os.Readlink(task + "/ns/net"); err == nil && ns == inLab {
				left = append(left, "thread "+task+" in the lab's namespace")
			}
			if b, _ := os.ReadFile(task + "/children"); len(strings.TrimSpace(string(b))) > 0 {
				left = append(left, "thread "+task+" with children "+string(b))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("left: %v", left)
	}
	if _, err := net.InterfaceByName(IfName); err == nil {
		t.Errorf("%s is in the test's namespace", IfName)
	}
}

func slicesMinus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
