package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"

	"kasim/sim"
	"kasim/timers"
)

// runScenarioCmd is kasim run FILE.yaml [flags].
func runScenarioCmd(file string, args []string, stdout, stderr io.Writer) int {
	defer simulateOnOneProcessor(sim.MaxScenarioConns)()
	format := "text"
	var pcapPath string
	fs := flag.NewFlagSet("kasim run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(choiceFlag{&format, []string{"text", "jsonl"}}, "format", "output `text|jsonl`: the annotated timeline, or the trace")
	fs.StringVar(&pcapPath, "pcap", "", "also write every packet to this pcap `file` (virtual timestamps)")
	var svgPath string
	fs.StringVar(&svgPath, "svg", "", "also write a sequence diagram of the run to this SVG `file`, to open in a browser")
	opts := sim.RunOptions{Timers: "heap4"}
	var recordPath string
	fs.Var(choiceFlag{&opts.Timers, timers.Names()}, "timers", "timer `queue`: "+timersHelp())
	fs.StringVar(&recordPath, "record-timers", "", "also write every timer-queue operation to this `file`, for kasim bench --replay (not with --timers linux)")
	const help = "Usage: kasim run FILE.yaml [flags]\n\nRuns a scenario file and prints its timeline (or its trace). The file sets\nhosts, profiles, connections, actions and expectations; see\ndocs/scenarios.md. kasim check FILE.yaml checks the expectations."
	if code, done := parseFlags(fs, args, help, "", stdout, stderr); done {
		return code
	}
	s, err := sim.LoadScenario(file)
	if err != nil {
		return loadError("kasim run", err, stderr)
	}
	record, code, ok := openTimerRecord(recordPath, opts.Timers, stderr)
	if !ok {
		return code
	}
	if record != nil {
		defer record.Close() // closed by the run; this covers a failed one
		opts.RecordTimers = record
	}
	pcap, err := openPcap(pcapPath)
	if err != nil {
		fmt.Fprintf(stderr, "kasim run: --pcap: %v\n", err)
		return exitFail
	}
	// The output goes as the run goes: nothing of it is kept.
	out := newRunOutput(format, svgPath, s.Profiles(), nil, 0, stdout, stderr)
	opts.Events, opts.Observers = out.event, pcap.observers()
	run, err := sim.RunScenarioWith(s, opts)
	if err == nil {
		err = out.close()
	}
	if err != nil {
		pcap.close()
		fmt.Fprintf(stderr, "kasim run: %s: %v\n", file, err)
		return exitFail
	}
	if err := pcap.close(); err != nil {
		fmt.Fprintf(stderr, "kasim run: --pcap %s: %v\n", pcapPath, err)
		return exitFail
	}
	if out.svg != nil {
		if err := writeSVGFile(svgPath, out.svg.Write); err != nil {
			fmt.Fprintf(stderr, "kasim run: --svg: %v\n", err)
			return exitFail
		}
	}
	if record != nil {
		fmt.Fprintf(stderr, "kasim run: timer trace %s: %d fires, fire hash %x\n", recordPath, run.TimerFires, run.TimerHash)
	}
	if format != "jsonl" && len(s.Expects) > 0 {
		if _, err := fmt.Fprintf(stdout, "\n(%d expectation(s) in the file: kasim check %s checks them)\n", len(s.Expects), file); err != nil {
			fmt.Fprintf(stderr, "kasim run: writing output: %v\n", err)
			return exitFail
		}
	}
	return exitOK
}

// loadError reports a scenario that could not be read: a usage error (exit
// 2) either way, since the input is the user's.
func loadError(cmd string, err error, stderr io.Writer) int {
	var se *sim.ScenarioError
	if errors.As(err, &se) {
		fmt.Fprintln(stderr, se.Error())
	} else {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	}
	return exitUsage
}

const checkHelp = `Usage: kasim check FILE.yaml|DIR ...

Runs each scenario file (every *.yaml in a directory) and checks its
expectations. Where a golden trace sits beside a scenario (NAME.jsonl next to
NAME.yaml), the run's trace must equal it byte for byte. Prints a diff of
what differed; exits 0 if every expectation holds, 1 if any does not, and 2
if a file cannot be read or is not a valid scenario.`

// checkCmd is kasim check FILE|DIR...
func checkCmd(args []string, stdout, stderr io.Writer) int {
	defer simulateOnOneProcessor(sim.MaxScenarioConns)()
	fs := flag.NewFlagSet("kasim check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, checkHelp)
			return exitOK
		}
		fmt.Fprintf(stderr, "kasim check: %s\n", flagError(err))
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "kasim check: name scenario files or directories (kasim check testdata/conformance)")
		return exitUsage
	}
	var files []string
	for _, arg := range fs.Args() {
		fi, err := os.Stat(arg)
		if err != nil {
			fmt.Fprintf(stderr, "kasim check: %v\n", err)
			return exitUsage
		}
		if !fi.IsDir() {
			files = append(files, arg)
			continue
		}
		found, err := scenarioFiles(arg)
		if err != nil {
			fmt.Fprintf(stderr, "kasim check: %v\n", err)
			return exitUsage
		}
		if len(found) == 0 {
			fmt.Fprintf(stderr, "kasim check: %s: no *.yaml scenario files\n", arg)
			return exitUsage
		}
		files = append(files, found...)
	}
	// Read every file first: a bad one is reported with the others, and
	// nothing runs until all are valid.
	scenarios := make([]*sim.Scenario, len(files))
	bad := false
	for i, f := range files {
		s, err := sim.LoadScenario(f)
		if err != nil {
			loadError("kasim check", err, stderr)
			bad = true
			continue
		}
		scenarios[i] = s
	}
	if bad {
		return exitUsage
	}
	failed := 0
	for i, s := range scenarios {
		problems, err := checkOne(files[i], s)
		if err != nil {
			fmt.Fprintf(stderr, "kasim check: %s: %v\n", files[i], err)
			return exitFail
		}
		if len(problems) == 0 {
			fmt.Fprintf(stdout, "ok    %s\n", files[i])
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL  %s\n", files[i])
		for _, p := range problems {
			fmt.Fprintf(stdout, "  %s\n", strings.ReplaceAll(p, "\n", "\n  "))
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d scenario(s) failed\n", failed, len(files))
		return exitFail
	}
	fmt.Fprintf(stdout, "all %d scenario(s) hold\n", len(files))
	return exitOK
}

func scenarioFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkOne runs one scenario and returns what did not hold: failed
// expectations, and a trace that differs from its golden file.
func checkOne(file string, s *sim.Scenario) ([]string, error) {
	run, err := sim.RunScenario(s)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, f := range run.Check() {
		problems = append(problems, f.String())
	}
	golden := strings.TrimSuffix(strings.TrimSuffix(file, ".yaml"), ".yml") + ".jsonl"
	want, err := os.ReadFile(golden)
	if errors.Is(err, os.ErrNotExist) {
		return problems, nil
	}
	if err != nil {
		return nil, err
	}
	var got bytes.Buffer
	if err := sim.WriteJSONL(&got, run.Events); err != nil {
		return nil, err
	}
	if p := traceDiff(golden, want, got.Bytes()); p != "" {
		problems = append(problems, p)
	}
	return problems, nil
}

// traceDiff compares a trace with its golden file and describes the first
// line that differs, or returns "".
func traceDiff(golden string, want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("%s:%d: the trace differs from the golden file from this line on (%d lines there, %d in this run)\n%s",
				golden, i+1, len(wl)-1, len(gl)-1, cmp.Diff(w, g))
		}
	}
	if !bytes.HasSuffix(want, []byte("\n")) {
		return fmt.Sprintf("%s:%d: the golden file's last line has no newline; every line of a trace ends with one", golden, len(wl))
	}
	return golden + ": the trace differs from the golden file"
}
