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
	if verb == DoReading {
		d.at(n, "action: expect: reading makes no socket call, so it has no result to expect")
		return nil
	}
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
		sockopt.WSAEISCONN, sockopt.WSAENOTCONN, sockopt.WSAESHUTDOWN, sockopt.WSAETIMEDOUT, sockopt.WSAECONNREFUSED, sockopt.WSAVERNOTSUPPORTED,
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
	r := &expectReader{d: d, s: s, n: n, f: f, e: Expect{Pos: d.pos(n), Nth: 1}, ok: true}
	for _, k := range expectKinds {
		if v := f[k]; v != nil {
			if r.e.Kind != "" {
				d.at(v, "expect: both %s and %s: one expectation checks one thing; write two", r.e.Kind, k)
				return Expect{}, false
			}
			r.e.Kind, r.kindNode = k, v
		}
	}
	if r.e.Kind == "" {
		d.at(n, "expect: say what to expect: one of %s", strings.Join(expectKinds, ", "))
		return Expect{}, false
	}
	r.where()
	r.which()
	r.when()
	shape := []string{"flags", "seq", "ack", "len", "dropped"}
	r.onlyFor(ExpectSegment, shape...)
	r.onlyFor(ExpectError, "op", "code")
	switch r.e.Kind {
	case ExpectSegment:
		r.segment(shape)
	case ExpectProbes:
		r.probes()
	case ExpectError:
		r.error()
	case ExpectState:
		r.state()
	}
	return r.e, r.ok
}

// expectReader reads one expectation's fields, part by part, into e; ok
// turns false at the first problem, and every problem is reported.
type expectReader struct {
	d        *decoder
	s        *Scenario
	n        *ynode
	f        map[string]*ynode
	kindNode *ynode
	e        Expect
	ok       bool
}

func (r *expectReader) bad(v *ynode, format string, args ...any) {
	r.d.at(v, format, args...)
	r.ok = false
}

// where reads which socket (conn, end) or which host.
func (r *expectReader) where() {
	d, f, e := r.d, r.f, &r.e
	if v := f["conn"]; v != nil {
		name, good := d.str(v, "expect: conn")
		c := d.conns[name]
		switch {
		case !good:
			r.ok = false
		case c == nil && d.declared["connections/"+name]:
			r.ok = false
		case c == nil:
			r.bad(v, "expect: conn: no connection %q", name)
		case c.members() > 1:
			r.bad(v, "expect: conn %s is %d connections (count): an expectation names one socket (a segment expectation on host: %s counts across them)", name, c.members(), c.Client)
		default:
			e.Conn, e.End = name, "client"
			if ev := f["end"]; ev != nil {
				if e.End, good = d.str(ev, "expect: end"); good && e.End != "client" && e.End != "server" {
					r.bad(ev, "expect: end %q: want client or server", e.End)
				}
			}
			e.Host = c.Client
			if e.End == "server" {
				e.Host = c.Server
			}
		}
	} else if v := f["end"]; v != nil {
		r.bad(v, "expect: end needs conn")
	}
	if v := f["host"]; v != nil {
		name, good := d.hostRef(v, "expect: host")
		switch {
		case !good:
			r.ok = false
		case e.Conn != "" && name != e.Host:
			r.bad(v, "expect: host %s is not the host of conn %s's %s end (%s)", name, e.Conn, e.End, e.Host)
		default:
			e.Host = name
		}
	}
	if e.Host == "" && r.ok {
		r.bad(r.n, "expect: name the socket (conn: NAME, and end: server for the accepted one) or the host")
	}
}

// which reads which matching event (nth) or how many (count).
func (r *expectReader) which() {
	d, f, e := r.d, r.f, &r.e
	if v := f["nth"]; v != nil {
		x, good := d.integer(v, "expect: nth", 1, 1<<20)
		e.Nth, r.ok = int(x), r.ok && good
	}
	if v := f["count"]; v != nil {
		x, good := d.integer(v, "expect: count", 0, 1<<30)
		c := int(x)
		e.Count, r.ok = &c, r.ok && good
		if f["nth"] != nil {
			r.bad(v, "expect: count and nth both given: count checks how many, nth which one")
		}
	}
}

// when reads the time (at) or the window (within).
func (r *expectReader) when() {
	d, f, e, dur := r.d, r.f, &r.e, r.s.Duration
	if v := f["at"]; v != nil {
		x, good := d.duration(v, "expect: at", MaxScenarioSpan)
		e.At, r.ok = &x, r.ok && good
		if good && x > dur && dur > 0 {
			r.bad(v, "expect: at %v is after the scenario's duration (%v): it can never be checked", x, dur)
		}
	}
	v := f["within"]
	if v == nil {
		return
	}
	if items := d.list(v, "expect: within", 2); len(items) != 2 {
		r.bad(v, "expect: within: want [FROM, TO], two durations")
	} else {
		from, g1 := d.duration(items[0], "expect: within", MaxScenarioSpan)
		to, g2 := d.duration(items[1], "expect: within", MaxScenarioSpan)
		switch {
		case !g1 || !g2:
			r.ok = false
		case to < from:
			r.bad(v, "expect: within [%v, %v]: the window ends before it starts", from, to)
		case from > dur && dur > 0:
			r.bad(v, "expect: within starts at %v, after the scenario's duration (%v): it can never be checked", from, dur)
		default:
			e.From, e.To = &from, &to
		}
	}
	if f["at"] != nil {
		r.bad(v, "expect: at and within both given: give one")
	}
}

// onlyFor reports keys given to an expectation of another kind.
func (r *expectReader) onlyFor(kind string, keys ...string) {
	for _, k := range keys {
		if v := r.f[k]; v != nil && r.e.Kind != kind {
			r.bad(v, "expect: %s applies to %s expectations, not to %s", k, kind, r.e.Kind)
		}
	}
}

// segment reads a segment expectation: its class and shape.
func (r *expectReader) segment(shape []string) {
	d, f, e := r.d, r.f, &r.e
	class, good := d.str(r.kindNode, "expect: segment")
	if good && !slices.Contains(segmentClasses, class) {
		r.bad(r.kindNode, "expect: segment %q: want a class: %s%s", class, strings.Join(segmentClasses, ", "), suggest(class, segmentClasses))
	}
	e.Class = class
	r.ok = r.ok && good
	if v := f["flags"]; v != nil {
		x, good := d.str(v, "expect: flags")
		e.Flags, r.ok = &x, r.ok && good
	}
	for _, k := range []struct {
		key string
		dst **uint32
	}{{"seq", &e.Seq}, {"ack", &e.Ack}} {
		if v := f[k.key]; v != nil {
			x, good := d.integer(v, "expect: "+k.key, 0, math.MaxUint32)
			u := uint32(x)
			*k.dst, r.ok = &u, r.ok && good
		}
	}
	if v := f["len"]; v != nil {
		x, good := d.integer(v, "expect: len", 0, 1<<16)
		l := int(x)
		e.Len, r.ok = &l, r.ok && good
	}
	if v := f["dropped"]; v != nil {
		x, good := d.boolean(v, "expect: dropped")
		e.Dropped, r.ok = &x, r.ok && good
	}
	if e.Count != nil && len(shapeKeys(f, shape)) > 0 {
		r.bad(r.n, "expect: count with %s: count counts segments of a class; check the shape of one with nth", strings.Join(shapeKeys(f, shape), ", "))
	}
}

// probes reads probes: N, a count of keep-alive probe segments.
func (r *expectReader) probes() {
	x, good := r.d.integer(r.kindNode, "expect: probes", 0, 1<<20)
	c := int(x)
	r.e.Kind, r.e.Class, r.e.Count, r.ok = ExpectSegment, ClassKeepAliveProbe, &c, r.ok && good
	if r.f["count"] != nil || r.f["nth"] != nil || r.f["at"] != nil {
		r.bad(r.n, "expect: probes is a count (probes: 10); use within for a window, or segment: keepalive-probe with nth and at for one probe")
	}
}

// error reads an error expectation: its name, operation and code.
func (r *expectReader) error() {
	d, f, e := r.d, r.f, &r.e
	e.Error, _ = d.str(r.kindNode, "expect: error")
	if e.Error != "none" && !knownError(e.Error) {
		r.bad(r.kindNode, "expect: error %q: want an error name (ETIMEDOUT, WSAENETRESET, ...) or none", e.Error)
	}
	if v := f["op"]; v != nil {
		e.Op, _ = d.str(v, "expect: op")
	}
	if v := f["code"]; v != nil {
		x, good := d.integer(v, "expect: code", 0, 1<<20)
		c := int(x)
		e.Code, r.ok = &c, r.ok && good
	}
	if e.Error == "none" && (e.At != nil || f["nth"] != nil || e.Count != nil) {
		r.bad(r.n, "expect: error: none means no error at all (within a window, if given): at, nth and count do not apply")
	}
}

// state reads a state expectation.
func (r *expectReader) state() {
	e := &r.e
	e.State, _ = r.d.str(r.kindNode, "expect: state")
	if !slices.Contains(stateNames, e.State) {
		r.bad(r.kindNode, "expect: state %q: want one of %s%s", e.State, strings.Join(stateNames, ", "), suggest(e.State, stateNames))
	}
	if e.Conn == "" {
		r.bad(r.n, "expect: state needs conn: the state is a connection's")
	}
	if e.From != nil || e.Count != nil || r.f["nth"] != nil {
		r.bad(r.n, "expect: state is checked at one time (at), or at the end of the run")
	}
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

var segmentClasses = []string{ClassSYN, ClassSYNACK, ClassData, ClassACK, ClassKeepAliveProbe, ClassKeepAliveACK, ClassWindowProbe, ClassRetransmission, ClassFIN, ClassRST}

var stateNames = func() []string {
	var out []string
	for s := stack.Closed; s <= stack.TimeWait; s++ {
		out = append(out, s.String())
	}
	return out
}()
