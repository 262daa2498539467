//go:build unix

package bench

import (
	"os"
	"syscall"
	"testing"
)

// TestMeterCountsPageFaults touches memory the kernel has never mapped for
// the process, a page at a time, inside a meter's section: every page is a
// fault, and the report divides them by the operations.
func TestMeterCountsPageFaults(t *testing.T) {
	const pages = 256
	page := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, pages*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	var m meter
	m.begin()
	for i := 0; i < pages; i++ {
		mem[i*page] = 1
	}
	m.end()
	var r Result
	m.report(&r, pages)
	// At least one fault a page: an anonymous mapping of 1 MiB, not
	// advised, gets neither huge pages nor fault-around (other threads
	// may add faults of their own).
	if m.faults < pages {
		t.Errorf("touching %d fresh pages counted %d faults", pages, m.faults)
	}
	if want := float64(m.faults) / pages; r.PageFaultsPerOp != want {
		t.Errorf("PageFaultsPerOp = %v, want %v", r.PageFaultsPerOp, want)
	}
}
