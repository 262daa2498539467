package timers

import (
	"time"

	"github.com/benbjohnson/clock"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// FromBenbjohnson adapts a github.com/benbjohnson/clock Clock to tcpip.Clock,
// so a gVisor stack can run on clock.New() (real time) or on a *clock.Mock in
// a user's own tests. Such a stack is not driven by kasim's Network: callbacks
// run on the clock's own goroutines and runs are not deterministic. For
// simulation use Clock.
func FromBenbjohnson(c clock.Clock) tcpip.Clock {
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
