package sim

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestScaled(t *testing.T) {
	src := `duration: 3h
network: {latency: 36s}
hosts: {a: {profile: linux}, w: {profile: vista}, b: {}}
connections: {c: {client: a, server: b}, d: {client: w, server: b}}
actions:
  - {at: 0s, conn: c, keepalive: {idle: 2h, interval: 1h, count: 3}}
  - {at: 0s, conn: c, setsockopt: {level: IPPROTO_TCP, opt: TCP_USER_TIMEOUT, value: 2h}}
  - {at: 0s, conn: d, ioctl: {code: SIO_KEEPALIVE_VALS, onoff: 1, time: 2h, interval: 36s}}
  - {at: 0s, conn: c, connect: true}
  - {at: 30m, silence: b}
expect:
  - {probes: 3, conn: c, within: [2h, 3h]}
`
	s, err := ParseScenario("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Scaled(1, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if got.Duration != 3*time.Second || got.Latency != 10*time.Millisecond {
		t.Errorf("duration %v, latency %v: want 3s and 10ms", got.Duration, got.Latency)
	}
	word := func(a Action, off int) uint32 { return binary.LittleEndian.Uint32(a.Optval[off:]) }
	vals := map[string][]uint32{}
	for _, a := range got.Actions {
		if len(a.Optval) >= 4 {
			vals[a.OptName] = []uint32{word(a, 0)}
			if len(a.Optval) == 12 {
				vals[a.OptName] = append(vals[a.OptName], word(a, 4), word(a, 8))
			}
		}
		if a.Do == DoSilence && a.At != 500*time.Millisecond {
			t.Errorf("silence at %v, want 500ms", a.At)
		}
	}
	want := map[string][]uint32{"TCP_KEEPIDLE": {2}, "TCP_KEEPINTVL": {1}, "TCP_KEEPCNT": {3}, "SO_KEEPALIVE": {1},
		"TCP_USER_TIMEOUT": {2000}, "SIO_KEEPALIVE_VALS": {1, 2000, 10}}
	if diff := cmp.Diff(want, vals); diff != "" {
		t.Errorf("option values scaled (-want +got):\n%s", diff)
	}
	if e := got.Expects[0]; *e.From != 2*time.Second || *e.To != 3*time.Second {
		t.Errorf("expectation window [%v, %v], want [2s, 3s]", *e.From, *e.To)
	}
	// The original is untouched.
	if s.Duration != 3*time.Hour || word(s.Actions[0], 0) != 7200 {
		t.Errorf("Scaled changed its receiver")
	}
	// The count is not a time, and 36 s / 3600 is 10 ms, which
	// TCP_KEEPIDLE cannot hold in whole seconds.
	if _, err := s.Scaled(1, 7200); err == nil || !strings.Contains(err.Error(), "s.yaml:6:") || !strings.Contains(err.Error(), "TCP_KEEPINTVL: 1h0m0s scaled by 1/7200 is 500ms, which it cannot hold in whole seconds") {
		t.Errorf("an unholdable scaled value: %v", err)
	}
	// A POSIX host's option units are its dialect's: FreeBSD's
	// TCP_KEEPINIT (seconds) is a time too.
	bsd, err := ParseScenario("b.yaml", []byte("duration: 1h\nhosts: {a: {profile: freebsd}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, setsockopt: {level: IPPROTO_TCP, opt: TCP_KEEPINIT, value: 600}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := bsd.Scaled(1, 60); err != nil {
		t.Error(err)
	} else if v := word(got.Actions[0], 0); v != 10 {
		t.Errorf("FreeBSD TCP_KEEPINIT 600 s at 1/60: %d; want 10", v)
	}
	if _, err := s.Scaled(0, 1); err == nil {
		t.Error("a zero scale was accepted")
	}
}
