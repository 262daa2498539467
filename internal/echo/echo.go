// Package echo cuts text a user gave, echoed back in a message, to a
// readable length: a 500 KB argument gets one line that says how long it
// was, not 500 KB of it.
package echo

import (
	"fmt"
	"strings"
)

// Clip returns s if it is at most over bytes long, and otherwise its first
// keep bytes (valid UTF-8) and its length: "abc... (500000 bytes)".
func Clip(s string, over, keep int) string {
	if len(s) <= over {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", strings.ToValidUTF8(s[:min(keep, len(s))], ""), len(s))
}
