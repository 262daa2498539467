package echo

import (
	"strings"
	"testing"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("x", 10), strings.Repeat("x", 10)},
		{strings.Repeat("x", 11), "xxxx... (11 bytes)"},
		{"ééé" + strings.Repeat("x", 20), "éé... (26 bytes)"}, // no half a rune
	} {
		if got := Clip(tc.in, 10, 4); got != tc.want {
			t.Errorf("Clip(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
