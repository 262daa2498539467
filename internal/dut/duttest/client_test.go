package duttest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"kasim/internal/dut"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a test that records its failures instead of failing: a
// Fatalf ends only the goroutine that calls it, as in a real test.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *recorder) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errors, "\n")
}

// expectFailure runs f with c failing a recorder, and checks that it
// failed saying each of want.
func expectFailure(t *testing.T, c *Client, f func(), want ...string) {
	t.Helper()
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.For(rec)()
		f()
	}()
	<-done
	got := rec.failures()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("failure %q, want one saying %q", got, w)
		}
	}
}

// script is a fake driver: for each request it reads, answer returns the
// lines to write (%d in them is the request's id). It writes a hello
// first, and its stderr says "fake driver".
func script(answer func(req dut.Request) []string) DriverFunc {
	return func(in io.Reader, out, errw io.Writer) int {
		fmt.Fprintln(errw, "fake driver")
		fmt.Fprintln(out, `{"event":"hello","protocol":1,"ret":1,"t":1}`)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			var req dut.Request
			json.Unmarshal(sc.Bytes(), &req)
			for _, l := range answer(req) {
				fmt.Fprintln(out, strings.ReplaceAll(l, "%d", fmt.Sprint(req.ID)))
			}
		}
		return 0
	}
}

func TestClientReportsInAnyOrder(t *testing.T) {
	// accept and recv start calls that report; the recv's report comes
	// before the accept's, and before its own reply.
	var acceptID uint64
	c := Serve(t, script(func(req dut.Request) []string {
		switch req.Op {
		case dut.OpAccept:
			acceptID = req.ID
			return []string{`{"id":%d,"ret":0,"t":2}`}
		case dut.OpRecv:
			return []string{`{"id":%d,"event":"recv","fd":3,"ret":4,"t":4}`, `{"id":%d,"ret":0,"t":3}`,
				fmt.Sprintf(`{"id":%d,"event":"accept","fd":3,"ret":5,"t":5}`, acceptID)}
		case dut.OpSocket:
			return []string{`{"id":%d,"ret":3,"t":6}`}
		}
		return []string{`{"id":%d,"fail":"unknown op","t":7}`}
	}))
	if h := c.Next(time.Second); h.Event != dut.EventHello || c.Pid() <= 0 {
		t.Fatalf("hello: %s, pid %d", Line(h), c.Pid())
	}
	accept := c.Returns(dut.Request{Op: dut.OpAccept, FD: 3}, 0)
	recv := c.Returns(dut.Request{Op: dut.OpRecv, FD: 3, N: 10}, 0)
	if fd := c.OK(dut.Request{Op: dut.OpSocket}); fd != 3 {
		t.Errorf("socket: %d, want 3", fd)
	}
	c.None(recv.ID+100, 50*time.Millisecond)
	if r := c.Report(accept.ID, dut.EventAccept, time.Second); r.Ret != 5 {
		t.Errorf("accept report %s", Line(r))
	}
	if r := c.Report(recv.ID, dut.EventRecv, time.Second); r.Ret != 4 {
		t.Errorf("recv report %s", Line(r))
	}
	c.Fails(dut.Request{Op: "frob"}, "unknown op")
	if accept.ID != 101 || recv.ID != 102 {
		t.Errorf("ids %d and %d, want 101 and 102", accept.ID, recv.ID)
	}
}

func TestClientFailsOnProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string // to a socket request
		call   func(c *Client)
		want   string
	}{
		{"not JSON", `{"id":%d,`, nil, "driver line 2: not a JSON object"},
		{"no ret", `{"id":%d,"t":1}`, nil, `no "ret"`},
		{"no t", `{"id":%d,"ret":3}`, nil, `no "t"`},
		{"another id", `{"id":7,"ret":3,"t":1}`, nil, `want the reply to request 101`},
		{"a report never started", `{"id":%d,"event":"recv","ret":3,"t":1}`, nil, "request 101 started no recv call"},
		{"a second hello", `{"event":"hello","ret":3,"t":1}`, nil, "a second hello"},
		{"an unknown event", `{"id":%d,"event":"exit","ret":3,"t":1}`, nil, `unknown event "exit"`},
		{"an errno", `{"id":%d,"ret":-1,"errno":9,"errno_name":"EBADF","t":1}`, nil, `want success`},
		{"the wrong ret", `{"id":%d,"ret":4,"t":1}`, func(c *Client) { c.Returns(dut.Request{Op: dut.OpSocket}, 3) }, "want ret 3"},
		{"not an errno", `{"id":%d,"ret":0,"t":1}`, func(c *Client) { c.Errno(dut.Request{Op: dut.OpSocket}, "EBADF", 9) }, "want ret -1, errno 9 (EBADF)"},
		{"not a fail", `{"id":%d,"ret":0,"t":1}`, func(c *Client) { c.Fails(dut.Request{Op: dut.OpSocket}, "no") }, `want a fail for request 101 saying "no"`},
		{"no report", `{"id":%d,"ret":0,"t":1}`, func(c *Client) {
			c.Report(c.Returns(dut.Request{Op: dut.OpRecv}, 0).ID, dut.EventRecv, 50*time.Millisecond)
		}, "no recv report of request 101 within 50ms"},
		{"a reply for a report", `{"id":%d,"ret":0,"t":1}`, func(c *Client) {
			id := c.Returns(dut.Request{Op: dut.OpRecv}, 0).ID
			c.WriteLine(fmt.Sprintf(`{"id":%d,"op":"socket"}`, id+1))
			c.Report(id, dut.EventRecv, time.Second)
		}, "want the recv report of request 101"},
		{"a line", `{"id":%d,"ret":0,"t":1}`, func(c *Client) { c.Next(50 * time.Millisecond) }, "no line from the driver within 50ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Serve(t, script(func(dut.Request) []string { return []string{tc.answer} }))
			c.Next(time.Second)
			call := tc.call
			if call == nil {
				call = func(c *Client) { c.OK(dut.Request{Op: dut.OpSocket}) }
			}
			expectFailure(t, c, func() { call(c) }, tc.want, "the driver's stderr:\nfake driver")
		})
	}
}

func TestClientDriverEnds(t *testing.T) {
	// A driver that stops after its hello, with status 3: the wait for a
	// reply fails saying so, and so does the cleanup.
	rec := &recorder{}
	t.Run("driver", func(t *testing.T) {
		rec.TB = t
		c := Serve(rec, func(in io.Reader, out, errw io.Writer) int {
			fmt.Fprintln(out, `{"event":"hello","ret":1,"t":1}`)
			return 3
		})
		c.Next(time.Second)
		expectFailure(t, c, func() { c.Next(time.Second) }, "the driver's output ended: the driver returned 3")
		expectFailure(t, c, func() { c.Send(dut.Request{Op: dut.OpSocket}) }, "writing to the driver")
	})
	if got, want := rec.failures(), "after the end of its input: the driver returned 3, want the driver to end with status 0"; !strings.Contains(got, want) {
		t.Errorf("cleanup: %q, want %q", got, want)
	}

	// A driver that does not end at the end of its input.
	rec = &recorder{}
	release := make(chan struct{})
	t.Run("stuck", func(t *testing.T) {
		rec.TB = t
		Serve(rec, func(in io.Reader, out, errw io.Writer) int {
			<-release
			return 0
		})
	})
	close(release)
	if got, want := rec.failures(), "still running 2s after the end of its input"; !strings.Contains(got, want) {
		t.Errorf("cleanup: %q, want %q", got, want)
	}
}

func TestEnv(t *testing.T) {
	env := Env()
	env[dut.EnvIf] = "changed"
	want := "KASIM_DUT_ADDR=10.99.0.2/24 KASIM_DUT_IF=kd0 KASIM_DUT_MAC=02:00:0a:63:00:02 KASIM_DUT_PROTOCOL=1 KASIM_TESTER_ADDR=10.99.0.1 KASIM_TESTER_MAC=02:00:0a:63:00:01"
	if got := strings.Join(Environ(), " "); got != want {
		t.Errorf("Environ: %s, want %s", got, want)
	}
	if Getenv(dut.EnvIf) != IfName || Getenv("HOME") != "" {
		t.Errorf("Getenv: %q, %q", Getenv(dut.EnvIf), Getenv("HOME"))
	}
}
