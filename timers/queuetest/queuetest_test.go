package queuetest

import (
	"fmt"
	"testing"

	"kasim/timers"
)

// lifo is a plausible but wrong queue: among equal deadlines the newest
// comes out first. Check must catch it.
type lifo struct{ model }

func (l *lifo) PopDue(now int64) (timers.ID, int64, bool) {
	if len(l.entries) == 0 || l.entries[0].when > now {
		return 0, 0, false
	}
	last := 0
	for last+1 < len(l.entries) && l.entries[last+1].when == l.entries[0].when {
		last++
	}
	e := l.entries[last]
	l.entries = append(l.entries[:last], l.entries[last+1:]...)
	return e.id, e.when, true
}

// recorder is a T that notes failures instead of stopping the test.
type recorder struct{ failures []string }

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func TestCheckCatchesAWrongQueue(t *testing.T) {
	var r recorder
	Ops(&r, &lifo{}, []byte{0, 0x10, 0, 0x11, 2, 7}) // two timers at deadline 1, then drain
	if len(r.failures) != 1 {
		t.Fatalf("Ops reported %v for a queue that fires equal deadlines newest first; want one failure", r.failures)
	}
	t.Logf("caught: %s", r.failures[0])
}
