package timers

// Filing a Wheel's entries in its inbox and slots, and taking them out in place.

import (
	"math/bits"
	"slices"
)

// stash puts a pending timer's entry, tagged with its sequence, in the
// inbox, which the caller has flushed if it was full, and returns its loc.
func (w *Wheel) stash(id ID, when int64, tag uint32) uint32 {
	x := w.inboxN % inboxLen
	w.inbox[x] = wheelEntry{when, id, tag}
	w.inboxN = x + 1
	return inboxBag<<idxBits | x
}

// flush files the inbox's entries. An entry whose bag has room is
// appended here, as put would (put is not inlined, and a call per entry
// cost a fifth of the filing); the rest go through file.
func (w *Wheel) flush() {
	pos := w.pos
	for _, e := range w.inbox[:w.inboxN] {
		blk, i := w.timer(e.id)
		if t := tickOf(e.when); t >= pos {
			b := bagOf(t, pos) % wheelBags
			bag := &w.bags[b]
			if n := len(*bag); n < cap(*bag) {
				*bag = (*bag)[:n+1]
				(*bag)[n] = e
				w.mark(b)
				blk.loc[i] = bagLoc(b, n)
				continue
			}
		}
		blk.loc[i] = w.file(e.id, e.when, e.tag)
	}
	w.inboxN = 0
}

// file stores a pending timer's entry, tagged with its sequence: in the due
// run if its tick is already passed, else in the bag for its level and
// slot. It returns where the entry can be found again.
func (w *Wheel) file(id ID, when int64, tag uint32) uint32 {
	t := tickOf(when)
	if t < w.pos {
		w.due.push(wheelEntry{when, id, tag})
		return locNoBag
	}
	b := bagOf(t, w.pos)
	return bagLoc(b, w.put(b, wheelEntry{when, id, tag}))
}

// bagLoc is the loc of a bag's i-th entry, or locNoBag if a loc cannot
// hold i.
func bagLoc(b uint, i int) uint32 {
	if i >= 1<<idxBits {
		return locNoBag
	}
	return uint32(b)<<idxBits | uint32(i)
}

// relocated tells the timer of e, just moved from one loc to another, where it
// went, if its loc said where it was (or said nothing: from is locNoBag
// past the last index a loc holds). A loc is only a hint, checked against
// the entry's ID and tag before use, so pointing a timer at a stale entry
// of its own costs nothing.
func (w *Wheel) relocated(e wheelEntry, from, to uint32) {
	if blk, i := w.timer(e.id); blk.loc[i] == from {
		blk.loc[i] = to
	}
}

// put appends an entry to a bag, marks the bag occupied and returns the
// entry's index.
func (w *Wheel) put(b uint, e wheelEntry) int {
	b %= wheelBags
	// Through a pointer, so that appending stores the length only: storing
	// the whole slice (its pointer behind a write-barrier check) made
	// filing a fifth slower.
	bag := &w.bags[b]
	n := len(*bag)
	if n == cap(*bag) {
		*bag = w.makeRoom(b, *bag)
		n = len(*bag)
	}
	*bag = (*bag)[:n+1]
	(*bag)[n] = e
	// Marked whether or not it was empty: testing for that first is a
	// branch a cascade into level 0, where about half the slots are
	// empty at ten million timers, mispredicts, and the fire at 10^7
	// took 34 ns instead of 29.5 (go test ./bench -run XXX -bench
	// 'Micro/op=fire/n=10000000/queue=wheel' -bench.large, alternating).
	w.mark(b)
	return n
}

// makeRoom gives full bag b room for one more entry: by dropping its
// tombstones if they are at least a quarter of it, else by growing it.
// Dropping them here is what bounds them: a bag whose timers are
// scheduled and cancelled over and over (far deadlines, never reached)
// would otherwise grow by an entry per cancel. Kept out of line: it is
// put's rare path, and put runs in every cascade's loop.
//
//go:noinline
func (w *Wheel) makeRoom(b uint, bag []wheelEntry) []wheelEntry {
	if len(bag) > 0 && w.tombs > 0 && 4*countTombs(bag) >= len(bag) {
		return w.compactTombs(b, bag)
	}
	return w.growBag(bag, w.live+w.garbage)
}

// growBag gives a full bag room: at least double a small array, a
// quarter more of a middling one, and past a million bytes double again,
// so that a slot holding a herd is copied fewer times, but not past most
// (the entries stored, most), so that ten million timers in one slot do
// not take 17 million places. slices.Grow rounds that up as append does
// (by 192 entries more, then to the allocator's size class, whose rest
// would be waste anyway) and clears only the places past the copy, not
// the whole new array. Against exact quarter steps cleared whole, an
// entry is copied about twice instead of four times: scheduling a million
// timers into a wheel of a million went from 1.53x heap4's time to 1.14x
// (kasim bench --n 1e6,1e7 --ops 1000000 --count 3 --queues
// wheel,heap4,runtime), and a wheel holds 44 bytes a timer at 10^6 (39
// before) and 39 at 10^7 (42). From bigBagLen entries on, the array is a
// big one (bigArrays), and a big array it replaces is unmapped.
func (w *Wheel) growBag(bag []wheelEntry, most int) []wheelEntry {
	c := cap(bag)
	switch {
	case c < 4:
		c = 4
	case c < 256:
		c *= 2
	case c < 1<<16:
		c += c / 4
	default:
		c = min(2*c, max(c+c/4, most))
	}
	if c < bigBagLen {
		return slices.Grow(bag, c-len(bag))
	}
	grown := append(w.newBig(c), bag...)
	if cap(bag) >= bigBagLen {
		w.dropBig(bag)
	}
	return grown
}

// bagOf returns the bag of a tick at or after pos: the level of the highest
// 12-bit digit in which they differ, the slot of that digit.
func bagOf(t, pos uint64) uint {
	level := uint(0)
	if diff := t ^ pos; diff != 0 {
		level = uint(63-bits.LeadingZeros64(diff)) / levelBits
	}
	return level*levelSlots + uint(t>>(levelBits*level))%levelSlots
}

// dropLastStashed removes a timer's entry if it is the inbox's last one.
func (w *Wheel) dropLastStashed(id ID, tag, loc uint32) bool {
	last := w.inboxN - 1
	if w.inboxN == 0 || loc != inboxBag<<idxBits|last || w.inbox[last%inboxLen].id != id || w.inbox[last%inboxLen].tag != tag {
		return false
	}
	w.inboxN = last
	return true
}

// nearby reports whether a loc is in the inbox or on level 0, where an
// entry is soon read anyway.
func (w *Wheel) nearby(loc uint32) bool {
	b := loc >> idxBits
	return b < levelSlots || b == inboxBag
}

// takeOut takes a pending timer's live entry out where its loc says it
// is, and reports false if the entry has moved on since (a cascade, the
// due run). From the inbox, whose order does not matter, the last entry
// fills the hole. In a bag the entry becomes a tombstone (tag noTag),
// dropped when the bag drains, cascades or next grows: filling the hole
// there would read the bag's tail and rewrite the location of the timer
// whose entry moves, two more cache misses on a cancel than the one that
// reading the entry itself costs.
func (w *Wheel) takeOut(id ID, blk *wheelBlock, i int) bool {
	loc := blk.loc[i]
	if loc == locNoBag {
		return false
	}
	b, x := uint(loc>>idxBits)%wheelBags, int(loc&(1<<idxBits-1))
	entries := w.inbox[:w.inboxN]
	if b != inboxBag {
		entries = w.bags[b]
	}
	if x >= len(entries) || entries[x].id != id || entries[x].tag != blk.nodes[i].ftag {
		return false
	}
	if b != inboxBag {
		entries[x].tag = noTag
		w.tombs++
		return true
	}
	last := len(entries) - 1
	if x < last {
		entries[x] = entries[last]
		w.relocated(entries[x], bagLoc(b, last), bagLoc(b, x))
	}
	w.inboxN = uint32(last)
	return true
}

// withoutTombs drops a bag's tombstones, keeping the order of the rest
// (a bag filed in deadline order sorts at once when it drains), for a
// bag whose entries are about to move anyway: their locs are rewritten
// or go out of date regardless.
func (w *Wheel) withoutTombs(bag []wheelEntry) []wheelEntry {
	if w.tombs == 0 {
		return bag // inlined: the fire's every drain passes here
	}
	return w.dropTombs(bag)
}

// dropTombs is withoutTombs once there are tombstones.
func (w *Wheel) dropTombs(bag []wheelEntry) []wheelEntry {
	kept := bag[:0]
	for _, e := range bag {
		if e.tag != noTag {
			kept = append(kept, e)
		}
	}
	w.tombs -= len(bag) - len(kept)
	return kept
}

// compactTombs drops the tombstones of bag b, which stays where it is: the
// last entries fill the holes and their timers are told where they went,
// so that the entries that move are at most as many as the tombstones.
func (w *Wheel) compactTombs(b uint, bag []wheelEntry) []wheelEntry {
	end := len(bag)
	for i := 0; i < end; {
		if bag[i].tag != noTag {
			i++
			continue
		}
		w.tombs--
		end--
		if i < end {
			bag[i] = bag[end] // a tombstone too, maybe: i is looked at again
			if bag[i].tag != noTag {
				w.relocated(bag[i], bagLoc(b, end), bagLoc(b, i))
			}
		}
	}
	return bag[:end]
}

// countTombs counts a bag's tombstones.
func countTombs(bag []wheelEntry) int {
	k := 0
	for _, e := range bag {
		if e.tag == noTag {
			k++
		}
	}
	return k
}

func (w *Wheel) occupied(b uint) bool {
	b %= wheelBags
	return w.occ[b/64]&(1<<(b%64)) != 0
}

func (w *Wheel) mark(b uint) {
	b %= wheelBags
	w.occ[b/64] |= 1 << (b % 64)
	w.summary[b/levelSlots] |= 1 << (b / 64 % 64)
}

func (w *Wheel) unmark(b uint) {
	b %= wheelBags
	if w.occ[b/64] &^= 1 << (b % 64); w.occ[b/64] == 0 {
		w.summary[b/levelSlots] &^= 1 << (b / 64 % 64)
	}
}
