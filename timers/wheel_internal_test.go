package timers

import (
	"math/rand/v2"
	"testing"
	"time"
)

// stored counts the entries the wheel holds, live and stale.
func (w *Wheel) stored() int {
	n := w.due.len()
	for _, bag := range w.bags {
		n += len(bag)
	}
	return n
}

func TestWheelGarbageStaysBounded(t *testing.T) {
	const n = 100_000
	w, h := NewWheel(), NewHeap4()
	r := rand.New(rand.NewPCG(5, 6))
	push := func() {
		for id := ID(0); id < n; id++ {
			when := r.Int64N(int64(2 * time.Hour))
			w.Push(id, when)
			h.Push(id, when)
		}
	}
	push()
	for round := 0; round < 5; round++ {
		w.Peek() // cascades: the nodes no longer know where their entries are
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

// A stale entry must not come back to life when the 32-bit tags wrap
// around: every 2^31 schedulings the stale entries are swept.
func TestWheelTagWrapSweeps(t *testing.T) {
	w := NewWheel()
	w.Push(1, int64(time.Hour))
	w.Peek() // cascade: the entry moves, the node's location goes stale
	w.Remove(1)
	if w.garbage != 1 || w.stored() != 1 {
		t.Fatalf("after remove: garbage %d, stored %d; want a stale entry", w.garbage, w.stored())
	}
	w.seq = w.swept + 1<<31 - 1 // as if scheduled two billion times since
	w.Push(1, int64(2*time.Hour))
	if w.garbage != 0 || w.stored() != 1 {
		t.Fatalf("after 2^31 schedulings: garbage %d, stored %d; want the stale entry swept", w.garbage, w.stored())
	}
	if id, when, ok := w.PopDue(1 << 62); !ok || id != 1 || when != int64(2*time.Hour) {
		t.Fatalf("PopDue = %d@%d,%v", id, when, ok)
	}
}
