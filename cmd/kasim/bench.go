package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"kasim/bench"
	"kasim/internal/echo"
	"kasim/timers"
)

const benchHelp = `Usage: kasim bench [flags]

Measures timer queues side by side in one process: the micro benchmarks
(one operation on a queue holding N timers) and the workloads (seeded
operation streams; every exact queue must fire the same sequence), and
prints ns/op with ratios against Go runtime timers and the 4-ary heap.
Progress goes to standard error. "go test ./bench -bench Micro" runs the
same micro benchmarks in benchstat's format.`

// benchQueuesHelp lists the registered queues for benchHelp: the suite's
// (timers.Queue implementations), and the reference queues measured
// through their own APIs.
func benchQueuesHelp() string {
	var suite []string
	for _, q := range bench.Queues() {
		d := q.Name
		if !q.Exact {
			spec, _ := timers.Lookup(q.Name)
			d += " (" + cmp.Or(spec.Doc, "not exact") + ")"
		}
		suite = append(suite, d)
	}
	return "Queues: " + strings.Join(suite, ", ") + ", and for the micro benchmarks that have them " +
		bench.Runtime + " (Go's time.AfterFunc) and " + bench.Faketime + " (gVisor's ManualClock), through their own APIs."
}

const (
	maxBenchN     = 10_000_000
	maxBenchCount = 100
)

// benchFlags are kasim bench's flags as given.
type benchFlags struct {
	queues, micros, workloads, sizes string
	format, svgPath, replayPath      string
	s                                bench.Settings
	count                            int
}

// benchPlan is what kasim bench measures: its flags checked and read.
type benchPlan struct {
	qs    []string
	ms    []bench.Micro
	ws    []bench.Workload
	ns    []int
	trace *bench.CheckedTrace
	file  *os.File // the trace's, open until the replays are done
	s     bench.Settings
	count int
}

// benchJob is one run of one result; the runs of a result share its slot.
type benchJob struct {
	label string
	slot  int
	run   func() (bench.Result, bool, error)
}

func benchCmd(args []string, stdout, stderr io.Writer) int {
	var f benchFlags
	fs := benchFlagSet(&f)
	if code, done := parseFlags(fs, args, benchHelp+"\n\n"+wrap(benchQueuesHelp(), 72), "", stdout, stderr); done {
		return code
	}
	p, err := checkBenchFlags(f)
	if err != nil {
		fmt.Fprintf(stderr, "kasim bench: %v\n", err)
		return exitUsage
	}
	if p.file != nil {
		defer p.file.Close()
	}
	for _, w := range p.ws {
		for _, n := range p.ns {
			if w.MaxN > 0 && n > w.MaxN {
				fmt.Fprintf(stderr, "kasim bench: %s runs at most n=%d; n=%d left out\n", w.Name, w.MaxN, n)
			}
		}
	}
	jobs, slots := benchJobs(p)
	results, ok := runBenchJobs(jobs, slots, stderr)
	if !ok {
		return exitFail
	}
	return writeBenchResults(results, f.format, f.svgPath, stdout, stderr)
}

// benchFlagSet defines kasim bench's flags, with their defaults, into f.
func benchFlagSet(f *benchFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("kasim bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.queues, "queues", strings.Join(timers.Names(), ","), "comma-separated `queues` to measure")
	fs.StringVar(&f.micros, "micro", "all", "comma-separated micro `benchmarks` ("+names(bench.Micros, func(m bench.Micro) string { return m.Name })+"), all or none")
	fs.StringVar(&f.workloads, "workloads", "all", "comma-separated `workloads` ("+names(bench.Workloads, func(w bench.Workload) string { return w.Name })+"), all or none")
	fs.StringVar(&f.sizes, "n", "1000,1000000", "comma-separated numbers of live `timers` (1 to 1e7; 1e6 and 1_000_000 work)")
	fs.IntVar(&f.s.Ops, "ops", 1_000_000, "operations measured per result")
	fs.IntVar(&f.count, "count", 1, "measure each result this many `times`, the queues taking turns, and report the median, its range and a p-value against heap4 (4 or more for a verdict)")
	fs.Uint64Var(&f.s.Seed, "seed", 1, "seed of the workloads")
	fs.StringVar(&f.format, "format", "text", "output `text|csv|json`")
	fs.StringVar(&f.svgPath, "svg", "", "also plot ns/op against N into this SVG `file`")
	fs.StringVar(&f.replayPath, "replay", "", "also replay this timer trace `file` (from kasim run --record-timers) on every queue")
	return fs
}

// checkBenchFlags reads what the flags ask to measure, or says which flag
// is wrong (a usage error), reading and checking the --replay trace too:
// the plan keeps its file open for the replays, which read it again.
func checkBenchFlags(f benchFlags) (benchPlan, error) {
	p := benchPlan{s: f.s, count: f.count}
	if f.format != "text" && f.format != "csv" && f.format != "json" {
		return p, fmt.Errorf("--format %q: want text, csv or json", clipValue(f.format))
	}
	if f.s.Ops < 1 {
		return p, fmt.Errorf("--ops %d: want at least 1", f.s.Ops)
	}
	if f.count < 1 || f.count > maxBenchCount {
		return p, fmt.Errorf("--count %d: want 1 to %d", f.count, maxBenchCount)
	}
	p.qs = splitList(f.queues)
	for _, q := range p.qs {
		if _, ok := timers.Lookup(q); !ok {
			return p, fmt.Errorf("--queues: unknown queue %q (want %s)", clipValue(q), echo.OrList(timers.Names()))
		}
	}
	if len(p.qs) == 0 {
		return p, fmt.Errorf("--queues: name at least one queue")
	}
	var unknown string
	p.ms, unknown = choose(f.micros, bench.Micros, func(m bench.Micro) string { return m.Name })
	if unknown != "" {
		return p, fmt.Errorf("--micro: unknown micro benchmark %q", clipValue(unknown))
	}
	p.ws, unknown = choose(f.workloads, bench.Workloads, func(w bench.Workload) string { return w.Name })
	if unknown != "" {
		return p, fmt.Errorf("--workloads: unknown workload %q", clipValue(unknown))
	}
	for _, s := range splitList(f.sizes) {
		n, err := parseCount(s)
		if err != nil || n < 1 || n > maxBenchN {
			return p, fmt.Errorf("--n %q: want a number of timers from 1 to 1e7", clipValue(s))
		}
		p.ns = append(p.ns, n)
	}
	if len(p.ns) == 0 {
		return p, fmt.Errorf("--n: give at least one size")
	}
	if f.replayPath != "" {
		r, err := os.Open(f.replayPath)
		if err != nil {
			return p, fmt.Errorf("--replay: %v", err)
		}
		if p.trace, err = bench.CheckTrace(r); err != nil {
			r.Close()
			return p, fmt.Errorf("--replay %s: %v", f.replayPath, err)
		}
		p.file = r
	}
	return p, nil
}

// benchJobs lists the runs that measure the plan, and how many results
// (slots) they make.
func benchJobs(p benchPlan) (jobs []benchJob, slots int) {
	// Each result is measured count times; its runs are jobs of one slot.
	// Within a round the queues of a workload and size take turns, in an
	// order rotated each round, so that none is always measured first.
	measure := func(label string, qs []string, run func(q string) (bench.Result, bool, error)) {
		for round := range p.count {
			for k := range qs {
				i := (k + round) % len(qs)
				q := qs[i]
				l := label + " " + q
				if p.count > 1 {
					l += fmt.Sprintf(" (run %d of %d)", round+1, p.count)
				}
				jobs = append(jobs, benchJob{l, slots + i, func() (bench.Result, bool, error) { return run(q) }})
			}
		}
		slots += len(qs)
	}
	// The queues that run on virtual-time streams: runtime and faketime run
	// in real time, or not at all, on workloads and replays.
	virtual := p.qs[:0:0]
	for _, q := range p.qs {
		if _, ok := bench.LookupQueue(q); ok {
			virtual = append(virtual, q)
		}
	}
	for _, m := range p.ms {
		for _, n := range p.ns {
			measure(fmt.Sprintf("%s n=%d", m.Name, n), p.qs, func(q string) (bench.Result, bool, error) {
				return bench.RunMicro(m, q, n, p.s)
			})
		}
	}
	for _, w := range p.ws {
		for _, n := range p.ns {
			if w.MaxN > 0 && n > w.MaxN {
				continue // benchCmd says so
			}
			measure(fmt.Sprintf("%s n=%d", w.Name, n), virtual, func(q string) (bench.Result, bool, error) {
				r, err := bench.RunWorkload(w, q, n, p.s)
				return r, true, err
			})
		}
	}
	if p.trace != nil {
		measure("replay", virtual, func(q string) (bench.Result, bool, error) {
			r, err := bench.RunReplay(p.trace, q, p.s)
			return r, true, err
		})
	}
	return jobs, slots
}

// runBenchJobs runs the jobs, showing progress on stderr, and returns each
// slot's median result; false if a run failed (said on stderr).
func runBenchJobs(jobs []benchJob, slots int, stderr io.Writer) ([]bench.Result, bool) {
	progress := newProgress(stderr, len(jobs))
	runs := make([][]bench.Result, slots)
	for _, j := range jobs {
		progress.start(j.label)
		r, ok, err := j.run()
		if err != nil {
			progress.done()
			fmt.Fprintf(stderr, "kasim bench: %s: %v\n", j.label, err)
			return nil, false
		}
		if ok {
			runs[j.slot] = append(runs[j.slot], r)
		}
	}
	progress.done()
	var results []bench.Result
	for _, rs := range runs {
		if len(rs) == 0 {
			continue // a queue that cannot run this benchmark
		}
		r, err := bench.Median(rs)
		if err != nil {
			fmt.Fprintf(stderr, "kasim bench: %v\n", err)
			return nil, false
		}
		results = append(results, r)
	}
	return results, true
}

// writeBenchResults writes the results to stdout in format, and plots
// them into svgPath if given; it returns the exit status.
func writeBenchResults(results []bench.Result, format, svgPath string, stdout, stderr io.Writer) int {
	var err error
	switch format {
	case "csv":
		err = bench.WriteCSV(stdout, results)
	case "json":
		err = bench.WriteJSON(stdout, results)
	default:
		err = bench.WriteText(stdout, results)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kasim bench: writing output: %v\n", err)
		return exitFail
	}
	if svgPath != "" {
		f, err := os.Create(svgPath)
		if err == nil {
			err = bench.WriteSVG(f, results)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "kasim bench: --svg: %v\n", err)
			return exitFail
		}
	}
	return exitOK
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// wrap breaks s into lines of at most width bytes, at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// names lists the items' names, comma-separated, for a flag's help.
func names[T any](items []T, name func(T) string) string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	return strings.Join(out, ", ")
}

// choose returns the items a comma-separated list names, in its order
// ("all": every item, "none": none), or the first name no item has.
func choose[T any](list string, items []T, name func(T) string) (chosen []T, unknown string) {
	switch strings.TrimSpace(list) {
	case "all":
		return items, ""
	case "none", "":
		return nil, ""
	}
	for _, want := range splitList(list) {
		i := slices.IndexFunc(items, func(it T) bool { return name(it) == want })
		if i < 0 {
			return nil, want
		}
		chosen = append(chosen, items[i])
	}
	return chosen, ""
}

// parseCount reads 1000, 1_000_000 or 1e6.
func parseCount(s string) (int, error) {
	if n, err := strconv.ParseInt(s, 0, 64); err == nil {
		return int(n), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, fmt.Errorf("not a whole number: %q", clipValue(s))
	}
	return int(f), nil
}

// progress reports which measurement runs: a bar redrawn in place on a
// terminal, one plain line per measurement otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	n     int
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, tty: isTerminal(w)}
}

func (p *progress) start(label string) {
	p.n++
	if !p.tty {
		fmt.Fprintf(p.w, "kasim bench: [%d/%d] %s\n", p.n, p.total, label)
		return
	}
	const width = 30
	filled := width * (p.n - 1) / max(p.total, 1)
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.n, p.total, label)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
