package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"kasim/internal/conform"
	"kasim/internal/livetest"
)

// TestConformDUTWritesTheLiveTrace: kasim conform --dut gvisor --format
// jsonl runs a scenario against gVisor itself and writes its live trace,
// in the trace format, on stdout, and the comparison on stderr.
func TestConformDUTWritesTheLiveTrace(t *testing.T) {
	livetest.Need(t)
	code, out, errOut := kasim("conform", "--dut", "gvisor", "--runs", "1", "--format", "jsonl", "../../internal/conform/scenarios/8-greeted-peer-dead.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first struct{ Event, Text string }
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Event != "note" || !strings.Contains(first.Text, "on gVisor netstack") {
		t.Errorf("first line %q (%v), want a note naming the stack", lines[0], err)
	}
	probes := 0
	for i, l := range lines {
		var e struct{ Event, Class string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("stdout line %d is not JSON: %v: %s", i+1, err, l)
		}
		if e.Class == "keepalive-probe" {
			probes++
		}
	}
	if probes != 3 {
		t.Errorf("%d probes in the live trace, want 3", probes)
	}
	for _, want := range []string{"stack under test: gVisor netstack", "AGREES  greeted-peer-dead", "1 of 1 scenario(s) agree with the gvisor profile"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

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
