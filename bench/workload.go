package bench

// Workloads: seeded streams of queue operations, generated against Heap4.

import (
	"math"
	"math/rand/v2"
	"time"

	"kasim/timers"
)

// Workload is a seeded stream of queue operations shaped like one kind of
// timer use. Every queue runs the same stream.
type Workload struct {
	Name, Doc string
	// MaxN, if set, bounds n (the retransmit workload simulates n
	// connections).
	MaxN int
	gen  func(n, ops int, r *rand.Rand) stream
}

// stream is a workload's operations: n timers filled at fill[i] (untimed),
// then ops, generated against Heap4 so every Remove and Reschedule is of a
// pending timer and every PopDue's result is known. A recorded stream
// has no fill, and IDs below peak; err says why there is no stream.
type stream struct {
	fill []int64
	ops  []timers.Op
	peak int
	err  error
}

// oracle generates streams: it runs the operations on a Heap4 as it
// records them.
type oracle struct {
	q       *timers.Heap4
	pending []bool
	s       stream
	now     int64
}

func newOracle(n int) *oracle {
	return &oracle{q: timers.NewHeap4(), pending: make([]bool, n)}
}

func (o *oracle) fill(when []int64) {
	o.s.fill = when
	for i, w := range when {
		o.q.Push(timers.ID(i), w)
		o.pending[i] = true
	}
}

func (o *oracle) push(id int, when int64) {
	if o.pending[id] {
		o.q.Reschedule(timers.ID(id), when)
		o.s.ops = append(o.s.ops, timers.Op{Kind: timers.OpReschedule, ID: timers.ID(id), When: when})
		return
	}
	o.q.Push(timers.ID(id), when)
	o.pending[id] = true
	o.s.ops = append(o.s.ops, timers.Op{Kind: timers.OpPush, ID: timers.ID(id), When: when})
}

func (o *oracle) remove(id int) {
	if !o.pending[id] {
		return
	}
	o.q.Remove(timers.ID(id))
	o.pending[id] = false
	o.s.ops = append(o.s.ops, timers.Op{Kind: timers.OpRemove, ID: timers.ID(id)})
}

// fireNext advances to the next deadline and fires one timer there,
// returning it (-1 if none is pending).
func (o *oracle) fireNext() int {
	when, ok := o.q.Peek()
	if !ok {
		return -1
	}
	o.now = max(o.now, when)
	id, _, _ := o.q.PopDue(o.now)
	o.pending[id] = false
	o.s.ops = append(o.s.ops, timers.Op{Kind: timers.OpPopDue, ID: id, When: o.now, Fired: true})
	return int(id)
}

// Workloads are the generated workloads, in the order they are reported.
var Workloads = []Workload{
	{
		Name: "uniform", Doc: "deadlines uniform over two hours; half the operations cancel and reschedule a timer, half fire the next and re-arm it",
		gen: func(n, ops int, r *rand.Rand) stream {
			o := newOracle(n)
			o.fill(uniformDeadlines(r, n, 0, twoHours))
			for len(o.s.ops) < ops {
				if r.IntN(2) == 0 {
					id := r.IntN(n)
					o.remove(id)
					o.push(id, o.now+1+r.Int64N(twoHours))
				} else if id := o.fireNext(); id >= 0 {
					o.push(id, o.now+1+r.Int64N(twoHours))
				}
			}
			return o.s
		},
	},
	{
		Name: "keepalive", Doc: "keep-alive timers two hours out, each reset when its connection receives (resets dominate, under 1% fire)",
		gen: func(n, ops int, r *rand.Rand) stream {
			o := newOracle(n)
			o.fill(uniformDeadlines(r, n, twoHours/2, twoHours/2))
			step := twoHours / int64(8*n) // a timer goes unreset for two hours with probability e^-8
			for len(o.s.ops) < ops {
				next := o.now + 1 + r.Int64N(2*step)
				if when, ok := o.q.Peek(); ok && when <= next {
					id := o.fireNext() // at its deadline
					o.push(id, o.now+twoHours)
					continue
				}
				o.now = next
				o.push(r.IntN(n), o.now+twoHours)
			}
			return o.s
		},
	},
	{
		Name: "stack", Doc: "fire the next timer and re-arm it one interval (1 s, 200 ms or 10 ms) later, as gVisor's keep-alive and retransmission timers do",
		gen: func(n, ops int, r *rand.Rand) stream {
			o := newOracle(n)
			o.fill(uniformDeadlines(r, n, 1, twoHours))
			intervals := []int64{int64(time.Second), int64(200 * time.Millisecond), int64(10 * time.Millisecond)}
			for len(o.s.ops) < ops {
				id := o.fireNext()
				o.push(id, o.now+intervals[id%3]+r.Int64N(1000))
			}
			return o.s
		},
	},
	{
		Name: "herd", Doc: "every timer scheduled within one jiffy (4 ms), then all fired",
		gen: func(n, ops int, r *rand.Rand) stream {
			o := newOracle(n)
			o.fill(nil)
			for len(o.s.ops) < ops {
				base := o.now + int64(time.Second)
				for id := 0; id < n; id++ {
					o.push(id, base+r.Int64N(int64(4*time.Millisecond)))
				}
				for o.fireNext() >= 0 {
				}
			}
			return o.s
		},
	},
	{
		Name: "loguniform", Doc: "delays log-uniform from 1 ms to 2 h; fire and re-arm, and cancel a third of the time",
		gen: func(n, ops int, r *rand.Rand) stream {
			o := newOracle(n)
			delay := func() int64 {
				return int64(math.Exp(math.Log(1e6) + r.Float64()*(math.Log(float64(twoHours))-math.Log(1e6))))
			}
			fill := make([]int64, n)
			for i := range fill {
				fill[i] = delay()
			}
			o.fill(fill)
			for len(o.s.ops) < ops {
				if r.IntN(3) == 0 {
					id := r.IntN(n)
					o.remove(id)
					o.push(id, o.now+delay())
				} else if id := o.fireNext(); id >= 0 {
					o.push(id, o.now+delay())
				}
			}
			return o.s
		},
	},
	{
		Name: "adversarial", Doc: "every deadline inside one 65 µs span (one slot of the wheel's finest level), rescheduled within it and fired",
		gen: func(n, ops int, r *rand.Rand) stream {
			o := newOracle(n)
			const span = 1 << 16
			base := int64(time.Hour) &^ (span - 1)
			o.fill(uniformDeadlines(r, n, base, span/2))
			for len(o.s.ops) < ops {
				if r.IntN(2) == 0 {
					id := r.IntN(n)
					o.push(id, max(o.now, base)+r.Int64N(span/2))
				} else if id := o.fireNext(); id >= 0 {
					o.push(id, max(o.now, base)+r.Int64N(span/2))
				}
			}
			return o.s
		},
	},
	{
		Name: "retransmit", MaxN: RetransmitMaxConns,
		Doc: "recorded from a simulation (bench/retransmit.yaml): n linux connections in request/response rounds over a path losing 5%: retransmission timers armed per send and fired with back-off, beside the delayed-ACK, SYN and path timers; an ACK disarms gVisor's timer lazily (it fires and finds nothing to do), so pushes and fires dominate",
		gen: retransmitStream,
	},
}

func uniformDeadlines(r *rand.Rand, n int, lo, span int64) []int64 {
	w := make([]int64, n)
	for i := range w {
		w[i] = lo + r.Int64N(span)
	}
	return w
}

// RunWorkload measures a registered queue on workload w with n timers.
func RunWorkload(w Workload, queue string, n int, s Settings) (Result, error) {
	s = s.withDefaults()
	st := w.gen(n, s.Ops, rand.New(rand.NewPCG(s.Seed, uint64(n))))
	if st.err != nil {
		return Result{}, st.err
	}
	return runStream(queue, w.Name, n, st, s)
}
