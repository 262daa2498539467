package main

import "golang.org/x/sys/unix"

// physicalMemory is the machine's RAM in bytes.
func physicalMemory() (int64, bool) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, false
	}
	return int64(si.Totalram) * int64(si.Unit), true
}
