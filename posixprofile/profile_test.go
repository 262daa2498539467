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
