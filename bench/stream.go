package bench

// Running operation streams on a queue: workloads and replayed traces.

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"time"

	"kasim/timers"
)

// CheckedTrace is a recorded trace that CheckTrace accepted, replayed
// from its source, chunk by chunk, each time RunReplay measures it: what
// a replay holds is bounded by its timers, not by its operations.
type CheckedTrace struct {
	src io.ReaderAt
	// Ops is the number of operations, Timers the number of timers (the
	// trace's IDs are 0 to Timers-1), Hash and Fires the recording run's
	// fire hash and fire count.
	Ops    int64
	Timers int
	Hash   uint64
	Fires  int64
}

// CheckTrace reads the trace in src (from kasim run --record-timers), as
// timers.TraceReader checks it, and replays it on a Heap4: it fails for a
// damaged trace, at the byte the damage is, for operations the recorded
// run could not have made (a trace damaged or made by hand), which would
// break a queue's preconditions, and for a fire hash that is not the
// trailer's. It holds a chunk of operations at a time; src must not change
// until the replays are done.
func CheckTrace(src io.ReaderAt) (*CheckedTrace, error) {
	tr, err := timers.NewTraceReader(io.NewSectionReader(src, 0, math.MaxInt64))
	if err != nil {
		return nil, err
	}
	p := timers.NewReplayer(timers.NewHeap4())
	// A bad operation stops the replay, not the reading: damage further
	// on is the error, as when the whole trace was read before the replay.
	var bad error
	for {
		ops, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if bad == nil {
			bad = p.Play(ops)
		}
	}
	if bad != nil {
		return nil, bad
	}
	t := &CheckedTrace{src: src, Ops: tr.Ops(), Timers: int(tr.Timers())}
	t.Hash, t.Fires = tr.Trailer()
	if h := p.Hash(); h.Sum() != t.Hash || h.Fires != t.Fires {
		return nil, fmt.Errorf("the operations give fire hash %x (%d fires), the trailer says %x (%d)", h.Sum(), h.Fires, t.Hash, t.Fires)
	}
	return t, nil
}

// RunReplay measures a registered queue on a trace CheckTrace accepted,
// reading it again: each chunk is decoded untimed, then played timed.
func RunReplay(t *CheckedTrace, queue string, s Settings) (Result, error) {
	s = s.withDefaults()
	spec, ok := LookupQueue(queue)
	if !ok {
		return Result{}, fmt.Errorf("unknown queue %q", queue)
	}
	if t == nil || t.src == nil {
		return Result{}, fmt.Errorf("%s: no trace: RunReplay takes the trace CheckTrace returned", queue)
	}
	tr, err := timers.NewTraceReader(io.NewSectionReader(t.src, 0, math.MaxInt64))
	if err != nil {
		return Result{}, fmt.Errorf("the trace changed since it was checked: %w", err)
	}
	r, err := runChunks(queue, "replay", t.Timers, t.Timers, nil, tr.Next, s)
	if err != nil {
		return r, err
	}
	if hash, _ := tr.Trailer(); r.Ops != t.Ops || hash != t.Hash {
		return r, fmt.Errorf("%s: the trace changed since it was checked (%d operations, then %d)", queue, t.Ops, r.Ops)
	}
	want := "" // a result without fires shows no hash
	if t.Fires > 0 {
		want = strconv.FormatUint(t.Hash, 16)
	}
	if spec.Exact && r.FireHash != want {
		return r, fmt.Errorf("%s: replay fire hash %s, the recorded run's %x", queue, r.FireHash, t.Hash)
	}
	return r, nil
}

// runStream runs a generated stream on a fresh queue: untimed fill, then
// the timed operations (runChunks).
func runStream(queue, workload string, n int, st stream, s Settings) (Result, error) {
	given := false
	next := func() ([]timers.Op, error) {
		if given || len(st.ops) == 0 {
			return nil, io.EOF
		}
		given = true
		return st.ops, nil
	}
	return runChunks(queue, workload, n, st.peak, st.fill, next, s)
}

// runChunks runs a stream of operations, which next gives chunk by chunk
// (nil and io.EOF after the last), on a fresh queue holding fill (untimed);
// its IDs are below n (the result's N), len(fill) and ids. Each chunk is fetched untimed and played timed, and
// the figures are over all of them. Exact queues are checked against the
// stream's recorded fires; others (the Linux wheel fires late) run on the
// stream's clock, and after the last chunk fire what they owe (player).
// The percentiles time the stream's first operations again, each alone,
// on a fresh queue.
func runChunks(queue, workload string, n, ids int, fill []int64, next func() ([]timers.Op, error), s Settings) (Result, error) {
	spec, ok := LookupQueue(queue)
	if !ok {
		return Result{}, fmt.Errorf("unknown queue %q (workloads run on timers.Queue implementations)", queue)
	}
	r := Result{Queue: queue, Workload: workload, N: n}
	// fresh returns a player of a queue holding the stream's fill.
	fresh := func() *player {
		return newPlayer(spec.New(), spec.Exact, max(n, ids, len(fill)), fill)
	}
	r.BytesPerTimer = retainedPerTimer(func() any { return fresh().q }, len(fill))
	p := fresh()
	var (
		mt        meter
		played    int64
		first     []timers.Op // the first operations, for the percentiles
		cpu0, gc0 float64     // CPU seconds, all and the GC's, at the start
	)
	for {
		ops, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return r, fmt.Errorf("%s on %s: %w", queue, workload, err)
		}
		if len(first) < s.Samples {
			first = append(first, ops[:min(len(ops), s.Samples-len(first))]...)
		}
		if played == 0 {
			// As testing.B does: else a collection the untimed setup
			// provoked runs in the timed section.
			runtime.GC()
			cpu0, gc0 = cpuSeconds()
		}
		mt.begin()
		err = p.play(ops, played)
		mt.end()
		if err != nil {
			return r, fmt.Errorf("%s on %s: %w", queue, workload, err)
		}
		played += int64(len(ops))
	}
	if p.owed > 0 { // only an inexact queue owes fires
		mt.begin()
		p.settleOwed()
		mt.end()
	}
	r.Ops = played
	mt.report(&r, int(played))
	// The meter's GC share is its last section's; this one is over them
	// all. The runtime updates the CPU figures only as a collection ends,
	// so they cannot be split between the sections and the decoding
	// between them, which collects nothing but may see a collection the
	// sections started finish.
	r.GCShare = 0
	if cpu, gc := cpuSeconds(); cpu > cpu0 {
		r.GCShare = (gc - gc0) / (cpu - cpu0)
	}
	r.LatenessNs = p.late
	if l, ok := p.q.(interface {
		Lateness() (mean, most time.Duration, fired int)
	}); ok {
		_, most, _ := l.Lateness()
		r.LatenessNs = int64(most)
	}
	if p.h.Fires > 0 {
		r.FireHash = strconv.FormatUint(p.h.Sum(), 16)
	}
	if !spec.Exact {
		r.Note = "fires late by design"
	}
	if len(first) == 0 {
		return r, nil // an empty stream: no percentiles
	}
	p = fresh()
	r.P50Ns, r.P99Ns, r.P999Ns = percentiles(len(first), func(i int) {
		p.play(first[i:i+1], int64(i))
	}, 0)
	runtime.KeepAlive(p)
	return r, nil
}
