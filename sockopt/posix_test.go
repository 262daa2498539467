package sockopt

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kasim/stack"
)

func newPOSIX(t *testing.T) (*stack.Network, *POSIX, netip.AddrPort) {
	t.Helper()
	n := stack.NewNetwork(stack.Config{Seed: 1, Latency: 10 * time.Millisecond})
	t.Cleanup(n.Close)
	client, _ := n.AddHost("client")
	server, _ := n.AddHost("server")
	if _, err := server.Listen("tcp4", 80, stack.KeepAlive{}, nil); err != nil {
		t.Fatal(err)
	}
	return n, NewPOSIX(client), netip.AddrPortFrom(server.Addr(), 80)
}

func wantErrno(t *testing.T, what string, got int, p *POSIX, e Errno) {
	t.Helper()
	if got != -1 || p.Errno() != e {
		t.Errorf("%s = %d, errno %v; want -1, %v", what, got, p.Errno(), e)
	}
}

// Linux's ranges: TCP_KEEPIDLE and TCP_KEEPINTVL 1-32767 s, TCP_KEEPCNT
// 1-127, else EINVAL (the keep-alive spec's Linux section).
func TestPOSIXLinuxRanges(t *testing.T) {
	_, p, _ := newPOSIX(t)
	fd := p.Socket(LinuxAF_INET, SOCK_STREAM, 0)
	for _, tc := range []struct {
		opt      int
		ok, bad  []uint32
		readBack func(*stack.KeepAlive) int
	}{
		{LinuxTCP_KEEPIDLE, []uint32{1, 7200, 32767}, []uint32{0, 32768, 0xFFFFFFFF}, func(k *stack.KeepAlive) int { return int(k.Idle / time.Second) }},
		{LinuxTCP_KEEPINTVL, []uint32{1, 75, 32767}, []uint32{0, 32768}, func(k *stack.KeepAlive) int { return int(k.Interval / time.Second) }},
		{LinuxTCP_KEEPCNT, []uint32{1, 9, 127}, []uint32{0, 128}, func(k *stack.KeepAlive) int { return k.Count }},
	} {
		for _, v := range tc.ok {
			if p.Setsockopt(fd, IPPROTO_TCP, tc.opt, dword(v), 4) != 0 {
				t.Errorf("option %d = %d refused: %v", tc.opt, v, p.Errno())
			}
			ka := p.Conn(fd).KeepAlive()
			if got := tc.readBack(&ka); got != int(v) {
				t.Errorf("option %d = %d reached the stack as %d", tc.opt, v, got)
			}
			got, n := make([]byte, 4), 4
			if p.Getsockopt(fd, IPPROTO_TCP, tc.opt, got, &n) != 0 || !bytes.Equal(got, dword(v)) {
				t.Errorf("option %d reads back % x, want %d", tc.opt, got, v)
			}
		}
		for _, v := range tc.bad {
			wantErrno(t, "out of range", p.Setsockopt(fd, IPPROTO_TCP, tc.opt, dword(v), 4), p, EINVAL)
		}
	}
}

func TestPOSIXErrors(t *testing.T) {
	_, p, addr := newPOSIX(t)
	fd := p.Socket(LinuxAF_INET, SOCK_STREAM, 0)
	wantErrno(t, "setsockopt on fd 99", p.Setsockopt(99, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, dword(1), 4), p, EBADF)
	wantErrno(t, "setsockopt(optval NULL)", p.Setsockopt(fd, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, nil, 4), p, EFAULT)
	wantErrno(t, "setsockopt(optlen 3)", p.Setsockopt(fd, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, dword(1), 3), p, EINVAL)
	wantErrno(t, "setsockopt(unknown level)", p.Setsockopt(fd, 0x1234, LinuxSO_KEEPALIVE, dword(1), 4), p, ENOPROTOOPT)
	wantErrno(t, "setsockopt(TCP option 99)", p.Setsockopt(fd, IPPROTO_TCP, 99, dword(1), 4), p, ENOPROTOOPT)
	udp := p.Socket(LinuxAF_INET, SOCK_DGRAM, 0)
	if p.Setsockopt(udp, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, dword(1), 4) != 0 {
		t.Error("Linux accepts SO_KEEPALIVE on a UDP socket; kasim refused it")
	}
	wantErrno(t, "TCP_KEEPIDLE on UDP", p.Setsockopt(udp, IPPROTO_TCP, LinuxTCP_KEEPIDLE, dword(5), 4), p, ENOPROTOOPT)
	wantErrno(t, "socket(AF 99)", p.Socket(99, SOCK_STREAM, 0), p, EAFNOSUPPORT)
	// Options may be set in SYN-SENT and take effect once established.
	wantErrno(t, "connect", p.Connect(fd, addr), p, EINPROGRESS)
	if p.Setsockopt(fd, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, dword(1), 4) != 0 {
		t.Errorf("SO_KEEPALIVE in SYN-SENT refused: %v", p.Errno())
	}
	// A short optlen truncates, as on Linux; a negative one is EINVAL.
	buf, n := []byte{0xAA, 0xBB, 0xCC, 0xDD}, 2
	if p.Getsockopt(fd, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, buf, &n) != 0 || n != 2 || !bytes.Equal(buf, []byte{1, 0, 0xCC, 0xDD}) {
		t.Errorf("getsockopt with optlen 2: % x, optlen %d", buf, n)
	}
	n = -1
	wantErrno(t, "getsockopt(optlen -1)", p.Getsockopt(fd, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, buf, &n), p, EINVAL)
}

func TestPOSIXUserTimeoutReachesTheStack(t *testing.T) {
	_, p, _ := newPOSIX(t)
	fd := p.Socket(LinuxAF_INET6, SOCK_STREAM, IPPROTO_TCP)
	if p.Setsockopt(fd, IPPROTO_TCP, LinuxTCP_USER_TIMEOUT, dword(5000), 4) != 0 {
		t.Fatal(p.Errno())
	}
	got, n := make([]byte, 4), 4
	if p.Getsockopt(fd, IPPROTO_TCP, LinuxTCP_USER_TIMEOUT, got, &n) != 0 || !bytes.Equal(got, dword(5000)) {
		t.Errorf("TCP_USER_TIMEOUT reads % x, want 5000", got)
	}
	wantErrno(t, "TCP_USER_TIMEOUT -1", p.Setsockopt(fd, IPPROTO_TCP, LinuxTCP_USER_TIMEOUT, dword(0xFFFFFFFF), 4), p, EINVAL)
}

// Data calls and close: send and recv on a connected socket move bytes,
// recv without data is EAGAIN, and after close the descriptor is gone:
// every call on it fails with EBADF, close included.
func TestPOSIXDataAndClose(t *testing.T) {
	n, p, addr := newPOSIX(t)
	fd := p.Socket(LinuxAF_INET, SOCK_STREAM, 0)
	wantErrno(t, "connect", p.Connect(fd, addr), p, EINPROGRESS)
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if got := p.Send(fd, []byte("hello")); got != 5 {
		t.Errorf("send = %d (%v), want 5", got, p.Errno())
	}
	wantErrno(t, "recv with nothing there", p.Recv(fd, make([]byte, 8)), p, Errno{"EAGAIN", 11})
	var calls []string
	p.OnCall = func(c Call) { calls = append(calls, c.Func) }
	if got := p.Close(fd); got != 0 {
		t.Errorf("close = %d (%v), want 0", got, p.Errno())
	}
	if p.Conn(fd) != nil {
		t.Error("the closed descriptor still names a connection")
	}
	wantErrno(t, "send after close", p.Send(fd, []byte("x")), p, EBADF)
	wantErrno(t, "recv after close", p.Recv(fd, make([]byte, 8)), p, EBADF)
	wantErrno(t, "setsockopt after close", p.Setsockopt(fd, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, dword(1), 4), p, EBADF)
	wantErrno(t, "close again", p.Close(fd), p, EBADF)
	if want := "close send recv setsockopt close"; strings.Join(calls, " ") != want {
		t.Errorf("calls reported: %q, want %q", calls, want)
	}
	udp := p.Socket(LinuxAF_INET, SOCK_DGRAM, 0)
	wantErrno(t, "send on a datagram socket", p.Send(udp, []byte("x")), p, ENOTCONN)
}

// SO_RCVBUF follows the host's rule: the value, read unsigned, clamped to
// the system's maximum, doubled, at least its minimum (gVisor: 4 KiB to 4
// MiB before doubling; Linux: net.core.rmem_max 212992 and
// SOCK_MIN_RCVBUF 2304), and getsockopt reads the doubled size back.
func TestPOSIXReceiveBuffer(t *testing.T) {
	n := stack.NewNetwork(stack.Config{Seed: 1})
	t.Cleanup(n.Close)
	gv, _ := n.AddHost("gvisor")
	lx, err := n.AddHostWith("linux", stack.HostOptions{Behaviour: stack.Behaviour{ReceiveBuffer: stack.LinuxReceiveBuffer}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host *stack.Host
		set  uint32
		want uint32
	}{
		{gv, 2048, 4096}, {gv, 100, 4096}, {gv, 1 << 30, 8 << 20}, {gv, 0xFFFFFFFF, 8 << 20},
		{lx, 2048, 4096}, {lx, 100, 2304}, {lx, 1 << 20, 425984}, {lx, 0xFFFFFFFF, 425984},
	} {
		p := NewPOSIX(tc.host)
		fd := p.Socket(LinuxAF_INET, SOCK_STREAM, IPPROTO_TCP)
		if p.Setsockopt(fd, LinuxSOL_SOCKET, LinuxSO_RCVBUF, dword(tc.set), 4) != 0 {
			t.Fatalf("%s: SO_RCVBUF %d: %v", tc.host.Name(), tc.set, p.Errno())
		}
		got, l := make([]byte, 4), 4
		if p.Getsockopt(fd, LinuxSOL_SOCKET, LinuxSO_RCVBUF, got, &l) != 0 || !bytes.Equal(got, dword(tc.want)) {
			t.Errorf("%s: SO_RCVBUF %d reads % x, want %d", tc.host.Name(), tc.set, got, tc.want)
		}
	}
}

// shutdown(2): ENOTCONN before connecting, EINVAL for a direction other
// than SHUT_RD, SHUT_WR and SHUT_RDWR, and SHUT_WR on a connected socket
// sends the FIN: the connection goes to FIN-WAIT-1 and, acknowledged, to
// FIN-WAIT-2; the call is reported with its direction by name.
func TestPOSIXShutdown(t *testing.T) {
	n, p, addr := newPOSIX(t)
	var values []any
	p.OnCall = func(c Call) {
		if c.Func == "shutdown" {
			values = append(values, c.Value)
		}
	}
	fd := p.Socket(LinuxAF_INET, SOCK_STREAM, IPPROTO_TCP)
	wantErrno(t, "shutdown before connect", p.Shutdown(fd, 1), p, ENOTCONN)
	wantErrno(t, "shutdown on no descriptor", p.Shutdown(99, 1), p, EBADF)
	fd = p.Socket(LinuxAF_INET, SOCK_STREAM, IPPROTO_TCP)
	wantErrno(t, "connect", p.Connect(fd, addr), p, EINPROGRESS)
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "shutdown(3)", p.Shutdown(fd, 3), p, EINVAL)
	if got := p.Shutdown(fd, 1); got != 0 {
		t.Fatalf("shutdown(SHUT_WR) = %d (%v), want 0", got, p.Errno())
	}
	if st := p.Conn(fd).State(); st != stack.FinWait1 {
		t.Errorf("after shutdown(SHUT_WR): %v, want FIN-WAIT-1", st)
	}
	if err := n.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if st := p.Conn(fd).State(); st != stack.FinWait2 {
		t.Errorf("once the FIN is acknowledged: %v, want FIN-WAIT-2", st)
	}
	if want := []any{"SHUT_WR", "SHUT_WR", 3, "SHUT_WR"}; !cmp.Equal(values, want) {
		t.Errorf("shutdown calls reported with %v, want %v", values, want)
	}
}
