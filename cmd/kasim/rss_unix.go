//go:build unix

package main

import (
	"runtime"
	"syscall"
)

// peakRSS returns this process's peak resident set size in bytes.
func peakRSS() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	if runtime.GOOS == "darwin" {
		return ru.Maxrss, true // bytes there
	}
	return ru.Maxrss * 1024, true // kilobytes on Linux and the BSDs
}
