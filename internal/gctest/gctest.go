// Package gctest helps tests check that objects become garbage, and
// measure what code allocates.
package gctest

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Collectable returns a function that fails t unless obj has been garbage
// collected within timeout. Call it after dropping every reference to obj.
func Collectable[T any](t testing.TB, obj *T, timeout time.Duration) func() {
	t.Helper()
	collected := make(chan struct{})
	runtime.AddCleanup(obj, func(ch chan struct{}) { close(ch) }, collected)
	// The returned function must not mention obj: that would keep it alive.
	name := fmt.Sprintf("%T", obj)
	return func() {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			runtime.GC()
			select {
			case <-collected:
				return
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("a %s was not collected within %v", name, timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// Allocated returns the bytes f allocates (runtime.MemStats.TotalAlloc): a
// measure of work that, unlike time, does not depend on how busy the
// machine is.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
