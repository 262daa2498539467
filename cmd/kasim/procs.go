package main

import (
	"os"
	"runtime"
	"strings"
)

// setProcsFor runs a simulating command (run, check, compare) on one
// processor, unless GOMAXPROCS is set. A simulation is one goroutine's
// work: at every instant the driver hands each host's gVisor TCP processor
// the packets and timers due and waits for it (stack.Host's barrier). With
// a second processor idle, the Go scheduler wakes another thread for every
// such hand-over, a futex call each way; with one, it is a goroutine
// switch. kasim run --conns 100000 --format summary took 29.6 s and 30 s of
// CPU on one, 36.0 s and 44 s on two (docs/performance.md, Server scale).
// The trace is the same bytes either way (sim's TestDeterminism runs
// both); what one processor costs is a garbage collector that no
// longer runs beside the simulation.
func setProcsFor(args []string) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	name := "run" // kasim, or kasim with flags first
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name = args[0]
	}
	if c := lookupCommand(name); c != nil && c.simulates {
		runtime.GOMAXPROCS(1)
	}
}
