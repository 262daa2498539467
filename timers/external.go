package timers

import (
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

// This file adapts two timer implementations that kasim does not control,
// the Go runtime's timers and gVisor's faketime.ManualClock, to the Queue
// interface, so that a simulation can be run on them for comparison.
//
// Neither can say when its next timer is due, so each adapter keeps a shadow
// Heap4 of the pending deadlines, keyed by the same IDs. The shadow answers
// Peek and Len and tells PopDue whether anything is due at all; it never
// decides which timer comes out first. The order is the order in which the
// underlying implementation ran its callbacks: every callback appends its
// timer's ID to a ready list, and PopDue takes from that list.
//
// Each (re)scheduling of an ID gets a new generation, and a callback records
// the generation it was armed with, so a callback that ran (or is still
// running) for a timer that has since been removed or rescheduled is ignored.

// readyEntry is a timer whose underlying callback has run: id, armed as
// generation gen.
type readyEntry struct {
	id  ID
	gen uint32
}

// RuntimeQueue is a Queue whose timers are Go runtime timers (time.AfterFunc).
// It is NOT deterministic, and it runs in real time; it exists to compare
// kasim's virtual-time queues with what a real program's timers do.
//
// Virtual time maps 1:1 onto real time: virtual time v is the real instant
// start+v, where start is when NewRuntimeQueue ran, or, if Advance is called
// before any timer has been pushed, the moment of that first Advance minus
// its now (so a queue added with Clock.NewLane to a clock that has already
// moved starts in step with it). A timer at virtual deadline when is a
// runtime timer due at start+when.
//
// PopDue(now) returns, among the timers whose runtime callbacks have run,
// the first in the order the runtime ran them whose deadline is at or before
// now. If there is none but a pending timer's deadline is at or before now,
// PopDue BLOCKS until the runtime fires one. A simulation driven through a
// RuntimeQueue therefore takes real time: two hours of idle connection take
// two hours. While it blocks inside Clock.FireDue it holds the Clock's lock,
// so goroutines calling AfterFunc, Stop or Reset on that Clock wait too.
//
// Which of several due timers comes first is the runtime's choice: timers
// with equal deadlines come out in no defined order (not scheduling order,
// as Queue asks), and timers whose deadlines are close together can come out
// swapped when the runtime expires them in the same pass, since each
// callback runs in a goroutine of its own. Peek and Len come from a shadow
// Heap4 of the pending deadlines; the shadow knows when timers are due, but
// the fire order is the runtime's.
//
// Unlike the other queues, a RuntimeQueue may be used from several
// goroutines; in particular Close may be called from another goroutine to
// release a PopDue that is blocked. Call Close when done with it: it stops
// every pending runtime timer.
type RuntimeQueue struct {
	mu     sync.Mutex
	start  time.Time
	pushed bool // a timer has been pushed (or Advance called): start is fixed
	closed bool
	x      extTimers
	ready  []readyEntry
	// signal receives a token whenever a callback adds to ready; done is
	// closed by Close. PopDue waits on both.
	signal chan struct{}
	done   chan struct{}
	// running counts the runtime timers whose callback has neither
	// returned nor been prevented by Stop, so Close can wait for the
	// last callback.
	running sync.WaitGroup
}

var (
	_ Queue    = (*RuntimeQueue)(nil)
	_ Advancer = (*RuntimeQueue)(nil)
)

// NewRuntimeQueue returns an empty RuntimeQueue whose virtual time zero is
// now. Close it when done.
func NewRuntimeQueue() *RuntimeQueue {
	return &RuntimeQueue{
		start:  time.Now(),
		x:      extTimers{shadow: NewHeap4()},
		signal: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// Advance implements Advancer. Only the first call matters, and only if no
// timer has been pushed yet: it makes virtual time now the current real
// time. Later calls change nothing: virtual time follows real time.
func (q *RuntimeQueue) Advance(now int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.pushed {
		q.start = time.Now().Add(-time.Duration(now))
		q.pushed = true
	}
}

// Push implements Queue. It panics after Close.
func (q *RuntimeQueue) Push(id ID, when int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		panic("timers: RuntimeQueue.Push after Close")
	}
	q.pushed = true
	q.x.slot(id).when = when
	q.x.shadow.Push(id, when)
	q.arm(id)
}

// Remove implements Queue. After Close it does nothing.
func (q *RuntimeQueue) Remove(id ID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.disarm(id)
	q.x.shadow.Remove(id)
}

// Reschedule implements Queue: the runtime timer is stopped and a new one
// made, so that a callback of the old one that has already started is
// recognised as stale. It panics after Close.
func (q *RuntimeQueue) Reschedule(id ID, when int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		panic("timers: RuntimeQueue.Reschedule after Close")
	}
	q.disarm(id)
	q.x.slots[id].when = when
	q.x.shadow.Reschedule(id, when)
	q.arm(id)
}

// Peek implements Queue, from the shadow heap.
func (q *RuntimeQueue) Peek() (int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.x.shadow.Peek()
}

// Len implements Queue, from the shadow heap.
func (q *RuntimeQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.x.shadow.Len()
}

// PopDue implements Queue, in the runtime's order. It blocks while a timer
// is due at now but the runtime has not fired it yet (see RuntimeQueue).
// After Close it returns ok == false.
func (q *RuntimeQueue) PopDue(now int64) (ID, int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed {
		if id, when, ok := q.x.take(&q.ready, now); ok {
			return id, when, true
		}
		if w, ok := q.x.shadow.Peek(); !ok || w > now {
			return 0, 0, false
		}
		// Due by the shadow, not yet fired by the runtime: wait. A
		// callback appends under mu before it signals, and signal
		// holds a token, so no wake-up is lost.
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-q.done:
		}
		q.mu.Lock()
	}
	return 0, 0, false
}

// Close stops every pending runtime timer, waits for callbacks already
// running to return, and empties the queue. Afterwards PopDue, Peek and Len
// report an empty queue, Remove does nothing and Push and Reschedule panic.
// A PopDue blocked in another goroutine returns ok == false. Close may be
// called more than once.
func (q *RuntimeQueue) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	for id := range q.x.slots {
		if q.x.slots[id].t != nil {
			q.disarm(ID(id))
		}
	}
	q.x.shadow = NewHeap4()
	q.ready = nil
	close(q.done)
	q.mu.Unlock()
	q.running.Wait()
}

// arm starts id's runtime timer at its deadline, as a new generation.
// q.mu is held, so the callback, which takes it, cannot run before the
// timer is recorded.
func (q *RuntimeQueue) arm(id ID) {
	s := &q.x.slots[id]
	s.gen++
	e := readyEntry{id, s.gen}
	// Deadlines are not negative and the elapsed time is far from
	// overflowing, so this does not overflow.
	d := time.Duration(s.when) - time.Since(q.start)
	q.running.Add(1)
	s.t = time.AfterFunc(d, func() { q.fire(e) })
}

// disarm stops id's runtime timer. q.mu is held.
func (q *RuntimeQueue) disarm(id ID) {
	if q.x.disarm(id) {
		q.running.Done() // its callback will never run
	}
}

// fire is the runtime timers' callback: it records the timer as fired and
// wakes PopDue. It blocks only on q.mu, which nobody holds for long.
func (q *RuntimeQueue) fire(e readyEntry) {
	defer q.running.Done()
	q.mu.Lock()
	if !q.closed && q.x.valid(e) {
		q.ready = append(q.ready, e)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// stopper is what the adapters need of an underlying timer: *time.Timer and
// tcpip.Timer both have it.
type stopper interface{ Stop() bool }

// extSlot is an adapter's record of one ID.
type extSlot struct {
	t    stopper // nil when not pending
	when int64   // the virtual deadline, which PopDue returns
	gen  uint32  // bumped whenever the ID is armed, disarmed or popped
}

// extTimers is what both adapters keep besides the underlying timers: the
// shadow heap and the per-ID records.
type extTimers struct {
	shadow *Heap4
	slots  []extSlot
}

func (x *extTimers) slot(id ID) *extSlot {
	for int(id) >= len(x.slots) {
		x.slots = append(x.slots, extSlot{})
	}
	return &x.slots[id]
}

// valid reports whether e is a callback of id's current arming.
func (x *extTimers) valid(e readyEntry) bool {
	s := &x.slots[e.id]
	return s.t != nil && s.gen == e.gen
}

// take removes from *ready the first valid entry, in ready order, whose
// deadline is at or before now, unschedules its timer and returns it. It
// drops stale entries on the way.
func (x *extTimers) take(ready *[]readyEntry, now int64) (ID, int64, bool) {
	r := *ready
	kept := r[:0]
	found := false
	var e readyEntry
	for _, c := range r {
		if !x.valid(c) {
			continue
		}
		if !found && x.slots[c.id].when <= now {
			e, found = c, true
			continue
		}
		kept = append(kept, c)
	}
	clear(r[len(kept):])
	*ready = kept
	if !found {
		return 0, 0, false
	}
	s := &x.slots[e.id]
	s.t = nil // it has fired: nothing to stop
	s.gen++
	x.shadow.Remove(e.id)
	return e.id, s.when, true
}

// disarm stops id's underlying timer and reports what Stop returned. The
// new generation makes stale whatever a callback that already started
// records.
func (x *extTimers) disarm(id ID) bool {
	s := &x.slots[id]
	stopped := s.t.Stop()
	s.t = nil
	s.gen++
	return stopped
}

// FaketimeQueue is a Queue over one gVisor faketime.ManualClock: every timer
// is a ManualClock timer, and PopDue moves the ManualClock forward with
// Advance, which runs the due callbacks synchronously. It is NOT
// deterministic: the ManualClock keeps the timers of one instant in a Go map
// and runs them in map iteration order, so timers with equal deadlines come
// out in random order (not scheduling order, as Queue asks). Timers with
// distinct deadlines come out in deadline order.
//
// A timer pushed at or before the ManualClock's current time is run by the
// ManualClock at once, in a new goroutine; PopDue waits for such goroutines
// (through Advance) before it looks for due timers. It comes out after any
// timer that had already fired but not yet been popped, whatever their
// deadlines. The Clock never pushes into the past, so this matters only to
// direct users of the queue.
//
// As for RuntimeQueue, Peek and Len come from a shadow Heap4 of the pending
// deadlines, which also tells PopDue whether to advance the ManualClock; the
// order comes from the ManualClock's callbacks. Like the other queues, and
// unlike RuntimeQueue, it is not safe for concurrent use: the Clock
// serialises the calls. Call Close when done with it.
type FaketimeQueue struct {
	mc     *faketime.ManualClock
	closed bool
	x      extTimers
	// readyMu guards ready, which the ManualClock's callbacks append to,
	// sometimes from goroutines of their own.
	readyMu sync.Mutex
	ready   []readyEntry
}

var _ Queue = (*FaketimeQueue)(nil)

// faketimeEpoch is the time a new faketime.ManualClock reads: the
// adapter's virtual time zero.
var faketimeEpoch = time.Unix(0, 0)

// NewFaketimeQueue returns an empty FaketimeQueue over a new ManualClock at
// virtual time zero. Close it when done.
func NewFaketimeQueue() *FaketimeQueue {
	return &FaketimeQueue{mc: faketime.NewManualClock(), x: extTimers{shadow: NewHeap4()}}
}

// Push implements Queue. It panics after Close.
func (q *FaketimeQueue) Push(id ID, when int64) {
	if q.closed {
		panic("timers: FaketimeQueue.Push after Close")
	}
	q.x.slot(id).when = when
	q.x.shadow.Push(id, when)
	q.arm(id)
}

// Remove implements Queue. After Close it does nothing.
func (q *FaketimeQueue) Remove(id ID) {
	if q.closed {
		return
	}
	q.x.disarm(id)
	q.x.shadow.Remove(id)
}

// Reschedule implements Queue: the ManualClock timer is stopped and a new
// one made rather than Reset, so that a callback the ManualClock has
// already started in a goroutine of its own is recognised as stale. It
// panics after Close.
func (q *FaketimeQueue) Reschedule(id ID, when int64) {
	if q.closed {
		panic("timers: FaketimeQueue.Reschedule after Close")
	}
	q.x.disarm(id)
	q.x.slots[id].when = when
	q.x.shadow.Reschedule(id, when)
	q.arm(id)
}

// Peek implements Queue, from the shadow heap.
func (q *FaketimeQueue) Peek() (int64, bool) { return q.x.shadow.Peek() }

// Len implements Queue, from the shadow heap.
func (q *FaketimeQueue) Len() int { return q.x.shadow.Len() }

// PopDue implements Queue, in the order the ManualClock ran the callbacks.
// If no fired timer is due but the shadow says one is, it first advances
// the ManualClock to now. After Close it returns ok == false.
func (q *FaketimeQueue) PopDue(now int64) (ID, int64, bool) {
	if q.closed {
		return 0, 0, false
	}
	if id, when, ok := q.take(now); ok {
		return id, when, true
	}
	if w, ok := q.x.shadow.Peek(); !ok || w > now {
		return 0, 0, false
	}
	// Advance first waits for the callbacks the ManualClock started in
	// goroutines, then runs those due by now. readyMu must not be held:
	// the callbacks take it.
	q.mc.Advance(max(time.Duration(now-q.mcNow()), 0))
	if id, when, ok := q.take(now); ok {
		return id, when, true
	}
	panic("timers: FaketimeQueue: the ManualClock did not fire a due timer")
}

// Close stops every pending ManualClock timer, waits for the callbacks the
// ManualClock runs in goroutines of their own, and empties the queue.
// Afterwards PopDue, Peek and Len report an empty queue, Remove does nothing
// and Push and Reschedule panic. Close may be called more than once.
func (q *FaketimeQueue) Close() {
	if q.closed {
		return
	}
	q.closed = true
	for id := range q.x.slots {
		if q.x.slots[id].t != nil {
			q.x.disarm(ID(id))
		}
	}
	q.x.shadow = NewHeap4()
	// Nothing is pending any more, so this only waits for the goroutines.
	q.mc.RunImmediatelyScheduledJobs()
	q.readyMu.Lock()
	q.ready = nil
	q.readyMu.Unlock()
}

// mcNow returns the ManualClock's time as virtual nanoseconds.
func (q *FaketimeQueue) mcNow() int64 { return int64(q.mc.Now().Sub(faketimeEpoch)) }

// arm starts id's ManualClock timer at its deadline, as a new generation.
func (q *FaketimeQueue) arm(id ID) {
	s := &q.x.slots[id]
	s.gen++
	e := readyEntry{id, s.gen}
	// A deadline at or before the ManualClock's time (d <= 0) makes it
	// run the callback at once in a goroutine; Advance waits for it.
	s.t = q.mc.AfterFunc(time.Duration(s.when-q.mcNow()), func() {
		q.readyMu.Lock()
		q.ready = append(q.ready, e)
		q.readyMu.Unlock()
	})
}

// take pops the first fired timer due at now, if any. The records in q.x
// belong to the driver; only ready is shared with the callbacks.
func (q *FaketimeQueue) take(now int64) (ID, int64, bool) {
	q.readyMu.Lock()
	defer q.readyMu.Unlock()
	return q.x.take(&q.ready, now)
}
