package profile

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"kasim/sockopt"
	"kasim/stack"
)

// Windows versions turn their registry values into keep-alive behaviour:
// timing, probe count, which socket options exist, what setting keep-alive
// during a connect does, the probe's payload and the errors an application
// sees. Sources: Microsoft's "SO_KEEPALIVE socket option (Ws2def.h)" page
// (the project's seed document), the Windows TCP/IP registry references,
// and captures where Microsoft documents nothing; each value's Source says
// which (kasim profile NAME).

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

// windows is one Windows version's system: its family and build, the
// registry values in force, and any overrides.
type windows struct {
	name, title string
	family      Family
	build       int // the build number the profile stands for
	registry    Registry

	// abortRST says whether an RST goes out when keep-alive gives up.
	// Microsoft documents nothing; kasim's default is an RST, as Linux,
	// FreeBSD and lwIP send one.
	abortRST bool
	// probeBytes is the probe's payload: 1 (one 0x00 octet, as captures of
	// Windows show) or 0 (as RFC 1122 recommends).
	probeBytes int
	// maxSyn and initialRTO are Vista and later's MaxSynRetransmissions
	// and InitialRto (netsh int tcp set global; Set-NetTCPSetting); 2000,
	// XP and 2003 read the registry's TcpMaxConnectRetransmissions and
	// TcpInitialRtt instead.
	maxSyn     int
	initialRTO time.Duration

	overrides map[string]string // field -> the override as given
}

// windowsTable lists the Windows versions, oldest first.
var windowsTable = []entry{
	win("win2000", "Windows 2000", Legacy, 2195, []string{"2000"}),
	win("xp", "Windows XP", Legacy, 2600, []string{"winxp"}),
	win("server2003", "Windows Server 2003", Legacy, 3790, []string{"2003"}),
	win("vista", "Windows Vista", Modern, 6000, []string{"winvista"}),
	win("server2008", "Windows Server 2008", Modern, 6001, []string{"2008"}),
	win("win7", "Windows 7", Modern, 7601, []string{"7"}),
	win("server2008r2", "Windows Server 2008 R2", Modern, 7601, []string{"2008r2"}),
	win("win8", "Windows 8 and 8.1", Modern, 9600, []string{"8", "8.1", "win8.1"}),
	win("server2012", "Windows Server 2012 and 2012 R2", Modern, 9600, []string{"2012", "server2012r2", "2012r2"}),
	win("win10-1607", "Windows 10 up to 1607", Modern, 14393, []string{"10-1607", "win10-1507", "win10-1511"}),
	win("server2016", "Windows Server 2016", Modern, 14393, []string{"2016"}),
	win("win10-1703", "Windows 10 1703", Modern, 15063, []string{"10-1703"}),
	win("win10-1709", "Windows 10 1709 and later", Modern, 16299, []string{"10-1709", "win10", "10"}),
	win("server2019", "Windows Server 2019", Modern, 17763, []string{"2019"}),
	win("server2022", "Windows Server 2022", Modern, 20348, []string{"2022"}),
	win("win11", "Windows 11", Modern, 22000, []string{"11"}),
	win("server2025", "Windows Server 2025", Modern, 26100, []string{"2025"}),
}

// win makes a table row for a Windows version at its defaults.
func win(name, title string, family Family, build int, aliases []string) entry {
	return entry{name: name, aliases: aliases, sys: func() system {
		return windows{name: name, title: title, family: family, build: build,
			registry: DefaultRegistry(), abortRST: true, probeBytes: 1,
			maxSyn: defaultMaxSyn, initialRTO: defaultInitialRTO}
	}}
}

// Vista and later's connect defaults, as Microsoft documents them: 3000 ms
// ("The default value is 3000", Set-NetTCPSetting -InitialRtoMs, Server
// 2012) and 2 ("Max SYN Retransmissions : 2", the netsh output of
// "Performance Tuning Network Adapters", Server 2016 and later). Recent
// Windows 10 and 11 builds have been seen with 1000 ms and 4, which
// Microsoft does not document: --set initial-rto=1s --set
// max-syn-retransmissions=4.
const (
	defaultMaxSyn     = 2
	defaultInitialRTO = 3 * time.Second
)

// The ceiling of the retransmission timeout: 60 s on Vista and later
// ("up to its maximum value of 60sec", IPPROTO_TCP socket options,
// TCP_MAXRT); 240 s on 2000/XP/2003 ("after the retransmission timer hits
// 240 seconds, it uses that value", KB 170359).
const (
	modernMaxRTO = 60 * time.Second
	legacyMaxRTO = 240 * time.Second
)

func (w windows) settings() []string {
	return []string{"abort", "probe-bytes", "max-syn-retransmissions", "initial-rto"}
}

// resolve fills in a Windows profile: Winsock with the version's options,
// the registry's timing and count, and the behaviour below the stack (the
// probe octet, the RST at the abort, that close ends keep-alive, and on
// 2000/XP/2003 the data retransmission limit).
func (w windows) resolve(p *Profile) {
	p.Name, p.Title, p.API = w.name, w.title, Winsock
	p.Idle, p.Interval, p.Count = w.idle(), w.interval(), w.probeCount()
	p.Winsock = sockopt.Features{
		Idle: p.Idle, Interval: p.Interval, ProbeCount: p.Count,
		KeepCnt: w.build >= BuildKeepCnt, KeepIdle: w.build >= BuildKeepIdle,
		RejectDuringConnect: w.family == Modern,
	}
	p.Behaviour = stack.Behaviour{
		ProbePayload: w.probeBytes,
		AbortRST:     w.abortRST,
		// Whether Windows probes a connection after closesocket is not
		// documented; kasim's choice is that keep-alive, a socket option,
		// ends with the socket, as on Linux (docs/profiles.md).
		CloseStopsKeepAlive: true,
		ArmAtEstablishment:  true,
		// TcpMaxDataRetransmissions bounds data retransmission (and on
		// 2000/XP/2003 also counts probes).
		LimitRetransmissions: true,
		MaxRetransmissions:   w.registry.TcpMaxDataRetransmissions,
		MaxRTO:               w.maxRTO(),
		SynRetransmit:        w.synSchedule(),
	}
	p.Cites = w.cites()
}

// synSchedule is the version's connect: its SYN again by count, from an
// initial RTO, doubling up to the ceiling.
func (w windows) synSchedule() stack.SynRetransmit {
	return stack.SynRetransmit{ByCount: true, Retries: w.synRetries(), Initial: w.synInitialRTO(), MaxRTO: w.maxRTO()}
}

// synRetries is how many times a connect's SYN goes again: the registry's
// TcpMaxConnectRetransmissions on 2000/XP/2003, MaxSynRetransmissions on
// Vista and later.
func (w windows) synRetries() int {
	if w.family == Legacy {
		return int(w.registry.TcpMaxConnectRetransmissions)
	}
	return w.maxSyn
}

// synInitialRTO is the delay before a SYN's first retransmission: the
// registry's TcpInitialRtt on 2000/XP/2003, InitialRto on Vista and later.
func (w windows) synInitialRTO() time.Duration {
	if w.family == Legacy {
		return time.Duration(w.registry.TcpInitialRtt) * time.Millisecond
	}
	return w.initialRTO
}

func (w windows) maxRTO() time.Duration {
	if w.family == Legacy {
		return legacyMaxRTO
	}
	return modernMaxRTO
}

func (w windows) note(p Profile) string {
	return fmt.Sprintf("%s: Winsock, keep-alive %v / %v / %d probes of %d byte(s)", w.title, p.Idle, p.Interval, p.Count, w.probeBytes)
}

// idle is the keep-alive idle time a connection gets from SO_KEEPALIVE alone:
// the registry's KeepAliveTime.
func (w windows) idle() time.Duration {
	return time.Duration(w.registry.KeepAliveTime) * time.Millisecond
}

// interval is the time between unanswered probes: KeepAliveInterval.
func (w windows) interval() time.Duration {
	return time.Duration(w.registry.KeepAliveInterval) * time.Millisecond
}

// probeCount is how many unanswered probes abort a connection: 10 on Vista
// and later; on 2000/XP/2003 the larger of TcpMaxDataRetransmissions and
// PPTPTcpMaxDataRetransmissions, capped at 255 (0: no probes at all).
func (w windows) probeCount() int {
	if w.family == Modern {
		return ModernProbeCount
	}
	n := max(w.registry.TcpMaxDataRetransmissions, w.registry.PPTPTcpMaxDataRetransmissions)
	return int(min(n, MaxLegacyProbes))
}

// ErrInProgress is the error of an operation in progress when keep-alive
// gives up; ErrLater that of every later call.
func (w windows) errInProgress() sockopt.WSAError { return sockopt.WSAENETRESET }

// errLater: see errInProgress.
func (w windows) errLater() sockopt.WSAError { return sockopt.WSAECONNRESET }

// set overrides one of the version's behaviours: "abort" (rst or none) or
// "probe-bytes" (0 or 1). Registry values are set with setRegistry.
func (w windows) set(key, value string) (system, error) {
	switch key {
	case "abort":
		switch value {
		case "rst":
			w.abortRST = true
		case "none":
			w.abortRST = false
		default:
			return w, fmt.Errorf("abort=%s: want rst or none", value)
		}
	case "probe-bytes":
		switch value {
		case "0", "1":
			w.probeBytes = int(value[0] - '0')
		default:
			return w, fmt.Errorf("probe-bytes=%s: want 0 or 1", value)
		}
	case "max-syn-retransmissions", "initial-rto":
		if w.family == Legacy {
			return w, fmt.Errorf("%s: %s has no such setting; its registry has TcpMaxConnectRetransmissions and TcpInitialRtt (--registry)", key, w.title)
		}
		var err error
		if w, err = w.setConnect(key, value); err != nil {
			return w, err
		}
	}
	w.overrides = withOverride(w.overrides, key, value)
	return w, nil
}

// setConnect sets Vista and later's MaxSynRetransmissions (0 to 255:
// Microsoft documents no range; kasim takes the registry value's) or
// InitialRto (300 ms to 3 s in steps of 10 ms, Set-NetTCPSetting
// -InitialRtoMs).
func (w windows) setConnect(key, value string) (windows, error) {
	if key == "max-syn-retransmissions" {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > 255 {
			return w, fmt.Errorf("max-syn-retransmissions=%s: want 0 to 255", clip(value))
		}
		w.maxSyn = n
		return w, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 300*time.Millisecond || d > 3*time.Second || d%(10*time.Millisecond) != 0 {
		return w, fmt.Errorf("initial-rto=%s: want 300ms to 3s in steps of 10ms (Set-NetTCPSetting -InitialRtoMs)", clip(value))
	}
	w.initialRTO = d
	return w, nil
}

// setRegistry sets a registry value; see Registry.Set.
func (w windows) setRegistry(name string, value uint64) (system, error) {
	r, err := w.registry.Set(name, value)
	if err != nil {
		return w, err
	}
	w.registry = r
	return w, nil
}

func parseDWORD(name, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%s: want a number (decimal, or 0x hexadecimal)", clip(name), clip(s))
	}
	return v, nil
}

// Field is one line of a profile's description: what, its value, and where
// the value comes from.
type Field struct {
	Name, Value, Source string
}

const seed = `"SO_KEEPALIVE socket option (Ws2def.h)"`

// Fields describes the profile value by value, each with its source.
func (w windows) fields() []Field {
	reg := func(name string) string {
		v, _ := registryValue(name)
		src := "default"
		if w.registry.isSet(name) {
			src = "set"
		}
		return fmt.Sprintf("registry %s = %d %s (%s; valid %d-%d)", name, w.registry.get(name), v.unit, src, v.min, v.max)
	}
	f := []Field{
		{"family", w.family.String(), fmt.Sprintf("%s, build %d", w.title, w.build)},
		{"idle", w.idle().String(), reg("KeepAliveTime")},
		{"interval", w.interval().String(), reg("KeepAliveInterval")},
	}
	if w.family == Modern {
		f = append(f, Field{"probe count", strconv.Itoa(w.probeCount()), "fixed on Vista and later (" + seed + ")"})
	} else {
		f = append(f, Field{"probe count", strconv.Itoa(w.probeCount()),
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
		Field{"TCP_KEEPCNT", yesNo(w.build >= BuildKeepCnt), fmt.Sprintf("from Windows 10 1703 (build %d); older builds answer WSAENOPROTOOPT", BuildKeepCnt)},
		Field{"TCP_KEEPIDLE, TCP_KEEPINTVL", yesNo(w.build >= BuildKeepIdle), fmt.Sprintf("from Windows 10 1709 (build %d), in seconds; older builds answer WSAENOPROTOOPT", BuildKeepIdle)},
		Field{"SIO_KEEPALIVE_VALS", "yes", "WSAIoctl 0x98000004, milliseconds, write-only, from Windows 2000"},
	)
	if w.family == Modern {
		f = append(f, Field{"SO_KEEPALIVE during connect", "WSAEINVAL", "Vista and later accept it only before connect or once connected (" + seed + ")"})
	} else {
		f = append(f, Field{"SO_KEEPALIVE during connect", "accepted", "2000/XP/2003 accept it in the transitional state; it takes effect once connected"})
	}
	payload := Field{"probe payload", "1 byte (0x00) at SND.NXT-1", "observed in captures, not documented by Microsoft (contiki-os/contiki#558, seladb/PcapPlusPlus#1594)"}
	if w.probeBytes == 0 {
		payload.Value = "none (SND.NXT-1, zero length)"
	}
	f = append(f, w.overridden("probe-bytes", payload),
		Field{"error, operation in progress", w.errInProgress().String(), "Windows Sockets error codes: keep-alive failure"},
		Field{"error, later calls", w.errLater().String(), "Windows Sockets error codes"},
		w.retransmission(),
	)
	f = append(f, w.connectFields()...)
	f = append(f,
		Field{"after closesocket", "no probes", "undocumented whether the orphan probes (unknown); kasim's choice: keep-alive is a socket option and ends with the socket, as on Linux. Calls on the old handle fail with WSAENOTSOCK (" + seed + ")"},
	)
	abort := Field{"on the wire at abort", "RST", "undocumented (unknown); kasim's choice, as Linux, FreeBSD and lwIP reset a connection keep-alive gives up"}
	if !w.abortRST {
		abort.Value = "nothing"
	}
	return append(f, w.overridden("abort", abort))
}

// retransmission describes when data retransmission gives a connection up.
func (w windows) retransmission() Field {
	const aborted = "then WSAECONNABORTED, \"possibly due to a data transmission time-out\" (Windows Sockets error codes), not keep-alive's WSAENETRESET, and no RST (undocumented; kasim's choice: gVisor's, the peer being unreachable)"
	reg := fmt.Sprintf("registry TcpMaxDataRetransmissions = %d", w.registry.TcpMaxDataRetransmissions)
	if w.family == Legacy {
		return Field{"data retransmission", fmt.Sprintf("%d retransmissions", w.registry.TcpMaxDataRetransmissions),
			reg + ", which also counts probes on 2000/XP/2003 (TCP/IP registry references); RTO from the round trip, doubling up to 240 s (KB 170359); " + aborted}
	}
	return Field{"data retransmission", fmt.Sprintf("%d retransmissions", w.registry.TcpMaxDataRetransmissions),
		reg + " (KB 170359: honoured through Windows 7 and 2008 R2; undocumented for 8 and later, kasim's choice to keep it); RTO from the round trip, doubling up to 60 s (TCP_MAXRT, IPPROTO_TCP socket options); the minimum RTO is undocumented, kasim's choice gVisor's 200 ms; " + aborted}
}

// connectFields describe a connect's SYN retransmission.
func (w windows) connectFields() []Field {
	retries, first := w.synRetries(), w.synInitialRTO()
	total := w.synSchedule().CountTimeout()
	syn := Field{"connect: SYN retransmissions", strconv.Itoa(retries),
		"MaxSynRetransmissions (netsh int tcp set global; Set-NetTCPSetting, Windows 8.1/2012 R2 and later; \"Max SYN Retransmissions : 2\" in Microsoft's Server 2016+ tuning guide; 2 and not configurable on 7/2008 R2 per KB 2786464); recent Windows 10/11 builds were seen with 4 (not documented by Microsoft)"}
	rto := Field{"connect: initial RTO", first.String(),
		"InitialRto (Set-NetTCPSetting -InitialRtoMs: 300 to 3000 ms, \"The default value is 3000\"); recent Windows 10/11 builds were seen with 1000 ms (not documented by Microsoft)"}
	if w.family == Legacy {
		v, _ := registryValue("TcpMaxConnectRetransmissions")
		syn.Source = fmt.Sprintf("registry TcpMaxConnectRetransmissions (default %d, valid %d-%d; TCP/IP registry references)", v.def, v.min, v.max)
		rto.Source = "registry TcpInitialRtt, per interface in Windows (default 3000 ms, valid 300-65535 ms: KB 170359; the Windows 2000 reference writes the default as 0x3 seconds)"
	}
	return []Field{
		w.overridden("max-syn-retransmissions", syn),
		w.overridden("initial-rto", rto),
		{"connect: fails after", total.String(), "the delay doubles at each retransmission, and after the last TCP waits double the last delay (TcpMaxConnectRetransmissions reference): WSAETIMEDOUT (10060) on the connect, no RST"},
	}
}

func (w windows) overridden(key string, f Field) Field {
	if v, ok := w.overrides[key]; ok {
		f.Source = fmt.Sprintf("overridden (%s=%s); otherwise: %s", key, v, f.Source)
	}
	return f
}

// describe writes the version as a table for people.
func (w windows) describe(p Profile, out io.Writer) error {
	if _, err := fmt.Fprintf(out, "%s (%s)\n", w.title, w.name); err != nil {
		return err
	}
	for _, f := range w.fields() {
		if _, err := fmt.Fprintf(out, "  %-30s %-28s %s\n", f.Name, f.Value, f.Source); err != nil {
			return err
		}
	}
	return nil
}

// checkKeepAlive refuses per-connection settings the version's Winsock
// cannot make: SIO_KEEPALIVE_VALS takes whole milliseconds, and only
// Windows 10 1703 on has TCP_KEEPCNT. Zero means the system's value.
func (w windows) checkKeepAlive(_ Profile, idle, interval time.Duration, count int) error {
	const maxMS = time.Duration(0xFFFFFFFF) * time.Millisecond
	switch {
	case idle < 0 || idle > maxMS || idle%time.Millisecond != 0:
		return fmt.Errorf("idle %v: %s takes whole milliseconds from 1ms to %v (SIO_KEEPALIVE_VALS)", idle, w.title, maxMS)
	case interval < 0 || interval > maxMS || interval%time.Millisecond != 0:
		return fmt.Errorf("interval %v: %s takes whole milliseconds from 1ms to %v (SIO_KEEPALIVE_VALS)", interval, w.title, maxMS)
	case count != 0 && w.build < BuildKeepCnt:
		if w.family == Legacy {
			return fmt.Errorf("count %d: %s has no per-connection probe count (TCP_KEEPCNT came with Windows 10 1703); set the registry instead, e.g. --registry TcpMaxDataRetransmissions=%d", count, w.title, count)
		}
		return fmt.Errorf("count %d: %s sends 10 probes and cannot change that (TCP_KEEPCNT came with Windows 10 1703)", count, w.title)
	case count < 0 || count > MaxLegacyProbes:
		return fmt.Errorf("count %d: want 1 to 255 (TCP_KEEPCNT)", count)
	}
	return nil
}

// Where Microsoft says what Windows does.
const (
	msKeep    = "Microsoft Learn, \"SO_KEEPALIVE socket option\" (learn.microsoft.com/windows/win32/winsock/so-keepalive)"
	msSIO     = "Microsoft Learn, \"SIO_KEEPALIVE_VALS control code\" (learn.microsoft.com/windows/win32/winsock/sio-keepalive-vals)"
	msTCPOpts = "Microsoft Learn, \"IPPROTO_TCP socket options\" (learn.microsoft.com/windows/win32/winsock/ipproto-tcp-socket-options)"
	msErrors  = "Microsoft Learn, \"Windows Sockets Error Codes\" (learn.microsoft.com/windows/win32/winsock/windows-sockets-error-codes-2)"
	msOverlap = "Microsoft Learn, \"WSARecv function\" and \"ConnectEx\" (overlapped I/O)"
)

// Rules of Windows' keep-alive.
var (
	winTimes = Rule{"MS SO_KEEPALIVE: times",
		"Windows: the keep-alive timeout is 2 hours and the interval 1 second unless the registry (KeepAliveTime, KeepAliveInterval, in ms) or the connection's SIO_KEEPALIVE_VALS says otherwise.",
		msKeep}
	winTen = Rule{"MS SO_KEEPALIVE: 10 probes",
		"Windows Vista and later send 10 keep-alive probes and the count cannot be changed (until TCP_KEEPCNT, Windows 10 1703).",
		msKeep}
	winLegacyCount = Rule{"MS SO_KEEPALIVE: registry count",
		"Windows 2000, XP and Server 2003 send 5 probes by default; the count is the larger of the registry values TcpMaxDataRetransmissions and PPTPTcpMaxDataRetransmissions, and 0 sends none.",
		msKeep}
	winProbeOctet = Rule{"Windows probe octet (observed)",
		"Windows keep-alive probes carry one 0x00 octet at SND.NXT-1. Captures show it (contiki-os/contiki#558, seladb/PcapPlusPlus#1594); Microsoft does not document it.",
		"packet captures; kasim's Windows profiles, probe-bytes=1"}
	winAbortRST = Rule{"Windows abort RST (undocumented)",
		"Whether Windows sends a reset when keep-alive gives up is not documented; kasim's Windows profiles send one (abort=rst, as Linux, FreeBSD and lwIP do), and abort=none turns it off.",
		"kasim winprofile; no Microsoft statement"}
	winLegacyRetransmissions = Rule{"MS TcpMaxDataRetransmissions",
		"Windows 2000, XP and Server 2003: TcpMaxDataRetransmissions (default 5) is how many times TCP retransmits an unacknowledged data segment before it gives the connection up; the same value counts keep-alive probes.",
		msKeep + "; Microsoft, TCP/IP registry values for Windows 2000 and Windows Server 2003"}
	winModernRetransmissions = Rule{"MS TcpMaxDataRetransmissions (Vista and later)",
		"Windows Vista and later: the TcpMaxDataRetransmissions registry value (default 5) still controls how many times TCP retransmits data before the connection is abandoned (KB 170359 lists it for Vista, 7, 2008 and 2008 R2; Microsoft Press for Vista and 2008); for Windows 8 and later Microsoft says nothing, and kasim keeps 5. The RTO doubles up to 60 s.",
		"Microsoft KB 170359, How to modify the TCP/IP maximum retransmission time-out; Windows Server 2008 TCP/IP Protocols and Services, ch. 13; IPPROTO_TCP socket options (TCP_MAXRT)"}
	winConnect = Rule{"MS TcpMaxConnectRetransmissions",
		"Windows: a connect's SYN is retransmitted after the initial RTO (3 s), the delay doubling each time, as many times as TcpMaxConnectRetransmissions (2000/XP/2003) or MaxSynRetransmissions (Vista and later) allow (2); after the final attempt TCP waits double the last delay and abandons the request: 21 s, and connect() fails with WSAETIMEDOUT.",
		"Microsoft, TcpMaxConnectRetransmissions (Windows 2000, Server 2003 registry references); Set-NetTCPSetting -InitialRtoMs, -MaxSynRetransmissions; Windows Sockets error codes (10060)"}
)

// WinsockRules are the rules of Windows Sockets calls, which every Windows
// version shares; the timeline cites them by the call and its error.
var WinsockRules = struct {
	Startup, Transitional, OptErrors, SIO, KeepOpts, NetReset, ConnReset, ConnAborted, Overlapped Rule
}{
	Startup: Rule{"MS WSAStartup",
		"A Winsock application calls WSAStartup before any other Winsock function; until then they fail with WSANOTINITIALISED.",
		"Microsoft Learn, \"WSAStartup function\" (learn.microsoft.com/windows/win32/api/winsock/nf-winsock-wsastartup)"},
	Transitional: Rule{"MS SO_KEEPALIVE: well-known state",
		"Windows Vista and later: SO_KEEPALIVE can be set only in a well-known state (before connect or after it completed), not while a connect is in progress: WSAEINVAL. Windows 2000, XP and 2003 accept it then.",
		msKeep},
	OptErrors: Rule{"MS SO_KEEPALIVE: errors",
		"setsockopt and getsockopt return SOCKET_ERROR and WSAGetLastError names the reason: WSANOTINITIALISED without WSAStartup, WSAEFAULT for optlen < sizeof(DWORD), WSAEINVAL for an unknown level, WSAENOPROTOOPT for an option the protocol lacks (a datagram socket), WSAENOTSOCK for a handle that is not a socket.",
		msKeep},
	SIO: Rule{"MS SIO_KEEPALIVE_VALS",
		"WSAIoctl(SIO_KEEPALIVE_VALS) takes struct tcp_keepalive {onoff, keepalivetime, keepaliveinterval}, in milliseconds, for one connection: it switches keep-alive and sets both times at once, and cannot be read back.",
		msSIO},
	KeepOpts: Rule{"MS IPPROTO_TCP options",
		"TCP_KEEPCNT (Windows 10 1703 on) sets the probe count, at most 255; TCP_KEEPIDLE and TCP_KEEPINTVL (Windows 10 1709 on) set the times in seconds. Older builds answer WSAENOPROTOOPT.",
		msTCPOpts},
	NetReset: Rule{"MS WSAENETRESET",
		"WSAENETRESET 10052: the connection has been broken due to keep-alive activity detecting a failure while the operation was in progress.",
		msErrors},
	ConnReset: Rule{"MS WSAECONNRESET",
		"WSAECONNRESET 10054: the connection was reset, by the peer or by keep-alive activity detecting a failure; after the latter, operations in progress fail with WSAENETRESET and subsequent ones with WSAECONNRESET.",
		msErrors},
	ConnAborted: Rule{"MS WSAECONNABORTED",
		"WSAECONNABORTED 10053: an established connection was aborted by the software in the host, possibly due to a data transmission time-out or protocol error. kasim reports it when retransmission, not keep-alive, gives a Windows connection up (keep-alive's is WSAENETRESET).",
		msErrors},
	Overlapped: Rule{"MS overlapped I/O",
		"An overlapped call that cannot finish at once returns SOCKET_ERROR with WSA_IO_PENDING and completes later, through its completion routine, event or port.",
		msOverlap},
}

// cites returns the version's citations: its timing and count, the probe
// octet and the RST (both undocumented), and on 2000/XP/2003 the registry
// value that also bounds retransmission.
func (w windows) cites() Citations {
	c := Citations{
		Probe:          []Rule{winTimes},
		AbortRST:       []Rule{winAbortRST},
		ProbeOctet:     []Rule{winProbeOctet},
		Options:        linuxOpts,
		Connect:        linuxConnect,
		Retransmission: []Rule{winModernRetransmissions},
		SynRetries:     []Rule{winConnect},
	}
	if w.family == Legacy {
		c.Abort = []Rule{winLegacyCount}
		c.Retransmission = []Rule{winLegacyRetransmissions}
		c.abort = always(winLegacyCount)
		return c
	}
	c.Abort = []Rule{winTen}
	c.abort = func(count, _ int, _ time.Duration) []Rule {
		if count != ModernProbeCount {
			return []Rule{WinsockRules.KeepOpts} // TCP_KEEPCNT set another count
		}
		return []Rule{winTen}
	}
	return c
}
