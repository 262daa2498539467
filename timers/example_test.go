package timers_test

import (
	"fmt"
	"time"

	"kasim/timers"
)

// Timers due at the same instant fire in the order they were scheduled, and
// only when the driver says so.
func ExampleClock() {
	c := timers.NewClock(timers.NewHeap4(), time.Time{})
	c.AfterFunc(2*time.Hour, func() { fmt.Println("probe") })
	c.AfterFunc(time.Hour, func() { fmt.Println("first") })
	c.AfterFunc(2*time.Hour, func() { fmt.Println("abort") })
	for {
		next, ok := c.NextDeadline()
		if !ok {
			break
		}
		c.AdvanceTo(next)
		c.FireDue(100)
		fmt.Println("at", c.Elapsed())
	}
	// Output:
	// first
	// at 1h0m0s
	// probe
	// abort
	// at 2h0m0s
}

// A Linux kernel at HZ=250 rounds timeouts up to its timer wheel's
// granularity: keep-alive's 1 s interval becomes 1.024 s, 2 s becomes
// 2.016 s, and a 2 h idle time fires almost nine seconds late.
func ExampleLinuxWheel() {
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 2 * time.Hour} {
		w := timers.NewLinuxWheel(250)
		w.Push(0, int64(d))
		at, _ := w.Peek()
		fmt.Printf("%v fires at %v\n", d, time.Duration(at))
	}
	// Output:
	// 1s fires at 1.024s
	// 2s fires at 2.016s
	// 2h0m0s fires at 2h0m8.96s
}
