package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reportResults is a small suite: two workloads at two sizes with all
// references, one workload at a single size, one without heap4, and a
// queue whose name needs escaping.
func reportResults() []Result {
	return []Result{
		{Queue: "wheel", Workload: "schedule", N: 1000, Ops: 1_000_000, NsPerOp: 20, AllocsPerOp: 0, BytesPerOp: 0, BytesPerTimer: 48.25, P50Ns: 18, P99Ns: 40, P999Ns: 120, GCShare: 0.012, PageFaultsPerOp: 0.008372, FireHash: "0123456789abcdef0123456789abcdef"},
		{Queue: "heap4", Workload: "schedule", N: 1000, Ops: 1_000_000, NsPerOp: 40, BytesPerTimer: 32, P50Ns: 35, P99Ns: 80, P999Ns: 300, GCShare: 0.02, FireHash: "0123456789abcdef0123456789abcdef"},
		{Queue: "runtime", Workload: "schedule", N: 1000, Ops: 500_000, NsPerOp: 400, AllocsPerOp: 1, BytesPerOp: 64, GCShare: 0.1, Note: "real time"},
		{Queue: "a<b&c", Workload: "schedule", N: 1000, Ops: 10, NsPerOp: 33.25, AllocsPerOp: 0.5},
		{Queue: "wheel", Workload: "schedule", N: 1_000_000, Ops: 2_000_000, NsPerOp: 25.5, Runs: 5, NsPerOpMin: 24, NsPerOpMax: 31.5, NsPerOpRuns: []float64{31.5, 24, 25.5, 26, 25}, BytesPerTimer: 49, PageFaultsPerOp: 1.04e-6},
		{Queue: "heap4", Workload: "schedule", N: 1_000_000, Ops: 2_000_000, NsPerOp: 102, PageFaultsPerOp: 2.5},
		{Queue: "runtime", Workload: "schedule", N: 1_000_000, Ops: 100_000, NsPerOp: 1234.5678, Note: "real time"},
		{Queue: "a<b&c", Workload: "schedule", N: 1_000_000, Ops: 10, NsPerOp: 0.1 + 0.2},
		{Queue: "wheel", Workload: "cancel", N: 1000, Ops: 1000, NsPerOp: 11, Runs: 5, NsPerOpMin: 10, NsPerOpMax: 12, NsPerOpRuns: []float64{11, 10, 12, 11.5, 10.5}},
		{Queue: "heap4", Workload: "cancel", N: 1000, Ops: 1000, NsPerOp: 44, Runs: 5, NsPerOpMin: 40, NsPerOpMax: 48, NsPerOpRuns: []float64{44, 40, 48, 45, 41}},
		{Queue: "wheel", Workload: "cancel", N: 1_000_000, Ops: 1000, NsPerOp: 12},
		{Queue: "heap4", Workload: "cancel", N: 1_000_000, Ops: 1000, NsPerOp: 96},
		{Queue: "wheel", Workload: "fire", N: 10_000, Ops: 1000, NsPerOp: 60, Runs: 3, NsPerOpMin: 58, NsPerOpMax: 62, NsPerOpRuns: []float64{60, 58, 62}, LatenessNs: int64(1500 * time.Microsecond), FireHash: "feedface"},
		{Queue: "heap4", Workload: "fire", N: 10_000, Ops: 1000, NsPerOp: 90, Runs: 3, NsPerOpMin: 57, NsPerOpMax: 95, NsPerOpRuns: []float64{90, 57, 95}, FireHash: "feedface"},
		{Queue: "wheel", Workload: "replay", N: 1000, Ops: 1000, NsPerOp: 70},
		{Queue: "runtime", Workload: "replay", N: 1000, Ops: 1000, NsPerOp: 700},
		{Queue: "wheel", Workload: "replay", N: 100_000, Ops: 1000, NsPerOp: 75},
		{Queue: "runtime", Workload: "replay", N: 100_000, Ops: 1000, NsPerOp: 1500},
	}
}

func find(t *testing.T, rs []Result, queue, workload string, n int) Result {
	t.Helper()
	for _, r := range rs {
		if r.Queue == queue && r.Workload == workload && r.N == n {
			return r
		}
	}
	t.Fatalf("no result for %s/%s/%d", queue, workload, n)
	return Result{}
}

func TestReportRatio(t *testing.T) {
	rs := reportResults()
	for _, c := range []struct {
		queue, workload string
		n               int
		ref             string
		want            float64
		ok              bool
	}{
		{"wheel", "schedule", 1000, "heap4", 0.5, true},
		{"wheel", "schedule", 1000, "runtime", 0.05, true},
		{"wheel", "schedule", 1_000_000, "heap4", 0.25, true}, // heap4 at the same N, not at 1000
		{"heap4", "schedule", 1000, "heap4", 1, true},
		{"wheel", "cancel", 1000, "runtime", 0, false}, // no runtime on cancel
		{"wheel", "replay", 1000, "heap4", 0, false},   // heap4 only on other workloads
		{"wheel", "fire", 10_000, "linux", 0, false},
	} {
		got, ok := Ratio(rs, find(t, rs, c.queue, c.workload, c.n), c.ref)
		if ok != c.ok || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Ratio(%s/%s/%d, %q) = %v, %v; want %v, %v", c.queue, c.workload, c.n, c.ref, got, ok, c.want, c.ok)
		}
	}
	// A reference at 0 ns/op gives no ratio rather than +Inf.
	zero := []Result{{Queue: "heap4", Workload: "w", N: 1}, {Queue: "wheel", Workload: "w", N: 1, NsPerOp: 3}}
	if got, ok := Ratio(zero, zero[1], "heap4"); ok {
		t.Errorf("Ratio against 0 ns/op = %v, true; want false", got)
	}
}

func TestReportWriteText(t *testing.T) {
	rs := reportResults()
	var b bytes.Buffer
	if err := WriteText(&b, rs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(rs)+1 {
		t.Fatalf("%d lines, want a header and %d rows:\n%s", len(lines), len(rs), out)
	}
	for _, l := range lines {
		if strings.TrimRight(l, " ") != l {
			t.Errorf("trailing blanks: %q", l)
		}
	}
	if !strings.HasPrefix(lines[0], "workload") || !strings.Contains(lines[0], "vs heap4") {
		t.Errorf("header: %q", lines[0])
	}
	// Rows are split on blanks: every cell but the note is one word.
	rows := make(map[string][]string)
	var order []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 17 {
			t.Fatalf("short row %q", l)
		}
		key := f[0] + "/" + f[1] + "/" + f[2]
		rows[key] = f
		order = append(order, key)
	}
	// Columns: 0 workload, 1 n, 2 queue, 3 ns/op, 4 range, 5 vs runtime,
	// 6 vs heap4, 7 p vs heap4, 8 allocs/op, 9 B/timer, 10 p50, 11 p99,
	// 12 p99.9, 13 lateness, 14 gc, 15 faults/op, 16 fire hash.
	for _, c := range []struct {
		row  string
		col  int
		want string
	}{
		{"schedule/1000/wheel", 6, "0.500x"},
		{"schedule/1000/wheel", 5, "0.050x"},
		{"schedule/1000/wheel", 3, "20.0"},
		{"schedule/1000/wheel", 4, "-"},
		{"schedule/1000000/wheel", 4, "24.0-31.5"},
		{"schedule/1000/wheel", 9, "48"},
		{"schedule/1000/wheel", 12, "120"},
		{"schedule/1000/wheel", 14, "1.2%"},
		{"schedule/1000/wheel", 15, "0.0084"},
		{"schedule/1000000/heap4", 15, "2.5"},
		{"schedule/1000/heap4", 15, "0"},
		{"schedule/1000000/wheel", 15, "0.000001"},
		{"schedule/1000/wheel", 16, "0123456789ab"},
		{"schedule/1000/runtime", 9, "-"},
		{"schedule/1000000/runtime", 3, "1235"},
		{"schedule/1000/a<b&c", 8, "0.50"},
		{"cancel/1000/wheel", 5, "-"},
		{"cancel/1000000/wheel", 6, "0.125x"},
		{"fire/10000/wheel", 13, "1.5ms"},
		{"fire/10000/heap4", 13, "0"},
		{"replay/1000/wheel", 6, "-"},
		{"replay/100000/wheel", 5, "0.050x"},
		{"replay/100000/wheel", 16, "-"},
		// Five runs each, every wheel run below every heap4 run: the
		// smallest p-value five and five can give, 2/252.
		{"cancel/1000/wheel", 7, "0.008"},
		{"cancel/1000/heap4", 7, "-"},      // its own reference
		{"cancel/1000000/wheel", 7, "-"},   // one run each
		{"schedule/1000000/wheel", 7, "-"}, // heap4 ran once
		{"schedule/1000/runtime", 7, "-"},
		// Three and three, heap4's lowest below all the wheel's: no
		// evidence either way (U = 3), though the medians are 1.5x apart.
		{"fire/10000/wheel", 7, "0.700"},
	} {
		f, ok := rows[c.row]
		if !ok {
			t.Errorf("no row %s in\n%s", c.row, out)
			continue
		}
		if f[c.col] != c.want {
			t.Errorf("row %s column %d = %q, want %q", c.row, c.col, f[c.col], c.want)
		}
	}
	if !strings.Contains(rows["schedule/1000/runtime"][17]+" "+rows["schedule/1000/runtime"][18], "real time") {
		t.Errorf("runtime row lacks its note: %q", rows["schedule/1000/runtime"])
	}
	// Grouped by workload in order of appearance, then N, then queue with
	// the references first.
	want := []string{
		"schedule/1000/runtime", "schedule/1000/heap4", "schedule/1000/a<b&c", "schedule/1000/wheel",
		"schedule/1000000/runtime", "schedule/1000000/heap4", "schedule/1000000/a<b&c", "schedule/1000000/wheel",
		"cancel/1000/heap4", "cancel/1000/wheel", "cancel/1000000/heap4", "cancel/1000000/wheel",
		"fire/10000/heap4", "fire/10000/wheel",
		"replay/1000/runtime", "replay/1000/wheel", "replay/100000/runtime", "replay/100000/wheel",
	}
	if d := cmp.Diff(want, order); d != "" {
		t.Errorf("row order (-want +got):\n%s", d)
	}
	// Aligned: the queue column starts at the same offset on every line.
	col := strings.Index(lines[0], "queue")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if i := strings.Index(l, " "+f[2]+" "); i+1 != col {
			t.Errorf("queue cell at %d, header at %d: %q", i+1, col, l)
		}
	}
}

func TestReportWriteCSV(t *testing.T) {
	rs := reportResults()
	var b bytes.Buffer
	if err := WriteCSV(&b, rs); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{
		"queue", "workload", "n", "ops", "ns_per_op", "runs", "ns_per_op_min", "ns_per_op_max", "allocs_per_op",
		"bytes_per_op", "bytes_per_timer", "p50_ns", "p99_ns", "p999_ns",
		"lateness_ns", "gc_share", "fire_hash", "note", "vs_runtime", "vs_heap4",
		"page_faults_per_op", "ns_per_op_runs", "p_vs_heap4", // appended: readers by position keep working
	}
	if d := cmp.Diff(wantHeader, recs[0]); d != "" {
		t.Fatalf("header (-want +got):\n%s", d)
	}
	if len(recs) != len(rs)+1 {
		t.Fatalf("%d records, want %d", len(recs), len(rs)+1)
	}
	col := make(map[string]int)
	for i, h := range recs[0] {
		col[h] = i
	}
	var back []Result
	for i, rec := range recs[1:] {
		get := func(name string) string { return rec[col[name]] }
		fl := func(name string) float64 {
			v, err := strconv.ParseFloat(get(name), 64)
			if err != nil {
				t.Fatalf("row %d %s: %v", i, name, err)
			}
			return v
		}
		in := func(name string) int64 {
			v, err := strconv.ParseInt(get(name), 10, 64)
			if err != nil {
				t.Fatalf("row %d %s: %v", i, name, err)
			}
			return v
		}
		r := Result{
			Queue: get("queue"), Workload: get("workload"), N: int(in("n")), Ops: in("ops"),
			NsPerOp: fl("ns_per_op"), Runs: int(in("runs")), NsPerOpMin: fl("ns_per_op_min"), NsPerOpMax: fl("ns_per_op_max"), AllocsPerOp: fl("allocs_per_op"), BytesPerOp: fl("bytes_per_op"),
			BytesPerTimer: fl("bytes_per_timer"), P50Ns: fl("p50_ns"), P99Ns: fl("p99_ns"), P999Ns: fl("p999_ns"),
			LatenessNs: in("lateness_ns"), GCShare: fl("gc_share"), FireHash: get("fire_hash"), Note: get("note"),
			PageFaultsPerOp: fl("page_faults_per_op"),
		}
		for _, f := range strings.Fields(get("ns_per_op_runs")) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("row %d ns_per_op_runs: %v", i, err)
			}
			r.NsPerOpRuns = append(r.NsPerOpRuns, v)
		}
		back = append(back, r)
		for _, ref := range []string{"runtime", "heap4"} {
			cell := get("vs_" + ref)
			want, ok := Ratio(rs, rs[i], ref)
			switch {
			case !ok && cell != "":
				t.Errorf("row %d vs_%s = %q, want empty", i, ref, cell)
			case ok && cell != strconv.FormatFloat(want, 'g', -1, 64):
				t.Errorf("row %d vs_%s = %q, want %v", i, ref, cell, want)
			}
		}
	}
	// Full precision: every value parses back exactly (0.1+0.2 included).
	if d := cmp.Diff(rs, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if got := recs[1][col["vs_heap4"]]; got != "0.5" {
		t.Errorf("schedule/1000/wheel vs_heap4 = %q, want 0.5", got)
	}
	// cancel/1000: wheel (row 9) against heap4 (row 10, its own reference).
	if got, err := strconv.ParseFloat(recs[9][col["p_vs_heap4"]], 64); err != nil || math.Abs(got-2.0/252) > 1e-12 {
		t.Errorf("cancel/1000/wheel p_vs_heap4 = %v (%v), want 2/252", got, err)
	}
	if got := recs[10][col["p_vs_heap4"]]; got != "" {
		t.Errorf("cancel/1000/heap4 p_vs_heap4 = %q, want empty", got)
	}
}

func TestReportWriteJSON(t *testing.T) {
	rs := reportResults()
	var b bytes.Buffer
	if err := WriteJSON(&b, rs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "{\n  \"results\": [\n    {\n      \"queue\"") || !strings.HasSuffix(out, "]\n}\n") {
		t.Errorf("not indented two spaces with a trailing newline:\n%s", out)
	}
	var typed struct {
		Results []struct {
			Result
			VsRuntime *float64 `json:"vs_runtime"`
			VsHeap4   *float64 `json:"vs_heap4"`
			PVsHeap4  *float64 `json:"p_vs_heap4"`
		} `json:"results"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&typed); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if len(typed.Results) != len(rs) || len(raw.Results) != len(rs) {
		t.Fatalf("%d results, want %d", len(typed.Results), len(rs))
	}
	var back []Result
	for i, got := range typed.Results {
		back = append(back, got.Result)
		for _, c := range []struct {
			ref string
			got *float64
		}{{"runtime", got.VsRuntime}, {"heap4", got.VsHeap4}} {
			want, ok := Ratio(rs, rs[i], c.ref)
			switch {
			case !ok && string(raw.Results[i]["vs_"+c.ref]) != "null":
				t.Errorf("result %d vs_%s = %s, want null", i, c.ref, raw.Results[i]["vs_"+c.ref])
			case ok && (c.got == nil || *c.got != want):
				t.Errorf("result %d vs_%s = %v, want %v", i, c.ref, c.got, want)
			}
		}
	}
	if d := cmp.Diff(rs, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	for i, got := range typed.Results {
		want, ok := PValue(rs, rs[i], "heap4")
		switch {
		case rs[i].Queue == "heap4" || !ok:
			if got.PVsHeap4 != nil {
				t.Errorf("result %d p_vs_heap4 = %v, want null", i, *got.PVsHeap4)
			}
		case got.PVsHeap4 == nil || *got.PVsHeap4 != want:
			t.Errorf("result %d p_vs_heap4 = %v, want %v", i, got.PVsHeap4, want)
		}
	}
	// The replay workload has no heap4: its results say so with null.
	n := 0
	for i, r := range rs {
		if r.Workload == "replay" {
			n++
			if got := string(raw.Results[i]["vs_heap4"]); got != "null" {
				t.Errorf("replay result %d: vs_heap4 = %s, want null", i, got)
			}
		}
	}
	if n == 0 {
		t.Fatal("no replay results to check")
	}

	// No results is an empty list, not null.
	b.Reset()
	if err := WriteJSON(&b, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "{\n  \"results\": []\n}\n" {
		t.Errorf("no results: %q", got)
	}
}

// svgElem is one element of a parsed SVG, with the text of its <title>
// child if it has one.
type svgElem struct {
	name  string
	attr  map[string]string
	text  string // character data directly inside
	title string
}

// parseSVG decodes every token of data, failing the test on invalid XML,
// and returns the elements in document order.
func parseSVG(t *testing.T, data []byte) []*svgElem {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var all, stack []*svgElem
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &svgElem{name: tok.Name.Local, attr: make(map[string]string)}
			for _, a := range tok.Attr {
				e.attr[a.Name.Local] = a.Value
			}
			all = append(all, e)
			stack = append(stack, e)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		case xml.EndElement:
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if e.name == "title" && len(stack) > 0 {
				stack[len(stack)-1].title = e.text
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("%d elements left open", len(stack))
	}
	return all
}

// svgPoints parses a polyline's points attribute.
func svgPoints(t *testing.T, s string) [][2]float64 {
	t.Helper()
	var pts [][2]float64
	for _, p := range strings.Fields(s) {
		x, y, ok := strings.Cut(p, ",")
		if !ok {
			t.Fatalf("bad point %q", p)
		}
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad point %q", p)
		}
		pts = append(pts, [2]float64{fx, fy})
	}
	return pts
}

func writeSVG(t *testing.T, rs []Result) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSVG(&b, rs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReportWriteSVG(t *testing.T) {
	rs := reportResults()
	out := writeSVG(t, rs)
	elems := parseSVG(t, out)
	if len(elems) == 0 || elems[0].name != "svg" {
		t.Fatal("root element is not svg")
	}
	if got := elems[0].attr["font-family"]; got != "sans-serif" {
		t.Errorf("font-family = %q", got)
	}
	texts := make(map[string]bool)
	for _, e := range elems {
		switch e.name {
		case "script", "image", "foreignObject", "style":
			t.Errorf("SVG holds a %s element", e.name)
		case "text":
			texts[e.text] = true
		}
		for k, v := range e.attr {
			if k == "href" || strings.Contains(v, "url(") {
				t.Errorf("%s refers outside: %s=%q", e.name, k, v)
			}
		}
	}
	for _, want := range []string{
		"kasim bench: ns/op against live timers",
		"schedule", "cancel", "fire", "replay", // panel titles
		"runtime", "heap4", "wheel", "a<b&c", // legend
		"1e3", "1e6", // N ticks
		"10", "100", "1000", // ns/op ticks
	} {
		if !texts[want] {
			t.Errorf("no text %q", want)
		}
	}

	// One polyline per (workload, queue) with two sizes or more, holding
	// as many points as there are sizes; the same colour for a queue in
	// every panel, and a different one for different queues.
	want := make(map[string]int)
	for _, r := range rs {
		want[r.Workload+": "+r.Queue]++
	}
	for k, n := range want {
		if n < 2 {
			delete(want, k)
		}
	}
	got := make(map[string]int)
	stroke := make(map[string]string)
	owner := make(map[string]string)
	for _, e := range elems {
		if e.name != "polyline" {
			continue
		}
		if got[e.title] > 0 {
			t.Errorf("two polylines for %q", e.title)
		}
		got[e.title] = len(svgPoints(t, e.attr["points"]))
		_, q, _ := strings.Cut(e.title, ": ")
		c := e.attr["stroke"]
		if s, ok := stroke[q]; ok && s != c {
			t.Errorf("queue %q drawn in %s and %s", q, s, c)
		}
		if o, ok := owner[c]; ok && o != q {
			t.Errorf("colour %s used for %q and %q", c, o, q)
		}
		stroke[q], owner[c] = c, q
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("polylines and their points (-want +got):\n%s", d)
	}

	// The fire workload has a single size: no line, but its points show.
	markers := 0
	for _, e := range elems {
		if e.name == "circle" && strings.Contains(e.title, "n=10000:") {
			markers++
		}
	}
	if markers != 2 {
		t.Errorf("%d markers for the single-size workload, want 2", markers)
	}

	// Queue names are escaped, not copied.
	if !bytes.Contains(out, []byte("a&lt;b&amp;c")) || bytes.Contains(out, []byte("a<b&c")) {
		t.Error("queue name a<b&c is not escaped")
	}

	if again := writeSVG(t, rs); !bytes.Equal(out, again) {
		t.Error("two renderings of the same results differ")
	}
}

// TestReportSVGInsideViewBox checks, without a golden file, that every
// line and marker lands inside the picture.
func TestReportSVGInsideViewBox(t *testing.T) {
	rs := append(reportResults(),
		// Values at exact powers of ten, far apart, and one that cannot
		// be placed on log axes.
		Result{Queue: "linux", Workload: "herd", N: 10, NsPerOp: 1},
		Result{Queue: "linux", Workload: "herd", N: 10_000_000, NsPerOp: 1e6},
		Result{Queue: "linux", Workload: "herd", N: 100, NsPerOp: 0},
	)
	elems := parseSVG(t, writeSVG(t, rs))
	vb := strings.Fields(elems[0].attr["viewBox"])
	if len(vb) != 4 {
		t.Fatalf("viewBox %q", elems[0].attr["viewBox"])
	}
	var box [4]float64
	for i, s := range vb {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("viewBox %q: %v", vb, err)
		}
		box[i] = v
	}
	inside := func(what string, x, y float64) {
		if !(x >= box[0] && x <= box[0]+box[2] && y >= box[1] && y <= box[1]+box[3]) {
			t.Errorf("%s at (%v, %v) is outside the viewBox %v", what, x, y, box)
		}
	}
	lines, circles := 0, 0
	for _, e := range elems {
		switch e.name {
		case "polyline":
			lines++
			for _, p := range svgPoints(t, e.attr["points"]) {
				inside("polyline "+e.title, p[0], p[1])
			}
		case "circle":
			circles++
			x, err1 := strconv.ParseFloat(e.attr["cx"], 64)
			y, err2 := strconv.ParseFloat(e.attr["cy"], 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("circle at %q, %q", e.attr["cx"], e.attr["cy"])
			}
			inside("circle "+e.title, x, y)
		}
	}
	if lines == 0 || circles == 0 {
		t.Fatalf("%d polylines, %d circles", lines, circles)
	}
}

// TestReportSVGEmpty checks that no results still make a valid picture.
func TestReportSVGEmpty(t *testing.T) {
	elems := parseSVG(t, writeSVG(t, nil))
	if len(elems) == 0 || elems[0].name != "svg" {
		t.Fatal("root element is not svg")
	}
}

// TestReportSVGOddNames checks that names XML cannot hold as they are
// (control characters, invalid UTF-8, quotes) still give valid XML.
func TestReportSVGOddNames(t *testing.T) {
	var rs []Result
	for _, q := range []string{"nul\x00q", "bad\xffutf8", `"quoted" 'q'`, "]]>"} {
		for _, n := range []int{1000, 10_000} {
			rs = append(rs, Result{Queue: q, Workload: "w\x01<x>", N: n, NsPerOp: float64(n) / 100})
		}
	}
	elems := parseSVG(t, writeSVG(t, rs))
	lines := 0
	for _, e := range elems {
		if e.name == "polyline" {
			lines++
		}
	}
	if lines != 4 {
		t.Errorf("%d polylines, want 4", lines)
	}
}

func TestReportMedian(t *testing.T) {
	run := func(ns float64, p50 float64) Result {
		return Result{Queue: "wheel", Workload: "fire", N: 10, NsPerOp: ns, P50Ns: p50, FireHash: "ab"}
	}
	got, err := Median([]Result{run(9, 1), run(5, 2), run(30, 3), run(7, 4)})
	if err != nil {
		t.Fatal(err)
	}
	// Sorted 5, 7, 9, 30: the lower middle one is 7, and the result is
	// that run's, p50 included.
	want := run(7, 4)
	want.Runs, want.NsPerOpMin, want.NsPerOpMax = 4, 5, 30
	want.NsPerOpRuns = []float64{9, 5, 30, 7} // in the order measured
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Median (-want +got):\n%s", d)
	}
	if got, err := Median([]Result{run(3, 1)}); err != nil || got.Runs != 1 || got.NsPerOpMin != 3 || got.NsPerOpMax != 3 || got.NsPerOpRuns != nil {
		t.Errorf("Median of one run = %+v, %v", got, err)
	}
	other := run(8, 0)
	other.FireHash = "cd"
	if _, err := Median([]Result{run(7, 0), other}); err == nil || !strings.Contains(err.Error(), "fired different sequences") {
		t.Errorf("runs with different fire hashes: err = %v", err)
	}
	other = run(8, 0)
	other.Queue = "heap4"
	if _, err := Median([]Result{run(7, 0), other}); err == nil {
		t.Error("runs of different queues: no error")
	}
	if _, err := Median(nil); err == nil {
		t.Error("no runs: no error")
	}
}
