//go:build linux

package livetest

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// probe checks for the capabilities NewLab checks for, then that
// unshare(CLONE_NEWNET) works: a container may refuse it even to root.
func probe() string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Sprintf("reading this process's capabilities: %v", err)
	}
	var missing []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}} {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("running as uid %d without %s", os.Geteuid(), strings.Join(missing, " and "))
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
