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

func TestOrList(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{{nil, ""}, {[]string{"a"}, "a"}, {[]string{"a", "b"}, "a or b"}, {[]string{"a", "b", "c"}, "a, b or c"}} {
		if got := OrList(tc.in); got != tc.want {
			t.Errorf("OrList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"run", "run", 0}, {"rn", "run", 1}, {"chekc", "check", 1}, {"profle", "profile", 1}, {"kitten", "sitting", 3}, {strings.Repeat("x", 65), "x", 64}} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%.10q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
