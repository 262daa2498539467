package bench

import (
	"fmt"
	"testing"
	"time"

	"kasim/sim"
)

// BenchmarkConnectionLife measures one connection's whole simulated life,
// stack pair creation included.
func BenchmarkConnectionLife(b *testing.B) {
	b.ReportAllocs()
	events := 0
	for i := 0; i < b.N; i++ {
		r, err := ConnectionLife(uint64(i))
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSilentConns measures N silent keep-alive connections run to
// abort, on the bare engine and with the trace recorder attached.
func BenchmarkSilentConns(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, traced := range []bool{false, true} {
			name := fmt.Sprintf("conns=%d", n)
			if traced {
				name += "/traced"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				events := 0
				heap := 0.0
				for i := 0; i < b.N; i++ {
					var r Result
					var err error
					// Heap is measured on the first run only: it
					// forces collections that would skew the time.
					if traced {
						r, err = SilentConns(n, uint64(i), i == 0, sim.NewRecorder())
					} else {
						r, err = SilentConns(n, uint64(i), i == 0)
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
	r, err = SilentConns(100, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	// Per connection: handshake 3, then 10 dropped probes.
	if r.Segments != 100*13 || r.Aborted != 100 || r.HeapPerConn <= 0 {
		t.Errorf("silent conns: %+v", r)
	}
}
