package sim

// A scenario's actions: socket calls and network changes, each at a time.

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"kasim/profile"
	"kasim/sockopt"
	"kasim/stack"
)

// sendPattern is the payload of every send: {bytes: N}, its first N bytes:
// "abcd...zabc...".
var sendPattern = func() []byte {
	b := make([]byte, MaxSendBytes)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

var socketVerbs = []string{DoConnect, DoSetsockopt, DoGetsockopt, DoIoctl, DoKeepalive, DoSend, DoRecv, DoClose, DoReading, DoShutdown}
var networkVerbs = []string{DoSilence, DoHeal, DoPartition, DoLoss, DoLatency, DoMiddlebox, DoDrop}

// action reads one action as the file wrote it: option names stay names
// and keepalive one action, until lower turns it into the host's calls.
func (d *decoder) action(n *ynode, s *Scenario) (Action, bool) {
	verbs := append(slices.Clone(socketVerbs), networkVerbs...)
	f := d.fields(n, "action", append([]string{"at", "on", "after", "conn", "end", "expect"}, verbs...)...)
	if f == nil {
		return Action{}, false
	}
	a := Action{Pos: d.pos(n)}
	ok := d.when(n, f, s, &a)
	var verbNode *ynode
	for _, verb := range verbs {
		if v := f[verb]; v != nil {
			if a.Do != "" {
				d.at(v, "action: both %s and %s: one action does one thing; write two", a.Do, verb)
				return Action{}, false
			}
			a.Do, verbNode = verb, v
		}
	}
	if a.Do == "" {
		d.at(n, "action: say what to do: one of %s", strings.Join(verbs, ", "))
		return Action{}, false
	}
	if a.Do == DoKeepalive {
		if e := f["expect"]; e != nil {
			d.at(e, "action: keepalive: expect: a keepalive action makes several calls; to hold one to a result, write the calls out (setsockopt, ioctl)")
			ok = false
		}
		host, good := d.socketRef(n, f, &a, ok)
		if host == nil || !good {
			return Action{}, false
		}
		if !d.trigger(f["on"], &a) {
			return Action{}, false
		}
		return d.keepaliveArgs(verbNode, a)
	}
	if slices.Contains(socketVerbs, a.Do) {
		var host *HostSpec
		host, ok = d.socketRef(n, f, &a, ok)
		if host != nil && !d.socketCall(verbNode, &a) {
			ok = false
		}
		if e := f["expect"]; e != nil {
			a.Expect = d.callExpect(e, a.Do)
			if c := d.conns[a.Conn]; c != nil && c.members() > 1 {
				d.at(e, "action: expect: conn %s is %d connections (count): a call's expectation holds one socket's call", a.Conn, c.members())
				ok = false
			}
		}
		ok = d.trigger(f["on"], &a) && ok
	} else {
		for _, k := range []string{"conn", "end", "expect"} {
			if v := f[k]; v != nil {
				d.at(v, "action: %s applies to socket actions, not to %s", k, a.Do)
				ok = false
			}
		}
		if !d.networkChange(verbNode, &a) {
			ok = false
		}
		ok = d.trigger(f["on"], &a) && ok
	}
	return a, ok
}

// lower turns an action as written into what host's API calls: option
// names into its numbers, times into its units, keepalive into its calls.
// Actions that do not depend on the API pass as they are.
func (d *decoder) lower(a Action, host *HostSpec) ([]Action, bool) {
	if a.w == nil {
		return []Action{a}, true
	}
	if host == nil || host.Resolved == nil {
		return nil, false // the host's profile is reported as invalid; its API is unknown
	}
	switch a.Do {
	case DoKeepalive:
		return d.lowerKeepalive(a, host)
	case DoSetsockopt, DoGetsockopt:
		ok := d.lowerOption(&a, host)
		a.w = nil
		return []Action{a}, ok
	case DoIoctl:
		if host.Resolved.API != profile.Winsock {
			d.at(a.w.verb, "action: ioctl: WSAIoctl is Winsock; host %s runs %s (POSIX): use setsockopt TCP_KEEPIDLE and TCP_KEEPINTVL", host.Name, host.Profile)
			return nil, false
		}
	}
	a.w = nil
	return []Action{a}, true
}

// keepaliveArgs reads keepalive: {idle, interval, count}, as written.
func (d *decoder) keepaliveArgs(n *ynode, a Action) (Action, bool) {
	what := "action: keepalive"
	f := d.fields(n, what, "idle", "interval", "count")
	if f == nil {
		return Action{}, false
	}
	if len(f) == 0 {
		d.at(n, "%s: give idle, interval or count (e.g. {idle: 2s, interval: 1s, count: 3})", what)
		return Action{}, false
	}
	ok := true
	times := map[string]time.Duration{}
	for _, k := range []string{"idle", "interval"} {
		if v := f[k]; v != nil {
			dur, good := d.duration(v, what+": "+k, MaxScenarioSpan)
			if good && dur <= 0 {
				d.at(v, "%s: %s %v: want a positive duration", what, k, dur)
				good = false
			}
			times[k], ok = dur, ok && good
		}
	}
	count := int64(-1)
	if v := f["count"]; v != nil {
		x, good := d.integer(v, what+": count", 1, math.MaxInt32)
		count, ok = x, ok && good
	}
	a.w = &written{verb: n, f: f, times: times, count: count}
	return a, ok
}

// lowerKeepalive returns the calls that turn keep-alive on with a's
// settings in host's API, each an action at a's time and place:
//   - POSIX (linux, gvisor, freebsd, lwip): setsockopt TCP_KEEPIDLE,
//     TCP_KEEPINTVL and TCP_KEEPCNT (those given, in seconds), then
//     SO_KEEPALIVE 1, in the host's dialect's numbers;
//   - Winsock: SO_KEEPALIVE 1, then WSAIoctl SIO_KEEPALIVE_VALS (in
//     milliseconds; the one way every Windows version has, and it takes
//     both times, so a time not given is the profile's own), then
//     TCP_KEEPCNT where the version has it (Windows 10 1703 on). Where it
//     does not, the count cannot be set: the first call carries a Note
//     saying so, and the profile's own count applies.
//
// The order is the one Go's net package uses.
func (d *decoder) lowerKeepalive(a Action, host *HostSpec) ([]Action, bool) {
	what := "action: keepalive"
	f, times, count, ok := a.w.f, a.w.times, a.w.count, true
	a.w = nil // the calls below are lowered
	p := host.Resolved
	word := func(x int64) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(x)) }
	call := func(do, level, opt string, levels, opts map[string]int, optval []byte) Action {
		c := a
		c.Do, c.LevelName, c.OptName, c.Optval, c.Optlen = do, level, opt, optval, len(optval)
		c.Level, c.Opt = levels[level], opts[opt]
		return c
	}
	// inUnit converts a time to the unit host's call takes, refusing what
	// the unit cannot say rather than rounding it.
	inUnit := func(k string, unit time.Duration, call string) int64 {
		dur := times[k]
		if dur%unit != 0 || dur/unit > math.MaxInt32 {
			d.at(f[k], "%s: %s %v: host %s sets it with %s, in whole %s up to %d", what, k, dur, host.Name, call,
				sockopt.UnitName(unit), math.MaxInt32)
			ok = false
		}
		return int64(dur / unit)
	}
	var out []Action
	if p.API == profile.POSIX {
		dl := p.Dialect
		posixLevels, posixOpts := dl.Levels(), dl.Opts()
		for _, o := range []struct{ key, opt string }{{"idle", "TCP_KEEPIDLE"}, {"interval", "TCP_KEEPINTVL"}} {
			if _, given := times[o.key]; given {
				unit, _ := dl.Unit(o.opt)
				out = append(out, call(DoSetsockopt, "IPPROTO_TCP", o.opt, posixLevels, posixOpts, word(inUnit(o.key, unit, o.opt))))
			}
		}
		if count >= 0 {
			out = append(out, call(DoSetsockopt, "IPPROTO_TCP", "TCP_KEEPCNT", posixLevels, posixOpts, word(count)))
		}
		out = append(out, call(DoSetsockopt, "SOL_SOCKET", "SO_KEEPALIVE", posixLevels, posixOpts, word(1)))
		return out, ok
	}
	winLevels, winOpts := sockopt.WinsockOptions.Levels(), sockopt.WinsockOptions.Opts()
	out = append(out, call(DoSetsockopt, "SOL_SOCKET", "SO_KEEPALIVE", winLevels, winOpts, word(1)))
	if len(times) > 0 {
		idle, interval := int64(p.Idle/time.Millisecond), int64(p.Interval/time.Millisecond)
		if _, given := times["idle"]; given {
			idle = inUnit("idle", time.Millisecond, "SIO_KEEPALIVE_VALS")
		}
		if _, given := times["interval"]; given {
			interval = inUnit("interval", time.Millisecond, "SIO_KEEPALIVE_VALS")
		}
		c := a
		c.Do, c.Opt, c.OptName = DoIoctl, int(sockopt.SIO_KEEPALIVE_VALS), "SIO_KEEPALIVE_VALS"
		c.Optval = append(append(word(1), word(idle)...), word(interval)...)
		c.Optlen = len(c.Optval)
		out = append(out, c)
	}
	if count >= 0 {
		if p.Winsock.KeepCnt {
			out = append(out, call(DoSetsockopt, "IPPROTO_TCP", "TCP_KEEPCNT", winLevels, winOpts, word(count)))
		} else {
			out[0].Note = fmt.Sprintf("keepalive count %d: %s has no per-socket probe count (TCP_KEEPCNT came with Windows 10 1703); its own %d probes apply",
				count, p.Title, p.Count)
		}
	}
	return out, ok
}

// socketRef resolves an action's conn and end to the host whose socket it
// is.
func (d *decoder) socketRef(n *ynode, f map[string]*ynode, a *Action, ok bool) (*HostSpec, bool) {
	c, good := d.connRef(n, f["conn"], "action", fmt.Sprintf("action: %s: conn: missing: name the connection", a.Do))
	if !good {
		return nil, false
	}
	a.Conn = c.Name
	if v := f["end"]; v != nil && v.kind == yScalar && v.value == EndListener {
		a.End = EndListener
		if a.Do != DoSetsockopt && a.Do != DoGetsockopt {
			d.at(v, "action: end: listener: the listening socket takes setsockopt and getsockopt, not %s", a.Do)
			return nil, false
		}
		if f["on"] != nil || a.At != 0 {
			d.at(v, "action: end: listener: the listening socket's options are set before it listens, at the start: say at: 0s (gVisor reads its receive buffer when it starts listening)")
			return nil, false
		}
		return d.hosts[c.Server], ok
	}
	if a.End, good = d.endName(f["end"], "action: end", socketEnds); !good {
		return nil, false
	}
	if a.Do == DoConnect && a.End != "client" {
		d.at(n, "action: connect: the server end does not connect; it accepts")
		return nil, false
	}
	host := c.Client
	if a.End == "server" {
		host = c.Server
	}
	return d.hosts[host], ok
}

// socketEnds says what the two ends of a connection are, for a problem
// naming one.
const socketEnds = "want client (the connecting socket), server (the accepted one) or, for setsockopt and getsockopt at 0s, listener (the server's listening socket)"

// EndListener names a connection's listening socket, the server's, as an
// action's end: its options, set at the start before it listens, are the
// ones the connections it accepts start with.
const EndListener = "listener"

// connRef reads the connection v (a conn key of what) names; missing is
// the problem to report when v is absent, at n.
func (d *decoder) connRef(n, v *ynode, what, missing string) (*ConnSpec, bool) {
	if v == nil {
		d.at(n, "%s", missing)
		return nil, false
	}
	name, ok := d.str(v, what+": conn")
	if !ok {
		return nil, false
	}
	c := d.conns[name]
	if c == nil {
		d.unknownRef(v, what+": conn", "connections", "connection", name, slices.Sorted(maps.Keys(d.conns)))
		return nil, false
	}
	return c, true
}

// endName reads an end of a connection, client (the default, v absent)
// or server; want says what they are, for the problem with another.
func (d *decoder) endName(v *ynode, what, want string) (string, bool) {
	if v == nil {
		return "client", true
	}
	end, ok := d.str(v, what)
	if ok && end != "client" && end != "server" {
		d.at(v, "%s: %q: %s", what, end, want)
		return "", false
	}
	return end, ok
}

// socketCall reads the arguments of a socket action, as written.
func (d *decoder) socketCall(n *ynode, a *Action) bool {
	what := "action: " + a.Do
	switch a.Do {
	case DoConnect, DoRecv, DoClose:
		if v, ok := d.boolean(n, what); !ok {
			return false
		} else if !v {
			d.at(n, "%s: false: leave the action out instead", what)
			return false
		}
		return true
	case DoReading:
		v, ok := d.boolean(n, what)
		a.Reading = v
		return ok
	case DoShutdown:
		how, ok := d.str(n, what)
		if !ok {
			return false
		}
		a.How = slices.Index(ShutdownHows, how)
		if a.How < 0 {
			d.at(n, "%s: %q: want write (SHUT_WR, SD_SEND: a FIN), read (SHUT_RD, SD_RECEIVE) or both", what, how)
			return false
		}
		return true
	case DoSend:
		switch {
		case n.kind == yScalar && n.tag == "str":
			a.Data = []byte(n.value)
		case n.kind == yMap:
			f := d.fields(n, what, "bytes")
			v := f["bytes"]
			if v == nil {
				d.at(n, "%s: want text, or {bytes: N}", what)
				return false
			}
			size, ok := d.integer(v, what+": bytes", 1, MaxSendBytes)
			if !ok {
				return false
			}
			a.Data = sendPattern[:size:size] // shared and never written: no copy per action
		default:
			d.at(n, "%s: want text to send, or {bytes: N}, found %s", what, n.describe())
			return false
		}
		if len(a.Data) == 0 || len(a.Data) > MaxSendBytes {
			d.at(n, "%s: want 1 to %d bytes", what, MaxSendBytes)
			return false
		}
		if d.sent += int64(len(a.Data)); d.sent > MaxScenarioSendBytes {
			if !d.sentTooMuch {
				d.sentTooMuch = true
				d.at(n, "%s: the scenario's sends come to %d bytes with this one, past the limit of %d (16 MiB) for a whole scenario", what, d.sent, MaxScenarioSendBytes)
			}
			return false
		}
		return true
	case DoSetsockopt, DoGetsockopt:
		return d.optionArgs(n, a)
	case DoIoctl:
		return d.ioctl(n, a)
	}
	return false
}

// optionArgs reads setsockopt's or getsockopt's arguments as written:
// level and option stay names (or numbers) until lowerOption, and so does
// a value that is a time; the raw optval and optlen are read here.
func (d *decoder) optionArgs(n *ynode, a *Action) bool {
	what := "action: " + a.Do
	keys := []string{"level", "opt", "value", "optval", "optlen"}
	if a.Do == DoGetsockopt {
		keys = []string{"level", "opt", "optlen"}
	}
	f := d.fields(n, what, keys...)
	if f == nil {
		return false
	}
	a.w = &written{verb: n, f: f}
	ok := true
	for _, key := range []string{"level", "opt"} {
		if f[key] == nil {
			d.at(n, "%s: %s: missing", what, key)
			ok = false
		}
	}
	a.Optlen = 4
	if a.Do == DoSetsockopt {
		val, raw := f["value"], f["optval"]
		switch {
		case val != nil && raw != nil:
			d.at(raw, "%s: value and optval both given: value is a number (or duration), optval the raw bytes; give one", what)
			return false
		case val != nil:
			// lowerOption reads it, in the option's unit.
		case raw != nil:
			b, good := d.hexBytes(raw, what+": optval")
			if !good {
				return false
			}
			a.Optval, a.Optlen = b, len(b)
		default:
			d.at(n, "%s: value (or optval, raw bytes in hex): missing", what)
			return false
		}
	} else {
		a.Optval = make([]byte, 4)
	}
	if v := f["optlen"]; v != nil {
		x, good := d.integer(v, what+": optlen", -1, 1024)
		if !good {
			return false
		}
		a.Optlen = int(x)
		if a.Do == DoGetsockopt && a.Optlen > len(a.Optval) {
			a.Optval = make([]byte, a.Optlen)
		}
	}
	return ok
}

// lowerOption gives a setsockopt or getsockopt the numbers of host's API:
// its level and option by name (a number passes as it is), and a value in
// the option's unit.
func (d *decoder) lowerOption(a *Action, host *HostSpec) bool {
	what := "action: " + a.Do
	f := a.w.f
	names := host.Resolved.Options()
	levels, opts, units, api := names.Levels(), names.Opts(), names.Unit, host.Resolved.APIName()
	ok := true
	name := func(key string, table map[string]int, dst *int, dstName *string) {
		v := f[key]
		if v.kind == yScalar && v.tag == "int" {
			x, good := d.integer(v, what+": "+key, math.MinInt32, math.MaxInt32)
			*dst, *dstName = int(x), v.value
			ok = ok && good
			return
		}
		s, good := d.str(v, what+": "+key)
		if !good {
			ok = false
			return
		}
		x, known := table[s]
		if !known {
			names := slices.Sorted(maps.Keys(table))
			d.at(v, "%s: %s %q: %s on host %s knows %s, or a number%s", what, key, s, api, host.Name, strings.Join(names, ", "), suggest(s, names))
			ok = false
			return
		}
		*dst, *dstName = x, s
	}
	name("level", levels, &a.Level, &a.LevelName)
	name("opt", opts, &a.Opt, &a.OptName)
	if !ok {
		return false
	}
	if val := f["value"]; val != nil && a.Do == DoSetsockopt {
		x, good := d.optionValue(val, what, a.OptName, units)
		if !good {
			return false
		}
		a.Optval = binary.LittleEndian.AppendUint32(nil, uint32(int32(x)))
	}
	return true
}

// optionValue reads an option's value: a number in the option's own unit
// (units says which options take a time, and in what), or a duration
// converted to it (TCP_KEEPIDLE: 30s is 30).
func (d *decoder) optionValue(v *ynode, what, opt string, units func(string) (time.Duration, bool)) (int64, bool) {
	if v.kind == yScalar && v.tag == "str" {
		unit, timed := units(opt)
		if !timed {
			d.at(v, "%s: value %q: %s takes a number", what, v.value, opt)
			return 0, false
		}
		dur, ok := d.duration(v, what+": value", MaxScenarioSpan)
		if !ok {
			return 0, false
		}
		if dur%unit != 0 {
			d.at(v, "%s: value %v: %s counts whole %s", what, dur, opt, sockopt.UnitName(unit))
			return 0, false
		}
		if dur/unit > math.MaxInt32 {
			d.at(v, "%s: value %v does not fit the option's 32 bits", what, dur)
			return 0, false
		}
		return int64(dur / unit), true
	}
	if v.kind == yScalar && v.tag == "bool" {
		b, _ := d.boolean(v, what)
		if b {
			return 1, true
		}
		return 0, true
	}
	return d.integer(v, what+": value", math.MinInt32, math.MaxUint32)
}

func (d *decoder) hexBytes(v *ynode, what string) ([]byte, bool) {
	s, ok := d.str(v, what)
	if !ok {
		return nil, false
	}
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == ':' {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) > 1024 {
		d.at(v, "%s: %q: want hex bytes such as \"01 00 00 00\" (at most 1024)", what, s)
		return nil, false
	}
	return b, true
}

// ioctl reads WSAIoctl's arguments; lowering checks the host speaks
// Winsock.
func (d *decoder) ioctl(n *ynode, a *Action) bool {
	what := "action: ioctl"
	a.w = &written{verb: n}
	f := d.fields(n, what, "code", "onoff", "time", "interval", "in", "inlen")
	if f == nil {
		return false
	}
	code := f["code"]
	if code == nil {
		d.at(n, "%s: code: missing (SIO_KEEPALIVE_VALS)", what)
		return false
	}
	if name, ok := d.str(code, what+": code"); !ok {
		return false
	} else if name != "SIO_KEEPALIVE_VALS" {
		d.at(code, "%s: code %q: kasim knows SIO_KEEPALIVE_VALS", what, name)
		return false
	}
	a.Opt, a.OptName = int(sockopt.SIO_KEEPALIVE_VALS), "SIO_KEEPALIVE_VALS"
	if raw := f["in"]; raw != nil {
		for _, k := range []string{"onoff", "time", "interval"} {
			if f[k] != nil {
				d.at(f[k], "%s: %s and in both given: in is the whole raw input buffer", what, k)
				return false
			}
		}
		b, ok := d.hexBytes(raw, what+": in")
		a.Optval = b
		if v := f["inlen"]; v != nil && ok {
			x, good := d.integer(v, what+": inlen", 0, int64(len(b)))
			a.Optval = b[:x]
			ok = good
		}
		return ok
	}
	ok := true
	var vals [3]uint32
	for i, k := range []string{"onoff", "time", "interval"} {
		v := f[k]
		if v == nil {
			d.at(n, "%s: %s: missing (struct tcp_keepalive has onoff, time and interval)", what, k)
			ok = false
			continue
		}
		if i == 0 {
			x, good := d.optionValue(v, what+": onoff", "", func(string) (time.Duration, bool) { return 0, false })
			vals[0], ok = uint32(x), ok && good
			continue
		}
		if v.kind == yScalar && v.tag == "str" {
			dur, good := d.duration(v, what+": "+k, time.Duration(math.MaxUint32)*time.Millisecond)
			if good && dur%time.Millisecond != 0 {
				d.at(v, "%s: %s %v: SIO_KEEPALIVE_VALS counts whole milliseconds", what, k, dur)
				good = false
			}
			vals[i], ok = uint32(dur/time.Millisecond), ok && good
			continue
		}
		x, good := d.integer(v, what+": "+k+" (milliseconds)", 0, math.MaxUint32)
		vals[i], ok = uint32(x), ok && good
	}
	for _, x := range vals {
		a.Optval = binary.LittleEndian.AppendUint32(a.Optval, x)
	}
	return ok
}

func (d *decoder) networkChange(n *ynode, a *Action) bool {
	what := "action: " + a.Do
	pair := func(f map[string]*ynode) bool {
		v := f["hosts"]
		if v == nil {
			d.at(n, "%s: hosts: missing: name the two hosts", what)
			return false
		}
		return d.actionHosts(v, 2, a)
	}
	// pairSetting reads {hosts: [A, B], KEY: DURATION}.
	pairSetting := func(key, hint string, hi time.Duration) (time.Duration, bool) {
		f := d.fields(n, what, "hosts", key)
		if f == nil || !pair(f) {
			return 0, false
		}
		if f[key] == nil {
			d.at(n, "%s: %s: missing%s", what, key, hint)
			return 0, false
		}
		return d.duration(f[key], what+": "+key, hi)
	}
	switch a.Do {
	case DoSilence:
		return d.silence(n, a)
	case DoDrop:
		return d.drop(n, a)
	case DoHeal:
		return d.actionHosts(n, -2, a)
	case DoPartition:
		return d.actionHosts(n, 2, a)
	case DoLoss:
		f := d.fields(n, what, "from", "to", "p")
		if f == nil {
			return false
		}
		for _, k := range []string{"from", "to", "p"} {
			if f[k] == nil {
				d.at(n, "%s: %s: missing (loss: {from: HOST, to: HOST, p: 0.1})", what, k)
				return false
			}
		}
		var ok bool
		if a.Loss, ok = d.float(f["p"], what+": p", 0, 1); !ok {
			return false
		}
		return d.actionHosts(f["from"], 1, a) && d.actionHosts(f["to"], 1, a)
	case DoLatency:
		var ok bool
		a.Latency, ok = pairSetting("latency", "", time.Minute)
		return ok
	case DoMiddlebox:
		var ok bool
		a.Idle, ok = pairSetting("idle", " (flows idle longer are forgotten; 0 removes the box)", MaxScenarioSpan)
		return ok
	}
	return false
}

// actionHosts reads the hosts a network change acts on into a.Hosts: a
// name or a list of them, want of them (a negative want: at most -want).
func (d *decoder) actionHosts(v *ynode, want int, a *Action) bool {
	what := "action: " + a.Do
	var names []*ynode
	switch {
	case v.kind == ySeq:
		names = v.items
	case v.kind == yScalar && v.tag == "str":
		names = []*ynode{v}
	default:
		d.at(v, "%s: want a host name or a list of hosts, found %s", what, v.describe())
		return false
	}
	if want > 0 && len(names) != want || want < 0 && len(names) > -want {
		d.at(v, "%s: %d host(s): want %s", what, len(names), map[int]string{1: "one host", 2: "two hosts", -2: "one host, or two"}[want])
		return false
	}
	for _, h := range names {
		name, ok := d.hostRef(h, what)
		if !ok {
			return false
		}
		a.Hosts = append(a.Hosts, name)
	}
	if len(a.Hosts) == 2 && a.Hosts[0] == a.Hosts[1] {
		d.at(v, "%s: the same host twice", what)
		return false
	}
	return true
}

// silence reads silence: HOST, or {host, direction: in|out|both}.
func (d *decoder) silence(n *ynode, a *Action) bool {
	what := "action: " + a.Do
	a.Direction = stack.Both
	if n.kind != yMap {
		return d.actionHosts(n, 1, a)
	}
	f := d.fields(n, what, "host", "direction")
	if f == nil {
		return false
	}
	if f["host"] == nil {
		d.at(n, "%s: host: missing", what)
		return false
	}
	if !d.actionHosts(f["host"], 1, a) {
		return false
	}
	if v := f["direction"]; v != nil {
		dir, ok := d.str(v, what+": direction")
		if !ok {
			return false
		}
		switch dir {
		case "in":
			a.Direction = stack.Inbound
		case "out":
			a.Direction = stack.Outbound
		case "both":
		default:
			d.at(v, "%s: direction %q: want in, out or both", what, dir)
			return false
		}
	}
	return true
}

// drop reads drop: {conn, from, segment, nth, count}: which segments of a
// connection the network loses.
func (d *decoder) drop(n *ynode, a *Action) bool {
	what := "action: drop"
	f := d.fields(n, what, "conn", "from", "segment", "nth", "count")
	if f == nil {
		return false
	}
	r := &DropRule{Nth: 1, Count: 1}
	c, ok := d.connRef(n, f["conn"], what, what+": conn: missing: name the connection whose segments are lost")
	if !ok {
		return false
	}
	r.Conn = c.Name
	if r.From, ok = d.endName(f["from"], what+": from", "want client or server (the end that sends the segments)"); !ok {
		return false
	}
	v := f["segment"]
	if v == nil {
		d.at(n, "%s: segment: missing: say which, one of %s", what, strings.Join(DropClasses, ", "))
		return false
	}
	if r.Class, ok = d.str(v, what+": segment"); ok && !slices.Contains(DropClasses, r.Class) {
		d.at(v, "%s: segment %q: want one of %s%s", what, r.Class, strings.Join(DropClasses, ", "), suggest(r.Class, DropClasses))
		return false
	}
	for _, k := range []struct {
		key string
		dst *int
	}{{"nth", &r.Nth}, {"count", &r.Count}} {
		if v := f[k.key]; v != nil {
			x, good := d.integer(v, what+": "+k.key, 1, math.MaxInt32)
			*k.dst, ok = int(x), ok && good
		}
	}
	a.Drop = r
	return ok
}
