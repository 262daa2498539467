package gvisor

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"kasim/internal/dut"
	"kasim/internal/dut/duttest"
)

// loopDriver serves a driver on a gVisor stack with only a loopback
// interface (127.0.0.1/8): no TAP device, no root. It returns the client;
// the test's cleanup ends the input and checks that the driver returns 0.
func loopDriver(t *testing.T) *duttest.Client {
	st := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
		Clock:              tcpip.NewStdClock(),
	})
	if err := st.CreateNIC(nicID, loopback.New()); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	if err := st.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{127, 0, 0, 1}), PrefixLen: 8},
	}, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %v", err)
	}
	st.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	t.Cleanup(st.Destroy) // after the driver's cleanup
	return duttest.Serve(t, func(in io.Reader, out, errw io.Writer) int {
		return newDriver(st, out).serve(in, nil, errw)
	})
}

// TestProtocolErrors holds the driver to the protocol's rules for requests
// it cannot carry out: a line that is not JSON or too long, an unknown op, a
// missing field are each a fail naming the line or the request, and the
// driver goes on; an option it lacks and a socket it does not have are
// errnos, as the calls give them.
func TestProtocolErrors(t *testing.T) {
	c := loopDriver(t)

	c.WriteLine("this is not json")
	if m := c.Next(5 * time.Second); !strings.Contains(m.Fail, "line 1: not JSON") || m.ID != 0 {
		t.Fatalf("after a line that is not JSON: got %+v, want a fail naming line 1", m)
	}
	c.WriteLine("")
	c.WriteLine(`{"id":7,"op":` + strings.Repeat(" ", maxLine) + `"socket"}`)
	if m := c.Next(5 * time.Second); !strings.Contains(m.Fail, "line 3: longer than 65536 bytes") {
		t.Fatalf("after a line of %d bytes: got %+v, want a fail naming line 3", maxLine+20, m)
	}
	c.Fails(dut.Request{Op: "frobnicate"}, "frobnicate: unknown op")

	// The driver goes on.
	fd := c.OK(dut.Request{Op: dut.OpSocket})
	if fd < 0 {
		t.Fatalf("socket: handle %d", fd)
	}
	c.Errno(duttest.Opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPALIVE, 1000), "ENOPROTOOPT", 92)
	c.Errno(duttest.Opt(dut.OpGetsockopt, fd, dut.IPPROTO_TCP, dut.TCP_KEEPALIVE, 0), "ENOPROTOOPT", 92)
	c.Errno(duttest.Opt(dut.OpSetsockopt, fd, dut.SOL_SOCKET, dut.TCP_KEEPIDLE, 1), "ENOPROTOOPT", 92)
	c.Errno(duttest.Opt(dut.OpSetsockopt, fd, "SOL_IP", dut.SO_KEEPALIVE, 1), "ENOPROTOOPT", 92)
	c.Fails(duttest.Opt(dut.OpSetsockopt, fd, "", dut.SO_KEEPALIVE, 1), "level and opt are required")
	c.Errno(duttest.Opt(dut.OpGetsockopt, fd+1000, dut.SOL_SOCKET, dut.SO_KEEPALIVE, 0), "EBADF", 9)
	c.Fails(dut.Request{Op: dut.OpConnect, FD: fd}, "connect: addr is required")
	c.Fails(dut.Request{Op: dut.OpConnect, FD: fd, Addr: "[::1]:80"}, "not an IPv4 address")
	c.Fails(dut.Request{Op: dut.OpRecv, FD: fd, N: 0}, "n=0 is not in 1..")
	c.Fails(dut.Request{Op: dut.OpSend, FD: fd, N: -1}, "n=-1 is not in 0..")
	c.Errno(dut.Request{Op: dut.OpShutdown, FD: fd, N: 3}, "EINVAL", 22)
	c.OK(dut.Request{Op: dut.OpClose, FD: fd})
	c.Errno(dut.Request{Op: dut.OpClose, FD: fd}, "EBADF", 9)
}

// TestOptions checks the option calls against what gVisor's sentry gives a
// Linux application: gVisor's defaults, the ranges, the units.
func TestOptions(t *testing.T) {
	c := loopDriver(t)
	fd := c.OK(dut.Request{Op: dut.OpSocket})
	get := func(level, name string) int {
		t.Helper()
		return c.OK(duttest.Opt(dut.OpGetsockopt, fd, level, name, 0))
	}
	set := func(level, name string, v int) {
		t.Helper()
		c.OK(duttest.Opt(dut.OpSetsockopt, fd, level, name, v))
	}
	defaults := []struct {
		level, name string
		want        int
	}{
		{dut.SOL_SOCKET, dut.SO_KEEPALIVE, 0},
		{dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 7200},
		{dut.IPPROTO_TCP, dut.TCP_KEEPINTVL, 75},
		{dut.IPPROTO_TCP, dut.TCP_KEEPCNT, 9},
		{dut.IPPROTO_TCP, dut.TCP_USER_TIMEOUT, 0},
	}
	for _, d := range defaults {
		if got := get(d.level, d.name); got != d.want {
			t.Errorf("getsockopt(%s) on a new socket = %d, want gVisor's default %d", d.name, got, d.want)
		}
	}
	set(dut.SOL_SOCKET, dut.SO_KEEPALIVE, 5) // any non-zero value is on
	set(dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 32767)
	set(dut.IPPROTO_TCP, dut.TCP_KEEPINTVL, 1)
	set(dut.IPPROTO_TCP, dut.TCP_KEEPCNT, 127)
	set(dut.IPPROTO_TCP, dut.TCP_USER_TIMEOUT, 2500)
	sets := []struct {
		level, name string
		want        int
	}{
		{dut.SOL_SOCKET, dut.SO_KEEPALIVE, 1},
		{dut.IPPROTO_TCP, dut.TCP_KEEPIDLE, 32767},
		{dut.IPPROTO_TCP, dut.TCP_KEEPINTVL, 1},
		{dut.IPPROTO_TCP, dut.TCP_KEEPCNT, 127},
		{dut.IPPROTO_TCP, dut.TCP_USER_TIMEOUT, 2500},
	}
	for _, d := range sets {
		if got := get(d.level, d.name); got != d.want {
			t.Errorf("getsockopt(%s) after setting it = %d, want %d", d.name, got, d.want)
		}
	}
	for _, bad := range []struct {
		name string
		v    int
	}{
		{dut.TCP_KEEPIDLE, 0}, {dut.TCP_KEEPIDLE, 32768}, {dut.TCP_KEEPIDLE, -1},
		{dut.TCP_KEEPINTVL, 0}, {dut.TCP_KEEPINTVL, 32768},
		{dut.TCP_KEEPCNT, 0}, {dut.TCP_KEEPCNT, 128}, {dut.TCP_KEEPCNT, 200},
		{dut.TCP_USER_TIMEOUT, -1},
	} {
		c.Errno(duttest.Opt(dut.OpSetsockopt, fd, dut.IPPROTO_TCP, bad.name, bad.v), "EINVAL", 22)
	}
	// A refused value leaves the option as it was.
	if got := get(dut.IPPROTO_TCP, dut.TCP_KEEPCNT); got != 127 {
		t.Errorf("TCP_KEEPCNT after refused values = %d, want 127", got)
	}
	set(dut.SOL_SOCKET, dut.SO_KEEPALIVE, 0)
	if got := get(dut.SOL_SOCKET, dut.SO_KEEPALIVE); got != 0 {
		t.Errorf("SO_KEEPALIVE after setting 0 = %d, want 0", got)
	}
}

// TestCallsOnLoopback runs a connection through the driver on gVisor's
// loopback: listen, accept, connect, send, recv, end of stream, a refused
// connect, close.
func TestCallsOnLoopback(t *testing.T) {
	c := loopDriver(t)
	ln := c.OK(dut.Request{Op: dut.OpSocket})
	c.OK(dut.Request{Op: dut.OpBind, FD: ln, Addr: "127.0.0.1:7000"})
	c.OK(dut.Request{Op: dut.OpListen, FD: ln, N: 4})
	accept := c.Call(dut.Request{Op: dut.OpAccept, FD: ln})
	if accept.Ret != 0 || accept.ErrnoName != "" {
		t.Fatalf("accept: got %+v, want ret 0 at once", accept)
	}

	cl := c.OK(dut.Request{Op: dut.OpSocket})
	c.Connect(cl, "127.0.0.1:7000")
	ar := c.Report(accept.ID, dut.EventAccept, 5*time.Second)
	if ar.Ret < 0 || ar.Ret == ln || ar.Ret == cl || !strings.HasPrefix(ar.Detail, "127.0.0.1:") {
		t.Fatalf("accept report: got %+v, want a new handle and the peer's address", ar)
	}
	srv := ar.Ret

	if n := c.OK(dut.Request{Op: dut.OpSend, FD: cl, N: 5}); n != 5 {
		t.Fatalf("send 5: queued %d", n)
	}
	if n := c.OK(dut.Request{Op: dut.OpSend, FD: cl, N: 0}); n != 0 {
		t.Fatalf("send 0: queued %d", n)
	}
	recv := c.Call(dut.Request{Op: dut.OpRecv, FD: srv, N: 3})
	if r := c.Report(recv.ID, dut.EventRecv, 5*time.Second); r.Ret != 3 || r.ErrnoName != "" {
		t.Fatalf("recv 3 of 5: got %+v, want 3 octets", r)
	}
	recv = c.Call(dut.Request{Op: dut.OpRecv, FD: srv, N: 100})
	if r := c.Report(recv.ID, dut.EventRecv, 5*time.Second); r.Ret != 2 || r.ErrnoName != "" {
		t.Fatalf("recv the rest: got %+v, want 2 octets", r)
	}
	// A blocked recv ends at the end of the stream with 0.
	recv = c.Call(dut.Request{Op: dut.OpRecv, FD: srv, N: 100})
	c.OK(dut.Request{Op: dut.OpShutdown, FD: cl, N: 1})
	if r := c.Report(recv.ID, dut.EventRecv, 5*time.Second); r.Ret != 0 || r.ErrnoName != "" || r.T < recv.T {
		t.Fatalf("recv at end of stream: got %+v, want 0 octets", r)
	}
	c.Errno(dut.Request{Op: dut.OpSend, FD: cl, N: 1}, "EPIPE", 32)

	// Nobody listens on 7001: the connect fails with ECONNREFUSED.
	r := c.OK(dut.Request{Op: dut.OpSocket})
	conn := c.Errno(dut.Request{Op: dut.OpConnect, FD: r, Addr: "127.0.0.1:7001"}, "EINPROGRESS", 115)
	c.CheckErrno(c.Report(conn.ID, dut.EventConnect, 5*time.Second), "ECONNREFUSED", 111)

	// A recv blocked on a socket that is then closed ends without a report.
	recv = c.Call(dut.Request{Op: dut.OpRecv, FD: cl, N: 100})
	c.OK(dut.Request{Op: dut.OpClose, FD: cl})
	c.Errno(dut.Request{Op: dut.OpSend, FD: cl, N: 1}, "EBADF", 9)
	c.None(recv.ID, 300*time.Millisecond)
	for _, fd := range []int{ln, srv, r} {
		c.OK(dut.Request{Op: dut.OpClose, FD: fd})
	}
}

// TestRunBadEnvironment: a missing or malformed variable is exit status
// 2, before anything is opened, with the variable named.
func TestRunBadEnvironment(t *testing.T) {
	good := duttest.Env()
	for _, tc := range []struct{ name, value, want string }{
		{dut.EnvIf, "", "KASIM_DUT_IF is not set"},
		{dut.EnvAddr, "10.99.0.2", "KASIM_DUT_ADDR=10.99.0.2: want an IPv4 address and prefix"},
		{dut.EnvAddr, "fd00::2/64", "want an IPv4 address and prefix"},
		{dut.EnvMAC, "02:00:0a:63", "KASIM_DUT_MAC=02:00:0a:63: want an Ethernet address"},
		{dut.EnvTesterAddr, "10.98.0.1", "is not another address in KASIM_DUT_ADDR=10.99.0.2/24"},
		{dut.EnvTesterMAC, "", "KASIM_TESTER_MAC is not set"},
		{dut.EnvProtocol, "2", "speaks protocol 1"},
	} {
		env := func(k string) string {
			if k == tc.name {
				return tc.value
			}
			return good[k]
		}
		var out, errw bytes.Buffer
		if code := Run(strings.NewReader(""), &out, &errw, env); code != 2 || !strings.Contains(errw.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%s=%q: Run returned %d, stderr %q, stdout %q; want 2, a message saying %q, no output", tc.name, tc.value, code, errw.String(), out.String(), tc.want)
		}
	}
}
