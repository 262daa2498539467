//go:build linux

package live

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"kasim/internal/livetest"
)

// TestMain lets the test binary serve as the peer helper (NewLab re-executes
// it) and as the lab holder the SIGKILL test kills; otherwise it runs the
// tests and checks that they leave no goroutine behind.
func TestMain(m *testing.M) {
	MaybeRunPeer()
	maybeRunHolder()
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("runtime.runCleanups"),
		// The thread helpers are started from lives as long as the
		// process, by design.
		goleak.IgnoreAnyFunction("kasim/internal/live.forkerLoop"))
}

// newTestLab builds a lab, or skips the test where no lab can be built here
// (see needLive), or fails it if NewLab fails anyway.
func newTestLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	needLive(t)
	if opts.PeerStderr == nil {
		opts.PeerStderr = testWriter{t}
	}
	start := time.Now()
	lab, err := NewLab(opts)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("cannot build the live lab: %v", err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if len(opts.DUT) > 0 {
		t.Logf("lab up in %v: helper pid %d started in %v; driver %s's hello %v after it was started", took, lab.peer.pid, lab.peerStart, opts.DUT[0], lab.peerCarrier)
		return lab
	}
	t.Logf("lab up in %v: helper pid %d started in %v; %s carrier %v after link up, %s %v",
		took, lab.peer.pid, lab.peerStart, lab.cfg.peerIf, lab.peerCarrier, lab.cfg.testerIf, lab.carrier)
	return lab
}

// needLive skips the test, in one line saying why and how to run it, where
// this process cannot make network namespaces (it is not root) or
// KASIM_LIVE=0 says not to; CI sets KASIM_REQUIRE_LIVE=1, which makes that
// a failure instead.
func needLive(t *testing.T) {
	t.Helper()
	livetest.Need(t)
}

// testWriter sends the helper's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("peer helper: %s", b)
	return len(b), nil
}
