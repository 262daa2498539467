package timers

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkWheelFiling times scheduling a timer two hours out, uniformly,
// into a wheel already holding a million (kasim bench's `schedule` at
// 10^6), in memory the benchmark itself warmed: it refills a fresh wheel,
// untimed, every million operations, and collects the last one. "roomy" gives every slot room for
// three times what it holds first, so that the difference is the slots'
// growth.
func BenchmarkWheelFiling(b *testing.B) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(1, 1))
	first, more := make([]int64, n), make([]int64, n)
	for i := range n {
		first[i] = 1 + r.Int64N(int64(2*time.Hour))
		more[i] = 1 + r.Int64N(int64(2*time.Hour))
	}
	for _, roomy := range []bool{false, true} {
		name := "grow"
		if roomy {
			name = "roomy"
		}
		b.Run(name, func(b *testing.B) {
			var w *Wheel
			fill := func() {
				w = NewWheel()
				for i, d := range first {
					w.Push(ID(i), d)
				}
				w.flush()
				if roomy {
					for k, bag := range w.bags {
						if cap(bag) > 0 && cap(bag) < bigBagLen {
							w.bags[k] = slices.Grow(bag, 3*len(bag))
						}
					}
				}
			}
			k := n
			for i := 0; i < b.N; i++ {
				if k == n {
					b.StopTimer()
					fill()
					runtime.GC() // the last wheel's, not during the pushes
					b.StartTimer()
					k = 0
				}
				w.Push(ID(n+k), more[k])
				k++
			}
			w.flush()
		})
	}
}
