package gvisor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"kasim/internal/dut"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// client plays kasim: it writes requests to a driver and reads its lines.
type client struct {
	t      *testing.T
	in     io.WriteCloser
	lines  chan string
	stash  []dut.Message // messages read while waiting for another
	nextID uint64
}

func newClient(t *testing.T, in io.WriteCloser, out io.Reader) *client {
	c := &client{t: t, in: in, lines: make(chan string, 64), nextID: 100}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c
}

// next returns the driver's next message, failing the test if none comes
// within d or a line is not one JSON object.
func (c *client) next(d time.Duration) dut.Message {
	c.t.Helper()
	if len(c.stash) > 0 {
		m := c.stash[0]
		c.stash = c.stash[1:]
		return m
	}
	select {
	case line, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("the driver's output ended")
		}
		var m dut.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			c.t.Fatalf("driver line %q: not JSON: %v", line, err)
		}
		return m
	case <-time.After(d):
		c.t.Fatalf("no message from the driver within %v", d)
	}
	panic("unreachable")
}

// await returns the first message, within d, that match accepts; the
// others are kept for later.
func (c *client) await(d time.Duration, what string, match func(dut.Message) bool) dut.Message {
	c.t.Helper()
	for i, m := range c.stash {
		if match(m) {
			c.stash = append(c.stash[:i:i], c.stash[i+1:]...)
			return m
		}
	}
	deadline := time.Now().Add(d)
	var skipped []dut.Message
	defer func() { c.stash = append(c.stash, skipped...) }()
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("no %s from the driver within %v (got meanwhile: %+v)", what, d, skipped)
		}
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("the driver's output ended while waiting for %s", what)
			}
			var m dut.Message
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				c.t.Fatalf("driver line %q: not JSON: %v", line, err)
			}
			if match(m) {
				return m
			}
			skipped = append(skipped, m)
		case <-time.After(left):
		}
	}
}

// none fails the test if a message for the request with id comes within d.
func (c *client) none(id uint64, d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		for _, m := range c.stash {
			if m.ID == id {
				c.t.Fatalf("got %+v, want nothing more for request %d", m, id)
			}
		}
		select {
		case line, ok := <-c.lines:
			if !ok {
				return
			}
			var m dut.Message
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				c.t.Fatalf("driver line %q: not JSON: %v", line, err)
			}
			c.stash = append(c.stash, m)
		case <-deadline:
			return
		}
	}
}

func (c *client) writeLine(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, s+"\n"); err != nil {
		c.t.Fatalf("writing to the driver: %v", err)
	}
}

// call sends req with a fresh id and returns its reply.
func (c *client) call(req dut.Request) dut.Message {
	c.t.Helper()
	c.nextID++
	req.ID = c.nextID
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeLine(string(b))
	return c.await(10*time.Second, fmt.Sprintf("reply to %s (id %d)", req.Op, req.ID), func(m dut.Message) bool {
		return m.ID == req.ID && m.Event == ""
	})
}

// report waits up to d for the report of the request with id.
func (c *client) report(id uint64, event string, d time.Duration) dut.Message {
	c.t.Helper()
	return c.await(d, fmt.Sprintf("%s report for request %d", event, id), func(m dut.Message) bool {
		return m.ID == id && m.Event == event
	})
}

// ok calls req and fails the test unless it succeeds; it returns ret.
func (c *client) ok(req dut.Request) int {
	c.t.Helper()
	m := c.call(req)
	if m.Fail != "" || m.Ret < 0 || m.ErrnoName != "" {
		c.t.Fatalf("%s %+v: got %+v, want success", req.Op, req, m)
	}
	return m.Ret
}

// errno calls req and fails the test unless it fails with the errno
// named, Linux's number beside it.
func (c *client) errno(req dut.Request, name string, num int) dut.Message {
	c.t.Helper()
	m := c.call(req)
	wantErrno(c.t, req.Op, m, name, num)
	return m
}

func wantErrno(t *testing.T, what string, m dut.Message, name string, num int) {
	t.Helper()
	if m.Fail != "" || m.Ret != -1 || m.ErrnoName != name || m.Errno != num {
		t.Fatalf("%s: got %+v, want ret -1, %s (%d)", what, m, name, num)
	}
}

// failed calls req and fails the test unless the driver answers with a
// fail that contains want.
func (c *client) failed(req dut.Request, want string) {
	c.t.Helper()
	m := c.call(req)
	if !strings.Contains(m.Fail, want) {
		c.t.Fatalf("%s %+v: got %+v, want a fail saying %q", req.Op, req, m, want)
	}
}

// opt is a setsockopt or getsockopt request.
func opt(op string, fd int, level, name string, value int) dut.Request {
	return dut.Request{Op: op, FD: fd, Level: level, Opt: name, Value: value}
}
