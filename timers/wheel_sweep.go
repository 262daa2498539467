package timers

// A Wheel's stale entries counted and swept, and its sequences renumbered.

import (
	"math"
	"slices"
)

// setFlags updates a timer's count of stale entries, counting the timers
// with any.
func (w *Wheel) setFlags(blk *wheelBlock, i int, f uint8) {
	switch old := blk.flags[i]; {
	case old == 0 && f != 0:
		w.dirty++
	case old != 0 && f == 0:
		w.dirty--
	}
	blk.flags[i] = f
}

// addStale counts one more stale entry of a timer.
func (w *Wheel) addStale(blk *wheelBlock, i int) {
	if f := blk.flags[i]; f != staleMax {
		w.setFlags(blk, i, f+1)
	}
	w.garbage++
}

// maybeSweep sweeps the stale entries when they outnumber the live timers,
// plus a slack that keeps sweeps rare in small queues.
func (w *Wheel) maybeSweep() {
	if w.garbage > w.live+sweepSlack {
		w.sweep()
	}
}

// forEachEntry calls f for every stored entry, in the bags and the due
// run, so that it may change or drop it (keep false); the late heap is
// rebuilt afterwards.
func (w *Wheel) forEachEntry(f func(b, i int, e *wheelEntry) (keep bool)) {
	w.flush()
	for b := range uint(wheelBags) {
		if !w.occupied(b) {
			continue
		}
		bag := w.bags[b]
		kept := bag[:0]
		for _, e := range bag {
			if e.tag != noTag && f(int(b), len(kept), &e) {
				kept = append(kept, e)
			}
		}
		w.bags[b] = kept
		if len(kept) == 0 {
			w.unmark(b)
		}
	}
	keep := func(entries []wheelEntry) []wheelEntry {
		kept := entries[:0]
		for _, e := range entries {
			if f(-1, 0, &e) {
				kept = append(kept, e)
			}
		}
		return kept
	}
	w.tombs = 0
	d := &w.due
	d.sortAll() // f may renumber the tags: the buckets' digits change
	// Kept at the run's start, so that a big run stays the array that
	// was mapped (the entries move down, never over one not yet read).
	d.run, d.next = keep(append(d.run[:0], d.run[d.next:]...)), 0
	d.sorted = len(d.run)
	d.late = keep(d.late)
	for i := len(d.late)/2 - 1; i >= 0; i-- {
		d.down(i)
	}
}

// sweep drops every stale entry, so that garbage cannot pile up (a timer
// removed after a cascade leaves one behind).
func (w *Wheel) sweep() {
	w.forEachEntry(func(b, i int, e *wheelEntry) bool {
		blk, j := w.timer(e.id)
		if e.tag != blk.nodes[j].ftag {
			return false
		}
		if b >= 0 {
			blk.loc[j] = bagLoc(uint(b), i)
		}
		return true
	})
	for _, blk := range w.blocks {
		clear(blk.flags[:])
	}
	w.dirty, w.garbage = 0, 0
}

// renumber maps the sequences of the pending timers, and the tags of their
// live entries, to 1, 2, ... in the same order, so that 32-bit sequences
// never wrap: it runs once every four billion schedulings. Order is all
// they say (which timer was scheduled first, which entry sorts first in
// the due run), and a moved timer keeps a tag unequal to its sequence.
func (w *Wheel) renumber() {
	w.sweep() // now every stored entry is a pending timer's live one
	var ids []ID
	var numbers []uint32
	w.forEachEntry(func(_, _ int, e *wheelEntry) bool {
		ids = append(ids, e.id)
		n := w.node(e.id)
		numbers = append(numbers, n.seq)
		if n.ftag != n.seq {
			numbers = append(numbers, n.ftag)
		}
		return true
	})
	slices.Sort(numbers)
	rank := func(x uint32) uint32 {
		r, _ := slices.BinarySearch(numbers, x)
		return uint32(r + 1)
	}
	for _, id := range ids {
		n := w.node(id)
		n.seq, n.ftag = rank(n.seq), rank(n.ftag)
	}
	w.forEachEntry(func(_, _ int, e *wheelEntry) bool {
		e.tag = w.node(e.id).ftag
		return true
	})
	w.seq = uint32(len(numbers))
	// Past seqLimit if the timers need it (a test's small limit; in use,
	// 2^31 pending timers), so that a renumbering always leaves sequences
	// to hand out and Reschedule's retry cannot recur.
	w.seqEnd = uint32(min(max(uint64(seqLimit), 2*uint64(w.seq)+1), math.MaxUint32))
}

// node returns a timer's node.
func (w *Wheel) node(id ID) *wheelNode {
	blk, i := w.timer(id)
	return &blk.nodes[i]
}
