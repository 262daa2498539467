// Package timers provides kasim's virtual clocks and the timer queues behind them.
//
// A Clock implements gVisor's tcpip.Clock on virtual time: nothing happens
// until the driver advances it, timers due at the same instant fire in the
// order they were scheduled, and callbacks run synchronously on the driver's
// goroutine. The Clock keeps its pending timers in a Queue, so a different
// queue (a timing wheel, say) can be swapped in without touching the stack.
package timers

// ID names one timer inside a Queue. IDs are small, dense integers handed out
// by the Clock, so a queue can keep per-timer state in slices indexed by ID
// instead of in maps or pointer-linked nodes.
type ID uint32

// Queue holds pending timers ordered by deadline and, for equal deadlines, by
// the order in which they were scheduled (Push or Reschedule). Deadlines are
// virtual nanoseconds. Every implementation must give the same order for the
// same sequence of calls: the Clock's determinism rests on it.
//
// The caller guarantees the preconditions (Push only for an ID that is not
// pending, Remove and Reschedule only for a pending one); a queue need not
// check them.
type Queue interface {
	// Push schedules id, which is not pending, at deadline when.
	Push(id ID, when int64)
	// Remove unschedules id, which is pending.
	Remove(id ID)
	// Reschedule moves pending id to deadline when. Among timers with that
	// deadline it now fires last, as if it had just been pushed.
	Reschedule(id ID, when int64)
	// Peek returns the earliest pending deadline, or ok == false if the
	// queue is empty.
	Peek() (when int64, ok bool)
	// PopDue removes and returns the first timer in (deadline, scheduling
	// order) whose deadline is at or before now, or ok == false if none is.
	PopDue(now int64) (id ID, when int64, ok bool)
	// Len returns the number of pending timers.
	Len() int
}
