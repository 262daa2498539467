// Package posixprofile describes the keep-alive behaviour of the stacks kasim
// drives through BSD-socket calls, each in its system's option numbers.
package posixprofile

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"kasim/timers"
)

// Profile is one stack's keep-alive behaviour, with any overrides. The zero
// Profile is not valid: start from Lookup.
//
// A profile says what a host does at the points where stacks differ:
// whether an RST goes out when keep-alive gives up, whether
// TCP_USER_TIMEOUT replaces the probe count, how late its timers fire, and
// for FreeBSD and lwIP (modelled from their source) whether every socket
// probes, in which states, and which error the application gets.
type Profile struct {
	Name  string // kasim's name: "linux", "gvisor", "freebsd", "lwip"
	Title string // "Linux"
	// Dialect names the socket API the host's applications call, as
	// sockopt.DialectNamed knows it: "linux" (gvisor too), "freebsd",
	// "lwip".
	Dialect string

	// Idle, Interval and Count are the defaults a socket starts with
	// (Linux: the sysctls net.ipv4.tcp_keepalive_time, _intvl, _probes).
	Idle     time.Duration
	Interval time.Duration
	Count    int

	// AbortRST says whether RST+ACK (seq = SND.NXT) goes out when
	// keep-alive gives up.
	AbortRST bool
	// UserTimeoutReplacesCount says that while TCP_USER_TIMEOUT is set, it
	// alone decides when unanswered probes drop the connection.
	UserTimeoutReplacesCount bool
	// HZ, if not zero, is the kernel's timer frequency: the host's timers
	// fire when a Linux timer wheel ticking HZ times a second fires them,
	// rounded up to their level's granularity (1 s becomes 1.024 s at 250).
	// Zero fires every timer at its exact nanosecond.
	HZ int
	// Tick, if not zero, fires every timer of the host at the next
	// multiple of it (lwIP's 500 ms tcp_slowtmr): timers.TickQueue.
	Tick time.Duration

	// AlwaysKeepAlive makes every connection probe, SO_KEEPALIVE or not
	// (FreeBSD's net.inet.tcp.always_keepalive).
	AlwaysKeepAlive bool
	// ProbeStates, if set, are the only states probes go out in (by RFC
	// 793 name, "ESTABLISHED"); empty means wherever gVisor probes.
	ProbeStates []string
	// AbortError is the error the application gets when keep-alive gives
	// up: "ETIMEDOUT" or "ECONNABORTED" (lwIP's ERR_ABRT).
	AbortError string
	// CloseStopsKeepAlive says a connection the application closed probes
	// no more (Linux: its orphan waits out FIN-WAIT-2 as a timewait
	// socket, which has no keep-alive timer); gVisor's orphan goes on
	// probing in FIN-WAIT-2.
	CloseStopsKeepAlive bool

	// Measured says the profile has been held against the real stack
	// (kasim conform); otherwise it is modelled from source.
	Measured bool

	settings  []string          // the keys Set takes
	overrides map[string]string // key -> value as given
}

var table = []Profile{
	{Name: "linux", Title: "Linux", Dialect: "linux", Idle: 2 * time.Hour, Interval: 75 * time.Second, Count: 9,
		AbortRST: true, UserTimeoutReplacesCount: true, HZ: 250, AbortError: "ETIMEDOUT", CloseStopsKeepAlive: true, Measured: true,
		settings: []string{"hz", "abort", "user-timeout"}},
	{Name: "gvisor", Title: "gVisor netstack", Dialect: "linux", Idle: 2 * time.Hour, Interval: 75 * time.Second, Count: 9,
		AbortError: "ETIMEDOUT", settings: []string{"hz", "abort", "user-timeout"}},
	// FreeBSD: sys/netinet/tcp_timer.h TCPTV_KEEP_IDLE, TCPTV_KEEPINTVL,
	// TCPTV_KEEPCNT; tcp_timer.c always_keepalive = 1 and tcp_timer_keep,
	// which probes up to CLOSING and drops with tcp_drop(tp, ETIMEDOUT).
	{Name: "freebsd", Title: "FreeBSD", Dialect: "freebsd", Idle: 2 * time.Hour, Interval: 75 * time.Second, Count: 8,
		AbortRST: true, AlwaysKeepAlive: true, AbortError: "ETIMEDOUT",
		ProbeStates: []string{"ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-1", "CLOSING"},
		settings:    []string{"always-keepalive", "abort"}},
	// lwIP: src/include/lwip/priv/tcp_priv.h TCP_KEEPIDLE_DEFAULT,
	// TCP_KEEPINTVL_DEFAULT, TCP_KEEPCNT_DEFAULT; src/core/tcp.c
	// tcp_slowtmr (every TCP_SLOW_INTERVAL, 500 ms), which probes in
	// ESTABLISHED and CLOSE_WAIT and aborts with tcp_rst and ERR_ABRT.
	{Name: "lwip", Title: "lwIP", Dialect: "lwip", Idle: 2 * time.Hour, Interval: 75 * time.Second, Count: 9,
		AbortRST: true, Tick: 500 * time.Millisecond, AbortError: "ECONNABORTED",
		ProbeStates: []string{"ESTABLISHED", "CLOSE-WAIT"},
		settings:    []string{"tick", "abort"}},
}

// HZs are the timer frequencies Linux can be built with (CONFIG_HZ).
var HZs = []int{100, 250, 300, 1000}

// Names returns the profiles' names.
func Names() []string {
	out := make([]string, len(table))
	for i, p := range table {
		out[i] = p.Name
	}
	return out
}

// Lookup returns the profile called name, at its defaults.
func Lookup(name string) (Profile, error) {
	for _, p := range table {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown profile %q (want %s)", name, strings.Join(Names(), " or "))
}

// Set overrides one behaviour the profile has: "hz" (0 for exact timers,
// or one of HZs), "abort" (rst or none), "user-timeout" (replaces-count or
// first-of-both), "always-keepalive" (0 or 1) or "tick" (0 for exact
// timers, or a duration from 1ms to 10s).
func (p Profile) Set(key, value string) (Profile, error) {
	if !slices.Contains(p.settings, key) {
		return p, fmt.Errorf("unknown setting %q (want %s)", key, orList(p.settings))
	}
	orig := p // what an invalid value leaves unchanged
	var err error
	switch key {
	case "hz":
		hz, err := strconv.Atoi(value)
		if err != nil || (hz != 0 && !slices.Contains(HZs, hz)) {
			return p, fmt.Errorf("hz=%s: want 0 (exact timers) or one of 100, 250, 300, 1000", value)
		}
		p.HZ = hz
	case "abort":
		p.AbortRST, err = either(key, value, "rst", "none", "rst or none")
	case "user-timeout":
		p.UserTimeoutReplacesCount, err = either(key, value, "replaces-count", "first-of-both", "replaces-count or first-of-both")
	case "always-keepalive":
		p.AlwaysKeepAlive, err = either(key, value, "1", "0", "1 (every connection probes) or 0 (only with SO_KEEPALIVE)")
	case "tick":
		d, err := time.ParseDuration(value) // "0" parses too
		if err != nil || (d != 0 && (d < time.Millisecond || d > 10*time.Second)) {
			return p, fmt.Errorf("tick=%s: want 0 (exact timers) or a duration from 1ms to 10s, e.g. 500ms", value)
		}
		p.Tick = d
	}
	if err != nil {
		return orig, err
	}
	m := make(map[string]string, len(p.overrides)+1)
	for k, v := range p.overrides {
		m[k] = v
	}
	m[key] = value
	p.overrides = m
	return p, nil
}

// orList writes "a, b or c".
func orList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// Settings returns the keys Set takes for this profile.
func (p Profile) Settings() []string { return slices.Clone(p.settings) }

// either reads a two-valued setting: on, off, or an error saying what is
// wanted.
func either(key, value, on, off, want string) (bool, error) {
	switch value {
	case on:
		return true, nil
	case off:
		return false, nil
	}
	return false, fmt.Errorf("%s=%s: want %s", key, value, want)
}

// Apply applies "KEY=VALUE" settings in order.
func (p Profile) Apply(assignments ...string) (Profile, error) {
	for _, a := range assignments {
		key, value, ok := strings.Cut(a, "=")
		if !ok || key == "" {
			return p, fmt.Errorf("%q: want KEY=VALUE", a)
		}
		var err error
		if p, err = p.Set(key, value); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Overridden reports whether key was set with Set.
func (p Profile) Overridden(key string) bool {
	_, ok := p.overrides[key]
	return ok
}

// Summary is the profile in a phrase, for a trace's notes: "gVisor's
// keep-alive (defaults 2h / 75s / 9)", and for the other profiles what
// they do differently from gVisor.
func (p Profile) Summary() string {
	owner := map[string]string{"linux": "Linux's", "gvisor": "gVisor's", "freebsd": "FreeBSD's", "lwip": "lwIP's"}[p.Name]
	text := fmt.Sprintf("%s keep-alive (defaults %s / %s / %d", owner, short(p.Idle), short(p.Interval), p.Count)
	if p.AbortRST {
		text += ", RST at the abort"
	}
	if p.AbortError != "" && p.AbortError != "ETIMEDOUT" {
		text += ", " + p.AbortError
	}
	if p.AlwaysKeepAlive {
		text += ", on for every connection (always_keepalive=1)"
	}
	if len(p.ProbeStates) > 0 {
		text += ", probes in " + strings.Replace(orList(p.ProbeStates), " or ", " and ", 1) + " only"
	}
	if p.Tick != 0 {
		text += ", timers on a " + p.Tick.String() + " tick"
	}
	if p.UserTimeoutReplacesCount {
		text += ", TCP_USER_TIMEOUT replaces the count"
	}
	if p.HZ != 0 {
		text += fmt.Sprintf(", timers of a HZ=%d kernel", p.HZ)
	}
	return text + ")"
}

// short writes whole hours or seconds without the zero units
// time.Duration.String adds ("2h", not "2h0m0s").
func short(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// TimerSlack describes when the host's timers fire.
func (p Profile) TimerSlack() string {
	if p.Tick != 0 {
		return fmt.Sprintf("every timer fires at the next multiple of %v from the start of the run (1s fires at %v, 1.2s at %v)",
			p.Tick, p.Rounded(time.Second), p.Rounded(1200*time.Millisecond))
	}
	if p.HZ == 0 {
		return "exact: every timer fires at its nanosecond"
	}
	return fmt.Sprintf("Linux timer wheel at HZ=%d: a timeout rounds up to its level's granularity (1s fires at %v, 2s at %v)",
		p.HZ, p.Rounded(time.Second), p.Rounded(2*time.Second))
}

// Rounded returns when a timer armed for d at a jiffy boundary fires on
// the host: at d with exact timers; with HZ, where kasim's Linux timer
// wheel (the kernel's calc_wheel_index rounding) puts it; with Tick, at
// the next tick.
func (p Profile) Rounded(d time.Duration) time.Duration {
	if p.Tick != 0 && d > 0 {
		return time.Duration(timers.NewTickQueue(int64(p.Tick)).Round(int64(d)))
	}
	if p.HZ == 0 || d <= 0 {
		return d
	}
	w := timers.NewLinuxWheel(p.HZ)
	w.Push(1, int64(d))
	when, _ := w.Peek()
	return time.Duration(when)
}

// Describe writes the profile value by value, with where each comes from.
func (p Profile) Describe(w io.Writer) error {
	switch p.Name {
	case "freebsd":
		return p.describeFreeBSD(w)
	case "lwip":
		return p.describeLwIP(w)
	}
	how := "modelled from gVisor's source (pkg/tcpip/transport/tcp), the engine under every kasim host"
	if p.Measured {
		how = "measured against the real kernel in namespaces (kasim conform); net/ipv4/tcp_timer.c"
	}
	rst := "no RST: the endpoint just fails with ETIMEDOUT"
	if p.AbortRST {
		rst = "RST+ACK at SND.NXT, then ETIMEDOUT to the application"
	}
	ut := "drops at whichever comes first, the user timeout or the probe count"
	if p.UserTimeoutReplacesCount {
		ut = "replaces the probe count: drops at the first probe time with nothing received for the user timeout and a probe unanswered"
	}
	_, err := fmt.Fprintf(w, `%s (%s): %s
  defaults          idle %v, interval %v, %d probes (TCP_KEEPIDLE 1-32767 s, TCP_KEEPINTVL 1-32767 s, TCP_KEEPCNT 1-127; else EINVAL)
  probe             zero-length ACK at SND.NXT-1 (= SND.UNA-1: probes go only while nothing is unacknowledged)
  idle counts from  the last segment received (data or pure ACK); sending does not restart it
  gives up          at last received + idle + count x interval: %s%s
  TCP_USER_TIMEOUT  %s%s
  timers            %s%s
`, p.Title, p.Name, how, p.Idle, p.Interval, p.Count, rst, p.set("abort"), ut, p.set("user-timeout"), p.TimerSlack(), p.set("hz"))
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(w, `  before connect    options are accepted (in SYN-SENT too) and keep-alive is armed once the
                    connection is established (kasim's fix: gVisor alone never arms it then)
  option changes    setting any keep-alive option on an established connection restarts the
                    idle time and forgets unanswered probes (gVisor's resetKeepaliveTimer)
`)
	if err == nil && p.Name == "linux" {
		_, err = fmt.Fprint(w, `                    -- where Linux differs: it counts a new TCP_KEEPIDLE from the last segment
                    received, keeps its probe count, and leaves the timer alone for
                    TCP_KEEPINTVL and TCP_KEEPCNT; kasim documents this and does not shape it
  retransmission    gVisor's (RFC 6298 RTO, 200 ms minimum), not the kernel's tcp_retries2
                    schedule: data retransmission timing is not held to Linux's
`)
	}
	after := "an orphan in FIN-WAIT-2 goes on probing until gVisor's FIN-WAIT-2 timeout (60 s)"
	if p.CloseStopsKeepAlive {
		after = "no more probes: an orphan waits out FIN-WAIT-2 as a timewait socket, which has no\n                    keep-alive timer (tcp_rcv_state_process, tcp_time_wait)"
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "  after close()     %s\n", after)
	}
	return err
}
