package timers

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Epoch is the wall-clock time a virtual Clock reads at virtual time zero
// unless told otherwise. A fixed epoch keeps every output that shows wall
// time (pcap timestamps, TCP timestamp options) the same from run to run.
var Epoch = time.Unix(0, 0).UTC()

// Clock is a virtual tcpip.Clock. Time stands still until the driver moves it
// with AdvanceTo; timers never fire on their own: the driver calls FireDue,
// which runs every due callback synchronously, on the driver's goroutine, in
// (deadline, scheduling order).
//
// AfterFunc, Stop and Reset may be called from any goroutine (gVisor calls
// them from its TCP processor goroutines). AdvanceTo and FireDue belong to
// the single driver goroutine.
type Clock struct {
	start time.Time
	now   atomic.Int64 // virtual nanoseconds since start

	mu sync.Mutex
	// lanes are the timer queues: lane 0 is the clock's own, NewLane adds
	// more that share its time (a host whose kernel rounds timers, say).
	lanes []Queue
	slots []slot
	free  []ID
	fired uint64
}

type slot struct {
	f       func()
	lane    int
	pending bool
	// owner keeps the Timer reachable while it is pending: a tcpip.Timer,
	// like a Go runtime timer, must fire even if its creator dropped it.
	// Once the timer is neither pending nor referenced, a cleanup returns
	// its ID to the free list.
	owner *Timer
}

// NewClock returns a virtual clock at virtual time zero that keeps its timers
// in q (a Heap4 if q is nil) and reads start (Epoch if zero) at time zero.
func NewClock(q Queue, start time.Time) *Clock {
	if q == nil {
		q = NewHeap4()
	}
	if start.IsZero() {
		start = Epoch
	}
	return &Clock{lanes: []Queue{q}, start: start}
}

// Lane is a view of a Clock whose timers live in a queue of their own but
// share the Clock's time and firing: a host whose kernel rounds its timers
// (LinuxWheel) can run beside exact ones. It implements tcpip.Clock.
type Lane struct {
	c    *Clock
	lane int
}

// NewLane adds a lane keeping its timers in q. At equal deadlines, timers of
// earlier lanes fire first; within a lane, in scheduling order.
func (c *Clock) NewLane(q Queue) *Lane {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lanes = append(c.lanes, q)
	if a, ok := q.(Advancer); ok {
		a.Advance(c.now.Load())
	}
	return &Lane{c: c, lane: len(c.lanes) - 1}
}

// Now implements tcpip.Clock.
func (l *Lane) Now() time.Time { return l.c.Now() }

// NowMonotonic implements tcpip.Clock.
func (l *Lane) NowMonotonic() tcpip.MonotonicTime { return l.c.NowMonotonic() }

// AfterFunc implements tcpip.Clock, in the lane's queue.
func (l *Lane) AfterFunc(d time.Duration, f func()) tcpip.Timer { return l.c.afterFunc(l.lane, d, f) }

var _ tcpip.Clock = (*Clock)(nil)

// Now implements tcpip.Clock.
func (c *Clock) Now() time.Time { return c.start.Add(time.Duration(c.now.Load())) }

// NowMonotonic implements tcpip.Clock.
func (c *Clock) NowMonotonic() tcpip.MonotonicTime {
	var zero tcpip.MonotonicTime
	return zero.Add(time.Duration(c.now.Load()))
}

// Elapsed returns the virtual time since the clock started.
func (c *Clock) Elapsed() time.Duration { return time.Duration(c.now.Load()) }

// AfterFunc implements tcpip.Clock. f runs when the driver fires the timer,
// never inside AfterFunc itself, even when d <= 0: gVisor calls AfterFunc
// with its own locks held.
func (c *Clock) AfterFunc(d time.Duration, f func()) tcpip.Timer { return c.afterFunc(0, d, f) }

func (c *Clock) afterFunc(lane int, d time.Duration, f func()) tcpip.Timer {
	t := &Timer{c: c}
	c.mu.Lock()
	if n := len(c.free); n > 0 {
		t.id = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		t.id = ID(len(c.slots))
		c.slots = append(c.slots, slot{})
	}
	c.slots[t.id] = slot{f: f, lane: lane, pending: true, owner: t}
	c.lanes[lane].Push(t.id, c.deadline(d))
	c.mu.Unlock()
	// The cleanup must not hold the clock: cleanups are GC roots, the
	// clock holds its pending timers, and they hold whatever their
	// callbacks reach (gVisor endpoints, whole stacks), so a strong
	// reference here would keep every clock with a pending timer alive.
	runtime.AddCleanup(t, releaseID, idRef{weak.Make(c), t.id})
	return t
}

type idRef struct {
	clock weak.Pointer[Clock]
	id    ID
}

func releaseID(r idRef) {
	if c := r.clock.Value(); c != nil {
		c.release(r.id)
	}
}

// deadline returns now+d, saturating instead of overflowing.
func (c *Clock) deadline(d time.Duration) int64 {
	now := c.now.Load()
	if d <= 0 {
		return now
	}
	if int64(d) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(d)
}

func (c *Clock) release(id ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slots[id].pending { // unreachable: a pending slot holds its owner
		return
	}
	c.slots[id] = slot{}
	c.free = append(c.free, id)
}

// NextDeadline returns the virtual time of the earliest pending timer.
func (c *Clock) NextDeadline() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, when, ok := c.earliest()
	return time.Duration(when), ok
}

// earliest returns the lane whose next timer is due first, and when.
func (c *Clock) earliest() (lane int, when int64, ok bool) {
	for i, q := range c.lanes {
		if w, has := q.Peek(); has && (!ok || w < when) {
			lane, when, ok = i, w, true
		}
	}
	return lane, when, ok
}

// Pending returns the number of pending timers.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, q := range c.lanes {
		n += q.Len()
	}
	return n
}

// Fired returns how many timer callbacks have run.
func (c *Clock) Fired() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired
}

// Advancer is implemented by queues that need to know the current time to
// place a timer (LinuxWheel, like the kernel's timer base, rounds from
// "now"); the Clock tells them whenever time moves.
type Advancer interface {
	Advance(now int64)
}

// AdvanceTo moves virtual time forward to t without firing anything; call
// FireDue next. Moving backwards is a driver bug and panics.
func (c *Clock) AdvanceTo(t time.Duration) {
	if now := c.now.Load(); int64(t) < now {
		panic(fmt.Sprintf("timers: AdvanceTo(%v) moves back from %v", t, time.Duration(now)))
	}
	c.now.Store(int64(t))
	c.mu.Lock()
	for _, q := range c.lanes {
		if a, ok := q.(Advancer); ok {
			a.Advance(int64(t))
		}
	}
	c.mu.Unlock()
}

// FireDue runs, one by one, the timers due at or before the current virtual
// time, including timers those callbacks schedule for now, until none is
// due or limit callbacks have run, and returns how many ran. The limit lets
// a driver notice a callback that reschedules itself for now forever.
func (c *Clock) FireDue(limit int) int {
	n := 0
	for n < limit {
		c.mu.Lock()
		lane := 0
		if len(c.lanes) > 1 {
			lane, _, _ = c.earliest()
		}
		id, _, ok := c.lanes[lane].PopDue(c.now.Load())
		if !ok {
			c.mu.Unlock()
			return n
		}
		s := &c.slots[id]
		f := s.f
		s.pending = false
		s.owner = nil
		c.fired++
		c.mu.Unlock()
		f()
		n++
	}
	return n
}

// StopAll cancels every timer and forgets the callbacks, so that nothing
// they reach stays alive through the clock; Reset on those timers does
// nothing from then on. Timers made afterwards work as usual.
func (c *Clock) StopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.slots {
		if c.slots[id].pending {
			c.lanes[c.slots[id].lane].Remove(ID(id))
		}
		c.slots[id].f = nil
		c.slots[id].pending = false
		c.slots[id].owner = nil
	}
}

// Timer is a pending or stopped timer of a Clock; it implements tcpip.Timer.
type Timer struct {
	c  *Clock
	id ID
}

// Stop implements tcpip.Timer: it reports whether the timer was pending.
func (t *Timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[t.id]
	if !s.pending {
		return false
	}
	c.lanes[s.lane].Remove(t.id)
	s.pending = false
	s.owner = nil
	return true
}

// Reset implements tcpip.Timer: the timer fires d from now, whether it was
// pending, stopped or already fired.
func (t *Timer) Reset(d time.Duration) {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[t.id]
	if s.f == nil { // stopped for good by StopAll
		return
	}
	when := c.deadline(d)
	if s.pending {
		c.lanes[s.lane].Reschedule(t.id, when)
		return
	}
	s.pending = true
	s.owner = t
	c.lanes[s.lane].Push(t.id, when)
}
