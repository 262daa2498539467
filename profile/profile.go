// Package profile is kasim's one notion of a system's TCP behaviour: a
// name ("linux", "win7", "lwip") resolved once, with its registry values and
// overrides, into a Profile that knows everything the layers above ask of
// it: the socket API the host's applications call (Winsock, or a POSIX
// dialect's option numbers), the behaviour its TCP has where systems differ
// from gVisor (stack.Behaviour), its timers (a HZ wheel, lwIP's tick), its
// keep-alive defaults, and how it describes itself: the rows `kasim
// profile` prints and the rules the timeline cites.
//
// As gVisor picks an endpoint's congestion control once, by name, and then
// only calls it, Lookup is the only place a name is looked at: each system
// is one file of data and small functions (windows.go, linux.go,
// gvisor.go, freebsd.go, lwip.go), and nothing above this package branches
// on which system a host runs.
package profile

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"kasim/internal/echo"
	"kasim/sockopt"
	"kasim/stack"
	"kasim/timers"
)

// API is the socket API a host's applications call.
type API int

const (
	// POSIX is BSD sockets, with a system's option numbers
	// (Profile.Dialect).
	POSIX API = iota
	// Winsock is Windows Sockets, with a version's options
	// (Profile.Winsock).
	Winsock
)

func (a API) String() string {
	if a == Winsock {
		return "Winsock"
	}
	return "POSIX"
}

// Profile is one system's keep-alive behaviour, resolved with its registry
// values and overrides. The zero Profile is not valid: start from Lookup.
type Profile struct {
	Name  string // kasim's name: "linux", "gvisor", "win7", ...
	Title string // "Linux", "Windows 7"

	// API is the socket API the host's applications call. With POSIX,
	// Dialect numbers its options and errors; with Winsock, Winsock says
	// what the version's Winsock offers.
	API     API
	Dialect *sockopt.Dialect
	Winsock sockopt.Features

	// Idle, Interval and Count are the keep-alive settings a connection
	// gets from switching SO_KEEPALIVE on and nothing else (Linux: the
	// sysctls; Windows: the registry, and 10 probes from Vista on).
	Idle     time.Duration
	Interval time.Duration
	Count    int

	// Behaviour is how the host's TCP differs from gVisor's own, below the
	// socket API; stack takes it whole (stack.HostOptions).
	Behaviour stack.Behaviour

	// HZ, if not zero, is the kernel's timer frequency: the host's timers
	// fire when a Linux timer wheel ticking HZ times a second fires them,
	// rounded up to their level's granularity (1 s becomes 1.024 s at 250).
	// Tick, if not zero, fires every timer of the host at the next multiple
	// of it (lwIP's 500 ms tcp_slowtmr). Both zero: exact timers.
	HZ   int
	Tick time.Duration
	// TickStart, with Tick, anchors the ticks to the host's first
	// connection: the first falls TickStart after it (lwIP's tcp_tmr
	// starts with its first active connection and runs tcp_slowtmr on
	// its first call, 250 ms later). Zero: ticks count from the start of
	// the run.
	TickStart time.Duration

	// Measured says the profile has been held against the real stack
	// (kasim conform). FromSource says it is modelled from the system's
	// source code instead (FreeBSD, lwIP). gvisor is neither: it is the
	// engine itself; Windows versions follow Microsoft's documentation.
	Measured   bool
	FromSource bool

	// Cites are the rules the timeline cites for the host's events.
	Cites Citations

	sys system // the system's data and functions, chosen once by Lookup
}

// system is what each system file provides: its settings, and how it
// fills in and describes a Profile.
type system interface {
	// settings lists the keys set takes.
	settings() []string
	// set returns the system with one behaviour overridden.
	set(key, value string) (system, error)
	// setRegistry returns the system with a registry value set; systems
	// without a registry return an error wrapping ErrNoRegistry.
	setRegistry(name string, value uint64) (system, error)
	// resolve fills in p's exported fields.
	resolve(p *Profile)
	// describe writes p value by value, with sources (kasim profile).
	describe(p Profile, w io.Writer) error
	// checkKeepAlive: see Profile.CheckKeepAlive.
	checkKeepAlive(p Profile, idle, interval time.Duration, count int) error
	// note is p in a phrase, for the trace: "Winsock, keep-alive ..." or
	// "POSIX calls with Linux's option numbers, ...".
	note(p Profile) string
}

// entry is one row of the table of profiles: a name, its aliases, and the
// system at its defaults.
type entry struct {
	name    string
	aliases []string
	sys     func() system
}

// table lists every profile, in the order kasim profiles shows them: the
// POSIX stacks, then the Windows versions, oldest first. Each system file
// adds its rows (posixTable, windowsTable).
var table = slices.Concat(posixTable, windowsTable)

// Names returns every profile's name, in table order.
func Names() []string {
	out := make([]string, len(table))
	for i, e := range table {
		out[i] = e.name
	}
	return out
}

// All returns every profile at its defaults, in table order.
func All() []Profile {
	out := make([]Profile, len(table))
	for i, e := range table {
		out[i] = newProfile(e.sys())
	}
	return out
}

// LookupError says which part of a lookup failed: the profile's name, or
// the registry values or settings, every bad one.
type LookupError struct {
	Part string // "profile", "registry" or "set"
	Err  error  // every problem of the part (errors.Join)
}

func (e *LookupError) Error() string { return e.Err.Error() }

func (e *LookupError) Unwrap() error { return e.Err }

// Errors returns the part's problems one by one.
func (e *LookupError) Errors() []error {
	if j, ok := e.Err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{e.Err}
}

// clip cuts a value echoed in a message to a readable length, saying how
// long it was.
func clip(s string) string { return echo.Clip(s, 120, 60) }

// maxValue is longer than any valid setting's or registry value's text.
const maxValue = 64

// partErr returns a part's problems as a *LookupError, or nil if none.
func partErr(part string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return &LookupError{Part: part, Err: errors.Join(errs...)}
}

// ErrNoRegistry is wrapped by a LookupError for a registry value given to a
// profile whose system has no registry (every one but Windows).
var ErrNoRegistry = errors.New("registry values apply to Windows profiles only")

// Lookup returns the profile called name (or one of its aliases, such as
// "7" or "10-1709"), with registry values ("KeepAliveTime=5000", Windows
// only) and settings ("abort=none", as kasim run --set takes them) applied
// in order. It is the only way a name becomes a Profile. A failure is a
// *LookupError.
func Lookup(name string, registry, set []string) (Profile, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	i := slices.IndexFunc(table, func(e entry) bool { return e.name == n || slices.Contains(e.aliases, n) })
	if i < 0 {
		return Profile{}, &LookupError{Part: "profile",
			Err: fmt.Errorf("unknown profile %q (known: %s)", clip(name), strings.Join(Names(), ", "))}
	}
	sys := table[i].sys()
	var errs []error
	for _, a := range registry {
		key, value, ok := strings.Cut(a, "=")
		if !ok || key == "" {
			errs = append(errs, fmt.Errorf("%q: want NAME=VALUE", clip(a)))
			continue
		}
		v, err := parseDWORD(key, value)
		if err == nil {
			var next system
			if next, err = sys.setRegistry(key, v); err == nil {
				sys = next
			}
		}
		if errors.Is(err, ErrNoRegistry) {
			return Profile{}, &LookupError{Part: "registry", Err: err}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := partErr("registry", errs); err != nil {
		return Profile{}, err
	}
	for _, a := range set {
		key, value, ok := strings.Cut(a, "=")
		if !ok || key == "" {
			errs = append(errs, fmt.Errorf("%q: want KEY=VALUE", clip(a)))
			continue
		}
		if !slices.Contains(sys.settings(), key) {
			errs = append(errs, fmt.Errorf("unknown setting %q (want %s)", clip(key), echo.OrList(sys.settings())))
			continue
		}
		if len(value) > maxValue {
			errs = append(errs, fmt.Errorf("%s=%s: too long for any setting", key, clip(value)))
			continue
		}
		next, err := sys.set(key, value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sys = next
	}
	if err := partErr("set", errs); err != nil {
		return Profile{}, err
	}
	return newProfile(sys), nil
}

// MustLookup is Lookup for a name known to be valid, without registry
// values or settings; it panics otherwise. For tests and examples.
func MustLookup(name string) Profile {
	p, err := Lookup(name, nil, nil)
	if err != nil {
		panic(err)
	}
	return p
}

func newProfile(sys system) Profile {
	p := Profile{sys: sys}
	sys.resolve(&p)
	return p
}

// Sysctls are the Linux kernel's TCP settings (net.ipv4.NAME) a scenario
// may give a host (its sysctl: field): the linux profile takes each as the
// setting of the same name, and kasim conform sets it in the kernel's
// namespace for the live run; other systems have no such setting.
func Sysctls() []string { return slices.Clone(linuxSystem.sysctls) }

// TakesSysctl reports whether the profile's system takes the Linux sysctl
// name (one of Sysctls) as a setting.
func (p Profile) TakesSysctl(name string) bool {
	return slices.Contains(Sysctls(), name) && slices.Contains(p.sys.settings(), name)
}

// Options names the socket options the profile's API knows: its
// dialect's, or Winsock's.
func (p Profile) Options() sockopt.OptionNames {
	if p.API == Winsock {
		return sockopt.WinsockOptions
	}
	return p.Dialect
}

// APIName names the profile's API and its numbering, for messages:
// "Winsock (win7)", "POSIX (freebsd: FreeBSD's numbers)".
func (p Profile) APIName() string {
	if p.API == Winsock {
		return "Winsock (" + p.Name + ")"
	}
	return "POSIX (" + p.Name + ": " + p.Dialect.Title + "'s numbers)"
}

// Describe writes the profile value by value, with where each value comes
// from.
func (p Profile) Describe(w io.Writer) error { return p.sys.describe(p, w) }

// Note is the profile in a phrase, for a trace's notes: the API and the
// keep-alive it has ("linux: POSIX calls with Linux's option numbers,
// Linux's keep-alive (defaults 2h / 75s / 9, ...)").
func (p Profile) Note() string { return p.sys.note(p) }

// Row is the profile's line in kasim profiles, beside its name, title and
// keep-alive defaults.
type Row struct {
	Probe         string // the probe's payload: "0 bytes", "1 byte"
	DuringConnect string // SO_KEEPALIVE while a connect is in progress: "accepted" or the error
	KeepCnt       string // whether TCP_KEEPCNT exists: "yes" or "no"
	KeepIdle      string // whether TCP_KEEPIDLE and TCP_KEEPINTVL exist
}

// Row returns the profile's line in kasim profiles.
func (p Profile) Row() Row {
	if p.API != Winsock {
		return Row{Probe: "0 bytes", DuringConnect: "accepted", KeepCnt: "yes", KeepIdle: "yes"}
	}
	yes := map[bool]string{true: "yes", false: "no"}
	r := Row{Probe: fmt.Sprintf("%d byte", p.Behaviour.ProbePayload), DuringConnect: "accepted",
		KeepCnt: yes[p.Winsock.KeepCnt], KeepIdle: yes[p.Winsock.KeepIdle]}
	if p.Winsock.RejectDuringConnect {
		r.DuringConnect = "WSAEINVAL"
	}
	return r
}

// HostOptions returns what a host running the profile is added with: its
// behaviour, and its own timer queue where its timers are not exact (a new
// queue each call).
func (p Profile) HostOptions() stack.HostOptions {
	return stack.HostOptions{Timers: p.timers(), Behaviour: p.Behaviour, TimersStart: p.TickStart}
}

// timers returns the queue the host's stack timers live in: a tick queue
// (lwIP's 500 ms slow timer), a Linux timer wheel at HZ, or nil for the
// network's exact queue. Every gVisor timer of the host then fires late,
// not only keep-alive's.
func (p Profile) timers() timers.Queue {
	switch {
	case p.Tick != 0:
		return timers.NewTickQueue(int64(p.Tick))
	case p.HZ != 0:
		return timers.NewLinuxWheel(p.HZ)
	}
	return nil
}

// TimerSlack describes when the host's timers fire.
func (p Profile) TimerSlack() string {
	if p.Tick != 0 && p.TickStart != 0 {
		return fmt.Sprintf("every timer fires at the next tick; ticks fall every %v from %v after the host's first connect or first SYN received",
			p.Tick, p.TickStart)
	}
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

// Granularity returns how much later than d a timer armed d ahead may
// fire on the host, by the phase of its clock when it was armed: a tick
// with Tick; with HZ, the granularity of the wheel level d lands in plus a
// jiffy; 0 with exact timers. A live stack's timing of such a timeout is
// known only to this much.
func (p Profile) Granularity(d time.Duration) time.Duration {
	switch {
	case p.Tick != 0:
		return p.Tick
	case p.HZ != 0:
		return timers.NewLinuxWheel(p.HZ).Granularity(d) + time.Second/time.Duration(p.HZ)
	}
	return 0
}

// CheckKeepAlive refuses per-connection keep-alive settings the profile's
// socket API cannot make, naming the setting and the call: Winsock's
// SIO_KEEPALIVE_VALS takes whole milliseconds, and TCP_KEEPCNT exists only
// from Windows 10 1703. Zero means the system's value.
func (p Profile) CheckKeepAlive(idle, interval time.Duration, count int) error {
	return p.sys.checkKeepAlive(p, idle, interval, count)
}

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

// withOverride returns a copy of overrides with key set to value.
func withOverride(m map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[key] = value
	return out
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
