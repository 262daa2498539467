//go:build !linux

package gvisor

import (
	"fmt"
	"io"
)

// Run would serve kasim's requests on gVisor's netstack; it needs Linux
// (a TAP device), so here it says so and returns 1.
func Run(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fmt.Fprintln(stderr, "kasim gvisor driver: needs Linux (a TAP device)")
	return 1
}
