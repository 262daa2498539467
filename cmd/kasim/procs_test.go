package main

import (
	"runtime"
	"testing"
)

func TestSimulationsRunOnOneProcessor(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, c := range []struct {
		env   string
		conns int
		want  int // while the run lasts
	}{
		{"", 1, 1},
		{"", oneProcessorMaxConns, 1},
		{"", oneProcessorMaxConns + 1, 3}, // a large heap: the collector keeps its processor
		{"3", 10, 3},                      // GOMAXPROCS set: the user's choice stands
	} {
		t.Setenv("GOMAXPROCS", c.env)
		runtime.GOMAXPROCS(3)
		restore := simulateOnOneProcessor(c.conns)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("GOMAXPROCS=%q, %d connections: GOMAXPROCS %d during the run, want %d", c.env, c.conns, got, c.want)
		}
		restore()
		if got := runtime.GOMAXPROCS(0); got != 3 {
			t.Errorf("GOMAXPROCS=%q, %d connections: %d after the run, want 3 again", c.env, c.conns, got)
		}
	}
}

// Overlapping runs restore GOMAXPROCS once, when the last ends, whatever
// order they end in.
func TestOverlappingRunsRestoreProcessorsOnce(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(3)
	first := simulateOnOneProcessor(10)
	second := simulateOnOneProcessor(10)
	first()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS %d while the second run lasts, want 1", got)
	}
	second()
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("GOMAXPROCS %d after both, want 3", got)
	}
}
