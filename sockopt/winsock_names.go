package sockopt

// How Winsock names its levels, options, ioctl codes, address families and
// socket types, for the calls it reports and the scenarios that name them.

import (
	"fmt"
	"time"
)

// OptionNames is how a socket API names its options: levels and options
// by name, and the unit of those that take a time. *Dialect is one (each
// POSIX system's numbers); WinsockOptions is Winsock's.
type OptionNames interface {
	Levels() map[string]int
	Opts() map[string]int
	Unit(opt string) (time.Duration, bool)
}

// WinsockOptions names the options kasim's Winsock knows.
var WinsockOptions OptionNames = winsockNames{}

// winsockOptions is Winsock's one option table. Where two names share a
// number (TCP_KEEPALIVE is TCP_KEEPIDLE), the first names it in the trace.
var winsockOptions = []struct {
	level, opt int
	name       string
	unit       time.Duration // for options that take a time
}{
	{SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 0},
	{IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", time.Second},
	{IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", 0},
	{IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", time.Second},
	{IPPROTO_TCP, TCP_KEEPALIVE, "TCP_KEEPALIVE", time.Second},
}

type winsockNames struct{}

func (winsockNames) Levels() map[string]int {
	return map[string]int{"SOL_SOCKET": SOL_SOCKET, "IPPROTO_TCP": IPPROTO_TCP}
}

func (winsockNames) Opts() map[string]int {
	m := make(map[string]int, len(winsockOptions))
	for _, o := range winsockOptions {
		m[o.name] = o.opt
	}
	return m
}

func (winsockNames) Unit(opt string) (time.Duration, bool) {
	for _, o := range winsockOptions {
		if o.name == opt && o.unit != 0 {
			return o.unit, true
		}
	}
	return 0, false
}

func levelName(level int) string {
	for name, l := range WinsockOptions.Levels() {
		if l == level {
			return name
		}
	}
	return fmt.Sprintf("level %d", level)
}

func optName(level, opt int) string {
	for _, o := range winsockOptions {
		if o.level == level && o.opt == opt {
			return o.name
		}
	}
	return fmt.Sprintf("option %d", opt)
}

func ioctlName(code uint32) string {
	if code == SIO_KEEPALIVE_VALS {
		return "SIO_KEEPALIVE_VALS"
	}
	return fmt.Sprintf("0x%08x", code)
}

func afName(af int) string {
	switch af {
	case AF_INET:
		return "AF_INET"
	case AF_INET6:
		return "AF_INET6"
	}
	return fmt.Sprint(af)
}

func typeName(t int) string {
	switch t {
	case SOCK_STREAM:
		return "SOCK_STREAM"
	case SOCK_DGRAM:
		return "SOCK_DGRAM"
	}
	return fmt.Sprint(t)
}
