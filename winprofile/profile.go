// Package winprofile turns a Windows version and its registry values into
// the keep-alive behaviour that version has: timing, probe count, which
// socket options exist, what setting keep-alive during a connect does, the
// probe's payload and the errors an application sees.
//
// Sources: Microsoft's "SO_KEEPALIVE socket option (Ws2def.h)" page (the
// project's seed document), the Windows TCP/IP registry references, and
// captures where Microsoft documents nothing; see ../shared/spec/keepalive.md
// and the Sources field of each value.
package winprofile

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Family groups Windows versions that share keep-alive rules.
type Family int

const (
	// Legacy is Windows 2000, XP and Server 2003: the probe count comes from
	// the registry, and SO_KEEPALIVE may be set while a connect is in
	// progress.
	Legacy Family = iota
	// Modern is Vista and later: 10 probes, and SO_KEEPALIVE fails with
	// WSAEINVAL while a connect is in progress.
	Modern
)

func (f Family) String() string {
	if f == Legacy {
		return "legacy (2000, XP, Server 2003)"
	}
	return "modern (Vista and later)"
}

// Builds that added keep-alive socket options.
const (
	BuildKeepCnt  = 15063 // Windows 10 1703: TCP_KEEPCNT
	BuildKeepIdle = 16299 // Windows 10 1709: TCP_KEEPIDLE, TCP_KEEPINTVL
)

// ModernProbeCount is the fixed number of probes on Vista and later.
const ModernProbeCount = 10

// MaxLegacyProbes is where Windows 2000/XP/2003 cap the registry's count.
const MaxLegacyProbes = 255

// Winsock errors an application sees when keep-alive gives up.
type WSAError struct {
	Name string
	Code int
}

func (e WSAError) String() string { return fmt.Sprintf("%s (%d)", e.Name, e.Code) }

// The Winsock errors of a keep-alive abort (Windows Sockets error codes).
var (
	WSAENETRESET  = WSAError{"WSAENETRESET", 10052}
	WSAECONNRESET = WSAError{"WSAECONNRESET", 10054}
)

// Profile is one Windows version's keep-alive behaviour, with the registry
// values in force and any overrides. The zero Profile is not valid: start
// from Lookup or All.
type Profile struct {
	Name   string // kasim's name: "xp", "win7", "win10-1709", ...
	Title  string // "Windows XP"
	Family Family
	Build  int // the build number the profile stands for

	Registry Registry

	// AbortRST says whether an RST goes out when keep-alive gives up.
	// Microsoft documents nothing; kasim's default is an RST, as Windows
	// resets connections it abandons after retransmission timeouts.
	AbortRST bool
	// ProbeBytes is the probe's payload: 1 (one 0x00 octet, as captures of
	// Windows show) or 0 (as RFC 1122 recommends).
	ProbeBytes int

	overrides map[string]string // field -> the override as given
}

// entry is a row of the profile table.
type entry struct {
	name, title string
	family      Family
	build       int
	aliases     []string
}

var table = []entry{
	{"win2000", "Windows 2000", Legacy, 2195, []string{"2000"}},
	{"xp", "Windows XP", Legacy, 2600, []string{"winxp"}},
	{"server2003", "Windows Server 2003", Legacy, 3790, []string{"2003"}},
	{"vista", "Windows Vista", Modern, 6000, []string{"winvista"}},
	{"server2008", "Windows Server 2008", Modern, 6001, []string{"2008"}},
	{"win7", "Windows 7", Modern, 7601, []string{"7"}},
	{"server2008r2", "Windows Server 2008 R2", Modern, 7601, []string{"2008r2"}},
	{"win8", "Windows 8 and 8.1", Modern, 9600, []string{"8", "8.1", "win8.1"}},
	{"server2012", "Windows Server 2012 and 2012 R2", Modern, 9600, []string{"2012", "server2012r2", "2012r2"}},
	{"win10-1607", "Windows 10 up to 1607", Modern, 14393, []string{"10-1607", "win10-1507", "win10-1511"}},
	{"server2016", "Windows Server 2016", Modern, 14393, []string{"2016"}},
	{"win10-1703", "Windows 10 1703", Modern, 15063, []string{"10-1703"}},
	{"win10-1709", "Windows 10 1709 and later", Modern, 16299, []string{"10-1709", "win10", "10"}},
	{"server2019", "Windows Server 2019", Modern, 17763, []string{"2019"}},
	{"server2022", "Windows Server 2022", Modern, 20348, []string{"2022"}},
	{"win11", "Windows 11", Modern, 22000, []string{"11"}},
	{"server2025", "Windows Server 2025", Modern, 26100, []string{"2025"}},
}

func (e entry) profile() Profile {
	return Profile{Name: e.name, Title: e.title, Family: e.family, Build: e.build,
		Registry: DefaultRegistry(), AbortRST: true, ProbeBytes: 1}
}

// All returns every Windows profile at its defaults, oldest first.
func All() []Profile {
	out := make([]Profile, len(table))
	for i, e := range table {
		out[i] = e.profile()
	}
	return out
}

// Names returns the profile names, oldest first.
func Names() []string {
	out := make([]string, len(table))
	for i, e := range table {
		out[i] = e.name
	}
	return out
}

// Lookup returns the profile called name (or one of its aliases, such as
// "7" or "10-1709"), at its defaults.
func Lookup(name string) (Profile, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, e := range table {
		if e.name == n || slices.Contains(e.aliases, n) {
			return e.profile(), nil
		}
	}
	return Profile{}, fmt.Errorf("unknown Windows profile %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Idle is the keep-alive idle time a connection gets from SO_KEEPALIVE alone:
// the registry's KeepAliveTime.
func (p Profile) Idle() time.Duration {
	return time.Duration(p.Registry.KeepAliveTime) * time.Millisecond
}

// Interval is the time between unanswered probes: KeepAliveInterval.
func (p Profile) Interval() time.Duration {
	return time.Duration(p.Registry.KeepAliveInterval) * time.Millisecond
}

// ProbeCount is how many unanswered probes abort a connection: 10 on Vista
// and later; on 2000/XP/2003 the larger of TcpMaxDataRetransmissions and
// PPTPTcpMaxDataRetransmissions, capped at 255 (0: no probes at all).
func (p Profile) ProbeCount() int {
	if p.Family == Modern {
		return ModernProbeCount
	}
	n := max(p.Registry.TcpMaxDataRetransmissions, p.Registry.PPTPTcpMaxDataRetransmissions)
	return int(min(n, MaxLegacyProbes))
}

// HasKeepCnt reports whether TCP_KEEPCNT exists (Windows 10 1703 on).
func (p Profile) HasKeepCnt() bool { return p.Build >= BuildKeepCnt }

// HasKeepIdle reports whether TCP_KEEPIDLE and TCP_KEEPINTVL exist
// (Windows 10 1709 on).
func (p Profile) HasKeepIdle() bool { return p.Build >= BuildKeepIdle }

// RejectsSetDuringConnect reports whether SO_KEEPALIVE fails with WSAEINVAL
// while a connect is in progress (Vista and later).
func (p Profile) RejectsSetDuringConnect() bool { return p.Family == Modern }

// ErrInProgress is the error of an operation in progress when keep-alive
// gives up; ErrLater that of every later call.
func (p Profile) ErrInProgress() WSAError { return WSAENETRESET }

// ErrLater: see ErrInProgress.
func (p Profile) ErrLater() WSAError { return WSAECONNRESET }

// Set overrides one of the profile's behaviours: "abort" (rst or none) or
// "probe-bytes" (0 or 1). Registry values are set with SetRegistry.
func (p Profile) Set(key, value string) (Profile, error) {
	switch key {
	case "abort":
		switch value {
		case "rst":
			p.AbortRST = true
		case "none":
			p.AbortRST = false
		default:
			return p, fmt.Errorf("abort=%s: want rst or none", value)
		}
	case "probe-bytes":
		switch value {
		case "0", "1":
			p.ProbeBytes = int(value[0] - '0')
		default:
			return p, fmt.Errorf("probe-bytes=%s: want 0 or 1", value)
		}
	default:
		return p, fmt.Errorf("unknown setting %q (want abort or probe-bytes)", key)
	}
	p.overrides = cloneSet(p.overrides, key, value)
	return p, nil
}

// SetRegistry sets a registry value; see Registry.Set.
func (p Profile) SetRegistry(name string, value uint64) (Profile, error) {
	r, err := p.Registry.Set(name, value)
	if err != nil {
		return p, err
	}
	p.Registry = r
	return p, nil
}

// Apply applies "NAME=VALUE" assignments: registry values by their names,
// settings by theirs ("abort=none").
func (p Profile) Apply(assignments ...string) (Profile, error) {
	for _, a := range assignments {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return p, fmt.Errorf("%q: want NAME=VALUE", a)
		}
		var err error
		if _, isReg := registryValue(name); isReg {
			var v uint64
			v, err = parseDWORD(name, value)
			if err == nil {
				p, err = p.SetRegistry(name, v)
			}
		} else {
			p, err = p.Set(name, value)
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

func parseDWORD(name, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%s: want a number (decimal, or 0x hexadecimal)", name, s)
	}
	return v, nil
}

func cloneSet(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// Field is one line of a profile's description: what, its value, and where
// the value comes from.
type Field struct {
	Name, Value, Source string
}

const seed = `"SO_KEEPALIVE socket option (Ws2def.h)"`

// Fields describes the profile value by value, each with its source.
func (p Profile) Fields() []Field {
	reg := func(name string) string {
		v, _ := registryValue(name)
		src := "default"
		if p.Registry.isSet(name) {
			src = "set"
		}
		return fmt.Sprintf("registry %s = %d %s (%s; valid %d-%d)", name, p.Registry.get(name), v.unit, src, v.min, v.max)
	}
	f := []Field{
		{"family", p.Family.String(), fmt.Sprintf("%s, build %d", p.Title, p.Build)},
		{"idle", p.Idle().String(), reg("KeepAliveTime")},
		{"interval", p.Interval().String(), reg("KeepAliveInterval")},
	}
	if p.Family == Modern {
		f = append(f, Field{"probe count", strconv.Itoa(p.ProbeCount()), "fixed on Vista and later (" + seed + ")"})
	} else {
		f = append(f, Field{"probe count", strconv.Itoa(p.ProbeCount()),
			fmt.Sprintf("the larger of %s and %s; 0 sends no probes, above 255 counts as 255 (%s)",
				reg("TcpMaxDataRetransmissions"), reg("PPTPTcpMaxDataRetransmissions"), seed)})
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	f = append(f,
		Field{"TCP_KEEPCNT", yesNo(p.HasKeepCnt()), fmt.Sprintf("from Windows 10 1703 (build %d); older builds answer WSAENOPROTOOPT", BuildKeepCnt)},
		Field{"TCP_KEEPIDLE, TCP_KEEPINTVL", yesNo(p.HasKeepIdle()), fmt.Sprintf("from Windows 10 1709 (build %d), in seconds; older builds answer WSAENOPROTOOPT", BuildKeepIdle)},
		Field{"SIO_KEEPALIVE_VALS", "yes", "WSAIoctl 0x98000004, milliseconds, write-only, from Windows 2000"},
	)
	if p.RejectsSetDuringConnect() {
		f = append(f, Field{"SO_KEEPALIVE during connect", "WSAEINVAL", "Vista and later accept it only before connect or once connected (" + seed + ")"})
	} else {
		f = append(f, Field{"SO_KEEPALIVE during connect", "accepted", "2000/XP/2003 accept it in the transitional state; it takes effect once connected"})
	}
	payload := Field{"probe payload", "1 byte (0x00) at SND.NXT-1", "observed in captures, not documented by Microsoft (contiki-os/contiki#558, seladb/PcapPlusPlus#1594)"}
	if p.ProbeBytes == 0 {
		payload.Value = "none (SND.NXT-1, zero length)"
	}
	f = append(f, p.overridden("probe-bytes", payload),
		Field{"error, operation in progress", p.ErrInProgress().String(), "Windows Sockets error codes: keep-alive failure"},
		Field{"error, later calls", p.ErrLater().String(), "Windows Sockets error codes"},
		p.retransmission(),
		Field{"after closesocket", "no probes", "undocumented whether the orphan probes (unknown); kasim's choice: keep-alive is a socket option and ends with the socket, as on Linux. Calls on the old handle fail with WSAENOTSOCK (" + seed + ")"},
	)
	abort := Field{"on the wire at abort", "RST", "undocumented (unknown); kasim's choice, as Windows resets connections it abandons after retransmission timeouts"}
	if !p.AbortRST {
		abort.Value = "nothing"
	}
	return append(f, p.overridden("abort", abort))
}

// retransmission describes when data retransmission gives a connection up.
func (p Profile) retransmission() Field {
	const aborted = "then WSAECONNABORTED, \"possibly due to a data transmission time-out\" (Windows Sockets error codes), not keep-alive's WSAENETRESET"
	if p.Family == Legacy {
		return Field{"data retransmission", fmt.Sprintf("%d retransmissions", p.Registry.TcpMaxDataRetransmissions),
			"registry TcpMaxDataRetransmissions, which also counts probes on 2000/XP/2003; " + aborted}
	}
	return Field{"data retransmission", "15 retransmissions (gVisor's)",
		"Vista and later's own limit is not modelled: gVisor's RFC 6298 RTO and tcp_retries2-like 15; " + aborted}
}

func (p Profile) overridden(key string, f Field) Field {
	if v, ok := p.overrides[key]; ok {
		f.Source = fmt.Sprintf("overridden (%s=%s); otherwise: %s", key, v, f.Source)
	}
	return f
}

// Describe writes the profile as a table for people.
func (p Profile) Describe(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "%s (%s)\n", p.Title, p.Name); err != nil {
		return err
	}
	for _, f := range p.Fields() {
		if _, err := fmt.Fprintf(w, "  %-30s %-28s %s\n", f.Name, f.Value, f.Source); err != nil {
			return err
		}
	}
	return nil
}
