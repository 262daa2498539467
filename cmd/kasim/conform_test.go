package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
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
	args := []string{"conform", "--dut", "gvisor", "--runs", "1", "--format", "jsonl", "../../internal/conform/scenarios/8-greeted-peer-dead.yaml"}
	code, out, errOut := kasim(args...)
	if code == 1 && strings.Contains(errOut, "only times differ") {
		// Real gVisor runs in real time: on a busy machine (the rest of
		// the tests beside it) a timer can fire milliseconds late. Measure
		// again with three runs, as the conform tests do.
		t.Logf("only times differ in one run; three more:\n%s", errOut)
		args[4] = "3"
		code, out, errOut = kasim(args...)
	}
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

// TestConformVectorsPicksByProfile: --vectors picks the vectors whose
// client has the profile of the stack under test, and says in one line
// how many it left out.
func TestConformVectorsPicksByProfile(t *testing.T) {
	var stderr bytes.Buffer
	list, note, code := conformVectors("../../testdata/conformance", "lwip", &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var names []string
	for _, sc := range list {
		names = append(names, filepath.Base(sc.name))
		if !sc.vector || sc.builtin {
			t.Errorf("%s: vector %v, built-in %v", sc.name, sc.vector, sc.builtin)
		}
	}
	if strings.Join(names, " ") != "108-lwip-slow-timer.yaml 109-lwip-probe-states.yaml 110-freebsd-lwip-option-errors.yaml 123-lwip-syn-retransmission.yaml 124-lwip-syn-counts-ticks.yaml 125-lwip-data-retransmission.yaml 126-lwip-rto-from-samples.yaml 127-lwip-times-the-syn.yaml 131-final-ack-lost.yaml 132-lwip-first-data-lost.yaml 136-lwip-syn-lost.yaml 140-lwip-syns-lost-twice.yaml" {
		t.Errorf("picked %v", names)
	}
	n := vectorFiles(t)
	if want := fmt.Sprintf("12 of %d vector(s) have the lwip profile on the stack under test (the client, or a server whose client runs gvisor); %d left out", n, n-12); !strings.Contains(note, want) || strings.Contains(note, "\n") {
		t.Errorf("note %q, want one line with %q", note, want)
	}
	for _, tc := range []struct {
		f    conformFlags
		want string
	}{
		{conformFlags{}, "linux"},
		{conformFlags{dut: "lwip", opts: conform.Options{Profile: "linux"}}, "lwip"},
		{conformFlags{dut: "gvisor"}, "gvisor"},
		{conformFlags{dut: "linux", opts: conform.Options{Profile: "vista"}}, "linux"},
		{conformFlags{dut: "./my-driver", opts: conform.Options{Profile: "freebsd"}}, "freebsd"},
		{conformFlags{stackCmd: "python3 x.py", opts: conform.Options{Profile: "lwip"}}, "lwip"},
	} {
		if got := vectorProfile(&tc.f); got != tc.want {
			t.Errorf("--dut %q --stack %q --profile %q: vectors for %s, want %s", tc.f.dut, tc.f.stackCmd, tc.f.opts.Profile, got, tc.want)
		}
	}
}

// TestConformVectorsSkipWhatTheLabCannotPlay: a vector the lab cannot
// play is listed as skipped, with its place and the reason, and counted
// apart; nothing runs (so no root is needed to see it).
func TestConformVectorsSkipWhatTheLabCannotPlay(t *testing.T) {
	list, note, code := conformVectors("../../testdata/conformance", "lwip", io.Discard)
	if code != exitOK {
		t.Fatal(code)
	}
	// 109, 110, 124 and 127 are the ones the lab cannot play.
	unplayable := list[:0:0]
	for _, sc := range list {
		if n := filepath.Base(sc.name); strings.HasPrefix(n, "109-") || strings.HasPrefix(n, "110-") || strings.HasPrefix(n, "124-") || strings.HasPrefix(n, "127-") {
			unplayable = append(unplayable, sc)
		}
	}
	var out, errOut bytes.Buffer
	code = runConform(unplayable, note, conform.Options{Profile: "lwip", Runs: 1}, "", &out, &errOut, io.Discard)
	text := out.String()
	for _, want := range []string{
		fmt.Sprintf("12 of %d vector(s) have the lwip profile on the stack under test", vectorFiles(t)),
		"SKIPPED  ../../testdata/conformance/109-lwip-probe-states.yaml:24:6: not a conform scenario: setsockopt TCP_KEEPIDLE on the server end (server)",
		"SKIPPED  ../../testdata/conformance/110-freebsd-lwip-option-errors.yaml: not a conform scenario: the lab has two hosts",
		"SKIPPED  ../../testdata/conformance/124-lwip-syn-counts-ticks.yaml: not a conform scenario: the lab has two hosts",
		"SKIPPED  ../../testdata/conformance/127-lwip-times-the-syn.yaml: not a conform scenario: the lab has two hosts",
		"0 of 0 scenario(s) agree with the lwip profile (4 skipped)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if code != exitFail || errOut.Len() != 0 {
		t.Errorf("exit %d (want 1: nothing ran), stderr %q", code, errOut.String())
	}
}

// vectorFiles counts the conformance vectors, which grow.
func vectorFiles(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob("../../testdata/conformance/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("conformance vectors: %d, %v", len(files), err)
	}
	return len(files)
}
