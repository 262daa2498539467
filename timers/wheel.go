package timers

import (
	"math/bits"
	"slices"
)

const (
	wheelBits   = 6
	wheelSlots  = 1 << wheelBits
	wheelLevels = (63 + wheelBits - 1) / wheelBits // 11 levels cover every int64 deadline
	nilNode     = -1
	locNone     = -1 // not pending
	locEarly    = -2 // in the early list
)

// Wheel is an exact hierarchical timing wheel: 11 levels of 64 slots, each
// level 64 times coarser than the one below, level 0 one nanosecond per
// slot, so every timer fires at its exact deadline. A timer lives at the
// level of the highest 6-bit digit in which its deadline differs from the
// wheel's position; when the position reaches a slot of a higher level, the
// slot's timers cascade down. Per-level occupancy bitmaps find the next
// occupied slot with one instruction, so an idle hour is crossed in
// O(levels). Timers live in an arena indexed by ID, linked by indices:
// nothing in it is a pointer for the garbage collector to scan.
//
// Within a slot, timers stay in scheduling order, so equal deadlines fire in
// the order they were scheduled, as the Queue contract requires.
type Wheel struct {
	pos   int64 // every deadline in the levels is >= pos
	occ   [wheelLevels]uint64
	head  [wheelLevels][wheelSlots]int32
	tail  [wheelLevels][wheelSlots]int32
	nodes []wheelNode
	// early holds timers scheduled before pos, which Peek may have moved
	// ahead of the caller's time; sorted by (deadline, sequence).
	early []ID
	seq   uint64
	count int
}

type wheelNode struct {
	when       int64
	seq        uint64
	next, prev int32
	loc        int16 // level*64+slot, or locNone, locEarly
}

// NewWheel returns an empty wheel at time zero.
func NewWheel() *Wheel {
	w := &Wheel{}
	for l := range w.head {
		for s := range w.head[l] {
			w.head[l][s], w.tail[l][s] = nilNode, nilNode
		}
	}
	return w
}

func (w *Wheel) node(id ID) *wheelNode {
	for int(id) >= len(w.nodes) {
		w.nodes = append(w.nodes, wheelNode{loc: locNone, next: nilNode, prev: nilNode})
	}
	return &w.nodes[id]
}

// Push implements Queue.
func (w *Wheel) Push(id ID, when int64) {
	n := w.node(id)
	w.seq++
	n.when, n.seq = when, w.seq
	w.place(id)
	w.count++
}

// Remove implements Queue.
func (w *Wheel) Remove(id ID) {
	w.unlink(id)
	w.count--
}

// Reschedule implements Queue. A timer whose new deadline falls in the slot
// it is in (most keep-alive resets: a higher level's slot spans minutes to
// hours) only moves to the slot's end, which keeps the slot in scheduling
// order.
func (w *Wheel) Reschedule(id ID, when int64) {
	n := &w.nodes[id]
	w.seq++
	if n.loc >= 0 && when >= w.pos && int(n.loc) == slotOf(when, w.pos) {
		n.when, n.seq = when, w.seq
		level, slot := int(n.loc)/wheelSlots, int(n.loc)%wheelSlots
		if w.tail[level][slot] != int32(id) {
			w.detach(id, level, slot)
			w.append(id, level, slot)
		}
		return
	}
	w.unlink(id)
	n.when, n.seq = when, w.seq
	w.place(id)
}

// slotOf returns level*64+slot for a deadline at or after pos.
func slotOf(when, pos int64) int {
	level := 0
	if diff := uint64(when ^ pos); diff != 0 {
		level = (63 - bits.LeadingZeros64(diff)) / wheelBits
	}
	return level*wheelSlots + int(when>>(wheelBits*level))&(wheelSlots-1)
}

// Len implements Queue.
func (w *Wheel) Len() int { return w.count }

// place files a node under its level and slot, or in the early list.
func (w *Wheel) place(id ID) {
	n := &w.nodes[id]
	if n.when < w.pos {
		i, _ := slices.BinarySearchFunc(w.early, id, func(a, b ID) int { return w.compare(a, b) })
		w.early = slices.Insert(w.early, i, id)
		n.loc = locEarly
		return
	}
	loc := slotOf(n.when, w.pos)
	n.loc = int16(loc)
	// Appending keeps every slot in scheduling order: a pushed timer has
	// the highest sequence yet, and a cascade re-files an ordered slot into
	// levels that are all empty (Peek cascades the lowest occupied level).
	w.append(id, loc/wheelSlots, loc%wheelSlots)
}

// append links a node at the end of a slot.
func (w *Wheel) append(id ID, level, slot int) {
	n := &w.nodes[id]
	w.occ[level] |= 1 << slot
	n.prev, n.next = w.tail[level][slot], nilNode
	if n.prev == nilNode {
		w.head[level][slot] = int32(id)
	} else {
		w.nodes[n.prev].next = int32(id)
	}
	w.tail[level][slot] = int32(id)
}

// detach unlinks a node from a slot's list (leaving its loc alone).
func (w *Wheel) detach(id ID, level, slot int) {
	n := &w.nodes[id]
	if n.prev == nilNode {
		w.head[level][slot] = n.next
	} else {
		w.nodes[n.prev].next = n.next
	}
	if n.next == nilNode {
		w.tail[level][slot] = n.prev
	} else {
		w.nodes[n.next].prev = n.prev
	}
	if w.head[level][slot] == nilNode {
		w.occ[level] &^= 1 << slot
	}
}

func (w *Wheel) compare(a, b ID) int {
	na, nb := &w.nodes[a], &w.nodes[b]
	switch {
	case na.when != nb.when:
		if na.when < nb.when {
			return -1
		}
		return 1
	case na.seq < nb.seq:
		return -1
	case na.seq > nb.seq:
		return 1
	}
	return 0
}

// unlink takes a pending node out of its slot or the early list.
func (w *Wheel) unlink(id ID) {
	n := &w.nodes[id]
	if n.loc == locEarly {
		i, _ := slices.BinarySearchFunc(w.early, id, func(a, b ID) int { return w.compare(a, b) })
		w.early = slices.Delete(w.early, i, i+1)
		n.loc = locNone
		return
	}
	w.detach(id, int(n.loc)/wheelSlots, int(n.loc)%wheelSlots)
	n.next, n.prev, n.loc = nilNode, nilNode, locNone
}

// Peek implements Queue. To find the exact earliest deadline it may cascade
// higher-level slots down, moving the wheel's position forward to the start
// of the slot it cascades, never past a pending deadline.
func (w *Wheel) Peek() (int64, bool) {
	if len(w.early) > 0 {
		return w.nodes[w.early[0]].when, true
	}
	for {
		if w.occ[0] != 0 {
			// Level 0 is exact: its slots are the nanoseconds of pos's
			// 64-ns block, and those before pos are empty.
			slot := bits.TrailingZeros64(w.occ[0])
			return w.pos&^(wheelSlots-1) | int64(slot), true
		}
		level := 1
		for level < wheelLevels && w.occ[level] == 0 {
			level++
		}
		if level == wheelLevels {
			return 0, false
		}
		// Lower levels are empty and earlier slots of this level too, so
		// nothing is due before this slot starts: move there and cascade.
		slot := bits.TrailingZeros64(w.occ[level])
		shift := uint(wheelBits * level)
		w.pos = w.pos>>(shift+wheelBits)<<(shift+wheelBits) | int64(slot)<<shift
		w.cascade(level, slot)
	}
}

// cascade re-files every timer of a slot relative to the new position; they
// all land on lower levels.
func (w *Wheel) cascade(level, slot int) {
	id := w.head[level][slot]
	w.head[level][slot], w.tail[level][slot] = nilNode, nilNode
	w.occ[level] &^= 1 << slot
	for id != nilNode {
		next := w.nodes[id].next
		w.nodes[id].next, w.nodes[id].prev = nilNode, nilNode
		w.place(ID(id))
		id = next
	}
}

// PopDue implements Queue.
func (w *Wheel) PopDue(now int64) (ID, int64, bool) {
	when, ok := w.Peek()
	if !ok || when > now {
		return 0, 0, false
	}
	var id ID
	if len(w.early) > 0 {
		id = w.early[0]
	} else {
		id = ID(w.head[0][when&(wheelSlots-1)])
	}
	w.unlink(id)
	w.count--
	return id, when, true
}
