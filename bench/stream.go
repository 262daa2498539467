package bench

// Running operation streams on a queue: workloads and replayed traces.

import (
	"fmt"
	"runtime"
	"strconv"
	"time"

	"kasim/timers"
)

// CheckTrace replays a trace on a Heap4: it fails for operations the
// recorded run could not have made (a trace damaged or made by hand), which
// would break a queue's preconditions, and for a fire hash that is not the
// trailer's.
func CheckTrace(t *timers.Trace) error {
	h, err := timers.Replay(timers.NewHeap4(), t.Ops)
	if err != nil {
		return err
	}
	if h.Sum() != t.Hash || h.Fires != t.Fires {
		return fmt.Errorf("the operations give fire hash %x (%d fires), the trailer says %x (%d)", h.Sum(), h.Fires, t.Hash, t.Fires)
	}
	return nil
}

// RunReplay measures a registered queue on a recorded trace (checked first
// with CheckTrace).
func RunReplay(t *timers.Trace, queue string, s Settings) (Result, error) {
	s = s.withDefaults()
	if err := CheckTrace(t); err != nil {
		return Result{}, err
	}
	spec, ok := LookupQueue(queue)
	if !ok {
		return Result{}, fmt.Errorf("unknown queue %q", queue)
	}
	peak := 0
	for _, op := range t.Ops {
		if op.Kind == timers.OpPush || op.Kind == timers.OpReschedule {
			peak = max(peak, int(op.ID)+1)
		}
	}
	r, err := runStream(queue, "replay", peak, stream{ops: t.Ops}, s)
	if err != nil {
		return r, err
	}
	if spec.Exact && r.FireHash != strconv.FormatUint(t.Hash, 16) {
		return r, fmt.Errorf("%s: replay fire hash %s, the recorded run's %x", queue, r.FireHash, t.Hash)
	}
	return r, nil
}

// runStream runs a stream on a fresh queue: untimed fill, then the timed
// operations; exact queues are checked against the stream's recorded fires,
// others (the Linux wheel fires late) run guarded so the stream cannot
// break their preconditions.
func runStream(queue, workload string, n int, st stream, s Settings) (Result, error) {
	spec, ok := LookupQueue(queue)
	if !ok {
		return Result{}, fmt.Errorf("unknown queue %q (workloads run on timers.Queue implementations)", queue)
	}
	r := Result{Queue: queue, Workload: workload, N: n, Ops: int64(len(st.ops))}
	// fresh returns a queue holding the stream's fill, and which timers
	// are pending in it.
	fresh := func() (timers.Queue, []bool) {
		q := spec.New()
		pending := make([]bool, max(n, st.peak))
		for i, w := range st.fill {
			q.Push(timers.ID(i), w)
			pending[i] = true
		}
		return q, pending
	}
	r.BytesPerTimer = retainedPerTimer(func() any { q, _ := fresh(); return q }, len(st.fill))
	q, pending := fresh()
	h := timers.NewFireHash()
	var late int64
	var mt meter
	mt.beginCollected()
	err := play(q, st.ops, spec.Exact, pending, h, &late)
	mt.end()
	if err != nil {
		return r, fmt.Errorf("%s on %s: %w", queue, workload, err)
	}
	mt.report(&r, len(st.ops))
	r.LatenessNs = late
	if l, ok := q.(interface {
		Lateness() (mean, most time.Duration, fired int)
	}); ok {
		_, most, _ := l.Lateness()
		r.LatenessNs = int64(most)
	}
	if h.Fires > 0 {
		r.FireHash = strconv.FormatUint(h.Sum(), 16)
	}
	if !spec.Exact {
		r.Note = "fires late by design"
	}
	// Percentiles: the stream's first operations again, on a fresh queue,
	// each timed alone.
	q, pending = fresh()
	samples := min(s.Samples, len(st.ops))
	r.P50Ns, r.P99Ns, r.P999Ns = percentiles(samples, func(i int) {
		play(q, st.ops[i:i+1], spec.Exact, pending, timers.NewFireHash(), new(int64))
	}, 0)
	runtime.KeepAlive(q)
	return r, nil
}

// play runs ops on q. Exact queues must return exactly the recorded fires.
// Inexact ones are guarded: a recorded fire pops whatever q has due, and
// operations on timers q has not fired yet are adjusted to stay legal.
func play(q timers.Queue, ops []timers.Op, exact bool, pending []bool, h *timers.FireHash, late *int64) error {
	for i, op := range ops {
		switch op.Kind {
		case timers.OpPush:
			if !exact && pending[op.ID] {
				q.Reschedule(op.ID, op.When)
				continue
			}
			q.Push(op.ID, op.When)
			pending[op.ID] = true
		case timers.OpReschedule:
			if !exact && !pending[op.ID] {
				q.Push(op.ID, op.When)
				pending[op.ID] = true
				continue
			}
			q.Reschedule(op.ID, op.When)
		case timers.OpRemove:
			if !exact && !pending[op.ID] {
				continue
			}
			q.Remove(op.ID)
			pending[op.ID] = false
		case timers.OpPeek:
			q.Peek()
		case timers.OpPopDue:
			if !exact {
				playLate(q, op, pending, h)
				continue
			}
			id, when, ok := q.PopDue(op.When)
			if exact && (ok != op.Fired || ok && id != op.ID) {
				return fmt.Errorf("operation %d: PopDue(%d) = %v, the stream expects %v", i, op.When, popString(id, ok), popString(op.ID, op.Fired))
			}
			if ok {
				pending[id] = false
				h.Add(id, when)
				*late = max(*late, op.When-when)
			}
		}
	}
	return nil
}

// playLate makes an inexact queue fire the timer the stream fires: it runs
// the queue's own clock forward until that timer comes out, firing what is
// due on the way (late, as the queue decides).
func playLate(q timers.Queue, op timers.Op, pending []bool, h *timers.FireHash) {
	if !op.Fired || !pending[op.ID] {
		return
	}
	now := op.When
	for {
		id, when, ok := q.PopDue(now)
		if !ok {
			next, any := q.Peek()
			if !any {
				return
			}
			now = max(now, next)
			continue
		}
		pending[id] = false
		h.Add(id, when)
		if id == op.ID {
			return
		}
	}
}

func popString(id timers.ID, ok bool) string {
	if !ok {
		return "nothing"
	}
	return fmt.Sprintf("timer %d", id)
}
