package bench

// Micro benchmarks: one queue operation measured alone (RunMicro).

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/faketime"

	"kasim/timers"
)

const twoHours = int64(2 * time.Hour)

// Micro is one queue operation measured alone on a queue holding n timers
// with deadlines spread over two hours.
type Micro struct {
	Name, Doc string
	// Prepare fills q and returns the operation, and, if the operation
	// uses the timers up, after how many operations refill must run
	// (untimed).
	Prepare func(q timers.Queue, n int) (run Ops, budget int, refill func())
	// Native measures the same operation with Go runtime timers or
	// faketime through their own APIs (nil where they have none), with a
	// budget and refill as Prepare's; done stops what it started.
	Native map[string]func(n int) (run Ops, budget int, refill, done func())
}

// Ops runs operations number from to to-1 of a micro benchmark, in
// order: every run continues where the last one stopped. The loop is the
// benchmark's own, so what is measured per operation is the operation and
// a loop step, not a call of the harness's and the registers it reloads.
type Ops func(from, to int)

// spread fills q with timers 0..n-1 at deadlines in [lo, lo+span), seeded
// by n so every queue gets the same ones, and returns them.
func spread(q timers.Queue, n int, lo, span int64) []int64 {
	when := microDeadlines(n, 1, lo, span)
	for i, w := range when {
		q.Push(timers.ID(i), w)
	}
	return when
}

// microDeadlines returns a micro benchmark's n deadlines in [lo, lo+span),
// drawn from seed and n, the same for every queue.
func microDeadlines(n int, seed uint64, lo, span int64) []int64 {
	return uniformDeadlines(rand.New(rand.NewPCG(seed, uint64(n))), n, lo, span)
}

// Micros are the micro benchmarks, in the order they are reported.
var Micros = []Micro{
	{
		Name: "schedule-cancel", Doc: "schedule a timer and cancel it again",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			spread(q, n, 1, twoHours)
			id := timers.ID(n)
			return func(from, to int) {
				for i := from; i < to; i++ {
					q.Push(id, int64(i&1023)*int64(time.Second)+1)
					q.Remove(id)
				}
			}, 0, nil
		},
		Native: map[string]func(int) (Ops, int, func(), func()){
			Runtime: func(n int) (Ops, int, func(), func()) {
				stop := runtimeTimers(n)
				f := func() {}
				return func(from, to int) {
					for i := from; i < to; i++ {
						time.AfterFunc(2*time.Hour, f).Stop()
					}
				}, 0, nil, stop
			},
			Faketime: func(n int) (Ops, int, func(), func()) {
				c := faketime.NewManualClock()
				f := func() {}
				for i := 0; i < n; i++ {
					c.AfterFunc(time.Duration(i%7200+1)*time.Second, f)
				}
				return func(from, to int) {
					for i := from; i < to; i++ {
						c.AfterFunc(time.Hour+time.Duration(i&1023), f).Stop()
					}
				}, 0, nil, nil
			},
		},
	},
	{
		Name: "schedule", Doc: "schedule one more timer, up to n more (untimed: they are cancelled again)",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			spread(q, n, 1, twoHours)
			when := microDeadlines(n, 2, 1, twoHours)
			k := 0
			return func(from, to int) {
					for range to - from {
						q.Push(timers.ID(n+k), when[k])
						k++
					}
				}, n, func() {
					for ; k > 0; k-- {
						q.Remove(timers.ID(n + k - 1))
					}
				}
		},
		Native: map[string]func(int) (Ops, int, func(), func()){
			Runtime: func(n int) (Ops, int, func(), func()) {
				stop := runtimeTimers(n)
				when := microDeadlines(n, 2, 1, twoHours)
				more := make([]*time.Timer, 0, n)
				f := func() {}
				refill := func() {
					for _, t := range more {
						t.Stop()
					}
					more = more[:0]
				}
				return func(from, to int) {
						for range to - from {
							more = append(more, time.AfterFunc(time.Duration(when[len(more)]), f))
						}
					}, n, refill, func() {
						refill()
						stop()
					}
			},
		},
	},
	{
		Name: "cancel", Doc: "cancel a pending timer, up to all n (untimed: they are scheduled again)",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			when := spread(q, n, 1, twoHours)
			k := 0
			return func(from, to int) {
					for range to - from {
						q.Remove(timers.ID(k))
						k++
					}
				}, n, func() {
					for ; k > 0; k-- {
						q.Push(timers.ID(k-1), when[k-1])
					}
				}
		},
		Native: map[string]func(int) (Ops, int, func(), func()){
			Runtime: func(n int) (Ops, int, func(), func()) {
				when := microDeadlines(n, 1, 1, twoHours) // spread's, as the queues get
				ts := make([]*time.Timer, n)
				f := func() {}
				k := n // timers cancelled so far: all, until refill starts them
				refill := func() {
					for ; k > 0; k-- {
						ts[k-1] = time.AfterFunc(time.Duration(when[k-1]), f)
					}
				}
				refill()
				return func(from, to int) {
						for range to - from {
							ts[k].Stop()
							k++
						}
					}, n, refill, func() {
						for _, t := range ts[k:] {
							t.Stop()
						}
					}
			},
		},
	},
	{
		Name: "reset-later", Doc: "move a pending timer later, as a received segment does to keep-alive",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			spread(q, n, 1, twoHours)
			id := 0
			return func(from, to int) {
				for i := from; i < to; i++ {
					q.Reschedule(timers.ID(id), twoHours+int64(i)*1000)
					id = nextID(id, n)
				}
			}, 0, nil
		},
		Native: map[string]func(int) (Ops, int, func(), func()){
			Runtime: func(n int) (Ops, int, func(), func()) {
				ts := make([]*time.Timer, n)
				f := func() {}
				for i := range ts {
					ts[i] = time.AfterFunc(2*time.Hour, f)
				}
				id := 0
				return func(from, to int) {
						for i := from; i < to; i++ {
							ts[id].Reset(2*time.Hour + time.Duration(i))
							id = nextID(id, n)
						}
					}, 0, nil, func() {
						for _, t := range ts {
							t.Stop()
						}
					}
			},
		},
	},
	{
		Name: "reset-earlier", Doc: "move a pending timer earlier",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			spread(q, n, twoHours, twoHours)
			id := 0
			return func(from, to int) {
				for i := from; i < to; i++ {
					q.Reschedule(timers.ID(id), twoHours-int64(i))
					id = nextID(id, n)
				}
			}, 0, nil
		},
	},
	{
		Name: "reset-same-slot", Doc: "move a pending timer by a nanosecond, alternately later and earlier",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			when := spread(q, n, 1, twoHours)
			id, later := 0, int64(0)
			return func(from, to int) {
				for range to - from {
					q.Reschedule(timers.ID(id), when[id]+later)
					if id = nextID(id, n); id == 0 {
						later ^= 1
					}
				}
			}, 0, nil
		},
	},
	{
		Name: "advance-idle", Doc: "advance the clock a microsecond with nothing due",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			spread(q, n, twoHours, twoHours)
			return func(from, to int) {
				for i := from; i < to; i++ {
					q.PopDue(int64(i) * 1000)
				}
			}, 0, nil
		},
	},
	{
		Name: "fire", Doc: "advance the clock to the next deadline and fire the timer there",
		Prepare: func(q timers.Queue, n int) (Ops, int, func()) {
			spread(q, n, 1, twoHours)
			base := int64(0)
			refill := func() {
				base += twoHours + 1
				spread(q, n, base, twoHours)
			}
			return func(from, to int) {
				for range to - from {
					when, _ := q.Peek()
					q.PopDue(when)
				}
			}, n, refill
		},
	},
}

// nextID steps through the n timers of a micro benchmark and round again.
// The operations get consecutive i, so this is i%n without a division,
// which would cost as much as a reset itself.
func nextID(id, n int) int {
	if id++; id == n {
		return 0
	}
	return id
}

// runtimeTimers starts n runtime timers two hours out and returns a
// function that stops them.
func runtimeTimers(n int) func() {
	ts := make([]*time.Timer, n)
	f := func() {}
	for i := range ts {
		ts[i] = time.AfterFunc(2*time.Hour+time.Duration(i), f)
	}
	return func() {
		for _, t := range ts {
			t.Stop()
		}
	}
}

// RunMicro measures micro benchmark m on queue (a registered name, Runtime
// or Faketime) holding n timers. ok is false if the queue cannot run it
// (runtime timers have no reset-earlier of their own, say).
func RunMicro(m Micro, queue string, n int, s Settings) (r Result, ok bool, err error) {
	s = s.withDefaults()
	r = Result{Queue: queue, Workload: m.Name, N: n, Ops: int64(s.Ops)}
	var run Ops
	var budget int
	var refill, done func()
	if native, isNative := m.Native[queue]; isNative {
		before := heapInUse()
		run, budget, refill, done = native(n)
		r.BytesPerTimer = bytesPerTimer(before, n)
		r.Note = "through its own API"
	} else if queue == Runtime || queue == Faketime {
		return r, false, nil
	} else {
		spec, found := LookupQueue(queue)
		if !found {
			return r, false, fmt.Errorf("unknown queue %q", queue)
		}
		r.BytesPerTimer = retainedPerTimer(func() any {
			q := spec.New()
			m.Prepare(q, n)
			return q
		}, n)
		q := spec.New()
		run, budget, refill = m.Prepare(q, n)
		defer runtime.KeepAlive(q)
	}
	var mt meter
	mt.beginCollected()
	left := opLoop(run, s.Ops, budget, refill, mt.end, mt.begin)
	mt.end()
	mt.report(&r, s.Ops)
	samples := s.Samples
	if budget > 0 {
		// What is left of the timers, or a fresh set; no refill inside.
		if left == 0 {
			refill()
			left = budget
		}
		samples = min(samples, left)
	}
	r.P50Ns, r.P99Ns, r.P999Ns = percentiles(samples, func(i int) { run(i, i+1) }, s.Ops)
	if done != nil {
		done()
	}
	return r, true, nil
}

// opLoop runs a prepared micro benchmark's operations 0 .. count-1,
// calling refill, between pause and resume (so it stays untimed), each time
// budget operations have used the timers up. It returns the operations left
// before the next refill.
func opLoop(run Ops, count, budget int, refill, pause, resume func()) (left int) {
	if budget <= 0 {
		run(0, count)
		return 0
	}
	left = budget
	for i := 0; i < count; {
		if left == 0 {
			pause()
			refill()
			resume()
			left = budget
		}
		k := min(left, count-i)
		run(i, i+k)
		i += k
		left -= k
	}
	return left
}
