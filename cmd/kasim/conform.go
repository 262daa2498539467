package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"kasim/internal/conform"
	"kasim/internal/live"
	"kasim/posixprofile"
	"kasim/sim"
	"kasim/winprofile"
)

const conformHelp = `Usage: kasim conform [--profile NAME] [--runs N] [--tolerance D] [--pcap-dir DIR] [FILE.yaml...]

Runs each scenario against this machine's own Linux kernel, in real time, and
in simulation with the profile, and reports where they agree: the kernel's
keep-alive probes, its reset and its application's error, by shape (flags,
relative seq/ack, length) and by time (within the kernel's own spread over
--runs runs, or --tolerance if larger). Needs root: kasim makes two network
namespaces joined by a veth pair, with the kernel on one side and kasim's
gVisor tester on the other, and nothing outlives the run. Without files it
runs the built-in scenarios (idle 2 s, interval 1 s, count 3: a dead peer, a
live one, TCP_USER_TIMEOUT shorter and longer, options set during connect,
probes answered with data, data between probes). A conform scenario has the
hosts kernel and tester, and the kernel connects to the tester.

Exit status: 0 if every scenario agrees, 1 if one does not (or the run
failed), 2 for bad usage.

Flags:
`

func conformCmd(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("kasim conform", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	opts := conform.Options{}
	var pcapDir string
	fset.StringVar(&opts.Profile, "profile", "linux", "the `profile` the simulated kernel host runs (kasim profiles lists them)")
	fset.IntVar(&opts.Runs, "runs", 3, "live runs per scenario, to measure the kernel's spread")
	fset.DurationVar(&opts.Tolerance, "tolerance", 5*time.Millisecond, "the least time difference that counts as disagreement")
	fset.DurationVar(&opts.Phase, "phase", 32*time.Millisecond, "the allowance for a timeout counted from a receive (the kernel's jiffy phase: one timer-wheel granule)")
	fset.StringVar(&pcapDir, "pcap-dir", "", "write each scenario's first live capture to `DIR`/NAME.pcap")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, conformHelp)
			fset.SetOutput(stdout)
			fset.PrintDefaults()
			return exitOK
		}
		fmt.Fprintf(stderr, "kasim conform: %s\n", flagError(err))
		return exitUsage
	}
	if px, err := posixprofile.Lookup(opts.Profile); err == nil && px.Dialect != "linux" {
		fmt.Fprintf(stderr, "kasim conform: --profile %s: conform holds a profile against the Linux kernel it runs on; %s is modelled from %s's source, with its own option numbers\n", opts.Profile, opts.Profile, px.Title)
		return exitUsage
	} else if err != nil {
		if _, werr := winprofile.Lookup(opts.Profile); werr != nil {
			fmt.Fprintf(stderr, "kasim conform: --profile %s: unknown profile (kasim profiles lists them)\n", opts.Profile)
			return exitUsage
		}
	}
	if opts.Runs < 1 || opts.Runs > 50 {
		fmt.Fprintf(stderr, "kasim conform: --runs %d: want 1 to 50\n", opts.Runs)
		return exitUsage
	}
	type scenario struct {
		name string
		data []byte
	}
	var list []scenario
	if fset.NArg() == 0 {
		entries, _ := fs.ReadDir(conform.Scenarios, "scenarios")
		for _, e := range entries {
			data, err := fs.ReadFile(conform.Scenarios, "scenarios/"+e.Name())
			if err != nil {
				fmt.Fprintf(stderr, "kasim conform: %v\n", err)
				return exitFail
			}
			list = append(list, scenario{"built-in " + e.Name(), data})
		}
	}
	for _, f := range fset.Args() {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "kasim conform: %v\n", err)
			return exitUsage
		}
		list = append(list, scenario{f, data})
	}
	agree := 0
	for _, sc := range list {
		o := opts
		var pcap *os.File
		if pcapDir != "" {
			base := strings.TrimSuffix(filepath.Base(strings.TrimPrefix(sc.name, "built-in ")), ".yaml")
			var err error
			if pcap, err = os.Create(filepath.Join(pcapDir, base+".pcap")); err != nil {
				fmt.Fprintf(stderr, "kasim conform: --pcap-dir: %v\n", err)
				return exitFail
			}
			o.PCAP = pcap
		}
		rep, err := conform.Compare(sc.name, sc.data, o)
		if pcap != nil {
			if cerr := pcap.Close(); err == nil && cerr != nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "kasim conform: %v\n", err)
			if errors.Is(err, live.ErrNotRoot) {
				fmt.Fprintln(stderr, "kasim conform: run it as root (sudo kasim conform): it creates network namespaces and a veth pair, and removes them when done")
			}
			var se *sim.ScenarioError
			if errors.As(err, &se) || errors.Is(err, conform.ErrNotLive) {
				return exitUsage
			}
			return exitFail
		}
		writeReport(stdout, rep)
		if rep.Agree() {
			agree++
		}
	}
	fmt.Fprintf(stdout, "%d of %d scenario(s) agree with the %s profile\n", agree, len(list), opts.Profile)
	if agree != len(list) {
		return exitFail
	}
	return exitOK
}

func writeReport(w io.Writer, r *conform.Report) {
	verdict := "AGREES"
	if !r.Agree() {
		verdict = "DIFFERS"
	}
	runs := "runs"
	if r.Runs == 1 {
		runs = "run"
	}
	fmt.Fprintf(w, "%s  %s: kernel (live, %d %s) vs %s (simulated)\n", verdict, r.Scenario, r.Runs, runs, r.Profile)
	if r.SimExtended > 0 {
		fmt.Fprintf(w, "  (the kernel gave up in every run; the simulation ran %v past the scenario's end to let %s finish too)\n", r.SimExtended, r.Profile)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  EVENT\tAFTER\tKERNEL\tAT (MEDIAN)\tSPREAD\t"+strings.ToUpper(r.Profile)+"\tAT\t")
	for _, row := range r.Rows {
		mark := "ok"
		if !row.Agree {
			mark = "DIFF"
		}
		at := func(s string, d time.Duration) string {
			if s == "" || row.Untimed {
				return "-"
			}
			return fmtDur(d)
		}
		live, sim, from := row.Live, row.Sim, row.From
		if from == "" {
			from = "-"
		}
		if live == "" {
			live = "(none)"
		}
		if sim == "" {
			sim = "(none)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s: %s\n", row.What, from, live, at(row.Live, row.LiveAt), fmtDur(row.Spread), sim, at(row.Sim, row.SimAt), mark, row.Explanation)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
