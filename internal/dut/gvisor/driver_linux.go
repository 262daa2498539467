package gvisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"kasim/internal/dut"
	"kasim/sockopt"
)

// maxLine bounds a request line (the protocol's 64 KiB), maxIO one send or
// recv (as kasim's kernel helper does).
const (
	maxLine = 64 << 10
	maxIO   = 1 << 20
)

// options are the socket options the driver takes, as its hello lists them.
var options = []string{dut.SO_KEEPALIVE, dut.TCP_KEEPIDLE, dut.TCP_KEEPINTVL, dut.TCP_KEEPCNT, dut.TCP_USER_TIMEOUT}

// The errnos the driver gives itself rather than from a tcpip.Error
// (Linux's numbers, as gVisor's sentry returns them).
var (
	errBadHandle  = sockopt.EBADF
	errInvalid    = sockopt.EINVAL // syserr.ErrInvalidArgument
	errNoOption   = sockopt.ENOPROTOOPT
	errInProgress = sockopt.ErrnoOf(&tcpip.ErrConnectStarted{})
	noError       = sockopt.Errno{}
)

// maxListenBacklog caps listen's backlog, as gVisor's listen(2) does
// (pkg/sentry/syscalls/linux/sys_socket.go).
const maxListenBacklog = 1024

// errnoOf is what a Linux application under gVisor gets for err: gVisor's
// own translation (pkg/syserr/netstack.go, TranslateNetstackError), the
// one kasim's simulation uses too.
func errnoOf(err tcpip.Error) sockopt.Errno {
	if err == nil {
		return noError
	}
	return sockopt.ErrnoOf(err)
}

// handle is one socket: an endpoint and the queue it notifies.
type handle struct {
	ep tcpip.Endpoint
	wq *waiter.Queue

	// closed is closed by the close op (or the end of input): a call still
	// blocked on the socket then ends without a report, as a blocked call
	// whose descriptor another thread closed never returns on Linux.
	closed    chan struct{}
	closeOnce sync.Once
}

func newHandle(ep tcpip.Endpoint, wq *waiter.Queue) *handle {
	return &handle{ep: ep, wq: wq, closed: make(chan struct{})}
}

func (h *handle) close() {
	h.closeOnce.Do(func() {
		close(h.closed)
		h.ep.Close()
	})
}

func (h *handle) isClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

// wait blocks until the endpoint signals one of mask's events, and says
// false if the socket was closed meanwhile. It registers before it is
// called: the caller makes the call, sees ErrWouldBlock, then waits, so a
// notification between the two is not lost (the channel keeps one).
func (h *handle) waitOn(mask waiter.EventMask) (wait func() bool, done func()) {
	e, ch := waiter.NewChannelEntry(mask)
	h.wq.EventRegister(&e)
	wait = func() bool {
		select {
		case <-ch:
			return true
		case <-h.closed:
			return false
		}
	}
	return wait, func() { h.wq.EventUnregister(&e) }
}

// driver serves kasim's requests on one gVisor stack.
type driver struct {
	st *stack.Stack

	outMu sync.Mutex
	enc   *json.Encoder

	mu      sync.Mutex
	handles map[int]*handle
	next    int // the next handle; never reused

	pending sync.WaitGroup // the goroutines of blocking calls
}

func newDriver(st *stack.Stack, out io.Writer) *driver {
	return &driver{st: st, enc: json.NewEncoder(out), handles: map[int]*handle{}, next: 3}
}

// now is CLOCK_MONOTONIC in nanoseconds, the clock kasim reads too.
func now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return ts.Nano()
}

// send writes one line. A failed write means kasim is gone; the end of
// input follows.
func (d *driver) send(m dut.Message) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	_ = d.enc.Encode(m)
}

// gvisorVersion is the version of the gVisor module this binary was built
// with: from the build information, or where that lists no modules (a
// test binary), from the path of gVisor's source file that the binary
// records for one of its functions (".../gvisor.dev/gvisor@VERSION/...").
func gvisorVersion() string {
	const mod = "gvisor.dev/gvisor"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path != mod {
				continue
			}
			if m.Replace != nil && m.Replace.Version != "" {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	if f := runtime.FuncForPC(reflect.ValueOf(tcpip.NewStdClock).Pointer()); f != nil {
		file, _ := f.FileLine(f.Entry())
		if _, rest, ok := strings.Cut(file, mod+"@"); ok {
			if v, _, ok := strings.Cut(rest, "/"); ok {
				return v
			}
		}
	}
	return "unknown"
}

func (d *driver) hello(pid int) {
	d.send(dut.Message{
		Event:    dut.EventHello,
		Protocol: dut.Version,
		Stack:    "gVisor netstack",
		Version:  gvisorVersion(),
		API:      dut.APIPOSIX,
		Options:  options,
		Ret:      pid,
		T:        now(),
	})
}

// reply answers req: ret, or -1 and the errno.
func (d *driver) reply(req dut.Request, ret int, e sockopt.Errno, t int64) {
	d.send(result(dut.Message{ID: req.ID, FD: req.FD, Ret: ret, T: t}, e))
}

// report sends the outcome of a blocking call, unless its socket was
// closed meanwhile.
func (d *driver) report(h *handle, m dut.Message, e sockopt.Errno) {
	if h.isClosed() {
		return
	}
	d.send(result(m, e))
}

func result(m dut.Message, e sockopt.Errno) dut.Message {
	if e != noError {
		m.Ret, m.Errno, m.ErrnoName = -1, e.Code, e.Name
	}
	return m
}

func (d *driver) fail(req dut.Request, format string, args ...any) {
	why := fmt.Sprintf(format, args...)
	if req.Op != "" {
		why = req.Op + ": " + why
	}
	d.send(dut.Message{ID: req.ID, FD: req.FD, Fail: why, T: now()})
}

// serve reads requests from in until it ends, and answers them. It returns
// the driver's exit status: 0 at the end of input, 1 if dead says the
// link failed first.
func (d *driver) serve(in io.Reader, dead <-chan error, errw io.Writer) int {
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		// If the link dies this goroutine stays blocked on in; the
		// process exits anyway.
		readErr <- readLines(in, lines)
	}()
	defer d.closeAll()
	n := 0
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					fmt.Fprintf(errw, "kasim gvisor driver: reading requests: %v\n", err)
				}
				return 0
			}
			n++
			d.line(n, line)
		case err := <-dead:
			fmt.Fprintf(errw, "kasim gvisor driver: %v\n", err)
			return 1
		}
	}
}

// tooLong stands for a line longer than maxLine: readLines sends it in the
// line's place, having dropped the line.
var tooLong = []byte{0}

// readLines sends each line of in (without its newline) on lines, and
// closes lines at the end of in. A line longer than maxLine is dropped up
// to its newline and sent as tooLong, so that the lines after it are
// still read.
func readLines(in io.Reader, lines chan<- []byte) error {
	defer close(lines)
	br := bufio.NewReaderSize(in, maxLine+1)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			lines <- tooLong
		} else if len(line) > 0 {
			lines <- bytes.Clone(bytes.TrimSuffix(line, []byte("\n")))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// line handles the n-th line of input.
func (d *driver) line(n int, line []byte) {
	if bytes.Equal(line, tooLong) {
		d.fail(dut.Request{}, "line %d: longer than %d bytes", n, maxLine)
		return
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	var req dut.Request
	if err := json.Unmarshal(line, &req); err != nil {
		d.fail(dut.Request{}, "line %d: not JSON: %v", n, err)
		return
	}
	d.handle(req)
}

func (d *driver) lookup(fd int) *handle {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handles[fd]
}

func (d *driver) adopt(h *handle) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	fd := d.next
	d.next++
	d.handles[fd] = h
	return fd
}

// closeAll closes every socket, at the end of input, and waits for the
// blocked calls to end.
func (d *driver) closeAll() {
	d.mu.Lock()
	hs := d.handles
	d.handles = map[int]*handle{}
	d.mu.Unlock()
	for _, h := range hs {
		h.close()
	}
	d.pending.Wait()
}

func (d *driver) handle(req dut.Request) {
	switch req.Op {
	case dut.OpSocket:
		var wq waiter.Queue
		ep, err := d.st.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
		if err != nil {
			d.reply(req, -1, errnoOf(err), now())
			return
		}
		d.reply(req, d.adopt(newHandle(ep, &wq)), noError, now())
		return
	case dut.OpSetsockopt, dut.OpGetsockopt, dut.OpBind, dut.OpListen, dut.OpConnect,
		dut.OpAccept, dut.OpSend, dut.OpRecv, dut.OpShutdown, dut.OpClose:
	default:
		d.fail(req, "unknown op")
		return
	}
	h := d.lookup(req.FD)
	if h == nil {
		d.reply(req, -1, errBadHandle, now())
		return
	}
	switch req.Op {
	case dut.OpSetsockopt:
		if req.Level == "" || req.Opt == "" {
			d.fail(req, "level and opt are required")
			return
		}
		e := setsockopt(h.ep, req.Level, req.Opt, req.Value)
		d.reply(req, 0, e, now())
	case dut.OpGetsockopt:
		if req.Level == "" || req.Opt == "" {
			d.fail(req, "level and opt are required")
			return
		}
		v, e := getsockopt(h.ep, req.Level, req.Opt)
		d.reply(req, v, e, now())
	case dut.OpBind:
		addr, err := fullAddress(req.Addr)
		if err != nil {
			d.fail(req, "%v", err)
			return
		}
		d.reply(req, 0, errnoOf(h.ep.Bind(addr)), now())
	case dut.OpListen:
		d.reply(req, 0, errnoOf(h.ep.Listen(listenBacklog(req.N))), now())
	case dut.OpConnect:
		d.connect(req, h)
	case dut.OpAccept:
		d.reply(req, 0, noError, now())
		d.pending.Add(1)
		go d.accept(req, h)
	case dut.OpSend:
		if req.N < 0 || req.N > maxIO {
			d.fail(req, "n=%d is not in 0..%d", req.N, maxIO)
			return
		}
		d.sendOp(req, h)
	case dut.OpRecv:
		if req.N <= 0 || req.N > maxIO {
			d.fail(req, "n=%d is not in 1..%d", req.N, maxIO)
			return
		}
		d.reply(req, 0, noError, now())
		d.pending.Add(1)
		go d.recv(req, h)
	case dut.OpShutdown:
		// pkg/sentry/socket/netstack/netstack.go: ConvertShutdown.
		var f tcpip.ShutdownFlags
		switch req.N {
		case linux.SHUT_RD:
			f = tcpip.ShutdownRead
		case linux.SHUT_WR:
			f = tcpip.ShutdownWrite
		case linux.SHUT_RDWR:
			f = tcpip.ShutdownRead | tcpip.ShutdownWrite
		default:
			d.reply(req, -1, errInvalid, now())
			return
		}
		d.reply(req, 0, errnoOf(h.ep.Shutdown(f)), now())
	case dut.OpClose:
		d.mu.Lock()
		delete(d.handles, req.FD)
		d.mu.Unlock()
		h.close()
		d.reply(req, 0, noError, now())
	}
}

// listenBacklog is the backlog gVisor's listen(2) hands its endpoint
// (pkg/sentry/syscalls/linux/sys_socket.go, Listen): the int read as
// unsigned, capped at maxListenBacklog, plus one.
func listenBacklog(n int) int {
	b := uint32(n)
	if b > maxListenBacklog {
		b = maxListenBacklog
	}
	return int(b) + 1
}

// fullAddress parses "ip:port". The address 0.0.0.0 is the empty one, as
// gVisor's sentry converts it (pkg/sentry/socket/socket.go,
// BytesToIPAddress).
func fullAddress(s string) (tcpip.FullAddress, error) {
	if s == "" {
		return tcpip.FullAddress{}, errors.New("addr is required")
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return tcpip.FullAddress{}, err
	}
	if !ap.Addr().Is4() {
		return tcpip.FullAddress{}, fmt.Errorf("%s is not an IPv4 address", s)
	}
	fa := tcpip.FullAddress{Port: ap.Port()}
	if !ap.Addr().IsUnspecified() {
		fa.Addr = tcpip.AddrFrom4(ap.Addr().As4())
	}
	return fa, nil
}

func addrString(fa tcpip.FullAddress) string {
	if fa.Addr.Len() != 4 {
		return fmt.Sprintf("0.0.0.0:%d", fa.Port)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(fa.Addr.As4()), fa.Port).String()
}

// connect starts a connect as a non-blocking socket does: EINPROGRESS at
// once, and the outcome reported when the endpoint becomes writable or
// fails. The outcome is what gVisor's blocking connect returns after its
// wait (pkg/sentry/socket/netstack/netstack.go, sock.Connect): Connect
// called again.
func (d *driver) connect(req dut.Request, h *handle) {
	addr, err := fullAddress(req.Addr)
	if err != nil {
		d.fail(req, "%v", err)
		return
	}
	wait, done := h.waitOn(waiter.WritableEvents | waiter.EventErr | waiter.EventHUp)
	terr := h.ep.Connect(addr)
	t := now()
	if _, ok := terr.(*tcpip.ErrConnectStarted); !ok {
		done()
		d.reply(req, 0, errnoOf(terr), t)
		return
	}
	d.reply(req, -1, errInProgress, t)
	d.pending.Add(1)
	go func() {
		defer d.pending.Done()
		defer done()
		for {
			if !wait() {
				return
			}
			terr := h.ep.Connect(addr)
			t := now()
			if _, ok := terr.(*tcpip.ErrAlreadyConnecting); ok {
				continue // not yet
			}
			d.report(h, dut.Message{ID: req.ID, Event: dut.EventConnect, FD: req.FD, T: t}, errnoOf(terr))
			return
		}
	}()
}

// accept blocks as gVisor's accept(2) does (sock.blockingAccept): Accept,
// and on ErrWouldBlock wait until readable.
func (d *driver) accept(req dut.Request, h *handle) {
	defer d.pending.Done()
	wait, done := h.waitOn(waiter.ReadableEvents | waiter.EventErr | waiter.EventHUp)
	defer done()
	for {
		var peer tcpip.FullAddress
		nep, nwq, terr := h.ep.Accept(&peer)
		t := now()
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			if !wait() {
				return
			}
			continue
		}
		m := dut.Message{ID: req.ID, Event: dut.EventAccept, FD: req.FD, T: t}
		if terr == nil {
			if h.isClosed() {
				nep.Close()
				return
			}
			m.Ret = d.adopt(newHandle(nep, nwq))
			m.Detail = addrString(peer)
		}
		d.report(h, m, errnoOf(terr))
		return
	}
}

// recv blocks as gVisor's recv(2) does (sock.RecvMsg): Read, and on
// ErrWouldBlock wait until readable. The end of the stream
// (ErrClosedForReceive, which gVisor translates to no errno) is 0 octets.
func (d *driver) recv(req dut.Request, h *handle) {
	defer d.pending.Done()
	wait, done := h.waitOn(waiter.ReadableEvents | waiter.EventErr | waiter.EventHUp)
	defer done()
	var buf bytes.Buffer
	for {
		res, terr := h.ep.Read(&tcpip.LimitedWriter{W: &buf, N: int64(req.N)}, tcpip.ReadOptions{})
		t := now()
		m := dut.Message{ID: req.ID, Event: dut.EventRecv, FD: req.FD, T: t}
		switch terr.(type) {
		case *tcpip.ErrWouldBlock:
			if !wait() {
				return
			}
			continue
		case nil:
			m.Ret = res.Count
		case *tcpip.ErrClosedForReceive:
			terr = nil
		}
		d.report(h, m, errnoOf(terr))
		return
	}
}

// sendOp queues n zero octets without blocking, as send(2) with
// MSG_DONTWAIT does under gVisor (sock.SendMsg): what was queued, or the
// error if nothing was.
func (d *driver) sendOp(req dut.Request, h *handle) {
	n, terr := h.ep.Write(bytes.NewReader(make([]byte, req.N)), tcpip.WriteOptions{})
	t := now()
	if n > 0 {
		terr = nil
	}
	d.reply(req, int(n), errnoOf(terr), t)
}

// setsockopt sets an option as gVisor's sentry does for a Linux
// application's setsockopt(2) with an int value
// (pkg/sentry/socket/netstack/netstack.go: SetSockOptSocket for
// SOL_SOCKET, sock.setSockOptTCP for IPPROTO_TCP): the value is read as an
// unsigned 32-bit int, the keep-alive times and count range-checked against
// Linux's maxima (EINVAL outside), TCP_USER_TIMEOUT read as signed and
// refused when negative. An option the driver does not know, by level and
// name, is ENOPROTOOPT, as a Linux kernel says for an option it lacks.
func setsockopt(ep tcpip.Endpoint, level, opt string, value int) sockopt.Errno {
	v := uint32(value)
	switch {
	case level == dut.SOL_SOCKET && opt == dut.SO_KEEPALIVE:
		ep.SocketOptions().SetKeepAlive(v != 0)
		return noError
	case level == dut.IPPROTO_TCP && opt == dut.TCP_KEEPIDLE:
		if v < 1 || v > linux.MAX_TCP_KEEPIDLE {
			return errInvalid
		}
		o := tcpip.KeepaliveIdleOption(time.Second * time.Duration(v))
		return errnoOf(ep.SetSockOpt(&o))
	case level == dut.IPPROTO_TCP && opt == dut.TCP_KEEPINTVL:
		if v < 1 || v > linux.MAX_TCP_KEEPINTVL {
			return errInvalid
		}
		o := tcpip.KeepaliveIntervalOption(time.Second * time.Duration(v))
		return errnoOf(ep.SetSockOpt(&o))
	case level == dut.IPPROTO_TCP && opt == dut.TCP_KEEPCNT:
		if v < 1 || v > linux.MAX_TCP_KEEPCNT {
			return errInvalid
		}
		return errnoOf(ep.SetSockOptInt(tcpip.KeepaliveCountOption, int(v)))
	case level == dut.IPPROTO_TCP && opt == dut.TCP_USER_TIMEOUT:
		ms := int32(v)
		if ms < 0 {
			return errInvalid
		}
		o := tcpip.TCPUserTimeoutOption(time.Millisecond * time.Duration(ms))
		return errnoOf(ep.SetSockOpt(&o))
	}
	return errNoOption
}

// getsockopt reads an option as gVisor's sentry does (GetSockOptSocket,
// sock.getSockOptTCP): times in the option's unit, truncated.
func getsockopt(ep tcpip.Endpoint, level, opt string) (int, sockopt.Errno) {
	switch {
	case level == dut.SOL_SOCKET && opt == dut.SO_KEEPALIVE:
		if ep.SocketOptions().GetKeepAlive() {
			return 1, noError
		}
		return 0, noError
	case level == dut.IPPROTO_TCP && opt == dut.TCP_KEEPIDLE:
		var o tcpip.KeepaliveIdleOption
		if err := ep.GetSockOpt(&o); err != nil {
			return -1, errnoOf(err)
		}
		return int(int32(time.Duration(o) / time.Second)), noError
	case level == dut.IPPROTO_TCP && opt == dut.TCP_KEEPINTVL:
		var o tcpip.KeepaliveIntervalOption
		if err := ep.GetSockOpt(&o); err != nil {
			return -1, errnoOf(err)
		}
		return int(int32(time.Duration(o) / time.Second)), noError
	case level == dut.IPPROTO_TCP && opt == dut.TCP_KEEPCNT:
		v, err := ep.GetSockOptInt(tcpip.KeepaliveCountOption)
		if err != nil {
			return -1, errnoOf(err)
		}
		return int(int32(v)), noError
	case level == dut.IPPROTO_TCP && opt == dut.TCP_USER_TIMEOUT:
		var o tcpip.TCPUserTimeoutOption
		if err := ep.GetSockOpt(&o); err != nil {
			return -1, errnoOf(err)
		}
		return int(int32(time.Duration(o) / time.Millisecond)), noError
	}
	return -1, errNoOption
}
