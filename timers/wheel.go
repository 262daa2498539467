package timers

// The Wheel's structure and the Queue methods it implements.

import "math"

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
//   - Removing a timer, when it still knows where its entry is (the
//     usual case: it was not cascaded since it was filed), makes the
//     entry a tombstone in place: one cache miss, where taking it out
//     (the slot's last entry filling the hole) read the slot's tail and
//     rewrote the location of the timer whose entry moved as well, and a
//     cancel cost as much as heap4's. Drains and cascades drop tombstones
//     as they copy, and a slot about to grow drops them instead if they
//     are a quarter of it. An entry whose place the timer no longer knows
//     is counted as stale, to be dropped when its slot is reached; stale
//     entries are swept when they outnumber live timers.
//     Moving a timer earlier takes its old entry out in the same way only
//     in the inbox or level 0; above, it leaves it stale, as even a
//     tombstone costs the miss of reading the entry, and dropping a stale
//     entry at a drain nearly nothing. A removal still reads its entry:
//     leaving every cancelled timer stale makes drains check entries and
//     sweeps frequent, and cost the uniform workload more than it saves.
//   - A herd (more timers in one slot than an emptied slot keeps room for)
//     moves as an array: cascading it hands the array down to the slot
//     most of it lands in, and draining a tick makes the slot's array the
//     due run, radix-sorted in place; a large run is split by one radix
//     pass into ordered buckets, each sorted when the clock reaches it
//     (past a million entries only the front sixteenth is split, and the
//     rest waits as one bucket). A herd all due at one tick goes from
//     its slot to level 0 in one pass, not level by level.
//     Fresh memory costs more than the copy would (its first touch faults
//     pages in), a comparison sort of a million entries more than both,
//     and sorting ten million at once, most of which the clock will not
//     reach for a while, stalls one PopDue for most of a second. A slot's
//     array of 2 MiB or more is mapped by the wheel, in huge pages, and
//     unmapped when no slot or run holds it (bigArrays): the Go heap's
//     fresh memory faults in 4 KiB pages, and its growth clears and
//     collects.
//
// Per-level occupancy bitmaps, with a summary word each, find the next
// occupied slot with two bit scans per level, so an idle hour is crossed in
// O(levels). Timers live in blocks of 8192 (a 16-byte node, a 4-byte
// location and a flags byte each), and neither blocks nor entries hold
// pointers for the garbage collector to scan.
type Wheel struct {
	// idle is the head's deadline while settled (nothing has changed
	// since first found it; Peek then PopDue settles once), else
	// math.MinInt64: a PopDue before it has nothing to do. First in the
	// struct, so that PopDue's idle check (the clock ticking towards a
	// known deadline) is one load and one comparison.
	idle int64
	// head is the earliest live entry, as first found it, while settled.
	head      wheelEntry
	headInRun bool

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

	blocks  []*wheelBlock
	dirty   int    // timers whose flags are not zero: they have stale entries stored
	moved   int    // pending timers moved later since their live entry was filed
	seq     uint32 // last scheduling sequence handed out
	seqEnd  uint32 // renumber once seq reaches it
	live    int
	garbage int // stale entries still stored
	tombs   int // removed timers' entries left in their bags as tombstones

	big *bigArrays // slot arrays of bigBagLen entries or more, or nil
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
func NewWheel() *Wheel { return &Wheel{idle: unsettled, pos: tickOf(0), seqEnd: seqLimit} }

// unsettled is a Wheel's idle while it is not settled. A head due at
// math.MinInt64 itself is taken for unsettled too, and found again.
const unsettled = math.MinInt64

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
	w.idle = unsettled
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
	w.idle = unsettled
	w.live--
	blk, i := w.timer(id)
	n := &blk.nodes[i]
	if n.seq != n.ftag {
		w.moved--
	} else if w.dropLastStashed(id, n.ftag, blk.loc[i]) {
		return // the common case, kept short: cancelled right after it was scheduled
	}
	if !w.takeOut(id, blk, i) {
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
	w.idle = unsettled
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
	// An entry above level 0 is left stale (filing below gives the timer
	// a new tag): taking it out would read its slot and rewrite the
	// location of the timer whose entry fills the hole, two cache misses
	// that dropping it when its slot drains mostly saves.
	if !w.nearby(blk.loc[i]) || !w.takeOut(id, blk, i) {
		w.addStale(blk, i)
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

// Peek implements Queue. To find the exact earliest deadline it may cascade
// slots down and move the wheel's tick forward, never past a pending
// deadline.
func (w *Wheel) Peek() (int64, bool) {
	e, _, ok := w.first()
	return e.when, ok
}

// PopDue implements Queue.
func (w *Wheel) PopDue(now int64) (ID, int64, bool) {
	if now < w.idle {
		return 0, 0, false // the clock ticking towards a known deadline
	}
	return w.popDue(now)
}

// popDue is PopDue past its idle check, apart so that the check saves
// nothing for after a call.
func (w *Wheel) popDue(now int64) (ID, int64, bool) {
	e, inRun, ok := w.first()
	if !ok || e.when > now {
		return 0, 0, false
	}
	if inRun {
		w.due.popRun()
	} else {
		w.due.popLate()
	}
	w.idle = unsettled
	w.live--
	return e.id, e.when, true
}
