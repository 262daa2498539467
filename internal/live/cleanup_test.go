//go:build linux

package live

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// Environment variables that make the test binary play a part for a test.
const (
	holderEnv  = "KASIM_LIVE_TEST_HOLDER"  // build a lab, say what it made, wait to be killed
	notRootEnv = "KASIM_LIVE_TEST_NOTROOT" // try NewLab, say how it failed
)

func maybeRunHolder() {
	switch {
	case os.Getenv(holderEnv) == "1":
		lab, err := NewLab(Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(lab.peer.pid, lab.tester.nsIno, nsInode(lab.peer.pid))
		// Wait to be killed; an end of input means the test went away.
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case os.Getenv(notRootEnv) == "1":
		_, err := NewLab(Options{})
		fmt.Printf("%v\nErrNotRoot: %v\n", err, errors.Is(err, ErrNotRoot))
		os.Exit(0)
	}
}

// snapshot is what a lab must leave as it found it, outside itself.
type snapshot struct {
	links    []string // interface names in the test's (root) namespace
	netns    []string // named namespaces (/run/netns)
	fds      []string // this process's descriptors, with what they are
	children []int    // this process's child processes
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	return snapshot{links: linkNames(t), netns: namedNetns(t), fds: openFDs(t), children: childPIDs(t)}
}

// leftovers lists what differs between two snapshots.
func (s snapshot) leftovers(after snapshot) []string {
	var out []string
	for _, c := range []struct {
		what          string
		before, after []string
	}{
		{"interface", s.links, after.links},
		{"named namespace", s.netns, after.netns},
		{"descriptor", s.fds, after.fds},
		{"child process", ints(s.children), ints(after.children)},
	} {
		for _, x := range c.after {
			if !slices.Contains(c.before, x) {
				out = append(out, "new "+c.what+" "+x)
			}
		}
		for _, x := range c.before {
			if !slices.Contains(c.after, x) {
				out = append(out, "lost "+c.what+" "+x)
			}
		}
	}
	return out
}

func ints(v []int) []string {
	var s []string
	for _, x := range v {
		s = append(s, strconv.Itoa(x))
	}
	return s
}

// linkNames lists the interfaces in this namespace with `ip -o link`, or
// netlink where ip is missing.
func linkNames(t *testing.T) []string {
	t.Helper()
	var names []string
	if _, err := exec.LookPath("ip"); err != nil {
		links, err := netlink.LinkList()
		if err != nil {
			t.Fatalf("listing interfaces: %v", err)
		}
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return names
	}
	out, err := exec.Command("ip", "-o", "link").Output()
	if err != nil {
		t.Fatalf("ip -o link: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "2: eth0@if5: <BROADCAST,...": the name is the second field.
		f := strings.Fields(line)
		if len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	return names
}

func namedNetns(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading /run/netns: %v", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func openFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("reading /proc/self/fd: %v", err)
	}
	var fds []string
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		fds = append(fds, e.Name()+" -> "+target)
	}
	return fds
}

func childPIDs(t *testing.T) []int {
	t.Helper()
	self := os.Getpid()
	var pids []int
	for _, pid := range allPIDs() {
		if ppid, _ := procStat(pid); ppid == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat returns a process's parent and state, or 0 and "" if it is gone.
func procStat(pid int) (ppid int, state string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	// "pid (comm) S ppid ...": comm may hold anything, so cut at the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0, ""
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0]
}

func nsInode(pid int) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
		return 0
	}
	return st.Ino
}

// nsHolders lists the processes and descriptors that refer to the network
// namespace with inode ino. (A socket's hold on its namespace cannot be
// seen this way; the lab's only such socket is checked through openFDs.)
func nsHolders(ino uint64) []string {
	want := fmt.Sprintf("net:[%d]", ino)
	var out []string
	for _, pid := range allPIDs() {
		dir := fmt.Sprintf("/proc/%d", pid)
		if l, _ := os.Readlink(dir + "/ns/net"); l == want {
			out = append(out, dir+"/ns/net")
		}
		fds, _ := os.ReadDir(dir + "/fd")
		for _, fd := range fds {
			if l, _ := os.Readlink(dir + "/fd/" + fd.Name()); l == want {
				out = append(out, dir+"/fd/"+fd.Name())
			}
		}
	}
	return out
}

// processGone reports whether pid has exited (a zombie counts: it has
// released its namespaces).
func processGone(pid int) bool {
	_, state := procStat(pid)
	return state == "" || state == "Z"
}

// checkNothingLeft fails t if the lab's helper, namespaces or anything else
// outlived it.
func checkNothingLeft(t *testing.T, before snapshot, helperPID int, nsInos ...uint64) {
	t.Helper()
	if helperPID != 0 && !processGone(helperPID) {
		t.Errorf("the helper (pid %d) is still running", helperPID)
	}
	for _, ino := range nsInos {
		if ino == 0 {
			continue
		}
		if h := nsHolders(ino); len(h) > 0 {
			t.Errorf("namespace net:[%d] is still held by %v", ino, h)
		}
	}
	for _, l := range before.leftovers(takeSnapshot(t)) {
		t.Errorf("left behind: %s", l)
	}
}

// TestCloseLeavesNothing: while a lab runs, nothing changes in the test's
// own namespace; after Close (twice) the helper, both namespaces, the
// packet socket and every goroutine are gone.
func TestCloseLeavesNothing(t *testing.T) {
	needLive(t)
	// A lab first, so that what the runtime opens once (its poller) is in
	// the snapshot rather than counted as left behind.
	newTestLab(t, Options{}).Close()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := takeSnapshot(t)

	var capture bytes.Buffer
	lab := newTestLab(t, Options{PCAP: &capture})
	pid, testerNS, peerNS := lab.peer.pid, lab.tester.nsIno, nsInode(lab.peer.pid)
	if peerNS == 0 || testerNS == 0 {
		t.Fatalf("namespace inodes: peer %d, tester %d", peerNS, testerNS)
	}
	if self := nsInode(os.Getpid()); peerNS == self || testerNS == self || peerNS == testerNS {
		t.Fatalf("namespaces: test %d, peer %d, tester %d: want three different ones", self, peerNS, testerNS)
	}
	if got := linkNames(t); !slices.Equal(got, before.links) {
		t.Errorf("while the lab runs, this namespace's interfaces are %v, want them unchanged: %v", got, before.links)
	}
	if len(nsHolders(peerNS)) == 0 {
		t.Errorf("no process holds the peer namespace while the lab runs")
	}

	if err := lab.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checkNothingLeft(t, before, pid, testerNS, peerNS)
	if capture.Len() != pcapHeaderLen {
		t.Errorf("capture of a lab that carried nothing: %d bytes, want the %d-byte header alone", capture.Len(), pcapHeaderLen)
	}
}

// TestFailedNewLabLeavesNothing makes NewLab fail after each of its steps
// in turn and checks that it undid everything.
func TestFailedNewLabLeavesNothing(t *testing.T) {
	needLive(t)
	newTestLab(t, Options{}).Close()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, step := range []string{stepPeer, stepUnshare, stepVeth, stepMove, stepUp, stepPacket, stepReturn, stepSetup, stepCarrier, stepStack} {
		t.Run(step, func(t *testing.T) {
			before := takeSnapshot(t)
			var pid int
			var testerNS, peerNS uint64
			lab, err := NewLab(Options{hooks: &labHooks{
				failAt: step,
				peerStarted: func(p int) {
					pid = p
					peerNS = nsInode(p)
				},
				testerNS: func(ino uint64) { testerNS = ino },
			}})
			if !errors.Is(err, errInjected) {
				if lab != nil {
					lab.Close()
				}
				t.Fatalf("NewLab failing at %s: %v, want the injected failure", step, err)
			}
			if lab != nil {
				t.Errorf("NewLab returned a lab with its error")
			}
			t.Logf("%v", err)
			if pid == 0 || peerNS == 0 {
				t.Fatalf("the helper's pid %d or namespace %d went unseen", pid, peerNS)
			}
			if testerNS == 0 && step != stepPeer {
				t.Fatalf("the tester namespace went unseen")
			}
			checkNothingLeft(t, before, pid, testerNS, peerNS)
		})
	}
}

// TestNothingSurvivesSIGKILL kills a process holding a lab with SIGKILL,
// which runs no cleanup at all, and checks that the kernel took everything
// down with it: the helper (by Pdeathsig) and both namespaces.
func TestNothingSurvivesSIGKILL(t *testing.T) {
	needLive(t)
	before := takeSnapshot(t)
	// The orphaned helper is re-parented to us, so we can reap it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("becoming a subreaper: %v", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)

	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), holderEnv+"=1")
	holder.Stderr = testWriter{t}
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatalf("starting the holder: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		holder.Process.Kill()
		holder.Wait()
		t.Fatalf("the holder said %q: %v", line, err)
	}
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		holder.Wait()
		t.Fatalf("the holder could not build its lab: %s", strings.TrimSpace(msg))
	}
	var pid int
	var testerNS, peerNS uint64
	if _, err := fmt.Sscan(line, &pid, &testerNS, &peerNS); err != nil {
		holder.Process.Kill()
		holder.Wait()
		t.Fatalf("the holder said %q, want its helper's pid and two namespace inodes: %v", line, err)
	}
	t.Logf("holder %d: helper %d, tester namespace %d, peer namespace %d", holder.Process.Pid, pid, testerNS, peerNS)
	if processGone(pid) || len(nsHolders(peerNS)) == 0 {
		t.Fatalf("the holder's helper %d is not running in namespace %d", pid, peerNS)
	}

	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	// The helper is the holder's child; it becomes this process's only
	// once reparented (the subreaper), so Wait4 may answer ECHILD for a
	// moment: retry, and if the helper is gone before it ever was ours,
	// its status is unknown but it is gone.
	type ending struct {
		ws    syscall.WaitStatus
		known bool
	}
	reaped := make(chan ending, 1)
	go func() {
		for {
			var ws syscall.WaitStatus
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			switch {
			case err == nil:
				reaped <- ending{ws, true}
				return
			case err == syscall.ECHILD:
				if syscall.Kill(pid, 0) == syscall.ESRCH {
					reaped <- ending{}
					return
				}
				time.Sleep(5 * time.Millisecond)
			case err != syscall.EINTR:
				reaped <- ending{}
				return
			}
		}
	}()
	select {
	case e := <-reaped:
		t.Logf("the helper ended: %v (status known: %v)", e.ws, e.known)
		// Pdeathsig's SIGKILL and the helper's own exit on its closed stdin
		// race; either ends it, and checkNothingLeft is the point.
		killed := e.ws.Signaled() && e.ws.Signal() == syscall.SIGKILL
		clean := e.ws.Exited() && e.ws.ExitStatus() == 0
		if e.known && !killed && !clean {
			t.Errorf("the helper ended with %v, want killed by SIGKILL (Pdeathsig) or its own exit on EOF", e.ws)
		}
	case <-time.After(5 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-reaped
		t.Fatalf("the helper outlived its parent by 5s")
	}
	checkNothingLeft(t, before, pid, testerNS, peerNS)
}

// TestNotRootRefused runs NewLab as an unprivileged user (a copy of the test
// binary, made executable for them) and checks the error it gets.
func TestNotRootRefused(t *testing.T) {
	needLive(t)
	if os.Geteuid() != 0 {
		t.Fatalf("this test runs NewLab as nobody, from root; running as uid %d", os.Geteuid())
	}
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "kasim-live-notroot")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	exe := filepath.Join(dir, "live.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), notRootEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running NewLab as nobody: %v: %s", err, out)
	}
	t.Logf("as nobody: %s", out)
	if !strings.HasPrefix(string(out), "live: needs root (CAP_NET_ADMIN) to create network namespaces: ") ||
		!strings.Contains(string(out), "ErrNotRoot: true") {
		t.Errorf("NewLab as nobody said %q, want ErrNotRoot and its reason", out)
	}
}

// TestCloseDuringTraffic closes a lab while the kernel is sending to the
// tester, so that segments arrive for connections Close has just aborted.
// gVisor answers those with an RST from its link reader, which needs the
// stack's lock; Close must not be holding it then (see tap.shut).
func TestCloseDuringTraffic(t *testing.T) {
	for i := 0; i < 5; i++ {
		lab := newTestLab(t, Options{})
		fd, conn := keepAliveConn(t, lab)
		go io.Copy(io.Discard, conn)
		p := lab.Peer()
		stop := make(chan struct{})
		sent := make(chan int)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					sent <- n
					return
				default:
				}
				r, err := p.Send(fd, 1000)
				if err != nil {
					sent <- n
					return
				}
				n += r.Ret
			}
		}()
		time.Sleep(50 * time.Millisecond)
		closed := make(chan error, 1)
		go func() { closed <- lab.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Close hung while the kernel was sending")
		}
		close(stop)
		t.Logf("round %d: the kernel had sent %d octets", i, <-sent)
	}
}

// TestDUTLabCloseLeavesNothing: a lab with a driver (Options.DUT) keeps its
// namespace, TAP device and tester in the driver's namespace, none in this
// one; Close kills the driver and whatever it started (its process group),
// and the namespace goes with them.
func TestDUTLabCloseLeavesNothing(t *testing.T) {
	needLive(t)
	hello := `{"event":"hello","protocol":1,"stack":"fake","api":"posix"}`
	driver := []string{"sh", "-c", "sleep 300 & echo '" + hello + "'; wait"}
	newTestLab(t, Options{DUT: driver}).Close()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := takeSnapshot(t)

	lab := newTestLab(t, Options{DUT: driver})
	pid, ns := lab.peer.pid, nsInode(lab.peer.pid)
	if ns == 0 || ns == nsInode(os.Getpid()) {
		t.Fatalf("driver namespace %d: want one of its own", ns)
	}
	if h := nsHolders(ns); len(h) < 2 {
		t.Errorf("the driver's namespace is held by %v: want the driver and the child it started", h)
	}
	if got := linkNames(t); !slices.Equal(got, before.links) {
		t.Errorf("while the lab runs, this namespace's interfaces are %v, want them unchanged: %v", got, before.links)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkNothingLeft(t, before, pid, ns)
}
