package timers_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

func TestBenbjohnsonAdapterOnMock(t *testing.T) {
	m := clock.NewMock()
	tc := fromBenbjohnson(m)
	fired := make(chan struct{}, 1)
	tc.AfterFunc(time.Hour, func() { fired <- struct{}{} })
	stopped := tc.AfterFunc(time.Hour, func() { t.Error("stopped timer fired") })
	if !stopped.Stop() {
		t.Fatal("Stop returned false for a pending timer")
	}
	m.Add(time.Hour)
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire after the mock advanced an hour")
	}
	t0 := tc.NowMonotonic()
	m.Add(time.Minute)
	if got := tc.NowMonotonic().Sub(t0); got != time.Minute {
		t.Fatalf("monotonic advanced %v, want 1m", got)
	}
}
