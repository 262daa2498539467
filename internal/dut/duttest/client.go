package duttest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kasim/internal/dut"
)

const (
	// ReplyTimeout is how long Reply waits. kasim waits 10 s; a driver
	// under test answers in milliseconds.
	ReplyTimeout = 5 * time.Second
	// ExitTimeout is how long a driver has to end, with status 0, once
	// its standard input is closed: at once, as kasim expects.
	ExitTimeout = 2 * time.Second
	// maxLine is the protocol's longest line.
	maxLine = 64 << 10
)

// Client plays kasim's side of the protocol with one driver: it writes
// requests to the driver's standard input and reads the lines it writes.
// Every line is checked as it is read: a JSON object, with "t", and with
// "ret" unless it is a fail; a report only for a connect, accept or recv
// that was started and has not reported yet; at most one hello. Whatever
// breaks these, and whatever does not come in time, fails the test, with
// the driver's standard error.
//
// A Client belongs to the goroutine of its test (For hands it to a
// subtest). Reports that come while it waits for something else are kept
// for Report, in the order they came.
type Client struct {
	t      testing.TB
	in     io.WriteCloser
	stderr *SyncBuffer
	pid    int

	// Filled by the reader goroutine.
	mu     sync.Mutex
	queue  []string      // lines read, not yet taken
	end    error         // how the output ended, once it has
	exit   error         // how the driver ended (nil: status 0), once end is set
	ready  chan struct{} // a token after every change to queue or end
	exited chan struct{} // closed once end is set

	line    int               // lines taken
	stash   []dut.Message     // lines taken while waiting for another
	started map[uint64]string // requests whose call may still report: id -> op
	hello   bool
	nextID  uint64
}

// DriverFunc is a driver run in this process: it reads requests from
// stdin until it ends, writes its lines to stdout and returns its exit
// status.
type DriverFunc func(stdin io.Reader, stdout, stderr io.Writer) int

// Serve runs a driver in this process on a goroutine of its own and
// returns the client speaking to it. The test's cleanup closes the
// driver's input and checks that it returns 0 within ExitTimeout.
func Serve(t testing.TB, run DriverFunc) *Client {
	t.Helper()
	return serve(t, func(f func()) error { go f(); return nil }, run)
}

// serve runs run through spawn, which starts f where the driver is to run.
func serve(t testing.TB, spawn func(f func()) error, run DriverFunc) *Client {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr := &SyncBuffer{}
	done := make(chan int, 1)
	if err := spawn(func() {
		code := run(inR, outW, stderr)
		inR.Close() // writes to a driver that has returned fail
		outW.Close()
		done <- code
	}); err != nil {
		t.Fatalf("starting the driver: %v", err)
	}
	c := newClient(t, inW, stderr, os.Getpid())
	go c.read(outR, func() error {
		if code := <-done; code != 0 {
			return fmt.Errorf("the driver returned %d", code)
		}
		return nil
	})
	c.cleanup(t, nil)
	return c
}

func newClient(t testing.TB, in io.WriteCloser, stderr *SyncBuffer, pid int) *Client {
	return &Client{
		t: t, in: in, stderr: stderr, pid: pid,
		ready: make(chan struct{}, 1), exited: make(chan struct{}),
		started: map[uint64]string{}, nextID: 100,
	}
}

// read reads the driver's output to its end, then waits for the driver to
// end and records how. It never blocks the driver, whatever the test does.
func (c *Client) read(out io.Reader, wait func() error) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, maxLine+1), maxLine+1)
	for sc.Scan() {
		c.mu.Lock()
		c.queue = append(c.queue, sc.Text())
		c.mu.Unlock()
		c.poke()
	}
	end := sc.Err()
	io.Copy(io.Discard, out) // a line too long: keep the driver writing
	err := wait()
	c.mu.Lock()
	c.exit = err
	if end != nil {
		c.end = fmt.Errorf("reading the driver's output: %v (then %s)", end, describeExit(err))
	} else {
		c.end = fmt.Errorf("the driver's output ended: %s", describeExit(err))
	}
	c.mu.Unlock()
	close(c.exited)
	c.poke()
}

func describeExit(err error) string {
	if err == nil {
		return "it ended with status 0"
	}
	return err.Error()
}

func (c *Client) poke() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// cleanup closes the driver's input at the end of the test and checks
// that the driver ends with status 0 within ExitTimeout; kill, if not nil,
// is how to stop it when it does not.
func (c *Client) cleanup(t testing.TB, kill func()) {
	t.Cleanup(func() {
		c.in.Close()
		select {
		case <-c.exited:
			c.mu.Lock()
			exit := c.exit
			c.mu.Unlock()
			if exit != nil {
				t.Errorf("after the end of its input: %v, want the driver to end with status 0%s", exit, c.stderrNote())
			}
		case <-time.After(ExitTimeout):
			t.Errorf("the driver is still running %v after the end of its input%s", ExitTimeout, c.stderrNote())
			if kill != nil {
				kill()
				<-c.exited
			}
		}
	})
}

// For makes t the test c fails until the returned function restores the
// one before: defer c.For(t)() in a subtest.
func (c *Client) For(t testing.TB) (restore func()) {
	old := c.t
	c.t = t
	return func() { c.t = old }
}

// Pid is the driver's process id: its own, or this process's for a driver
// run in it.
func (c *Client) Pid() int { return c.pid }

// Stderr is what the driver has written on its standard error so far.
func (c *Client) Stderr() string { return c.stderr.String() }

func (c *Client) stderrNote() string {
	if s := c.stderr.String(); s != "" {
		return "\nthe driver's stderr:\n" + tail(s, 4096)
	}
	return ""
}

func (c *Client) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf(format+"%s", append(args, c.stderrNote())...)
}

// Line is m as a JSON line, for messages.
func Line(m dut.Message) string {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Sprintf("%+v", m)
	}
	return string(b)
}

// wire returns the next line from the driver, taken and checked; ok is
// false when none came by deadline (end is then "") or the output ended
// (end says how).
func (c *Client) wire(deadline time.Time) (m dut.Message, ok bool, end string) {
	c.t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			s := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return c.take(s), true, ""
		}
		ended := c.end
		c.mu.Unlock()
		if ended != nil {
			return dut.Message{}, false, ended.Error()
		}
		select {
		case <-c.ready:
		case <-timer.C:
			return dut.Message{}, false, ""
		}
	}
}

// take parses and checks one line.
func (c *Client) take(s string) dut.Message {
	c.t.Helper()
	c.line++
	var m dut.Message
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		c.fatalf("driver line %d: not a JSON object: %v: %q", c.line, err, tail(s, 200))
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		c.fatalf("driver line %d: %v: %q", c.line, err, tail(s, 200))
	}
	if _, ok := fields["t"]; !ok {
		c.fatalf("driver line %d: %s: no \"t\"", c.line, s)
	}
	if _, ok := fields["ret"]; !ok && m.Fail == "" {
		c.fatalf("driver line %d: %s: no \"ret\"", c.line, s)
	}
	switch m.Event {
	case "":
	case dut.EventHello:
		if c.hello {
			c.fatalf("driver line %d: %s: a second hello", c.line, s)
		}
		c.hello = true
	case dut.EventConnect, dut.EventAccept, dut.EventRecv:
		if c.started[m.ID] != m.Event {
			c.fatalf("driver line %d: %s: request %d started no %s call that has yet to report", c.line, s, m.ID, m.Event)
		}
		delete(c.started, m.ID)
	default:
		c.fatalf("driver line %d: %s: unknown event %q", c.line, s, m.Event)
	}
	return m
}

// Next returns the driver's next line: the first of those kept while
// waiting for another, or else the next it writes within d.
func (c *Client) Next(d time.Duration) dut.Message {
	c.t.Helper()
	if len(c.stash) > 0 {
		m := c.stash[0]
		c.stash = c.stash[1:]
		return m
	}
	m, ok, end := c.wire(time.Now().Add(d))
	if !ok {
		if end != "" {
			c.fatalf("waiting for the driver's next line: %s", end)
		}
		c.fatalf("no line from the driver within %v", d)
	}
	return m
}

// WriteLine writes s and a newline to the driver. If s is a request with
// an id, later requests get higher ids, and its report, if its op makes
// one, is expected.
func (c *Client) WriteLine(s string) {
	c.t.Helper()
	var req struct {
		ID uint64 `json:"id"`
		Op string `json:"op"`
	}
	if json.Unmarshal([]byte(s), &req) == nil && req.ID != 0 {
		c.nextID = max(c.nextID, req.ID)
		switch req.Op {
		case dut.OpConnect, dut.OpAccept, dut.OpRecv:
			c.started[req.ID] = req.Op
		}
	}
	if _, err := io.WriteString(c.in, s+"\n"); err != nil {
		c.fatalf("writing to the driver: %v", err)
	}
}

// Send writes req with the next id and returns the id.
func (c *Client) Send(req dut.Request) uint64 {
	c.t.Helper()
	c.nextID++
	req.ID = c.nextID
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.WriteLine(string(b))
	return req.ID
}

// Call sends req with the next id and returns its reply.
func (c *Client) Call(req dut.Request) dut.Message {
	c.t.Helper()
	return c.Reply(c.Send(req))
}

// Reply returns the reply to request id, within ReplyTimeout. Reports
// that come first are kept; any other line fails the test: the driver
// answers requests in order.
func (c *Client) Reply(id uint64) dut.Message {
	c.t.Helper()
	for i, m := range c.stash {
		if m.Event == "" {
			if m.ID != id {
				c.fatalf("reply %s: want the reply to request %d", Line(m), id)
			}
			c.stash = slices.Delete(c.stash, i, i+1)
			return c.replied(m)
		}
	}
	deadline := time.Now().Add(ReplyTimeout)
	for {
		m, ok, end := c.wire(deadline)
		switch {
		case !ok && end != "":
			c.fatalf("waiting for the reply to request %d: %s", id, end)
		case !ok:
			c.fatalf("no reply to request %d within %v", id, ReplyTimeout)
		case m.Event != "":
			c.stash = append(c.stash, m)
		case m.ID != id:
			c.fatalf("line %s: want the reply to request %d", Line(m), id)
		default:
			return c.replied(m)
		}
	}
}

// replied notes that a call which would report did not start: it failed,
// or completed at once.
func (c *Client) replied(m dut.Message) dut.Message {
	switch op := c.started[m.ID]; {
	case op == "":
	case m.Fail != "",
		op == dut.OpConnect && m.ErrnoName != "EINPROGRESS",
		op != dut.OpConnect && (m.ErrnoName != "" || m.Ret != 0):
		delete(c.started, m.ID)
	}
	return m
}

// Report waits up to d for the report of request id, which must be event.
// Reports of other requests that come first are kept; any other line
// fails the test.
func (c *Client) Report(id uint64, event string, d time.Duration) dut.Message {
	c.t.Helper()
	for i, m := range c.stash {
		if m.ID == id && m.Event != "" && m.Event != dut.EventHello {
			c.stash = slices.Delete(c.stash, i, i+1)
			return c.isEvent(m, id, event)
		}
	}
	deadline := time.Now().Add(d)
	for {
		m, ok, end := c.wire(deadline)
		switch {
		case !ok && end != "":
			c.fatalf("waiting for the %s report of request %d: %s", event, id, end)
		case !ok:
			c.fatalf("no %s report of request %d within %v (kept meanwhile: %d lines)", event, id, d, len(c.stash))
		case m.Event == "":
			c.fatalf("line %s: want the %s report of request %d", Line(m), event, id)
		case m.ID != id || m.Event == dut.EventHello:
			c.stash = append(c.stash, m)
		default:
			return c.isEvent(m, id, event)
		}
	}
}

func (c *Client) isEvent(m dut.Message, id uint64, event string) dut.Message {
	c.t.Helper()
	if m.Event != event {
		c.fatalf("report %s: want the %s report of request %d", Line(m), event, id)
	}
	return m
}

// None fails the test if a line for request id comes within d; what else
// comes is kept.
func (c *Client) None(id uint64, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, m := range c.stash {
			if m.ID == id {
				c.fatalf("line %s: want nothing more for request %d", Line(m), id)
			}
		}
		m, ok, _ := c.wire(deadline)
		if !ok {
			return
		}
		c.stash = append(c.stash, m)
	}
}

// CheckRet fails the test unless m (a reply or a report) says success,
// with ret want.
func (c *Client) CheckRet(m dut.Message, want int) {
	c.t.Helper()
	c.checkRet("", m, want)
}

func (c *Client) checkRet(what string, m dut.Message, want int) {
	c.t.Helper()
	if m.Fail != "" || m.ErrnoName != "" || m.Errno != 0 || m.Ret != want {
		c.fatalf("%s%s: want ret %d", what, Line(m), want)
	}
}

// CheckErrno fails the test unless m (a reply or a report) says failure,
// ret -1 with the errno named and num, the driver's number for it.
func (c *Client) CheckErrno(m dut.Message, name string, num syscall.Errno) {
	c.t.Helper()
	c.checkErrno("", m, name, num)
}

func (c *Client) checkErrno(what string, m dut.Message, name string, num syscall.Errno) {
	c.t.Helper()
	if m.Fail != "" || m.Ret != -1 || m.ErrnoName != name || m.Errno != int(num) {
		c.fatalf("%s%s: want ret -1, errno %d (%s)", what, Line(m), int(num), name)
	}
}

// CheckFail fails the test unless m is a fail for request id (0: for a
// line that was no request) that contains want, with its t.
func (c *Client) CheckFail(m dut.Message, id uint64, want string) {
	c.t.Helper()
	c.checkFail("", m, id, want)
}

func (c *Client) checkFail(what string, m dut.Message, id uint64, want string) {
	c.t.Helper()
	if m.ID != id || m.Event != "" || !strings.Contains(m.Fail, want) || m.T == 0 {
		c.fatalf("%s%s: want a fail for request %d saying %q", what, Line(m), id, want)
	}
}

// OK calls req and fails the test unless it succeeds; it returns ret.
func (c *Client) OK(req dut.Request) int {
	c.t.Helper()
	id := c.Send(req)
	m := c.Reply(id)
	if m.Fail != "" || m.ErrnoName != "" || m.Errno != 0 || m.Ret < 0 {
		c.fatalf("%s%s: want success", c.asked(req, id), Line(m))
	}
	return m.Ret
}

// Returns calls req and fails the test unless it succeeds with ret want.
func (c *Client) Returns(req dut.Request, want int) dut.Message {
	c.t.Helper()
	id := c.Send(req)
	m := c.Reply(id)
	c.checkRet(c.asked(req, id), m, want)
	return m
}

// Errno calls req and fails the test unless it fails with the errno
// named and num (CheckErrno).
func (c *Client) Errno(req dut.Request, name string, num syscall.Errno) dut.Message {
	c.t.Helper()
	id := c.Send(req)
	m := c.Reply(id)
	c.checkErrno(c.asked(req, id), m, name, num)
	return m
}

// Fails calls req and fails the test unless the driver answers with a
// fail that contains want (CheckFail).
func (c *Client) Fails(req dut.Request, want string) dut.Message {
	c.t.Helper()
	id := c.Send(req)
	m := c.Reply(id)
	c.checkFail(c.asked(req, id), m, id, want)
	return m
}

// asked names a request in a message about its reply.
func (c *Client) asked(req dut.Request, id uint64) string {
	req.ID = id
	b, _ := json.Marshal(req)
	return fmt.Sprintf("request %s: reply ", b)
}

// Opt is a setsockopt or getsockopt request.
func Opt(op string, fd int, level, name string, value int) dut.Request {
	return dut.Request{Op: op, FD: fd, Level: level, Opt: name, Value: value}
}

// Keepalive switches keep-alive on for fd, with TCP_KEEPIDLE idle,
// TCP_KEEPINTVL intvl and TCP_KEEPCNT cnt: each setsockopt must return 0.
func (c *Client) Keepalive(fd, idle, intvl, cnt int) {
	c.t.Helper()
	for _, o := range []struct {
		level, name string
		v           int
	}{
		{dut.SOL_SOCKET, dut.SO_KEEPALIVE, 1},
		{dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, idle},
		{dut.IPPROTO_TCP, dut.TCP_KEEPINTVL, intvl},
		{dut.IPPROTO_TCP, dut.TCP_KEEPCNT, cnt},
	} {
		c.Returns(Opt(dut.OpSetsockopt, fd, o.level, o.name, o.v), 0)
	}
}

// Connect connects fd to addr as the protocol has it: a reply of ret -1
// with EINPROGRESS, then, within 5 s, a connect report of success on fd,
// timed no earlier than the reply. It returns the report.
func (c *Client) Connect(fd int, addr string) dut.Message {
	c.t.Helper()
	m := c.Errno(dut.Request{Op: dut.OpConnect, FD: fd, Addr: addr}, "EINPROGRESS", syscall.EINPROGRESS)
	r := c.Report(m.ID, dut.EventConnect, 5*time.Second)
	if r.Fail != "" || r.ErrnoName != "" || r.Errno != 0 || r.Ret != 0 || r.FD != fd || r.T < m.T {
		c.fatalf("connect report %s: want ret 0 on fd %d, timed after the reply's t %d", Line(r), fd, m.T)
	}
	return r
}
