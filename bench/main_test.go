package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Network a test builds must leave no goroutine behind once closed.
// The runtime's AddCleanup goroutine (timers.Clock recycling timer IDs) is
// the runtime's own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("runtime.runCleanups"))
}
