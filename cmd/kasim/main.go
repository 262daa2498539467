// Command kasim simulates TCP keep-alive on real gVisor TCP stacks under
// virtual time.
//
// Usage:
//
//	kasim                 run the built-in scenario, print the annotated timeline
//	kasim run [flags]     run the built-in scenario with settings (kasim run --help)
//	kasim run FILE.yaml   run a scenario file (hosts, profiles, actions, expectations)
//	kasim check FILE|DIR  run scenario files and check their expectations
//	kasim compare --profiles A,B FILE.yaml
//	                      run a scenario once per profile and compare the probes side by side
//	kasim conform [FILE.yaml...]
//	                      run scenarios against this machine's kernel (as root, in namespaces
//	                      kasim makes) and in simulation, and report where they agree
//	kasim profiles        list the profiles (--profile NAME)
//	kasim profile NAME    show one profile, value by value, with where each comes from
//	kasim bench [flags]   benchmark timer queues side by side (kasim bench --help)
//	kasim version         print kasim's version
//
// These lines are kasim --help's; the commands table below makes both.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"kasim/internal/dut"
	"kasim/internal/echo"
	"kasim/internal/live"
	"kasim/profile"
	"kasim/sim"
	"kasim/stack"
	"kasim/timers"
)

func main() {
	// The live lab re-executes kasim as its peer helper, inside a network
	// namespace; in that copy this runs the helper and never returns.
	live.MaybeRunPeer()
	// And kasim conform --dut gvisor re-executes it as that driver.
	dut.MaybeRunBuiltin()
	setMemoryLimit()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// A command is one of kasim's commands, as a base.Command is one of the go
// command's: the table of them drives dispatch, the usage text (kasim
// --help) and the unknown-command message alike.
type command struct {
	name string
	// forms are the command's lines in the usage text: a synopsis
	// ("kasim run [flags]") and a one-line summary each.
	forms []form
	run   func(args []string, stdout, stderr io.Writer) int
}

// form is one way to call a command, as the usage text shows it. A
// summary of several lines has its line breaks in it.
type form struct{ synopsis, summary string }

// commands are kasim's commands, in the order the usage text lists them.
// kasim with no arguments, or with flags first, is kasim run.
var commands = []command{
	{"run", []form{
		{"kasim", "run the built-in scenario, print the annotated timeline"},
		{"kasim run [flags]", "run the built-in scenario with settings (kasim run --help)"},
		{"kasim run FILE.yaml", "run a scenario file (hosts, profiles, actions, expectations)"},
	}, runCmd},
	{"check", []form{{"kasim check FILE|DIR", "run scenario files and check their expectations"}}, checkCmd},
	{"compare", []form{{"kasim compare --profiles A,B FILE.yaml", "run a scenario once per profile and compare the probes side by side"}}, compareCmd},
	{"conform", []form{{"kasim conform [FILE.yaml...]", "run scenarios against this machine's kernel (as root, in namespaces\nkasim makes) and in simulation, and report where they agree"}}, conformCmd},
	{"profiles", []form{{"kasim profiles", "list the profiles (--profile NAME)"}}, profilesCmd},
	{"profile", []form{{"kasim profile NAME", "show one profile, value by value, with where each comes from"}}, profileCmd},
	{"bench", []form{{"kasim bench [flags]", "benchmark timer queues side by side (kasim bench --help)"}}, benchCmd},
	{"version", []form{{"kasim version", "print kasim's version"}}, versionCmd},
}

const usageIntro = `kasim simulates TCP keep-alive on real TCP stacks (gVisor's netstack) under
virtual time: two hours of idle time take microseconds, and every run with the
same settings and seed gives the same trace, byte for byte.

Usage:
`

// usageLines returns the commands' lines of the usage text: each synopsis,
// its summary in a column (on the next line when the synopsis is too long
// to leave room), summaries of several lines aligned in that column.
func usageLines() []string {
	const column = 22
	var lines []string
	for _, c := range commands {
		for _, f := range c.forms {
			summary := strings.Split(f.summary, "\n")
			if len(f.synopsis) <= column-2 {
				lines = append(lines, f.synopsis+strings.Repeat(" ", column-len(f.synopsis))+summary[0])
				summary = summary[1:]
			} else {
				lines = append(lines, f.synopsis)
			}
			for _, l := range summary {
				lines = append(lines, strings.Repeat(" ", column)+l)
			}
		}
	}
	return lines
}

// usage returns kasim --help's text.
func usage() string {
	var b strings.Builder
	b.WriteString(usageIntro)
	for _, l := range usageLines() {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the run itself failed (an output file could not be written)
	exitUsage = 2 // bad command, flag or value
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return runCmd(nil, stdout, stderr)
	}
	if c := lookupCommand(args[0]); c != nil {
		return c.run(args[1:], stdout, stderr)
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			if c := lookupCommand(args[1]); c != nil {
				// kasim help NAME is kasim NAME --help.
				return c.run([]string{"--help"}, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage())
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		// Flags without a command belong to run: "kasim --idle 5m".
		return runCmd(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "kasim: %s\n", unknownCommand(args[0]))
	return exitUsage
}

// lookupCommand returns the command named name, or nil.
func lookupCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// unknownCommand says that name is no command, lists the commands and,
// if one is close to name (a typo), suggests it.
func unknownCommand(name string) string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	want := echo.OrList(names)
	if s := closestCommand(name); s != "" {
		return fmt.Sprintf("unknown command %q (did you mean %s? want %s; see kasim --help)", clipValue(name), s, want)
	}
	return fmt.Sprintf("unknown command %q (want %s; see kasim --help)", clipValue(name), want)
}

// closestCommand returns the command name a typo most likely meant: the
// only one name starts, or the nearest within two edits (a swap of
// neighbours counts as one) that leave something of name; or "".
func closestCommand(name string) string {
	var prefixed []string
	best, bestDist := "", 3
	for _, c := range commands {
		if len(name) >= 2 && strings.HasPrefix(c.name, name) {
			prefixed = append(prefixed, c.name)
		}
		if d := echo.Distance(name, c.name); d < bestDist && d < len(name) {
			best, bestDist = c.name, d
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}

// noArgs answers a command that takes no arguments: its help, or an
// unexpected argument; done says whether it has answered.
func noArgs(name, help string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	if len(args) == 0 {
		return exitOK, false
	}
	if isHelp(args[0]) {
		fmt.Fprintln(stdout, help)
		return exitOK, true
	}
	fmt.Fprintf(stderr, "kasim %s: unexpected argument %q\n", name, clipValue(args[0]))
	return exitUsage, true
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	if code, done := noArgs("version", "Usage: kasim version\n\nPrints kasim's version.", args, stdout, stderr); done {
		return code
	}
	fmt.Fprintln(stdout, "kasim", version())
	return exitOK
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// durationFlag is a time.Duration flag with an error that says what is
// expected.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return "0s" // the zero value flag.PrintDefaults compares against
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 2h, 90s or 1500ms")
	}
	*f.d = d
	return nil
}

type choiceFlag struct {
	v       *string
	choices []string
}

func (f choiceFlag) String() string {
	if f.v == nil {
		return ""
	}
	return *f.v
}

func (f choiceFlag) Set(s string) error {
	for _, c := range f.choices {
		if s == c {
			*f.v = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(f.choices, ", "))
}

// listFlag collects a repeatable flag's values in order.
type listFlag struct{ v *[]string }

func (f listFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strings.Join(*f.v, " ")
}

func (f listFlag) Set(s string) error {
	if !strings.Contains(s, "=") {
		return errors.New("want NAME=VALUE")
	}
	*f.v = append(*f.v, s)
	return nil
}

// profileFlags are the flags that choose and adjust a profile.
type profileFlags struct {
	command  string // "kasim run", for messages of several lines
	name     string
	registry []string
	set      []string
}

func (p *profileFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.name, "profile", "gvisor", "the client's `profile`: linux, gvisor (gVisor's own behaviour), freebsd, lwip (modelled from source) or a Windows version (kasim profiles lists them)")
	fs.Var(listFlag{&p.registry}, "registry", "a Windows registry value, `NAME=VALUE` (repeatable): KeepAliveTime, KeepAliveInterval, TcpMaxDataRetransmissions, PPTPTcpMaxDataRetransmissions")
	fs.Var(listFlag{&p.set}, "set", "override a profile behaviour, `KEY=VALUE` (repeatable): Windows abort=rst|none, probe-bytes=0|1; linux and gvisor hz=0|100|250|300|1000, abort=rst|none, user-timeout=replaces-count|first-of-both; freebsd always-keepalive=0|1, abort=rst|none; lwip tick=0|DURATION, abort=rst|none")
}

// resolve looks the flags' profile up, with its registry values and
// settings; the error names the flag at fault.
func (p *profileFlags) resolve() (profile.Profile, error) {
	prof, err := profile.Lookup(p.name, p.registry, p.set)
	var le *profile.LookupError
	switch {
	case err == nil:
		return prof, nil
	case errors.Is(err, profile.ErrNoRegistry):
		return prof, fmt.Errorf("--registry needs a Windows --profile; %s has none (kasim profiles lists them)", clipValue(p.name))
	case errors.As(err, &le) && le.Part != "profile":
		// Every bad value, each on its line: kasim run: --registry: ...
		var lines []string
		for _, e := range le.Errors() {
			lines = append(lines, fmt.Sprintf("--%s: %v", le.Part, e))
		}
		return prof, errors.New(strings.Join(lines, "\n"+p.command+": "))
	}
	return prof, fmt.Errorf("--profile %s: %v", clipValue(p.name), err)
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !isFlag(args[0]) {
		return runScenarioCmd(args[0], args[1:], stdout, stderr)
	}
	rf, b, code, done := readRunFlags(args, stdout, stderr)
	if done {
		return code
	}
	defer simulateOnOneProcessor(b.Conns)()
	pcap, err := openPcap(rf.pcapPath)
	if err != nil {
		fmt.Fprintf(stderr, "kasim run: --pcap: %v\n", err)
		return exitFail
	}
	record, code, ok := openTimerRecord(rf.recordPath, b.Timers, stderr)
	if !ok {
		return code
	}
	if record != nil {
		defer record.Close() // closed by the run; this covers a failed one
		b.RecordTimers = record
	}
	if rf.format == "text" {
		fmt.Fprintf(stdout, "kasim %s - built-in scenario, seed %d (virtual time, HH:MM:SS.mmm since the start)\n\n", version(), b.Seed)
	}
	out := newRunOutput(rf.format, rf.svgPath, b.Profiles(), sim.ClientHosts(b.Conns), b.Conns, stdout, stderr)
	b.Events = out.event
	// A summary reads no segment event: they are counted, not made.
	b.CountSegments = rf.format == "summary" && out.svg == nil
	out.progress.segmentsAside = b.CountSegments
	out.start = time.Now()
	res, err := sim.RunBuiltin(b, pcap.observers()...)
	out.wall = time.Since(out.start)
	if err == nil {
		err = out.close()
	}
	if err != nil {
		pcap.close()
		fmt.Fprintf(stderr, "kasim run: %v\n", err)
		return exitFail
	}
	if err := pcap.close(); err != nil {
		fmt.Fprintf(stderr, "kasim run: --pcap %s: %v\n", rf.pcapPath, err)
		return exitFail
	}
	return rf.write(b, res, out, stdout, stderr)
}

// readRunFlags reads kasim run's flags into the built-in scenario they ask
// for, checked; done says the command is over (help, or a usage error),
// with its exit status.
func readRunFlags(args []string, stdout, stderr io.Writer) (rf *runFlags, b sim.Builtin, code int, done bool) {
	rf = &runFlags{b: sim.DefaultBuiltin(), format: "text", peer: "dead", prof: profileFlags{command: "kasim run"}}
	fs := rf.flagSet()
	const runHelp = "Usage: kasim run [flags]\n\nRuns the built-in scenario: a client connects to a server, a little data goes\neach way, keep-alive is on at the client, and the server falls silent 10s after\nits reply; the run goes on until the client gives up.\n\nkasim run FILE.yaml [--format jsonl] [--pcap F] [--svg F] [--timers Q]\n[--record-timers F] runs a scenario file instead (kasim run FILE.yaml --help)."
	if code, done := parseFlags(fs, args, runHelp, " (a scenario file comes first: kasim run FILE.yaml [flags])", stdout, stderr); done {
		return rf, b, code, true
	}
	b, code = rf.builtin(fs, stderr)
	return rf, b, code, code != exitOK
}

// runFlags are kasim run's flags for the built-in scenario.
type runFlags struct {
	b                             sim.Builtin
	format, peer                  string
	pcapPath, svgPath, recordPath string
	prof                          profileFlags
}

func (rf *runFlags) flagSet() *flag.FlagSet {
	b := &rf.b
	fs := flag.NewFlagSet("kasim run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rf.prof.register(fs)
	fs.Var(durationFlag{&b.Idle}, "idle", "keep-alive idle `time`: no segment received for this long sends the first probe")
	fs.Var(durationFlag{&b.Interval}, "interval", "`time` between unanswered keep-alive probes")
	fs.IntVar(&b.Count, "count", b.Count, "unanswered probes before the connection is aborted (1-255, as the profile's TCP_KEEPCNT takes it: 1-127 on linux and gvisor)")
	fs.Uint64Var(&b.Seed, "seed", b.Seed, "seed for ISNs, ports, loss and start times")
	fs.IntVar(&b.Conns, "conns", b.Conns, "client connections (1-1000000), started over the first second; past 40000, from several client hosts")
	fs.Var(durationFlag{&b.Latency}, "latency", "one-way `latency` between client and server")
	fs.Float64Var(&b.Loss, "loss", b.Loss, "`probability` of losing each packet, both directions (0 to <1)")
	fs.Var(choiceFlag{&rf.peer, []string{"dead", "alive"}}, "peer", "the server is `dead|alive`: dead falls silent after its reply, alive answers every probe")
	fs.Var(durationFlag{&b.SilenceAfter}, "silence-after", "with --peer dead, the server falls silent this `duration` after its last reply")
	fs.Var(durationFlag{&b.Duration}, "duration", "stop after this much virtual `time` (default: when every client gives up, or 3 idle periods and a minute with --peer alive)")
	fs.Var(choiceFlag{&rf.format, []string{"text", "jsonl", "summary"}}, "format", "output `text|jsonl|summary`: the annotated timeline, the trace, or only the summary (counts, detection times, events/s, peak memory) for large runs")
	fs.StringVar(&rf.pcapPath, "pcap", "", "also write every packet to this pcap `file` (virtual timestamps)")
	fs.StringVar(&rf.svgPath, "svg", "", "also write a sequence diagram of the run to this SVG `file`, to open in a browser")
	fs.Var(choiceFlag{&b.Timers, timers.Names()}, "timers", "timer `queue`: "+timersHelp())
	fs.StringVar(&rf.recordPath, "record-timers", "", "also write every timer-queue operation to this `file`, for kasim bench --replay (not with --timers linux)")
	return fs
}

// builtin returns the built-in scenario the flags ask for, checked; the
// exit status says whether to go on.
func (rf *runFlags) builtin(fs *flag.FlagSet, stderr io.Writer) (sim.Builtin, int) {
	b := rf.b
	b.PeerAlive = rf.peer == "alive"
	p, err := rf.prof.resolve()
	if err != nil {
		fmt.Fprintf(stderr, "kasim run: %s\n", err)
		return b, exitUsage
	}
	b.Profile = &p
	if p.API == profile.Winsock {
		// A Windows application gets the system's (registry) values from
		// SO_KEEPALIVE alone unless the run asks for per-connection ones.
		typed := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { typed[f.Name] = true })
		if !typed["idle"] {
			b.Idle = 0
		}
		if !typed["interval"] {
			b.Interval = 0
		}
		if !typed["count"] {
			b.Count = 0
		}
	}
	if err := b.Validate(); err != nil {
		fmt.Fprintf(stderr, "kasim run: --%s\n", err)
		return b, exitUsage
	}
	if why := checkRoomFor(b.Conns); why != "" {
		fmt.Fprintf(stderr, "kasim run: --%s\n", why)
		return b, exitUsage
	}
	return b, exitOK
}

// openTimerRecord checks --timers queue with --record-timers path (if
// set) and creates the file, and warns of a real-time queue; !ok means
// exit with code.
func openTimerRecord(path, queue string, stderr io.Writer) (f *os.File, code int, ok bool) {
	if err := sim.CheckTimers(queue, path != ""); err != nil {
		fmt.Fprintf(stderr, "kasim run: --record-timers: %v\n", err)
		return nil, exitUsage, false
	}
	if q, _ := timers.Lookup(queue); q.RealTime {
		fmt.Fprintf(stderr, "kasim run: --timers %s: the virtual clock waits for %s, so this run takes as long in real time as it spans in virtual time\n", queue, cmp.Or(q.Doc, "real-time timers"))
	}
	if path == "" {
		return nil, 0, true
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "kasim run: --record-timers: %v\n", err)
		return nil, exitFail, false
	}
	return f, 0, true
}

// write writes what comes after the streamed output: the timer trace's
// summary, the SVG, and after a timeline the run's summary.
func (rf *runFlags) write(b sim.Builtin, res *sim.Result, out *runOutput, stdout, stderr io.Writer) int {
	if rf.recordPath != "" {
		fmt.Fprintf(stderr, "kasim run: timer trace %s: %d fires, fire hash %x\n", rf.recordPath, res.TimerFires, res.TimerHash)
	}
	if out.svg != nil {
		if err := writeSVGFile(rf.svgPath, out.svg.Write); err != nil {
			fmt.Fprintf(stderr, "kasim run: --svg: %v\n", err)
			return exitFail
		}
	}
	if rf.format == "summary" {
		if err := writeRunSummary(stdout, b, res, out); err != nil {
			fmt.Fprintf(stderr, "kasim run: writing output: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	if rf.format != "jsonl" {
		if err := writeSummary(stdout, res); err != nil {
			fmt.Fprintf(stderr, "kasim run: writing output: %v\n", err)
			return exitFail
		}
	}
	return exitOK
}

// timersHelp describes the registered timer queues for --timers, in
// groups: the exact ones, which give the same trace; those that hold one
// host's stack timers each; the others; and, for comparison, the
// nondeterministic ones.
func timersHelp() string {
	var exact, perHost, other, nondet []string
	for _, q := range timers.Specs() {
		d := q.Name
		switch {
		case q.PerHost:
			d += " (each host's stack timers in one of its own"
			if q.Doc != "" {
				d += ", " + q.Doc
			}
			d += "; link delays stay exact)"
		case q.RealTime:
			d += " (" + cmp.Or(q.Doc, "real-time timers") + ": the run takes real time)"
		case q.Doc != "":
			d += " (" + q.Doc + ")"
		}
		switch {
		case q.Exact && !q.PerHost:
			exact = append(exact, d)
		case q.PerHost:
			perHost = append(perHost, d)
		case q.Nondeterministic:
			nondet = append(nondet, d)
		default:
			other = append(other, d)
		}
	}
	var groups []string
	if len(exact) > 0 {
		groups = append(groups, echo.OrList(exact)+", which give the same trace")
	}
	if len(perHost) > 0 {
		groups = append(groups, echo.OrList(perHost))
	}
	if len(other) > 0 {
		groups = append(groups, echo.OrList(other)+" (not exact)")
	}
	if len(nondet) > 0 {
		groups = append(groups, "or, for comparison and not deterministic, "+echo.OrList(nondet))
	}
	return strings.Join(groups, "; ")
}

// parseFlags parses a command's flags. done says the command should return
// code at once: after printing help, or a one-line usage error (also for a
// stray argument, with extra appended to its message).
func parseFlags(fs *flag.FlagSet, args []string, help, extra string, stdout, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "%s\n\nFlags:\n", help)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK, true
		}
		fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), flagError(err))
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q%s\n", fs.Name(), clipValue(fs.Arg(0)), extra)
		return exitUsage, true
	}
	return 0, false
}

// flagError rewrites the flag package's errors into one line that names
// the flag the way the user typed it.
func flagError(err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return "unknown flag " + clipValue(rest) + " (see kasim run --help)"
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "x" for flag -idle: reason
		if val, tail, ok := strings.Cut(rest, " for flag -"); ok {
			name, reason, _ := strings.Cut(tail, ": ")
			uq, _ := strconv.Unquote(val)
			switch {
			case reason == "parse error" && strings.HasPrefix(uq, "-"):
				if _, err := strconv.ParseInt(uq, 0, 64); err == nil {
					reason = "a negative number: want 0 or more"
				} else {
					reason = "not a number"
				}
			case reason == "parse error":
				reason = "not a number"
			case reason == "value out of range":
				reason = "number out of range"
			}
			return fmt.Sprintf("--%s %s: %s", name, clipValue(val), reason)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "--" + clipValue(rest) + " needs a value"
	}
	if rest, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return "bad flag syntax: " + clipValue(rest)
	}
	// Any other message of the flag package that echoes an argument.
	return clipValue(msg)
}

// clipValue cuts a value echoed in a message to a readable length, saying
// how long it was: a 500 KB argument gets one line, not 500 KB of it.
func clipValue(s string) string { return echo.Clip(s, 120, 60) }

func writeSummary(w io.Writer, res *sim.Result) error {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Summary")
	if res.SilencedAt >= 0 {
		fmt.Fprintf(w, "  the server fell silent at %s\n", sim.FormatTime(res.SilencedAt))
	}
	aborts := tallyOf(res).aborts
	gaveUp := len(aborts)
	var first, last time.Duration = -1, -1
	if gaveUp > 0 {
		first, last = slices.Min(aborts), slices.Max(aborts)
	}
	if len(res.Clients) == 1 {
		o := res.Clients[0]
		fmt.Fprintf(w, "  client sock%d: %d keep-alive probe(s), %d answered\n", o.Conn, o.ProbeCount, o.Answered)
		if o.AbortAt >= 0 {
			idle, interval := res.Idle, res.Interval
			fmt.Fprintf(w, "  keep-alive gave up at %s = last segment received %s + idle %v + %d x interval %v\n",
				sim.FormatTime(o.AbortAt), sim.FormatTime(o.LastRecv), idle, o.ProbeCount, interval)
		}
		if o.Error != "" {
			fmt.Fprintf(w, "  the pending recv() failed at %s with %s\n", sim.FormatTime(o.ErrorAt), o.Error)
		}
		if o.LaterError != "" {
			fmt.Fprintf(w, "  the next call failed with %s\n", o.LaterError)
		}
		if o.AbortAt < 0 {
			fmt.Fprintf(w, "  the connection is %s at the end of the run (%s)\n", o.Final, sim.FormatTime(res.End))
		}
	} else {
		fmt.Fprintf(w, "  %d client connections; keep-alive gave up on %d", len(res.Clients), gaveUp)
		if gaveUp > 0 {
			fmt.Fprintf(w, ", from %s to %s", sim.FormatTime(first), sim.FormatTime(last))
		}
		fmt.Fprintln(w)
	}
	if res.SilencedAt >= 0 && first >= 0 {
		fmt.Fprintf(w, "  the dead peer was noticed %v after it fell silent\n", (first - res.SilencedAt).Round(time.Millisecond))
	}
	fmt.Fprintf(w, "  (--format jsonl prints the trace; --pcap FILE writes a capture; kasim run --help lists the settings)\n")
	return nil
}

// writeSVGFile creates path and has write fill it.
func writeSVGFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(write(f), f.Close())
}

// pcapOut is the capture a run writes with --pcap; nil when there is none.
type pcapOut struct {
	file   *os.File
	writer *sim.PcapWriter
}

// openPcap creates the capture file at path, or returns nil for no path.
func openPcap(path string) (*pcapOut, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w, err := sim.NewPcapWriter(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pcapOut{f, w}, nil
}

// observers returns the capture's writer as the run's extra observers.
func (p *pcapOut) observers() []stack.Observer {
	if p == nil {
		return nil
	}
	return []stack.Observer{p.writer}
}

// close finishes the capture and reports the first error writing it.
func (p *pcapOut) close() error {
	if p == nil {
		return nil
	}
	cerr := p.file.Close()
	return errors.Join(p.writer.Err(), cerr)
}
