package timers

// Reaching a Wheel's next ticks: settling its head, advancing, cascading, draining.

import "math/bits"

// entryState is what checking an entry against its timer finds.
type entryState int

const (
	entryLive  entryState = iota
	entryStale            // dropped: its timer was removed or moved earlier
	entryMoved            // its timer was moved later: re-file it
)

// check tells whether e is its timer's live entry at its real deadline; an
// entryMoved answer obliges the caller to re-file it. It reads nothing of
// the timer's while no timer has been moved or left a stale entry (a
// workload that only schedules and fires), and only the timer's flags while
// no timer has been moved and this one has no stale entries.
func (w *Wheel) check(e wheelEntry) entryState {
	if w.clean() {
		return entryLive
	}
	blk, i := w.timer(e.id)
	f := blk.flags[i]
	if f == 0 && w.moved == 0 {
		return entryLive
	}
	n := &blk.nodes[i]
	if e.tag != n.ftag {
		if f != staleMax {
			w.setFlags(blk, i, f-1)
		}
		w.garbage--
		return entryStale
	}
	if n.seq != n.ftag {
		w.moved--
		return entryMoved
	}
	return entryLive
}

// clean reports that every stored entry is its timer's live one, at its
// deadline: none needs checking.
func (w *Wheel) clean() bool { return w.dirty == 0 && w.moved == 0 }

// refile files a moved timer's entry again at its node's deadline, with a
// new tag.
func (w *Wheel) refile(id ID) {
	blk, i := w.timer(id)
	n := &blk.nodes[i]
	n.ftag = n.seq
	blk.loc[i] = w.file(id, n.when, n.seq)
}

// first settles the due run and returns its earliest live entry and whether
// it is the run's (rather than the late heap's).
func (w *Wheel) first() (e wheelEntry, inRun, ok bool) {
	if w.idle != unsettled {
		return w.head, w.headInRun, true
	}
	if w.inboxN > 0 {
		w.flush()
	}
	e, inRun, ok = w.settle()
	w.head, w.headInRun = e, inRun
	if ok {
		w.idle = e.when
	}
	return e, inRun, ok
}

// settle is first without the memory of the last answer.
func (w *Wheel) settle() (e wheelEntry, inRun, ok bool) {
	if w.live == 0 {
		// Only dead entries are stored, if any: reaching them would
		// move the tick past the clock, and the timers scheduled next
		// would go to the late heap.
		return wheelEntry{}, false, false
	}
	for {
		if cur := w.currentBag(); w.occupied(cur) {
			// Timers filed at the current tick since it was reached
			// belong in the due run, ordered with the rest.
			w.drain(cur)
		}
		if d := &w.due; w.clean() && len(d.late) == 0 {
			// No entry needs checking: the run's head is the answer.
			if d.next < len(d.run) {
				return d.run[d.next], true, true
			}
			if !w.advance() {
				return wheelEntry{}, false, false
			}
			continue
		}
		r, rok := w.runHead()
		l, lok := w.lateHead()
		if w.occupied(w.currentBag()) {
			continue // a head moved later, but within the current tick
		}
		switch {
		case rok && lok:
			if entryBefore(r, l) {
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

// entryBefore orders two entries by deadline, then tag: the live entries in
// the due run are tagged with their timers' scheduling sequences.
func entryBefore(a, b wheelEntry) bool {
	return a.when < b.when || a.when == b.when && a.tag < b.tag
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
			w.refile(e.id)
		}
	}
	return wheelEntry{}, false
}

// lateHead drops or re-files the late heap's top until it is live.
func (w *Wheel) lateHead() (wheelEntry, bool) {
	d := &w.due
	for len(d.late) > 0 {
		e := d.late[0]
		switch w.check(e) {
		case entryLive:
			return e, true
		case entryStale:
			d.popLate()
		case entryMoved:
			d.popLate()
			w.refile(e.id)
		}
	}
	return wheelEntry{}, false
}

// currentBag is level 0's slot for the current tick.
func (w *Wheel) currentBag() uint { return uint(w.pos % levelSlots) }

// advance moves to the next occupied slot when the due run is empty: a
// level-0 slot becomes the current tick and drains into the due run; a
// higher slot cascades to lower levels. It reports false if nothing is
// stored at all.
func (w *Wheel) advance() bool {
	for level := range uint(wheelLevels) {
		sum := w.summary[level]
		if sum == 0 {
			continue
		}
		word := level*(levelSlots/64) + uint(bits.TrailingZeros64(sum))
		b := word*64 + uint(bits.TrailingZeros64(w.occ[word]))
		slot := b % levelSlots
		// Lower levels are empty and earlier slots of this one too, so
		// nothing is due before this slot starts.
		shift := uint(levelBits * level)
		w.pos = w.pos>>(shift+levelBits)<<(shift+levelBits) | uint64(slot)<<shift
		if level == 0 {
			w.drain(b)
		} else {
			w.cascade(b)
		}
		return true
	}
	return false
}

// cascade re-files a slot's entries relative to the new position, by the
// deadlines they carry, without checking them; they land on lower levels
// (or level 0's current slot).
func (w *Wheel) cascade(b uint) {
	bag := w.withoutTombs(w.bags[b]) // no entry goes back to b: they all land lower
	w.unmark(b)
	pos := w.pos
	if len(bag) > keepBagsCap {
		w.cascadeLarge(b, bag)
		return
	}
	for _, e := range bag {
		w.put(bagOf(tickOf(e.when), pos), e)
	}
	w.recycle(b, bag)
}

// cascadeLarge cascades a large slot (a herd's) keeping the entries bound
// for the first one's slot in place, so that the array moves down with
// them: copying a herd into a new array costs its fresh memory, which is
// dearer than the copy. Entries that stay are written only once one before
// them has gone elsewhere, so a herd bound for one slot is only read.
func (w *Wheel) cascadeLarge(b uint, bag []wheelEntry) {
	pos := w.pos
	t0 := tickOf(bag[0].when)
	to := bagOf(t0, pos) % wheelBags
	k, oneTick := 0, true
	for i, e := range bag {
		t := tickOf(e.when)
		if c := bagOf(t, pos); c != to {
			w.put(c, e)
			continue
		}
		oneTick = oneTick && t == t0
		if k != i {
			bag[k] = e
		}
		k++
	}
	kept := bag[:k]
	if k == len(bag) && oneTick {
		// Every entry is due at one tick and nothing is pending before
		// it (the lower levels and this level's earlier slots are
		// empty): that tick is the next one reached, so the array goes
		// straight to its level-0 slot instead of down level by level,
		// each a pass over the herd.
		w.pos = t0
		to = bagOf(t0, t0)
	}
	// The lower levels are empty when a slot cascades, so the slot is
	// too; the test only keeps a mostly-elsewhere herd's array from
	// lingering in it.
	if len(w.bags[to]) > 0 || len(kept) < len(bag)/2 {
		for _, e := range kept {
			w.put(to, e)
		}
		w.recycle(b, bag)
		return
	}
	// No loc points into the slot's entries (a cascade leaves them out of
	// date), so they can move as they are.
	w.recycle(b, w.bags[to])
	w.bags[to] = kept
	w.mark(to)
}

// recycle keeps an emptied slot's array for the timers it gets next, unless
// it is large (a herd passed through): then a big array is unmapped
// (dropBig), and a middling one left to the collector.
func (w *Wheel) recycle(b uint, bag []wheelEntry) {
	switch c := cap(bag); {
	case c <= keepBagsCap:
		w.bags[b] = bag[:0]
		return
	case c >= bigBagLen:
		w.dropBig(bag)
	}
	w.bags[b] = nil
}

// drain moves the current tick's level-0 slot into the due run: stale
// entries are dropped, moved ones re-filed at their real deadline. Into an
// empty due run the slot's timers go as a sorted run, the slot's own array
// becoming the run's (so that draining a herd copies nothing and takes no
// fresh memory); otherwise (timers filed at the current tick after it was
// reached) into the late heap.
func (w *Wheel) drain(b uint) {
	bag := w.withoutTombs(w.bags[b]) // no entry goes back to b: refiled ones are due later
	w.unmark(b)
	d := &w.due
	merge := d.len() > 0
	if len(bag) == 1 && !merge && w.clean() {
		// A sparse wheel's usual tick: one timer, nothing to check.
		d.run, d.next, d.sorted = append(d.run[:0], bag[0]), 0, 1
		w.recycle(b, bag)
		return
	}
	if !merge && w.clean() {
		// Nothing to check: the slot's array is the run as it is.
		old := d.run
		d.setRun(bag)
		w.recycle(b, old)
		return
	}
	kept := bag[:0] // the entries that stay, in place: they are the run
	for _, e := range bag {
		switch w.check(e) {
		case entryStale:
			continue
		case entryMoved:
			blk, i := w.timer(e.id)
			n := &blk.nodes[i]
			if tickOf(n.when) > w.pos {
				w.refile(e.id)
				continue
			}
			n.ftag, blk.loc[i] = n.seq, locNoBag
			e = wheelEntry{n.when, e.id, n.seq}
		}
		if merge {
			d.push(e)
		} else {
			kept = append(kept, e)
		}
	}
	if merge {
		w.recycle(b, bag)
		return
	}
	old := d.run
	d.setRun(kept)
	w.recycle(b, old)
}
