package timers

import (
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

	sweepSlack  = 1 << 16
	keepBagsCap = 4096 // an emptied slot keeps its array up to this many entries
)

// Wheel is an exact hierarchical timing wheel: six levels of 256 slots, each
// level 256 times coarser than the one below, level 0 at 65.5 µs per slot.
// It fires every timer at its exact deadline, equal deadlines in scheduling
// order, as the Queue contract requires: the timers of the slot being
// reached are sorted by (deadline, scheduling order) into a short due run.
//
// What makes it fast is what it leaves undone:
//
//   - Slots are arrays of 16-byte entries (deadline, ID, generation), not
//     linked lists, and cascading a slot to lower levels moves entries from
//     one array to others without touching the timers' nodes: a sequential
//     copy instead of a cache miss per timer.
//   - Moving a timer later (a keep-alive reset, which every received segment
//     does) only rewrites its node; the stale entry is moved on when its slot
//     is reached, found out by its deadline, and re-filed once.
//   - Removing a timer kills its entry in place when the node still knows
//     where it is (the usual case: the timer was not cascaded since it was
//     scheduled) and otherwise just bumps the node's generation, which makes
//     the old entry recognisably stale when its slot is reached. Stale
//     entries are counted and swept when they outnumber live timers.
//
// Per-level occupancy bitmaps find the next occupied slot with a few bit
// scans, so an idle hour is crossed in O(levels). Nodes (24 bytes) and
// entries (16) hold no pointers for the garbage collector to scan.
type Wheel struct {
	// pos is the current tick (deadlines in the order-preserving unsigned
	// form, shifted by tickBits): entries in the bags have ticks >= pos,
	// entries in the due run ticks <= pos.
	pos  uint64
	occ  [wheelLevels][levelSlots / 64]uint64
	bags [wheelBags][]wheelEntry
	due  dueRun

	nodes   []wheelNode
	seq     uint64
	live    int
	garbage int // entries of removed or moved-earlier timers still stored
}

// wheelEntry is a timer's place in a slot. It is valid while gen equals its
// node's gen; its deadline may be earlier than the node's (a lazy move).
type wheelEntry struct {
	when int64
	id   ID
	gen  uint32
}

// wheelNode is a timer's current state. gen is odd while it is pending.
type wheelNode struct {
	when int64
	seq  uint64
	gen  uint32
	loc  uint32 // where its entry was placed, or locNoBag; may be out of date
}

// NewWheel returns an empty wheel at time zero.
func NewWheel() *Wheel { return &Wheel{pos: tickOf(0)} }

// tickOf maps a deadline to its tick, preserving order for negative ones.
func tickOf(when int64) uint64 { return (uint64(when) ^ 1<<63) >> tickBits }

// Push implements Queue.
func (w *Wheel) Push(id ID, when int64) {
	for int(id) >= len(w.nodes) {
		w.nodes = append(w.nodes, wheelNode{loc: locNoBag})
	}
	n := &w.nodes[id]
	w.bumpGen(n, 1)
	w.seq++
	n.when, n.seq = when, w.seq
	w.live++
	w.file(id, n)
}

// Remove implements Queue.
func (w *Wheel) Remove(id ID) {
	n := &w.nodes[id]
	w.kill(id, n)
	w.bumpGen(n, 1)
	w.live--
}

// Reschedule implements Queue. Moving a timer later, or to its own
// deadline, only updates its node.
func (w *Wheel) Reschedule(id ID, when int64) {
	n := &w.nodes[id]
	w.seq++
	if when >= n.when {
		n.when, n.seq = when, w.seq
		return
	}
	w.kill(id, n)
	w.bumpGen(n, 2)
	n.when, n.seq = when, w.seq
	w.file(id, n)
}

// Len implements Queue.
func (w *Wheel) Len() int { return w.live }

// bumpGen advances a node's generation, and sweeps the stored garbage when
// it outnumbers the live timers (plus a slack that keeps sweeps rare for
// small queues). A stale entry could pass for valid again only after 2^32
// bumps of its node; every 2^30 the garbage is swept, so none lives that
// long.
func (w *Wheel) bumpGen(n *wheelNode, by uint32) {
	n.gen += by
	if w.garbage > w.live+sweepSlack || n.gen&(1<<30-1) < by && w.garbage > 0 {
		w.sweep()
	}
}

// file stores a pending node's entry: in the due run if its tick is
// already passed, else in the bag for its level and slot.
func (w *Wheel) file(id ID, n *wheelNode) {
	t := tickOf(n.when)
	if t < w.pos {
		w.due.push(dueEntry{n.when, n.seq, id, n.gen})
		n.loc = locNoBag
		return
	}
	b := bagOf(t, w.pos)
	w.bags[b] = append(w.bags[b], wheelEntry{n.when, id, n.gen})
	w.occ[b/levelSlots][b%levelSlots/64] |= 1 << (b % 64)
	n.loc = locNoBag
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

// kill invalidates a pending node's entry: it truncates or marks the entry
// where the node says it is, or leaves it to be found stale later.
func (w *Wheel) kill(id ID, n *wheelNode) {
	if n.loc != locNoBag {
		b, i := int(n.loc>>idxBits), int(n.loc&(1<<idxBits-1))
		bag := w.bags[b]
		if i < len(bag) && bag[i].id == id && bag[i].gen == n.gen {
			if i < len(bag)-1 {
				bag[i].id = deadID
				w.garbage++
				return
			}
			for i > 0 && bag[i-1].id == deadID { // drop dead entries that end up last
				i--
				w.garbage--
			}
			w.bags[b] = bag[:i]
			if i == 0 {
				w.occ[b/levelSlots][b%levelSlots/64] &^= 1 << (b % 64)
			}
			return
		}
	}
	w.garbage++
}

// Peek implements Queue. To find the exact earliest deadline it may cascade
// slots down and move the wheel's tick forward, never past a pending
// deadline.
func (w *Wheel) Peek() (int64, bool) {
	for {
		if w.occupied(bagOf(w.pos, w.pos)) {
			// Timers filed at the current tick since it was reached
			// belong in the due run, ordered with the rest.
			w.drain(bagOf(w.pos, w.pos))
		}
		e, ok := w.due.first()
		if !ok {
			if !w.advance() {
				return 0, false
			}
			continue
		}
		n := &w.nodes[e.id]
		switch {
		case e.gen != n.gen: // removed or moved earlier since
			w.due.pop()
			w.garbage--
		case e.when != n.when || e.seq != n.seq: // moved later since
			w.due.pop()
			w.file(e.id, n)
		default:
			return e.when, true
		}
	}
}

// PopDue implements Queue.
func (w *Wheel) PopDue(now int64) (ID, int64, bool) {
	when, ok := w.Peek()
	if !ok || when > now {
		return 0, 0, false
	}
	e := w.due.pop()
	n := &w.nodes[e.id]
	n.loc = locNoBag
	w.bumpGen(n, 1)
	w.live--
	return e.id, when, true
}

func (w *Wheel) occupied(b int) bool {
	return w.occ[b/levelSlots][b%levelSlots/64]&(1<<(b%64)) != 0
}

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
	for i, word := range w.occ[level] {
		if word != 0 {
			return i*64 + bits.TrailingZeros64(word), true
		}
	}
	return 0, false
}

// cascade re-files a slot's entries relative to the new position, by the
// deadlines they carry, without reading their nodes; they land on lower
// levels (or level 0's current slot).
func (w *Wheel) cascade(b int) {
	bag := w.bags[b]
	w.bags[b] = nil
	w.occ[b/levelSlots][b%levelSlots/64] &^= 1 << (b % 64)
	for _, e := range bag {
		if e.id == deadID {
			w.garbage--
			continue
		}
		nb := bagOf(tickOf(e.when), w.pos)
		w.bags[nb] = append(w.bags[nb], e)
		w.occ[nb/levelSlots][nb%levelSlots/64] |= 1 << (nb % 64)
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

// drain moves the current tick's level-0 slot into the due run, checking
// each entry against its node: stale ones are dropped, lazily moved ones
// re-filed at their real deadline.
func (w *Wheel) drain(b int) {
	bag := w.bags[b]
	w.bags[b] = nil
	w.occ[0][b/64] &^= 1 << (b % 64)
	merge := w.due.len() > 0
	start := len(w.due.run)
	for _, e := range bag {
		if e.id == deadID {
			w.garbage--
			continue
		}
		n := &w.nodes[e.id]
		if e.gen != n.gen {
			w.garbage--
			continue
		}
		n.loc = locNoBag
		if tickOf(n.when) > w.pos {
			w.file(e.id, n)
			continue
		}
		d := dueEntry{n.when, n.seq, e.id, n.gen}
		if merge {
			w.due.push(d)
		} else {
			w.due.run = append(w.due.run, d)
		}
	}
	if !merge {
		if run := w.due.run[start:]; !slices.IsSortedFunc(run, dueEntry.compare) {
			slices.SortFunc(run, dueEntry.compare)
		}
	}
	w.recycle(b, bag)
}

// sweep drops every stale entry, so that garbage cannot pile up (a timer
// cancelled after a cascade leaves one behind) and a generation cannot wrap
// onto a stale entry.
func (w *Wheel) sweep() {
	for b := range w.bags {
		bag := w.bags[b][:0]
		for _, e := range w.bags[b] {
			if e.id != deadID && e.gen == w.nodes[e.id].gen {
				if i := len(bag); i < 1<<idxBits {
					w.nodes[e.id].loc = uint32(b)<<idxBits | uint32(i)
				}
				bag = append(bag, e)
			}
		}
		w.bags[b] = bag
		if len(bag) == 0 {
			w.occ[b/levelSlots][b%levelSlots/64] &^= 1 << (b % 64)
		}
	}
	w.due.filter(func(e dueEntry) bool { return e.gen == w.nodes[e.id].gen })
	w.garbage = 0
}

// dueEntry is a timer whose tick has been reached, with the scheduling
// sequence that orders equal deadlines.
type dueEntry struct {
	when int64
	seq  uint64
	id   ID
	gen  uint32
}

func (a dueEntry) compare(b dueEntry) int {
	switch {
	case a.when < b.when:
		return -1
	case a.when > b.when:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

// dueRun holds the timers of the ticks already reached: a sorted run, made
// when a slot drains, and a binary heap for the few that arrive afterwards
// (timers scheduled for the current tick), so that neither a slot of a
// million timers nor a stream of late arrivals costs more than O(log n).
type dueRun struct {
	run  []dueEntry
	next int        // index of the run's first entry
	late []dueEntry // a binary min-heap
}

func (d *dueRun) len() int { return len(d.run) - d.next + len(d.late) }

func (d *dueRun) first() (dueEntry, bool) {
	switch {
	case d.next < len(d.run) && (len(d.late) == 0 || d.run[d.next].compare(d.late[0]) < 0):
		return d.run[d.next], true
	case len(d.late) > 0:
		return d.late[0], true
	}
	return dueEntry{}, false
}

// pop removes the head; the run is never empty here without late entries.
func (d *dueRun) pop() dueEntry {
	if d.next < len(d.run) && (len(d.late) == 0 || d.run[d.next].compare(d.late[0]) < 0) {
		e := d.run[d.next]
		d.next++
		if d.next == len(d.run) {
			d.run, d.next = d.run[:0], 0
		}
		return e
	}
	e := d.late[0]
	last := len(d.late) - 1
	d.late[0] = d.late[last]
	d.late = d.late[:last]
	d.down(0)
	return e
}

func (d *dueRun) push(e dueEntry) {
	d.late = append(d.late, e)
	i := len(d.late) - 1
	for i > 0 {
		p := (i - 1) / 2
		if d.late[p].compare(e) <= 0 {
			break
		}
		d.late[i] = d.late[p]
		i = p
	}
	d.late[i] = e
}

func (d *dueRun) down(i int) {
	n := len(d.late)
	if n == 0 {
		return
	}
	e := d.late[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && d.late[c+1].compare(d.late[c]) < 0 {
			c++
		}
		if e.compare(d.late[c]) <= 0 {
			break
		}
		d.late[i] = d.late[c]
		i = c
	}
	d.late[i] = e
}

// filter keeps the entries keep accepts.
func (d *dueRun) filter(keep func(dueEntry) bool) {
	d.run = slices.DeleteFunc(d.run[d.next:], func(e dueEntry) bool { return !keep(e) })
	d.next = 0
	d.late = slices.DeleteFunc(d.late, func(e dueEntry) bool { return !keep(e) })
	for i := len(d.late)/2 - 1; i >= 0; i-- {
		d.down(i)
	}
}
