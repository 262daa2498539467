package bench

import (
	"errors"

	"github.com/aclements/go-moremath/stats"
)

// minRunsForP is the fewest runs of each queue that PValue compares: with
// one, there is no spread to judge a difference against.
const minRunsForP = 2

// PValue returns the two-sided p-value of a Mann-Whitney U test of r's runs
// (NsPerOpRuns) against the runs of the result in rs whose Queue is ref,
// with r's Workload and N (the first such result, if there are several):
// the probability that two queues equally fast would give runs at least as
// far apart as these. A p-value under 0.05 is a difference the machine's
// noise alone would rarely produce; above it, the ratio is not evidence
// either way. The test assumes nothing about the runs' distribution (a
// shared machine's runs are often bimodal), which is why it needs several:
// the smallest p-value it can give is 0.1 for three runs each, 0.029 for
// four and 0.008 for five. All runs equal gives 1. It reports false when rs
// holds no such result, or when either has fewer than two runs recorded.
func PValue(rs []Result, r Result, ref string) (float64, bool) {
	for _, x := range rs {
		if x.Queue == ref && x.Workload == r.Workload && x.N == r.N {
			return pValue(r.NsPerOpRuns, x.NsPerOpRuns)
		}
	}
	return 0, false
}

func pValue(runs, refRuns []float64) (float64, bool) {
	if len(runs) < minRunsForP || len(refRuns) < minRunsForP {
		return 0, false
	}
	res, err := stats.MannWhitneyUTest(runs, refRuns, stats.LocationDiffers)
	if errors.Is(err, stats.ErrSamplesEqual) {
		return 1, true
	}
	if err != nil {
		return 0, false // not reached: both samples have runs
	}
	return res.P, true
}
