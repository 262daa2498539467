//go:build linux

package livetest

import (
	"fmt"
	"kasim/internal/caps"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// probe checks for the capabilities NewLab checks for, then that
// unshare(CLONE_NEWNET) works: a container may refuse it even to root.
func probe() string {
	if why := caps.MissingForNamespaces(); why != "" {
		return why
	}
	errc := make(chan error)
	go func() {
		// Back to the original namespace before unlocking: a locked
		// goroutine that ends on the main thread leaves it parked, not
		// ended, and the throwaway namespace would live as long as the
		// process.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			runtime.UnlockOSThread()
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			runtime.UnlockOSThread()
			return
		}
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- nil // unshare worked; the thread stays locked, and Go discards it
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return fmt.Sprintf("uid %d, but unshare(CLONE_NEWNET): %v", os.Geteuid(), err)
	}
	return ""
}
