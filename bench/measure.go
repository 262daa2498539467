package bench

// Measuring: settings, a timed section's meter, memory per timer, percentiles.

import (
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"time"
)

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

// meter measures a timed section: wall time, allocations, GC share, page
// faults.
type meter struct {
	start             time.Time
	mallocs, bytes    uint64
	cpuTotal, cpuGC   float64
	faultsAtStart     int64
	elapsed           time.Duration
	allocs, allocated uint64
	gcShare           float64
	faults            int64
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
	m.faultsAtStart = pageFaults()
	m.start = time.Now()
}

func (m *meter) end() {
	m.elapsed += time.Since(m.start)
	m.faults += pageFaults() - m.faultsAtStart
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
	r.PageFaultsPerOp = float64(m.faults) / float64(ops)
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
// per timer: the live heap with it less the live heap once it is dropped,
// plus what it maps outside the heap (a wheel's big slot arrays).
// Measured so, memory the runtime frees meanwhile (the stopped timers of an
// earlier runtime measurement) does not count against the queue.
func retainedPerTimer(build func() any, timers int) float64 {
	if timers == 0 {
		return 0
	}
	q := build()
	with := heapInUse()
	if m, ok := q.(interface{ MappedBytes() int }); ok {
		with += uint64(m.MappedBytes())
	}
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
