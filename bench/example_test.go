package bench_test

import (
	"fmt"
	"slices"

	"kasim/bench"
	"kasim/sim"
	"kasim/timers"
)

// sortedQueue stands for a timer queue written outside kasim: the simplest
// exact one, a slice kept sorted by (deadline, scheduling order). It would be
// checked with timers/queuetest before being measured.
type sortedQueue struct {
	pending []sortedEntry
	seq     uint64
}

type sortedEntry struct {
	id   timers.ID
	when int64
	seq  uint64
}

func (q *sortedQueue) Push(id timers.ID, when int64) {
	q.seq++
	e := sortedEntry{id, when, q.seq}
	i, _ := slices.BinarySearchFunc(q.pending, e, func(a, b sortedEntry) int {
		if a.when != b.when {
			return compare(a.when, b.when)
		}
		return compare(int64(a.seq), int64(b.seq))
	})
	q.pending = slices.Insert(q.pending, i, e)
}

func (q *sortedQueue) Remove(id timers.ID) {
	q.pending = slices.DeleteFunc(q.pending, func(e sortedEntry) bool { return e.id == id })
}

func (q *sortedQueue) Reschedule(id timers.ID, when int64) {
	q.Remove(id)
	q.Push(id, when)
}

func (q *sortedQueue) Peek() (int64, bool) {
	if len(q.pending) == 0 {
		return 0, false
	}
	return q.pending[0].when, true
}

func (q *sortedQueue) PopDue(now int64) (timers.ID, int64, bool) {
	if len(q.pending) == 0 || q.pending[0].when > now {
		return 0, 0, false
	}
	e := q.pending[0]
	q.pending = q.pending[1:]
	return e.id, e.when, true
}

func (q *sortedQueue) Len() int { return len(q.pending) }

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Bring your own queue: register it, run the suite's workloads on it beside
// the 4-ary heap (the fire hashes must agree, since both are exact), and run
// the built-in simulation with it as the virtual clock's queue: the one
// registration (timers.Register underneath) serves both, and `kasim run
// --timers sorted` too in a main that registers it.
func ExampleRegister() {
	newQueue := func() timers.Queue { return &sortedQueue{} }
	if err := bench.Register(bench.QueueSpec{Name: "sorted", New: newQueue, Exact: true}); err != nil {
		panic(err)
	}
	settings := bench.Settings{Ops: 20000, Samples: 1000, Seed: 1}
	for _, w := range bench.Workloads[:3] {
		mine, err := bench.RunWorkload(w, "sorted", 1000, settings)
		if err != nil {
			panic(err)
		}
		ref, err := bench.RunWorkload(w, "heap4", 1000, settings)
		if err != nil {
			panic(err)
		}
		// mine.NsPerOp / ref.NsPerOp is the ratio kasim bench reports.
		fmt.Printf("%s: same fires as heap4: %v\n", w.Name, mine.FireHash == ref.FireHash)
	}

	b := sim.DefaultBuiltin()
	b.Timers = "sorted"
	res, err := sim.RunBuiltin(b)
	if err != nil {
		panic(err)
	}
	fmt.Println("simulation on it: probes", len(res.Clients[0].Probes), "then", res.Clients[0].Error)
	// Output:
	// uniform: same fires as heap4: true
	// keepalive: same fires as heap4: true
	// stack: same fires as heap4: true
	// simulation on it: probes 10 then ETIMEDOUT
}

// PValue tells a difference from the machine's noise. Five runs of each
// queue (kasim bench --count 5): on cancel every wheel run is below every
// heap4 run; on advance-idle both queues' runs fall into a fast mode and a
// slow one, and the wheel's median, 1.36x heap4's, is no evidence of a
// slower queue: its runs sit exactly among heap4's.
func ExamplePValue() {
	rs := []bench.Result{
		{Queue: "heap4", Workload: "cancel", N: 1e6, NsPerOpRuns: []float64{35.4, 48.1, 40.2, 36.0, 41.3}},
		{Queue: "wheel", Workload: "cancel", N: 1e6, NsPerOpRuns: []float64{15.3, 18.5, 16.0, 15.1, 17.2}},
		{Queue: "heap4", Workload: "advance-idle", N: 1e6, NsPerOpRuns: []float64{1.4, 1.4, 3.2, 1.3, 1.4}},
		{Queue: "wheel", Workload: "advance-idle", N: 1e6, NsPerOpRuns: []float64{1.3, 2.2, 1.9, 1.2, 2.3}},
	}
	for _, r := range []bench.Result{rs[1], rs[3]} {
		p, _ := bench.PValue(rs, r, "heap4")
		fmt.Printf("%s: p = %.3f\n", r.Workload, p)
	}
	// Output:
	// cancel: p = 0.008
	// advance-idle: p = 1.000
}
