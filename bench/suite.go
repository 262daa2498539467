package bench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/faketime"

	"kasim/timers"
)

// QueueSpec names a timer queue for the suite: the part of a timers.Spec
// the suite reads.
type QueueSpec struct {
	Name string
	New  func() timers.Queue
	// Exact queues fire every timer at its deadline, equal deadlines in
	// scheduling order; their fire hashes must agree.
	Exact bool
}

// The reference queues of the micro benchmarks that are not measured as
// timers.Queue implementations but through their own APIs. They are in the
// timers registry under these names.
const (
	Runtime  = "runtime"  // Go runtime timers (time.AfterFunc)
	Faketime = "faketime" // gVisor's faketime.ManualClock
)

// Register adds a queue to the timers registry (timers.Register), so that
// RunMicro, RunWorkload and `kasim bench` measure it beside the built-in
// ones, and the simulation (sim.Builtin's Timers, `kasim run --timers`)
// can run on it, in a program that registers it. Check it with
// timers/queuetest first.
func Register(q QueueSpec) error {
	if q.Name == "" || q.New == nil {
		return errors.New("bench: a queue needs a name and a constructor")
	}
	return timers.Register(timers.Spec{Name: q.Name, New: q.New, Exact: q.Exact})
}

// Queues returns the suite's queues, the registered timers.Queue
// implementations, in the registry's order (built-in ones first): every
// registered queue but Runtime and Faketime.
func Queues() []QueueSpec {
	var qs []QueueSpec
	for _, s := range timers.Specs() {
		if q, ok := suiteQueue(s); ok {
			qs = append(qs, q)
		}
	}
	return qs
}

// LookupQueue finds one of the suite's queues (Queues) by name.
func LookupQueue(name string) (QueueSpec, bool) {
	s, ok := timers.Lookup(name)
	if !ok {
		return QueueSpec{}, false
	}
	return suiteQueue(s)
}

// suiteQueue returns a registered queue as the suite measures it, or false
// for Runtime and Faketime, which it measures through their own APIs.
func suiteQueue(s timers.Spec) (QueueSpec, bool) {
	if s.Name == Runtime || s.Name == Faketime {
		return QueueSpec{}, false
	}
	return QueueSpec{Name: s.Name, New: s.New, Exact: s.Exact}, true
}

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

// Settings say how much to measure.
type Settings struct {
	Ops     int // operations measured per result (default 1,000,000)
	Samples int // operations timed one by one for the percentiles (default 100,000)
	Seed    uint64
}

func (s Settings) withDefaults() Settings {
	if s.Ops <= 0 {
		s.Ops = 1_000_000
	}
	if s.Samples <= 0 {
		s.Samples = 100_000
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	return s
}

// meter measures a timed section: wall time, allocations, GC share.
type meter struct {
	start             time.Time
	mallocs, bytes    uint64
	cpuTotal, cpuGC   float64
	elapsed           time.Duration
	allocs, allocated uint64
	gcShare           float64
}

// beginCollected begins the first timed section on a collected heap, as testing.B
// does: otherwise a collection the untimed setup provoked runs during it.
func (m *meter) beginCollected() {
	runtime.GC()
	m.begin()
}

func (m *meter) begin() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.mallocs, m.bytes = ms.Mallocs, ms.TotalAlloc
	m.cpuTotal, m.cpuGC = cpuSeconds()
	m.start = time.Now()
}

func (m *meter) end() {
	m.elapsed += time.Since(m.start)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.allocs += ms.Mallocs - m.mallocs
	m.allocated += ms.TotalAlloc - m.bytes
	if total, gc := cpuSeconds(); total > m.cpuTotal {
		m.gcShare = (gc - m.cpuGC) / (total - m.cpuTotal)
	}
}

// cpuSeconds reads the process's total and GC CPU time so far.
func cpuSeconds() (total, gc float64) {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Float64()
}

// report fills r's per-operation figures from what the meter measured.
func (m *meter) report(r *Result, ops int) {
	ops = max(ops, 1)
	r.NsPerOp = float64(m.elapsed.Nanoseconds()) / float64(ops)
	r.Runs, r.NsPerOpMin, r.NsPerOpMax = 1, r.NsPerOp, r.NsPerOp
	r.AllocsPerOp = float64(m.allocs) / float64(ops)
	r.BytesPerOp = float64(m.allocated) / float64(ops)
	r.GCShare = m.gcShare
}

// bytesPerTimer returns the heap grown since before (from heapInUse), per
// timer.
func bytesPerTimer(before uint64, timers int) float64 {
	after := heapInUse()
	if after < before || timers == 0 {
		return 0
	}
	return float64(after-before) / float64(timers)
}

// retainedPerTimer builds a throwaway queue and returns the heap it holds,
// per timer: the live heap with it less the live heap once it is dropped.
// Measured so, memory the runtime frees meanwhile (the stopped timers of an
// earlier runtime measurement) does not count against the queue.
func retainedPerTimer(build func() any, timers int) float64 {
	if timers == 0 {
		return 0
	}
	q := build()
	with := heapInUse()
	runtime.KeepAlive(q)
	without := heapInUse()
	if with < without {
		return 0
	}
	return float64(with-without) / float64(timers)
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// percentiles times ops one by one and returns p50, p99, p99.9 in ns, less
// the median cost of reading the clock.
func percentiles(samples int, op func(i int), from int) (p50, p99, p999 float64) {
	lat := make([]time.Duration, samples)
	for i := range lat {
		t0 := time.Now()
		op(from + i)
		lat[i] = time.Since(t0)
	}
	base := make([]time.Duration, 1000)
	for i := range base {
		t0 := time.Now()
		base[i] = time.Since(t0)
	}
	slices.Sort(lat)
	slices.Sort(base)
	at := func(p float64) float64 {
		v := float64(lat[min(len(lat)-1, int(p*float64(len(lat))))] - base[len(base)/2])
		return math.Max(v, 0)
	}
	return at(0.50), at(0.99), at(0.999)
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

// Workload is a seeded stream of queue operations shaped like one kind of
// timer use. Every queue runs the same stream.
type Workload struct {
	Name, Doc string
	gen       func(n, ops int, r *rand.Rand) stream
}

// stream is a workload's operations: n timers filled at fill[i] (untimed),
// then ops, generated against Heap4 so every Remove and Reschedule is of a
// pending timer and every PopDue's result is known.
type stream struct {
	fill []int64
	ops  []timers.Op
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
	return runStream(queue, w.Name, n, st, s)
}

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
		pending := make([]bool, n)
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
