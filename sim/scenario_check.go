package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Failure is an expectation a run did not meet.
type Failure struct {
	Pos  Pos    // the expectation in the scenario file
	What string // the event or call checked, named
	// Diff shows what differed, as go-cmp prints it (-want +got), or
	// explains what is missing.
	Diff string
}

func (f Failure) String() string {
	return fmt.Sprintf("%s: %s\n%s", f.Pos, f.What, indent(strings.TrimRight(f.Diff, "\n")))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// Check returns the expectations of the run's scenario that the run did
// not meet, in file order: inline call expectations, then the expect list.
func (run *ScenarioRun) Check() []Failure {
	var out []Failure
	for i, a := range run.Scenario.Actions {
		if f, failed := run.checkCall(&a, run.Calls[i]); failed {
			out = append(out, f)
		}
	}
	for i := range run.Scenario.Expects {
		if f, failed := run.checkExpect(&run.Scenario.Expects[i]); failed {
			out = append(out, f)
		}
	}
	return out
}

func (run *ScenarioRun) checkCall(a *Action, got CallOutcome) (Failure, bool) {
	e := a.Expect
	if e == nil && got.Ran {
		return Failure{}, false
	}
	what := fmt.Sprintf("%s at %v on %s's %s end", a.Do, a.At, a.Conn, a.End)
	if a.OptName != "" {
		what = fmt.Sprintf("%s %s at %v on %s's %s end", a.Do, a.OptName, a.At, a.Conn, a.End)
	}
	if !got.Ran {
		return Failure{Pos: a.Pos, What: what, Diff: "did not run: " + got.Skipped}, true
	}
	want, have := map[string]string{}, map[string]string{}
	if e.Result != nil {
		want["result"], have["result"] = fmt.Sprint(*e.Result), fmt.Sprint(got.Result)
	}
	if e.Error != "" {
		want["error"], have["error"] = e.Error, orNone(got.Error)
	}
	if e.Value != nil {
		want["value"], have["value"] = fmt.Sprint(*e.Value), fmt.Sprint(got.Value)
	}
	if diff := cmp.Diff(want, have); diff != "" {
		return Failure{Pos: e.Pos, What: what, Diff: diff}, true
	}
	return Failure{}, false
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// fmtAt renders a time exactly, so that a nanosecond's difference shows.
func fmtAt(d time.Duration) string { return d.String() }

func (run *ScenarioRun) checkExpect(e *Expect) (Failure, bool) {
	c := expectCheck{run: run, e: e, known: true}
	if e.Conn != "" {
		c.sock, c.known = run.Sockets[SocketKey(e.Conn, e.End)]
	}
	c.who = e.Host
	if e.Conn != "" {
		c.who = fmt.Sprintf("%s (%s's %s end", e.Host, e.Conn, e.End)
		if c.known {
			c.who += fmt.Sprintf(", sock%d", c.sock)
		}
		c.who += ")"
	}
	if e.From != nil {
		c.window = fmt.Sprintf(" within [%v, %v]", *e.From, *e.To)
	}
	if e.Conn != "" && !c.known {
		if e.Kind == ExpectSegment && e.Count != nil && *e.Count == 0 || e.Kind == ExpectError && e.Error == "none" {
			return Failure{}, false // nothing from a socket never opened
		}
		return c.fail(fmt.Sprintf("%s from %s", e.Kind, c.who), "the socket was never opened: no action touched this end, or it was never accepted")
	}
	switch e.Kind {
	case ExpectSegment:
		return c.segment()
	case ExpectError:
		return c.error()
	case ExpectState:
		return c.state()
	}
	return Failure{}, false
}

// expectCheck is one expectation held against a run: the socket it names
// (sock; known once the run opened it), and how failures name it.
type expectCheck struct {
	run    *ScenarioRun
	e      *Expect
	sock   int
	known  bool
	who    string // "client (c1's client end, sock2)"
	window string // " within [FROM, TO]", if given
}

func (c expectCheck) fail(what, diff string) (Failure, bool) {
	return Failure{Pos: c.e.Pos, What: what, Diff: diff}, true
}

func (c expectCheck) inWindow(t time.Duration) bool {
	return c.e.From == nil || (t >= *c.e.From && t <= *c.e.To)
}

// segment checks a segment expectation: how many, or the nth's shape.
func (c expectCheck) segment() (Failure, bool) {
	run, e, sock, who, window, fail, inWindow := c.run, c.e, c.sock, c.who, c.window, c.fail, c.inWindow
	var matches []*SegmentEvent
	for _, ev := range run.Events {
		s, ok := ev.(*SegmentEvent)
		if ok && s.Host == e.Host && s.Class == e.Class && (e.Conn == "" || s.Conn == sock) && inWindow(time.Duration(s.TNS)) {
			matches = append(matches, s)
		}
	}
	if e.Count != nil {
		what := fmt.Sprintf("number of %s segments sent by %s%s", e.Class, who, window)
		if diff := cmp.Diff(map[string]int{"count": *e.Count}, map[string]int{"count": len(matches)}); diff != "" {
			return fail(what, diff+listTimes(matches))
		}
		return Failure{}, false
	}
	what := fmt.Sprintf("%s %s #%d sent by %s%s", e.Class, "segment", e.Nth, who, window)
	if e.Nth > len(matches) {
		return fail(what, fmt.Sprintf("no such segment: %d %s segment(s) sent%s", len(matches), e.Class, listTimes(matches)))
	}
	s := matches[e.Nth-1]
	want, got := map[string]string{}, map[string]string{}
	if e.At != nil {
		want["at"], got["at"] = fmtAt(*e.At), fmtAt(time.Duration(s.TNS))
	}
	if e.Flags != nil {
		want["flags"], got["flags"] = *e.Flags, s.Flags
	}
	if e.Seq != nil {
		want["seq"], got["seq"] = fmt.Sprint(*e.Seq), fmt.Sprint(s.Seq)
	}
	if e.Ack != nil {
		want["ack"], got["ack"] = fmt.Sprint(*e.Ack), fmt.Sprint(s.Ack)
	}
	if e.Len != nil {
		want["len"], got["len"] = fmt.Sprint(*e.Len), fmt.Sprint(s.Len)
	}
	if e.Dropped != nil {
		want["dropped"], got["dropped"] = fmt.Sprint(*e.Dropped), fmt.Sprint(s.Dropped)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return fail(what, diff)
	}
	return Failure{}, false
}

// error checks an error expectation: none at all, or the nth's name,
// operation, code and time.
func (c expectCheck) error() (Failure, bool) {
	run, e, sock, who, window, fail, inWindow := c.run, c.e, c.sock, c.who, c.window, c.fail, c.inWindow
	var matches []*AppErrorEvent
	for _, ev := range run.Events {
		a, ok := ev.(*AppErrorEvent)
		if ok && a.Host == e.Host && (e.Conn == "" || a.Conn == sock) && (e.Op == "" || a.Op == e.Op) && inWindow(time.Duration(a.TNS)) {
			matches = append(matches, a)
		}
	}
	if e.Error == "none" {
		if len(matches) > 0 {
			m := matches[0]
			return fail(fmt.Sprintf("errors seen by %s%s", who, window),
				cmp.Diff(map[string]string{"error": "none"}, map[string]string{"error": fmt.Sprintf("%s from %s() at %v", m.Error, m.Op, time.Duration(m.TNS))}))
		}
		return Failure{}, false
	}
	what := fmt.Sprintf("error #%d seen by %s%s", e.Nth, who, window)
	if e.Nth > len(matches) {
		return fail(what, fmt.Sprintf("no such error: the application saw %d error(s)%s", len(matches), listErrors(matches)))
	}
	a := matches[e.Nth-1]
	want := map[string]string{"error": e.Error}
	got := map[string]string{"error": a.Error}
	if e.Op != "" {
		want["op"], got["op"] = e.Op, a.Op
	}
	if e.Code != nil {
		want["code"], got["code"] = fmt.Sprint(*e.Code), fmt.Sprint(a.Code)
	}
	if e.At != nil {
		want["at"], got["at"] = fmtAt(*e.At), fmtAt(time.Duration(a.TNS))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return fail(what, diff)
	}
	return Failure{}, false
}

// state checks a connection's state at a time, or at the end of the run.
func (c expectCheck) state() (Failure, bool) {
	run, e, sock, who, fail := c.run, c.e, c.sock, c.who, c.fail
	at := run.End
	if e.At != nil {
		at = *e.At
	}
	state := "CLOSED"
	for _, ev := range run.Events {
		s, ok := ev.(*StateEvent)
		if ok && s.Host == e.Host && s.Conn == sock && time.Duration(s.TNS) <= at {
			state = s.To
		}
	}
	what := fmt.Sprintf("state of %s at %v", who, at)
	if e.At == nil {
		what = fmt.Sprintf("state of %s at the end of the run (%v)", who, at)
	}
	if diff := cmp.Diff(map[string]string{"state": e.State}, map[string]string{"state": state}); diff != "" {
		return fail(what, diff)
	}
	return Failure{}, false
}

func listTimes(segs []*SegmentEvent) string {
	if len(segs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nsent at:")
	for i, s := range segs {
		if i == 10 {
			fmt.Fprintf(&b, " ... (%d more)", len(segs)-10)
			break
		}
		fmt.Fprintf(&b, " %v", time.Duration(s.TNS))
	}
	return b.String()
}

func listErrors(errs []*AppErrorEvent) string {
	var b strings.Builder
	for _, a := range errs {
		fmt.Fprintf(&b, "\n%s from %s() at %v", a.Error, a.Op, time.Duration(a.TNS))
	}
	return b.String()
}
