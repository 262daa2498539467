package posixprofile

import (
	"strings"
	"testing"
	"time"
)

func TestLinuxDefaultsAndBehaviour(t *testing.T) {
	p, err := Lookup("linux")
	if err != nil {
		t.Fatal(err)
	}
	if p.Idle != 2*time.Hour || p.Interval != 75*time.Second || p.Count != 9 {
		t.Errorf("linux defaults %v / %v / %d, want 2h / 75s / 9 (tcp_keepalive_time, _intvl, _probes)", p.Idle, p.Interval, p.Count)
	}
	if !p.AbortRST || !p.UserTimeoutReplacesCount || p.HZ != 250 || !p.Measured {
		t.Errorf("linux: AbortRST %v, UserTimeoutReplacesCount %v, HZ %d, Measured %v; want true, true, 250, true",
			p.AbortRST, p.UserTimeoutReplacesCount, p.HZ, p.Measured)
	}
	g, _ := Lookup("gvisor")
	if g.AbortRST || g.UserTimeoutReplacesCount || g.HZ != 0 || g.Measured {
		t.Errorf("gvisor is gVisor's own behaviour: no RST, first of both, exact timers, modelled: got %+v", g)
	}
}

// The kernel's timer wheel at HZ=250: 1 s fires at 1.024 s, 2 s at
// 2.016 s (the spacing of a real kernel's probes), 2 h 8.96 s late.
func TestRoundedAsTheKernelsWheel(t *testing.T) {
	p, _ := Lookup("linux")
	for d, want := range map[time.Duration]time.Duration{
		time.Second:     1024 * time.Millisecond,
		2 * time.Second: 2016 * time.Millisecond,
		2 * time.Hour:   2*time.Hour + 8960*time.Millisecond,
	} {
		if got := p.Rounded(d); got != want {
			t.Errorf("HZ=250: %v fires at %v, want %v", d, got, want)
		}
	}
	exact, _ := p.Set("hz", "0")
	if got := exact.Rounded(time.Second); got != time.Second {
		t.Errorf("hz=0: 1s fires at %v, want 1s", got)
	}
}

func TestSetValidates(t *testing.T) {
	p, _ := Lookup("linux")
	for _, bad := range []string{"hz=200", "hz=x", "abort=maybe", "user-timeout=sometimes", "colour=blue", "hz"} {
		if _, err := p.Apply(bad); err == nil {
			t.Errorf("Apply(%q) accepted", bad)
		}
	}
	q, err := p.Apply("hz=1000", "abort=none", "user-timeout=first-of-both")
	if err != nil {
		t.Fatal(err)
	}
	if q.HZ != 1000 || q.AbortRST || q.UserTimeoutReplacesCount {
		t.Errorf("after Apply: %+v", q)
	}
	if p.HZ != 250 || p.Overridden("hz") {
		t.Error("Apply changed the profile it was called on")
	}
	var b strings.Builder
	if err := q.Describe(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(set: hz=1000)", "(set: abort=none)", "HZ=1000", "no RST"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Describe lacks %q:\n%s", want, b.String())
		}
	}
	if _, err := Lookup("linx"); err == nil || !strings.Contains(err.Error(), "linux or gvisor") {
		t.Errorf("Lookup(linx): %v", err)
	}
}

// FreeBSD and lwIP, modelled from their source (not measured): defaults,
// behaviours and the settings each takes.
func TestFreeBSDAndLwIP(t *testing.T) {
	f, err := Lookup("freebsd")
	if err != nil {
		t.Fatal(err)
	}
	if f.Idle != 2*time.Hour || f.Interval != 75*time.Second || f.Count != 8 || !f.AlwaysKeepAlive || !f.AbortRST ||
		f.AbortError != "ETIMEDOUT" || f.Measured || f.Dialect != "freebsd" || f.HZ != 0 || f.Tick != 0 {
		t.Errorf("freebsd: %+v", f)
	}
	l, err := Lookup("lwip")
	if err != nil {
		t.Fatal(err)
	}
	if l.Idle != 2*time.Hour || l.Interval != 75*time.Second || l.Count != 9 || l.AlwaysKeepAlive || !l.AbortRST ||
		l.AbortError != "ECONNABORTED" || l.Measured || l.Dialect != "lwip" || l.Tick != 500*time.Millisecond ||
		len(l.ProbeStates) != 2 {
		t.Errorf("lwip: %+v", l)
	}
	// lwIP's tick: a timer due between two ticks fires at the later one.
	for d, want := range map[time.Duration]time.Duration{
		time.Second:             time.Second,
		1200 * time.Millisecond: 1500 * time.Millisecond,
		time.Nanosecond:         500 * time.Millisecond,
	} {
		if got := l.Rounded(d); got != want {
			t.Errorf("lwip: %v fires at %v, want %v", d, got, want)
		}
	}
	if f2, err := f.Apply("always-keepalive=0"); err != nil || f2.AlwaysKeepAlive {
		t.Errorf("always-keepalive=0: %v, %+v", err, f2)
	}
	if l2, err := l.Apply("tick=0", "abort=none"); err != nil || l2.Tick != 0 || l2.AbortRST {
		t.Errorf("tick=0, abort=none: %v, %+v", err, l2)
	}
	for _, bad := range []struct {
		p        Profile
		set, msg string
	}{
		{f, "hz=250", `unknown setting "hz" (want always-keepalive or abort)`},
		{f, "always-keepalive=yes", "always-keepalive=yes: want 1"},
		{l, "user-timeout=first-of-both", `(want tick or abort)`},
		{l, "tick=1h", "tick=1h: want 0"},
		{l, "tick=fast", "tick=fast: want 0"},
	} {
		if _, err := bad.p.Apply(bad.set); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s %s: %v, want an error with %q", bad.p.Name, bad.set, err, bad.msg)
		}
	}
	for _, p := range []Profile{f, l} {
		var b strings.Builder
		if err := p.Describe(&b); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"modelled from source, not measured", "not modelled", "TCP_USER_TIMEOUT"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s: Describe lacks %q", p.Name, want)
			}
		}
	}
	if s := f.Summary(); s != "FreeBSD's keep-alive (defaults 2h / 75s / 8, RST at the abort, on for every connection (always_keepalive=1), probes in ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1 and CLOSING only)" {
		t.Errorf("freebsd summary: %s", s)
	}
	if s := l.Summary(); s != "lwIP's keep-alive (defaults 2h / 75s / 9, RST at the abort, ECONNABORTED, probes in ESTABLISHED and CLOSE-WAIT only, timers on a 500ms tick)" {
		t.Errorf("lwip summary: %s", s)
	}
}
