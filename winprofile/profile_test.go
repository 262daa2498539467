package winprofile

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

func legacy() []Profile { return filter(func(p Profile) bool { return p.Family == Legacy }) }
func modern() []Profile { return filter(func(p Profile) bool { return p.Family == Modern }) }

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
	for _, p := range All() {
		if p.Idle() != 2*time.Hour || p.Interval() != time.Second {
			t.Errorf("%s: idle %v, interval %v; want 2h, 1s", p.Name, p.Idle(), p.Interval())
		}
	}
}

func TestSeed_VistaAndLaterSendTenProbesNotConfigurable(t *testing.T) {
	for _, p := range modern() {
		for _, reg := range [][2]uint64{{5, 5}, {0, 0}, {300, 0}, {3, 7}} {
			q, err := p.Apply("TcpMaxDataRetransmissions="+itoa(reg[0]), "PPTPTcpMaxDataRetransmissions="+itoa(reg[1]))
			if err != nil {
				t.Fatal(err)
			}
			if q.ProbeCount() != 10 {
				t.Errorf("%s with registry %v: %d probes, want 10", p.Name, reg, q.ProbeCount())
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
			q, err := p.Apply("TcpMaxDataRetransmissions="+itoa(tc.tcp), "PPTPTcpMaxDataRetransmissions="+itoa(tc.pptp))
			if err != nil {
				t.Fatal(err)
			}
			if got := q.ProbeCount(); got != tc.want {
				t.Errorf("%s (%d, %d): %d probes, want %d", p.Name, tc.tcp, tc.pptp, got, tc.want)
			}
		}
	}
}

func TestSeed_RegistryTimesInMillisecondsValidOneToMaxDWORD(t *testing.T) {
	p, _ := Lookup("win7")
	for _, name := range []string{"KeepAliveTime", "KeepAliveInterval"} {
		for _, bad := range []uint64{0, 1 << 32} {
			_, err := p.SetRegistry(name, bad)
			if err == nil || !strings.Contains(err.Error(), "valid 1 to 4294967295") || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%d: %v, want an error naming the value and its range", name, bad, err)
			}
		}
	}
	q, err := p.Apply("KeepAliveTime=30000", "KeepAliveInterval=0x1F4")
	if err != nil {
		t.Fatal(err)
	}
	if q.Idle() != 30*time.Second || q.Interval() != 500*time.Millisecond {
		t.Errorf("idle %v, interval %v; want 30s, 500ms", q.Idle(), q.Interval())
	}
	if _, err := p.SetRegistry("KeepAliveTime", 0xFFFFFFFF); err != nil {
		t.Errorf("the largest DWORD rejected: %v", err)
	}
}

func TestSeed_PPTPRetransmissionsRangeIsOneByte(t *testing.T) {
	p, _ := Lookup("xp")
	if _, err := p.SetRegistry("PPTPTcpMaxDataRetransmissions", 256); err == nil || !strings.Contains(err.Error(), "valid 0 to 255") {
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
		p, err := Lookup(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasKeepCnt() != tc.keepCnt || p.HasKeepIdle() != tc.idle {
			t.Errorf("%s: TCP_KEEPCNT %v, TCP_KEEPIDLE %v; want %v, %v", tc.name, p.HasKeepCnt(), p.HasKeepIdle(), tc.keepCnt, tc.idle)
		}
	}
}

func TestSeed_VistaAndLaterRejectSOKEEPALIVEDuringConnect(t *testing.T) {
	for _, p := range modern() {
		if !p.RejectsSetDuringConnect() {
			t.Errorf("%s accepts SO_KEEPALIVE during connect", p.Name)
		}
	}
	for _, p := range legacy() {
		if p.RejectsSetDuringConnect() {
			t.Errorf("%s rejects SO_KEEPALIVE during connect", p.Name)
		}
	}
}

func TestSeed_KeepAliveFailureErrors(t *testing.T) {
	for _, p := range All() {
		if p.ErrInProgress() != (WSAError{"WSAENETRESET", 10052}) || p.ErrLater() != (WSAError{"WSAECONNRESET", 10054}) {
			t.Errorf("%s: %v then %v", p.Name, p.ErrInProgress(), p.ErrLater())
		}
	}
}

func TestLookup(t *testing.T) {
	for alias, want := range map[string]string{"7": "win7", "XP": "xp", "10-1709": "win10-1709", "win8.1": "win8", " vista ": "vista", "2012r2": "server2012"} {
		p, err := Lookup(alias)
		if err != nil || p.Name != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", alias, p.Name, err, want)
		}
	}
	_, err := Lookup("windows95")
	if err == nil || !strings.Contains(err.Error(), "xp, ") {
		t.Errorf("Lookup(windows95) = %v, want an error listing the profiles", err)
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
	p, _ := Lookup("xp")
	for _, bad := range []string{"KeepAliveTime", "=5", "KeepAliveTime=abc", "KeepAliveTime=-1", "abort=maybe", "probe-bytes=2", "Colour=blue"} {
		if _, err := p.Apply(bad); err == nil {
			t.Errorf("Apply(%q) accepted", bad)
		}
	}
	q, err := p.Apply("abort=none", "probe-bytes=0", "tcpmaxdataretransmissions=3")
	if err != nil {
		t.Fatal(err)
	}
	if q.AbortRST || q.ProbeBytes != 0 || q.ProbeCount() != 5 {
		t.Errorf("after overrides: RST %v, payload %d, count %d", q.AbortRST, q.ProbeBytes, q.ProbeCount())
	}
	if !p.AbortRST || p.ProbeBytes != 1 {
		t.Error("Apply changed the profile it was called on")
	}
}

func TestDescribeNamesEverySource(t *testing.T) {
	p, _ := Lookup("xp")
	p, _ = p.Apply("TcpMaxDataRetransmissions=3", "PPTPTcpMaxDataRetransmissions=7", "abort=none")
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
	for _, f := range p.Fields() {
		if f.Source == "" {
			t.Errorf("field %q has no source", f.Name)
		}
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
