package sockopt

import (
	"bytes"
	"testing"
	"time"
)

func newPOSIXAs(t *testing.T, d *Dialect) *POSIX {
	t.Helper()
	_, p, _ := newPOSIX(t)
	p.d = d
	return p
}

// The numbers the systems' headers give (FreeBSD sys/sys/socket.h,
// sys/netinet/tcp.h, sys/sys/errno.h; lwIP src/include/lwip/sockets.h,
// lwip/errno.h), and Linux's unchanged.
func TestDialectNumbers(t *testing.T) {
	for _, tc := range []struct {
		d    *Dialect
		opts map[string]int
		sol  int
		errs map[string]int
	}{
		{Linux, map[string]int{"SO_KEEPALIVE": 9, "SO_RCVBUF": 8, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 6, "TCP_USER_TIMEOUT": 18, "TCP_SYNCNT": 7, "TCP_DEFER_ACCEPT": 9}, 1,
			map[string]int{"ETIMEDOUT": 110, "ENOPROTOOPT": 92, "EINVAL": 22, "ECONNABORTED": 103, "EINPROGRESS": 115}},
		{FreeBSD, map[string]int{"SO_KEEPALIVE": 8, "TCP_KEEPINIT": 128, "TCP_KEEPIDLE": 256, "TCP_KEEPINTVL": 512, "TCP_KEEPCNT": 1024}, 0xffff,
			map[string]int{"ETIMEDOUT": 60, "ENOPROTOOPT": 42, "EINVAL": 22, "ECONNABORTED": 53, "EINPROGRESS": 36, "ECONNRESET": 54, "EAGAIN": 35, "EBADF": 9}},
		{LwIP, map[string]int{"SO_KEEPALIVE": 8, "TCP_KEEPALIVE": 2, "TCP_KEEPIDLE": 3, "TCP_KEEPINTVL": 4, "TCP_KEEPCNT": 5}, 0xfff,
			map[string]int{"ETIMEDOUT": 110, "ENOPROTOOPT": 92, "EINVAL": 22, "ECONNABORTED": 103, "EINPROGRESS": 115}},
	} {
		if got := tc.d.Opts(); len(got) != len(tc.opts) {
			t.Errorf("%s: options %v, want %v", tc.d.Name, got, tc.opts)
		}
		for name, n := range tc.opts {
			if got := tc.d.Opts()[name]; got != n {
				t.Errorf("%s: %s = %d, want %d", tc.d.Name, name, got, n)
			}
		}
		if got := tc.d.Levels()["SOL_SOCKET"]; got != tc.sol {
			t.Errorf("%s: SOL_SOCKET = %#x, want %#x", tc.d.Name, got, tc.sol)
		}
		for name, n := range tc.errs {
			if got := tc.d.Errno(name); got != (Errno{name, n}) {
				t.Errorf("%s: Errno(%s) = %v, want %d", tc.d.Name, name, got, n)
			}
		}
		if d, err := DialectNamed(tc.d.Name); err != nil || d != tc.d {
			t.Errorf("DialectNamed(%s) = %v, %v", tc.d.Name, d, err)
		}
	}
	if _, err := DialectNamed("solaris"); err == nil {
		t.Error("DialectNamed(solaris) accepted")
	}
}

// FreeBSD's tcp_default_ctloutput: seconds as an unsigned int, EINVAL
// above UINT_MAX/hz (4294967 at hz=1000, so -1 too); 0 is the system
// default and reads back as it; TCP_KEEPCNT takes anything.
func TestFreeBSDRanges(t *testing.T) {
	p := newPOSIXAs(t, FreeBSD)
	fd := p.Socket(LinuxAF_INET, SOCK_STREAM, 0)
	read := func(opt int) uint32 {
		got, n := make([]byte, 4), 4
		if p.Getsockopt(fd, IPPROTO_TCP, opt, got, &n) != 0 {
			t.Fatalf("getsockopt %d: %v", opt, p.Errno())
		}
		return uint32(got[0]) | uint32(got[1])<<8 | uint32(got[2])<<16 | uint32(got[3])<<24
	}
	for _, v := range []uint32{1, 7200, 4294967} {
		if p.Setsockopt(fd, IPPROTO_TCP, FreeBSDTCP_KEEPIDLE, dword(v), 4) != 0 {
			t.Errorf("TCP_KEEPIDLE %d refused: %v", v, p.Errno())
		}
		if got := read(FreeBSDTCP_KEEPIDLE); got != v {
			t.Errorf("TCP_KEEPIDLE %d reads back %d", v, got)
		}
	}
	if p.Conn(fd).KeepAlive().Idle != 4294967*time.Second {
		t.Errorf("the stack's idle is %v", p.Conn(fd).KeepAlive().Idle)
	}
	for _, v := range []uint32{4294968, 0xFFFFFFFF} {
		wantErrno(t, "TCP_KEEPINTVL out of range", p.Setsockopt(fd, IPPROTO_TCP, FreeBSDTCP_KEEPINTVL, dword(v), 4), p, Errno{"EINVAL", 22})
	}
	if p.Setsockopt(fd, IPPROTO_TCP, FreeBSDTCP_KEEPIDLE, dword(0), 4) != 0 || read(FreeBSDTCP_KEEPIDLE) != 7200 {
		t.Errorf("TCP_KEEPIDLE 0: %v, reads %d; want the default 7200", p.Errno(), read(FreeBSDTCP_KEEPIDLE))
	}
	if p.Setsockopt(fd, IPPROTO_TCP, FreeBSDTCP_KEEPCNT, dword(0), 4) != 0 || read(FreeBSDTCP_KEEPCNT) != 9 {
		t.Errorf("TCP_KEEPCNT 0 reads %d, want the host's default (gVisor's 9 here)", read(FreeBSDTCP_KEEPCNT))
	}
	if p.Setsockopt(fd, IPPROTO_TCP, FreeBSDTCP_KEEPCNT, dword(1000), 4) != 0 || p.Conn(fd).KeepAlive().Count != 1000 {
		t.Errorf("TCP_KEEPCNT 1000: %v", p.Errno())
	}
	if read(FreeBSDTCP_KEEPINIT) != 75 {
		t.Errorf("TCP_KEEPINIT reads %d, want 75", read(FreeBSDTCP_KEEPINIT))
	}
	wantErrno(t, "TCP_USER_TIMEOUT", p.Setsockopt(fd, IPPROTO_TCP, LinuxTCP_USER_TIMEOUT, dword(5000), 4), p, Errno{"ENOPROTOOPT", 42})
	wantErrno(t, "Linux's SOL_SOCKET", p.Setsockopt(fd, LinuxSOL_SOCKET, LinuxSO_KEEPALIVE, dword(1), 4), p, Errno{"EINVAL", 22})
	wantErrno(t, "optlen 3", p.Setsockopt(fd, IPPROTO_TCP, FreeBSDTCP_KEEPCNT, dword(1), 3), p, Errno{"EINVAL", 22})
	wantErrno(t, "fd 99", p.Setsockopt(99, FreeBSDSOL_SOCKET, FreeBSDSO_KEEPALIVE, dword(1), 4), p, Errno{"EBADF", 9})
	udp := p.Socket(LinuxAF_INET, SOCK_DGRAM, 0)
	wantErrno(t, "TCP_KEEPIDLE on UDP", p.Setsockopt(udp, IPPROTO_TCP, FreeBSDTCP_KEEPIDLE, dword(5), 4), p, Errno{"EINVAL", 22})
	if p.Setsockopt(fd, FreeBSDSOL_SOCKET, FreeBSDSO_KEEPALIVE, dword(1), 4) != 0 || !p.Conn(fd).KeepAlive().Enabled {
		t.Errorf("SO_KEEPALIVE: %v", p.Errno())
	}
	if p.Socket(FreeBSDAF_INET6, SOCK_STREAM, 0) < 0 {
		t.Errorf("socket(AF_INET6 = 28): %v", p.Errno())
	}
}

// lwIP stores what it is given: no range checks, TCP_KEEPALIVE in
// milliseconds, the others times 1000 into a u32_t; TCP options check
// optlen before the option; TCP_USER_TIMEOUT does not exist.
func TestLwIPNoRangeChecks(t *testing.T) {
	p := newPOSIXAs(t, LwIP)
	fd := p.Socket(LinuxAF_INET, SOCK_STREAM, 0)
	for _, tc := range []struct {
		opt      int
		v        uint32
		idle     time.Duration
		readBack uint32
	}{
		{LwIPTCP_KEEPALIVE, 1500, 1500 * time.Millisecond, 1500},
		{LwIPTCP_KEEPIDLE, 0, 0, 0},
		{LwIPTCP_KEEPIDLE, 40000, 40000 * time.Second, 40000},
		// 1000 x 4294968 wraps to 704 ms in a u32_t.
		{LwIPTCP_KEEPIDLE, 4294968, 704 * time.Millisecond, 0},
	} {
		if p.Setsockopt(fd, IPPROTO_TCP, tc.opt, dword(tc.v), 4) != 0 {
			t.Errorf("option %d = %d refused: %v", tc.opt, tc.v, p.Errno())
		}
		if got := p.Conn(fd).KeepAlive().Idle; got != tc.idle {
			t.Errorf("option %d = %d: idle %v, want %v", tc.opt, tc.v, got, tc.idle)
		}
		got, n := make([]byte, 4), 4
		if p.Getsockopt(fd, IPPROTO_TCP, tc.opt, got, &n) != 0 || !bytes.Equal(got, dword(tc.readBack)) {
			t.Errorf("option %d = %d reads back % x, want %d", tc.opt, tc.v, got, tc.readBack)
		}
	}
	if p.Setsockopt(fd, IPPROTO_TCP, LwIPTCP_KEEPCNT, dword(0xFFFFFFFF), 4) != 0 || p.Conn(fd).KeepAlive().Count != 0xFFFFFFFF {
		t.Errorf("TCP_KEEPCNT -1: %v, count %d", p.Errno(), p.Conn(fd).KeepAlive().Count)
	}
	wantErrno(t, "TCP_USER_TIMEOUT", p.Setsockopt(fd, IPPROTO_TCP, LinuxTCP_USER_TIMEOUT, dword(5000), 4), p, Errno{"ENOPROTOOPT", 92})
	wantErrno(t, "TCP option 99, optlen 2", p.Setsockopt(fd, IPPROTO_TCP, 99, dword(1), 2), p, Errno{"EINVAL", 22})
	wantErrno(t, "SOL_SOCKET option 99, optlen 2", p.Setsockopt(fd, LwIPSOL_SOCKET, 99, dword(1), 2), p, Errno{"ENOPROTOOPT", 92})
	udp := p.Socket(LinuxAF_INET, SOCK_DGRAM, 0)
	wantErrno(t, "TCP_KEEPIDLE on UDP", p.Setsockopt(udp, IPPROTO_TCP, LwIPTCP_KEEPIDLE, dword(5), 4), p, Errno{"ENOPROTOOPT", 92})
	buf, n := make([]byte, 4), 2
	wantErrno(t, "getsockopt optlen 2", p.Getsockopt(fd, IPPROTO_TCP, LwIPTCP_KEEPCNT, buf, &n), p, Errno{"EINVAL", 22})
}
