package timers

import (
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kasim/internal/gctest"
)

func TestClockFiresInDeadlineThenSchedulingOrder(t *testing.T) {
	c := NewClock(nil, time.Time{})
	var got []string
	rec := func(s string) func() { return func() { got = append(got, s) } }
	c.AfterFunc(2*time.Second, rec("b1"))
	c.AfterFunc(time.Second, rec("a"))
	c.AfterFunc(2*time.Second, rec("b2"))
	late := c.AfterFunc(time.Hour, rec("moved"))
	late.Reset(2 * time.Second) // now due with the b's, after them
	stopped := c.AfterFunc(2*time.Second, rec("never"))
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop returned true")
	}

	if d, ok := c.NextDeadline(); !ok || d != time.Second {
		t.Fatalf("NextDeadline = %v, %v; want 1s", d, ok)
	}
	c.AdvanceTo(2 * time.Second)
	if n := c.FireDue(1000); n != 4 {
		t.Fatalf("FireDue ran %d, want 4", n)
	}
	if diff := cmp.Diff([]string{"a", "b1", "b2", "moved"}, got); diff != "" {
		t.Fatalf("fire order (-want +got):\n%s", diff)
	}
	if _, ok := c.NextDeadline(); ok {
		t.Fatal("timers left after all fired")
	}
}

func TestClockZeroDelayRunsOnlyWhenFired(t *testing.T) {
	c := NewClock(nil, time.Time{})
	ran := false
	c.AfterFunc(0, func() { ran = true })
	if ran {
		t.Fatal("AfterFunc(0) ran its callback synchronously")
	}
	if c.FireDue(1000) != 1 || !ran {
		t.Fatal("AfterFunc(0) did not fire at the current instant")
	}
}

func TestClockCallbackSchedulingForNowFiresInSameRound(t *testing.T) {
	c := NewClock(nil, time.Time{})
	var got []int
	c.AfterFunc(time.Second, func() {
		got = append(got, 1)
		c.AfterFunc(0, func() { got = append(got, 2) })
	})
	c.AdvanceTo(time.Second)
	c.FireDue(1000)
	if diff := cmp.Diff([]int{1, 2}, got); diff != "" {
		t.Fatal(diff)
	}
}

func TestClockResetAfterFiring(t *testing.T) {
	c := NewClock(nil, time.Time{})
	n := 0
	tm := c.AfterFunc(time.Second, func() { n++ })
	c.AdvanceTo(time.Second)
	c.FireDue(1000)
	if tm.Stop() {
		t.Fatal("Stop after firing returned true")
	}
	tm.Reset(time.Second)
	c.AdvanceTo(2 * time.Second)
	c.FireDue(1000)
	if n != 2 {
		t.Fatalf("fired %d times, want 2", n)
	}
}

func TestClockTimeAndSaturation(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(nil, start)
	c.AdvanceTo(90 * time.Minute)
	if got := c.Now(); !got.Equal(start.Add(90 * time.Minute)) {
		t.Fatalf("Now = %v", got)
	}
	var zero = c.NowMonotonic()
	if got := zero.Sub(zero.Add(-90 * time.Minute)); got != 90*time.Minute {
		t.Fatalf("NowMonotonic arithmetic off: %v", got)
	}
	c.AfterFunc(time.Duration(math.MaxInt64), func() {})
	if d, _ := c.NextDeadline(); d != time.Duration(math.MaxInt64) {
		t.Fatalf("huge delay deadline = %v, want saturated MaxInt64", d)
	}
}

func TestClockAdvanceBackwardsPanics(t *testing.T) {
	c := NewClock(nil, time.Time{})
	c.AdvanceTo(time.Second)
	defer func() {
		if recover() == nil {
			t.Fatal("AdvanceTo backwards did not panic")
		}
	}()
	c.AdvanceTo(0)
}

// A pending timer whose creator dropped it must still fire (as Go's runtime
// timers do); a fired, unreferenced one gives its ID back.
func TestClockRecyclesOnlyUnreachableIdleTimers(t *testing.T) {
	c := NewClock(nil, time.Time{})
	fired := 0
	for i := 0; i < 100; i++ {
		c.AfterFunc(time.Second, func() { fired++ })
	}
	runtime.GC()
	runtime.GC()
	c.AdvanceTo(time.Second)
	if c.FireDue(1000); fired != 100 {
		t.Fatalf("%d of 100 dropped pending timers fired", fired)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		c.mu.Lock()
		free := len(c.free)
		c.mu.Unlock()
		if free == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 100 idle, unreachable timers recycled", free)
		}
		time.Sleep(time.Millisecond)
	}
	c.AfterFunc(time.Second, func() {})
	if len(c.slots) != 100 {
		t.Fatalf("slots grew to %d although IDs were free", len(c.slots))
	}
}

func TestClockFireDueLimit(t *testing.T) {
	c := NewClock(nil, time.Time{})
	n := 0
	var again func()
	again = func() { n++; c.AfterFunc(0, again) }
	c.AfterFunc(0, again)
	if got := c.FireDue(100); got != 100 || n != 100 {
		t.Fatalf("FireDue(100) ran %d (callback saw %d), want 100", got, n)
	}
	if c.Pending() != 1 {
		t.Fatalf("%d pending after the limit, want the 1 rescheduled", c.Pending())
	}
}

func TestClockStopAll(t *testing.T) {
	c := NewClock(nil, time.Time{})
	fired := 0
	old := c.AfterFunc(time.Second, func() { fired++ })
	c.StopAll()
	old.Reset(time.Second)
	if old.Stop() {
		t.Error("Stop after StopAll returned true")
	}
	c.AfterFunc(time.Second, func() { fired += 10 })
	c.AdvanceTo(time.Hour)
	c.FireDue(10)
	if fired != 10 {
		t.Errorf("fired = %d: want only the timer made after StopAll (10)", fired)
	}
}

// A clock with pending timers must be collectable once its owner drops it:
// the ID-recycling cleanups may not keep it alive.
func TestClockWithPendingTimersIsCollected(t *testing.T) {
	var wait func()
	func() {
		c := NewClock(nil, time.Time{})
		big := make([]byte, 1<<20)
		for i := 0; i < 10; i++ {
			c.AfterFunc(time.Hour, func() { _ = big })
		}
		wait = gctest.Collectable(t, c, 5*time.Second)
	}()
	wait()
}
