package sim

// When a scenario's action runs: at a time, or on a socket's event.

import (
	"fmt"
	"math"
)

// when reads when an action runs: at a time from the start (at), or on a
// socket event (on, read later by trigger) and a delay after it (after).
func (d *decoder) when(n *ynode, f map[string]*ynode, s *Scenario, a *Action) bool {
	at, on, after := f["at"], f["on"], f["after"]
	switch {
	case on != nil && at != nil:
		d.at(at, "action: at: with on, the action runs after its event: say after: DELAY (or nothing, for at once)")
		return false
	case on != nil && after != nil:
		var ok bool
		a.At, ok = d.duration(after, "action: after", MaxScenarioSpan)
		return ok
	case on != nil:
		return true
	case after != nil:
		d.at(after, "action: after: the delay after an event (on:); say when with at")
		return false
	case at == nil:
		d.at(n, "action: at: missing: say when, e.g. at: 0s (or on: EVENT)")
		return false
	}
	var ok bool
	a.At, ok = d.duration(at, "action: at", MaxScenarioSpan)
	if ok && s.Duration > 0 && a.At > s.Duration {
		d.at(at, "action: at %v is after the scenario's duration (%v): it would never run", a.At, s.Duration)
		ok = false
	}
	return ok
}

// trigger reads an action's on (n, if set): established or failed, or
// {received: N}, on the action's own socket; a network action names the
// socket too, {event: EVENT, conn: C, end: E}, or {received: N, conn: C,
// end: E}.
func (d *decoder) trigger(n *ynode, a *Action) bool {
	if n == nil {
		return true
	}
	what := "action: on"
	if a.Do == DoConnect {
		d.at(n, "%s: a connect starts its connection; it waits for no event of it (say at:)", what)
		return false
	}
	t := &Trigger{}
	want := "established, failed, or {received: N}"
	if a.Conn == "" {
		want = "{event: established|failed, conn: C} or {received: N, conn: C} (and end: server for the accepted socket)"
	}
	if n.kind != yMap {
		ev, ok := d.str(n, what)
		if !ok {
			return false
		}
		if ev != OnEstablished && ev != OnFailed || a.Conn == "" {
			d.at(n, "%s: %q: want %s", what, ev, want)
			return false
		}
		t.Event, a.On = ev, t
		return true
	}
	f := d.fields(n, what, "event", "received", "conn", "end")
	if f == nil {
		return false
	}
	ok := true
	if v := f["received"]; v != nil {
		t.Event = OnReceived
		t.Bytes, ok = d.integer(v, what+": received", 1, math.MaxInt64)
		if f["event"] != nil {
			d.at(f["event"], "%s: event: received: N is the event; leave event out", what)
			ok = false
		}
	} else if v := f["event"]; v != nil {
		ev, good := d.str(v, what+": event")
		switch {
		case !good:
			ok = false
		case ev == OnReceived:
			d.at(v, "%s: event: received: say how many bytes, {received: N}", what)
			ok = false
		case ev != OnEstablished && ev != OnFailed:
			d.at(v, "%s: event %q: want established or failed (or {received: N})", what, ev)
			ok = false
		}
		t.Event = ev
	} else {
		d.at(n, "%s: want %s", what, want)
		return false
	}
	return d.triggerSocket(n, f, a, t) && ok
}

// triggerSocket reads whose event a trigger is: a network action's names
// the socket (conn, end); a socket action's is its own.
func (d *decoder) triggerSocket(n *ynode, f map[string]*ynode, a *Action, t *Trigger) bool {
	what := "action: on"
	if a.Conn != "" {
		for _, k := range []string{"conn", "end"} {
			if v := f[k]; v != nil {
				d.at(v, "%s: %s: a socket action waits for an event of its own socket; leave %s out", what, k, k)
				return false
			}
		}
		a.On = t
		return true
	}
	c, ok := d.connRef(n, f["conn"], what, fmt.Sprintf("%s: conn: missing: name the connection whose event %s waits for", what, a.Do))
	if !ok {
		return false
	}
	t.Conn = c.Name
	if t.End, ok = d.endName(f["end"], what+": end", socketEnds); !ok {
		return false
	}
	a.On = t
	return true
}
