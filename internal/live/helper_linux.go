package live

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// peerEnv, set to "1", makes MaybeRunPeer run the helper. NewLab sets it
// for the child it starts; the helper removes it at once, so programs it
// starts with exec run normally.
const peerEnv = "KASIM_LIVE_PEER"

// maxRecv bounds one recv request's buffer.
const maxRecv = 1 << 20

// MaybeRunPeer runs the peer helper and exits if this process is one (it
// was started by NewLab, which re-executes the running binary), and
// returns at once otherwise. Every program that creates a Lab must call it
// first thing in main, and every test binary that does so first thing in
// TestMain, before flags are parsed or anything else starts.
func MaybeRunPeer() {
	if os.Getenv(peerEnv) != "1" {
		return
	}
	os.Unsetenv(peerEnv)
	os.Exit(runHelper(os.Stdin, os.Stdout, os.Stderr))
}

// helper is the peer side: it runs in the peer namespace and makes the
// system calls the Lab asks for.
type helper struct {
	outMu sync.Mutex
	out   *json.Encoder

	fdMu sync.Mutex
	fds  map[int]bool // the sockets this helper made and has not closed
}

func runHelper(in io.Reader, out io.Writer, errw io.Writer) int {
	h := &helper{out: json.NewEncoder(out), fds: map[int]bool{}}
	if err := checkOwnNamespace(); err != nil {
		fmt.Fprintf(errw, "kasim live peer: %v\n", err)
		return 2
	}
	if err := prepareNamespace(); err != nil {
		fmt.Fprintf(errw, "kasim live peer: %v\n", err)
		return 1
	}
	h.send(helloLinux())
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			h.send(message{Fail: fmt.Sprintf("bad request %q: %v", sc.Bytes(), err), T: int64(Now())})
			continue
		}
		h.handle(req)
	}
	// End of input: the Lab closed the pipe or died. Exiting frees the
	// namespace (Pdeathsig would kill us anyway if the Lab's process died).
	return 0
}

// checkOwnNamespace refuses to go on unless this process has a network
// namespace of its own (NewLab starts it with CLONE_NEWNET): the helper
// changes its namespace's settings, and a KASIM_LIVE_PEER=1 left in someone's
// environment must not switch off IPv6 on their machine.
func checkOwnNamespace() error {
	var self, parent unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return fmt.Errorf("reading its network namespace: %v", err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", os.Getppid()), &parent); err != nil {
		return fmt.Errorf("reading its parent's network namespace: %v", err)
	}
	if self.Ino == parent.Ino && self.Dev == parent.Dev {
		return fmt.Errorf("refusing to run in its parent's network namespace (%s=1 is for kasim's own use)", peerEnv)
	}
	return nil
}

// prepareNamespace disables IPv6 before the veth end arrives (a moved
// device takes the new namespace's defaults), so nothing but IPv4 ever
// appears on the wire, and brings lo up as a real host has it.
func prepareNamespace() error {
	if err := disableIPv6(); err != nil {
		return err
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %v", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bringing lo up: %v", err)
	}
	return nil
}

// disableIPv6 switches IPv6 off for the calling thread's namespace, for the
// devices there and those created or moved in later. A kernel without IPv6
// has nothing to switch off.
func disableIPv6() error {
	for _, conf := range []string{"all", "default"} {
		p := "/proc/sys/net/ipv6/conf/" + conf + "/disable_ipv6"
		if err := os.WriteFile(p, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disabling IPv6 (%s): %v", p, err)
		}
	}
	return nil
}

// sysctl sets one of Sysctls in the helper's namespace and replies with
// the value it had.
func (h *helper) sysctl(req request) {
	if !slices.Contains(Sysctls, req.Opt) {
		h.fail(req, "sysctl %q: kasim sets only %s", req.Opt, strings.Join(Sysctls, ", "))
		return
	}
	p := "/proc/sys/net/ipv4/" + req.Opt
	old, err := os.ReadFile(p)
	if err != nil {
		h.reply(req, -1, err)
		return
	}
	was, err := strconv.Atoi(strings.TrimSpace(string(old)))
	if err != nil {
		h.fail(req, "%s reads %q", p, old)
		return
	}
	h.reply(req, was, os.WriteFile(p, []byte(strconv.Itoa(req.Value)), 0))
}

func (h *helper) send(m message) {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	// A failed write means the Lab is gone; the read loop ends soon after.
	_ = h.out.Encode(m)
}

// reply answers req with the outcome of a system call.
func (h *helper) reply(req request, ret int, err error) {
	h.send(result(message{ID: req.ID, FD: req.FD, Ret: ret}, err))
}

// result fills m's errno and timestamp from err, a system call's error.
func result(m message, err error) message {
	m.T = int64(Now())
	if err == nil {
		return m
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		m.Errno = int(errno)
		m.ErrnoName = errnoName(errno)
		return m
	}
	m.Fail = err.Error()
	return m
}

func (h *helper) fail(req request, format string, args ...any) {
	h.send(message{ID: req.ID, FD: req.FD, Fail: req.Op + ": " + fmt.Sprintf(format, args...), T: int64(Now())})
}

// owned says whether fd is one of this helper's sockets. Requests on any
// other fd get EBADF without a system call: the helper's own descriptors
// (its pipes, the Go runtime's epoll) must not be touched, and for a
// socket that was closed EBADF is what the kernel would say.
func (h *helper) owned(fd int) bool {
	h.fdMu.Lock()
	defer h.fdMu.Unlock()
	return h.fds[fd]
}

func (h *helper) adopt(fd int) {
	h.fdMu.Lock()
	h.fds[fd] = true
	h.fdMu.Unlock()
}

func (h *helper) handle(req request) {
	switch req.Op {
	case opSetup:
		h.setup(req)
		return
	case opSocket:
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			h.adopt(fd)
		}
		h.reply(req, fd, err)
		return
	case opExec:
		h.exec(req)
		return
	case opTap:
		h.tap(req)
		return
	case opBecome:
		h.become(req)
		return
	case opSysctl:
		h.sysctl(req)
		return
	case opSetsockopt, opGetsockopt, opBind, opListen, opConnect, opAccept, opSend, opRecv, opShutdown, opClose:
	default:
		h.fail(req, "unknown op")
		return
	}
	if !h.owned(req.FD) {
		h.reply(req, -1, unix.EBADF)
		return
	}
	switch req.Op {
	case opSetsockopt:
		level, opt, err := linuxOption(req.Level, req.Opt)
		if err == nil {
			err = unix.SetsockoptInt(req.FD, level, opt, req.Value)
		}
		h.reply(req, 0, err)
	case opGetsockopt:
		level, opt, err := linuxOption(req.Level, req.Opt)
		v := 0
		if err == nil {
			v, err = unix.GetsockoptInt(req.FD, level, opt)
		}
		h.reply(req, v, err)
	case opBind:
		sa, err := sockaddr(req.Addr)
		if err != nil {
			h.fail(req, "%v", err)
			return
		}
		h.reply(req, 0, unix.Bind(req.FD, sa))
	case opListen:
		h.reply(req, 0, unix.Listen(req.FD, req.N))
	case opConnect:
		h.connect(req)
	case opAccept:
		h.reply(req, 0, nil)
		go h.accept(req)
	case opSend:
		if req.N < 0 || req.N > maxRecv {
			h.fail(req, "n=%d is not in 0..%d", req.N, maxRecv)
			return
		}
		// MSG_DONTWAIT: a send must never stall the request loop; the
		// count queued is the answer. MSG_NOSIGNAL: EPIPE, not SIGPIPE.
		n, err := unix.SendmsgN(req.FD, make([]byte, req.N), nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		h.reply(req, n, err)
	case opRecv:
		if req.N <= 0 || req.N > maxRecv {
			h.fail(req, "n=%d is not in 1..%d", req.N, maxRecv)
			return
		}
		h.reply(req, 0, nil)
		go h.recv(req)
	case opShutdown:
		h.reply(req, 0, unix.Shutdown(req.FD, req.N))
	case opClose:
		h.fdMu.Lock()
		delete(h.fds, req.FD)
		h.fdMu.Unlock()
		h.reply(req, 0, unix.Close(req.FD))
	}
}

func sockaddr(s string) (*unix.SockaddrInet4, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	if !ap.Addr().Is4() {
		return nil, fmt.Errorf("%s is not an IPv4 address", s)
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, nil
}

// connect starts a non-blocking connect, as an application that wants to
// see EINPROGRESS does, and reports its completion from a goroutine that
// polls for writability. Once connected the socket is blocking again, so a
// later recv blocks like a plain application's.
func (h *helper) connect(req request) {
	sa, err := sockaddr(req.Addr)
	if err != nil {
		h.fail(req, "%v", err)
		return
	}
	if err := unix.SetNonblock(req.FD, true); err != nil {
		h.reply(req, -1, err)
		return
	}
	err = unix.Connect(req.FD, sa)
	if !errors.Is(err, unix.EINPROGRESS) {
		unix.SetNonblock(req.FD, false)
		h.reply(req, 0, err)
		return
	}
	h.reply(req, -1, err)
	go func() {
		pfd := []unix.PollFd{{Fd: int32(req.FD), Events: unix.POLLOUT}}
		for {
			_, err := unix.Poll(pfd, -1)
			if err != unix.EINTR {
				break
			}
		}
		soerr, err := unix.GetsockoptInt(req.FD, unix.SOL_SOCKET, unix.SO_ERROR)
		m := message{ID: req.ID, Event: string(EventConnect), FD: req.FD}
		if err == nil && soerr != 0 {
			err = syscall.Errno(soerr)
		}
		m = result(m, err)
		unix.SetNonblock(req.FD, false)
		h.send(m)
	}()
}

// accept blocks in accept4 until a connection arrives or the socket fails.
func (h *helper) accept(req request) {
	for {
		nfd, sa, err := unix.Accept4(req.FD, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		m := message{ID: req.ID, Event: string(EventAccept), FD: req.FD, Ret: nfd}
		if err == nil {
			h.adopt(nfd)
			if in4, ok := sa.(*unix.SockaddrInet4); ok {
				m.Detail = netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)).String()
			}
		}
		h.send(result(m, err))
		return
	}
}

// recv blocks in read(2) on the socket, as an application blocked in recv
// does, and reports when the kernel wakes it: data, end of stream, or an
// error such as ETIMEDOUT when keep-alive gives up.
func (h *helper) recv(req request) {
	buf := make([]byte, req.N)
	for {
		n, err := unix.Read(req.FD, buf)
		if err == unix.EINTR {
			continue
		}
		h.send(result(message{ID: req.ID, Event: string(EventRecv), FD: req.FD, Ret: n}, err))
		return
	}
}

// exec starts a program inside the peer namespace (the helper's), with its
// output going to the helper's standard error (standard output is the
// protocol's), and reports its end. Pdeathsig: it dies with the helper, so
// it cannot keep the namespace alive.
func (h *helper) exec(req request) {
	if len(req.Argv) == 0 {
		h.fail(req, "empty argv")
		return
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(os.Environ(), req.Env...) // without peerEnv: MaybeRunPeer unset it
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.fail(req, "%v", err)
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		h.fail(req, "%v", err)
		return
	}
	pid := cmd.Process.Pid
	h.send(message{ID: req.ID, Ret: pid, T: int64(Now())})
	lines := make(chan struct{})
	go func() {
		// Each line of the program's output is a report, timed when it
		// came; it is copied to standard error too, for the user.
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			at := Now()
			fmt.Fprintf(os.Stderr, "%s\n", sc.Bytes())
			h.send(message{ID: req.ID, Event: string(EventOutput), FD: pid, T: int64(at), Detail: sc.Text()})
		}
	}()
	go func() {
		<-lines // Wait closes the pipe: read it to the end first
		err := cmd.Wait()
		m := message{ID: req.ID, Event: string(EventExit), FD: pid, Ret: cmd.ProcessState.ExitCode(), T: int64(Now())}
		if err != nil {
			m.Detail = err.Error()
		}
		h.send(m)
	}()
}

// setup configures the veth end the Lab moved into this namespace: the
// address, checksums computed in software, link up (waiting for the carrier
// notification), and a permanent neighbour entry for the tester.
func (h *helper) setup(req request) {
	start, up, err := setupLink(req)
	if err != nil {
		h.fail(req, "%v", err)
		return
	}
	// Unlike other replies, t is when the carrier notification came, and
	// ret how long after "link up" that was.
	h.send(message{ID: req.ID, Ret: int(up - start), T: int64(up)})
}

func setupLink(req request) (start, up Mono, err error) {
	link, err := netlink.LinkByName(req.Ifname)
	if err != nil {
		return 0, 0, fmt.Errorf("finding %s: %v", req.Ifname, err)
	}
	addr, err := netlink.ParseAddr(req.Addr)
	if err != nil {
		return 0, 0, fmt.Errorf("address %q: %v", req.Addr, err)
	}
	neighIP := net.ParseIP(req.NeighIP)
	neighMAC, err := net.ParseMAC(req.NeighMAC)
	if neighIP == nil || err != nil {
		return 0, 0, fmt.Errorf("neighbour %q %q: bad address", req.NeighIP, req.NeighMAC)
	}
	// veth offloads checksums: a segment the kernel sends would cross the
	// pair with only the pseudo-header sum in its checksum field, and the
	// tester's AF_PACKET socket would hand gVisor (and the capture) a
	// wrong checksum. Switching TX checksumming off here makes the kernel
	// compute it in software (and segment in software: no 64 KB frames).
	if err := setTxChecksum(req.Ifname, false); err != nil {
		return 0, 0, fmt.Errorf("switching off checksum offload on %s: %v", req.Ifname, err)
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return 0, 0, fmt.Errorf("adding %s to %s: %v", req.Addr, req.Ifname, err)
	}
	// Subscribe before bringing the link up, so the notification cannot be
	// missed.
	sub, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		return 0, 0, fmt.Errorf("subscribing to link notifications: %v", err)
	}
	defer sub.Close()
	start = Now()
	if err := netlink.LinkSetUp(link); err != nil {
		return 0, 0, fmt.Errorf("bringing %s up: %v", req.Ifname, err)
	}
	if err := waitOperUp(sub, link.Attrs().Index, 5*time.Second); err != nil {
		return 0, 0, fmt.Errorf("waiting for %s's carrier: %v", req.Ifname, err)
	}
	up = Now()
	// A permanent entry: the kernel never resolves the tester's address,
	// so no ARP appears on the wire and a silent tester cannot make the
	// kernel's probes stop at a failed neighbour. Added after the link is
	// up because taking a device down flushes even permanent entries.
	err = netlink.NeighAdd(&netlink.Neigh{
		LinkIndex:    link.Attrs().Index,
		Family:       unix.AF_INET,
		State:        netlink.NUD_PERMANENT,
		IP:           neighIP,
		HardwareAddr: neighMAC,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("adding the neighbour %s on %s: %v", req.NeighIP, req.Ifname, err)
	}
	return start, up, nil
}

// waitOperUp reads link notifications from sub until the link with index
// ifindex is operationally up. The kernel sends that notification after it
// has activated the device's queueing discipline, so from then on frames
// are not dropped. (Polling the state could see "up" a moment before.)
func waitOperUp(sub *nl.NetlinkSocket, ifindex int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("not up after %v", timeout)
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := sub.SetReceiveTimeout(&tv); err != nil {
			return err
		}
		msgs, _, err := sub.Receive()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWLINK {
				continue
			}
			hdr := unix.NlMsghdr(m.Header)
			link, err := netlink.LinkDeserialize(&hdr, m.Data)
			if err != nil {
				continue
			}
			if a := link.Attrs(); a.Index == ifindex && a.OperState == netlink.OperUp {
				return nil
			}
		}
	}
}

// ethtool's legacy ioctl interface (linux/ethtool.h, linux/if.h).
const ethtoolSTXCSUM = 0x17 // ETHTOOL_STXCSUM

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte // the rest of ifreq's union
}

// setTxChecksum switches a device's TX checksum offload on or off
// (ethtool -K DEV tx on|off), in the calling thread's namespace.
func setTxChecksum(ifname string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	v := &ethtoolValue{cmd: ethtoolSTXCSUM}
	if on {
		v.data = 1
	}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return errno
	}
	return nil
}
