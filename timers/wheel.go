package timers

import (
	"cmp"
	"math/bits"
	"slices"
)

const (
	tickBits    = 16 // a level-0 slot spans 2^16 ns (65.5 µs)
	levelBits   = 8
	levelSlots  = 1 << levelBits
	wheelLevels = (64 - tickBits + levelBits - 1) / levelBits // 6 levels cover every int64 deadline
	wheelBags   = wheelLevels * levelSlots

	deadID   = ^ID(0) // marks an entry removed in place
	idxBits  = 21     // a node's loc: bag<<idxBits | index in the bag
	locNoBag = ^uint32(0)

	// A timer's flags byte; zero while its live entry is its only one.
	flagMoved = 0x40 // moved later since its entry was filed
	staleMask = 0x3f // entries of it stored but stale (saturates)

	sweepSlack  = 1 << 16
	keepBagsCap = 4096 // an emptied slot keeps its array up to this many entries
)

// Wheel is an exact hierarchical timing wheel: six levels of 256 slots, each
// level 256 times coarser than the one below, level 0 at 65.5 µs per slot.
// It fires every timer at its exact deadline, equal deadlines in scheduling
// order, as the Queue contract requires: the timers of the tick being
// reached are sorted by (deadline, scheduling order) into a short due run.
//
// What makes it fast is what it leaves undone:
//
//   - Slots are arrays of 16-byte entries (deadline, ID, tag), not linked
//     lists. Cascading a slot copies its entries to lower levels without
//     looking at the timers themselves, and reaching a tick consults only a
//     byte per timer: a sequential copy instead of a cache miss per timer.
//   - Moving a timer later (a keep-alive reset, which every received segment
//     does) only rewrites its node and marks it moved; the old entry is
//     re-filed once, when its slot is reached.
//   - Removing a timer kills its entry in place when the node still knows
//     where it is (the usual case: the timer was not cascaded since it was
//     scheduled), and otherwise counts the entry as stale, to be dropped when
//     its slot is reached. Stale entries are swept when they outnumber live
//     timers.
//
// Per-level occupancy bitmaps find the next occupied slot with a few bit
// scans, so an idle hour is crossed in O(levels). Nodes (24 bytes), flags
// (1 byte) and entries (16) hold no pointers for the garbage collector to
// scan.
type Wheel struct {
	// pos is the current tick (deadlines in the order-preserving unsigned
	// form, shifted by tickBits): entries in the bags have ticks >= pos,
	// entries in the due run ticks <= pos.
	pos  uint64
	occ  [wheelBags / 64]uint64 // a bit per bag: occupied
	bags [wheelBags][]wheelEntry
	due  dueRun

	nodes   []wheelNode
	flags   []uint8
	dirty   int // timers whose flags are not zero
	seq     uint64
	live    int
	garbage int    // stale and killed entries still stored
	swept   uint64 // seq at the last sweep
}

// wheelEntry is a timer's place in a slot. Its tag is the low 32 bits of
// the scheduling sequence it was filed with; it is the timer's live entry
// while that equals the node's ftag.
type wheelEntry struct {
	when int64
	id   ID
	tag  uint32
}

// wheelNode is a timer's current deadline and scheduling sequence.
type wheelNode struct {
	when int64
	seq  uint64
	ftag uint32 // tag of its live entry (no entry has it once it is removed)
	loc  uint32 // where that entry was filed, or locNoBag; may be out of date
}

// NewWheel returns an empty wheel at time zero.
func NewWheel() *Wheel { return &Wheel{pos: tickOf(0)} }

// tickOf maps a deadline to its tick, preserving order for negative ones.
func tickOf(when int64) uint64 { return (uint64(when) ^ 1<<63) >> tickBits }

// Push implements Queue.
func (w *Wheel) Push(id ID, when int64) {
	for int(id) >= len(w.nodes) {
		w.nodes = append(w.nodes, wheelNode{loc: locNoBag})
		w.flags = append(w.flags, 0)
	}
	n := &w.nodes[id]
	n.when, n.seq = when, w.nextSeq()
	w.live++
	w.file(id, n)
	w.maybeSweep()
}

// Remove implements Queue.
func (w *Wheel) Remove(id ID) {
	n := &w.nodes[id]
	w.kill(id, n)
	n.ftag = uint32(w.nextSeq()) // a tag none of its entries has
	w.setFlags(id, w.flags[id]&^flagMoved)
	w.live--
	w.maybeSweep()
}

// Reschedule implements Queue. Moving a timer later, or to its own
// deadline, only updates its node.
func (w *Wheel) Reschedule(id ID, when int64) {
	n := &w.nodes[id]
	if when >= n.when {
		n.when, n.seq = when, w.nextSeq()
		w.setFlags(id, w.flags[id]|flagMoved)
		return
	}
	w.kill(id, n)
	w.setFlags(id, w.flags[id]&^flagMoved)
	n.when, n.seq = when, w.nextSeq()
	w.file(id, n)
	w.maybeSweep()
}

// Len implements Queue.
func (w *Wheel) Len() int { return w.live }

// setFlags updates a timer's flags, counting the timers with any.
func (w *Wheel) setFlags(id ID, f uint8) {
	switch old := w.flags[id]; {
	case old == 0 && f != 0:
		w.dirty++
	case old != 0 && f == 0:
		w.dirty--
	}
	w.flags[id] = f
}

// nextSeq returns the next scheduling sequence.
func (w *Wheel) nextSeq() uint64 {
	w.seq++
	return w.seq
}

// maybeSweep sweeps the stale entries when they outnumber the live timers
// (plus a slack that keeps sweeps rare in small queues), and every 2^31
// schedulings: a stale entry's 32-bit tag could otherwise come to equal its
// timer's new one.
func (w *Wheel) maybeSweep() {
	if w.garbage > w.live+sweepSlack || w.garbage > 0 && w.seq-w.swept >= 1<<31 {
		w.sweep()
	}
}

// file stores a pending node's entry: in the due run if its tick is
// already passed, else in the bag for its level and slot.
func (w *Wheel) file(id ID, n *wheelNode) {
	n.ftag = uint32(n.seq)
	n.loc = locNoBag
	t := tickOf(n.when)
	if t < w.pos {
		w.due.push(lateEntry{n.when, n.seq, id, n.ftag})
		return
	}
	b := bagOf(t, w.pos)
	w.bags[b] = append(w.bags[b], wheelEntry{n.when, id, n.ftag})
	w.mark(b)
	if i := len(w.bags[b]) - 1; i < 1<<idxBits {
		n.loc = uint32(b)<<idxBits | uint32(i)
	}
}

// bagOf returns the bag of a tick at or after pos: the level of the highest
// 8-bit digit in which they differ, the slot of that digit.
func bagOf(t, pos uint64) int {
	level := 0
	if diff := t ^ pos; diff != 0 {
		level = (63 - bits.LeadingZeros64(diff)) / levelBits
	}
	return level*levelSlots + int(t>>(levelBits*level))&(levelSlots-1)
}

// kill invalidates a pending timer's live entry: it truncates or marks the
// entry where the node says it is, or counts it as stale.
func (w *Wheel) kill(id ID, n *wheelNode) {
	if n.loc != locNoBag {
		b, i := int(n.loc>>idxBits), int(n.loc&(1<<idxBits-1))
		bag := w.bags[b]
		if i < len(bag) && bag[i].id == id && bag[i].tag == n.ftag {
			if i < len(bag)-1 {
				bag[i].id = deadID
				w.garbage++
				return
			}
			for i > 0 && bag[i-1].id == deadID { // drop killed entries that end up last
				i--
				w.garbage--
			}
			w.bags[b] = bag[:i]
			if i == 0 {
				w.unmark(b)
			}
			return
		}
	}
	if f := w.flags[id]; f&staleMask != staleMask {
		w.setFlags(id, f+1)
	}
	w.garbage++
}

// entryState is what checking an entry against its timer finds.
type entryState int

const (
	entryLive  entryState = iota
	entryStale            // dropped: its timer was removed or moved earlier
	entryMoved            // its timer was moved later: re-file it
)

// check tells whether e is its timer's live entry at its real deadline. It
// reads nothing of the timer's while no timer has been moved or left a
// stale entry (a workload that only schedules and fires), and the timer's
// node only if its flags say something changed.
func (w *Wheel) check(e wheelEntry) entryState {
	if w.dirty == 0 {
		return entryLive
	}
	f := w.flags[e.id]
	if f == 0 {
		return entryLive
	}
	if e.tag != w.nodes[e.id].ftag {
		if f&staleMask != staleMask {
			w.setFlags(e.id, f-1)
		}
		w.garbage--
		return entryStale
	}
	if f&flagMoved != 0 {
		w.setFlags(e.id, f&^flagMoved)
		return entryMoved
	}
	return entryLive
}

// Peek implements Queue. To find the exact earliest deadline it may cascade
// slots down and move the wheel's tick forward, never past a pending
// deadline.
func (w *Wheel) Peek() (int64, bool) {
	e, _, ok := w.first()
	return e.when, ok
}

// first settles the due run and returns its earliest live entry and whether
// it is the run's (rather than the late heap's).
func (w *Wheel) first() (e wheelEntry, inRun, ok bool) {
	for {
		if cur := w.currentBag(); w.occupied(cur) {
			// Timers filed at the current tick since it was reached
			// belong in the due run, ordered with the rest.
			w.drain(cur)
		}
		r, rok := w.runHead()
		l, lok := w.lateHead()
		if w.occupied(w.currentBag()) {
			continue // a head moved later, but within the current tick
		}
		switch {
		case rok && lok:
			if w.before(r, l) {
				return r, true, true
			}
			return l, false, true
		case rok:
			return r, true, true
		case lok:
			return l, false, true
		}
		if !w.advance() {
			return wheelEntry{}, false, false
		}
	}
}

// before orders two live entries by deadline, then scheduling sequence.
func (w *Wheel) before(a, b wheelEntry) bool {
	if a.when != b.when {
		return a.when < b.when
	}
	return w.nodes[a.id].seq < w.nodes[b.id].seq
}

// runHead drops or re-files the run's head until it is live.
func (w *Wheel) runHead() (wheelEntry, bool) {
	d := &w.due
	for d.next < len(d.run) {
		e := d.run[d.next]
		switch w.check(e) {
		case entryLive:
			return e, true
		case entryStale:
			d.popRun()
		case entryMoved:
			d.popRun()
			w.file(e.id, &w.nodes[e.id])
		}
	}
	return wheelEntry{}, false
}

// lateHead drops or re-files the late heap's top until it is live.
func (w *Wheel) lateHead() (wheelEntry, bool) {
	d := &w.due
	for len(d.late) > 0 {
		e := d.late[0].entry()
		switch w.check(e) {
		case entryLive:
			return e, true
		case entryStale:
			d.popLate()
		case entryMoved:
			d.popLate()
			w.file(e.id, &w.nodes[e.id])
		}
	}
	return wheelEntry{}, false
}

// PopDue implements Queue.
func (w *Wheel) PopDue(now int64) (ID, int64, bool) {
	e, inRun, ok := w.first()
	if !ok || e.when > now {
		return 0, 0, false
	}
	if inRun {
		w.due.popRun()
	} else {
		w.due.popLate()
	}
	w.live--
	return e.id, e.when, true
}

// currentBag is level 0's slot for the current tick.
func (w *Wheel) currentBag() int { return int(w.pos % levelSlots) }

func (w *Wheel) occupied(b int) bool {
	return w.occ[b/64]&(1<<(b%64)) != 0
}

func (w *Wheel) mark(b int)   { w.occ[b/64] |= 1 << (b % 64) }
func (w *Wheel) unmark(b int) { w.occ[b/64] &^= 1 << (b % 64) }

// advance moves to the next occupied slot when the due run is empty: a
// level-0 slot becomes the current tick and drains into the due run; a
// higher slot cascades to lower levels. It reports false if nothing is
// stored at all.
func (w *Wheel) advance() bool {
	for level := range wheelLevels {
		slot, ok := w.firstSlot(level)
		if !ok {
			continue
		}
		// Lower levels are empty and earlier slots of this one too, so
		// nothing is due before this slot starts.
		shift := uint(levelBits * level)
		w.pos = w.pos>>(shift+levelBits)<<(shift+levelBits) | uint64(slot)<<shift
		b := level*levelSlots + slot
		if level == 0 {
			w.drain(b)
		} else {
			w.cascade(b)
		}
		return true
	}
	return false
}

func (w *Wheel) firstSlot(level int) (int, bool) {
	for i, word := range w.occ[level*levelSlots/64 : (level+1)*levelSlots/64] {
		if word != 0 {
			return i*64 + bits.TrailingZeros64(word), true
		}
	}
	return 0, false
}

// cascade re-files a slot's entries relative to the new position, by the
// deadlines they carry, without checking them; they land on lower levels
// (or level 0's current slot).
func (w *Wheel) cascade(b int) {
	bag := w.bags[b]
	w.bags[b] = nil
	w.unmark(b)
	for _, e := range bag {
		if e.id == deadID {
			w.garbage--
			continue
		}
		nb := bagOf(tickOf(e.when), w.pos)
		w.bags[nb] = append(w.bags[nb], e)
		w.mark(nb)
	}
	w.recycle(b, bag)
}

// recycle keeps an emptied slot's array for the timers it gets next, unless
// it is large (a herd passed through) and better left to the collector.
func (w *Wheel) recycle(b int, bag []wheelEntry) {
	if cap(bag) <= keepBagsCap {
		w.bags[b] = bag[:0]
	}
}

// drain moves the current tick's level-0 slot into the due run: stale
// entries are dropped, moved ones re-filed at their real deadline. Into an
// empty due run the slot's timers go as a sorted run; otherwise (timers
// filed at the current tick after it was reached) into the late heap.
func (w *Wheel) drain(b int) {
	bag := w.bags[b]
	w.bags[b] = nil
	w.unmark(b)
	merge := w.due.len() > 0
	for _, e := range bag {
		if e.id == deadID {
			w.garbage--
			continue
		}
		switch w.check(e) {
		case entryStale:
			continue
		case entryMoved:
			n := &w.nodes[e.id]
			if tickOf(n.when) > w.pos {
				w.file(e.id, n)
				continue
			}
			n.ftag, n.loc = uint32(n.seq), locNoBag
			e = wheelEntry{n.when, e.id, n.ftag}
		}
		if merge {
			w.due.push(lateEntry{e.when, w.nodes[e.id].seq, e.id, e.tag})
		} else {
			w.due.run = append(w.due.run, e)
		}
	}
	if !merge && !slices.IsSortedFunc(w.due.run, w.compare) {
		slices.SortFunc(w.due.run, w.compare)
	}
	w.recycle(b, bag)
}

func (w *Wheel) compare(a, b wheelEntry) int {
	switch {
	case a.when != b.when:
		return cmp.Compare(a.when, b.when)
	case a.id == b.id:
		return 0
	}
	return cmp.Compare(w.nodes[a.id].seq, w.nodes[b.id].seq)
}

// sweep drops every stale entry, so that garbage cannot pile up (a timer
// removed after a cascade leaves one behind) and no stale tag lives long
// enough to come back.
func (w *Wheel) sweep() {
	live := func(e wheelEntry) bool {
		return e.id != deadID && e.tag == w.nodes[e.id].ftag
	}
	for b := range w.bags {
		bag := w.bags[b][:0]
		for _, e := range w.bags[b] {
			if live(e) {
				if i := len(bag); i < 1<<idxBits {
					w.nodes[e.id].loc = uint32(b)<<idxBits | uint32(i)
				}
				bag = append(bag, e)
			}
		}
		w.bags[b] = bag
		if len(bag) == 0 {
			w.unmark(b)
		}
	}
	d := &w.due
	d.run = slices.DeleteFunc(d.run[d.next:], func(e wheelEntry) bool { return !live(e) })
	d.next = 0
	d.late = slices.DeleteFunc(d.late, func(e lateEntry) bool { return !live(e.entry()) })
	for i := len(d.late)/2 - 1; i >= 0; i-- {
		d.down(i)
	}
	for i, f := range w.flags {
		w.setFlags(ID(i), f&^staleMask)
	}
	w.garbage = 0
	w.swept = w.seq
}

// dueRun holds the entries of the ticks already reached: a run sorted when
// its slot drained, and a binary heap for the few that arrive afterwards
// (timers filed at or before the current tick), so that neither a slot of a
// million timers nor a stream of late arrivals costs more than O(log n).
type dueRun struct {
	run  []wheelEntry
	next int // index of the run's first entry
	late []lateEntry
}

// lateEntry is an entry of the late heap, with the full scheduling
// sequence it was filed with, so the heap's order never changes under it.
type lateEntry struct {
	when int64
	seq  uint64
	id   ID
	tag  uint32
}

func (l lateEntry) entry() wheelEntry { return wheelEntry{l.when, l.id, l.tag} }

func (l lateEntry) less(o lateEntry) bool {
	return l.when < o.when || l.when == o.when && l.seq < o.seq
}

func (d *dueRun) len() int { return len(d.run) - d.next + len(d.late) }

func (d *dueRun) popRun() {
	d.next++
	if d.next == len(d.run) {
		d.run, d.next = d.run[:0], 0
	}
}

func (d *dueRun) popLate() {
	last := len(d.late) - 1
	d.late[0] = d.late[last]
	d.late = d.late[:last]
	if last > 0 {
		d.down(0)
	}
}

func (d *dueRun) push(e lateEntry) {
	d.late = append(d.late, e)
	i := len(d.late) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !e.less(d.late[p]) {
			break
		}
		d.late[i] = d.late[p]
		i = p
	}
	d.late[i] = e
}

func (d *dueRun) down(i int) {
	n := len(d.late)
	e := d.late[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && d.late[c+1].less(d.late[c]) {
			c++
		}
		if !d.late[c].less(e) {
			break
		}
		d.late[i] = d.late[c]
		i = c
	}
	d.late[i] = e
}
