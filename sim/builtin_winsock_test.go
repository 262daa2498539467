package sim

import (
	"slices"
	"strings"
	"testing"
	"time"

	"kasim/profile"
)

// windows looks a profile up with assignments: registry values by their
// names, the rest settings.
func windows(t *testing.T, name string, assignments ...string) *profile.Profile {
	t.Helper()
	var registry, set []string
	for _, a := range assignments {
		key, _, _ := strings.Cut(a, "=")
		if slices.ContainsFunc(profile.RegistryValues, func(v profile.RegistryValue) bool { return strings.EqualFold(v.Name, key) }) {
			registry = append(registry, a)
		} else {
			set = append(set, a)
		}
	}
	p, err := profile.Lookup(name, registry, set)
	if err != nil {
		t.Fatal(err)
	}
	return &p
}

func runWindows(t *testing.T, b Builtin) *Result {
	t.Helper()
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Vista and later, dead peer, defaults: probes at exactly 2h, 2h+1s, ...,
// 2h+9s after the last segment received, each one octet at SND.NXT-1; the
// pending recv fails with WSAENETRESET at 2h+10s, the next call with
// WSAECONNRESET; the abort sends an RST (kasim's documented choice).
func TestWindowsModernDeadPeerAtDefaults(t *testing.T) {
	for _, p := range profile.All() {
		if !p.Winsock.RejectDuringConnect { // not Vista or later
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			b := DefaultBuiltin()
			b.Idle, b.Interval, b.Count = 0, 0, 0
			b.Profile = &p
			res := runWindows(t, b)
			v := viewClient(t, res.Events, res.Clients[0].Conn, b.Latency)
			if v.abort == nil {
				t.Fatal("keep-alive never gave up")
			}
			abortAt := time.Duration(v.abort.TNS)
			last := v.lastArrivalBefore(abortAt)
			if len(v.probes) != 10 {
				t.Fatalf("%d probes, want 10", len(v.probes))
			}
			for i, pr := range v.probes {
				if want := last + 2*time.Hour + time.Duration(i)*time.Second; time.Duration(pr.TNS) != want {
					t.Errorf("probe %d at %v, want exactly %v", i+1, time.Duration(pr.TNS), want)
				}
				if pr.Len != 1 || pr.Seq != uint32(len(Request)) || pr.Flags != "A" || pr.Class != ClassKeepAliveProbe {
					t.Errorf("probe %d: %s seq=%d len=%d class %s; want A, one octet at SND.NXT-1 (%d)", i+1, pr.Flags, pr.Seq, pr.Len, pr.Class, len(Request))
				}
			}
			want := last + 2*time.Hour + 10*time.Second
			o := res.Clients[0]
			if abortAt != want || o.Error != "WSAENETRESET" || o.ErrorAt != want || o.LaterError != "WSAECONNRESET" {
				t.Errorf("abort at %v, pending recv %s at %v, next call %s; want %v, WSAENETRESET, WSAECONNRESET", abortAt, o.Error, o.ErrorAt, o.LaterError, want)
			}
			var rst *SegmentEvent
			for _, e := range res.Events {
				if s, ok := e.(*SegmentEvent); ok && s.Host == "client" && s.Class == ClassRST {
					rst = s
				}
			}
			if rst == nil || time.Duration(rst.TNS) != want || rst.Flags != "RA" || rst.Seq != uint32(1+len(Request)) {
				t.Errorf("RST at abort: %+v; want RA at %v with seq SND.NXT (%d)", rst, want, 1+len(Request))
			}
		})
	}
}

func probesWith(t *testing.T, name string, reg ...string) int {
	t.Helper()
	b := DefaultBuiltin()
	b.Idle, b.Interval, b.Count = 0, 0, 0
	b.Profile = windows(t, name, reg...)
	res := runWindows(t, b)
	return len(res.Clients[0].Probes)
}

func TestWindowsLegacyProbeCountFromRegistry(t *testing.T) {
	for _, name := range []string{"win2000", "xp", "server2003"} {
		for _, tc := range []struct {
			reg  []string
			want int
		}{
			{nil, 5},
			{[]string{"TcpMaxDataRetransmissions=3", "PPTPTcpMaxDataRetransmissions=7"}, 7},
			{[]string{"TcpMaxDataRetransmissions=0", "PPTPTcpMaxDataRetransmissions=0"}, 0},
			{[]string{"TcpMaxDataRetransmissions=300", "PPTPTcpMaxDataRetransmissions=0"}, 255},
		} {
			if got := probesWith(t, name, tc.reg...); got != tc.want {
				t.Errorf("%s %v: %d probes, want %d", name, tc.reg, got, tc.want)
			}
		}
	}
}

func TestWindowsZeroProbesStillEndsTheConnection(t *testing.T) {
	b := DefaultBuiltin()
	b.Idle, b.Interval, b.Count = 0, 0, 0
	b.Profile = windows(t, "xp", "TcpMaxDataRetransmissions=0", "PPTPTcpMaxDataRetransmissions=0")
	res := runWindows(t, b)
	o := res.Clients[0]
	if len(o.Probes) != 0 || o.Error != "WSAENETRESET" || o.ErrorAt < 2*time.Hour || o.ErrorAt > 2*time.Hour+time.Second {
		t.Errorf("no-probe profile: %d probes, error %s at %v; want none, WSAENETRESET at the idle time", len(o.Probes), o.Error, o.ErrorAt)
	}
}

func TestWindowsPerConnectionSettings(t *testing.T) {
	b := DefaultBuiltin()
	b.Profile = windows(t, "win10-1703")
	b.Idle, b.Interval, b.Count = 30*time.Second, 500*time.Millisecond, 4
	res := runWindows(t, b)
	var calls []string
	for _, e := range res.Events {
		if s, ok := e.(*SockOptEvent); ok {
			calls = append(calls, s.Call+" "+s.Opt)
		}
	}
	got := strings.Join(calls, ", ")
	for _, want := range []string{"WSAStartup ", "socket ", "setsockopt SO_KEEPALIVE", "WSAIoctl SIO_KEEPALIVE_VALS", "setsockopt TCP_KEEPCNT", "ConnectEx ", "WSARecv "} {
		if !strings.Contains(got, want) {
			t.Errorf("calls lack %q: %s", want, got)
		}
	}
	o := res.Clients[0]
	if len(o.Probes) != 4 || o.Probes[1]-o.Probes[0] != 500*time.Millisecond || o.AbortAt != o.LastRecv+30*time.Second+2*time.Second {
		t.Errorf("probes %v, abort %v (last received %v)", o.Probes, o.AbortAt, o.LastRecv)
	}
	for _, tc := range []struct {
		profile string
		count   int
		want    string
	}{{"xp", 3, "--registry TcpMaxDataRetransmissions=3"}, {"win7", 3, "sends 10 probes"}, {"win10-1607", 3, "TCP_KEEPCNT came with Windows 10 1703"}} {
		b := DefaultBuiltin()
		b.Idle, b.Interval, b.Count = 0, 0, tc.count
		b.Profile = windows(t, tc.profile)
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with count %d: %v, want an error mentioning %q", tc.profile, tc.count, err, tc.want)
		}
	}
	b = DefaultBuiltin()
	b.Idle, b.Interval, b.Count = 1500*time.Microsecond, 0, 0
	b.Profile = windows(t, "win7")
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), "whole milliseconds") {
		t.Errorf("sub-millisecond idle on Windows: %v", err)
	}
}

func TestWindowsOverrides(t *testing.T) {
	b := DefaultBuiltin()
	b.Idle, b.Interval, b.Count = 0, 0, 0
	b.Profile = windows(t, "win7", "abort=none", "probe-bytes=0")
	res := runWindows(t, b)
	for _, e := range res.Events {
		if s, ok := e.(*SegmentEvent); ok && s.Host == "client" && (s.Class == ClassRST || (s.Class == ClassKeepAliveProbe && s.Len != 0)) {
			t.Errorf("with abort=none probe-bytes=0: %s len=%d", s.Class, s.Len)
		}
	}
}
