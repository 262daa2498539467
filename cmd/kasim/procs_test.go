package main

import (
	"runtime"
	"testing"
)

func TestSimulatingCommandsRunOnOneProcessor(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, c := range []struct {
		env  string
		args []string
		want int // 0: left as it was
	}{
		{"", nil, 1},
		{"", []string{"--conns", "10"}, 1},
		{"", []string{"run", "x.yaml"}, 1},
		{"", []string{"check", "testdata"}, 1},
		{"", []string{"compare", "--profiles", "linux,gvisor", "x.yaml"}, 1},
		{"", []string{"bench"}, 0},
		{"", []string{"conform"}, 0},
		{"", []string{"version"}, 0},
		{"", []string{"no-such-command"}, 0},
		{"3", []string{"run"}, 0}, // GOMAXPROCS set: the user's choice stands
	} {
		t.Setenv("GOMAXPROCS", c.env)
		runtime.GOMAXPROCS(3)
		setProcsFor(c.args)
		want := c.want
		if want == 0 {
			want = 3
		}
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Errorf("GOMAXPROCS=%q kasim %q: GOMAXPROCS %d, want %d", c.env, c.args, got, want)
		}
	}
}
