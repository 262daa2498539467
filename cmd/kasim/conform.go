package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"kasim/internal/conform"
	"kasim/internal/live"
	"kasim/profile"
	"kasim/sim"
)

const conformHelp = `Usage: kasim conform [--dut lwip|gvisor|linux|"PROGRAM ARGS"] [--profile NAME] [--runs N] [--tolerance D] [--app-tolerance D] [--pcap-dir DIR] [--format text|jsonl] [--scale F] [--max-duration D] [--stack "PROGRAM ARGS"] [--vectors DIR] [FILE.yaml...]

Runs each scenario against this machine's own Linux kernel, in real time, and
in simulation with the profile, and reports where they agree: the kernel's
keep-alive probes, its reset and its application's error, by shape (flags,
relative seq/ack, length) and by time (within the kernel's own spread over
--runs runs, or --tolerance if larger). Needs root: kasim makes two network
namespaces joined by a veth pair, with the kernel on one side and kasim's
gVisor tester on the other, and nothing outlives the run. Without files it
runs the built-in scenarios (idle 2 s, interval 1 s, count 3: a dead peer, a
live one, TCP_USER_TIMEOUT shorter and longer, options set during connect,
probes answered with data, data between probes, a greeting then a dead
peer). A conform scenario has two
hosts and one connection between them: its client is the stack under test
(the built-in scenarios call it kernel), its server the tester (tester), and
the traces name them as the file does.

--scale plays a scenario written in real-world times faster: every time the
file states (duration, action times, latencies, keep-alive option values) is
multiplied by F, and an option value that would not stay whole in its unit
is refused at its line.

With --stack, a program of yours takes the kernel host's place: kasim starts
it in the kernel's namespace at the scenario's connect, with KASIM_CONNECT
(ADDR:PORT to connect to) and KASIM_<OPTION>=VALUE for each option the
scenario sets before connecting (KASIM_SO_KEEPALIVE=1, KASIM_TCP_KEEPIDLE=2,
KASIM_TCP_KEEPINTVL=1, KASIM_TCP_KEEPCNT=3, KASIM_TCP_USER_TIMEOUT=...; each
in the option's own unit). It connects, keeps a read pending, and prints
"error recv ETIMEDOUT" (the errno's name) when the read fails. Built-in
scenarios it cannot be told (options set after connecting) are skipped.

With --dut, the stack under test is another one, reached through a driver
(docs/dut-protocol.md): lwip (the real lwIP, from Debian's liblwip-dev,
compiled on first use), gvisor (gVisor's netstack in real time, built into
kasim), linux (the kernel, as without --dut), or a driver program of yours.
kasim gives the driver a TAP device in a namespace of its own; --profile
defaults to the driver's name where that is a profile. A scenario that needs
an option the driver does not have is skipped, with the reason.

--vectors DIR runs, beside any files, the conformance vectors in DIR
(testdata/conformance) that are for the stack under test: those in which the
client of a connection has its profile (lwip, gvisor or linux by --dut's
name; without --dut, linux; for a driver program or --stack, --profile).
Each plays for its duration in real time. One line says how many were left
out for another profile; a vector the lab cannot play (more hosts or
connections, calls on the server's end, a close, silence on the client,
a middlebox, loss, link changes, calls during a handshake its latency
makes long: the lab's link has next to none) is listed as SKIPPED with
its place in the file and why, and counted apart.

Exit status: 0 if every scenario agrees, 1 if one does not (or the run
failed), 2 for bad usage.

Flags:
`

// conformFlags are kasim conform's flags as given: opts, and the flags
// checkConformFlags reads into it.
type conformFlags struct {
	opts                          conform.Options
	pcapDir, stackCmd, scale, dut string
	format                        string // text or jsonl
	profileSet                    bool   // --profile was given
	// vectors is --vectors' directory; vectorProfile the profile its
	// vectors' stack under test must have (checkConformFlags sets it).
	vectors, vectorProfile string
}

// conformScenario is a scenario kasim conform runs: a file, a built-in
// one, or a conformance vector (--vectors).
type conformScenario struct {
	name    string
	data    []byte
	builtin bool
	vector  bool
}

func conformCmd(args []string, stdout, stderr io.Writer) int {
	var f conformFlags
	fset := conformFlagSet(&f)
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
	fset.Visit(func(fl *flag.Flag) { f.profileSet = f.profileSet || fl.Name == "profile" })
	if !checkConformFlags(&f, stderr) {
		return exitUsage
	}
	if f.dut != "" {
		d, err := conform.DUTNamed(f.dut, conform.DriverCache())
		if err != nil {
			fmt.Fprintf(stderr, "kasim conform: --dut %s: %v\n", clipValue(f.dut), err)
			var notFound *exec.Error
			if errors.As(err, &notFound) {
				return exitUsage // no such program
			}
			return exitFail // a driver that could not be built (no liblwip-dev, no compiler)
		}
		f.opts.DUT = d
	}
	list, code := conformScenarios(fset.Args(), stderr)
	if code != exitOK {
		return code
	}
	var note string
	if f.vectors != "" {
		var vectors []conformScenario
		if vectors, note, code = conformVectors(f.vectors, f.vectorProfile, stderr); code != exitOK {
			return code
		}
		if len(fset.Args()) == 0 {
			list = nil // the vectors instead of the built-in scenarios
		}
		list = append(list, vectors...)
	}
	report, traces := stdout, io.Discard
	if f.format == "jsonl" {
		report, traces = stderr, stdout
	}
	return runConform(list, note, f.opts, f.pcapDir, report, stderr, traces)
}

// conformFlagSet defines kasim conform's flags, with their defaults, into f.
func conformFlagSet(f *conformFlags) *flag.FlagSet {
	fset := flag.NewFlagSet("kasim conform", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	opts := &f.opts
	fset.StringVar(&opts.Profile, "profile", "linux", "the `profile` the simulated kernel host runs (kasim profiles lists them)")
	fset.IntVar(&opts.Runs, "runs", 3, "live runs per scenario, to measure the kernel's spread")
	fset.DurationVar(&opts.Tolerance, "tolerance", 5*time.Millisecond, "the least time difference that counts as disagreement")
	fset.DurationVar(&opts.AppTolerance, "app-tolerance", 20*time.Millisecond, "the least time difference that counts for an application's error (timed in user space, so later than the kernel's segments on a busy machine)")
	fset.DurationVar(&opts.Phase, "phase", 36*time.Millisecond, "the allowance for a timeout counted from a receive (the kernel's jiffy phase: one timer-wheel granule and one jiffy)")
	fset.StringVar(&f.format, "format", "text", "`text` (the comparison) or jsonl (each scenario's first live trace on stdout, in kasim's trace format; the comparison on stderr)")
	fset.StringVar(&f.pcapDir, "pcap-dir", "", "write each scenario's first live capture to `DIR`/NAME.pcap")
	fset.StringVar(&f.scale, "scale", "", "multiply every time the scenario states by this `fraction` (1/3600: a 2h idle time becomes 2s); keep-alive option values must stay whole in their units")
	fset.StringVar(&f.dut, "dut", "", "the `stack` under test: lwip, gvisor, linux, or a driver program and its arguments (docs/dut-protocol.md)")
	fset.StringVar(&f.stackCmd, "stack", "", "a `program` (and its arguments, split at spaces) to hold against the profile instead of kasim's own calls to the kernel")
	fset.DurationVar(&opts.MaxDuration, "max-duration", 10*time.Minute, "skip a scenario that plays longer than this in real time (after --scale); 0 runs every one")
	fset.StringVar(&f.vectors, "vectors", "", "also run the conformance vectors in `DIR` (testdata/conformance) whose stack under test has the profile of the one --dut names (linux without --dut; --profile for a program of yours)")
	return fset
}

// checkConformFlags checks the flags and reads --scale and --stack into
// f.opts; false if one is wrong (said on stderr).
func checkConformFlags(f *conformFlags, stderr io.Writer) bool {
	opts := &f.opts
	if f.dut != "" && !f.profileSet {
		if _, err := profile.Lookup(f.dut, nil, nil); err == nil {
			opts.Profile = f.dut
		}
	}
	if _, err := profile.Lookup(opts.Profile, nil, nil); err != nil {
		fmt.Fprintf(stderr, "kasim conform: --profile %s: unknown profile (kasim profiles lists them)\n", clipValue(opts.Profile))
		return false
	}
	if opts.MaxDuration < 0 {
		fmt.Fprintf(stderr, "kasim conform: --max-duration %v: want 0 (no limit) or more\n", opts.MaxDuration)
		return false
	}
	if f.format != "text" && f.format != "jsonl" {
		fmt.Fprintf(stderr, "kasim conform: --format %s: want text or jsonl\n", clipValue(f.format))
		return false
	}
	if opts.Runs < 1 || opts.Runs > 50 {
		fmt.Fprintf(stderr, "kasim conform: --runs %d: want 1 to 50\n", opts.Runs)
		return false
	}
	if f.scale != "" {
		r, ok := new(big.Rat).SetString(f.scale)
		if !ok || r.Sign() <= 0 || !r.Num().IsInt64() || !r.Denom().IsInt64() {
			fmt.Fprintf(stderr, "kasim conform: --scale %s: want a positive fraction such as 1/3600 or 0.01\n", clipValue(f.scale))
			return false
		}
		opts.ScaleNum, opts.ScaleDen = r.Num().Int64(), r.Denom().Int64()
	}
	if f.dut != "" && f.stackCmd != "" {
		fmt.Fprintln(stderr, "kasim conform: --dut and --stack: give one (--stack runs a program on this machine's kernel; --dut replaces the kernel)")
		return false
	}
	if f.stackCmd != "" {
		opts.Stack = strings.Fields(f.stackCmd)
		if _, err := exec.LookPath(opts.Stack[0]); err != nil {
			fmt.Fprintf(stderr, "kasim conform: --stack: %v\n", clipValue(err.Error()))
			return false
		}
	}
	if f.vectors != "" {
		if st, err := os.Stat(f.vectors); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "kasim conform: --vectors %s: want a directory of scenario files (testdata/conformance)\n", clipValue(f.vectors))
			return false
		}
		f.vectorProfile = vectorProfile(f)
	}
	return true
}

// vectorProfile is the profile of the stack under test, which picks the
// vectors --vectors runs: a shipped driver's name (linux, gvisor, lwip),
// linux for this machine's kernel, and --profile for a program of the
// user's (a driver, or --stack), which kasim knows nothing else of.
func vectorProfile(f *conformFlags) string {
	switch {
	case f.dut == conform.DUTLinux || f.dut == conform.DUTGVisor || f.dut == conform.DUTLwIP:
		return f.dut
	case f.dut == "" && f.stackCmd == "":
		return "linux"
	}
	return f.opts.Profile
}

// conformVectors picks out of dir's scenario files (*.yaml) the vectors for
// a stack of the given profile (conform.IsVectorFor), and says in one line
// how many there are and how many were left out; a status other than
// exitOK if one cannot be read or parsed (said on stderr).
func conformVectors(dir, prof string, stderr io.Writer) ([]conformScenario, string, int) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		fmt.Fprintf(stderr, "kasim conform: --vectors %s: no scenario files (*.yaml) in it\n", clipValue(dir))
		return nil, "", exitUsage
	}
	var list []conformScenario
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "kasim conform: %v\n", err)
			return nil, "", exitUsage
		}
		ok, err := conform.IsVectorFor(file, data, prof)
		if err != nil {
			fmt.Fprintf(stderr, "kasim conform: %v\n", err)
			return nil, "", exitUsage
		}
		if ok {
			list = append(list, conformScenario{name: file, data: data, vector: true})
		}
	}
	note := fmt.Sprintf("%s: %d of %d vector(s) have the %s profile on the stack under test (the client, or a server whose client runs gvisor); %d left out",
		dir, len(list), len(files), prof, len(files)-len(list))
	return list, note, exitOK
}

// conformScenarios reads the scenario files, or the built-in scenarios
// without any; a status other than exitOK if one cannot be read (said on
// stderr).
func conformScenarios(files []string, stderr io.Writer) ([]conformScenario, int) {
	var list []conformScenario
	if len(files) == 0 {
		entries, _ := fs.ReadDir(conform.Scenarios, "scenarios")
		for _, e := range entries {
			data, err := fs.ReadFile(conform.Scenarios, "scenarios/"+e.Name())
			if err != nil {
				fmt.Fprintf(stderr, "kasim conform: %v\n", err)
				return nil, exitFail
			}
			list = append(list, conformScenario{name: "built-in " + e.Name(), data: data, builtin: true})
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "kasim conform: %v\n", err)
			return nil, exitUsage
		}
		list = append(list, conformScenario{name: f, data: data})
	}
	return list, exitOK
}

// runConform compares each scenario live and simulated, writes its report
// and the tally, and returns the exit status.
//
// stdout gets the comparison, traces each scenario's first live trace
// (JSONL).
//
// note, if set, is said after the stack under test: which vectors were
// picked.
func runConform(list []conformScenario, note string, opts conform.Options, pcapDir string, stdout, stderr, traces io.Writer) int {
	if opts.DUT != nil {
		if err := opts.DUT.Greet(); err != nil {
			fmt.Fprintf(stderr, "kasim conform: --dut %s: %v\n", opts.DUT.Name, err)
			if errors.Is(err, live.ErrNotRoot) {
				fmt.Fprintln(stderr, "kasim conform: run it as root (sudo kasim conform): it creates a network namespace and a TAP device, and removes them when done")
			}
			return exitFail
		}
		h := opts.DUT.Hello
		fmt.Fprintf(stdout, "stack under test: %s %s (driver %s, pid %d), options %s\n\n", h.Stack, h.Version, opts.DUT.Name, h.PID, strings.Join(h.Options, ", "))
	}
	if note != "" {
		fmt.Fprintf(stdout, "%s\n\n", note)
	}
	agree, skipped := 0, 0
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
		if err != nil && (sc.vector || sc.builtin && len(opts.Stack) > 0) && errors.Is(err, conform.ErrNotLive) {
			fmt.Fprintf(stdout, "%s\n\n", skippedLine(sc, err.Error()))
			skipped++
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "kasim conform: %v\n", err)
			if errors.Is(err, live.ErrNotRoot) {
				fmt.Fprintln(stderr, "kasim conform: run it as root (sudo kasim conform): it creates network namespaces and a veth pair, and removes them when done")
			}
			var se *sim.ScenarioError
			if errors.As(err, &se) || errors.Is(err, conform.ErrNotLive) || errors.Is(err, conform.ErrScale) {
				return exitUsage
			}
			return exitFail
		}
		if rep.Skipped != "" {
			fmt.Fprintf(stdout, "%s\n\n", skippedLine(sc, rep.Skipped))
			skipped++
			continue
		}
		if err := sim.WriteJSONL(traces, rep.LiveTrace()); err != nil {
			fmt.Fprintf(stderr, "kasim conform: writing the live trace: %v\n", err)
			return exitFail
		}
		writeReport(stdout, rep)
		if rep.Agree() {
			agree++
		}
	}
	ran := len(list) - skipped
	fmt.Fprintf(stdout, "%d of %d scenario(s) agree with the %s profile", agree, ran, opts.Profile)
	if skipped > 0 {
		fmt.Fprintf(stdout, " (%d skipped)", skipped)
	}
	fmt.Fprintln(stdout)
	if agree != ran || ran == 0 {
		return exitFail
	}
	return exitOK
}

// skippedLine says that a scenario was skipped, and why; a vector's reason
// names its file already (at the place in it), and is not prefixed again.
func skippedLine(sc conformScenario, why string) string {
	if sc.vector && strings.HasPrefix(why, sc.name+":") {
		return "SKIPPED  " + why
	}
	return "SKIPPED  " + sc.name + ": " + why
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
	side, column, who := "kernel", "KERNEL", "kernel"
	if r.Stack != "" {
		side = filepath.Base(r.Stack) + " on the kernel"
	}
	if r.DUT != "" {
		side, column, who = r.DUT, "DUT", "stack under test"
	}
	fmt.Fprintf(w, "%s  %s: %s (live, %d %s) vs %s (simulated)\n", verdict, r.Scenario, side, r.Runs, runs, r.Profile)
	if r.Scale != "" {
		fmt.Fprintf(w, "  (every time in the scenario scaled by %s)\n", r.Scale)
	}
	if r.SimExtended > 0 {
		fmt.Fprintf(w, "  (the %s gave up in every run; the simulation ran %v past the scenario's end to let %s finish too)\n", who, r.SimExtended, r.Profile)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  EVENT\tAFTER\t"+column+"\tAT (MEDIAN)\tSPREAD\t"+strings.ToUpper(r.Profile)+"\tAT\t")
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
	if !r.Agree() && r.AgreeInShape() {
		fmt.Fprintf(w, "  (only times differ: on a busy machine the stack under test's timers can fire milliseconds late; if more --runs than %d agree, it was the machine)\n", r.Runs)
	}
	fmt.Fprintln(w)
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
