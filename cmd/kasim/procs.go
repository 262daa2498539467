package main

import (
	"os"
	"runtime"
	"sync"
)

// oneProcessorMaxConns is the most built-in connections a run makes on one
// processor. Past it the heap is large enough that the garbage collector,
// running beside the simulation on a second processor, saves more than the
// hand-overs cost: kasim run --conns N --format summary, one processor
// against two, took 2.4 s against 3.0 at 10,000, 29.6 against 36.0 at
// 100,000, 122 against 121 at 300,000 and 9 min 35 s against 8 min 40 s
// at a million (docs/performance.md, Server scale).
const oneProcessorMaxConns = 200_000

// simulateOnOneProcessor sets GOMAXPROCS to 1 for a run of conns
// connections, unless the environment sets GOMAXPROCS or the run is
// larger than oneProcessorMaxConns, and returns what restores it. A
// simulation is one goroutine's work: at every instant the driver hands
// each host's gVisor TCP processor the packets and timers due and waits
// for it (stack.Host's barrier). With a second processor idle, the Go
// scheduler wakes another thread for every such hand-over, a futex call
// each way (14% of the CPU of 100,000 connections, profiled); with one, it
// is a goroutine switch. The trace is the same bytes either way (sim's
// TestDeterminism runs both).
func simulateOnOneProcessor(conns int) (restore func()) {
	if os.Getenv("GOMAXPROCS") != "" || conns > oneProcessorMaxConns {
		return func() {}
	}
	// Runs that overlap (commands run in-process, as tests do) share the
	// setting: the first saves what was set, the last restores it.
	procs.Lock()
	defer procs.Unlock()
	if procs.runs == 0 {
		procs.saved = runtime.GOMAXPROCS(1)
	}
	procs.runs++
	return func() {
		procs.Lock()
		defer procs.Unlock()
		if procs.runs--; procs.runs == 0 {
			runtime.GOMAXPROCS(procs.saved)
		}
	}
}

// procs counts the runs on one processor, and keeps GOMAXPROCS as it was
// before the first.
var procs struct {
	sync.Mutex
	runs, saved int
}
