//go:build linux

package caps

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// MissingForNamespaces returns why this process cannot build network
// namespaces ("running as uid 1000 without CAP_NET_ADMIN and
// CAP_SYS_ADMIN"), or "" when it has what they need.
func MissingForNamespaces() string {
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
	return ""
}
