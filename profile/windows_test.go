package profile

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"kasim/sockopt"
)

func legacy() []Profile { return filter(func(p Profile) bool { return family(p) == Legacy }) }
func modern() []Profile { return filter(func(p Profile) bool { return family(p) == Modern }) }

// family is a Windows profile's family; -1 for any other system.
func family(p Profile) Family {
	if w, ok := p.sys.(windows); ok {
		return w.family
	}
	return -1
}

// lookup is Lookup that fails the test on an error.
func lookup(t *testing.T, name string, registry, set []string) Profile {
	t.Helper()
	p, err := Lookup(name, registry, set)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func filter(keep func(Profile) bool) (out []Profile) {
	for _, p := range All() {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// Each test below is named after a statement of the seed document (or of
// the registry references it points to) and checks it on every profile it
// applies to.

func TestSeed_DefaultTimeoutTwoHoursIntervalOneSecond(t *testing.T) {
	for _, p := range filter(func(p Profile) bool { return p.API == Winsock }) {
		if p.Idle != 2*time.Hour || p.Interval != time.Second || p.Winsock.Idle != p.Idle || p.Winsock.Interval != p.Interval {
			t.Errorf("%s: idle %v, interval %v (Winsock %+v); want 2h, 1s", p.Name, p.Idle, p.Interval, p.Winsock)
		}
	}
}

func TestSeed_VistaAndLaterSendTenProbesNotConfigurable(t *testing.T) {
	for _, p := range modern() {
		for _, reg := range [][2]uint64{{5, 5}, {0, 0}, {300, 0}, {3, 7}} {
			q := lookup(t, p.Name, []string{"TcpMaxDataRetransmissions=" + itoa(reg[0]), "PPTPTcpMaxDataRetransmissions=" + itoa(reg[1])}, nil)
			if q.Count != 10 || q.Winsock.ProbeCount != 10 {
				t.Errorf("%s with registry %v: %d probes, want 10", p.Name, reg, q.Count)
			}
		}
	}
}

func TestSeed_LegacyCountIsLargerOfTheTwoRegistryValues(t *testing.T) {
	for _, p := range legacy() {
		for _, tc := range []struct {
			tcp, pptp uint64
			want      int
		}{
			{5, 5, 5}, // defaults: "2000 / XP / Server 2003: default 5 probes"
			{3, 7, 7},
			{7, 3, 7},
			{0, 0, 0},     // "0 means no probes are sent"
			{300, 0, 255}, // "above 255 is clamped to 255"
			{0xFFFFFFFF, 255, 255},
		} {
			q := lookup(t, p.Name, []string{"TcpMaxDataRetransmissions=" + itoa(tc.tcp), "PPTPTcpMaxDataRetransmissions=" + itoa(tc.pptp)}, nil)
			if got := q.Count; got != tc.want {
				t.Errorf("%s (%d, %d): %d probes, want %d", p.Name, tc.tcp, tc.pptp, got, tc.want)
			}
		}
	}
}

func TestSeed_RegistryTimesInMillisecondsValidOneToMaxDWORD(t *testing.T) {
	for _, name := range []string{"KeepAliveTime", "KeepAliveInterval"} {
		for _, bad := range []uint64{0, 1 << 32} {
			_, err := Lookup("win7", []string{name + "=" + itoa(bad)}, nil)
			if err == nil || !strings.Contains(err.Error(), "valid 1 to 4294967295") || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%d: %v, want an error naming the value and its range", name, bad, err)
			}
		}
	}
	q := lookup(t, "win7", []string{"KeepAliveTime=30000", "KeepAliveInterval=0x1F4"}, nil)
	if q.Idle != 30*time.Second || q.Interval != 500*time.Millisecond {
		t.Errorf("idle %v, interval %v; want 30s, 500ms", q.Idle, q.Interval)
	}
	if _, err := Lookup("win7", []string{"KeepAliveTime=0xFFFFFFFF"}, nil); err != nil {
		t.Errorf("the largest DWORD rejected: %v", err)
	}
}

func TestSeed_PPTPRetransmissionsRangeIsOneByte(t *testing.T) {
	if _, err := Lookup("xp", []string{"PPTPTcpMaxDataRetransmissions=256"}, nil); err == nil || !strings.Contains(err.Error(), "valid 0 to 255") {
		t.Errorf("PPTPTcpMaxDataRetransmissions=256: %v, want a range error", err)
	}
}

func TestSeed_TCPKEEPCNTFrom1703_TCPKEEPIDLEFrom1709(t *testing.T) {
	for _, tc := range []struct {
		name          string
		keepCnt, idle bool
	}{
		{"xp", false, false}, {"vista", false, false}, {"win7", false, false}, {"win10-1607", false, false},
		{"server2016", false, false}, {"win10-1703", true, false}, {"win10-1709", true, true},
		{"server2019", true, true}, {"win11", true, true}, {"server2025", true, true},
	} {
		p := lookup(t, tc.name, nil, nil)
		if p.Winsock.KeepCnt != tc.keepCnt || p.Winsock.KeepIdle != tc.idle {
			t.Errorf("%s: TCP_KEEPCNT %v, TCP_KEEPIDLE %v; want %v, %v", tc.name, p.Winsock.KeepCnt, p.Winsock.KeepIdle, tc.keepCnt, tc.idle)
		}
	}
}

func TestSeed_VistaAndLaterRejectSOKEEPALIVEDuringConnect(t *testing.T) {
	for _, p := range modern() {
		if !p.Winsock.RejectDuringConnect {
			t.Errorf("%s accepts SO_KEEPALIVE during connect", p.Name)
		}
	}
	for _, p := range legacy() {
		if p.Winsock.RejectDuringConnect {
			t.Errorf("%s rejects SO_KEEPALIVE during connect", p.Name)
		}
	}
}

func TestSeed_KeepAliveFailureErrors(t *testing.T) {
	for _, p := range append(legacy(), modern()...) {
		w := p.sys.(windows)
		if w.errInProgress() != (sockopt.WSAError{Name: "WSAENETRESET", Code: 10052}) || w.errLater() != (sockopt.WSAError{Name: "WSAECONNRESET", Code: 10054}) {
			t.Errorf("%s: %v then %v", p.Name, w.errInProgress(), w.errLater())
		}
	}
}

func TestLookup(t *testing.T) {
	for alias, want := range map[string]string{"7": "win7", "XP": "xp", "10-1709": "win10-1709", "win8.1": "win8", " vista ": "vista", "2012r2": "server2012"} {
		p, err := Lookup(alias, nil, nil)
		if err != nil || p.Name != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", alias, p.Name, err, want)
		}
	}
	_, err := Lookup("windows95", nil, nil)
	var le *LookupError
	if !errors.As(err, &le) || le.Part != "profile" || !strings.Contains(err.Error(), "linux, gvisor, freebsd, lwip, win2000, xp, ") {
		t.Errorf("Lookup(windows95) = %v, want an error listing every profile", err)
	}
	seen := map[string]bool{}
	for _, p := range All() {
		if seen[p.Name] {
			t.Errorf("profile %s listed twice", p.Name)
		}
		seen[p.Name] = true
	}
}

func TestApplyAndOverrides(t *testing.T) {
	for _, bad := range []struct{ registry, set []string }{
		{registry: []string{"KeepAliveTime"}}, {registry: []string{"=5"}}, {registry: []string{"KeepAliveTime=abc"}},
		{registry: []string{"KeepAliveTime=-1"}}, {registry: []string{"abort=none"}}, {registry: []string{"Colour=1"}},
		{set: []string{"abort=maybe"}}, {set: []string{"probe-bytes=2"}}, {set: []string{"Colour=blue"}},
		{set: []string{"KeepAliveTime=5"}},
	} {
		if _, err := Lookup("xp", bad.registry, bad.set); err == nil {
			t.Errorf("Lookup(xp, %q, %q) accepted", bad.registry, bad.set)
		}
	}
	// A registry name is only a registry value: the message lists those.
	if _, err := Lookup("xp", []string{"Bogus=1"}, nil); err == nil || !strings.Contains(err.Error(), `unknown registry value "Bogus" (known: KeepAliveTime`) {
		t.Errorf("registry Bogus=1: %v", err)
	}
	q := lookup(t, "xp", []string{"tcpmaxdataretransmissions=3"}, []string{"abort=none", "probe-bytes=0"})
	if q.Behaviour.AbortRST || q.Behaviour.ProbePayload != 0 || q.Count != 5 {
		t.Errorf("after overrides: RST %v, payload %d, count %d", q.Behaviour.AbortRST, q.Behaviour.ProbePayload, q.Count)
	}
	if !q.Behaviour.LimitRetransmissions || q.Behaviour.MaxRetransmissions != 3 {
		t.Errorf("xp bounds data retransmission by TcpMaxDataRetransmissions: %+v", q.Behaviour)
	}
	if _, err := Lookup("linux", []string{"KeepAliveTime=5"}, nil); !errors.Is(err, ErrNoRegistry) {
		t.Errorf("registry on linux: %v, want ErrNoRegistry", err)
	}
}

func TestDescribeNamesEverySource(t *testing.T) {
	p := lookup(t, "xp", []string{"TcpMaxDataRetransmissions=3", "PPTPTcpMaxDataRetransmissions=7"}, []string{"abort=none"})
	var b bytes.Buffer
	if err := p.Describe(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Windows XP (xp)",
		"registry KeepAliveTime = 7200000 ms (default; valid 1-4294967295)",
		"probe count                    7",
		"registry TcpMaxDataRetransmissions = 3 retransmissions (set",
		"SO_KEEPALIVE during connect    accepted",
		"overridden (abort=none)",
		"WSAENETRESET (10052)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("description lacks %q:\n%s", want, out)
		}
	}
	for _, f := range p.sys.(windows).fields() {
		if f.Source == "" {
			t.Errorf("field %q has no source", f.Name)
		}
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// TestConnectAndRetransmissionAreMicrosofts: a connect retransmits its SYN
// as many times as TcpMaxConnectRetransmissions (2000/XP/2003) or
// MaxSynRetransmissions (Vista and later) allow, from TcpInitialRtt or
// InitialRto (3 s), doubling; data as many times as
// TcpMaxDataRetransmissions (KB 170359), the RTO up to 240 s or 60 s. Each
// family takes only its own knobs, within Microsoft's ranges, and every
// number in the description carries its source or says kasim chose it.
func TestConnectAndRetransmissionAreMicrosofts(t *testing.T) {
	for _, p := range All() {
		w, ok := p.sys.(windows)
		if !ok {
			continue
		}
		s := p.Behaviour.SynRetransmit
		if !s.ByCount || s.Retries != 2 || s.Initial != 3*time.Second || !p.Behaviour.LimitRetransmissions || p.Behaviour.MaxRetransmissions != 5 {
			t.Errorf("%s: SYN %+v, data limit %v %d; want 2 SYN retransmissions from 3 s and 5 for data", p.Name, s, p.Behaviour.LimitRetransmissions, p.Behaviour.MaxRetransmissions)
		}
		if want := map[Family]time.Duration{Legacy: 240 * time.Second, Modern: 60 * time.Second}[w.family]; p.Behaviour.MaxRTO != want || s.MaxRTO != want {
			t.Errorf("%s: RTO ceiling %v (SYN %v), want %v", p.Name, p.Behaviour.MaxRTO, s.MaxRTO, want)
		}
	}
	xp := lookup(t, "xp", []string{"TcpMaxConnectRetransmissions=4", "TcpInitialRtt=500"}, nil)
	if s := xp.Behaviour.SynRetransmit; s.Retries != 4 || s.Initial != 500*time.Millisecond {
		t.Errorf("xp with its registry: %+v", s)
	}
	w11 := lookup(t, "win11", nil, []string{"initial-rto=1s", "max-syn-retransmissions=4"})
	if s := w11.Behaviour.SynRetransmit; s.Retries != 4 || s.Initial != time.Second {
		t.Errorf("win11 set: %+v", s)
	}
	for _, bad := range []struct {
		name          string
		registry, set []string
		want          string
	}{
		{"xp", nil, []string{"initial-rto=1s"}, "its registry has TcpMaxConnectRetransmissions and TcpInitialRtt"},
		{"win7", nil, []string{"initial-rto=250ms"}, "want 300ms to 3s in steps of 10ms"},
		{"win7", nil, []string{"initial-rto=1005ms"}, "want 300ms to 3s in steps of 10ms"},
		{"win7", nil, []string{"max-syn-retransmissions=256"}, "want 0 to 255"},
		{"xp", []string{"TcpInitialRtt=299"}, nil, "TcpInitialRtt=299: out of range, valid 300 to 65535 (ms)"},
		{"xp", []string{"TcpMaxConnectRetransmissions=256"}, nil, "valid 0 to 255"},
	} {
		if _, err := Lookup(bad.name, bad.registry, bad.set); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Lookup(%s, %q, %q) = %v, want %q", bad.name, bad.registry, bad.set, err, bad.want)
		}
	}
	var b bytes.Buffer
	if err := lookup(t, "win7", nil, nil).Describe(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connect: SYN retransmissions   2", "connect: initial RTO           3s", "connect: fails after           21s",
		"KB 170359", "kasim's choice", "\"The default value is 3000\""} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("win7's description lacks %q:\n%s", want, b.String())
		}
	}
}
