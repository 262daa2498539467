package timers

import (
	"math"
	"math/bits"
	"slices"
)

const (
	tickBits    = 20 // a level-0 slot spans 2^20 ns (1.05 ms)
	levelBits   = 12
	levelSlots  = 1 << levelBits
	wheelLevels = (64 - tickBits + levelBits - 1) / levelBits // 4 levels cover every int64 deadline
	wheelBags   = wheelLevels * levelSlots

	inboxLen = 256           // timers scheduled since the last Peek or PopDue, before filing
	inboxBag = wheelBags - 1 // the inbox's bag number in a loc: no tick reaches it

	blockBits = 13 // timers per block of nodes: 2^13, 21 pages of memory
	blockLen  = 1 << blockBits

	idxBits  = 18 // a timer's loc: bag<<idxBits | index in the bag
	locNoBag = ^uint32(0)
	noTag    = 0 // a timer's ftag once no entry is its live one; sequences start at 1

	staleMax = 0xff // a timer's flags: how many stale entries of it are stored (saturates)

	sweepSlack  = 1 << 16
	keepBagsCap = 4096 // an emptied slot keeps its array up to this many entries
)

// seqLimit is the last scheduling sequence handed out before the pending
// timers are renumbered; a variable so that a test can bring it near.
var seqLimit uint32 = math.MaxUint32

// Wheel is an exact hierarchical timing wheel: four levels of 4096 slots,
// each level 4096 times coarser than the one below, level 0 at 1.05 ms per
// slot. It fires every timer at its exact deadline, equal deadlines in
// scheduling order, as the Queue contract requires: the timers of the tick
// being reached are sorted by (deadline, scheduling order) into a short due
// run. A timer two hours out sits on level 1 or 2 (as its deadline crosses
// a level-1 group boundary or not) and is copied down once or twice.
//
// What makes it fast is what it leaves undone:
//
//   - Slots are arrays of 16-byte entries (deadline, ID, tag), not linked
//     lists. Cascading a slot copies its entries to lower levels without
//     looking at the timers themselves, and reaching a tick reads nothing of the
//     timers' while none was moved or left stale entries (then a byte per
//     timer, or its node while some are moved later): a sequential copy
//     instead of a cache miss per timer.
//   - Moving a timer later (a keep-alive reset, which every received segment
//     does) only rewrites its 16-byte node, whose sequence then differs from
//     its entry's tag; the old entry is re-filed once, when its slot is
//     reached.
//   - Scheduling only puts the entry in a 256-entry inbox, which the next
//     Peek or PopDue files: a timer cancelled before then (a retransmission
//     timer stopped by the ACK) is never filed at all.
//   - Removing a timer takes its entry out of its slot in place when the
//     timer still knows where it is (the usual case: it was not cascaded
//     since it was filed), moving the slot's last entry into the hole, and
//     otherwise counts the entry as stale, to be dropped when its slot is
//     reached. Stale entries are swept when they outnumber live timers.
//
// Per-level occupancy bitmaps, with a summary word each, find the next
// occupied slot with two bit scans per level, so an idle hour is crossed in
// O(levels). Timers live in blocks of 8192 (a 16-byte node, a 4-byte
// location and a flags byte each), and neither blocks nor entries hold
// pointers for the garbage collector to scan.
type Wheel struct {
	// pos is the current tick (deadlines in the order-preserving unsigned
	// form, shifted by tickBits): entries in the bags have ticks >= pos,
	// entries in the due run ticks <= pos.
	pos     uint64
	summary [wheelLevels]uint64    // a bit per occupancy word: not zero
	occ     [wheelBags / 64]uint64 // a bit per bag: occupied
	bags    [wheelBags][]wheelEntry
	due     dueRun

	// inbox holds the entries of the latest pushes until the next Peek or
	// PopDue files them, so that a timer cancelled before then (a
	// retransmission timer stopped by the ACK) is never filed at all.
	inbox  [inboxLen]wheelEntry
	inboxN uint32

	// head is the earliest live entry, as first found it, while settled:
	// nothing has changed since (Peek then PopDue settles once).
	head      wheelEntry
	headInRun bool
	settled   bool

	blocks  []*wheelBlock
	dirty   int    // timers whose flags are not zero: they have stale entries stored
	moved   int    // pending timers moved later since their live entry was filed
	seq     uint32 // last scheduling sequence handed out
	seqEnd  uint32 // renumber once seq reaches it
	live    int
	garbage int // stale entries still stored
}

// wheelEntry is a timer's place in a slot or the due run. Its tag is the
// scheduling sequence it was filed with; it is the timer's live entry while
// that equals the node's ftag.
type wheelEntry struct {
	when int64
	id   ID
	tag  uint32
}

// wheelNode is a timer's current deadline and scheduling sequence. A
// pending timer whose seq differs from its ftag was moved later since its
// live entry was filed: the entry is re-filed when its slot is reached.
type wheelNode struct {
	when int64
	seq  uint32
	ftag uint32 // tag of its live entry, or noTag
}

// wheelBlock holds the state of blockLen consecutive timers.
type wheelBlock struct {
	nodes [blockLen]wheelNode
	loc   [blockLen]uint32 // where the live entry was filed, or locNoBag; may be out of date
	flags [blockLen]uint8  // stale entries stored, up to staleMax
}

// NewWheel returns an empty wheel at time zero.
func NewWheel() *Wheel { return &Wheel{pos: tickOf(0), seqEnd: seqLimit} }

// tickOf maps a deadline to its tick, preserving order for negative ones.
func tickOf(when int64) uint64 { return (uint64(when) ^ 1<<63) >> tickBits }

// timer returns the block holding id and its index there.
func (w *Wheel) timer(id ID) (*wheelBlock, int) {
	return w.blocks[id>>blockBits], int(id & (blockLen - 1))
}

// Push implements Queue.
func (w *Wheel) Push(id ID, when int64) {
	if w.seq >= w.seqEnd {
		// Out of sequences: renumber first, and keep the arguments off
		// the common path (they would be saved at entry).
		w.renumber()
		w.Push(id, when)
		return
	}
	w.seq++
	seq := w.seq
	w.settled = false
	if int(id>>blockBits) >= len(w.blocks) {
		w.grow(id)
	}
	blk, i := w.timer(id)
	blk.nodes[i] = wheelNode{when, seq, seq}
	if w.inboxN == inboxLen {
		w.flush()
	}
	blk.loc[i] = w.stash(id, when, seq)
	w.live++
}

// grow adds blocks of nodes until id has one.
func (w *Wheel) grow(id ID) {
	for int(id>>blockBits) >= len(w.blocks) {
		w.blocks = append(w.blocks, new(wheelBlock))
	}
}

// Remove implements Queue.
func (w *Wheel) Remove(id ID) {
	w.settled = false
	w.live--
	blk, i := w.timer(id)
	n := &blk.nodes[i]
	if n.seq != n.ftag {
		w.moved--
	} else if w.dropLastStashed(id, n.ftag, blk.loc[i]) {
		return // the common case, kept short: cancelled right after it was scheduled
	}
	if !w.killInPlace(id, blk, i) {
		n.ftag = noTag // its entry is somewhere: stale now
		w.addStale(blk, i)
		w.maybeSweep()
	}
}

// Reschedule implements Queue. Moving a timer later, or to its own
// deadline, only updates its node.
func (w *Wheel) Reschedule(id ID, when int64) {
	if w.seq >= w.seqEnd {
		w.renumber() // as in Push
		w.Reschedule(id, when)
		return
	}
	w.seq++
	seq := w.seq
	w.settled = false
	blk, i := w.timer(id)
	n := &blk.nodes[i]
	if when >= n.when {
		if n.seq == n.ftag {
			w.moved++
		}
		n.when, n.seq = when, seq
		return
	}
	w.moveEarlier(id, when, seq, blk, i)
}

// moveEarlier files a pending timer's entry anew, at an earlier deadline
// with sequence seq. It is Reschedule's uncommon path, kept apart so that
// the common one need not save its arguments.
//
//go:noinline
func (w *Wheel) moveEarlier(id ID, when int64, seq uint32, blk *wheelBlock, i int) {
	n := &blk.nodes[i]
	if n.seq != n.ftag {
		w.moved--
	}
	if !w.killInPlace(id, blk, i) {
		w.addStale(blk, i) // filing below gives the timer a new tag
	}
	// As in Push, which writes it out: as a helper these lines exceed the
	// compiler's inlining budget, and Push is the hot path.
	*n = wheelNode{when, seq, seq}
	if w.inboxN == inboxLen {
		w.flush()
	}
	blk.loc[i] = w.stash(id, when, seq)
	w.maybeSweep()
}

// Len implements Queue.
func (w *Wheel) Len() int { return w.live }

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

// stash puts a pending timer's entry, tagged with its sequence, in the
// inbox, which the caller has flushed if it was full, and returns its loc.
func (w *Wheel) stash(id ID, when int64, tag uint32) uint32 {
	x := w.inboxN % inboxLen
	w.inbox[x] = wheelEntry{when, id, tag}
	w.inboxN = x + 1
	return inboxBag<<idxBits | x
}

// flush files the inbox's entries.
func (w *Wheel) flush() {
	for _, e := range w.inbox[:w.inboxN] {
		blk, i := w.timer(e.id)
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
	bag := w.bags[b]
	n := len(bag)
	if n == cap(bag) {
		bag = growBag(bag)
	}
	bag = bag[:n+1]
	bag[n] = e
	w.bags[b] = bag
	w.mark(b)
	return n
}

// growBag gives a full bag room: it doubles small arrays and grows
// middling ones by a quarter, so a big wheel's slots waste less than
// append's growth would (a bag of 600 entries fills 625 places, not 848).
// Past a million bytes it doubles again: a slot that holds a herd is
// copied fewer times.
func growBag(bag []wheelEntry) []wheelEntry {
	c := cap(bag)
	switch {
	case c < 4:
		c = 4
	case c < 256 || c >= 1<<16:
		c *= 2
	default:
		c += c / 4
	}
	return append(make([]wheelEntry, 0, c), bag...)
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

// killInPlace removes a pending timer's live entry where its loc says it
// is, in a bag or the inbox, whose order does not matter (draining sorts):
// the last entry fills the hole. It reports false if the entry has moved on
// since (a cascade, the due run).
func (w *Wheel) killInPlace(id ID, blk *wheelBlock, i int) bool {
	loc := blk.loc[i]
	if loc == locNoBag {
		return false
	}
	b, x := uint(loc>>idxBits)%wheelBags, int(loc&(1<<idxBits-1))
	entries := w.bags[b]
	if b == inboxBag {
		entries = w.inbox[:w.inboxN]
	}
	if x >= len(entries) || entries[x].id != id || entries[x].tag != blk.nodes[i].ftag {
		return false
	}
	last := len(entries) - 1
	if x < last {
		entries[x] = entries[last]
		w.relocated(entries[x], bagLoc(b, last), bagLoc(b, x))
	}
	switch {
	case b == inboxBag:
		w.inboxN = uint32(last)
	case last == 0:
		w.bags[b] = entries[:0]
		w.unmark(b)
	default:
		w.bags[b] = entries[:last]
	}
	return true
}

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
	if w.settled {
		return w.head, w.headInRun, true
	}
	if w.inboxN > 0 {
		w.flush()
	}
	e, inRun, ok = w.settle()
	w.head, w.headInRun, w.settled = e, inRun, ok
	return e, inRun, ok
}

// settle is first without the memory of the last answer.
func (w *Wheel) settle() (e wheelEntry, inRun, ok bool) {
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

func compareEntries(a, b wheelEntry) int {
	switch {
	case entryBefore(a, b):
		return -1
	case entryBefore(b, a):
		return 1
	}
	return 0
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

// PopDue implements Queue.
func (w *Wheel) PopDue(now int64) (ID, int64, bool) {
	if w.settled && w.head.when > now {
		return 0, 0, false // the clock ticking towards a known deadline
	}
	e, inRun, ok := w.first()
	if !ok || e.when > now {
		return 0, 0, false
	}
	if inRun {
		w.due.popRun()
	} else {
		w.due.popLate()
	}
	w.settled = false
	w.live--
	return e.id, e.when, true
}

// currentBag is level 0's slot for the current tick.
func (w *Wheel) currentBag() uint { return uint(w.pos % levelSlots) }

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
	bag := w.bags[b] // no entry goes back to b: they all land lower
	w.unmark(b)
	pos := w.pos
	for _, e := range bag {
		w.put(bagOf(tickOf(e.when), pos), e)
	}
	w.recycle(b, bag)
}

// recycle keeps an emptied slot's array for the timers it gets next, unless
// it is large (a herd passed through) and better left to the collector.
func (w *Wheel) recycle(b uint, bag []wheelEntry) {
	if cap(bag) <= keepBagsCap {
		w.bags[b] = bag[:0]
	} else {
		w.bags[b] = nil
	}
}

// drain moves the current tick's level-0 slot into the due run: stale
// entries are dropped, moved ones re-filed at their real deadline. Into an
// empty due run the slot's timers go as a sorted run; otherwise (timers
// filed at the current tick after it was reached) into the late heap.
func (w *Wheel) drain(b uint) {
	bag := w.bags[b] // no entry goes back to b: refiled ones are due later
	w.unmark(b)
	merge := w.due.len() > 0
	if len(bag) == 1 && !merge && w.clean() {
		// A sparse wheel's usual tick: one timer, nothing to check.
		w.due.run = append(w.due.run, bag[0])
		w.recycle(b, bag)
		return
	}
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
			w.due.push(e)
		} else {
			w.due.run = append(w.due.run, e)
		}
	}
	if !merge && len(w.due.run) > 1 && !slices.IsSortedFunc(w.due.run, compareEntries) {
		slices.SortFunc(w.due.run, compareEntries)
	}
	w.recycle(b, bag)
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
			if f(int(b), len(kept), &e) {
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
	d := &w.due
	d.run, d.next = keep(d.run[d.next:]), 0
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

// dueRun holds the entries of the ticks already reached: a run sorted when
// its slot drained, and a binary heap for the few that arrive afterwards
// (timers filed at or before the current tick), so that neither a slot of a
// million timers nor a stream of late arrivals costs more than O(log n).
// Both are ordered by (deadline, tag).
type dueRun struct {
	run  []wheelEntry
	next int // index of the run's first entry
	late []wheelEntry
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

func (d *dueRun) push(e wheelEntry) {
	d.late = append(d.late, e)
	i := len(d.late) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !entryBefore(e, d.late[p]) {
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
		if c+1 < n && entryBefore(d.late[c+1], d.late[c]) {
			c++
		}
		if !entryBefore(d.late[c], e) {
			break
		}
		d.late[i] = d.late[c]
		i = c
	}
	d.late[i] = e
}
