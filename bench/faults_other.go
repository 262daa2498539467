//go:build !unix

package bench

// pageFaults returns 0: the system does not count page faults through
// getrusage.
func pageFaults() int64 { return 0 }
