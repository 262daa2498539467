package sockopt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"kasim/stack"
)

// Linux's socket constants (socket.h, in.h, tcp.h).
const (
	LinuxAF_INET      = 2
	LinuxAF_INET6     = 10
	LinuxSOL_SOCKET   = 1
	LinuxSO_KEEPALIVE = 9
	LinuxSO_RCVBUF    = 8

	LinuxTCP_KEEPIDLE     = 4
	LinuxTCP_KEEPINTVL    = 5
	LinuxTCP_KEEPCNT      = 6
	LinuxTCP_USER_TIMEOUT = 18
	LinuxTCP_SYNCNT       = 7
	LinuxTCP_DEFER_ACCEPT = 9

	// Ranges Linux enforces (net/ipv4/tcp.c: MAX_TCP_KEEPIDLE,
	// MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT).
	MaxTCPKeepIdle  = 32767
	MaxTCPKeepIntvl = 32767
	MaxTCPKeepCnt   = 127
	MaxTCPSynCnt    = 127 // MAX_TCP_SYNCNT
)

// Linux errnos of socket calls.
var (
	EBADF           = Errno{"EBADF", 9}
	EFAULT          = Errno{"EFAULT", 14}
	EINVAL          = Errno{"EINVAL", 22}
	ENOPROTOOPT     = Errno{"ENOPROTOOPT", 92}
	EPROTONOSUPPORT = Errno{"EPROTONOSUPPORT", 93}
	ESOCKTNOSUPPORT = Errno{"ESOCKTNOSUPPORT", 94}
	EAFNOSUPPORT    = Errno{"EAFNOSUPPORT", 97}
	EINPROGRESS     = Errno{"EINPROGRESS", 115}
	ENOTCONN        = Errno{"ENOTCONN", 107}
)

// POSIX is the BSD-socket surface of one simulated host, in one Dialect's
// option numbers, ranges and errors (Linux's unless NewPOSIXAs says
// otherwise): calls return 0 (or a descriptor) on success and -1 on
// failure, the reason in Errno. Every call is reported to OnCall.
type POSIX struct {
	d     *Dialect
	host  *stack.Host
	fds   map[int]*pfd
	next  int
	errno Errno
	// OnCall, if set, sees every call and its outcome.
	OnCall func(Call)
}

type pfd struct {
	conn      *stack.Conn // nil for a datagram socket
	keepAlive bool
	idle      time.Duration
	interval  time.Duration
	count     int
	userTO    time.Duration
	keepInit  time.Duration // FreeBSD's TCP_KEEPINIT: the connect's time limit
	synCnt    int           // Linux's TCP_SYNCNT: SYN retransmissions for a connect
	deferAcc  int           // Linux's TCP_DEFER_ACCEPT in seconds, as given
	rcvbuf    uint32        // SO_RCVBUF as given (the connection holds the size it set)
}

// NewPOSIX returns the socket surface of host, with Linux's numbers.
func NewPOSIX(host *stack.Host) *POSIX { return NewPOSIXAs(host, Linux) }

// NewPOSIXAs returns the socket surface of host in dialect d.
func NewPOSIXAs(host *stack.Host, d *Dialect) *POSIX {
	return &POSIX{d: d, host: host, fds: make(map[int]*pfd), next: 3} // 0-2 are stdio
}

// Dialect returns the dialect the surface speaks.
func (p *POSIX) Dialect() *Dialect { return p.d }

// Errno returns the error of the last failed call.
func (p *POSIX) Errno() Errno { return p.errno }

func (p *POSIX) report(c Call) int {
	if c.Err != (ErrorCode{}) {
		p.errno = c.Err
	}
	if p.OnCall != nil {
		p.OnCall(c)
	}
	return c.Result
}

func (p *POSIX) fail(c Call, e Errno) int {
	c.Result, c.Err = -1, p.d.renumber(e)
	return p.report(c)
}

// Socket is socket(domain, type, protocol).
func (p *POSIX) Socket(domain, typ, protocol int) int {
	c := Call{Func: "socket", Value: fmt.Sprintf("%d, %d, %d", domain, typ, protocol)}
	switch {
	case domain != LinuxAF_INET && domain != p.d.AF_INET6:
		return p.fail(c, EAFNOSUPPORT)
	case typ != SOCK_STREAM && typ != SOCK_DGRAM:
		return p.fail(c, ESOCKTNOSUPPORT)
	case typ == SOCK_STREAM && protocol != 0 && protocol != IPPROTO_TCP,
		typ == SOCK_DGRAM && protocol != 0 && protocol != IPPROTO_UDP:
		return p.fail(c, EPROTONOSUPPORT)
	}
	f := &pfd{}
	if typ == SOCK_STREAM {
		network := "tcp4"
		if domain == p.d.AF_INET6 {
			network = "tcp6"
		}
		conn, err := p.host.Socket(network)
		if err != nil {
			return p.fail(c, EAFNOSUPPORT)
		}
		f.conn, c.Conn = conn, conn
		ka := conn.KeepAlive()
		f.idle, f.interval, f.count = ka.Idle, ka.Interval, ka.Count
		f.synCnt = conn.SynRetries()
	}
	fd := p.next
	p.next++
	p.fds[fd] = f
	c.Result = fd
	return p.report(c)
}

// Setsockopt is setsockopt(fd, level, optname, optval, optlen), checked as
// the dialect's system checks it. Linux: EBADF for no such descriptor,
// EFAULT for a null optval, ENOPROTOOPT for an option the level or socket
// lacks, EINVAL for optlen below sizeof(int) or a value out of range
// (TCP_KEEPIDLE and TCP_KEEPINTVL 1-32767 seconds, TCP_KEEPCNT 1-127,
// TCP_USER_TIMEOUT >= 0 ms, TCP_SYNCNT 1-127).
func (p *POSIX) Setsockopt(fd, level, optname int, optval []byte, optlen int) int {
	d := p.d
	c := Call{Func: "setsockopt", Level: d.levelName(level), Opt: d.optName(level, optname)}
	f := p.fds[fd]
	if f == nil {
		return p.fail(c, EBADF)
	}
	c.Conn = f.conn
	if optval == nil || optlen > len(optval) {
		return p.fail(c, EFAULT)
	}
	if e := d.check(d, level, optname, f.conn != nil, optlen); e != (Errno{}) {
		return p.fail(c, e)
	}
	v := int32(binary.LittleEndian.Uint32(optval))
	c.Value = v
	if e := d.set(f, c.Opt, v, p.host.KeepAliveDefaults()); e != (Errno{}) {
		return p.fail(c, e)
	}
	if f.conn != nil {
		p.apply(c.Opt, f)
	}
	return p.report(c)
}

// apply sets one option on the connection, as the call named it: gVisor,
// like Linux, keeps each option separately.
func (p *POSIX) apply(opt string, f *pfd) {
	c := f.conn
	switch opt {
	case "SO_KEEPALIVE":
		c.SetKeepAliveEnabled(f.keepAlive)
	case "TCP_KEEPIDLE", "TCP_KEEPALIVE":
		_ = c.SetKeepAliveIdle(f.idle)
	case "TCP_KEEPINTVL":
		_ = c.SetKeepAliveInterval(f.interval)
	case "TCP_KEEPCNT":
		_ = c.SetKeepAliveCount(f.count)
	case "TCP_USER_TIMEOUT":
		_ = c.SetUserTimeout(f.userTO)
	case "TCP_SYNCNT":
		_ = c.SetSynRetries(f.synCnt)
	case "TCP_KEEPINIT":
		_ = c.SetConnectTimeout(f.keepInit)
	case "SO_RCVBUF":
		c.SetReceiveBuffer(f.rcvbuf)
	case "TCP_DEFER_ACCEPT":
		c.SetDeferAccept(f.deferAcc)
	}
}

// Getsockopt is getsockopt(fd, level, optname, optval, optlen). On Linux
// and FreeBSD a short optlen truncates the int rather than failing, and a
// negative one is EINVAL; lwIP checks optlen as Setsockopt does. The level
// and option are checked as Setsockopt checks them.
func (p *POSIX) Getsockopt(fd, level, optname int, optval []byte, optlen *int) int {
	d := p.d
	c := Call{Func: "getsockopt", Level: d.levelName(level), Opt: d.optName(level, optname)}
	f := p.fds[fd]
	if f == nil {
		return p.fail(c, EBADF)
	}
	c.Conn = f.conn
	if optlen == nil || optval == nil || *optlen > len(optval) {
		return p.fail(c, EFAULT)
	}
	ol := 4 // truncated to a short optlen, below
	if d.getChecksOptlen {
		ol = *optlen
	}
	if e := d.check(d, level, optname, f.conn != nil, ol); e != (Errno{}) {
		return p.fail(c, e)
	}
	if *optlen < 0 {
		return p.fail(c, EINVAL)
	}
	v := d.get(f, c.Opt)
	c.Value = v
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	*optlen = copy(optval[:min(*optlen, 4)], b[:])
	return p.report(c)
}

// Connect starts a non-blocking connect: -1 with EINPROGRESS, as Linux
// answers for a non-blocking socket.
func (p *POSIX) Connect(fd int, addr netip.AddrPort) int {
	c := Call{Func: "connect", Value: addr.String()}
	f := p.fds[fd]
	if f == nil {
		return p.fail(c, EBADF)
	}
	c.Conn = f.conn
	if f.conn == nil {
		return p.fail(c, EPROTONOSUPPORT)
	}
	if err := f.conn.Connect(addr); err != nil {
		if e, ok := ErrnoFromError(err); ok { // fail numbers it as the dialect does
			return p.fail(c, e)
		}
		return p.fail(c, EAFNOSUPPORT)
	}
	return p.fail(c, EINPROGRESS)
}

// Accept returns the descriptor accept gives the application for c, a
// connection the host's listener took, with keep-alive off and the stack's
// defaults.
func (p *POSIX) Accept(c *stack.Conn) int {
	f := &pfd{conn: c}
	ka := c.KeepAlive()
	f.idle, f.interval, f.count = ka.Idle, ka.Interval, ka.Count
	fd := p.next
	p.next++
	p.fds[fd] = f
	return p.report(Call{Func: "accept", Conn: c, Value: c.RemoteAddr().String(), Result: fd})
}

// Send is send(fd, b, 0) on a non-blocking socket: the count the stack
// took, or -1 with EAGAIN when it took nothing, the connection's error, or
// EBADF for no such descriptor (a closed one).
func (p *POSIX) Send(fd int, b []byte) int {
	f, c, e := p.stream("send", fd)
	if e != (Errno{}) {
		return p.fail(c, e)
	}
	n, err := f.conn.Send(b)
	return p.transfer(c, n, err)
}

// Recv is recv(fd, buf, 0) on a non-blocking socket: the count read, 0 at
// the end of the stream, or -1 with EAGAIN when nothing is there, the
// connection's error (ETIMEDOUT when keep-alive gave up), or EBADF.
func (p *POSIX) Recv(fd int, buf []byte) int {
	f, c, e := p.stream("recv", fd)
	if e != (Errno{}) {
		return p.fail(c, e)
	}
	n, err := f.conn.Recv(buf)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return p.transfer(c, n, err)
}

// Close is close(fd): the connection closes (a FIN goes out if it was
// open) and the descriptor is gone, so every later call on it fails with
// EBADF.
func (p *POSIX) Close(fd int) int {
	c := Call{Func: "close"}
	f := p.fds[fd]
	if f == nil {
		return p.fail(c, EBADF)
	}
	delete(p.fds, fd)
	if f.conn != nil {
		c.Conn = f.conn
		f.conn.OnEvent(nil)
		_ = f.conn.Close()
	}
	return p.report(c)
}

// POSIXShutdownNames are shutdown(2)'s directions by number: SHUT_RD, SHUT_WR,
// SHUT_RDWR (stack.ShutdownRead, ShutdownWrite, ShutdownBoth).
var POSIXShutdownNames = []string{"SHUT_RD", "SHUT_WR", "SHUT_RDWR"}

// Shutdown is shutdown(fd, how): EINVAL for a direction other than
// SHUT_RD, SHUT_WR and SHUT_RDWR, EBADF for no such descriptor, ENOTCONN
// on a socket not connected.
func (p *POSIX) Shutdown(fd, how int) int {
	f, c, e := p.stream("shutdown", fd)
	if how >= 0 && how < len(POSIXShutdownNames) {
		c.Value = POSIXShutdownNames[how]
	} else {
		c.Value = how
	}
	if e != (Errno{}) {
		return p.fail(c, e)
	}
	if how < 0 || how >= len(POSIXShutdownNames) {
		return p.fail(c, EINVAL)
	}
	if err := f.conn.Shutdown(how); err != nil {
		e, _ := p.d.ErrnoFromError(err)
		return p.fail(c, e)
	}
	return p.report(c)
}

// stream finds fd's connection for a data call, or the errno: EBADF for no
// such descriptor, ENOTCONN for a datagram socket, which kasim does not
// carry.
func (p *POSIX) stream(call string, fd int) (*pfd, Call, Errno) {
	c := Call{Func: call}
	f := p.fds[fd]
	if f == nil {
		return nil, c, EBADF
	}
	c.Conn = f.conn
	if f.conn == nil {
		return nil, c, ENOTCONN
	}
	return f, c, Errno{}
}

// transfer reports a data call that moved n bytes or failed with err.
func (p *POSIX) transfer(c Call, n int, err error) int {
	c.Value, c.Result = n, n
	if err == nil {
		return p.report(c)
	}
	e, ok := ErrnoFromError(err)
	if !ok {
		e = Errno{Name: err.Error()}
	}
	return p.fail(c, e)
}

// Conn returns the simulated connection behind fd, or nil.
func (p *POSIX) Conn(fd int) *stack.Conn {
	if f := p.fds[fd]; f != nil {
		return f.conn
	}
	return nil
}
