package profile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"kasim/stack"
)

func TestLinuxDefaultsAndBehaviour(t *testing.T) {
	p := lookup(t, "linux", nil, nil)
	if p.Idle != 2*time.Hour || p.Interval != 75*time.Second || p.Count != 9 {
		t.Errorf("linux defaults %v / %v / %d, want 2h / 75s / 9 (tcp_keepalive_time, _intvl, _probes)", p.Idle, p.Interval, p.Count)
	}
	b := p.Behaviour
	if !b.AbortRST || !b.UserTimeoutReplacesCount || !b.CloseStopsKeepAlive || p.HZ != 250 || !p.Measured || p.API != POSIX || p.Dialect.Name != "linux" {
		t.Errorf("linux: %+v, HZ %d, Measured %v, API %v; want RST, user timeout replaces count, close stops keep-alive, 250, measured, POSIX",
			b, p.HZ, p.Measured, p.API)
	}
	if p.HostOptions().Timers == nil || p.HostOptions().Behaviour.KeepAliveDefaults.Count != 9 {
		t.Errorf("linux host options: %+v, want a HZ wheel and the sysctl defaults", p.HostOptions())
	}
	g := lookup(t, "gvisor", nil, nil)
	if g.Behaviour.AbortRST || g.Behaviour.UserTimeoutReplacesCount || g.Behaviour.ArmAtEstablishment || g.HZ != 0 || !g.Measured || g.HostOptions().Timers != nil {
		t.Errorf("gvisor is gVisor's own behaviour: no RST, first of both, armed by a segment, exact timers, measured: got %+v", g)
	}
	if g := lookup(t, "gvisor", nil, []string{"arm=establishment"}); !g.Behaviour.ArmAtEstablishment || !strings.Contains(g.Note(), "arm=establishment") {
		t.Errorf("gvisor arm=establishment: %+v, note %q", g.Behaviour, g.Note())
	}
	if !p.Behaviour.ArmAtEstablishment {
		t.Error("linux does not arm keep-alive at establishment (tcp_finish_connect)")
	}
}

// The kernel's timer wheel at HZ=250: 1 s fires at 1.024 s, 2 s at
// 2.016 s (the spacing of a real kernel's probes), 2 h 8.96 s late.
func TestRoundedAsTheKernelsWheel(t *testing.T) {
	p := lookup(t, "linux", nil, nil)
	for d, want := range map[time.Duration]time.Duration{
		time.Second:     1024 * time.Millisecond,
		2 * time.Second: 2016 * time.Millisecond,
		2 * time.Hour:   2*time.Hour + 8960*time.Millisecond,
	} {
		if got := p.Rounded(d); got != want {
			t.Errorf("HZ=250: %v fires at %v, want %v", d, got, want)
		}
	}
	exact := lookup(t, "linux", nil, []string{"hz=0"})
	if got := exact.Rounded(time.Second); got != time.Second {
		t.Errorf("hz=0: 1s fires at %v, want 1s", got)
	}
}

func TestSetValidates(t *testing.T) {
	for _, bad := range []string{"hz=200", "hz=x", "abort=maybe", "user-timeout=sometimes", "colour=blue", "hz"} {
		if _, err := Lookup("linux", nil, []string{bad}); err == nil {
			t.Errorf("set %q accepted", bad)
		}
	}
	q := lookup(t, "linux", nil, []string{"hz=1000", "abort=none", "user-timeout=first-of-both"})
	if q.HZ != 1000 || q.Behaviour.AbortRST || q.Behaviour.UserTimeoutReplacesCount {
		t.Errorf("after set: %+v", q)
	}
	if p := lookup(t, "linux", nil, nil); p.HZ != 250 || p.Behaviour.AbortRST != true {
		t.Error("a lookup with settings changed the table")
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
	if _, err := Lookup("linx", nil, nil); err == nil || !strings.Contains(err.Error(), "linux, gvisor") {
		t.Errorf("Lookup(linx): %v", err)
	}
}

// FreeBSD and lwIP, modelled from their source (not measured): defaults,
// behaviours and the settings each takes.
func TestFreeBSDAndLwIP(t *testing.T) {
	f := lookup(t, "freebsd", nil, nil)
	if f.Idle != 2*time.Hour || f.Interval != 75*time.Second || f.Count != 8 || !f.Behaviour.AlwaysKeepAlive || !f.Behaviour.AbortRST ||
		f.Behaviour.AbortError != stack.AbortTimedOut || f.Measured || f.Dialect.Name != "freebsd" || f.HZ != 0 || f.Tick != 0 ||
		len(f.Behaviour.KeepAliveStates) != 4 {
		t.Errorf("freebsd: %+v", f)
	}
	l := lookup(t, "lwip", nil, nil)
	if l.Idle != 2*time.Hour || l.Interval != 75*time.Second || l.Count != 9 || l.Behaviour.AlwaysKeepAlive || !l.Behaviour.AbortRST ||
		l.Behaviour.AbortError != stack.AbortConnAborted || !l.Measured || l.Dialect.Name != "lwip" || l.Tick != 500*time.Millisecond ||
		l.TickStart != 250*time.Millisecond || l.HostOptions().TimersStart != 250*time.Millisecond ||
		!slices.Equal(l.Behaviour.KeepAliveStates, []stack.State{stack.Established, stack.CloseWait}) {
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
	if f2 := lookup(t, "freebsd", nil, []string{"always-keepalive=0"}); f2.Behaviour.AlwaysKeepAlive {
		t.Errorf("always-keepalive=0: %+v", f2)
	}
	if l2 := lookup(t, "lwip", nil, []string{"tick=0", "abort=none"}); l2.Tick != 0 || l2.Behaviour.AbortRST || l2.HostOptions().Timers != nil {
		t.Errorf("tick=0, abort=none: %+v", l2)
	}
	for _, bad := range []struct {
		p        Profile
		set, msg string
	}{
		{f, "hz=250", `unknown setting "hz" (want always-keepalive or abort)`},
		{f, "always-keepalive=yes", "always-keepalive=yes: want 1"},
		{l, "user-timeout=first-of-both", `(want tick, tick-start or abort)`},
		{l, "tick=1h", "tick=1h: want 0"},
		{l, "tick=fast", "tick=fast: want 0"},
	} {
		if _, err := Lookup(bad.p.Name, nil, []string{bad.set}); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s %s: %v, want an error with %q", bad.p.Name, bad.set, err, bad.msg)
		}
	}
	for _, p := range []Profile{f, l} {
		var b strings.Builder
		if err := p.Describe(&b); err != nil {
			t.Fatal(err)
		}
		how := "modelled from source, not measured"
		if p.Name == "lwip" {
			how = "measured against lwIP 2.1.3"
		}
		for _, want := range []string{how, "not modelled", "TCP_USER_TIMEOUT"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s: Describe lacks %q", p.Name, want)
			}
		}
	}
	if s := f.Note(); s != "freebsd: POSIX calls with FreeBSD's option numbers, FreeBSD's keep-alive (defaults 2h / 75s / 8, RST at the abort, on for every connection (always_keepalive=1), probes in ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1 and CLOSING only)" {
		t.Errorf("freebsd summary: %s", s)
	}
	if s := l.Note(); s != "lwip: POSIX calls with lwIP's option numbers, lwIP's keep-alive (defaults 2h / 75s / 9, RST at the abort, ECONNABORTED, probes in ESTABLISHED and CLOSE-WAIT only, timers on a 500ms tick)" {
		t.Errorf("lwip summary: %s", s)
	}
}
