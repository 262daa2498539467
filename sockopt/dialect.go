package sockopt

import (
	"fmt"
	"math"
	"strings"
	"time"

	"kasim/stack"
)

// Dialect is one system's spelling of the POSIX socket surface: its option
// numbers, the keep-alive options it has, how it checks and stores their
// values, and its errno numbers. Linux is the default; a POSIX surface
// speaks exactly one.
type Dialect struct {
	Name  string // "linux", "freebsd", "lwip"
	Title string // "Linux"
	// AF_INET6, SOL_SOCKET and SO_KEEPALIVE as the system numbers them
	// (AF_INET is 2 and IPPROTO_TCP 6 everywhere).
	AF_INET6, SOL_SOCKET, SO_KEEPALIVE int
	// Sock maps the other SOL_SOCKET options kasim models to their
	// numbers (SO_RCVBUF, on Linux).
	Sock map[string]int
	// TCP maps the IPPROTO_TCP keep-alive options the system has to their
	// numbers.
	TCP map[string]int
	// units are the units of the options that take a time.
	units map[string]time.Duration
	// errnos numbers the errors by name where they differ from Linux's.
	errnos map[string]int
	// check returns the error, numbered as on Linux, for a call the system
	// refuses before it reads the value (level, option, socket type,
	// optlen), or the zero Errno.
	check func(d *Dialect, level, opt int, tcp bool, optlen int) Errno
	// set stores v for option opt (a TCP name, or "SO_KEEPALIVE") as the
	// system does, or returns the error, numbered as on Linux, it refuses
	// v with.
	set func(f *pfd, opt string, v int32, defaults stack.KeepAlive) Errno
	// get reads option opt back as the system's getsockopt does.
	get func(f *pfd, opt string) int32
	// getChecksOptlen: getsockopt checks optlen as setsockopt does (lwIP);
	// otherwise a short optlen truncates the int (Linux, FreeBSD).
	getChecksOptlen bool
}

// Dialects the POSIX surface speaks.
var (
	// Linux is the Linux kernel's surface (net/ipv4/tcp.c do_tcp_setsockopt).
	Linux = &Dialect{
		Name: "linux", Title: "Linux", AF_INET6: LinuxAF_INET6, SOL_SOCKET: LinuxSOL_SOCKET, SO_KEEPALIVE: LinuxSO_KEEPALIVE,
		TCP: map[string]int{"TCP_KEEPIDLE": LinuxTCP_KEEPIDLE, "TCP_KEEPINTVL": LinuxTCP_KEEPINTVL,
			"TCP_KEEPCNT": LinuxTCP_KEEPCNT, "TCP_USER_TIMEOUT": LinuxTCP_USER_TIMEOUT, "TCP_SYNCNT": LinuxTCP_SYNCNT,
			"TCP_DEFER_ACCEPT": LinuxTCP_DEFER_ACCEPT},
		Sock:  map[string]int{"SO_RCVBUF": LinuxSO_RCVBUF},
		units: map[string]time.Duration{"TCP_KEEPIDLE": time.Second, "TCP_KEEPINTVL": time.Second, "TCP_USER_TIMEOUT": time.Millisecond},
		check: linuxCheck, set: linuxSet, get: linuxGet,
	}
	// FreeBSD is FreeBSD's surface (sys/netinet/tcp_usrreq.c
	// tcp_default_ctloutput, sys/netinet/tcp.h, sys/sys/socket.h,
	// sys/sys/errno.h), with kern.hz at its default 1000.
	FreeBSD = &Dialect{
		Name: "freebsd", Title: "FreeBSD", AF_INET6: FreeBSDAF_INET6, SOL_SOCKET: FreeBSDSOL_SOCKET, SO_KEEPALIVE: FreeBSDSO_KEEPALIVE,
		TCP: map[string]int{"TCP_KEEPINIT": FreeBSDTCP_KEEPINIT, "TCP_KEEPIDLE": FreeBSDTCP_KEEPIDLE,
			"TCP_KEEPINTVL": FreeBSDTCP_KEEPINTVL, "TCP_KEEPCNT": FreeBSDTCP_KEEPCNT},
		units:  map[string]time.Duration{"TCP_KEEPINIT": time.Second, "TCP_KEEPIDLE": time.Second, "TCP_KEEPINTVL": time.Second},
		errnos: freebsdErrnos,
		check:  freebsdCheck, set: freebsdSet, get: freebsdGet,
	}
	// LwIP is lwIP's socket API (src/api/sockets.c lwip_setsockopt_impl,
	// src/include/lwip/sockets.h); its errno.h numbers errors as Linux does.
	LwIP = &Dialect{
		Name: "lwip", Title: "lwIP", AF_INET6: LinuxAF_INET6, SOL_SOCKET: LwIPSOL_SOCKET, SO_KEEPALIVE: LwIPSO_KEEPALIVE,
		TCP: map[string]int{"TCP_KEEPALIVE": LwIPTCP_KEEPALIVE, "TCP_KEEPIDLE": LwIPTCP_KEEPIDLE,
			"TCP_KEEPINTVL": LwIPTCP_KEEPINTVL, "TCP_KEEPCNT": LwIPTCP_KEEPCNT},
		units: map[string]time.Duration{"TCP_KEEPALIVE": time.Millisecond, "TCP_KEEPIDLE": time.Second, "TCP_KEEPINTVL": time.Second},
		check: lwipCheck, set: lwipSet, get: lwipGet, getChecksOptlen: true,
	}
	dialects = []*Dialect{Linux, FreeBSD, LwIP}
)

// FreeBSD's socket constants (sys/sys/socket.h, sys/netinet/tcp.h).
const (
	FreeBSDAF_INET6     = 28
	FreeBSDSOL_SOCKET   = 0xffff
	FreeBSDSO_KEEPALIVE = 0x0008

	FreeBSDTCP_KEEPINIT  = 128
	FreeBSDTCP_KEEPIDLE  = 256
	FreeBSDTCP_KEEPINTVL = 512
	FreeBSDTCP_KEEPCNT   = 1024

	// FreeBSDHZ is kern.hz: tcp_default_ctloutput refuses times whose
	// ticks overflow an unsigned int (above UINT_MAX / hz seconds).
	FreeBSDHZ = 1000
)

// lwIP's socket constants (src/include/lwip/sockets.h).
const (
	LwIPSOL_SOCKET   = 0xfff
	LwIPSO_KEEPALIVE = 0x0008

	LwIPTCP_KEEPALIVE = 0x02 // keep_idle in milliseconds
	LwIPTCP_KEEPIDLE  = 0x03
	LwIPTCP_KEEPINTVL = 0x04
	LwIPTCP_KEEPCNT   = 0x05

	// lwipSOF_KEEPALIVE is the so_options bit getsockopt(SO_KEEPALIVE)
	// returns (src/include/lwip/ip.h).
	lwipSOF_KEEPALIVE = 0x08
)

// freebsdErrnos are FreeBSD's numbers (sys/sys/errno.h) for the errors a
// TCP socket call can return.
var freebsdErrnos = map[string]int{
	"EPERM": 1, "EINTR": 4, "EBADF": 9, "ENOMEM": 12, "EFAULT": 14, "EINVAL": 22, "EPIPE": 32,
	"EAGAIN": 35, "EINPROGRESS": 36, "EALREADY": 37, "ENOTSOCK": 38, "EDESTADDRREQ": 39, "EMSGSIZE": 40,
	"EPROTOTYPE": 41, "ENOPROTOOPT": 42, "EPROTONOSUPPORT": 43, "ESOCKTNOSUPPORT": 44, "EOPNOTSUPP": 45,
	"EAFNOSUPPORT": 47, "EADDRINUSE": 48, "EADDRNOTAVAIL": 49, "ENETDOWN": 50, "ENETUNREACH": 51,
	"ENETRESET": 52, "ECONNABORTED": 53, "ECONNRESET": 54, "ENOBUFS": 55, "EISCONN": 56, "ENOTCONN": 57,
	"ESHUTDOWN": 58, "ETIMEDOUT": 60, "ECONNREFUSED": 61, "EHOSTDOWN": 64, "EHOSTUNREACH": 65,
}

// DialectNamed returns the dialect called name.
func DialectNamed(name string) (*Dialect, error) {
	for _, d := range dialects {
		if d.Name == name {
			return d, nil
		}
	}
	names := make([]string, len(dialects))
	for i, d := range dialects {
		names[i] = d.Name
	}
	return nil, fmt.Errorf("unknown socket dialect %q (want %s)", name, strings.Join(names, ", "))
}

// Levels returns the option levels the dialect knows, by name.
func (d *Dialect) Levels() map[string]int {
	return map[string]int{"SOL_SOCKET": d.SOL_SOCKET, "IPPROTO_TCP": IPPROTO_TCP}
}

// Opts returns the keep-alive options the dialect has, by name.
func (d *Dialect) Opts() map[string]int {
	m := map[string]int{"SO_KEEPALIVE": d.SO_KEEPALIVE}
	for k, v := range d.Sock {
		m[k] = v
	}
	for k, v := range d.TCP {
		m[k] = v
	}
	return m
}

// Accepts reports whether setsockopt takes value v for opt (a name the
// dialect knows, "TCP_KEEPIDLE") on this system, by the same rules the
// call itself follows: a program can learn ahead whether a setting will
// be refused.
func (d *Dialect) Accepts(opt string, v int32) bool {
	if _, known := d.Opts()[opt]; !known {
		return false
	}
	return d.set(&pfd{}, opt, v, stack.KeepAlive{}) == (Errno{})
}

// UnitName names an option's unit in messages: "seconds", "milliseconds".
func UnitName(u time.Duration) string {
	if u == time.Millisecond {
		return "milliseconds"
	}
	return "seconds"
}

// Unit returns the unit of an option that takes a time.
func (d *Dialect) Unit(opt string) (time.Duration, bool) {
	u, ok := d.units[opt]
	return u, ok
}

// Errno returns the error called name, numbered as the dialect's system
// numbers it, or with no number if no socket call returns it.
func (d *Dialect) Errno(name string) Errno {
	for n, s := range errnoNames {
		if s == name {
			return d.renumber(Errno{name, int(n)})
		}
	}
	return d.renumber(Errno{Name: name})
}

// renumber gives e the dialect's number for it, where the system numbers
// it differently from Linux.
func (d *Dialect) renumber(e Errno) Errno {
	if n, ok := d.errnos[e.Name]; ok {
		e.Code = n
	}
	return e
}

// ErrnoFromError is ErrnoFromError with the dialect's numbers.
func (d *Dialect) ErrnoFromError(err error) (Errno, bool) {
	e, ok := ErrnoFromError(err)
	return d.renumber(e), ok
}

func (d *Dialect) levelName(level int) string {
	switch level {
	case d.SOL_SOCKET:
		return "SOL_SOCKET"
	case IPPROTO_TCP:
		return "IPPROTO_TCP"
	}
	return fmt.Sprintf("level %d", level)
}

// optName names an option the dialect has, or returns "option N".
func (d *Dialect) optName(level, opt int) string {
	if name, ok := d.opt(level, opt); ok {
		return name
	}
	return fmt.Sprintf("option %d", opt)
}

func (d *Dialect) has(level, opt int) bool {
	_, ok := d.opt(level, opt)
	return ok
}

// opt names an option the dialect has at level; within a level the
// numbers are unique, so the map's order does not matter.
func (d *Dialect) opt(level, opt int) (string, bool) {
	switch level {
	case d.SOL_SOCKET:
		if opt == d.SO_KEEPALIVE {
			return "SO_KEEPALIVE", true
		}
		for name, n := range d.Sock {
			if n == opt {
				return name, true
			}
		}
	case IPPROTO_TCP:
		for name, n := range d.TCP {
			if n == opt {
				return name, true
			}
		}
	}
	return "", false
}

// linuxCheck: ENOPROTOOPT for an option the level or socket lacks, EINVAL
// for optlen below sizeof(int).
func linuxCheck(d *Dialect, level, opt int, tcp bool, optlen int) Errno {
	if !d.has(level, opt) || (level == IPPROTO_TCP && !tcp) {
		return ENOPROTOOPT
	}
	if optlen < 4 {
		return EINVAL
	}
	return Errno{}
}

func linuxSet(f *pfd, opt string, v int32, _ stack.KeepAlive) Errno {
	switch opt {
	case "SO_KEEPALIVE":
		f.keepAlive = v != 0 // a UDP socket takes the flag too, to no effect
	case "TCP_KEEPIDLE":
		if v < 1 || v > MaxTCPKeepIdle {
			return EINVAL
		}
		f.idle = time.Duration(v) * time.Second
	case "TCP_KEEPINTVL":
		if v < 1 || v > MaxTCPKeepIntvl {
			return EINVAL
		}
		f.interval = time.Duration(v) * time.Second
	case "TCP_KEEPCNT":
		if v < 1 || v > MaxTCPKeepCnt {
			return EINVAL
		}
		f.count = int(v)
	case "TCP_USER_TIMEOUT":
		if v < 0 {
			return EINVAL
		}
		f.userTO = time.Duration(v) * time.Millisecond
	case "TCP_SYNCNT":
		if v < 1 || v > MaxTCPSynCnt {
			return EINVAL
		}
		f.synCnt = int(v)
	case "SO_RCVBUF":
		f.rcvbuf = uint32(v) // read unsigned: a negative value is a large one
	case "TCP_DEFER_ACCEPT":
		f.deferAcc = int(v) // any value: 0 or less turns it off
	}
	return Errno{}
}

func linuxGet(f *pfd, opt string) int32 {
	switch opt {
	case "SO_KEEPALIVE":
		if f.keepAlive {
			return 1
		}
	case "TCP_KEEPIDLE":
		return int32(f.idle / time.Second)
	case "TCP_KEEPINTVL":
		return int32(f.interval / time.Second)
	case "TCP_KEEPCNT":
		return int32(f.count)
	case "TCP_USER_TIMEOUT":
		return int32(f.userTO / time.Millisecond)
	case "TCP_SYNCNT":
		return int32(f.synCnt)
	case "TCP_DEFER_ACCEPT":
		if f.conn != nil {
			return int32(f.conn.DeferAccept())
		}
	case "SO_RCVBUF":
		if f.conn != nil {
			return int32(f.conn.ReceiveBuffer())
		}
	}
	return 0
}

// freebsdCheck: a level other than SOL_SOCKET and the socket's protocol
// goes to ip_ctloutput, which answers EINVAL (so does IPPROTO_TCP on a UDP
// socket); an option tcp_default_ctloutput lacks (TCP_USER_TIMEOUT) is
// ENOPROTOOPT; sooptcopyin refuses optlen below sizeof(u_int) with EINVAL.
func freebsdCheck(d *Dialect, level, opt int, tcp bool, optlen int) Errno {
	switch {
	case level != FreeBSDSOL_SOCKET && level != IPPROTO_TCP, level == IPPROTO_TCP && !tcp:
		return EINVAL
	case !d.has(level, opt):
		return ENOPROTOOPT
	case optlen < 4:
		return EINVAL
	}
	return Errno{}
}

// freebsdSet follows tcp_default_ctloutput: times are an unsigned number
// of seconds, EINVAL above UINT_MAX / hz (their ticks would overflow); 0
// stores 0, which TP_KEEPIDLE and friends read as the system default;
// TCP_KEEPCNT takes any unsigned value, 0 again the default.
func freebsdSet(f *pfd, opt string, v int32, defaults stack.KeepAlive) Errno {
	u := uint32(v)
	seconds := func(def time.Duration) (time.Duration, Errno) {
		if u > math.MaxUint32/FreeBSDHZ {
			return 0, EINVAL
		}
		if u == 0 {
			return def, Errno{}
		}
		return time.Duration(u) * time.Second, Errno{}
	}
	var bad Errno
	switch opt {
	case "SO_KEEPALIVE":
		f.keepAlive = v != 0
	case "TCP_KEEPIDLE":
		f.idle, bad = seconds(defaults.Idle)
	case "TCP_KEEPINTVL":
		f.interval, bad = seconds(defaults.Interval)
	case "TCP_KEEPINIT":
		f.keepInit, bad = seconds(freebsdKeepInit)
	case "TCP_KEEPCNT":
		f.count = int(u)
		if u == 0 {
			f.count = defaults.Count
		}
	}
	return bad
}

// freebsdKeepInit is TCPTV_KEEP_INIT, the connection-establishment timeout
// a TCP_KEEPINIT of 0 stands for.
const freebsdKeepInit = 75 * time.Second

func freebsdGet(f *pfd, opt string) int32 {
	switch opt {
	case "SO_KEEPALIVE":
		// sogetopt (sys/kern/uipc_socket.c): optval = so->so_options &
		// sopt->sopt_name, the flag's own bit, 0x0008.
		if f.keepAlive {
			return FreeBSDSO_KEEPALIVE
		}
		return 0
	case "TCP_KEEPINIT":
		if f.keepInit == 0 {
			return int32(freebsdKeepInit / time.Second)
		}
		return int32(f.keepInit / time.Second)
	}
	return linuxGet(f, opt)
}

// lwipCheck: IPPROTO_TCP options check optlen and the socket's type before
// the option (LWIP_SOCKOPT_CHECK_OPTLEN_CONN_PCB_TYPE: EINVAL, then
// ENOPROTOOPT); SOL_SOCKET checks the option first; an unknown level or
// option is ENOPROTOOPT.
func lwipCheck(d *Dialect, level, opt int, tcp bool, optlen int) Errno {
	switch {
	case level == IPPROTO_TCP && optlen < 4:
		return EINVAL
	case level == IPPROTO_TCP && !tcp, !d.has(level, opt):
		return ENOPROTOOPT
	case optlen < 4:
		return EINVAL
	}
	return Errno{}
}

// lwipSet stores what lwip_setsockopt_impl stores, unchecked: keep_idle
// and keep_intvl are u32_t milliseconds (TCP_KEEPIDLE and TCP_KEEPINTVL
// are multiplied by 1000, wrapping), keep_cnt a u32_t.
func lwipSet(f *pfd, opt string, v int32, _ stack.KeepAlive) Errno {
	ms := func(x uint32) time.Duration { return time.Duration(x) * time.Millisecond }
	switch opt {
	case "SO_KEEPALIVE":
		f.keepAlive = v != 0
	case "TCP_KEEPALIVE":
		f.idle = ms(uint32(v))
	case "TCP_KEEPIDLE":
		f.idle = ms(1000 * uint32(v))
	case "TCP_KEEPINTVL":
		f.interval = ms(1000 * uint32(v))
	case "TCP_KEEPCNT":
		f.count = int(uint32(v))
	}
	return Errno{}
}

// lwipGet reads back as lwip_getsockopt_impl: keep_idle in milliseconds
// for TCP_KEEPALIVE, divided by 1000 for TCP_KEEPIDLE and TCP_KEEPINTVL.
func lwipGet(f *pfd, opt string) int32 {
	switch opt {
	case "SO_KEEPALIVE":
		// lwip_sockopt_to_ipopt, then ip_get_option: so_options &
		// SOF_KEEPALIVE, the flag's own bit, 0x08 (measured against lwIP
		// 2.1.3: reads back 8).
		if f.keepAlive {
			return lwipSOF_KEEPALIVE
		}
		return 0
	case "TCP_KEEPALIVE":
		return int32(uint32(f.idle / time.Millisecond))
	case "TCP_KEEPIDLE":
		return int32(uint32(f.idle/time.Millisecond) / 1000)
	case "TCP_KEEPINTVL":
		return int32(uint32(f.interval/time.Millisecond) / 1000)
	}
	return linuxGet(f, opt)
}
