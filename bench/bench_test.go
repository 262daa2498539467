package bench

import (
	"fmt"
	"testing"
	"time"

	"kasim/sim"
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
			traced := shape.traced
			name := fmt.Sprintf("conns=%d/%s", n, shape.name)
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				events := 0
				heap := 0.0
				total0, gc0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					var r RunResult
					var err error
					// Heap is measured on the first run only: it
					// forces collections that would skew the time.
					w := Silent{Conns: n, Seed: uint64(i), Spread: shape.spread, MeasureHeap: i == 0}
					if traced {
						r, err = SilentConns(w, sim.NewRecorder())
					} else {
						r, err = SilentConns(w)
					}
					if err != nil {
						b.Fatal(err)
					}
					events += r.Events()
					if i == 0 {
						heap = r.HeapPerConn
					}
				}
				b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/conn")
				b.ReportMetric(heap, "heapB/conn")
				reportGCShare(b, total0, gc0)
			})
		}
	}
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
