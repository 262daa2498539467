package timers

// Heap4 is a 4-ary min-heap Queue: the reference queue that every other queue
// is measured against. A 4-ary heap is shallower than a binary heap and keeps
// a node's children in one cache line, which makes it the usual choice for
// timer heaps (Go's runtime uses one too).
type Heap4 struct{ dheap }

// NewHeap4 returns an empty 4-ary heap.
func NewHeap4() *Heap4 { return &Heap4{dheap{shift: 2}} }

// Heap2 is a binary min-heap Queue, the textbook reference: twice as deep as
// Heap4, with a node's children usually in different cache lines.
type Heap2 struct{ dheap }

// NewHeap2 returns an empty binary heap.
func NewHeap2() *Heap2 { return &Heap2{dheap{shift: 1}} }

// dheap is a d-ary min-heap of timers, d = 1<<shift, ordered by (deadline,
// scheduling order).
type dheap struct {
	shift   uint
	entries []heapEntry
	// pos[id] is id's index in entries, or -1 when id is not pending.
	pos []int32
	seq uint64
}

type heapEntry struct {
	when int64
	seq  uint64 // scheduling order, to break ties between equal deadlines
	id   ID
}

func (e heapEntry) before(o heapEntry) bool {
	if e.when != o.when {
		return e.when < o.when
	}
	return e.seq < o.seq
}

// Push implements Queue.
func (h *dheap) Push(id ID, when int64) {
	for int(id) >= len(h.pos) {
		h.pos = append(h.pos, -1)
	}
	h.seq++
	i := len(h.entries)
	h.entries = append(h.entries, heapEntry{when: when, seq: h.seq, id: id})
	h.pos[id] = int32(i)
	h.up(i)
}

// Remove implements Queue.
func (h *dheap) Remove(id ID) {
	i := int(h.pos[id])
	h.pos[id] = -1
	last := len(h.entries) - 1
	if i != last {
		h.entries[i] = h.entries[last]
		h.pos[h.entries[i].id] = int32(i)
	}
	h.entries = h.entries[:last]
	if i < last {
		h.fix(i)
	}
}

// Reschedule implements Queue.
func (h *dheap) Reschedule(id ID, when int64) {
	i := int(h.pos[id])
	h.seq++
	h.entries[i].when = when
	h.entries[i].seq = h.seq
	h.fix(i)
}

// Peek implements Queue.
func (h *dheap) Peek() (int64, bool) {
	if len(h.entries) == 0 {
		return 0, false
	}
	return h.entries[0].when, true
}

// PopDue implements Queue.
func (h *dheap) PopDue(now int64) (ID, int64, bool) {
	if len(h.entries) == 0 || h.entries[0].when > now {
		return 0, 0, false
	}
	top := h.entries[0]
	h.Remove(top.id)
	return top.id, top.when, true
}

// Len implements Queue.
func (h *dheap) Len() int { return len(h.entries) }

func (h *dheap) fix(i int) {
	if i > 0 && h.entries[i].before(h.entries[(i-1)>>h.shift]) {
		h.up(i)
	} else {
		h.down(i)
	}
}

func (h *dheap) up(i int) {
	e := h.entries[i]
	for i > 0 {
		p := (i - 1) >> h.shift
		if !e.before(h.entries[p]) {
			break
		}
		h.entries[i] = h.entries[p]
		h.pos[h.entries[i].id] = int32(i)
		i = p
	}
	h.entries[i] = e
	h.pos[e.id] = int32(i)
}

func (h *dheap) down(i int) {
	e := h.entries[i]
	n := len(h.entries)
	for {
		first := i<<h.shift + 1
		if first >= n {
			break
		}
		min := first
		for c := first + 1; c < first+1<<h.shift && c < n; c++ {
			if h.entries[c].before(h.entries[min]) {
				min = c
			}
		}
		if !h.entries[min].before(e) {
			break
		}
		h.entries[i] = h.entries[min]
		h.pos[h.entries[i].id] = int32(i)
		i = min
	}
	h.entries[i] = e
	h.pos[e.id] = int32(i)
}
