package stack

import (
	"testing"
	"time"
)

// A path's packets in flight come out in the order they went in, and a
// steady flow reuses one array instead of reallocating as its window
// slides along.
func TestFlightsKeepOrderAndReuseTheirArray(t *testing.T) {
	var f flights
	next, want := 0, 0
	push := func() {
		f.push(flight{due: time.Duration(next)})
		next++
	}
	pop := func() {
		if got := int(f.first().due); got != want {
			t.Fatalf("packet %d is first as %d", want, got)
		}
		if got := int(f.pop().due); got != want {
			t.Fatalf("packet %d came out as %d", want, got)
		}
		want++
	}
	for range 100 {
		push() // a window of 100 in flight
	}
	allocs := testing.AllocsPerRun(100, func() {
		for range 1000 {
			push()
			pop()
		}
	})
	if allocs != 0 {
		t.Errorf("a steady flow allocated %.1f times per 1,000 packets, want 0", allocs)
	}
	// It grows past the window until half of it is delivered when full,
	// then moves the window down: a few times the window, not the flow.
	if c := cap(f.q); c > 400 {
		t.Errorf("a window of 100 holds an array of %d, want at most 400", c)
	}
	for f.len() > 0 {
		pop()
	}
	if f.head != 0 || len(f.q) != 0 {
		t.Errorf("emptied: head %d, len %d; want both 0, to start the array over", f.head, len(f.q))
	}
	// Bursts larger than the array grow it, in order.
	for range 5 {
		for range 700 {
			push()
		}
		for range 650 {
			pop()
		}
	}
	for f.len() > 0 {
		pop()
	}
	if want != next {
		t.Fatalf("%d packets out of %d", want, next)
	}
}
