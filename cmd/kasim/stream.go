package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/term"

	"kasim/sim"
)

// runOutput writes a built-in run's output as the run goes: the timeline
// or the trace to stdout event by event, what --svg draws, and on a
// terminal a progress line on stderr. Nothing of it grows with the run's
// length (Builtin.Events).
type runOutput struct {
	jsonl    *sim.JSONLWriter
	text     *sim.TimelineWriter // nil with --format summary: events are only counted
	svg      *sim.SVGCollector
	progress *runProgress
	events   int64
	// start and wall time the run, for --format summary's events/s.
	start time.Time
	wall  time.Duration
}

// newRunOutput returns the output of a run in format (text or jsonl) to
// stdout, of hosts running profiles (host -> profile name); conns client
// connections, from clientHosts, are counted down in the progress line,
// and svgPath, if set, is where the diagram goes.
func newRunOutput(format, svgPath string, profiles map[string]string, clientHosts []string, conns int, stdout, stderr io.Writer) *runOutput {
	o := &runOutput{progress: newRunProgress(stderr, clientHosts, conns)}
	switch format {
	case "summary":
	case "jsonl":
		o.jsonl = sim.NewJSONLWriter(stdout)
	default:
		hosts := []string{}
		for h := range profiles {
			hosts = append(hosts, h)
		}
		o.text = sim.Timeline{Profiles: profiles}.NewWriter(stdout, hosts)
	}
	if svgPath != "" {
		o.svg = &sim.SVGCollector{}
	}
	return o
}

// event takes the run's next event.
func (o *runOutput) event(e sim.Event) error {
	o.progress.event(e)
	o.events++
	if o.svg != nil {
		o.svg.Add(e)
	}
	switch {
	case o.jsonl != nil:
		return o.jsonl.Event(e)
	case o.text != nil:
		return o.text.Event(e)
	}
	return nil
}

// close ends the streamed output: the rules cited, or the buffered trace.
func (o *runOutput) close() error {
	o.progress.done()
	switch {
	case o.jsonl != nil:
		return o.jsonl.Close()
	case o.text != nil:
		return o.text.Close()
	}
	return nil
}

// runProgress shows a long run's progress on stderr when stderr is a
// terminal (virtual time reached, events, connections alive), and nothing
// otherwise: a pipe or a file gets only the run's messages.
type runProgress struct {
	w            io.Writer // nil: not a terminal
	clients      []string  // the hosts whose connections are counted
	conns, ended int
	events       int64
	start, last  time.Time
	shown        bool
	// segmentsAside: the run counts its segment events without making
	// them (a summary), so the events shown leave them out.
	segmentsAside bool
}

func newRunProgress(stderr io.Writer, clients []string, conns int) *runProgress {
	p := &runProgress{clients: clients, conns: conns}
	if isTerminal(stderr) {
		p.w, p.start, p.last = stderr, time.Now(), time.Now()
	}
	return p
}

// isTerminal reports whether w is a terminal (not a pipe, a file or
// /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressEvery is how many events pass between looks at the wall clock.
const progressEvery = 4096

func (p *runProgress) event(e sim.Event) {
	if p.w == nil {
		return
	}
	p.events++
	if s, ok := e.(*sim.StateEvent); ok && s.To == "CLOSED" && slices.Contains(p.clients, s.Host) {
		p.ended++
	}
	if p.events%progressEvery != 0 {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= time.Second {
		p.last, p.shown = now, true
		alive := ""
		if p.conns > 0 {
			alive = fmt.Sprintf(", %d of %d connections alive", max(p.conns-p.ended, 0), p.conns)
		}
		what := "events"
		if p.segmentsAside {
			what = "events besides segments"
		}
		fmt.Fprintf(p.w, "\r\033[Kkasim run: virtual %s, %d %s%s (%v)", e.Head().T, p.events, what, alive, now.Sub(p.start).Round(time.Second))
	}
}

// done clears the progress line, if one was shown.
func (p *runProgress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
