//go:build unix

package bench

import "syscall"

// pageFaults returns the page faults the process has taken so far, minor
// and major: first touches of memory the kernel had not mapped yet.
func pageFaults() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return int64(ru.Minflt) + int64(ru.Majflt)
}
