package bench

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Result is one queue measured on one workload at one size: the record of
// kasim's timer-queue benchmark suite. WriteText, WriteCSV, WriteJSON and
// WriteSVG render a slice of them.
type Result struct {
	// Queue is "wheel", "heap4", "heap2", "linux", "runtime", "faketime",
	// or a user's name.
	Queue string `json:"queue"`
	// Workload is "schedule", "cancel", "schedule-cancel", "reset-later",
	// "reset-earlier", "reset-same-slot", "advance-idle", "fire", "uniform", "keepalive",
	// "stack", "herd", "loguniform", "adversarial" or "replay".
	Workload string  `json:"workload"`
	N        int     `json:"n"`   // live timers
	Ops      int64   `json:"ops"` // operations measured
	NsPerOp  float64 `json:"ns_per_op"`
	// Runs is how many times the measurement was taken (kasim bench
	// --count). The result is then the run with the median ns/op, but for
	// NsPerOpMin and NsPerOpMax, the extremes over all runs. 0 means one
	// run whose extremes were not recorded.
	Runs       int     `json:"runs"`
	NsPerOpMin float64 `json:"ns_per_op_min"`
	NsPerOpMax float64 `json:"ns_per_op_max"`
	// NsPerOpRuns is every run's ns/op, in the order they were measured,
	// when there were several (PValue compares them); nil for one.
	NsPerOpRuns []float64 `json:"ns_per_op_runs,omitempty"`
	AllocsPerOp float64   `json:"allocs_per_op"`
	BytesPerOp  float64   `json:"bytes_per_op"`
	// BytesPerTimer is the live heap held by the queue per pending timer,
	// 0 if not measured.
	BytesPerTimer float64 `json:"bytes_per_timer"`
	// Per-operation latency percentiles, 0 if not measured.
	P50Ns  float64 `json:"p50_ns"`
	P99Ns  float64 `json:"p99_ns"`
	P999Ns float64 `json:"p999_ns"`
	// LatenessNs is the largest virtual-time lateness of a fire, 0 for
	// exact queues.
	LatenessNs int64 `json:"lateness_ns"`
	// GCShare is the fraction of CPU time spent in GC during the run, 0..1.
	GCShare float64 `json:"gc_share"`
	// PageFaultsPerOp is the process's page faults (first touches of
	// memory the kernel had not mapped for it) during the run, per
	// operation: where it is not near 0, the row measures fresh memory
	// as much as the queue (each fault costs microseconds in a virtual
	// machine). 0 where getrusage does not count them.
	PageFaultsPerOp float64 `json:"page_faults_per_op"`
	// FireHash is a hex hash of the fire sequence, "" when the workload
	// fires nothing.
	FireHash string `json:"fire_hash,omitempty"`
	Note     string `json:"note,omitempty"` // e.g. "real time", "not comparable"
}

// Median combines repeated measurements of one queue on one workload and
// size: it returns the run with the median ns/op (the lower of the middle
// two for an even count) with Runs, NsPerOpMin, NsPerOpMax and NsPerOpRuns
// (for more than one run) taken over all of them. On a shared machine a burst of noise during one short
// measurement would otherwise decide a ratio. It is an error if the runs
// are of different queues, workloads or sizes, or fired different
// sequences.
func Median(runs []Result) (Result, error) {
	if len(runs) == 0 {
		return Result{}, errors.New("bench: no runs to take the median of")
	}
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b Result) int { return cmp.Compare(a.NsPerOp, b.NsPerOp) })
	m := sorted[(len(sorted)-1)/2]
	m.Runs = len(runs)
	m.NsPerOpMin, m.NsPerOpMax = sorted[0].NsPerOp, sorted[len(sorted)-1].NsPerOp
	m.NsPerOpRuns = nil
	if len(runs) > 1 {
		m.NsPerOpRuns = make([]float64, len(runs))
		for i, r := range runs {
			m.NsPerOpRuns[i] = r.NsPerOp
		}
	}
	for _, r := range runs {
		if r.Queue != m.Queue || r.Workload != m.Workload || r.N != m.N {
			return Result{}, fmt.Errorf("bench: median of different measurements: %s/%s/%d and %s/%s/%d",
				m.Queue, m.Workload, m.N, r.Queue, r.Workload, r.N)
		}
		if r.FireHash != m.FireHash {
			return Result{}, fmt.Errorf("bench: %s on %s at n=%d fired different sequences in two runs (hashes %s and %s)",
				m.Queue, m.Workload, m.N, orDash(r.FireHash), orDash(m.FireHash))
		}
	}
	return m, nil
}

// The reference queues of the ratio columns.
const (
	refRuntime = "runtime"
	refHeap4   = "heap4"
)

// Ratio returns r.NsPerOp divided by the NsPerOp of the result in rs whose
// Queue is ref, with r's Workload and N (the first such result, if there
// are several). It reports false when rs holds no such result, or when the
// ratio is not a finite number (a reference at 0 ns/op, say).
func Ratio(rs []Result, r Result, ref string) (float64, bool) {
	for _, x := range rs {
		if x.Queue == ref && x.Workload == r.Workload && x.N == r.N {
			return ratioTo(r, x.NsPerOp)
		}
	}
	return 0, false
}

func ratioTo(r Result, refNs float64) (float64, bool) {
	if refNs <= 0 {
		return 0, false
	}
	v := r.NsPerOp / refNs
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// refKey names a reference: one queue on one workload at one size.
type refKey struct {
	queue, workload string
	n               int
}

// ratios computes both ratio columns for every result as Ratio does, and
// the p-value column as PValue does, from one index of the references
// instead of a scan per row.
type ratios struct{ ref map[refKey]Result }

func newRatios(rs []Result) ratios {
	m := make(map[refKey]Result)
	for _, r := range rs {
		if r.Queue != refRuntime && r.Queue != refHeap4 {
			continue
		}
		k := refKey{r.Queue, r.Workload, r.N}
		if _, dup := m[k]; !dup {
			m[k] = r // the first one, as Ratio takes
		}
	}
	return ratios{m}
}

func (x ratios) of(r Result, ref string) (float64, bool) {
	refR, ok := x.ref[refKey{ref, r.Workload, r.N}]
	if !ok {
		return 0, false
	}
	return ratioTo(r, refR.NsPerOp)
}

// pOf is PValue against ref; false for ref's own row, which a test against
// itself would call equal.
func (x ratios) pOf(r Result, ref string) (float64, bool) {
	refR, ok := x.ref[refKey{ref, r.Workload, r.N}]
	if !ok || r.Queue == ref {
		return 0, false
	}
	return pValue(r.NsPerOpRuns, refR.NsPerOpRuns)
}

// queueLess orders queue names: "runtime", then "heap4", then the others
// by name. Every rendering lists and colours queues in this order.
func queueLess(a, b string) int {
	rank := func(q string) int {
		switch q {
		case refRuntime:
			return 0
		case refHeap4:
			return 1
		}
		return 2
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// workloadOrder returns the workloads of rs in order of first appearance:
// the order the suite ran them in.
func workloadOrder(rs []Result) []string {
	var ws []string
	seen := make(map[string]bool)
	for _, r := range rs {
		if !seen[r.Workload] {
			seen[r.Workload] = true
			ws = append(ws, r.Workload)
		}
	}
	return ws
}

// queueOrder returns the distinct queues of rs, ordered by queueLess.
func queueOrder(rs []Result) []string {
	var qs []string
	for _, r := range rs {
		qs = append(qs, r.Queue)
	}
	slices.SortFunc(qs, queueLess)
	return slices.Compact(qs)
}

// grouped returns a copy of rs grouped by workload (in order of first
// appearance), then by N ascending, then by queue (queueLess); results
// equal in all three keep their order.
func grouped(rs []Result) []Result {
	rank := make(map[string]int)
	for i, w := range workloadOrder(rs) {
		rank[w] = i
	}
	out := slices.Clone(rs)
	slices.SortStableFunc(out, func(a, b Result) int {
		if c := cmp.Compare(rank[a.Workload], rank[b.Workload]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.N, b.N); c != 0 {
			return c
		}
		return queueLess(a.Queue, b.Queue)
	})
	return out
}

// WriteText writes rs to w as an aligned plain-text table, grouped by
// workload (in order of first appearance), then N ascending, then queue
// ("runtime" and "heap4" first). The columns are workload, n, queue,
// ns/op, its range over repeated runs ("-" for one run), the ratios of
// ns/op to runtime's and heap4's on the same workload and N ("-" when that
// reference is not in rs), the p-value of the difference from heap4
// (PValue; "-" for heap4's own row and without two runs of each), allocs/op, B/timer, p50, p99, p99.9 (ns),
// lateness, gc (percent of CPU time), page faults per operation, the fire
// hash's first 12 hex digits, and the note. Measurements recorded as 0
// meaning "not measured" (B/timer, the percentiles) and an empty fire hash
// show as "-".
func WriteText(w io.Writer, rs []Result) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tn\tqueue\tns/op\trange\tvs runtime\tvs heap4\tp vs heap4\tallocs/op\tB/timer\tp50\tp99\tp99.9\tlateness\tgc\tfaults/op\tfire hash\tnote")
	x := newRatios(rs)
	for _, r := range grouped(rs) {
		hash := r.FireHash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		late := "0"
		if r.LatenessNs != 0 {
			late = time.Duration(r.LatenessNs).String()
		}
		cells := []string{
			tabCell(r.Workload),
			strconv.Itoa(r.N),
			tabCell(r.Queue),
			textNsPerOp(r.NsPerOp),
			textRange(r),
			textRatio(x.of(r, refRuntime)),
			textRatio(x.of(r, refHeap4)),
			textP(x.pOf(r, refHeap4)),
			textAllocs(r.AllocsPerOp),
			textMeasured(r.BytesPerTimer),
			textMeasured(r.P50Ns),
			textMeasured(r.P99Ns),
			textMeasured(r.P999Ns),
			late,
			strconv.FormatFloat(100*r.GCShare, 'f', 1, 64) + "%",
			textFaults(r.PageFaultsPerOp),
			orDash(tabCell(hash)),
			tabCell(r.Note),
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The padding of cells before an empty note would trail each line.
	var out bytes.Buffer
	for line := range bytes.Lines(b.Bytes()) {
		out.Write(bytes.TrimRight(line[:len(line)-1], " "))
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

// tabCell keeps user-supplied text from breaking the table: tabs and line
// breaks become spaces.
func tabCell(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r', '\v', '\f':
			return ' '
		}
		return r
	}, s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// textNsPerOp shows whole nanoseconds, with one decimal below 100 ns
// where a whole number would lose too much.
func textNsPerOp(v float64) string {
	if math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// textRange shows the lowest and highest ns/op of a repeated
// measurement, "-" for a single run.
func textRange(r Result) string {
	if r.Runs <= 1 {
		return "-"
	}
	return textNsPerOp(r.NsPerOpMin) + "-" + textNsPerOp(r.NsPerOpMax)
}

// textRatio shows a ratio as "0.059x", "-" when missing.
func textRatio(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	if v != 0 && v < 0.0005 {
		// Too small for three decimals, but not zero: keep two
		// significant digits.
		return strconv.FormatFloat(v, 'g', 2, 64) + "x"
	}
	return strconv.FormatFloat(v, 'f', 3, 64) + "x"
}

// textP shows a p-value to three decimals, "<0.001" below that, "-" when
// missing.
func textP(v float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case v < 0.0005:
		return "<0.001"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// textAllocs shows whole allocation counts as integers, averages that are
// not whole with two decimals.
func textAllocs(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// textFaults shows page faults per operation to two significant digits,
// without an exponent ("0.0084", "0.000001"), so that a few thousand
// faults over a million operations, which can double a row's time, do not
// round to 0.
func textFaults(v float64) string {
	rounded, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 2, 64), 64)
	return strconv.FormatFloat(rounded, 'f', -1, 64)
}

// textMeasured shows a measurement in whole units, "-" when it is 0 (not
// measured).
func textMeasured(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// csvHeader is the CSV header: the JSON field names, then the ratios, then
// the fields added since (columns are only ever appended, so that a
// reader by position keeps working).
var csvHeader = []string{
	"queue", "workload", "n", "ops", "ns_per_op", "runs", "ns_per_op_min", "ns_per_op_max", "allocs_per_op",
	"bytes_per_op", "bytes_per_timer", "p50_ns", "p99_ns", "p999_ns",
	"lateness_ns", "gc_share", "fire_hash", "note", "vs_runtime", "vs_heap4",
	"page_faults_per_op", "ns_per_op_runs", "p_vs_heap4",
}

// WriteCSV writes rs to w as CSV, one row per result in the order of rs
// after a header row of the JSON field names plus "vs_runtime" and
// "vs_heap4" (the ratios of ns/op to runtime's and heap4's on the same
// workload and N, an empty cell when that reference is not in rs), then
// "page_faults_per_op", "ns_per_op_runs" (every run's ns/op, separated by
// spaces; empty for one run) and "p_vs_heap4" (PValue against heap4; empty
// where the text table shows "-"). Numbers
// are written in full precision: they parse back to the same values.
func WriteCSV(w io.Writer, rs []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	x := newRatios(rs)
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	ratio := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		return g(v)
	}
	for _, r := range rs {
		row := []string{
			r.Queue, r.Workload, strconv.Itoa(r.N), strconv.FormatInt(r.Ops, 10),
			g(r.NsPerOp), strconv.Itoa(r.Runs), g(r.NsPerOpMin), g(r.NsPerOpMax), g(r.AllocsPerOp), g(r.BytesPerOp), g(r.BytesPerTimer),
			g(r.P50Ns), g(r.P99Ns), g(r.P999Ns),
			strconv.FormatInt(r.LatenessNs, 10), g(r.GCShare), r.FireHash, r.Note,
			ratio(x.of(r, refRuntime)), ratio(x.of(r, refHeap4)),
			g(r.PageFaultsPerOp), joinFloats(r.NsPerOpRuns, g), ratio(x.pOf(r, refHeap4)),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// jsonResult is a Result as WriteJSON writes it, with its ratios and its
// p-value against heap4.
type jsonResult struct {
	Result
	VsRuntime *float64 `json:"vs_runtime"`
	VsHeap4   *float64 `json:"vs_heap4"`
	PVsHeap4  *float64 `json:"p_vs_heap4"`
}

// joinFloats formats each of vs with g and joins them with spaces.
func joinFloats(vs []float64, g func(float64) string) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = g(v)
	}
	return strings.Join(s, " ")
}

// WriteJSON writes rs to w as one JSON object, {"results": [...]}, indented
// two spaces and ending in a newline. Each result, in the order of rs, has
// Result's fields plus "vs_runtime" and "vs_heap4": the ratios of ns/op to
// runtime's and heap4's on the same workload and N, null when that
// reference is not in rs; and "p_vs_heap4", PValue against heap4, null for
// heap4's own results and where either has fewer than two runs. A NaN or infinite measurement is an error.
func WriteJSON(w io.Writer, rs []Result) error {
	x := newRatios(rs)
	ptr := func(v float64, ok bool) *float64 {
		if !ok {
			return nil
		}
		return &v
	}
	doc := struct {
		Results []jsonResult `json:"results"`
	}{Results: make([]jsonResult, 0, len(rs))}
	for _, r := range rs {
		doc.Results = append(doc.Results, jsonResult{
			Result:    r,
			VsRuntime: ptr(x.of(r, refRuntime)),
			VsHeap4:   ptr(x.of(r, refHeap4)),
			PVsHeap4:  ptr(x.pOf(r, refHeap4)),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// The SVG's layout, in user units (pixels at 100%).
const (
	svgMargin   = 20.0
	svgTitleH   = 40.0  // band for the title
	svgPanelW   = 320.0 // one small multiple, labels included
	svgPanelH   = 240.0
	svgPanelGap = 16.0
	svgPlotL    = 52.0 // the plot area inside a panel: room for y labels
	svgPlotR    = 12.0
	svgPlotT    = 26.0 // room for the panel title
	svgPlotB    = 40.0 // room for x labels and the axis name
	svgInset    = 6.0  // between the frame and the outermost decades
	svgPerRow   = 3
	svgCharW    = 7.0 // a generous estimate of a 12px sans-serif glyph
)

// svgPalette holds the queue colours (Tableau 10), given out in queueLess
// order. Past ten queues the colours repeat with dashed lines.
var svgPalette = []string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
}

// WriteSVG writes a self-contained SVG image to w (no scripts, no external
// fonts or files) plotting ns/op against N on log-log axes: one panel per
// workload, in order of first appearance, up to three per row; in each,
// one line with circle markers per queue, coloured the same in every panel
// and named in a legend ("runtime" and "heap4" first, then by name). The N
// axis is shared by all panels; each panel's ns/op axis spans the powers
// of ten around its own data. Points with N or ns/op not above 0 cannot be
// placed on log axes and are left out. The output is a deterministic
// function of rs.
func WriteSVG(w io.Writer, rs []Result) error {
	var b bytes.Buffer
	p := &svgWriter{b: &b}
	p.render(rs)
	_, err := w.Write(b.Bytes())
	return err
}

type svgWriter struct{ b *bytes.Buffer }

func (p *svgWriter) f(format string, args ...any) { fmt.Fprintf(p.b, format, args...) }

// num formats a coordinate: one decimal is finer than a pixel.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if s == "-0.0" {
		s = "0.0"
	}
	return s
}

// esc escapes text for XML content and attribute values; characters XML
// cannot hold at all become U+FFFD.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

// plottable reports whether r can be placed on log-log axes.
func plottable(r Result) bool {
	return r.N > 0 && r.NsPerOp > 0 && !math.IsInf(r.NsPerOp, 0) && !math.IsNaN(r.NsPerOp)
}

// decades returns the powers of ten, as exponents lo < hi, that enclose
// the values [a, b] (0 < a <= b).
func decades(a, b float64) (lo, hi int) {
	lo, hi = floorLog10(a), floorLog10(b)
	if math.Pow10(hi) < b {
		hi++
	}
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// floorLog10 is ⌊log10 v⌋ for v > 0, exact at powers of ten.
func floorLog10(v float64) int {
	k := int(math.Floor(math.Log10(v)))
	for math.Pow10(k+1) <= v {
		k++
	}
	for math.Pow10(k) > v {
		k--
	}
	return k
}

// nLabel labels a power of ten on the N axis: 1, 10, 100, 1e3, 1e4, ...
func nLabel(k int) string {
	if k >= 0 && k < 3 {
		return strconv.FormatFloat(math.Pow10(k), 'f', -1, 64)
	}
	return "1e" + strconv.Itoa(k)
}

// nsLabel labels a power of ten on the ns/op axis: 0.1, 1, 10, 100, 1000,
// 1e4, ...
func nsLabel(k int) string {
	if k >= -3 && k < 4 {
		return strconv.FormatFloat(math.Pow10(k), 'f', -1, 64)
	}
	return "1e" + strconv.Itoa(k)
}

func (p *svgWriter) render(rs []Result) {
	const title = "kasim bench: ns/op against live timers"
	var pts []Result
	for _, r := range rs {
		if plottable(r) {
			pts = append(pts, r)
		}
	}
	workloads := workloadOrder(pts)
	queues := queueOrder(pts)
	colour := make(map[string]int, len(queues))
	for i, q := range queues {
		colour[q] = i
	}

	cols := min(len(workloads), svgPerRow)
	rows := (len(workloads) + svgPerRow - 1) / svgPerRow
	gridW := float64(cols)*svgPanelW + float64(max(cols-1, 0))*svgPanelGap
	gridH := float64(rows)*svgPanelH + float64(max(rows-1, 0))*svgPanelGap
	longest := 0
	for _, q := range queues {
		longest = max(longest, utf8.RuneCountInString(q))
	}
	legendX := svgMargin + gridW + svgPanelGap
	legendW := 0.0
	if len(queues) > 0 {
		legendW = 34 + svgCharW*float64(longest)
	}
	width := math.Ceil(max(legendX+legendW+svgMargin, svgMargin*2+svgCharW*float64(len(title))))
	height := math.Ceil(max(svgTitleH+gridH+svgMargin, svgTitleH+18*float64(len(queues))+svgMargin))
	if len(workloads) == 0 {
		height = svgTitleH + 40 + svgMargin
	}

	p.f(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif" font-size="12">`+"\n",
		num(width), num(height), num(width), num(height))
	p.f("<title>%s</title>\n", esc(title))
	p.f(`<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", num(width), num(height))
	p.f(`<text x="%s" y="%s" font-size="16" font-weight="bold">%s</text>`+"\n", num(svgMargin), num(svgMargin+8), esc(title))
	if len(workloads) == 0 {
		p.f(`<text x="%s" y="%s" fill="#555555">no results to plot</text>`+"\n", num(svgMargin), num(svgTitleH+20))
		p.f("</svg>\n")
		return
	}

	// The N axis is shared: the same sizes line up across panels.
	nMin, nMax := math.Inf(1), math.Inf(-1)
	for _, r := range pts {
		nMin, nMax = min(nMin, float64(r.N)), max(nMax, float64(r.N))
	}
	xlo, xhi := decades(nMin, nMax)

	for i, wl := range workloads {
		ox := svgMargin + float64(i%svgPerRow)*(svgPanelW+svgPanelGap)
		oy := svgTitleH + float64(i/svgPerRow)*(svgPanelH+svgPanelGap)
		var in []Result
		for _, r := range pts {
			if r.Workload == wl {
				in = append(in, r)
			}
		}
		p.panel(ox, oy, wl, in, queues, colour, xlo, xhi)
	}

	// The legend, to the right of the grid.
	p.f(`<g class="legend">` + "\n")
	for i, q := range queues {
		y := svgTitleH + 10 + 18*float64(i)
		c, dash := svgStroke(colour[q])
		p.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"%s/>`+"\n",
			num(legendX), num(y), num(legendX+22), num(y), c, dash)
		p.f(`<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", num(legendX+11), num(y), c)
		p.f(`<text x="%s" y="%s">%s</text>`+"\n", num(legendX+28), num(y+4), esc(q))
	}
	p.f("</g>\n")
	p.f("</svg>\n")
}

// svgStroke returns the colour of the queue at index i of the legend, and
// a dash attribute once the palette has wrapped.
func svgStroke(i int) (colour, dash string) {
	colour = svgPalette[i%len(svgPalette)]
	if i >= len(svgPalette) {
		dash = ` stroke-dasharray="5 3"`
	}
	return colour, dash
}

// panel draws one workload's small multiple at (ox, oy): frame, decade
// grid and labels, then a line and markers per queue.
func (p *svgWriter) panel(ox, oy float64, workload string, in []Result, queues []string, colour map[string]int, xlo, xhi int) {
	yMin, yMax := math.Inf(1), math.Inf(-1)
	for _, r := range in {
		yMin, yMax = min(yMin, r.NsPerOp), max(yMax, r.NsPerOp)
	}
	ylo, yhi := decades(yMin, yMax)

	left, top := ox+svgPlotL, oy+svgPlotT
	w, h := svgPanelW-svgPlotL-svgPlotR, svgPanelH-svgPlotT-svgPlotB
	// The decades span the frame less an inset, so that markers at the
	// ends of the range do not sit on it.
	ix := func(k float64) float64 {
		return left + svgInset + (k-float64(xlo))/float64(xhi-xlo)*(w-2*svgInset)
	}
	iy := func(k float64) float64 {
		return top + h - svgInset - (k-float64(ylo))/float64(yhi-ylo)*(h-2*svgInset)
	}
	px := func(n int) float64 { return ix(math.Log10(float64(n))) }
	py := func(ns float64) float64 { return iy(math.Log10(ns)) }

	p.f(`<g class="panel">` + "\n")
	p.f(`<text x="%s" y="%s" font-size="13" font-weight="bold">%s</text>`+"\n", num(left), num(oy+16), esc(workload))
	p.f(`<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#888888"/>`+"\n", num(left), num(top), num(w), num(h))
	for k := xlo; k <= xhi; k++ {
		x := ix(float64(k))
		p.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e4e4e4"/>`+"\n", num(x), num(top), num(x), num(top+h))
		p.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888888"/>`+"\n", num(x), num(top+h), num(x), num(top+h+4))
		p.f(`<text x="%s" y="%s" text-anchor="middle" font-size="10">%s</text>`+"\n", num(x), num(top+h+15), nLabel(k))
	}
	for k := ylo; k <= yhi; k++ {
		y := iy(float64(k))
		p.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e4e4e4"/>`+"\n", num(left), num(y), num(left+w), num(y))
		p.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888888"/>`+"\n", num(left-4), num(y), num(left), num(y))
		p.f(`<text x="%s" y="%s" text-anchor="end" font-size="10">%s</text>`+"\n", num(left-6), num(y+3.5), nsLabel(k))
	}
	p.f(`<text x="%s" y="%s" text-anchor="middle" font-size="10" fill="#555555">live timers (N)</text>`+"\n", num(left+w/2), num(top+h+30))
	p.f(`<text x="%s" y="%s" text-anchor="middle" font-size="10" fill="#555555" transform="rotate(-90 %s %s)">ns/op</text>`+"\n",
		num(ox+12), num(top+h/2), num(ox+12), num(top+h/2))

	for _, q := range queues {
		var line []Result
		for _, r := range in {
			if r.Queue == q {
				line = append(line, r)
			}
		}
		if len(line) == 0 {
			continue
		}
		// Sorted by N; repeated measurements at one N keep their order.
		slices.SortStableFunc(line, func(a, b Result) int { return cmp.Compare(a.N, b.N) })
		c, dash := svgStroke(colour[q])
		if len(line) >= 2 {
			coords := make([]string, len(line))
			for i, r := range line {
				coords[i] = num(px(r.N)) + "," + num(py(r.NsPerOp))
			}
			p.f(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"%s><title>%s: %s</title></polyline>`+"\n",
				strings.Join(coords, " "), c, dash, esc(workload), esc(q))
		}
		for _, r := range line {
			p.f(`<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s, n=%d: %s ns/op</title></circle>`+"\n",
				num(px(r.N)), num(py(r.NsPerOp)), c, esc(q), r.N, strconv.FormatFloat(r.NsPerOp, 'g', 4, 64))
		}
	}
	p.f("</g>\n")
}
