package timers

import (
	"math"
	"testing"
	"time"
)

const halfSecond = int64(500 * time.Millisecond)

func TestTickQueueRoundsUpToTheTick(t *testing.T) {
	q := NewTickQueue(halfSecond)
	for when, want := range map[int64]int64{
		0:                                        0,
		1:                                        halfSecond,
		halfSecond:                               halfSecond, // on a tick: that tick
		halfSecond + 1:                           2 * halfSecond,
		int64(2*time.Hour + 20*time.Millisecond): int64(2*time.Hour + 500*time.Millisecond),
		math.MaxInt64:                            math.MaxInt64, // never comes
		-1:                                       0,
	} {
		if got := q.Round(when); got != want {
			t.Errorf("Round(%d) = %d, want %d", when, got, want)
		}
	}
}

// lwIP's keep-alive on its 500 ms slow timer: last receive at 20 ms, idle
// 2 s: the first probe at the first tick after 2.02 s, 2.5 s; re-armed
// from its own callback for 1 s, the next ones exactly 1 s apart.
func TestTickQueueKeepAliveSpacing(t *testing.T) {
	c := NewClock(NewTickQueue(halfSecond), time.Time{})
	c.AdvanceTo(20 * time.Millisecond)
	fires := rearmed(c, 2*time.Second, time.Second, 3)
	want := []time.Duration{2500 * time.Millisecond, 3500 * time.Millisecond, 4500 * time.Millisecond}
	if len(fires) != len(want) {
		t.Fatalf("fired at %v, want %v", fires, want)
	}
	for i := range want {
		if fires[i] != want[i] {
			t.Errorf("fire %d at %v, want %v", i+1, fires[i], want[i])
		}
	}
}

// rearmed runs c with one timer armed for first, then re-armed from its
// own callback for every until it has fired n times, as a keep-alive timer
// is, and returns when it fired.
func rearmed(c *Clock, first, every time.Duration, n int) []time.Duration {
	var fires []time.Duration
	var tm interface{ Reset(time.Duration) }
	tm = c.AfterFunc(first, func() {
		fires = append(fires, c.Elapsed())
		if len(fires) < n {
			tm.Reset(every)
		}
	})
	for {
		next, ok := c.NextDeadline()
		if !ok {
			return fires
		}
		c.AdvanceTo(next)
		c.FireDue(10)
	}
}

// Timers landing on the same tick fire in scheduling order, whatever
// their own deadlines; Reschedule counts as scheduling anew.
func TestTickQueueOrderWithinATick(t *testing.T) {
	q := NewTickQueue(halfSecond)
	q.Push(1, 400)
	q.Push(2, 100)
	q.Push(3, halfSecond)
	q.Reschedule(1, 200)
	q.Push(4, halfSecond+1)
	q.Remove(3)
	if q.Len() != 3 {
		t.Fatalf("Len = %d, want 3", q.Len())
	}
	if when, ok := q.Peek(); !ok || when != halfSecond {
		t.Fatalf("Peek = %d, %v; want %d", when, ok, halfSecond)
	}
	if _, _, ok := q.PopDue(halfSecond - 1); ok {
		t.Fatal("a timer fired before its tick")
	}
	var got []ID
	for {
		id, when, ok := q.PopDue(halfSecond)
		if !ok {
			break
		}
		if when != halfSecond {
			t.Errorf("timer %d fired at %d, want the tick %d", id, when, halfSecond)
		}
		got = append(got, id)
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 1 {
		t.Errorf("fired %v at the first tick, want [2 1]", got)
	}
	if id, when, ok := q.PopDue(2 * halfSecond); !ok || id != 4 || when != 2*halfSecond {
		t.Errorf("PopDue = %d, %d, %v; want 4 at the second tick", id, when, ok)
	}
}

// SetOrigin moves every tick: lwIP's first tcp_slowtmr runs 250 ms after
// its first connection, so with a connection at 0 its ticks are 0.25 s,
// 0.75 s, ...
func TestTickQueueOrigin(t *testing.T) {
	const ms = int64(time.Millisecond)
	q := NewTickQueue(500 * ms)
	q.SetOrigin(250 * ms)
	for _, c := range []struct{ when, want int64 }{
		{0, 250 * ms},
		{250 * ms, 250 * ms},
		{251 * ms, 750 * ms},
		{2000*ms + 1, 2250 * ms},
		{-100 * ms, -250*ms + 500*ms},
		{math.MaxInt64 - 1, math.MaxInt64},
	} {
		if got := q.Round(c.when); got != c.want {
			t.Errorf("origin 250ms: Round(%d) = %d, want %d", c.when, got, c.want)
		}
	}
	// An origin past a tick, or before zero, is the same phase.
	for _, o := range []int64{750 * ms, -250 * ms, 5250 * ms} {
		q.SetOrigin(o)
		if got := q.Round(2000*ms + 1); got != 2250*ms {
			t.Errorf("origin %v: Round(2.000000001s) = %v, want 2.25s", time.Duration(o), time.Duration(got))
		}
	}
	q.Push(1, 2000*ms+1)
	if at, _ := q.Peek(); at != 2250*ms {
		t.Errorf("a timer due at 2.000000001s fires at %v, want 2.25s", time.Duration(at))
	}
}
