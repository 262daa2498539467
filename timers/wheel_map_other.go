//go:build !linux

package timers

// mapEntries allocates an array of n entries from the Go heap: the
// collector's own big allocations are as good as anything here.
func mapEntries(n int) (a []wheelEntry, mapped bool) { return make([]wheelEntry, n), false }

// unmapEntries leaves the array to the collector.
func unmapEntries([]wheelEntry) {}
