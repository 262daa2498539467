package timers

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
)

// OpKind is a Queue method, as recorded in a timer-operation trace.
type OpKind uint8

// The recorded Queue methods.
const (
	OpPush OpKind = iota + 1
	OpRemove
	OpReschedule
	OpPeek
	OpPopDue
)

var opNames = [...]string{OpPush: "push", OpRemove: "remove", OpReschedule: "reschedule", OpPeek: "peek", OpPopDue: "popdue"}

func (k OpKind) String() string {
	if int(k) < len(opNames) && opNames[k] != "" {
		return opNames[k]
	}
	return fmt.Sprintf("op%d", k)
}

// Op is one call of a Queue method: Push(ID, When), Remove(ID),
// Reschedule(ID, When), Peek(), or PopDue(When) which returned ID if Fired.
type Op struct {
	When  int64
	ID    ID
	Kind  OpKind
	Fired bool // PopDue only: whether it returned a timer (ID)
}

// FireHash hashes a fire sequence: the (ID, deadline) of every timer PopDue
// returned, in order. Two exact queues given the same operations give the
// same hash.
type FireHash struct {
	h     hash.Hash64
	buf   [12]byte
	Fires int64
}

// NewFireHash returns the hash of an empty sequence.
func NewFireHash() *FireHash { return &FireHash{h: fnv.New64a()} }

// Add appends a fire.
func (f *FireHash) Add(id ID, when int64) {
	binary.LittleEndian.PutUint32(f.buf[:4], uint32(id))
	binary.LittleEndian.PutUint64(f.buf[4:], uint64(when))
	f.h.Write(f.buf[:])
	f.Fires++
}

// Sum returns the hash so far.
func (f *FireHash) Sum() uint64 { return f.h.Sum64() }

// The trace file: a magic line, one record per call (the kind, then
// varints), and a trailer with the recording run's fire hash.
const (
	traceMagic   = "kasim timer trace 1\n"
	traceTrailer = 0xff
)

// Recorder is a Queue that passes every call to another Queue and writes it
// to a trace, which Replay (or `kasim bench --replay`) runs against any
// queue. Close writes the trailer: the fire hash of the recorded run.
//
// The trace numbers the timers itself: a timer gets the lowest-numbered
// free trace ID when pushed and gives it back when it fires or is
// removed. The IDs a Clock hands out are reused when the garbage
// collector finds a timer unreachable, at no fixed moment; numbered so,
// the same run gives the same trace, byte for byte, whatever the
// collector did.
type Recorder struct {
	q    Queue
	w    *bufio.Writer
	c    io.Closer
	hash *FireHash
	buf  [2*binary.MaxVarintLen64 + 1]byte
	err  error
	done bool // closed: later calls pass through unrecorded
	// traceIDs maps a pending timer's queue ID to its trace ID + 1 (0:
	// not pending); free holds the trace IDs not pending, as a min-heap.
	traceIDs []ID
	free     idHeap
	next     ID // trace IDs below next have been handed out
}

// idHeap is a min-heap of IDs.
type idHeap []ID

func (h *idHeap) push(id ID) {
	*h = append(*h, id)
	for i := len(*h) - 1; i > 0; {
		p := (i - 1) / 2
		if (*h)[p] <= (*h)[i] {
			break
		}
		(*h)[p], (*h)[i] = (*h)[i], (*h)[p]
		i = p
	}
}

func (h *idHeap) pop() ID {
	old := *h
	top, last := old[0], old[len(old)-1]
	*h = old[:len(old)-1]
	if len(*h) == 0 {
		return top
	}
	(*h)[0] = last
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(*h) && (*h)[l] < (*h)[small] {
			small = l
		}
		if r := l + 1; r < len(*h) && (*h)[r] < (*h)[small] {
			small = r
		}
		if small == i {
			return top
		}
		(*h)[i], (*h)[small] = (*h)[small], (*h)[i]
		i = small
	}
}

// assign gives queue ID id, being pushed, a trace ID.
func (r *Recorder) assign(id ID) ID {
	var tid ID
	if len(r.free) > 0 {
		tid = r.free.pop()
	} else {
		tid = r.next
		r.next++
	}
	for int(id) >= len(r.traceIDs) {
		r.traceIDs = append(r.traceIDs, 0)
	}
	r.traceIDs[id] = tid + 1
	return tid
}

// traceID returns pending queue ID id's trace ID.
func (r *Recorder) traceID(id ID) ID {
	if int(id) < len(r.traceIDs) && r.traceIDs[id] != 0 {
		return r.traceIDs[id] - 1
	}
	return id // not pushed through the recorder: a caller's mistake the queue will report
}

// release frees queue ID id's trace ID, its timer no longer pending.
func (r *Recorder) release(id ID) ID {
	tid := r.traceID(id)
	if int(id) < len(r.traceIDs) && r.traceIDs[id] != 0 {
		r.traceIDs[id] = 0
		r.free.push(tid)
	}
	return tid
}

// NewRecorder records the calls made to q into w (closed by Close if it is
// an io.Closer).
func NewRecorder(q Queue, w io.Writer) *Recorder {
	r := &Recorder{q: q, w: bufio.NewWriterSize(w, 1<<16), hash: NewFireHash()}
	r.c, _ = w.(io.Closer)
	_, r.err = r.w.WriteString(traceMagic)
	return r
}

func (r *Recorder) record(k OpKind, a uint64, b int64, args int) {
	if r.err != nil || r.done {
		return
	}
	r.buf[0] = byte(k)
	n := 1
	if args > 0 {
		n += binary.PutUvarint(r.buf[n:], a)
	}
	if args > 1 {
		n += binary.PutVarint(r.buf[n:], b)
	}
	_, r.err = r.w.Write(r.buf[:n])
}

// Push implements Queue.
func (r *Recorder) Push(id ID, when int64) {
	r.record(OpPush, uint64(r.assign(id)), when, 2)
	r.q.Push(id, when)
}

// Remove implements Queue.
func (r *Recorder) Remove(id ID) {
	r.record(OpRemove, uint64(r.release(id)), 0, 1)
	r.q.Remove(id)
}

// Reschedule implements Queue.
func (r *Recorder) Reschedule(id ID, when int64) {
	r.record(OpReschedule, uint64(r.traceID(id)), when, 2)
	r.q.Reschedule(id, when)
}

// Peek implements Queue.
func (r *Recorder) Peek() (int64, bool) {
	r.record(OpPeek, 0, 0, 0)
	return r.q.Peek()
}

// PopDue implements Queue. The record holds the result: 0 for none, ID+1.
func (r *Recorder) PopDue(now int64) (ID, int64, bool) {
	id, when, ok := r.q.PopDue(now)
	res := uint64(0)
	if ok {
		tid := r.release(id)
		res = uint64(tid) + 1
		r.hash.Add(tid, when)
	}
	r.record(OpPopDue, res, now, 2)
	return id, when, ok
}

// Len implements Queue.
func (r *Recorder) Len() int { return r.q.Len() }

// Advance passes the time on to the recorded queue if it wants it.
func (r *Recorder) Advance(now int64) {
	if a, ok := r.q.(Advancer); ok {
		a.Advance(now)
	}
}

// Hash returns the fire hash of the calls so far.
func (r *Recorder) Hash() (sum uint64, fires int64) { return r.hash.Sum(), r.hash.Fires }

// Close writes the trailer and flushes, and closes the writer if it can.
// Calls after Close (a network stopping its timers) are not recorded.
func (r *Recorder) Close() error {
	if r.done {
		return r.err
	}
	r.done = true
	if r.err == nil {
		var t [1 + 8 + binary.MaxVarintLen64]byte
		t[0] = traceTrailer
		binary.LittleEndian.PutUint64(t[1:], r.hash.Sum())
		n := 9 + binary.PutUvarint(t[9:], uint64(r.hash.Fires))
		_, r.err = r.w.Write(t[:n])
	}
	if r.err == nil {
		r.err = r.w.Flush()
	}
	if r.c != nil {
		if err := r.c.Close(); r.err == nil {
			r.err = err
		}
	}
	return r.err
}
