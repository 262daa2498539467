package timers

import "math"

// TickQueue is a Queue that fires every timer on a periodic tick: a timer
// due at t fires at the first multiple of the tick at or after t (ticks
// count from virtual time zero). It models a stack whose timers are all
// checked by one periodic routine, as lwIP's TCP timers are by tcp_slowtmr
// every 500 ms (TCP_SLOW_INTERVAL): a deadline between two runs is met at
// the later one. Timers due at the same tick fire in scheduling order.
// SetOrigin moves the ticks to origin + k x tick: lwIP's timer starts with
// the host's first connection, not with the run.
type TickQueue struct {
	tick   int64
	origin int64 // in [0, tick)
	q      *Heap4
}

// SetOrigin makes the ticks fall at origin + k x tick for every integer k.
// Timers already queued keep the tick they were rounded to.
func (t *TickQueue) SetOrigin(origin int64) {
	t.origin = (origin%t.tick + t.tick) % t.tick
}

// NewTickQueue returns an empty queue ticking every tick nanoseconds
// (tick > 0).
func NewTickQueue(tick int64) *TickQueue {
	if tick <= 0 {
		panic("timers: NewTickQueue: tick must be positive")
	}
	return &TickQueue{tick: tick, q: NewHeap4()}
}

// Tick returns the queue's tick, in nanoseconds.
func (t *TickQueue) Tick() int64 { return t.tick }

// Round returns the tick at or after when: when the queue fires a timer
// due then. Deadlines past the last representable tick become
// math.MaxInt64 (they never come).
func (t *TickQueue) Round(when int64) int64 {
	if t.origin != 0 {
		if when > math.MaxInt64-t.tick {
			return math.MaxInt64
		}
		return t.origin + t.roundZero(when-t.origin)
	}
	return t.roundZero(when)
}

// roundZero rounds when up to a multiple of the tick.
func (t *TickQueue) roundZero(when int64) int64 {
	r := when % t.tick
	switch {
	case r == 0:
		return when
	case r < 0: // a deadline before zero: round towards zero
		return when - r
	case when > math.MaxInt64-(t.tick-r):
		return math.MaxInt64
	}
	return when + t.tick - r
}

// Push implements Queue.
func (t *TickQueue) Push(id ID, when int64) { t.q.Push(id, t.Round(when)) }

// Remove implements Queue.
func (t *TickQueue) Remove(id ID) { t.q.Remove(id) }

// Reschedule implements Queue.
func (t *TickQueue) Reschedule(id ID, when int64) { t.q.Reschedule(id, t.Round(when)) }

// Peek implements Queue: the tick the next timer fires at.
func (t *TickQueue) Peek() (int64, bool) { return t.q.Peek() }

// PopDue implements Queue. The deadline it returns is the tick the timer
// fires at, not the one it asked for.
func (t *TickQueue) PopDue(now int64) (ID, int64, bool) { return t.q.PopDue(now) }

// Len implements Queue.
func (t *TickQueue) Len() int { return t.q.Len() }
