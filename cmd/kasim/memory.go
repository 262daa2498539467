package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// memoryShare is the share of the machine's RAM kasim lets the garbage
// collector's heap grow to before it collects harder (a soft limit,
// debug.SetMemoryLimit). Go's default pacing lets the heap reach twice
// what is live, which a run of a million connections (14 GB live) could
// not fit in 24 GiB; the limit changes only when memory is collected,
// never what a run computes.
const memoryShare = 0.8

// setMemoryLimit sets the soft limit unless GOMEMLIMIT already did.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if ram, ok := physicalMemory(); ok {
		debug.SetMemoryLimit(int64(float64(ram) * memoryShare))
	}
}

// liveBytesPerConn is what one built-in connection holds while it is
// open, both ends (gVisor's two endpoints, about 10 KB, and kasim's
// bookkeeping): 13.9 KB in a heap profile of the built-in scenario at
// 100,000 connections, mid-run (docs/performance.md, Server scale).
const liveBytesPerConn = 14_000

// checkRoomFor says why a run of conns connections cannot fit in this
// machine's memory, before it starts, or "" if it can (or the machine's
// size is unknown).
func checkRoomFor(conns int) string {
	ram, ok := physicalMemory()
	need := int64(conns) * liveBytesPerConn
	if !ok || float64(need) <= float64(ram)*memoryShare {
		return ""
	}
	return fmt.Sprintf("conns %d: the run needs about %.1f GiB of memory (%d KB per connection) and this machine has %.1f GiB; run fewer connections, or split a sweep across machines (README, At server scale)",
		conns, float64(need)/(1<<30), liveBytesPerConn/1000, float64(ram)/(1<<30))
}
