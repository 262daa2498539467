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
