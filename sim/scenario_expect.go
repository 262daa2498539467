package sim

// A scenario's expectations: segments, probes, errors and states the
// trace must show, and the outcomes its calls must have.

import (
	"math"
	"slices"
	"strings"

	"kasim/sockopt"
	"kasim/stack"
)

func (d *decoder) callExpect(n *ynode, verb string) *CallExpect {
	f := d.fields(n, "action: expect", "result", "error", "value")
	if f == nil {
		return nil
	}
	e := &CallExpect{Pos: d.pos(n)}
	if v := f["result"]; v != nil {
		if v.kind == yScalar && v.tag == "str" && (v.value == "SOCKET_ERROR" || v.value == "INVALID_SOCKET") {
			r := -1
			e.Result = &r
		} else if x, ok := d.integer(v, "action: expect: result", -1, math.MaxInt32); ok {
			r := int(x)
			e.Result = &r
		}
	}
	if v := f["error"]; v != nil {
		e.Error, _ = d.str(v, "action: expect: error")
		if e.Error != "none" && !knownError(e.Error) {
			d.at(v, "action: expect: error %q: not an error kasim's socket APIs return (e.g. WSAEINVAL, WSAENOPROTOOPT, EINVAL, or none)", e.Error)
		}
	}
	if v := f["value"]; v != nil {
		if verb != DoGetsockopt {
			d.at(v, "action: expect: value is what getsockopt reads back; %s reads nothing", verb)
		} else if x, ok := d.integer(v, "action: expect: value", math.MinInt32, math.MaxUint32); ok {
			e.Value = &x
		}
	}
	if e.Result == nil && e.Error == "" && e.Value == nil {
		d.at(n, "action: expect: want result, error or value")
	}
	return e
}

// knownErrors are the error names a scenario may expect: every error the
// socket APIs and the stack return.
var knownErrors = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range []sockopt.ErrorCode{sockopt.EBADF, sockopt.EFAULT, sockopt.EINVAL, sockopt.ENOPROTOOPT, sockopt.EPROTONOSUPPORT,
		sockopt.ESOCKTNOSUPPORT, sockopt.EAFNOSUPPORT, sockopt.EINPROGRESS,
		sockopt.WSAEFAULT, sockopt.WSAEINVAL, sockopt.WSAEWOULDBLOCK, sockopt.WSAEINPROGRESS, sockopt.WSAENOTSOCK,
		sockopt.WSAENOPROTOOPT, sockopt.WSAEPROTONOSUPPORT, sockopt.WSAESOCKTNOSUPPORT, sockopt.WSAEOPNOTSUPP,
		sockopt.WSAEAFNOSUPPORT, sockopt.WSAENETDOWN, sockopt.WSAENETRESET, sockopt.WSAECONNABORTED, sockopt.WSAECONNRESET,
		sockopt.WSAEISCONN, sockopt.WSAENOTCONN, sockopt.WSAETIMEDOUT, sockopt.WSAECONNREFUSED, sockopt.WSAVERNOTSUPPORTED,
		sockopt.WSANOTINITIALISED, sockopt.WSAIOPENDING} {
		m[e.Name] = true
	}
	for _, name := range []string{"ETIMEDOUT", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ENOTCONN", "EPIPE", "EAGAIN", "EHOSTUNREACH", "ENETUNREACH"} {
		m[name] = true
	}
	return m
}()

func knownError(name string) bool { return knownErrors[name] }

var expectKinds = []string{ExpectSegment, ExpectProbes, ExpectError, ExpectState}

func (d *decoder) expect(n *ynode, s *Scenario) (Expect, bool) {
	f := d.fields(n, "expect", "segment", "probes", "error", "state",
		"conn", "end", "host", "nth", "count", "at", "within", "flags", "seq", "ack", "len", "dropped", "op", "code")
	if f == nil {
		return Expect{}, false
	}
	e := Expect{Pos: d.pos(n), Nth: 1}
	var kindNode *ynode
	for _, k := range expectKinds {
		if v := f[k]; v != nil {
			if e.Kind != "" {
				d.at(v, "expect: both %s and %s: one expectation checks one thing; write two", e.Kind, k)
				return Expect{}, false
			}
			e.Kind, kindNode = k, v
		}
	}
	if e.Kind == "" {
		d.at(n, "expect: say what to expect: one of %s", strings.Join(expectKinds, ", "))
		return Expect{}, false
	}
	ok := true
	bad := func(v *ynode, format string, args ...any) {
		d.at(v, format, args...)
		ok = false
	}
	// Which socket, or which host.
	if v := f["conn"]; v != nil {
		name, good := d.str(v, "expect: conn")
		c := d.conns[name]
		switch {
		case !good:
			ok = false
		case c == nil && d.declared["connections/"+name]:
			ok = false
		case c == nil:
			bad(v, "expect: conn: no connection %q", name)
		default:
			e.Conn, e.End = name, "client"
			if ev := f["end"]; ev != nil {
				if e.End, good = d.str(ev, "expect: end"); good && e.End != "client" && e.End != "server" {
					bad(ev, "expect: end %q: want client or server", e.End)
				}
			}
			e.Host = c.Client
			if e.End == "server" {
				e.Host = c.Server
			}
		}
	} else if v := f["end"]; v != nil {
		bad(v, "expect: end needs conn")
	}
	if v := f["host"]; v != nil {
		name, good := d.hostRef(v, "expect: host")
		switch {
		case !good:
			ok = false
		case e.Conn != "" && name != e.Host:
			bad(v, "expect: host %s is not the host of conn %s's %s end (%s)", name, e.Conn, e.End, e.Host)
		default:
			e.Host = name
		}
	}
	if e.Host == "" && ok {
		bad(n, "expect: name the socket (conn: NAME, and end: server for the accepted one) or the host")
	}
	if v := f["nth"]; v != nil {
		x, good := d.integer(v, "expect: nth", 1, 1<<20)
		e.Nth, ok = int(x), ok && good
	}
	if v := f["count"]; v != nil {
		x, good := d.integer(v, "expect: count", 0, 1<<30)
		c := int(x)
		e.Count, ok = &c, ok && good
		if f["nth"] != nil {
			bad(v, "expect: count and nth both given: count checks how many, nth which one")
		}
	}
	if v := f["at"]; v != nil {
		x, good := d.duration(v, "expect: at", MaxScenarioSpan)
		e.At, ok = &x, ok && good
		if good && x > s.Duration && s.Duration > 0 {
			bad(v, "expect: at %v is after the scenario's duration (%v): it can never be checked", x, s.Duration)
		}
	}
	if v := f["within"]; v != nil {
		if items := d.list(v, "expect: within", 2); len(items) != 2 {
			bad(v, "expect: within: want [FROM, TO], two durations")
		} else {
			from, g1 := d.duration(items[0], "expect: within", MaxScenarioSpan)
			to, g2 := d.duration(items[1], "expect: within", MaxScenarioSpan)
			switch {
			case !g1 || !g2:
				ok = false
			case to < from:
				bad(v, "expect: within [%v, %v]: the window ends before it starts", from, to)
			case from > s.Duration && s.Duration > 0:
				bad(v, "expect: within starts at %v, after the scenario's duration (%v): it can never be checked", from, s.Duration)
			default:
				e.From, e.To = &from, &to
			}
		}
		if f["at"] != nil {
			bad(v, "expect: at and within both given: give one")
		}
	}
	shape := []string{"flags", "seq", "ack", "len", "dropped"}
	onlyFor := func(kind string, keys ...string) {
		for _, k := range keys {
			if v := f[k]; v != nil && e.Kind != kind {
				bad(v, "expect: %s applies to %s expectations, not to %s", k, kind, e.Kind)
			}
		}
	}
	onlyFor(ExpectSegment, shape...)
	onlyFor(ExpectError, "op", "code")
	switch e.Kind {
	case ExpectSegment:
		class, good := d.str(kindNode, "expect: segment")
		if good && !slices.Contains(segmentClasses, class) {
			bad(kindNode, "expect: segment %q: want a class: %s%s", class, strings.Join(segmentClasses, ", "), suggest(class, segmentClasses))
		}
		e.Class = class
		ok = ok && good
		if v := f["flags"]; v != nil {
			x, good := d.str(v, "expect: flags")
			e.Flags, ok = &x, ok && good
		}
		for _, k := range []struct {
			key string
			dst **uint32
		}{{"seq", &e.Seq}, {"ack", &e.Ack}} {
			if v := f[k.key]; v != nil {
				x, good := d.integer(v, "expect: "+k.key, 0, math.MaxUint32)
				u := uint32(x)
				*k.dst, ok = &u, ok && good
			}
		}
		if v := f["len"]; v != nil {
			x, good := d.integer(v, "expect: len", 0, 1<<16)
			l := int(x)
			e.Len, ok = &l, ok && good
		}
		if v := f["dropped"]; v != nil {
			x, good := d.boolean(v, "expect: dropped")
			e.Dropped, ok = &x, ok && good
		}
		if e.Count != nil && len(shapeKeys(f, shape)) > 0 {
			bad(n, "expect: count with %s: count counts segments of a class; check the shape of one with nth", strings.Join(shapeKeys(f, shape), ", "))
		}
	case ExpectProbes:
		x, good := d.integer(kindNode, "expect: probes", 0, 1<<20)
		c := int(x)
		e.Kind, e.Class, e.Count, ok = ExpectSegment, ClassKeepAliveProbe, &c, ok && good
		if f["count"] != nil || f["nth"] != nil || f["at"] != nil {
			bad(n, "expect: probes is a count (probes: 10); use within for a window, or segment: keepalive-probe with nth and at for one probe")
		}
	case ExpectError:
		e.Error, _ = d.str(kindNode, "expect: error")
		if e.Error != "none" && !knownError(e.Error) {
			bad(kindNode, "expect: error %q: want an error name (ETIMEDOUT, WSAENETRESET, ...) or none", e.Error)
		}
		if v := f["op"]; v != nil {
			e.Op, _ = d.str(v, "expect: op")
		}
		if v := f["code"]; v != nil {
			x, good := d.integer(v, "expect: code", 0, 1<<20)
			c := int(x)
			e.Code, ok = &c, ok && good
		}
		if e.Error == "none" && (e.At != nil || f["nth"] != nil || e.Count != nil) {
			bad(n, "expect: error: none means no error at all (within a window, if given): at, nth and count do not apply")
		}
	case ExpectState:
		e.State, _ = d.str(kindNode, "expect: state")
		if !slices.Contains(stateNames, e.State) {
			bad(kindNode, "expect: state %q: want one of %s%s", e.State, strings.Join(stateNames, ", "), suggest(e.State, stateNames))
		}
		if e.Conn == "" {
			bad(n, "expect: state needs conn: the state is a connection's")
		}
		if e.From != nil || e.Count != nil || f["nth"] != nil {
			bad(n, "expect: state is checked at one time (at), or at the end of the run")
		}
	}
	return e, ok
}

func shapeKeys(f map[string]*ynode, keys []string) []string {
	var out []string
	for _, k := range keys {
		if f[k] != nil {
			out = append(out, k)
		}
	}
	return out
}

var segmentClasses = []string{ClassSYN, ClassSYNACK, ClassData, ClassACK, ClassKeepAliveProbe, ClassKeepAliveACK, ClassRetransmission, ClassFIN, ClassRST}

var stateNames = func() []string {
	var out []string
	for s := stack.Closed; s <= stack.TimeWait; s++ {
		out = append(out, s.String())
	}
	return out
}()
