package bench

import (
	"fmt"
	"testing"
	"time"

	"kasim/sim"
	"kasim/stack"
)

// reportGCShare reports the share of CPU time the garbage collector took
// since total0, gc0 (from cpuSeconds). The runtime updates these figures
// at each collection, so the share is approximate.
func reportGCShare(b *testing.B, total0, gc0 float64) {
	total, gc := cpuSeconds()
	if total > total0 {
		b.ReportMetric(100*(gc-gc0)/(total-total0), "%gc")
	}
}

// BenchmarkConnectionLife measures one connection's whole simulated life,
// stack pair creation included.
func BenchmarkConnectionLife(b *testing.B) {
	b.ReportAllocs()
	events := 0
	total0, gc0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		r, err := ConnectionLife(uint64(i))
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	reportGCShare(b, total0, gc0)
}

// BenchmarkSilentConns measures N silent keep-alive connections run to
// abort: dialled over a second ("spread") or all at once ("herd"), on the
// bare engine and with the trace recorder attached.
func BenchmarkSilentConns(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, shape := range []struct {
			name   string
			spread time.Duration
			traced bool
		}{{"spread", time.Second, false}, {"spread/traced", time.Second, true}, {"herd", 0, false}} {
			w := Silent{Conns: n, Spread: shape.spread}
			if shape.traced {
				w.observers = func() []stack.Observer { return []stack.Observer{sim.NewRecorder()} }
			}
			b.Run(fmt.Sprintf("conns=%d/%s", n, shape.name), func(b *testing.B) { benchSilent(b, w) })
		}
	}
}

// BenchmarkSilentConnsScale runs the spread workload at server scale,
// 100,000 and 1,000,000 connections (25 client hosts), to set beside
// BenchmarkSilentConns' 10,000: time and heap per connection should not
// grow with the count. A run of a million takes minutes and about 15 GB:
// run it by name, -bench 'SilentConnsScale/conns=1000000' -benchtime 1x.
func BenchmarkSilentConnsScale(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			benchSilent(b, Silent{Conns: n, Spread: time.Second, Timers: "wheel"})
		})
	}
}

// BenchmarkAgainstManualClock runs the same 10,000-connection workload on
// kasim's clock (the wheel, and heap4) and on gVisor's
// faketime.ManualClock in turn, in one run, and reports kasim's time as a
// ratio of ManualClock's (x-faketime); it fails if the runs differ in what
// they simulated (segments, timer fires, end).
func BenchmarkAgainstManualClock(b *testing.B) {
	for _, q := range []string{"wheel", "heap4"} {
		b.Run("timers="+q, func(b *testing.B) {
			var ours, theirs time.Duration
			for i := 0; i < b.N; i++ {
				w := Silent{Conns: 10000, Seed: uint64(i), Spread: time.Second}
				run := func(queue string) (RunResult, time.Duration) {
					w.Timers = queue
					start := time.Now()
					r, err := SilentConns(w)
					if err != nil {
						b.Fatal(err)
					}
					return r, time.Since(start)
				}
				r1, d1 := run(q)
				r2, d2 := run("faketime")
				if r1 != r2 {
					b.Fatalf("seed %d: %s simulated %+v, faketime %+v", i, q, r1, r2)
				}
				ours, theirs = ours+d1, theirs+d2
			}
			b.ReportMetric(float64(ours)/float64(theirs), "x-faketime")
			b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N*10000), "ns/conn")
		})
	}
}

// benchSilent runs w b.N times (the seed changing) and reports events/s,
// time and heap per connection, and the GC's share.
func benchSilent(b *testing.B, w Silent) {
	b.ReportAllocs()
	events := 0
	heap := 0.0
	total0, gc0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		w.Seed, w.MeasureHeap = uint64(i), i == 0
		var extra []stack.Observer
		if w.observers != nil {
			extra = w.observers()
		}
		r, err := SilentConns(w, extra...)
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events()
		if i == 0 {
			heap = r.HeapPerConn
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*w.Conns), "ns/conn")
	b.ReportMetric(heap, "heapB/conn")
	reportGCShare(b, total0, gc0)
}

// TestWorkloadsComplete checks the workloads do what the benchmarks claim:
// every connection probes and is aborted at the expected virtual time.
func TestWorkloadsComplete(t *testing.T) {
	r, err := ConnectionLife(1)
	if err != nil {
		t.Fatal(err)
	}
	// Handshake 3, request, its ACK, reply, its ACK: 7; then 10 probes.
	if r.Segments != 17 || r.Aborted != 1 {
		t.Errorf("connection life: %d segments, %d aborted; want 17, 1", r.Segments, r.Aborted)
	}
	if min := 2*time.Hour + 10*time.Second; r.End < min || r.End > min+time.Second {
		t.Errorf("connection life ended at %v, want about %v", r.End, min)
	}
	for _, spread := range []time.Duration{0, time.Second} {
		r, err = SilentConns(Silent{Conns: 100, Seed: 1, Spread: spread, MeasureHeap: true})
		if err != nil {
			t.Fatal(err)
		}
		// Per connection: handshake 3, then 10 dropped probes.
		if r.Segments != 100*13 || r.Aborted != 100 || r.HeapPerConn <= 0 {
			t.Errorf("silent conns spread over %v: %+v", spread, r)
		}
	}
}
