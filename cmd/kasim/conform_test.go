package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"kasim/internal/conform"
)

// TestConformReportSaysWhenOnlyTimesDiffer: a report whose rows differ
// only in time says that the machine may be the cause and how to tell;
// one that differs in shape says nothing of the kind.
func TestConformReportSaysWhenOnlyTimesDiffer(t *testing.T) {
	const hint = "only times differ"
	late := conform.Row{What: "rst #1", From: "last probe", Sim: "RA", Live: "RA", SimAt: time.Second, LiveAt: 1005 * time.Millisecond, OffInTime: true, Explanation: "5ms apart, more than 4ms"}
	extra := conform.Row{What: "keepalive-probe #4", From: "last probe", Live: "A", LiveAt: time.Second, Explanation: "the kernel did this; the profile does not"}
	for _, tc := range []struct {
		rows []conform.Row
		hint bool
	}{
		{[]conform.Row{late}, true},
		{[]conform.Row{late, extra}, false},
	} {
		var out bytes.Buffer
		writeReport(&out, &conform.Report{Scenario: "s", Profile: "linux", Runs: 2, Rows: tc.rows})
		text := out.String()
		if !strings.HasPrefix(text, "DIFFERS  s:") || strings.Contains(text, hint) != tc.hint {
			t.Errorf("%d rows: hint %v wanted, got:\n%s", len(tc.rows), tc.hint, text)
		}
		if tc.hint && !strings.Contains(text, "if more --runs than 2 agree") {
			t.Errorf("the hint should name the runs it had:\n%s", text)
		}
	}
}
