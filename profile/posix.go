package profile

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"kasim/internal/echo"
	"kasim/sockopt"
	"kasim/stack"
)

// posix is the system of a stack kasim drives through BSD-socket calls, in
// its own option numbers: whether an RST goes out when keep-alive gives
// up, whether TCP_USER_TIMEOUT replaces the probe count, how late its
// timers fire, and for FreeBSD and lwIP (modelled from their source)
// whether every socket probes, in which states, and which error the
// application gets. Each system's file (linux.go, gvisor.go, freebsd.go,
// lwip.go) fills in one.
type posix struct {
	name  string // kasim's name: "linux"
	title string // "Linux"
	owner string // "Linux's", for the summary
	// dialect names the socket API the host's applications call, as
	// sockopt.DialectNamed knows it: "linux" (gvisor too), "freebsd",
	// "lwip".
	dialect string

	// idle, interval and count are the defaults a socket starts with
	// (Linux: the sysctls net.ipv4.tcp_keepalive_time, _intvl, _probes).
	idle     time.Duration
	interval time.Duration
	count    int

	abortRST                 bool
	userTimeoutReplacesCount bool
	// keepTimerKept: keep-alive options set on a running connection move
	// its timer as Linux's do (stack.Behaviour.KeepAliveTimerKept).
	keepTimerKept   bool
	hz              int
	tick            time.Duration
	tickStart       time.Duration // see Profile.TickStart
	alwaysKeepAlive bool
	// probeStates, if set, are the only states probes go out in (by RFC
	// 793 name, "ESTABLISHED"); empty means wherever gVisor probes.
	probeStates []string
	// abortError is the error the application gets when keep-alive gives
	// up: "ETIMEDOUT" or "ECONNABORTED" (lwIP's ERR_ABRT).
	abortError          string
	closeStopsKeepAlive bool
	// retries2, if set, is Linux's net.ipv4.tcp_retries2: retransmission
	// gives up by time, counted from the first retransmission
	// (stack.Behaviour.RetransmitTimeout); 0 keeps gVisor's count of 15.
	retries2 int
	// synRetries and synLinear, if synRetries is set, are Linux's
	// tcp_syn_retries and tcp_syn_linear_timeouts (stack.SynRetransmit);
	// 0 keeps gVisor's SYN schedule. With synEvery as well, they are
	// lwIP's: TCP_SYNMAXRTX retransmissions, synEvery apart on the tick.
	synRetries, synLinear int
	synEvery              time.Duration
	// synAckRetries, if set, is Linux's tcp_synack_retries
	// (stack.Behaviour.SynAckRetries); 0 keeps gVisor's.
	synAckRetries int
	// synSchedule, if ByCount, is a schedule by count of the system's own
	// (FreeBSD's), in place of the three above.
	synSchedule stack.SynRetransmit
	// dataRetries, if set, is lwIP's TCP_MAXRTX: data retransmission on
	// the tick (stack.TickRetransmit), from an RTO of initialRTO.
	dataRetries int
	initialRTO  time.Duration
	// bsdRetransmit, if set, is FreeBSD's data retransmission
	// (stack.BSDRetransmit).
	bsdRetransmit stack.BSDRetransmit
	// lateArm: keep-alive switched on before connect is armed only by a
	// segment on the established connection, as gVisor does (see
	// stack.Behaviour.ArmAtEstablishment); every other system arms it at
	// establishment.
	lateArm bool
	// receiveBuffer is SO_RCVBUF's rule (zero: gVisor's).
	receiveBuffer stack.BufferRule
	// bareWindowProbe: window probes carry no octet (Linux's); gVisor's
	// resend one.
	bareWindowProbe bool
	measured        bool
	fromSource      bool // modelled from the system's source, not measured
	// measuredAgainst says what the profile was measured against, when,
	// and with which command.
	measuredAgainst string

	keys      []string          // the keys set takes
	sysctls   []string          // those of keys that are Linux sysctls (net.ipv4.*)
	overrides map[string]string // key -> value as given

	// describeAs writes the profile for kasim profile.
	describeAs func(x posix, p Profile, w io.Writer) error
	// citations are the rules the system's events follow.
	citations Citations
}

// posixTable lists the POSIX stacks.
var posixTable = []entry{
	{name: "linux", sys: func() system { return linuxSystem }},
	{name: "gvisor", sys: func() system { return gvisorSystem }},
	{name: "freebsd", sys: func() system { return freebsdSystem }},
	{name: "lwip", sys: func() system { return lwipSystem }},
}

// HZs are the timer frequencies Linux can be built with (CONFIG_HZ).
var HZs = []int{100, 250, 300, 1000}

func (x posix) settings() []string { return x.keys }

// set overrides one behaviour the system has: "hz" (0 for exact timers,
// or one of HZs), "abort" (rst or none), "user-timeout" (replaces-count or
// first-of-both), "always-keepalive" (0 or 1), "arm" (segment or
// establishment), "tick" (0 for exact timers, or a duration from 1ms to
// 10s) or "tick-start" (when the first tick falls after the host's first
// connection; 0 counts ticks from the start of the run).
func (x posix) set(key, value string) (system, error) {
	var err error
	switch key {
	case "hz":
		hz, err := strconv.Atoi(value)
		if err != nil || (hz != 0 && !slices.Contains(HZs, hz)) {
			return x, fmt.Errorf("hz=%s: want 0 (exact timers) or one of 100, 250, 300, 1000", value)
		}
		x.hz = hz
	case "abort":
		x.abortRST, err = either(key, value, "rst", "none", "rst or none")
	case "user-timeout":
		x.userTimeoutReplacesCount, err = either(key, value, "replaces-count", "first-of-both", "replaces-count or first-of-both")
	case "always-keepalive":
		x.alwaysKeepAlive, err = either(key, value, "1", "0", "1 (every connection probes) or 0 (only with SO_KEEPALIVE)")
	case "arm":
		x.lateArm, err = either(key, value, "segment", "establishment", "segment (gVisor's: the first segment after the handshake arms it) or establishment")
	case "tcp_retries2":
		x.retries2, err = sysctlCount(key, value, 1, 100, 15)
	case "tcp_syn_retries":
		x.synRetries, err = sysctlCount(key, value, 1, 127, 6)
	case "tcp_syn_linear_timeouts":
		x.synLinear, err = sysctlCount(key, value, 0, 127, 4)
	case "tcp_synack_retries":
		x.synAckRetries, err = sysctlCount(key, value, 1, 255, 5)
	case "tcp_keepalive_time", "tcp_keepalive_intvl":
		var secs int
		if secs, err = sysctlCount(key, value, 1, math.MaxInt32/1000, map[string]int{"tcp_keepalive_time": 7200, "tcp_keepalive_intvl": 75}[key]); err == nil {
			if key == "tcp_keepalive_time" {
				x.idle = time.Duration(secs) * time.Second
			} else {
				x.interval = time.Duration(secs) * time.Second
			}
		}
	case "tcp_keepalive_probes":
		x.count, err = sysctlCount(key, value, 1, 127, 9)
	case "tick-start":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 || d > 10*time.Second {
			return x, fmt.Errorf("tick-start=%s: want 0 (ticks from the start of the run) or a duration up to 10s, e.g. 250ms", value)
		}
		x.tickStart = d
	case "tick":
		d, err := time.ParseDuration(value) // "0" parses too
		if err != nil || (d != 0 && (d < time.Millisecond || d > 10*time.Second)) {
			return x, fmt.Errorf("tick=%s: want 0 (exact timers) or a duration from 1ms to 10s, e.g. 500ms", value)
		}
		x.tick = d
	}
	if err != nil {
		return x, err
	}
	x.overrides = withOverride(x.overrides, key, value)
	return x, nil
}

// sysctlCount reads a Linux sysctl's whole-number value for set.
func sysctlCount(key, value string, low, high, def int) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil || n < low || n > high {
		return 0, fmt.Errorf("%s=%s: want a whole number from %d to %d (Linux's default is %d)", key, value, low, high, def)
	}
	return n, nil
}

func (x posix) setRegistry(string, uint64) (system, error) {
	return x, fmt.Errorf("%w: %s has no registry", ErrNoRegistry, x.name)
}

// resolve fills in a POSIX profile: the dialect's calls, the sysctl
// defaults, and where the system differs from gVisor below the socket API.
func (x posix) resolve(p *Profile) {
	p.Name, p.Title, p.API = x.name, x.title, POSIX
	d, err := sockopt.DialectNamed(x.dialect)
	if err != nil {
		panic("profile: " + x.name + ": " + err.Error()) // the table names a dialect sockopt lacks
	}
	p.Dialect = d
	p.Idle, p.Interval, p.Count = x.idle, x.interval, x.count
	p.HZ, p.Tick, p.Measured, p.FromSource = x.hz, x.tick, x.measured, x.fromSource
	if x.tick != 0 {
		p.TickStart = x.tickStart
	}
	b := stack.Behaviour{
		AbortRST:                 x.abortRST,
		UserTimeoutReplacesCount: x.userTimeoutReplacesCount,
		KeepAliveTimerKept:       x.keepTimerKept,
		KeepAliveDefaults:        stack.KeepAlive{Idle: x.idle, Interval: x.interval, Count: x.count},
		AlwaysKeepAlive:          x.alwaysKeepAlive,
		CloseStopsKeepAlive:      x.closeStopsKeepAlive,
		ArmAtEstablishment:       !x.lateArm,
		ReceiveBuffer:            x.receiveBuffer,
		BareWindowProbe:          x.bareWindowProbe,
		SynAckRetries:            x.synAckRetries,
	}
	if x.retries2 > 0 {
		b.RetransmitTimeout = stack.RetransmitTimeout(x.retries2)
		b.WindowProbeRetries = x.retries2
	}
	if x.synRetries > 0 {
		b.SynRetransmit = stack.SynRetransmit{Retries: x.synRetries, Linear: x.synLinear}
	}
	if x.synEvery > 0 {
		b.SynRetransmit.Every, b.SynRetransmit.Tick = x.synEvery, x.tick
	}
	if x.synSchedule.ByCount {
		b.SynRetransmit = x.synSchedule
	}
	b.BSDRetransmit = x.bsdRetransmit
	if x.dataRetries > 0 {
		b.TickRetransmit = stack.TickRetransmit{Tick: x.tick, InitialRTO: x.initialRTO, Max: x.dataRetries}
	}
	for _, name := range x.probeStates {
		for s := stack.Closed; s <= stack.TimeWait; s++ {
			if s.String() == name {
				b.KeepAliveStates = append(b.KeepAliveStates, s)
			}
		}
	}
	if x.abortError == "ECONNABORTED" {
		b.AbortError = stack.AbortConnAborted
	}
	p.Behaviour = b
	p.Cites = x.citations
}

func (x posix) describe(p Profile, w io.Writer) error { return x.describeAs(x, p, w) }

// checkKeepAlive refuses settings the system's setsockopt cannot make:
// a time its option's unit cannot hold, or a value the system refuses
// (Linux: TCP_KEEPIDLE and TCP_KEEPINTVL 1 to 32767 s, TCP_KEEPCNT 1 to
// 127). Zero means the system's value and is not checked.
func (x posix) checkKeepAlive(p Profile, idle, interval time.Duration, count int) error {
	d := p.Dialect
	for _, o := range []struct {
		what, opt string
		v         time.Duration
	}{{"idle", "TCP_KEEPIDLE", idle}, {"interval", "TCP_KEEPINTVL", interval}} {
		unit, _ := d.Unit(o.opt)
		switch {
		case o.v == 0:
		case o.v%unit != 0 || o.v/unit > math.MaxInt32:
			return fmt.Errorf("%s %v: %s sets it with %s, in whole %s", o.what, o.v, x.name, o.opt, sockopt.UnitName(unit))
		case !d.Accepts(o.opt, int32(o.v/unit)):
			return fmt.Errorf("%s %v: %s's setsockopt(%s, %d) fails with EINVAL", o.what, o.v, x.name, o.opt, o.v/unit)
		}
	}
	if count != 0 && (count > math.MaxInt32 || !d.Accepts("TCP_KEEPCNT", int32(count))) {
		return fmt.Errorf("count %d: %s's setsockopt(TCP_KEEPCNT, %d) fails with EINVAL", count, x.name, count)
	}
	return nil
}

func (x posix) note(p Profile) string {
	return fmt.Sprintf("%s: POSIX calls with %s's option numbers, %s", x.name, p.Dialect.Title, x.summary())
}

// summary is the system in a phrase: "gVisor's keep-alive (defaults 2h /
// 75s / 9)", and for the other systems what they do differently from
// gVisor.
func (x posix) summary() string {
	text := fmt.Sprintf("%s keep-alive (defaults %s / %s / %d", x.owner, short(x.idle), short(x.interval), x.count)
	if x.abortRST {
		text += ", RST at the abort"
	}
	if x.abortError != "" && x.abortError != "ETIMEDOUT" {
		text += ", " + x.abortError
	}
	if x.alwaysKeepAlive {
		text += ", on for every connection (always_keepalive=1)"
	}
	if len(x.probeStates) > 0 {
		text += ", probes in " + strings.Replace(echo.OrList(x.probeStates), " or ", " and ", 1) + " only"
	}
	if x.tick != 0 {
		text += ", timers on a " + x.tick.String() + " tick"
	}
	if x.userTimeoutReplacesCount {
		text += ", TCP_USER_TIMEOUT replaces the count"
	}
	if x.hz != 0 {
		text += fmt.Sprintf(", timers of a HZ=%d kernel", x.hz)
	}
	if _, set := x.overrides["tcp_retries2"]; set {
		text += fmt.Sprintf(", tcp_retries2=%d (gives up %v after the first retransmission)", x.retries2, stack.RetransmitTimeout(x.retries2))
	}
	for _, k := range []string{"tcp_syn_retries", "tcp_syn_linear_timeouts", "tcp_synack_retries"} {
		if v, set := x.overrides[k]; set {
			text += ", " + k + "=" + v
		}
	}
	if _, set := x.overrides["arm"]; set && x.lateArm {
		text += ", keep-alive armed by the first segment after the handshake (arm=segment)"
	} else if set {
		text += ", keep-alive armed at establishment (arm=establishment)"
	}
	return text + ")"
}

// setMark marks a value the user overrode: "  (set: key=value)".
func (x posix) setMark(key string) string {
	if v, ok := x.overrides[key]; ok {
		return "  (set: " + key + "=" + v + ")"
	}
	return ""
}

func (x posix) rstText() string {
	if x.abortRST {
		return "RST+ACK at SND.NXT"
	}
	return "no RST"
}
