// Package echo phrases what kasim's messages say back to a user: text it
// gave cut to a readable length (a 500 KB argument gets one line that says
// how long it was), lists of choices, and the distance that finds the name
// a typo meant.
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

// OrList writes items as a person would list choices: "a, b or c".
func OrList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// Distance is the number of one-letter edits (insert, delete, change, or
// swap two neighbours) between a and b, for suggesting the name meant by a
// typo. Past 64 bytes it gives up and answers 64: no such name is a typo
// of a short one.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
