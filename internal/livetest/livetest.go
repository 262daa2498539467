// Package livetest decides, for a test that runs the machine's kernel in
// network namespaces (an internal/live Lab), whether it can run here.
//
// Such a test needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and a kernel
// that lets this process make network namespaces. Where it cannot have
// them, `go test ./...` should still pass for anyone, so the test skips
// with one line that says why and how to run it; CI, where a missing lab
// is a broken setup, sets KASIM_REQUIRE_LIVE=1 and gets a failure instead
// (as KASIM_REQUIRE_TSHARK does for tshark).
package livetest

import (
	"os"
	"sync"
	"testing"
	"time"
)

// Environment variables: KASIM_LIVE=0 skips the live tests on purpose;
// KASIM_REQUIRE_LIVE=1 turns every skip into a failure.
const (
	DisableEnv = "KASIM_LIVE"
	RequireEnv = "KASIM_REQUIRE_LIVE"
)

var (
	once   sync.Once
	reason string
)

// Unavailable says why this process cannot build a live lab, or returns ""
// if it can. It asks the kernel once: it checks the capabilities and makes
// (and drops) a network namespace on a thread of its own.
func Unavailable() string {
	once.Do(func() { reason = probe() })
	return reason
}

// Need returns if t may build live labs. Otherwise it skips t with one line
// saying why and how to run it, or, where KASIM_REQUIRE_LIVE is set, fails
// it with that line.
func Need(t testing.TB) {
	t.Helper()
	required := os.Getenv(RequireEnv) != "" && os.Getenv(RequireEnv) != "0"
	if os.Getenv(DisableEnv) == "0" {
		if required {
			t.Fatalf("%s=0 skips the live tests, but %s=%s requires them", DisableEnv, RequireEnv, os.Getenv(RequireEnv))
		}
		t.Skipf("%s=0: skipping the live test against the machine's kernel", DisableEnv)
	}
	why := Unavailable()
	if why == "" {
		return
	}
	if required {
		t.Fatalf("%s=%s, but the live lab cannot be built here: it needs root and network namespaces (%s)", RequireEnv, os.Getenv(RequireEnv), why)
	}
	t.Skipf("live test skipped: needs root and network namespaces (%s): run the tests as root, or set %s=1 to make this a failure", why, RequireEnv)
}

// LongEnv runs the long live scenarios (NeedLong) outside CI too.
const LongEnv = "KASIM_LIVE_LONG"

// LongScenario is the real time from which a live scenario is long.
const LongScenario = 20 * time.Second

// NeedLong returns if t, a live comparison that takes d of real time, may
// run: always under KASIM_REQUIRE_LIVE=1 (CI runs the whole comparison)
// or KASIM_LIVE_LONG=1, and otherwise if d is under LongScenario. A long
// one skips with one line saying so, so that the tests as root stay
// quick: the four longest took `go test ./...` to 110 s.
func NeedLong(t testing.TB, d time.Duration) {
	t.Helper()
	if d < LongScenario || Long() {
		return
	}
	t.Skipf("long live scenario skipped: it takes %v of real time; CI runs it (%s=1), and so does %s=1", d, RequireEnv, LongEnv)
}

// Long reports whether the long live scenarios run here: CI's
// KASIM_REQUIRE_LIVE=1, or KASIM_LIVE_LONG=1.
func Long() bool {
	on := func(env string) bool { return os.Getenv(env) != "" && os.Getenv(env) != "0" }
	return on(RequireEnv) || on(LongEnv)
}
