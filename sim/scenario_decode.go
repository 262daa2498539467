package sim

// The decoder: a scenario file's YAML nodes read into values, each
// problem reported at its file:line:col.

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"kasim/internal/echo"
)

// A message echoes a text longer than clipOver bytes (longer than any list
// of names kasim gives) as its first clipKeep bytes and its length.
const (
	clipOver = 512
	clipKeep = 100
)

// clipText cuts text echoed in a message to a readable length, saying how
// long it was.
func clipText(s string) string { return echo.Clip(s, clipOver, clipKeep) }

// maxProblems bounds the problems reported for one file.
const maxProblems = 20

type decoder struct {
	file     string
	problems []Problem
	hosts    map[string]*HostSpec
	conns    map[string]*ConnSpec
	// declared holds every host and connection name the file declares,
	// valid or not, so that a reference to one already reported as
	// invalid adds no second problem.
	declared map[string]bool
	// sent is the payload of the send actions so far; sentTooMuch says
	// the limit's problem has been reported.
	sent        int64
	sentTooMuch bool
}

func (d *decoder) problem(line, col int, format string, args ...any) {
	for i, a := range args {
		if str, ok := a.(string); ok && len(str) > clipOver {
			args[i] = clipText(str) // a 500 KB key gets one readable line, not 500 KB
		}
	}
	if len(d.problems) < maxProblems {
		d.problems = append(d.problems, Problem{Pos{d.file, line, col}, fmt.Sprintf(format, args...)})
	}
}

// at reports a problem at n; nil (a scenario built in Go, which has no
// file) places it at 0:0.
func (d *decoder) at(n *ynode, format string, args ...any) {
	if n == nil {
		d.problem(0, 0, format, args...)
		return
	}
	d.problem(n.line, n.col, format, args...)
}

func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	sort.SliceStable(d.problems, func(i, j int) bool {
		a, b := d.problems[i].Pos, d.problems[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return &ScenarioError{d.problems}
}

func (d *decoder) pos(n *ynode) Pos { return Pos{d.file, n.line, n.col} }

// fields checks that n is a mapping with only the allowed keys, reporting
// the others, and returns its values by key. what names n in messages.
func (d *decoder) fields(n *ynode, what string, allowed ...string) map[string]*ynode {
	if n.kind != yMap {
		d.at(n, "%s: want a mapping (key: value lines), found %s", what, n.describe())
		return nil
	}
	out := make(map[string]*ynode, len(n.keys))
	for i, k := range n.keys {
		if !slices.Contains(allowed, k.value) {
			d.at(k, "%s: unknown key %q; want one of %s%s", what, k.value, strings.Join(allowed, ", "), suggest(k.value, allowed))
			continue
		}
		out[k.value] = n.vals[i]
	}
	return out
}

// suggest returns ` (did you mean "x"?)` for a near miss.
func suggest(got string, want []string) string {
	if len(got) < 3 {
		return "" // any one-letter name is one edit from any other
	}
	best, bestD := "", 3
	for _, w := range want {
		if dist := echo.Distance(strings.ToLower(got), strings.ToLower(w)); dist < bestD {
			best, bestD = w, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func (d *decoder) str(n *ynode, what string) (string, bool) {
	if n.kind != yScalar || n.tag == "null" {
		d.at(n, "%s: want a name or text, found %s", what, n.describe())
		return "", false
	}
	return n.value, true
}

func (d *decoder) integer(n *ynode, what string, lo, hi int64) (int64, bool) {
	if n.kind != yScalar || n.tag != "int" {
		d.at(n, "%s: want a whole number from %d to %d, found %s", what, lo, hi, n.describe())
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.value, "_", ""), 0, 64)
	if err != nil || v < lo || v > hi {
		d.at(n, "%s: %s is out of range: want %d to %d", what, n.value, lo, hi)
		return 0, false
	}
	return v, true
}

func (d *decoder) float(n *ynode, what string, lo, hi float64) (float64, bool) {
	if n.kind != yScalar || (n.tag != "int" && n.tag != "float") {
		d.at(n, "%s: want a number from %g to %g, found %s", what, lo, hi, n.describe())
		return 0, false
	}
	v, err := strconv.ParseFloat(n.value, 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		d.at(n, "%s: %s is out of range: want %g to %g", what, n.value, lo, hi)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *ynode, what string) (bool, bool) {
	if n.kind != yScalar || n.tag != "bool" {
		d.at(n, "%s: want true or false, found %s", what, n.describe())
		return false, false
	}
	return n.value == "true" || n.value == "True" || n.value == "TRUE", true
}

// duration reads a Go duration (2h, 1500ms, 0) from zero to hi.
func (d *decoder) duration(n *ynode, what string, hi time.Duration) (time.Duration, bool) {
	if n.kind != yScalar || (n.tag != "str" && n.tag != "int") {
		d.at(n, "%s: want a duration such as 2h, 90s or 1500ms, found %s", what, n.describe())
		return 0, false
	}
	if n.tag == "int" && n.value != "0" {
		d.at(n, "%s: %s has no unit: want a duration such as %ss or %sms", what, n.value, n.value, n.value)
		return 0, false
	}
	v, err := time.ParseDuration(n.value)
	switch {
	case err != nil:
		d.at(n, "%s: %q is not a duration: want Go syntax such as 2h, 90s, 1m30s or 1500ms", what, n.value)
		return 0, false
	case v < 0:
		d.at(n, "%s: %v is negative", what, v)
		return 0, false
	case v > hi:
		d.at(n, "%s: %v is longer than the limit, %v", what, v, hi)
		return 0, false
	}
	return v, true
}

func (d *decoder) list(n *ynode, what string, limit int) []*ynode {
	if n.kind != ySeq {
		d.at(n, "%s: want a list (lines starting with -), found %s", what, n.describe())
		return nil
	}
	if len(n.items) > limit {
		d.at(n, "%s: %d entries, more than the limit of %d", what, len(n.items), limit)
		return nil
	}
	return n.items
}
