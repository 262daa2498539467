package timers

import (
	mathbits "math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// drainBoth pops every timer of w and h, which must come out alike.
func drainBoth(t *testing.T, w *Wheel, h *Heap4) {
	t.Helper()
	for {
		wid, wwhen, wok := w.PopDue(1 << 62)
		hid, hwhen, hok := h.PopDue(1 << 62)
		if wid != hid || wwhen != hwhen || wok != hok {
			t.Fatalf("PopDue = %d@%d,%v; heap4 says %d@%d,%v", wid, wwhen, wok, hid, hwhen, hok)
		}
		if !wok {
			return
		}
	}
}

// stored counts the entries the wheel holds, live, stale and tombstones.
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
		if w.garbage != w.stored()-w.live-w.tombs {
			t.Fatalf("round %d: garbage count %d, but %d entries stored for %d live timers and %d tombstones", round, w.garbage, w.stored(), w.live, w.tombs)
		}
		if w.garbage > w.live+sweepSlack {
			t.Fatalf("round %d: %d stale entries for %d live timers", round, w.garbage, w.live)
		}
	}
	drainBoth(t, w, h)
	if w.stored() != w.tombs || w.garbage != 0 {
		t.Fatalf("empty wheel still stores %d entries (%d tombstones), counts %d stale", w.stored(), w.tombs, w.garbage)
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
	// Renumbered: timer 1's entry tag 1, timer 2 2, timer 1's sequence 3
	// (moved later, it keeps the two apart); the push takes 4.
	if w.seq != 4 || w.garbage != 0 || w.stored() != 3 {
		t.Fatalf("after the wrap: seq %d, garbage %d, stored %d; want 4, 0, 3", w.seq, w.garbage, w.stored())
	}
	if n := w.node(1); n.ftag != 1 || n.seq != 3 || w.moved != 1 {
		t.Fatalf("after the wrap: timer 1 has tag %d, sequence %d, %d timers moved; want 1, 3, 1", n.ftag, n.seq, w.moved)
	}
	for _, want := range []ID{2, 1, 3} {
		if id, when, ok := w.PopDue(1 << 62); !ok || id != want || when != int64(time.Hour) {
			t.Fatalf("PopDue = %d@%d,%v; want %d", id, when, ok, want)
		}
	}
}

// counts recounts what the wheel keeps count of, from its entries: the
// pending timers moved later (their live entry's tag is not their
// sequence), the timers with stale entries stored, and the stale entries.
func (w *Wheel) counts() (moved, dirty, garbage, tombs int) {
	stale := map[ID]int{}
	visit := func(e wheelEntry) {
		if e.tag == noTag {
			tombs++
		} else if n := w.node(e.id); e.tag != n.ftag {
			stale[e.id]++
			garbage++
		} else if n.seq != n.ftag {
			moved++
		}
	}
	for _, e := range w.inbox[:w.inboxN] {
		visit(e)
	}
	for word, bits := range w.occ {
		for ; bits != 0; bits &= bits - 1 {
			for _, e := range w.bags[word*64+mathbits.TrailingZeros64(bits)] {
				visit(e)
			}
		}
	}
	for _, e := range w.due.run[w.due.next:] {
		visit(e)
	}
	for _, e := range w.due.late {
		visit(e)
	}
	for id, k := range stale {
		// A timer's own count, unless saturated, must be exact; a wrong
		// one shows as a dirty count off by one.
		if blk, i := w.timer(id); int(blk.flags[i]) != k && blk.flags[i] != staleMax {
			dirty--
		}
	}
	return moved, dirty + len(stale), garbage, tombs
}

// The counts that let the wheel skip checking entries (moved, dirty) and
// that decide sweeps (garbage) stay equal to what the entries say, through
// random operations, sweeps and renumberings. An overcount would only slow
// the wheel down, so the model tests cannot see it.
func TestWheelCountsStayTrue(t *testing.T) {
	defer SetSeqLimit(5000)()
	const n = 300
	w := NewWheel()
	r := rand.New(rand.NewPCG(7, 8))
	pending := make([]bool, n)
	now := int64(0)
	for step := 0; step < 100_000; step++ {
		id := ID(r.IntN(n))
		when := now + r.Int64N(int64(3*time.Second))
		switch op := r.IntN(10); {
		case !pending[id]:
			w.Push(id, when)
			pending[id] = true
		case op < 4:
			w.Reschedule(id, when)
		case op < 6:
			w.Remove(id)
			pending[id] = false
		case op < 8:
			if next, ok := w.Peek(); ok {
				now = max(now, next)
			}
			for {
				id, _, ok := w.PopDue(now)
				if !ok {
					break
				}
				pending[id] = false
			}
		}
		moved, dirty, garbage, tombs := w.counts()
		if moved != w.moved || dirty != w.dirty || garbage != w.garbage || tombs != w.tombs {
			t.Fatalf("step %d: the wheel counts %d moved, %d dirty, %d garbage, %d tombstones; its entries say %d, %d, %d, %d",
				step, w.moved, w.dirty, w.garbage, w.tombs, moved, dirty, garbage, tombs)
		}
	}
}

// A sequence limit below what the pending timers need (each moved timer
// takes two numbers) moves the next renumbering further out instead of
// renumbering on every call, or for ever.
func TestWheelRenumbersPastASmallLimit(t *testing.T) {
	defer SetSeqLimit(3)()
	w, h := NewWheel(), NewHeap4()
	for id := ID(0); id < 10; id++ {
		w.Push(id, int64(time.Second))
		h.Push(id, int64(time.Second))
	}
	w.Peek()
	for round := range 3 {
		for id := ID(0); id < 10; id++ {
			when := int64(time.Second) + int64(round%2)*int64(time.Millisecond)
			w.Reschedule(id, when)
			h.Reschedule(id, when)
		}
	}
	if w.seq >= w.seqEnd {
		t.Errorf("sequence %d has reached the renumbering point %d: every call renumbers", w.seq, w.seqEnd)
	}
	drainBoth(t, w, h)
}

// A herd in one slot cascades with its array (cascadeLarge) and drains as
// a radix-sorted run; the herd here also spills into a neighbouring tick,
// into a slot that already holds timers, and moves and cancels some of its
// timers on the way, so every path is taken. Equal deadlines abound.
func TestWheelHerdsComeOutInOrder(t *testing.T) {
	for _, c := range []struct {
		spill int64
		clean bool
	}{{0, false}, {1 << tickBits, false}, {0, true}, {1 << tickBits, true}} {
		w, h := NewWheel(), NewHeap4()
		r := rand.New(rand.NewPCG(9, uint64(c.spill)))
		base := int64(time.Hour) &^ (1<<tickBits - 1)
		const n = 3 * lazyMin // past keepBagsCap and lazyMin: every herd path
		for id := ID(0); id < n; id++ {
			when := base + r.Int64N(1<<12)
			if id%5 == 0 {
				when += c.spill // the neighbouring tick, or the same
			}
			w.Push(id, when)
			h.Push(id, when)
		}
		w.Push(n, base+c.spill) // a timer filed before the herd cascades
		h.Push(n, base+c.spill)
		if c.clean {
			// Nothing checked: a one-tick herd goes straight to level 0.
			// Timers scheduled once it is reached, before it and within
			// it, come out in order with it.
			if got, want := mustPeek(t, w), mustPeek(t, h); got != want {
				t.Fatalf("spill %d: Peek = %d; want %d", c.spill, got, want)
			}
			for id := ID(n + 1); id < n+100; id++ {
				when := base - 1<<tickBits + r.Int64N(2<<tickBits)
				w.Push(id, when)
				h.Push(id, when)
			}
			drainBoth(t, w, h)
			continue
		}
		for id := ID(7); id < n; id += 7 { // not 0, first in the slot: it picks where the array goes
			switch id % 3 {
			case 0:
				w.Remove(id)
				h.Remove(id)
			case 1:
				when := base + r.Int64N(1<<12)
				w.Reschedule(id, when)
				h.Reschedule(id, when)
			}
		}
		drainBoth(t, w, h)
	}
}

func mustPeek(t *testing.T, q Queue) int64 {
	t.Helper()
	when, ok := q.Peek()
	if !ok {
		t.Fatal("Peek: empty")
	}
	return when
}

// sortRun orders every run (the entries of one tick) as entryBefore does,
// whatever varies in its keys: few deadlines or many, tags wide or narrow.
func TestWheelSortRun(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 2, 47, 49, 300, 5000, 70_000} {
		for _, spread := range []int64{1, 3, 1 << 10, 1 << tickBits} {
			run := make([]wheelEntry, size)
			tick := int64(time.Hour) &^ (1<<tickBits - 1)
			for i := range run {
				run[i] = wheelEntry{tick + r.Int64N(spread), ID(i), uint32(r.IntN(1 << 30))}
			}
			want := slices.Clone(run)
			slices.SortStableFunc(want, func(a, b wheelEntry) int {
				switch {
				case entryBefore(a, b):
					return -1
				case entryBefore(b, a):
					return 1
				}
				return 0
			})
			sortRun(run)
			for i := range run {
				if runKey(run[i]) != runKey(want[i]) {
					t.Fatalf("size %d, spread %d: entry %d has key %x; want %x", size, spread, i, runKey(run[i]), runKey(want[i]))
				}
			}
		}
	}
}

// A large due run comes out in order though it is sorted a bucket at a
// time, also when its keys crowd into one bucket, and when a sweep finishes
// sorting it half-way.
func TestWheelLazyRunComesOutInOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	tick := int64(time.Hour) &^ (1<<tickBits - 1)
	// Skewed low, most keys share the lowest digits; skewed high, the
	// highest, so that peeling a sixteenth takes nearly the whole run.
	for _, skew := range []string{"none", "low", "high"} {
		for _, size := range []int{20 * lazyMin, peelMin + 3*lazyMin} {
			for _, sweepAt := range []int{-1, 3 * lazyMin} {
				run := make([]wheelEntry, size)
				for i := range run {
					when := tick + r.Int64N(1<<tickBits)
					switch {
					case skew == "low" && i%10 != 0:
						when = tick + r.Int64N(1<<8)
					case skew == "high" && i%20 != 0:
						when = tick + 1<<tickBits - 1 - r.Int64N(1<<8)
					}
					run[i] = wheelEntry{when, ID(i), uint32(r.IntN(1 << 30))}
				}
				var d dueRun
				d.setRun(run)
				prev := uint64(0)
				for popped := 0; d.next < len(d.run); popped++ {
					if popped == sweepAt {
						d.sortAll()
						if d.sorted != len(d.run) || len(d.ends) != 0 {
							t.Fatalf("sortAll left %d of %d sorted, %d buckets", d.sorted, len(d.run), len(d.ends))
						}
					}
					if d.next >= d.sorted {
						t.Fatalf("skew %s, size %d: head %d outside the sorted %d", skew, size, d.next, d.sorted)
					}
					k := runKey(d.run[d.next])
					if k < prev {
						t.Fatalf("skew %s, size %d: entry %d has key %x after %x", skew, size, popped, k, prev)
					}
					prev = k
					d.popRun()
				}
			}
		}
	}
}

// peel gathers whole digits, the lowest, at least a sixteenth of the run,
// at its front, and leaves every other entry behind them.
func TestWheelPeel(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	run := make([]wheelEntry, 100_000)
	for i := range run {
		run[i] = wheelEntry{r.Int64N(1 << 16), ID(i), uint32(i)}
	}
	const shift = 32 + 8 // the digit of the deadline's bits 8-15
	digit := func(e wheelEntry) uint64 { return runKey(e) >> shift & (1<<radixBits - 1) }
	n := peel(run, shift)
	if n < len(run)/16 || n > len(run)/16+len(run)/128 {
		t.Fatalf("peeled %d of %d; want a sixteenth, in whole digits of about 1/256 each", n, len(run))
	}
	top, rest := uint64(0), uint64(1<<radixBits)
	for _, e := range run[:n] {
		top = max(top, digit(e))
	}
	for _, e := range run[n:] {
		rest = min(rest, digit(e))
	}
	if top >= rest {
		t.Fatalf("the peeled entries reach digit %d, the rest start at %d", top, rest)
	}
	seen := make([]bool, len(run))
	for _, e := range run {
		seen[e.id] = true
	}
	if i := slices.Index(seen, false); i >= 0 {
		t.Fatalf("entry %d lost", i)
	}
}

// Scheduling and cancelling timers in a slot the clock does not reach
// leaves tombstones there; the slot drops them instead of growing, so they
// cannot pile up. A wheel holding nothing but tombstones answers Peek
// without moving its tick to them: the timers scheduled next, earlier,
// would otherwise have to wait in the late heap.
func TestWheelTombstonesStayBounded(t *testing.T) {
	w := NewWheel()
	w.Push(0, int64(time.Second))
	for round := range 100_000 {
		id := ID(1 + round%100)
		w.Push(id, int64(time.Hour)+int64(round))
		w.Peek() // files it
		w.Remove(id)
	}
	if w.stored() > 1000 || w.tombs != w.stored()-w.live {
		t.Fatalf("after 100,000 cancels: %d entries stored, %d tombstones, %d live", w.stored(), w.tombs, w.live)
	}
	if id, when, ok := w.PopDue(int64(time.Second)); !ok || id != 0 || when != int64(time.Second) {
		t.Fatalf("PopDue = %d@%d,%v; want timer 0 at 1s", id, when, ok)
	}
	pos := w.pos
	if when, ok := w.Peek(); ok {
		t.Fatalf("Peek on a wheel of tombstones = %d, true", when)
	}
	if w.pos != pos {
		t.Fatalf("Peek on a wheel of tombstones moved the tick from %d to %d", pos, w.pos)
	}
	w.Push(7, int64(2*time.Second))
	if w.due.len() != 0 {
		t.Fatalf("a timer scheduled after the tombstones went to the due run")
	}
	if id, _, ok := w.PopDue(int64(2 * time.Second)); !ok || id != 7 {
		t.Fatalf("PopDue = %d,%v; want timer 7", id, ok)
	}
}

// A slot that grows past bigBagLen entries (a million timers moved earlier
// into one millisecond, a herd due at one tick) lives in arrays the wheel
// maps itself on Linux; they pass from slot to run to slot, and back for
// reuse, as the Go heap's did, and the timers come out as heap4's.
func TestWheelBigSlotsComeOutInOrder(t *testing.T) {
	const n = bigBagLen + bigBagLen/2
	w, h := NewWheel(), NewHeap4()
	hour := int64(time.Hour)
	for round := range 3 {
		base := int64(round) * 8 * hour
		r := rand.New(rand.NewPCG(11, uint64(round)))
		for id := ID(0); id < n; id++ {
			when := base + 2*hour + r.Int64N(2*hour)
			w.Push(id, when)
			h.Push(id, when)
		}
		for id := ID(0); id < n; id++ { // all into one slot
			w.Reschedule(id, base+2*hour-int64(id))
			h.Reschedule(id, base+2*hour-int64(id))
		}
		w.Push(n, base+3*hour) // a herd of one tick behind them
		h.Push(n, base+3*hour)
		for id := ID(n + 1); id < 2*n; id++ {
			w.Push(id, base+3*hour+int64(id%1000))
			h.Push(id, base+3*hour+int64(id%1000))
		}
		for id := ID(3); id < 2*n; id += 3 {
			w.Remove(id)
			h.Remove(id)
		}
		drainBoth(t, w, h)
		if runtime.GOOS == "linux" && w.MappedBytes() < n*entrySize {
			t.Fatalf("round %d: %d bytes mapped for slots of %d timers", round, w.MappedBytes(), n)
		}
	}
}

// Big arrays are whole huge pages, aligned to one, and unmapped once
// given back.
func TestWheelBigArraysAreUnmapped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("big arrays are mapped outside the Go heap on Linux only")
	}
	w := NewWheel()
	a := w.newBig(bigBagLen + 1)
	if cap(a) != 2*bigBagLen || uintptr(unsafe.Pointer(&a[:1][0]))%hugePage != 0 || w.MappedBytes() != 2*hugePage {
		t.Fatalf("newBig(bigBagLen+1): cap %d at %p, %d bytes mapped; want two huge pages, aligned", cap(a), &a[:1][0], w.MappedBytes())
	}
	a = append(a, wheelEntry{when: 1, id: 2, tag: 3})
	b := w.newBig(bigBagLen)
	w.dropBig(a)
	if w.MappedBytes() != hugePage {
		t.Fatalf("%d bytes mapped after one of two arrays was given back; want %d", w.MappedBytes(), hugePage)
	}
	w.dropBig(b)
	w.dropBig(make([]wheelEntry, 0, bigBagLen)) // the Go heap's: left alone
	if w.MappedBytes() != 0 {
		t.Fatalf("%d bytes mapped after every array was given back", w.MappedBytes())
	}
}

// When a slot drops its tombstones to make room, the entries that fill
// the holes tell their timers where they went: removing one of them later
// finds it in place (a tombstone, not a stale entry left for a drain).
func TestWheelCompactionKeepsTimersFindable(t *testing.T) {
	w := NewWheel()
	hour := int64(time.Hour)
	const n = 64                     // one slot's worth, filed together
	w.Push(1000, int64(time.Second)) // Peek stops here: the hour's slot stays
	for id := ID(0); id < n; id++ {
		w.Push(id, hour+int64(id))
	}
	w.Peek() // files them into one slot
	for id := ID(0); id < n/2; id++ {
		w.Remove(id) // tombstones, half the slot
	}
	for id := ID(n); w.tombs > 0; id++ { // fill the slot until it drops them
		w.Push(id, hour+int64(id))
		w.Peek()
	}
	for id := ID(n / 2); id < n; id++ { // the ones that moved into holes among them
		w.Remove(id)
	}
	if w.garbage != 0 {
		t.Fatalf("%d stale entries: removed timers were not where their locs said", w.garbage)
	}
}

// A slot past the entries a loc can index (2^18) still files, cancels and
// fires every timer as heap4 does: the entries past it are found by their
// tag when the slot is reached, not by their timers' locs.
func TestWheelSlotPastALocsReach(t *testing.T) {
	const n = 1<<idxBits + 4096
	const slot = int64(1) << (tickBits + levelBits) // a level-1 slot's span
	w, h := NewWheel(), NewHeap4()
	r := rand.New(rand.NewPCG(12, 1))
	for id := ID(0); id < n; id++ {
		when := 1700*slot + r.Int64N(slot) // one slot, about two hours out
		w.Push(id, when)
		h.Push(id, when)
	}
	w.flush() // files the inbox (Peek would also cascade the slot)
	if got := len(w.bags[levelSlots+1700%levelSlots]); got != n {
		t.Fatalf("the slot holds %d entries, want all %d", got, n)
	}
	for id := ID(0); id < n; id += 5 {
		w.Remove(id)
		h.Remove(id)
	}
	if w.Len() != h.Len() {
		t.Fatalf("Len %d, heap4's %d", w.Len(), h.Len())
	}
	drainBoth(t, w, h)
}
