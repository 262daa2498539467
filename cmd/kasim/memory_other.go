//go:build !linux

package main

// physicalMemory is not read outside Linux: kasim then sets no memory
// limit of its own and checks no run against the machine's size.
func physicalMemory() (int64, bool) { return 0, false }
