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
		// Never unlocked: the thread, moved to a namespace of its own
		// (or not), ends with this goroutine, and the namespace with it.
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		return fmt.Sprintf("uid %d, but unshare(CLONE_NEWNET): %v", os.Geteuid(), err)
	}
	return ""
}
