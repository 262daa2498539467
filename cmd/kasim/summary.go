package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"kasim/sim"
)

// writeRunSummary is --format summary: a run described in numbers instead
// of event by event, for runs too large to read (many connections, long
// durations). The first block is the simulation's and is the same for the
// same flags and version; the last two lines measure this process.
func writeRunSummary(w io.Writer, b sim.Builtin, res *sim.Result, out *runOutput) error {
	t := tallyOf(res)
	probes, answered, gaveUp, failed, alive := t.probes, t.answered, len(t.aborts), t.failed, t.alive
	var detect []time.Duration
	if res.SilencedAt >= 0 {
		for _, at := range t.aborts {
			detect = append(detect, at-res.SilencedAt)
		}
	}
	p := b.Profiles()["client"]
	fmt.Fprintf(w, "kasim %s - built-in scenario, profile %s, seed %d, %d client connection(s)\n", version(), p, b.Seed, len(res.Clients))
	fmt.Fprintf(w, "  keep-alive        idle %v, interval %v, count %d\n", res.Idle, res.Interval, res.Count)
	fmt.Fprintf(w, "  virtual time      %s\n", sim.FormatTime(res.End))
	events := out.events + res.SegmentEvents
	fmt.Fprintf(w, "  events            %d\n", events)
	fmt.Fprintf(w, "  connections       %d gave up by keep-alive, %d failed otherwise, %d open at the end\n", gaveUp, failed, alive)
	fmt.Fprintf(w, "  probes            %d sent, %d answered\n", probes, answered)
	if res.SilencedAt >= 0 {
		fmt.Fprintf(w, "  server silent     from %s\n", sim.FormatTime(res.SilencedAt))
	}
	if len(detect) > 0 {
		slices.Sort(detect)
		q := func(f float64) time.Duration { return detect[int(f*float64(len(detect)-1))].Round(time.Millisecond) }
		fmt.Fprintf(w, "  detection time    min %v, p50 %v, p90 %v, p99 %v, max %v (from the silence to keep-alive giving up)\n",
			q(0), q(0.5), q(0.9), q(0.99), q(1))
	}
	perSec := 0.0
	if out.wall > 0 {
		perSec = float64(events) / out.wall.Seconds()
	}
	fmt.Fprintf(w, "  wall time         %v (%.0f events/s)\n", out.wall.Round(time.Millisecond), perSec)
	if rss, ok := peakRSS(); ok {
		fmt.Fprintf(w, "  peak memory       %.1f MiB resident (this process, getrusage)\n", float64(rss)/(1<<20))
	}
	return nil
}

// tally counts what happened to a run's client connections.
type tally struct {
	probes, answered int
	aborts           []time.Duration // when keep-alive gave up, per connection it gave up on
	failed, alive    int             // the others: failed otherwise, or still open
}

func tallyOf(res *sim.Result) tally {
	var t tally
	for _, o := range res.Clients {
		t.probes += o.ProbeCount
		t.answered += o.Answered
		switch {
		case o.AbortAt >= 0:
			t.aborts = append(t.aborts, o.AbortAt)
		case o.Error != "":
			t.failed++
		default:
			t.alive++
		}
	}
	return t
}
