//go:build linux

package live

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
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

// newTestLab builds a lab or fails the test loudly: these tests need root
// and network namespaces, and CI has both. KASIM_LIVE=0 skips them, saying
// so, where that is wanted.
func newTestLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	skipIfDisabled(t)
	if opts.PeerStderr == nil {
		opts.PeerStderr = testWriter{t}
	}
	start := time.Now()
	lab, err := NewLab(opts)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("cannot build the live lab: %v\n(these tests need root and network namespaces; set KASIM_LIVE=0 to skip them)", err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	t.Logf("lab up in %v: helper pid %d started in %v; %s carrier %v after link up, %s %v",
		took, lab.peer.pid, lab.peerStart, lab.cfg.peerIf, lab.peerCarrier, lab.cfg.testerIf, lab.carrier)
	return lab
}

func skipIfDisabled(t *testing.T) {
	t.Helper()
	if os.Getenv("KASIM_LIVE") == "0" {
		t.Skip("KASIM_LIVE=0: skipping the test against the machine's kernel")
	}
}

// testWriter sends the helper's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("peer helper: %s", b)
	return len(b), nil
}
