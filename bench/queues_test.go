package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/faketime"

	"kasim/timers"
)

// Queue micro benchmarks: one operation against a queue that already holds
// n timers with deadlines spread over two hours, as keep-alive leaves them.
// The Go runtime's timers and gVisor's faketime.ManualClock run the same
// operations through their own APIs, as references in the same run.

var queueSizes = []int{1_000, 1_000_000}

var queues = []struct {
	name string
	make func() timers.Queue
}{
	{"wheel", func() timers.Queue { return timers.NewWheel() }},
	{"heap4", func() timers.Queue { return timers.NewHeap4() }},
}

const twoHours = int64(2 * time.Hour)

func filled(mk func() timers.Queue, n int) timers.Queue {
	q := mk()
	r := rand.New(rand.NewPCG(1, uint64(n)))
	for i := 0; i < n; i++ {
		q.Push(timers.ID(i), r.Int64N(twoHours)+1)
	}
	return q
}

// eachQueue runs body, timed, as a sub-benchmark for every kasim queue,
// each filled with n timers first.
func eachQueue(b *testing.B, n int, body func(b *testing.B, q timers.Queue)) {
	for _, qu := range queues {
		b.Run(fmt.Sprintf("queue=%s/n=%d", qu.name, n), func(b *testing.B) {
			q := filled(qu.make, n)
			b.ReportAllocs()
			b.ResetTimer()
			body(b, q)
		})
	}
}

// BenchmarkScheduleCancel: schedule a timer and cancel it again.
func BenchmarkScheduleCancel(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 3))
	deadlines := make([]int64, 1024)
	for i := range deadlines {
		deadlines[i] = r.Int64N(twoHours) + 1
	}
	for _, n := range queueSizes {
		eachQueue(b, n, func(b *testing.B, q timers.Queue) {
			id := timers.ID(n)
			for i := 0; i < b.N; i++ {
				q.Push(id, deadlines[i&1023])
				q.Remove(id)
			}
		})
		b.Run(fmt.Sprintf("queue=runtime/n=%d", n), func(b *testing.B) {
			stop := runtimeTimers(n)
			defer stop()
			f := func() {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				time.AfterFunc(2*time.Hour, f).Stop()
			}
		})
		b.Run(fmt.Sprintf("queue=faketime/n=%d", n), func(b *testing.B) {
			c := faketime.NewManualClock()
			f := func() {}
			for i := 0; i < n; i++ {
				c.AfterFunc(time.Duration(i%7200+1)*time.Second, f)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.AfterFunc(time.Hour+time.Duration(i&1023), f).Stop()
			}
		})
	}
}

// BenchmarkKeepAliveReset: move a pending timer later, as every segment
// received does to its connection's keep-alive timer.
func BenchmarkKeepAliveReset(b *testing.B) {
	for _, n := range queueSizes {
		eachQueue(b, n, func(b *testing.B, q timers.Queue) {
			for i := 0; i < b.N; i++ {
				// Each reset lands two hours after a clock that moves
				// a microsecond per reset.
				q.Reschedule(timers.ID(i%n), twoHours+int64(i)*1000)
			}
		})
		b.Run(fmt.Sprintf("queue=runtime/n=%d", n), func(b *testing.B) {
			ts := make([]*time.Timer, n)
			f := func() {}
			for i := range ts {
				ts[i] = time.AfterFunc(2*time.Hour, f)
			}
			defer func() {
				for _, t := range ts {
					t.Stop()
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ts[i%n].Reset(2*time.Hour + time.Duration(i))
			}
		})
	}
}

// BenchmarkFireAndRearm: take the next due timer and schedule it again one
// interval later, as gVisor's keep-alive and retransmission timers do. The
// clock jumps to each deadline, so this also prices finding it.
func BenchmarkFireAndRearm(b *testing.B) {
	for _, n := range queueSizes {
		eachQueue(b, n, func(b *testing.B, q timers.Queue) {
			for i := 0; i < b.N; i++ {
				now, _ := q.Peek()
				id, _, _ := q.PopDue(now)
				q.Push(id, now+int64(time.Second)+int64(i&1023))
			}
		})
	}
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

// TestQueuesAgreeOnABenchmarkWorkload checks that the queues benchmarked
// here fire the same sequence for the fire-and-rearm workload.
func TestQueuesAgreeOnABenchmarkWorkload(t *testing.T) {
	var seqs [][]timers.ID
	for _, qu := range queues {
		q := filled(qu.make, 5000)
		var seq []timers.ID
		for i := 0; i < 20000; i++ {
			now, _ := q.Peek()
			id, _, _ := q.PopDue(now)
			seq = append(seq, id)
			q.Push(id, now+int64(time.Second)+int64(i&1023))
		}
		seqs = append(seqs, seq)
	}
	for i := range seqs[0] {
		if seqs[0][i] != seqs[1][i] {
			t.Fatalf("fire %d: %s fired %d, %s fired %d", i, queues[0].name, seqs[0][i], queues[1].name, seqs[1][i])
		}
	}
}
