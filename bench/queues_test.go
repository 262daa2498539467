package bench

import (
	"flag"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kasim/timers"
)

// The micro benchmarks, in benchstat's format: one sub-benchmark per queue
// and size, the same operations `kasim bench` measures. -bench.large adds
// 10^7 timers.
var large = flag.Bool("bench.large", false, "also measure queues holding 10^7 timers")

func benchSizes() []int {
	if *large {
		return []int{1_000, 1_000_000, 10_000_000}
	}
	return []int{1_000, 1_000_000}
}

func BenchmarkMicro(b *testing.B) {
	for _, m := range Micros {
		for _, n := range benchSizes() {
			for _, spec := range Queues() {
				b.Run(fmt.Sprintf("op=%s/n=%d/queue=%s", m.Name, n, spec.Name), func(b *testing.B) {
					run, budget, refill := m.Prepare(spec.New(), n)
					benchOps(b, run, budget, refill)
				})
			}
			for _, native := range []string{Runtime, Faketime} {
				mk, ok := m.Native[native]
				if !ok {
					continue
				}
				b.Run(fmt.Sprintf("op=%s/n=%d/queue=%s", m.Name, n, native), func(b *testing.B) {
					run, budget, refill, done := mk(n)
					if done != nil {
						defer done()
					}
					benchOps(b, run, budget, refill)
				})
			}
		}
	}
}

// benchOps times b.N operations of a prepared micro benchmark, refills
// untimed, and reports the page faults of the timed sections per
// operation, as kasim bench does: where they are not near 0, fresh memory
// is part of what was measured.
func benchOps(b *testing.B, run Ops, budget int, refill func()) {
	var faults int64
	from := pageFaults()
	pause := func() {
		b.StopTimer()
		faults += pageFaults() - from
	}
	resume := func() {
		from = pageFaults()
		b.StartTimer()
	}
	b.ReportAllocs()
	b.ResetTimer()
	from = pageFaults()
	opLoop(run, b.N, budget, refill, pause, resume)
	faults += pageFaults() - from
	b.ReportMetric(float64(faults)/float64(b.N), "faults/op")
}

// Every exact queue fires the same sequence on every workload: the stream
// itself checks each fire, and the hashes must agree.
func TestWorkloadsAgreeOnEveryExactQueue(t *testing.T) {
	s := Settings{Ops: 20_000, Samples: 100}
	for _, w := range Workloads {
		hashes := map[string]string{}
		for _, q := range Queues() {
			r, err := RunWorkload(w, q.Name, 2000, s)
			if err != nil {
				t.Fatalf("%s: %v", w.Name, err)
			}
			if r.NsPerOp <= 0 || r.Ops < int64(s.Ops) {
				t.Fatalf("%s on %s: %d ops at %v ns/op", w.Name, q.Name, r.Ops, r.NsPerOp)
			}
			if q.Exact {
				hashes[q.Name] = r.FireHash
				if r.LatenessNs != 0 {
					t.Errorf("%s on %s: exact queue late by %d ns", w.Name, q.Name, r.LatenessNs)
				}
			} else if w.Name == "stack" && r.LatenessNs <= 0 {
				t.Errorf("%s on the Linux wheel: no lateness reported", w.Name)
			}
		}
		if hashes["wheel"] == "" || hashes["wheel"] != hashes["heap4"] || hashes["heap2"] != hashes["heap4"] {
			t.Errorf("%s: fire hashes differ: %v", w.Name, hashes)
		}
	}
}

func TestMicrosRunOnEveryQueue(t *testing.T) {
	for _, m := range Micros {
		for _, q := range append([]string{Runtime, Faketime}, "wheel", "heap4", "heap2", "linux") {
			r, ok, err := RunMicro(m, q, 1000, Settings{Ops: 3000, Samples: 100})
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if m.Native[q] != nil || q != Runtime && q != Faketime {
					t.Fatalf("%s on %s: not run", m.Name, q)
				}
				continue
			}
			if r.NsPerOp <= 0 || r.P999Ns < r.P50Ns {
				t.Fatalf("%s on %s: %+v", m.Name, q, r)
			}
		}
	}
}

func TestRegisterRefusesDuplicates(t *testing.T) {
	if err := Register(QueueSpec{Name: "heap4", New: func() timers.Queue { return timers.NewHeap4() }}); err == nil {
		t.Fatal("a second heap4 was accepted")
	}
	if err := Register(QueueSpec{Name: Runtime, New: func() timers.Queue { return timers.NewHeap4() }}); err == nil {
		t.Fatal("a queue named runtime was accepted")
	}
}

// opLoop hands a micro benchmark its operations in runs that stop where
// the timers are used up, and refills between runs, paused.
func TestOpLoopRefillsBetweenRuns(t *testing.T) {
	var got []string
	run := func(from, to int) { got = append(got, fmt.Sprintf("run %d-%d", from, to)) }
	note := func(s string) func() { return func() { got = append(got, s) } }
	left := opLoop(run, 10, 3, note("refill"), note("pause"), note("resume"))
	want := []string{
		"run 0-3", "pause", "refill", "resume", "run 3-6", "pause", "refill", "resume",
		"run 6-9", "pause", "refill", "resume", "run 9-10",
	}
	if diff := cmp.Diff(want, got); diff != "" || left != 2 {
		t.Errorf("opLoop(10 operations, budget 3): left %d, want 2; calls (-want +got):\n%s", left, diff)
	}
	got = nil
	if left := opLoop(run, 5, 0, nil, nil, nil); left != 0 || !slices.Equal(got, []string{"run 0-5"}) {
		t.Errorf("opLoop without a budget: %v, left %d; want one run 0-5", got, left)
	}
}

// strictQueue is a Heap4 that records the first call breaking the Queue
// preconditions, which real queues do not check.
type strictQueue struct {
	*timers.Heap4
	pending map[timers.ID]bool
	err     error
}

func (q *strictQueue) fail(format string, a ...any) {
	if q.err == nil {
		q.err = fmt.Errorf(format, a...)
	}
}

func (q *strictQueue) Push(id timers.ID, when int64) {
	if q.pending[id] {
		q.fail("Push(%d) of a pending timer", id)
		return
	}
	q.pending[id] = true
	q.Heap4.Push(id, when)
}

func (q *strictQueue) Remove(id timers.ID) {
	if !q.pending[id] {
		q.fail("Remove(%d) of a timer not pending", id)
		return
	}
	delete(q.pending, id)
	q.Heap4.Remove(id)
}

func (q *strictQueue) Reschedule(id timers.ID, when int64) {
	if !q.pending[id] {
		q.fail("Reschedule(%d) of a timer not pending", id)
		return
	}
	q.Heap4.Reschedule(id, when)
}

func (q *strictQueue) PopDue(now int64) (timers.ID, int64, bool) {
	id, when, ok := q.Heap4.PopDue(now)
	if ok {
		delete(q.pending, id)
	}
	return id, when, ok
}

// Every micro benchmark, through several refills, calls its queue only as
// the Queue contract allows, and leaves the number of timers it says.
func TestMicrosKeepTheQueueContract(t *testing.T) {
	const n = 100
	for _, m := range Micros {
		q := &strictQueue{Heap4: timers.NewHeap4(), pending: map[timers.ID]bool{}}
		run, budget, refill := m.Prepare(q, n)
		nop := func() {}
		opLoop(run, 3*n+n/2, budget, refill, nop, nop)
		if q.err != nil {
			t.Errorf("%s: %v", m.Name, q.err)
		}
		// schedule has added n/2 timers to the n, cancel taken n/2 away,
		// fire fired n/2; the others keep n.
		want := map[string]int{"schedule": n + n/2, "cancel": n / 2, "fire": n / 2}[m.Name]
		if want == 0 {
			want = n
		}
		if q.Len() != want {
			t.Errorf("%s: %d timers pending after the runs, want %d", m.Name, q.Len(), want)
		}
	}
}
