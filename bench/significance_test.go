package bench

import (
	"math"
	"testing"
)

func TestReportPValue(t *testing.T) {
	res := func(q string, runs ...float64) Result {
		r := Result{Queue: q, Workload: "cancel", N: 1000, NsPerOp: runs[0], Runs: len(runs)}
		if len(runs) > 1 {
			r.NsPerOpRuns = runs
		}
		return r
	}
	for _, c := range []struct {
		name        string
		wheel, ref  Result
		want        float64
		wantOK      bool
		differentWL bool
	}{
		// Every run of one below every run of the other: 2 / C(n1+n2, n1).
		{name: "four below four", wheel: res("wheel", 1, 2, 3, 4), ref: res("heap4", 5, 6, 7, 8), want: 2.0 / 70, wantOK: true},
		{name: "five above five", wheel: res("wheel", 9, 9.5, 10, 11, 12), ref: res("heap4", 1, 2, 3, 4, 5), want: 2.0 / 252, wantOK: true},
		{name: "three below three", wheel: res("wheel", 1, 2, 3), ref: res("heap4", 4, 5, 6), want: 0.1, wantOK: true},
		// Interleaved runs: the test finds nothing, however far the medians.
		{name: "interleaved", wheel: res("wheel", 1, 10, 3, 12), ref: res("heap4", 2, 11, 4, 13), want: 48.0 / 70, wantOK: true}, // U = 6: 24 of the 70 orders as extreme, each way
		{name: "all equal", wheel: res("wheel", 5, 5, 5), ref: res("heap4", 5, 5), want: 1, wantOK: true},
		{name: "one run", wheel: res("wheel", 1), ref: res("heap4", 4, 5, 6)},
		{name: "reference ran once", wheel: res("wheel", 1, 2, 3), ref: res("heap4", 4)},
		{name: "no reference", wheel: res("wheel", 1, 2, 3), ref: res("heap2", 4, 5, 6)},
		{name: "reference on another workload", wheel: res("wheel", 1, 2, 3), ref: res("heap4", 4, 5, 6), differentWL: true},
	} {
		if c.differentWL {
			c.ref.Workload = "fire"
		}
		got, ok := PValue([]Result{c.ref, c.wheel}, c.wheel, "heap4")
		if ok != c.wantOK || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: PValue = %v, %v; want %v, %v", c.name, got, ok, c.want, c.wantOK)
		}
	}
}
