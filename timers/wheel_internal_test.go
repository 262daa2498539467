package timers

import (
	"math/rand/v2"
	"testing"
	"time"
)

// stored counts the entries the wheel holds, live and stale.
func (w *Wheel) stored() int {
	n := w.due.len() + int(w.inboxN)
	for _, bag := range w.bags {
		n += len(bag)
	}
	return n
}

func TestWheelGarbageStaysBounded(t *testing.T) {
	const n = 100_000
	w, h := NewWheel(), NewHeap4()
	w.Push(n, int64(time.Hour))
	h.Push(n, int64(time.Hour))
	w.Peek() // the wheel stands at one hour
	r := rand.New(rand.NewPCG(5, 6))
	// Timers already overdue go to the due heap, where a timer does not
	// know its entry's place: removing them leaves stale entries that no
	// Peek has come to drop. Only sweeps keep them from piling up.
	push := func() {
		for id := ID(0); id < n; id++ {
			when := r.Int64N(int64(time.Hour))
			w.Push(id, when)
			h.Push(id, when)
		}
	}
	push()
	for round := 0; round < 5; round++ {
		for id := ID(0); id < n; id++ {
			w.Remove(id)
			h.Remove(id)
		}
		push()
		if w.garbage != w.stored()-w.live {
			t.Fatalf("round %d: garbage count %d, but %d entries stored for %d live timers", round, w.garbage, w.stored(), w.live)
		}
		if w.garbage > w.live+sweepSlack {
			t.Fatalf("round %d: %d stale entries for %d live timers", round, w.garbage, w.live)
		}
	}
	for {
		wid, wwhen, wok := w.PopDue(1 << 62)
		hid, hwhen, hok := h.PopDue(1 << 62)
		if wid != hid || wwhen != hwhen || wok != hok {
			t.Fatalf("PopDue = %d@%d,%v; heap4 says %d@%d,%v", wid, wwhen, wok, hid, hwhen, hok)
		}
		if !wok {
			break
		}
	}
	if w.stored() != 0 || w.garbage != 0 {
		t.Fatalf("empty wheel still stores %d entries, counts %d stale", w.stored(), w.garbage)
	}
}

// Running out of 32-bit sequences renumbers the pending timers without
// changing their order, and drops the stale entries whose tags could
// otherwise come back to life.
func TestWheelSequenceWrapRenumbers(t *testing.T) {
	w := NewWheel()
	w.Push(1, int64(time.Hour))
	w.Push(2, int64(time.Hour))
	w.Push(3, int64(time.Minute))
	w.Peek() // cascade: the entries move, the timers' locations go stale
	w.Remove(3)
	if w.garbage != 1 || w.stored() != 3 {
		t.Fatalf("after remove: garbage %d, stored %d; want a stale entry", w.garbage, w.stored())
	}
	w.seq = seqLimit - 1              // as if scheduled four billion times since
	w.Reschedule(1, int64(time.Hour)) // now after timer 2 at the same deadline
	w.Push(3, int64(time.Hour))
	if w.seq != 3 || w.garbage != 0 || w.stored() != 3 {
		t.Fatalf("after the wrap: seq %d, garbage %d, stored %d; want 3, 0, 3", w.seq, w.garbage, w.stored())
	}
	for _, want := range []ID{2, 1, 3} {
		if id, when, ok := w.PopDue(1 << 62); !ok || id != want || when != int64(time.Hour) {
			t.Fatalf("PopDue = %d@%d,%v; want %d", id, when, ok, want)
		}
	}
}
