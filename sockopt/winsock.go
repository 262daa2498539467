package sockopt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"kasim/stack"
)

// SOCKET is a Winsock socket handle.
type SOCKET uintptr

// Winsock constants, with the values of Winsock2.h, Ws2def.h, Ws2ipdef.h
// and Mstcpip.h.
const (
	SOCKET_ERROR   = -1
	INVALID_SOCKET = ^SOCKET(0)

	AF_INET     = 2
	AF_INET6    = 23
	SOCK_STREAM = 1
	SOCK_DGRAM  = 2
	IPPROTO_TCP = 6
	IPPROTO_UDP = 17

	SOL_SOCKET   = 0xffff
	SO_KEEPALIVE = 0x0008

	TCP_KEEPALIVE = 3 // the same option as TCP_KEEPIDLE
	TCP_KEEPIDLE  = 3
	TCP_KEEPCNT   = 16
	TCP_KEEPINTVL = 17

	SIO_KEEPALIVE_VALS = 0x98000004

	sizeofDWORD       = 4
	sizeofTcpKeepalve = 12 // struct tcp_keepalive: three u_long
)

// WSAError is a Windows Sockets error: its name and code.
type WSAError = ErrorCode

// Windows Sockets error codes.
var (
	WSAEFAULT          = WSAError{"WSAEFAULT", 10014}
	WSAEINVAL          = WSAError{"WSAEINVAL", 10022}
	WSAEWOULDBLOCK     = WSAError{"WSAEWOULDBLOCK", 10035}
	WSAEINPROGRESS     = WSAError{"WSAEINPROGRESS", 10036}
	WSAENOTSOCK        = WSAError{"WSAENOTSOCK", 10038}
	WSAENOPROTOOPT     = WSAError{"WSAENOPROTOOPT", 10042}
	WSAEPROTONOSUPPORT = WSAError{"WSAEPROTONOSUPPORT", 10043}
	WSAESOCKTNOSUPPORT = WSAError{"WSAESOCKTNOSUPPORT", 10044}
	WSAEOPNOTSUPP      = WSAError{"WSAEOPNOTSUPP", 10045}
	WSAEAFNOSUPPORT    = WSAError{"WSAEAFNOSUPPORT", 10047}
	WSAENETDOWN        = WSAError{"WSAENETDOWN", 10050}
	WSAENETRESET       = WSAError{"WSAENETRESET", 10052}
	WSAECONNABORTED    = WSAError{"WSAECONNABORTED", 10053}
	WSAECONNRESET      = WSAError{"WSAECONNRESET", 10054}
	WSAEISCONN         = WSAError{"WSAEISCONN", 10056}
	WSAENOTCONN        = WSAError{"WSAENOTCONN", 10057}
	WSAESHUTDOWN       = WSAError{"WSAESHUTDOWN", 10058}
	WSAETIMEDOUT       = WSAError{"WSAETIMEDOUT", 10060}
	WSAECONNREFUSED    = WSAError{"WSAECONNREFUSED", 10061}
	WSAVERNOTSUPPORTED = WSAError{"WSAVERNOTSUPPORTED", 10092}
	WSANOTINITIALISED  = WSAError{"WSANOTINITIALISED", 10093}
	// WSAIOPENDING is WSA_IO_PENDING: an overlapped operation will
	// complete later (not a failure).
	WSAIOPENDING = WSAError{"WSA_IO_PENDING", 997}
)

// Features are what the simulated Windows version's Winsock offers and
// defaults to; a Windows profile carries them (profile.Profile.Winsock).
type Features struct {
	Idle, Interval time.Duration // system keep-alive defaults (registry)
	ProbeCount     int           // system probe count (10, or the legacy registry rule)
	KeepCnt        bool          // TCP_KEEPCNT exists (Windows 10 1703 on)
	KeepIdle       bool          // TCP_KEEPIDLE and TCP_KEEPINTVL exist (1709 on)
	// RejectDuringConnect makes SO_KEEPALIVE fail with WSAEINVAL while a
	// connect is in progress (Vista and later).
	RejectDuringConnect bool
}

// Call is one Winsock call and its outcome, as the trace shows it. Level
// and Opt are symbolic names, empty for calls without them; Err is zero on
// success.
type Call struct {
	Socket SOCKET
	Conn   *stack.Conn // nil for datagram sockets and calls on no socket
	Func   string
	Level  string
	Opt    string
	Value  any
	Result int
	Err    ErrorCode
}

// Winsock is the Windows Sockets API of one simulated host. Every method
// returns as Winsock does (0, a count or a handle on success; SOCKET_ERROR
// or INVALID_SOCKET on failure, the reason from WSAGetLastError) and is
// reported to OnCall.
type Winsock struct {
	host    *stack.Host
	feat    Features
	started int
	lastErr WSAError
	socks   map[SOCKET]*wsock
	next    SOCKET
	netDown bool
	// OnCall, if set, sees every call and its outcome.
	OnCall func(Call)
}

type wsock struct {
	conn           *stack.Conn // nil for a datagram socket
	keepAlive      bool
	idle, interval time.Duration
	count          int
	blocking11     bool
	// keep-alive failure: failed once the connection died of it; pending
	// holds the operation in progress, which gets WSAENETRESET.
	failed     bool
	pending    func(n int, err WSAError)
	buf        []byte
	connecting func(err WSAError) // a ConnectEx in progress
	shutRead   bool               // shut down for receiving (SD_RECEIVE, SD_BOTH)
}

// NewWinsock returns the Winsock of host, with the given features.
func NewWinsock(host *stack.Host, f Features) *Winsock {
	return &Winsock{host: host, feat: f, socks: make(map[SOCKET]*wsock), next: 0x100}
}

// WSAGetLastError returns the error of the last failed call.
func (w *Winsock) WSAGetLastError() int { return w.lastErr.Code }

// LastError returns the error of the last failed call, by name.
func (w *Winsock) LastError() WSAError { return w.lastErr }

// SetNetworkDown simulates a failed network subsystem: calls then fail with
// WSAENETDOWN.
func (w *Winsock) SetNetworkDown(down bool) { w.netDown = down }

// SetBlockingCall marks a blocking Winsock 1.1 call as in progress on s (or
// no longer): calls on s then fail with WSAEINPROGRESS.
func (w *Winsock) SetBlockingCall(s SOCKET, inProgress bool) {
	if ws := w.socks[s]; ws != nil {
		ws.blocking11 = inProgress
	}
}

func (w *Winsock) report(c Call) int {
	if c.Err != (WSAError{}) {
		w.lastErr = c.Err
	}
	if w.OnCall != nil {
		w.OnCall(c)
	}
	return c.Result
}

func (w *Winsock) fail(c Call, e WSAError) int {
	c.Result, c.Err = SOCKET_ERROR, e
	return w.report(c)
}

// WSAStartup starts Winsock for the host; version is MAKEWORD(major, minor).
func (w *Winsock) WSAStartup(version uint16) int {
	c := Call{Func: "WSAStartup", Value: fmt.Sprintf("%d.%d", version&0xff, version>>8)}
	if version&0xff < 1 || (version&0xff == 1 && version>>8 < 1) {
		c.Result, c.Err = int(WSAVERNOTSUPPORTED.Code), WSAVERNOTSUPPORTED
		return w.report(c)
	}
	w.started++
	return w.report(c)
}

// WSACleanup undoes one WSAStartup.
func (w *Winsock) WSACleanup() int {
	c := Call{Func: "WSACleanup"}
	if w.started == 0 {
		return w.fail(c, WSANOTINITIALISED)
	}
	w.started--
	return w.report(c)
}

// Socket creates a socket. Stream sockets are simulated TCP connections;
// datagram sockets exist only to answer option calls (kasim simulates TCP).
func (w *Winsock) Socket(af, typ, protocol int) SOCKET {
	c := Call{Func: "socket", Value: fmt.Sprintf("%s, %s, %d", afName(af), typeName(typ), protocol)}
	fail := func(e WSAError) SOCKET {
		c.Result, c.Err = -1, e // INVALID_SOCKET
		w.report(c)
		return INVALID_SOCKET
	}
	switch {
	case w.started == 0:
		return fail(WSANOTINITIALISED)
	case w.netDown:
		return fail(WSAENETDOWN)
	case af != AF_INET && af != AF_INET6:
		return fail(WSAEAFNOSUPPORT)
	case typ != SOCK_STREAM && typ != SOCK_DGRAM:
		return fail(WSAESOCKTNOSUPPORT)
	case typ == SOCK_STREAM && protocol != 0 && protocol != IPPROTO_TCP,
		typ == SOCK_DGRAM && protocol != 0 && protocol != IPPROTO_UDP:
		return fail(WSAEPROTONOSUPPORT)
	}
	ws := &wsock{idle: w.feat.Idle, interval: w.feat.Interval, count: w.feat.ProbeCount}
	if typ == SOCK_STREAM {
		network := "tcp4"
		if af == AF_INET6 {
			network = "tcp6"
		}
		conn, err := w.host.Socket(network)
		if err != nil {
			return fail(WSAENETDOWN)
		}
		ws.conn = conn
		c.Conn = conn
	}
	w.next += 4 // Windows hands out handles in steps of four
	s := w.next
	w.socks[s] = ws
	c.Socket, c.Result = s, int(s)
	w.report(c)
	return s
}

// Accept returns the socket accept gives the application for c, a
// connection the host's listener took: keep-alive off and the system's
// values, as a new socket has (kasim does not model option inheritance
// from the listening socket).
func (w *Winsock) Accept(c *stack.Conn) SOCKET {
	call := Call{Func: "accept", Conn: c, Value: c.RemoteAddr().String()}
	if w.started == 0 {
		call.Result, call.Err = -1, WSANOTINITIALISED // INVALID_SOCKET
		w.report(call)
		return INVALID_SOCKET
	}
	ws := &wsock{conn: c, idle: w.feat.Idle, interval: w.feat.Interval, count: w.feat.ProbeCount}
	w.next += 4
	s := w.next
	w.socks[s] = ws
	c.OnEvent(func(*stack.Conn) { w.poll(s, ws) })
	call.Socket, call.Result = s, int(s)
	w.report(call)
	return s
}

// lookup runs the checks every socket call starts with, in Winsock's order.
func (w *Winsock) lookup(s SOCKET) (*wsock, WSAError) {
	switch {
	case w.started == 0:
		return nil, WSANOTINITIALISED
	case w.netDown:
		return nil, WSAENETDOWN
	}
	ws := w.socks[s]
	switch {
	case ws == nil:
		return nil, WSAENOTSOCK
	case ws.blocking11:
		return nil, WSAEINPROGRESS
	}
	return ws, WSAError{}
}

// Setsockopt is setsockopt(s, level, optname, optval, optlen). optval is the
// caller's buffer (nil for a null pointer); optlen may not exceed it.
//
// Checks, in order: Winsock started, network up, s a socket, no blocking
// 1.1 call, optval valid memory (WSAEFAULT), level known (WSAEINVAL),
// option known for the level, version and socket type (WSAENOPROTOOPT),
// optlen at least sizeof(DWORD) (WSAEFAULT), then the option's own rules.
func (w *Winsock) Setsockopt(s SOCKET, level, optname int, optval []byte, optlen int) int {
	c := Call{Socket: s, Func: "setsockopt", Level: levelName(level), Opt: optName(level, optname)}
	ws, e := w.lookup(s)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	c.Conn = ws.conn
	if optval == nil || optlen < 0 || optlen > len(optval) {
		return w.fail(c, WSAEFAULT)
	}
	if e := w.checkOption(ws, level, optname); e != (WSAError{}) {
		return w.fail(c, e)
	}
	if optlen < sizeofDWORD {
		return w.fail(c, WSAEFAULT)
	}
	v := binary.LittleEndian.Uint32(optval)
	switch {
	case level == SOL_SOCKET: // SO_KEEPALIVE: a BOOL, any non-zero is TRUE
		c.Value = boolValue(v)
		if w.feat.RejectDuringConnect && ws.conn.State() == stack.SynSent {
			return w.fail(c, WSAEINVAL)
		}
		ws.keepAlive = v != 0
	case optname == TCP_KEEPCNT:
		c.Value = v
		if v > 255 {
			return w.fail(c, WSAEINVAL)
		}
		ws.count = int(v)
	default: // TCP_KEEPIDLE, TCP_KEEPINTVL: seconds
		c.Value = v
		if v == 0 || v > 1<<31/1000 {
			// Zero is undocumented; kasim refuses it, as Linux does.
			return w.fail(c, WSAEINVAL)
		}
		if optname == TCP_KEEPIDLE {
			ws.idle = time.Duration(v) * time.Second
		} else {
			ws.interval = time.Duration(v) * time.Second
		}
	}
	w.apply(ws)
	return w.report(c)
}

// checkOption decides whether (level, optname) exists for this socket.
func (w *Winsock) checkOption(ws *wsock, level, optname int) WSAError {
	switch level {
	case SOL_SOCKET:
		if optname != SO_KEEPALIVE {
			return WSAENOPROTOOPT
		}
	case IPPROTO_TCP:
		switch {
		case optname == TCP_KEEPCNT && w.feat.KeepCnt,
			(optname == TCP_KEEPIDLE || optname == TCP_KEEPINTVL) && w.feat.KeepIdle:
		default:
			return WSAENOPROTOOPT
		}
	default:
		return WSAEINVAL
	}
	if ws.conn == nil { // a datagram socket has no keep-alive
		return WSAENOPROTOOPT
	}
	return WSAError{}
}

// apply pushes a socket's keep-alive settings down to its connection.
func (w *Winsock) apply(ws *wsock) {
	c := ws.conn
	_ = c.SetKeepAliveIdle(ws.idle)
	_ = c.SetKeepAliveInterval(ws.interval)
	_ = c.SetKeepAliveCount(ws.count)
	c.SetKeepAliveEnabled(ws.keepAlive)
}

// Getsockopt is getsockopt(s, level, optname, optval, optlen). On success it
// writes a DWORD to optval and sets *optlen to 4; when *optlen is below 4 it
// fails with WSAEFAULT and leaves optval untouched.
func (w *Winsock) Getsockopt(s SOCKET, level, optname int, optval []byte, optlen *int) int {
	c := Call{Socket: s, Func: "getsockopt", Level: levelName(level), Opt: optName(level, optname)}
	ws, e := w.lookup(s)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	c.Conn = ws.conn
	if optval == nil || optlen == nil || *optlen < 0 || *optlen > len(optval) {
		return w.fail(c, WSAEFAULT)
	}
	if e := w.checkOption(ws, level, optname); e != (WSAError{}) {
		return w.fail(c, e)
	}
	if *optlen < sizeofDWORD {
		return w.fail(c, WSAEFAULT)
	}
	var v uint32
	switch {
	case level == SOL_SOCKET:
		if ws.keepAlive {
			v = 1
		}
		c.Value = boolValue(v)
	case optname == TCP_KEEPCNT:
		v = uint32(ws.count)
		c.Value = v
	case optname == TCP_KEEPIDLE:
		v = uint32(ws.idle / time.Second)
		c.Value = v
	default:
		v = uint32(ws.interval / time.Second)
		c.Value = v
	}
	binary.LittleEndian.PutUint32(optval, v)
	*optlen = sizeofDWORD
	return w.report(c)
}

// WSAIoctl is WSAIoctl for SIO_KEEPALIVE_VALS: in holds struct tcp_keepalive
// { u_long onoff, keepalivetime, keepaliveinterval } (milliseconds). The
// values cannot be read back: there is no get.
func (w *Winsock) WSAIoctl(s SOCKET, code uint32, in []byte, out []byte, bytesReturned *uint32) int {
	c := Call{Socket: s, Func: "WSAIoctl", Opt: ioctlName(code)}
	ws, e := w.lookup(s)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	c.Conn = ws.conn
	if code != SIO_KEEPALIVE_VALS {
		return w.fail(c, WSAEOPNOTSUPP)
	}
	if ws.conn == nil {
		return w.fail(c, WSAENOPROTOOPT)
	}
	if len(in) < sizeofTcpKeepalve || bytesReturned == nil {
		return w.fail(c, WSAEFAULT)
	}
	onoff := binary.LittleEndian.Uint32(in[0:])
	ms := binary.LittleEndian.Uint32(in[4:])
	intvl := binary.LittleEndian.Uint32(in[8:])
	c.Value = fmt.Sprintf("{onoff=%d, keepalivetime=%d, keepaliveinterval=%d}", onoff, ms, intvl)
	if onoff != 0 && (ms == 0 || intvl == 0) {
		// What Windows does with a zero time or interval is undocumented;
		// kasim refuses it rather than guess.
		return w.fail(c, WSAEINVAL)
	}
	ws.keepAlive = onoff != 0
	if onoff != 0 {
		ws.idle = time.Duration(ms) * time.Millisecond
		ws.interval = time.Duration(intvl) * time.Millisecond
	}
	*bytesReturned = 0
	w.apply(ws)
	return w.report(c)
}

// Connect starts connecting s to addr. Sockets are non-blocking: success is
// SOCKET_ERROR with WSAEWOULDBLOCK, the connection completing later.
func (w *Winsock) Connect(s SOCKET, addr netip.AddrPort) int {
	c := Call{Socket: s, Func: "connect", Value: addr.String()}
	if _, e := w.startConnect(&c, s, addr); e != (WSAError{}) {
		return w.fail(c, e)
	}
	return w.fail(c, WSAEWOULDBLOCK)
}

// ConnectEx starts connecting s to addr and calls done once the connection
// is established (with no error) or has failed, as an overlapped ConnectEx
// completes. It returns SOCKET_ERROR with WSA_IO_PENDING (997).
func (w *Winsock) ConnectEx(s SOCKET, addr netip.AddrPort, done func(err WSAError)) int {
	c := Call{Socket: s, Func: "ConnectEx", Value: addr.String()}
	ws, e := w.startConnect(&c, s, addr)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	ws.connecting = done
	return w.fail(c, WSAIOPENDING)
}

// stream runs the checks every call on a stream socket starts with (lookup's,
// then WSAEOPNOTSUPP for a datagram socket) and records the connection in c.
func (w *Winsock) stream(c *Call, s SOCKET) (*wsock, WSAError) {
	ws, e := w.lookup(s)
	if e != (WSAError{}) {
		return nil, e
	}
	c.Conn = ws.conn
	if ws.conn == nil {
		return nil, WSAEOPNOTSUPP
	}
	return ws, WSAError{}
}

// startConnect checks s and starts its connect, for connect and ConnectEx.
func (w *Winsock) startConnect(c *Call, s SOCKET, addr netip.AddrPort) (*wsock, WSAError) {
	ws, e := w.stream(c, s)
	if e != (WSAError{}) {
		return nil, e
	}
	if ws.conn.State() != stack.Closed {
		return nil, WSAEISCONN
	}
	if err := ws.conn.Connect(addr); err != nil {
		return nil, WSAEAFNOSUPPORT
	}
	// The handler first runs after this call returns, at the same instant.
	ws.conn.OnEvent(func(*stack.Conn) { w.poll(s, ws) })
	return ws, WSAError{}
}

// Send queues data on s and returns how much was taken.
func (w *Winsock) Send(s SOCKET, data []byte) int {
	c := Call{Socket: s, Func: "send", Value: len(data)}
	ws, e := w.stream(&c, s)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	if ws.failed || ws.conn.AbortedByKeepAlive() {
		// Every call after keep-alive gave up (seed document).
		return w.fail(c, WSAECONNRESET)
	}
	n, err := ws.conn.Send(data)
	if err != nil {
		return w.fail(c, w.errorOf(ws, err))
	}
	c.Result = n
	return w.report(c)
}

// RecvAsync starts a receive on s that stays in progress until data or an
// error arrives, then calls done with the byte count or the error (an
// overlapped WSARecv, or a blocking recv on its own thread). Only one may be
// in progress per socket.
func (w *Winsock) RecvAsync(s SOCKET, buf []byte, done func(n int, err WSAError)) int {
	c := Call{Socket: s, Func: "WSARecv", Value: len(buf)}
	ws, e := w.stream(&c, s)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	switch {
	case ws.pending != nil:
		return w.fail(c, WSAEINPROGRESS)
	case ws.failed:
		return w.fail(c, WSAECONNRESET)
	case ws.shutRead:
		return w.fail(c, WSAESHUTDOWN)
	}
	ws.pending, ws.buf = done, buf
	c.Err = WSAIOPENDING
	c.Result = SOCKET_ERROR
	w.report(c)
	w.poll(s, ws)
	return SOCKET_ERROR
}

// poll completes the connect and the receive in progress on s, if it can.
func (w *Winsock) poll(s SOCKET, ws *wsock) {
	if done := ws.connecting; done != nil {
		switch st := ws.conn.State(); {
		case st == stack.SynSent:
		case st == stack.Closed:
			ws.connecting = nil
			e := WSAECONNREFUSED
			if _, err := ws.conn.Recv(nil); err != nil {
				e = w.errorOf(ws, err)
			}
			w.report(Call{Socket: s, Conn: ws.conn, Func: "ConnectEx completes", Result: SOCKET_ERROR, Err: e})
			done(e)
		default:
			ws.connecting = nil
			w.report(Call{Socket: s, Conn: ws.conn, Func: "ConnectEx completes"})
			done(WSAError{})
		}
	}
	if ws.pending == nil {
		return
	}
	n, err := ws.conn.Recv(ws.buf)
	if errors.Is(err, stack.ErrWouldBlock) {
		return
	}
	done := ws.pending
	ws.pending = nil
	c := Call{Socket: s, Conn: ws.conn, Func: "WSARecv completes", Result: n}
	switch {
	case err == nil:
		w.report(c)
		done(n, WSAError{})
	case errors.Is(err, io.EOF):
		c.Result = 0
		w.report(c)
		done(0, WSAError{})
	default:
		e := w.errorOf(ws, err) // WSAENETRESET for the operation in progress when keep-alive gave up
		ws.failed = true
		c.Result, c.Err = SOCKET_ERROR, e
		w.report(c)
		done(0, e)
	}
}

// Recv reads what has arrived on s, without waiting: a byte count, 0 at the
// end of the stream, or SOCKET_ERROR (WSAEWOULDBLOCK when nothing is there).
func (w *Winsock) Recv(s SOCKET, buf []byte) int {
	c := Call{Socket: s, Func: "recv", Value: len(buf)}
	ws, e := w.stream(&c, s)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	if ws.shutRead {
		return w.fail(c, WSAESHUTDOWN)
	}
	if ws.failed {
		return w.fail(c, WSAECONNRESET)
	}
	n, err := ws.conn.Recv(buf)
	switch {
	case err == nil:
		c.Result = n
		return w.report(c)
	case errors.Is(err, io.EOF):
		return w.report(c)
	case errors.Is(err, stack.ErrWouldBlock):
		return w.fail(c, WSAEWOULDBLOCK)
	}
	ws.failed = true
	// No operation was in progress when the connection died: later calls
	// get WSAECONNRESET, whatever the cause.
	return w.fail(c, WSAECONNRESET)
}

// Closesocket closes s; the handle is invalid afterwards.
func (w *Winsock) Closesocket(s SOCKET) int {
	c := Call{Socket: s, Func: "closesocket"}
	ws, e := w.lookup(s)
	if e != (WSAError{}) {
		return w.fail(c, e)
	}
	c.Conn = ws.conn
	if ws.conn != nil {
		ws.conn.OnEvent(nil)
		_ = ws.conn.Close()
	}
	delete(w.socks, s)
	return w.report(c)
}

// WinsockShutdownNames are Winsock shutdown's directions by number: SD_RECEIVE,
// SD_SEND, SD_BOTH.
var WinsockShutdownNames = []string{"SD_RECEIVE", "SD_SEND", "SD_BOTH"}

// Shutdown is shutdown(s, how): WSAEINVAL for a direction other than
// SD_RECEIVE, SD_SEND and SD_BOTH, WSAENOTCONN on a socket not connected
// ("shutdown function (winsock.h)").
func (w *Winsock) Shutdown(s SOCKET, how int) int {
	c := Call{Socket: s, Func: "shutdown", Value: how}
	if how >= 0 && how < len(WinsockShutdownNames) {
		c.Value = WinsockShutdownNames[how]
	}
	ws, e := w.stream(&c, s)
	switch {
	case e != (WSAError{}):
		return w.fail(c, e)
	case how < 0 || how >= len(WinsockShutdownNames):
		return w.fail(c, WSAEINVAL)
	case !ws.conn.WasEstablished() || ws.conn.State() == stack.Closed:
		return w.fail(c, WSAENOTCONN)
	}
	if err := ws.conn.Shutdown(how); err != nil {
		return w.fail(c, WSAENOTCONN)
	}
	if how != stack.ShutdownWrite {
		// "For TCP sockets, if there is still data queued on the socket
		// waiting to be received, or data arrives subsequently, the
		// connection is reset, since the data cannot be delivered to
		// the user." Later receives fail with WSAESHUTDOWN.
		ws.shutRead = true
		w.report(c)
		ws.conn.ResetOnData()
		return 0
	}
	return w.report(c)
}

// Conn returns the simulated connection behind s, or nil.
func (w *Winsock) Conn(s SOCKET) *stack.Conn {
	if ws := w.socks[s]; ws != nil {
		return ws.conn
	}
	return nil
}

// errorOf maps a failed stack call to the Winsock error an application
// sees. A timeout is keep-alive giving up (WSAENETRESET, "broken due to
// keep-alive activity"), a connect that timed out (WSAETIMEDOUT), or else
// retransmission giving up on an established connection: WSAECONNABORTED,
// "possibly due to a data transmission time-out" (Windows Sockets error
// codes).
func (w *Winsock) errorOf(ws *wsock, err error) WSAError {
	var op *stack.OpError
	if !errors.As(err, &op) {
		return WSAENOTCONN
	}
	switch op.Err.(type) {
	case *tcpip.ErrTimeout:
		switch {
		case ws.conn.AbortedByKeepAlive():
			return WSAENETRESET
		case !ws.conn.WasEstablished():
			return WSAETIMEDOUT
		}
		return WSAECONNABORTED
	case *tcpip.ErrConnectionReset:
		return WSAECONNRESET
	case *tcpip.ErrConnectionRefused:
		return WSAECONNREFUSED
	case *tcpip.ErrConnectionAborted:
		return WSAECONNABORTED
	}
	return WSAENOTCONN
}

func boolValue(v uint32) int {
	if v != 0 {
		return 1
	}
	return 0
}
