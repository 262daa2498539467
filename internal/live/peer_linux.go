package live

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"kasim/internal/dut"
	"kasim/internal/echo"
)

// replyTimeout bounds the wait for a reply. The helper answers every
// request without blocking (blocking calls run in the background and
// report later), so only a wedged helper takes this long.
const replyTimeout = 10 * time.Second

// Peer drives the peer helper: a copy of this program running in the peer
// namespace that makes the kernel's socket calls. Its methods are safe for
// concurrent use. Each returns the call's Result; their error is for the
// helper itself failing (it died, or refused a malformed request), never
// for the system call, whose failure is in Result.Errno.
type Peer struct {
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File
	wmu    sync.Mutex // serialises request lines
	stderr *tailWriter

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan message
	dead    error         // why the helper's output ended, once it has
	done    chan struct{} // closed when the helper's output ends
	hello   chan message  // the helper's first report, and a driver's
	driver  string        // the driver the helper became, or ""
	// becomeID is the id of the become request: the lines after its
	// reply are the driver's, numbered from 1 in messages.
	becomeID uint64
	info     Hello

	exited  chan struct{} // closed once the helper has been reaped
	waitErr error

	queue    []Event
	queued   chan struct{} // signalled when queue grows or the output ends
	events   chan Event
	stop     chan struct{} // closed by close: the forwarder gives up
	fwdDone  chan struct{}
	readDone chan struct{}
}

// startPeer re-executes this program as the helper, in a new network
// namespace that lives exactly as long as the child. Pdeathsig kills the
// child if this process dies, however it dies.
func startPeer(c *config) (*Peer, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("live: starting the peer helper: %v", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("live: starting the peer helper: %v", err)
	}
	p := &Peer{
		stdin:    inW,
		stderr:   &tailWriter{max: 4 << 10, also: c.PeerStderr},
		pending:  map[uint64]chan message{},
		done:     make(chan struct{}),
		hello:    make(chan message, 1),
		exited:   make(chan struct{}),
		queued:   make(chan struct{}, 1),
		events:   make(chan Event),
		stop:     make(chan struct{}),
		fwdDone:  make(chan struct{}),
		readDone: make(chan struct{}),
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"kasim-live-peer"}
	cmd.Env = append(os.Environ(), peerEnv+"=1")
	cmd.Stdin = inR
	cmd.Stdout = outW
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
		// A group of its own, so that close kills whatever a driver
		// it becomes started too: a child left holding the pipes
		// would keep the Peer waiting for their end.
		Setpgid: true,
	}
	onForkerThread(func() { err = cmd.Start() })
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		if errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("%w: starting the peer helper in a new namespace: %v", ErrNotRoot, err)
		}
		return nil, fmt.Errorf("live: starting the peer helper: %v", err)
	}
	p.cmd = cmd
	p.pid = cmd.Process.Pid
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.read(outR)
	go p.forward()

	t := time.NewTimer(replyTimeout)
	defer t.Stop()
	select {
	case m := <-p.hello:
		p.info = helloOf(m)
		return p, nil
	case <-p.done:
		err = p.deadErr()
	case <-t.C:
		err = fmt.Errorf("live: the peer helper did not start within %v", replyTimeout)
	}
	p.close()
	return nil, err
}

// forker is a goroutine locked to its OS thread for the life of the
// process, from which the helpers are started. Pdeathsig is sent when the
// thread that started a child exits, not the process (go.dev/issue/27505);
// Go ends a thread only when a goroutine locked to it exits, so a helper
// started from an ordinary goroutine could be killed early, by whatever
// code, anywhere in the process, next locks that thread and returns.
var forker struct {
	once sync.Once
	reqs chan func()
}

func onForkerThread(f func()) {
	forker.once.Do(func() {
		forker.reqs = make(chan func())
		go forkerLoop(forker.reqs)
	})
	done := make(chan struct{})
	forker.reqs <- func() {
		defer close(done)
		f()
	}
	<-done
}

func forkerLoop(reqs <-chan func()) {
	runtime.LockOSThread() // never unlocked: the thread lives as long as the process
	for f := range reqs {
		f()
	}
}

// PID returns the helper's process id.
func (p *Peer) PID() int { return p.pid }

// read routes the helper's replies to their callers and its reports to the
// event queue, until the helper's output ends.
func (p *Peer) read(r *os.File) {
	defer close(p.readDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var protoErr error
	line := 0
	for sc.Scan() {
		line++
		var became bool
		if became, protoErr = p.take(line, sc.Bytes()); protoErr != nil {
			break
		}
		if became {
			line = 0 // the driver's own lines come next
		}
	}
	if protoErr == nil && sc.Err() != nil {
		protoErr = fmt.Errorf("live: %s line %d: %v", p.who(), line+1, sc.Err())
	}
	// The output ended: the helper exited (or wrote garbage). Wait a
	// little for its exit status, so the error can say how it ended.
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
	}
	err := protoErr
	if err == nil {
		err = fmt.Errorf("live: %s stopped", p.who())
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			err = fmt.Errorf("%v (%v)", err, p.waitErr)
		}
	default:
	}
	if tail := strings.TrimSpace(p.stderr.String()); tail != "" {
		err = fmt.Errorf("%v; its last output: %s", err, tail)
	}
	p.mu.Lock()
	p.dead = err
	p.mu.Unlock()
	close(p.done)
	p.signal()
	if protoErr != nil {
		// A driver that broke the protocol is stopped at once: nothing
		// it says can be trusted, and it must not hold the lab.
		p.kill()
	}
}

// kill sends SIGKILL to the peer's process group: the helper, or the
// driver it became, and anything that started.
func (p *Peer) kill() error {
	return syscall.Kill(-p.pid, syscall.SIGKILL)
}

// take handles one line the peer wrote: a hello, a report, or a reply to
// a pending request. It returns the error for a line that breaks the
// protocol, and whether the line was the helper's last (the reply to
// become).
func (p *Peer) take(line int, b []byte) (became bool, err error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return false, fmt.Errorf("live: %s line %d: not a JSON object: %v: %s", p.who(), line, err, echo.Clip(string(b), 120, 80))
	}
	if m.Errno == 0 && m.ErrnoName != "" {
		m.Errno = int(errnoNumber(m.ErrnoName))
	}
	switch {
	case m.Event == eventHello:
		select {
		case p.hello <- m:
		default:
		}
	case m.Event != "":
		p.mu.Lock()
		p.queue = append(p.queue, Event{
			Kind:   EventKind(m.Event),
			Req:    m.ID,
			FD:     m.FD,
			Ret:    m.Ret,
			Errno:  syscall.Errno(m.Errno),
			Name:   m.ErrnoName,
			At:     Mono(m.T),
			Detail: m.Detail,
		})
		p.mu.Unlock()
		p.signal()
	default:
		p.mu.Lock()
		ch := p.pending[m.ID]
		delete(p.pending, m.ID)
		became = m.ID == p.becomeID
		p.mu.Unlock()
		if ch == nil {
			return false, fmt.Errorf("live: %s line %d: a reply to request %d, which is not waiting for one", p.who(), line, m.ID)
		}
		ch <- m
	}
	return became, nil
}

// who names the peer in messages: kasim's helper, or the driver it became.
func (p *Peer) who() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.driver != "" {
		return "driver " + p.driver
	}
	return "the peer helper"
}

func (p *Peer) signal() {
	select {
	case p.queued <- struct{}{}:
	default:
	}
}

// forward moves queued events to the Events channel, so that the reader
// never blocks on a caller who does not read events, and closes the
// channel once the helper's output has ended and the queue is empty, or
// the Lab is closed.
func (p *Peer) forward() {
	defer close(p.fwdDone)
	defer close(p.events)
	for {
		p.mu.Lock()
		var next *Event
		if len(p.queue) > 0 {
			e := p.queue[0]
			next = &e
		}
		p.mu.Unlock()
		if next == nil {
			select {
			case <-p.queued:
				continue
			case <-p.done:
				p.mu.Lock()
				empty := len(p.queue) == 0
				p.mu.Unlock()
				if empty {
					return
				}
				continue
			case <-p.stop:
				return
			}
		}
		select {
		case p.events <- *next:
			p.mu.Lock()
			p.queue = p.queue[1:]
			p.mu.Unlock()
		case <-p.stop:
			return
		}
	}
}

// Events delivers the helper's asynchronous reports (EventConnect,
// EventAccept, EventRecv, EventExit) in the order it sent them. Nothing is
// lost if it is read late: reports queue without limit. The channel is
// closed when the helper has stopped and every report has been delivered,
// or when the Lab is closed.
func (p *Peer) Events() <-chan Event { return p.events }

func (p *Peer) deadErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// call sends req and waits for its reply.
func (p *Peer) call(req request) (message, error) {
	ch := make(chan message, 1)
	who := p.who()
	p.mu.Lock()
	if p.dead != nil {
		p.mu.Unlock()
		return message{}, p.dead
	}
	p.nextID++
	req.ID = p.nextID
	if req.Op == opBecome {
		p.becomeID = req.ID
	}
	p.pending[req.ID] = ch
	p.mu.Unlock()
	forget := func() {
		p.mu.Lock()
		delete(p.pending, req.ID)
		p.mu.Unlock()
	}

	line, err := json.Marshal(req)
	if err != nil {
		forget()
		return message{}, fmt.Errorf("live: peer %s: %v", req.Op, err)
	}
	p.wmu.Lock()
	_, err = p.stdin.Write(append(line, '\n'))
	p.wmu.Unlock()
	if err != nil {
		forget()
		if d := p.deadErr(); d != nil {
			return message{}, d
		}
		return message{}, fmt.Errorf("live: sending %s to %s: %v", req.Op, who, err)
	}

	t := time.NewTimer(replyTimeout)
	defer t.Stop()
	var m message
	select {
	case m = <-ch:
	case <-p.done:
		select {
		case m = <-ch:
		default:
			return message{}, p.deadErr()
		}
	case <-t.C:
		forget()
		return message{}, fmt.Errorf("live: %s did not answer request %d (%s) within %v", who, req.ID, req.Op, replyTimeout)
	}
	if m.Fail != "" {
		return message{}, fmt.Errorf("live: %s refused request %d (%s): %s", who, req.ID, req.Op, m.Fail)
	}
	return m, nil
}

func (p *Peer) do(req request) (Result, error) {
	m, err := p.call(req)
	if err != nil {
		return Result{}, err
	}
	return Result{Ret: m.Ret, Errno: syscall.Errno(m.Errno), Name: m.ErrnoName, At: Mono(m.T)}, nil
}

// Socket creates a TCP socket (AF_INET, SOCK_STREAM); Ret is its fd.
func (p *Peer) Socket() (Result, error) { return p.do(request{Op: opSocket}) }

// Setsockopt calls setsockopt(fd, level, opt, &value) with an int value.
// The level and option are names, e.g. ("SOL_SOCKET", "SO_KEEPALIVE") or
// ("IPPROTO_TCP", "TCP_KEEPIDLE") (the dut package's constants), which the
// peer maps to its own system's numbers; an option it does not have gets
// ENOPROTOOPT.
func (p *Peer) Setsockopt(fd int, level, opt string, value int) (Result, error) {
	return p.do(request{Op: opSetsockopt, FD: fd, Level: level, Opt: opt, Value: value})
}

// Getsockopt calls getsockopt for an int option, named as for Setsockopt;
// Ret is its value.
func (p *Peer) Getsockopt(fd int, level, opt string) (Result, error) {
	return p.do(request{Op: opGetsockopt, FD: fd, Level: level, Opt: opt})
}

// Sysctl sets net.ipv4.<name> in the peer's namespace, for the kernel's
// connections made after; Ret is the value it had. Only kasim's own helper
// (the kernel, not a DUT driver) knows it, and only for Sysctls.
func (p *Peer) Sysctl(name string, value int) (Result, error) {
	return p.do(request{Op: opSysctl, Opt: name, Value: value})
}

// Bind binds fd to addr (IPv4).
func (p *Peer) Bind(fd int, addr netip.AddrPort) (Result, error) {
	return p.do(request{Op: opBind, FD: fd, Addr: addr.String()})
}

// Listen calls listen(fd, backlog).
func (p *Peer) Listen(fd, backlog int) (Result, error) {
	return p.do(request{Op: opListen, FD: fd, N: backlog})
}

// Connect starts a non-blocking connect to addr. Normally the Result's
// Errno is EINPROGRESS and an EventConnect follows when the handshake
// ends (its Errno is the connect's outcome, 0 for success); the socket is
// then blocking again. Until then it is not: a Recv started before the
// EventConnect returns EAGAIN at once.
func (p *Peer) Connect(fd int, addr netip.AddrPort) (Result, error) {
	return p.do(request{Op: opConnect, FD: fd, Addr: addr.String()})
}

// Accept starts a blocking accept on a listening socket in the background;
// an EventAccept reports the new connection's fd (Ret) or the error.
func (p *Peer) Accept(fd int) (Result, error) {
	return p.do(request{Op: opAccept, FD: fd})
}

// Send queues n octets on fd without blocking (MSG_DONTWAIT); Ret is how
// many the kernel took, Errno EAGAIN if none.
func (p *Peer) Send(fd, n int) (Result, error) {
	return p.do(request{Op: opSend, FD: fd, N: n})
}

// Recv keeps a receive of up to n octets pending on fd: the helper blocks
// in recv in the background, as an application would, and an EventRecv
// reports when the call returns (Ret octets, 0 at end of stream, or an
// Errno such as ETIMEDOUT).
func (p *Peer) Recv(fd, n int) (Result, error) {
	return p.do(request{Op: opRecv, FD: fd, N: n})
}

// Shutdown calls shutdown(fd, how) (unix.SHUT_RD, SHUT_WR, SHUT_RDWR).
func (p *Peer) Shutdown(fd, how int) (Result, error) {
	return p.do(request{Op: opShutdown, FD: fd, N: how})
}

// Close closes fd. As on Linux, a recv still pending on it keeps the
// socket open until that recv returns.
func (p *Peer) Close(fd int) (Result, error) {
	return p.do(request{Op: opClose, FD: fd})
}

// Exec starts a program inside the peer namespace; Ret is its pid, and an
// EventExit (FD = pid) reports its end. Each line of its standard output
// is an EventOutput report; that and its standard error also go to the
// helper's standard error (Options.PeerStderr). It is killed if the
// helper dies. This is how a user-supplied program can take the kernel
// side instead of the helper's own calls.
func (p *Peer) Exec(argv ...string) (Result, error) {
	return p.ExecEnv(nil, argv...)
}

// ExecEnv is Exec with env ("KEY=VALUE") added to the helper's environment.
// Each line the program writes to its standard output arrives as an
// EventOutput as well.
func (p *Peer) ExecEnv(env []string, argv ...string) (Result, error) {
	return p.do(request{Op: opExec, Argv: argv, Env: env})
}

// close stops the helper and releases everything the Peer holds. The
// helper is killed rather than asked to leave: whatever it is blocked in,
// and whatever it started, must not outlive the Lab.
func (p *Peer) close() error {
	var err error
	p.stdin.Close()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			if kerr := p.kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) && kerr != syscall.ESRCH {
				err = fmt.Errorf("live: killing the peer helper: %v", kerr)
			}
		}
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			if err == nil {
				err = fmt.Errorf("live: the peer helper (pid %d) did not exit within 5s of SIGKILL", p.pid)
			}
		}
	}
	<-p.readDone
	close(p.stop)
	<-p.fwdDone
	return err
}

// tailWriter keeps the last max bytes written to it, and passes everything
// on to also, if set.
type tailWriter struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	also io.Writer
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	if w.also != nil {
		// A failing sink must not stop the helper's stderr from draining.
		_, _ = w.also.Write(b)
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// Hello is what a peer said of itself in its hello: the stack under test.
type Hello struct {
	Stack, Version string
	API            string   // "posix"
	Options        []string // the options it can set, by name
	PID            int
}

// HasOption says whether the peer's hello lists the option name.
func (h Hello) HasOption(name string) bool { return slices.Contains(h.Options, name) }

func helloOf(m message) Hello {
	return Hello{Stack: m.Stack, Version: m.Version, API: m.API, Options: m.Options, PID: m.Ret}
}

// Hello returns the peer's hello: kasim's helper's (the machine's Linux
// kernel), or that of the driver it became.
func (p *Peer) Hello() Hello {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// become has the helper execute a driver in its place (argv, with env
// added to its environment) and waits for the driver's hello, which must
// speak this protocol version and a socket API kasim knows.
func (p *Peer) become(name string, argv, env []string) error {
	if _, err := p.call(request{Op: opBecome, Argv: argv, Env: env}); err != nil {
		return err
	}
	p.mu.Lock()
	p.driver = name
	p.mu.Unlock()
	t := time.NewTimer(replyTimeout)
	defer t.Stop()
	var m message
	select {
	case m = <-p.hello:
	case <-p.done:
		return p.deadErr()
	case <-t.C:
		return fmt.Errorf("live: driver %s wrote no hello within %v", name, replyTimeout)
	}
	switch {
	case m.Protocol != dut.Version:
		return fmt.Errorf("live: driver %s speaks protocol %d; kasim speaks %d", name, m.Protocol, dut.Version)
	case m.API != dut.APIPOSIX:
		return fmt.Errorf("live: driver %s: api %q: kasim knows %q", name, echo.Clip(m.API, 40, 30), dut.APIPOSIX)
	}
	p.mu.Lock()
	p.info = helloOf(m)
	p.mu.Unlock()
	return nil
}
