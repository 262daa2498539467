package timers

// Reading a timer trace: a TraceReader decodes it chunk by chunk, in memory
// bounded whatever its length; ReadTrace holds a small one whole; a
// Replayer runs the operations on a queue.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Trace is a recorded timer-operation trace, held in memory (ReadTrace).
type Trace struct {
	Ops []Op
	// Hash and Fires are the recording run's fire hash and fire count
	// (from the trailer).
	Hash  uint64
	Fires int64
}

// MaxTraceOps bounds the operations ReadTrace holds (each takes 24 bytes
// in memory: at most 1.5 GB). A run of 10,000 connections records about
// 1.5 million, one of 1,000,000 about 150 million: read those with a
// TraceReader, which streams a trace of any length.
const MaxTraceOps = 64 << 20

// TraceChunk is the most operations TraceReader.Next returns at once: 1.5
// MB of Ops, large enough that a caller's per-chunk work (timing a
// section, say) is small against the chunk's.
const TraceChunk = 1 << 16

// maxRecord is the longest record: a kind byte and two varints. The
// trailer (kind, 8 bytes, a varint) is shorter, with room for the one
// byte after it that says whether data follows.
const maxRecord = 1 + 2*binary.MaxVarintLen64

// TraceReader reads a trace written by a Recorder, a chunk of operations
// at a time: it holds one chunk and its read buffer, whatever the trace's
// length. It checks what it reads as it reads, as ReadTrace does, with
// the same errors: a truncated or corrupt trace is an error that says at
// which byte and what is wrong. Timer IDs are dense (a Clock hands out 0,
// 1, 2, ... and reuses freed ones), so a push may name a timer seen before
// or the next new one, and any other operation only a timer pushed
// before: no record can make a queue size its storage beyond what the
// file's length allows. At the end the trailer's fire count must match
// the trace's.
type TraceReader struct {
	r io.Reader
	// The unread bytes are buf[p:n]; buf[0] is at byte base of the file.
	buf  []byte
	p, n int
	base int64
	rerr error // the reader's error once it gave one (io.EOF at the end)

	chunk []Op  // what Next returns, reused by the next call
	limit int64 // if not 0, the most operations to accept (ReadTrace's)

	ids   int64 // timers pushed so far: the IDs 0 to ids-1
	ops   int64 // operations read so far
	fires int64
	hash  uint64
	done  bool  // the trailer is read and checked
	err   error // the error Next returned: it returns it again
}

// NewTraceReader reads the trace's header from r and returns a reader of
// its operations.
func NewTraceReader(r io.Reader) (*TraceReader, error) {
	t := &TraceReader{r: r, buf: make([]byte, 1<<16)}
	t.fill()
	if t.n-t.p < len(traceMagic) || string(t.buf[t.p:t.p+len(traceMagic)]) != traceMagic {
		return nil, errors.New("not a kasim timer trace (no header)")
	}
	t.p += len(traceMagic)
	return t, nil
}

// fill reads until a whole record is buffered, or the reader has no more.
func (t *TraceReader) fill() {
	if t.n-t.p >= maxRecord || t.rerr != nil {
		return
	}
	t.base += int64(t.p)
	t.n = copy(t.buf, t.buf[t.p:t.n])
	t.p = 0
	for empty := 0; t.n < maxRecord && t.rerr == nil; {
		m, err := t.r.Read(t.buf[t.n:])
		t.n += m
		t.rerr = err
		// A reader that keeps returning nothing would spin here forever;
		// bufio.Reader gives up so too.
		if m == 0 && err == nil {
			if empty++; empty == 100 {
				t.rerr = io.ErrNoProgress
			}
		}
	}
}

// Next returns the next operations, at most TraceChunk of them, in a
// slice that the next call reuses. After the last it returns nil and
// io.EOF, the trailer checked (Trailer then has the recorded fire hash);
// a damaged trace gives nil and an error, again on every later call.
func (t *TraceReader) Next() ([]Op, error) {
	if t.err != nil {
		return nil, t.err
	}
	if t.done {
		return nil, io.EOF
	}
	if t.chunk == nil {
		// Grown by append, so that a small trace takes little.
		t.chunk = make([]Op, 0, 64)
	}
	t.chunk = t.chunk[:0]
	for len(t.chunk) < TraceChunk {
		op, end, err := t.record()
		if err != nil {
			t.err = err
			return nil, err
		}
		if end {
			t.done = true
			break
		}
		t.chunk = append(t.chunk, op)
	}
	if len(t.chunk) == 0 {
		return nil, io.EOF
	}
	return t.chunk, nil
}

// record decodes the next record: an operation, or the trailer (end).
func (t *TraceReader) record() (op Op, end bool, err error) {
	if t.n-t.p < maxRecord && t.rerr == nil {
		t.fill()
	}
	at := t.base + int64(t.p)
	if t.p == t.n {
		if t.rerr == io.EOF {
			return op, false, fmt.Errorf("byte %d: trace ends without its trailer (truncated?)", at)
		}
		return op, false, t.rerr
	}
	b := t.buf[t.p:t.n]
	k := OpKind(b[0])
	q := 1 // the bytes of the record read so far
	op.Kind = k
	switch k {
	case OpPush, OpReschedule, OpRemove, OpPopDue:
		// Too few bytes left (m == 0) is the file's end: fill keeps a
		// whole record buffered while there is more.
		a, m := binary.Uvarint(b[q:])
		if m <= 0 || a > uint64(^ID(0)) {
			return op, false, fmt.Errorf("byte %d: %v record: bad id", at, k)
		}
		q += m
		if k == OpPopDue {
			op.Fired = a != 0
			if op.Fired {
				op.ID = ID(a - 1)
			}
		} else {
			op.ID = ID(a)
		}
		if k != OpRemove {
			if op.When, m = binary.Varint(b[q:]); m <= 0 {
				return op, false, fmt.Errorf("byte %d: %v record: bad time", at, k)
			}
			q += m
		}
		switch {
		case k == OpPush && int64(op.ID) > t.ids:
			return op, false, fmt.Errorf("byte %d: push of timer %d, but the next new timer is %d: a trace's timer IDs are dense (0, 1, 2, ...)", at, op.ID, t.ids)
		case k == OpPush && int64(op.ID) == t.ids:
			t.ids++
		case (k != OpPopDue || op.Fired) && int64(op.ID) >= t.ids:
			return op, false, fmt.Errorf("byte %d: %v of timer %d, which was never pushed (%d timers so far)", at, k, op.ID, t.ids)
		}
		if op.Fired {
			t.fires++
		}
	case OpPeek:
	case traceTrailer:
		if len(b) < q+8 {
			return op, false, fmt.Errorf("byte %d: truncated trailer", at)
		}
		hash := binary.LittleEndian.Uint64(b[q:])
		q += 8
		told, m := binary.Uvarint(b[q:])
		if m <= 0 {
			return op, false, fmt.Errorf("byte %d: truncated trailer", at)
		}
		q += m
		if told != uint64(t.fires) {
			return op, false, fmt.Errorf("byte %d: the trailer counts %d fires; the trace's pops fired %d", at, told, t.fires)
		}
		t.p += q
		// The byte given is the one after the first byte that follows,
		// as ReadTrace has always said it.
		if t.p < t.n {
			return op, false, fmt.Errorf("byte %d: data after the trailer", t.base+int64(t.p)+1)
		}
		if t.rerr != io.EOF {
			return op, false, fmt.Errorf("byte %d: data after the trailer", t.base+int64(t.p))
		}
		t.hash = hash
		return op, true, nil
	default:
		return op, false, fmt.Errorf("byte %d: unknown record kind %d", at, b[0])
	}
	if t.limit > 0 && t.ops == t.limit {
		return op, false, fmt.Errorf("byte %d: more than %d operations: ReadTrace holds at most that many (a TraceReader streams any number)", at, t.limit)
	}
	t.p += q
	t.ops++
	return op, false, nil
}

// Ops returns the number of operations read so far.
func (t *TraceReader) Ops() int64 { return t.ops }

// Timers returns the number of timers pushed so far: the trace's IDs are
// 0 to Timers()-1, and a queue replaying it holds at most that many.
func (t *TraceReader) Timers() int64 { return t.ids }

// Trailer returns the recording run's fire hash and fire count, once Next
// has returned io.EOF (zeros before).
func (t *TraceReader) Trailer() (hash uint64, fires int64) {
	if !t.done || t.err != nil {
		return 0, 0
	}
	return t.hash, t.fires
}

// ReadTrace reads a whole trace written by a Recorder into memory, with
// the checks and errors of a TraceReader; it refuses more than
// MaxTraceOps operations, which a TraceReader streams instead.
func ReadTrace(rd io.Reader) (*Trace, error) {
	r, err := NewTraceReader(rd)
	if err != nil {
		return nil, err
	}
	r.limit = MaxTraceOps
	t := &Trace{}
	for {
		ops, err := r.Next()
		if err == io.EOF {
			t.Hash, t.Fires = r.Trailer()
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		t.Ops = append(t.Ops, ops...)
	}
}

// Replay runs ops against q and returns the fire hash. It checks each
// PopDue's result against the recorded one and stops at the first
// difference (an inexact queue, or a queue that breaks the contract), and
// refuses operations the recorded run could not have made (a Remove of a
// timer that is not pending), so a corrupt trace cannot break q.
func Replay(q Queue, ops []Op) (*FireHash, error) {
	p := NewReplayer(q)
	err := p.Play(ops)
	return p.Hash(), err
}

// Replayer runs a trace's operations on a queue chunk by chunk, as Replay
// runs them all at once: it holds which timers are pending (a bit per
// timer), not the operations.
type Replayer struct {
	q       Queue
	pending []bool
	hash    *FireHash
	played  int64 // operations played, which number the next in errors
}

// NewReplayer returns a Replayer of operations on q.
func NewReplayer(q Queue) *Replayer { return &Replayer{q: q, hash: NewFireHash()} }

// Hash returns the fire hash of the operations played so far.
func (p *Replayer) Hash() *FireHash { return p.hash }

// Play runs the next operations on the queue, with Replay's checks. At
// the first error it stops, the operation not run, and the queue as the
// operations before left it; errors number operations from the first
// that any Play was given.
func (p *Replayer) Play(ops []Op) error {
	q := p.q
	for _, op := range ops {
		i := p.played
		switch op.Kind {
		case OpPush:
			if p.isPending(op.ID) {
				return fmt.Errorf("op %d: push of timer %d, which is pending", i, op.ID)
			}
			q.Push(op.ID, op.When)
			p.setPending(op.ID, true)
		case OpRemove, OpReschedule:
			if !p.isPending(op.ID) {
				return fmt.Errorf("op %d: %v of timer %d, which is not pending", i, op.Kind, op.ID)
			}
			if op.Kind == OpRemove {
				q.Remove(op.ID)
				p.setPending(op.ID, false)
			} else {
				q.Reschedule(op.ID, op.When)
			}
		case OpPeek:
			q.Peek()
		case OpPopDue:
			id, when, ok := q.PopDue(op.When)
			if ok != op.Fired || ok && id != op.ID {
				return fmt.Errorf("op %d: PopDue(%d) = %v, the recorded run got %v", i, op.When, popResult(id, ok), popResult(op.ID, op.Fired))
			}
			if ok {
				p.hash.Add(id, when)
				p.setPending(id, false)
			}
		default:
			return fmt.Errorf("op %d: unknown kind %d", i, op.Kind)
		}
		p.played++
	}
	return nil
}

func (p *Replayer) isPending(id ID) bool { return int(id) < len(p.pending) && p.pending[id] }

func (p *Replayer) setPending(id ID, on bool) {
	for int(id) >= len(p.pending) {
		p.pending = append(p.pending, false)
	}
	p.pending[id] = on
}

func popResult(id ID, ok bool) string {
	if !ok {
		return "nothing"
	}
	return fmt.Sprintf("timer %d", id)
}
