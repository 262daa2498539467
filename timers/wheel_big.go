package timers

// The Wheel's big slot arrays, mapped by the wheel itself.

import "runtime"

const (
	// bigBagLen is the capacity from which a slot's array is a big one:
	// 2 MiB of entries, a transparent huge page. Big arrays are whole
	// huge pages.
	bigBagLen = hugePage / entrySize
	hugePage  = 2 << 20
	entrySize = 16
)

// bigArrays are a wheel's arrays of bigBagLen entries or more: a herd's
// slot, a slot that a million timers were moved into. They are mapped by
// the wheel (mapEntries), not taken from the Go heap, for what a slot's
// growth met on every row that builds one (reset-earlier at 10^6 spent
// most of its time so): the heap's fresh memory is faulted in 4 KiB at a
// time, at about 12 us a fault on a virtual machine, where the mapping
// asks the kernel for transparent huge pages (0.27 us per 4 KiB; both
// measured by touching fresh mmap'd memory on this 2-core Firecracker VM,
// THP "madvise"); and each growth of a Go array clears its new half and
// may start a collection, whose mark stops the goroutine mid-copy, where
// a fresh mapping is zero already and costs the collector nothing. An
// array no slot or run uses is unmapped at once (mapping anew costs a few
// huge-page faults); those in use when the wheel is collected, by its
// cleanup.
type bigArrays struct {
	mapped map[*wheelEntry][]wheelEntry // every array mapped, by its first entry
}

// newBig returns an empty array with room for at least n entries.
func (w *Wheel) newBig(n int) []wheelEntry {
	if w.big == nil {
		w.big = &bigArrays{mapped: map[*wheelEntry][]wheelEntry{}}
		runtime.AddCleanup(w, (*bigArrays).release, w.big)
	}
	a, mapped := mapEntries((n + bigBagLen - 1) / bigBagLen * bigBagLen)
	if mapped {
		w.big.mapped[&a[0]] = a
	}
	return a[:0]
}

// dropBig takes back an array of bigBagLen entries or more that no slot
// or run uses any longer: it is unmapped if the wheel mapped it, and left
// to the collector if it is the Go heap's (its size class rounded it up
// to bigBagLen, or mapping failed, or not Linux).
func (w *Wheel) dropBig(a []wheelEntry) {
	if w.big == nil {
		return
	}
	first := &a[:1][0]
	if whole, ok := w.big.mapped[first]; ok {
		delete(w.big.mapped, first)
		unmapEntries(whole)
	}
}

// release unmaps every array: the wheel is gone.
func (p *bigArrays) release() {
	for _, a := range p.mapped {
		unmapEntries(a)
	}
	clear(p.mapped)
}

// MappedBytes returns the bytes of slot arrays the wheel holds outside the
// Go heap: the big arrays of herds, mapped by the wheel itself on Linux
// (none elsewhere, where they are the heap's). A count of the memory a
// wheel holds that measures the Go heap adds these.
func (w *Wheel) MappedBytes() int {
	if w.big == nil {
		return 0
	}
	n := 0
	for _, a := range w.big.mapped {
		n += cap(a) * entrySize
	}
	return n
}
