package timers_test

import (
	"fmt"
	"time"

	"github.com/benbjohnson/clock"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// fromBenbjohnson adapts a github.com/benbjohnson/clock Clock to
// tcpip.Clock, so a gVisor stack can run on clock.New() (real time) or on a
// *clock.Mock in a user's own tests. Such a stack is not driven by kasim's
// Network: callbacks run on the clock's own goroutines and runs are not
// deterministic. For simulation use timers.Clock. kasim itself does not
// need the adapter, so it lives here, for copying, and not in the package.
func fromBenbjohnson(c clock.Clock) tcpip.Clock {
	return &bjClock{c: c, origin: c.Now()}
}

type bjClock struct {
	c      clock.Clock
	origin time.Time
}

func (b *bjClock) Now() time.Time { return b.c.Now() }

// NowMonotonic counts from the adapter's creation; clock.New() readings carry
// Go's monotonic clock, so Sub is immune to wall-clock steps.
func (b *bjClock) NowMonotonic() tcpip.MonotonicTime {
	var zero tcpip.MonotonicTime
	return zero.Add(b.c.Now().Sub(b.origin))
}

func (b *bjClock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	return bjTimer{b.c.AfterFunc(d, f)}
}

type bjTimer struct{ t *clock.Timer }

func (t bjTimer) Stop() bool            { return t.t.Stop() }
func (t bjTimer) Reset(d time.Duration) { t.t.Reset(d) }

// A gVisor stack can run outside the simulator on any
// github.com/benbjohnson/clock clock, through an adapter to tcpip.Clock such
// as this one; here on a clock.Mock that a test moves by hand.
func Example_benbjohnson() {
	m := clock.NewMock()
	c := fromBenbjohnson(m) // what stack.Options.Clock would take
	start := c.NowMonotonic()
	fired := make(chan time.Duration)
	c.AfterFunc(time.Hour, func() { fired <- c.NowMonotonic().Sub(start) })
	m.Add(time.Hour)
	fmt.Println("fired after", <-fired)
	// Output: fired after 1h0m0s
}
