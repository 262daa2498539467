package timers

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapEntries maps an array of n entries (whole huge pages), aligned to a
// huge page, and asks for transparent huge pages for it: the kernel
// honours that where THP is "madvise" or "always", and faults in 2 MiB at
// a time. Fresh anonymous memory reads as zero, so nothing is cleared. If
// the mapping fails it allocates from the Go heap instead (mapped false),
// which then fails as it does.
func mapEntries(n int) (a []wheelEntry, mapped bool) {
	size := uintptr(n * entrySize)
	// Map a huge page more and unmap what lies outside the aligned part.
	p, err := unix.MmapPtr(-1, 0, nil, size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]wheelEntry, n), false
	}
	head := (hugePage - uintptr(p)%hugePage) % hugePage // bytes before the aligned start
	if head > 0 {
		_ = unix.MunmapPtr(p, head)
	}
	if tail := hugePage - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, head+size), tail)
	}
	a = unsafe.Slice((*wheelEntry)(unsafe.Add(p, head)), n)
	// MADV_HUGEPAGE; where THP is "never", 4 KiB pages as before.
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), size), unix.MADV_HUGEPAGE)
	return a, true
}

// unmapEntries unmaps an array from mapEntries.
func unmapEntries(a []wheelEntry) {
	_ = unix.MunmapPtr(unsafe.Pointer(&a[:1][0]), uintptr(cap(a)*entrySize))
}
