package timers

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// checkDistinctAgainstHeap drives q and a Heap4 side by side with random
// Push, Remove, Reschedule and PopDue calls whose deadlines are all
// distinct (multiples of unit), and fails at the first difference in
// PopDue, Peek or Len. With distinct deadlines the adapters' nondeterminism
// (equal deadlines) cannot show, so the fire sequence must be the heap's:
// every timer exactly once, never early. If jump, time moves forward by
// random amounts, so that several timers are often due at once; otherwise
// it moves to the next deadline, as Clock's driver does. onPop sees every
// timer popped. It returns how many timers fired.
func checkDistinctAgainstHeap(t *testing.T, q Queue, seed uint64, steps int, unit int64, jump bool, onPop func(id ID, when int64)) int {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	h := NewHeap4()
	const ids = 24
	pending := make([]bool, ids)
	used := map[int64]bool{}
	var now int64
	fired := 0
	// fresh returns an unused deadline at or after now.
	fresh := func() int64 {
		for tries := int64(0); ; tries++ {
			w := now + unit*r.Int64N(40+tries)
			if !used[w] {
				used[w] = true
				return w
			}
		}
	}
	pop := func(step int) bool {
		gid, gwhen, gok := q.PopDue(now)
		wid, wwhen, wok := h.PopDue(now)
		if gid != wid || gwhen != wwhen || gok != wok {
			t.Fatalf("step %d: PopDue(%d) = %d@%d,%v; want %d@%d,%v", step, now, gid, gwhen, gok, wid, wwhen, wok)
		}
		if gok {
			if gwhen > now {
				t.Fatalf("step %d: PopDue(%d) returned %d due at %d: early", step, now, gid, gwhen)
			}
			pending[gid] = false
			fired++
			onPop(gid, gwhen)
		}
		return gok
	}
	for step := 0; step < steps; step++ {
		id := ID(r.UintN(ids))
		switch op := r.UintN(10); {
		case op < 4:
			w := fresh()
			if pending[id] {
				q.Reschedule(id, w)
				h.Reschedule(id, w)
			} else {
				q.Push(id, w)
				h.Push(id, w)
				pending[id] = true
			}
		case op < 5:
			if pending[id] {
				q.Remove(id)
				h.Remove(id)
				pending[id] = false
			}
		case op < 8:
			pop(step)
		default:
			if jump {
				now += unit * r.Int64N(30)
			} else if w, ok := h.Peek(); ok && w > now {
				now = w
			}
		}
		gw, gok := q.Peek()
		ww, wok := h.Peek()
		if gw != ww || gok != wok || q.Len() != h.Len() {
			t.Fatalf("step %d: Peek, Len = %d,%v,%d; want %d,%v,%d", step, gw, gok, q.Len(), ww, wok, h.Len())
		}
	}
	// Drain, deadline by deadline.
	for {
		w, ok := h.Peek()
		if !ok {
			break
		}
		now = max(now, w)
		for pop(steps) {
		}
	}
	if _, ok := q.Peek(); ok || q.Len() != 0 {
		t.Fatalf("after draining: Len = %d; want an empty queue", q.Len())
	}
	return fired
}

func TestFaketimeQueueMatchesHeap4OnDistinctDeadlines(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		for _, jump := range []bool{false, true} {
			q := NewFaketimeQueue()
			fired := checkDistinctAgainstHeap(t, q, seed, 3000, 1, jump, func(ID, int64) {})
			if fired < 200 {
				t.Fatalf("seed %d: only %d timers fired; the test exercises too little", seed, fired)
			}
			q.Close()
		}
	}
}

func TestRuntimeQueueMatchesHeap4OnDistinctDeadlines(t *testing.T) {
	before := time.Now()
	q := NewRuntimeQueue()
	defer q.Close()
	const unit = int64(time.Millisecond)
	fired := checkDistinctAgainstHeap(t, q, 7, 500, unit, false, func(id ID, when int64) {
		// The queue's time zero is after before, so this is a lower
		// bound of the real time the runtime timer waited.
		if el := time.Since(before); int64(el) < when {
			t.Fatalf("timer %d due at %v came out after only %v of real time", id, time.Duration(when), el)
		}
	})
	if fired < 40 {
		t.Fatalf("only %d timers fired; the test exercises too little", fired)
	}
	t.Logf("%d timers in %v", fired, time.Since(before))
}

// With several timers due at once, the order is the runtime's: deadlines
// far enough apart that the runtime expires them in separate passes come
// out in deadline order, each only once its real time has come.
func TestRuntimeQueueSeveralDueFireInRuntimeOrder(t *testing.T) {
	before := time.Now()
	q := NewRuntimeQueue()
	defer q.Close()
	const gap = 20 * time.Millisecond
	for _, i := range []ID{3, 0, 4, 2, 1, 5} {
		q.Push(i, int64(time.Duration(i+1)*gap))
	}
	q.Remove(2)
	q.Reschedule(5, int64(7*gap)) // beyond now: must stay
	q.Reschedule(0, int64(1*gap)) // same deadline, new arming
	now := int64(6 * gap)
	var got []ID
	for {
		id, when, ok := q.PopDue(now)
		if !ok {
			break
		}
		if el := time.Since(before); int64(el) < when {
			t.Fatalf("timer %d due at %v came out after only %v", id, time.Duration(when), el)
		}
		if want := int64(time.Duration(id+1) * gap); when != want {
			t.Fatalf("timer %d came out with deadline %v; want %v", id, time.Duration(when), time.Duration(want))
		}
		got = append(got, id)
	}
	if want := []ID{0, 1, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("fired %v; want %v", got, want)
	}
	if w, ok := q.Peek(); !ok || w != int64(7*gap) || q.Len() != 1 {
		t.Fatalf("Peek, Len = %v,%v,%d; want %v,true,1", w, ok, q.Len(), 7*gap)
	}
}

// A runtime callback that has run for an arming that was then removed or
// rescheduled must not come out.
func TestRuntimeQueueIgnoresStaleCallbacks(t *testing.T) {
	q := NewRuntimeQueue()
	defer q.Close()
	q.Push(0, 0)
	q.Push(1, 0)
	waitReady(t, &q.mu, &q.ready, 2)
	q.Reschedule(0, int64(time.Hour))
	q.Remove(1)
	if id, when, ok := q.PopDue(int64(time.Minute)); ok {
		t.Fatalf("PopDue = %d@%d after the timers were moved and removed; want nothing", id, when)
	}
	q.Reschedule(0, int64(time.Millisecond))
	id, when, ok := q.PopDue(int64(time.Minute))
	if !ok || id != 0 || when != int64(time.Millisecond) {
		t.Fatalf("PopDue = %d@%d,%v; want 0@%d,true", id, when, ok, time.Millisecond)
	}
	if id, when, ok := q.PopDue(int64(time.Minute)); ok {
		t.Fatalf("PopDue = %d@%d twice for one arming", id, when)
	}
}

func TestFaketimeQueueIgnoresStaleCallbacks(t *testing.T) {
	q := NewFaketimeQueue()
	defer q.Close()
	q.Push(0, 1)
	q.Push(1, 2)
	q.Push(2, 3)
	if id, _, ok := q.PopDue(5); !ok || id != 0 {
		t.Fatalf("PopDue(5) = %d,%v; want 0", id, ok)
	}
	// 1 and 2 have fired inside the ManualClock but are still pending.
	q.Reschedule(1, 10)
	q.Remove(2)
	// At the ManualClock's time: run at once, in a goroutine; then gone.
	q.Push(3, 5)
	q.Remove(3)
	if id, when, ok := q.PopDue(5); ok {
		t.Fatalf("PopDue(5) = %d@%d; want nothing", id, when)
	}
	if id, when, ok := q.PopDue(10); !ok || id != 1 || when != 10 {
		t.Fatalf("PopDue(10) = %d@%d,%v; want 1@10", id, when, ok)
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d; want 0", q.Len())
	}
}

// waitReady waits until *ready holds n entries, guarded by mu.
func waitReady(t *testing.T, mu interface {
	Lock()
	Unlock()
}, ready *[]readyEntry, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := len(*ready)
		mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks ran; want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// driveClock runs c's timers to the end as a driver does: advance to the
// next deadline, fire what is due, repeat.
func driveClock(t *testing.T, c *Clock) {
	t.Helper()
	for i := 0; ; i++ {
		next, ok := c.NextDeadline()
		if !ok {
			return
		}
		if i > 100 {
			t.Fatal("the clock never runs out of timers")
		}
		c.AdvanceTo(next)
		c.FireDue(100)
	}
}

func TestFaketimeQueueDrivesClock(t *testing.T) {
	q := NewFaketimeQueue()
	defer q.Close()
	c := NewClock(q, time.Time{})
	type fire struct {
		name string
		at   time.Duration
	}
	var got []fire
	rec := func(s string) func() { return func() { got = append(got, fire{s, c.Elapsed()}) } }
	c.AfterFunc(3*time.Second, rec("c"))
	c.AfterFunc(time.Second, func() {
		rec("a")()
		c.AfterFunc(0, rec("a0")) // due now: the ManualClock's goroutine path
	})
	c.AfterFunc(1200*time.Millisecond, rec("a2"))
	c.AfterFunc(2*time.Second, rec("b"))
	moved := c.AfterFunc(time.Hour, rec("d"))
	moved.Reset(4 * time.Second)
	c.AfterFunc(5*time.Second, rec("never")).Stop()

	c.AdvanceTo(1500 * time.Millisecond)
	if n := c.FireDue(100); n != 3 {
		t.Fatalf("FireDue at 1.5s ran %d callbacks; want 3 (a, a2, a0)", n)
	}
	driveClock(t, c)
	// a and a2 run late, at 1.5s, because the driver jumped there; a0,
	// scheduled by a for then, runs after a2, which was due before it.
	want := []fire{{"a", 1500 * time.Millisecond}, {"a2", 1500 * time.Millisecond}, {"a0", 1500 * time.Millisecond}, {"b", 2 * time.Second}, {"c", 3 * time.Second}, {"d", 4 * time.Second}}
	if !slices.Equal(got, want) {
		t.Fatalf("fired %v; want %v", got, want)
	}
	if c.Fired() != 6 || c.Pending() != 0 {
		t.Fatalf("Fired, Pending = %d, %d; want 6, 0", c.Fired(), c.Pending())
	}
}

func TestRuntimeQueueDrivesClockInRealTime(t *testing.T) {
	q := NewRuntimeQueue()
	defer q.Close()
	c := NewClock(q, time.Time{})
	var got []string
	rec := func(s string) func() { return func() { got = append(got, s) } }
	start := time.Now()
	c.AfterFunc(time.Millisecond, rec("1ms"))
	c.AfterFunc(3*time.Millisecond, rec("3ms"))
	c.AfterFunc(2*time.Millisecond, rec("2ms"))
	driveClock(t, c)
	took := time.Since(start)
	if want := []string{"1ms", "2ms", "3ms"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v; want %v", got, want)
	}
	if took < 3*time.Millisecond {
		t.Fatalf("three timers up to 3ms fired in %v of real time; want at least 3ms", took)
	}
	if c.Fired() != 3 {
		t.Fatalf("Fired = %d; want 3", c.Fired())
	}
}

// A RuntimeQueue added to a clock that has already moved starts in step
// with it: its first Advance, before any timer, anchors virtual time.
func TestRuntimeQueueLaneStartsInStep(t *testing.T) {
	c := NewClock(nil, time.Time{})
	c.AdvanceTo(time.Hour)
	q := NewRuntimeQueue()
	defer q.Close()
	start := time.Now()
	l := c.NewLane(q)
	fired := false
	l.AfterFunc(5*time.Millisecond, func() { fired = true })
	c.AdvanceTo(time.Hour + 5*time.Millisecond)
	done := make(chan int)
	go func() { done <- c.FireDue(10) }()
	select {
	case n := <-done:
		if n != 1 || !fired {
			t.Fatalf("FireDue ran %d callbacks (fired %v); want 1", n, fired)
		}
	case <-time.After(10 * time.Second):
		q.Close() // release FireDue
		<-done
		t.Fatal("a 5ms timer on a lane added at virtual 1h did not fire within 10s")
	}
	if took := time.Since(start); took < 5*time.Millisecond {
		t.Fatalf("a 5ms timer fired after %v", took)
	}
}

func TestRuntimeQueueCloseStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewRuntimeQueue()
	for id := ID(0); id < 50; id++ {
		q.Push(id, int64(time.Duration(id)*100*time.Microsecond)) // some fire during the test
	}
	q.Push(50, int64(time.Hour))
	q.Push(51, int64(time.Hour))
	if _, _, ok := q.PopDue(0); !ok {
		t.Fatal("PopDue(0) found nothing due")
	}
	// A PopDue blocked on the hour-long timers is released by Close.
	popped := make(chan bool)
	go func() {
		_, _, ok := q.PopDue(int64(2 * time.Hour))
		for ok {
			_, _, ok = q.PopDue(int64(2 * time.Hour))
		}
		popped <- ok
	}()
	time.Sleep(10 * time.Millisecond)
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	// Close waits for every runtime callback it did not stop: an
	// hour-long timer left running would keep it waiting.
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: a runtime timer was left running")
	}
	select {
	case ok := <-popped:
		if ok {
			t.Fatal("PopDue returned a timer after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release a blocked PopDue")
	}
	if _, ok := q.Peek(); ok || q.Len() != 0 {
		t.Fatalf("after Close: Len = %d; want an empty queue", q.Len())
	}
	q.Remove(50) // no-op after Close, as Clock.StopAll may do
	q.Close()
}

func TestFaketimeQueueCloseStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewFaketimeQueue()
	for id := ID(0); id < 10; id++ {
		q.Push(id, int64(id)) // 0 is due at once: a ManualClock goroutine
	}
	q.Close()
	if _, ok := q.Peek(); ok || q.Len() != 0 {
		t.Fatalf("after Close: Len = %d; want an empty queue", q.Len())
	}
	// Nothing is left in the ManualClock to fire.
	q.mc.Advance(time.Hour)
	q.readyMu.Lock()
	n := len(q.ready)
	q.readyMu.Unlock()
	if n != 0 {
		t.Fatalf("%d ManualClock timers fired after Close; want 0", n)
	}
	if id, _, ok := q.PopDue(int64(time.Hour)); ok {
		t.Fatalf("PopDue returned %d after Close", id)
	}
}
