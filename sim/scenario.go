package sim

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"kasim/profile"
	"kasim/sockopt"
	"kasim/stack"
)

// Limits on a scenario, so that a mistyped file fails with a message
// instead of running the machine out of memory or time.
const (
	MaxScenarioBytes   = 1 << 20
	MaxScenarioHosts   = 16
	MaxScenarioConns   = 1000
	MaxScenarioActions = 10000
	MaxScenarioExpects = 10000
	MaxScenarioSpan    = stack.DefaultHorizon // virtual time
	MaxSendBytes       = 1 << 20              // one send action
)

// Pos is a place in a scenario file.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// ScenarioError is what is wrong with a scenario file, at each place: one
// line per problem, each "file:line:col: what was found and what was
// wanted".
type ScenarioError struct {
	Problems []Problem
}

// Problem is one thing wrong in a scenario file.
type Problem struct {
	Pos Pos
	Msg string
}

func (e *ScenarioError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Pos.String() + ": " + p.Msg
	}
	return strings.Join(lines, "\n")
}

// Scenario is a scenario file, parsed and checked: hosts with their
// profiles, connections between them, timed actions, and the expectations
// a run must meet. docs/scenarios.md is its reference.
type Scenario struct {
	File        string
	Name        string
	Description string
	Seed        uint64
	// Duration is how much virtual time the run covers.
	Duration time.Duration
	// Latency, Loss and Middlebox apply between every pair of hosts from
	// the start (actions change them later).
	Latency   time.Duration
	Loss      float64
	Middlebox time.Duration
	Hosts     []HostSpec
	Conns     []ConnSpec
	Actions   []Action // in time order (stable: file order at equal times)
	Expects   []Expect
}

// HostSpec is one host of a scenario.
type HostSpec struct {
	Pos  Pos
	Name string
	// Profile is a POSIX profile ("linux", "gvisor": POSIX calls with
	// Linux's option numbers, the kernel's keep-alive or gVisor's own;
	// "freebsd", "lwip": each system's numbers and keep-alive) or a Windows
	// profile name (kasim profiles lists them).
	Profile string
	// Resolved is the profile, with Registry and Set applied
	// (profile.Lookup); nil only in a file that did not parse.
	Resolved *profile.Profile
	Registry []string // NAME=VALUE, as kasim run --registry takes them
	Set      []string // KEY=VALUE, as kasim run --set takes them
}

// ConnSpec is a connection a scenario makes: Client connects to Server:Port
// when a connect action says so; Server listens from the start.
type ConnSpec struct {
	Pos            Pos
	Name           string
	Client, Server string
	Port           uint16
}

// Action verbs.
const (
	DoConnect    = "connect"
	DoSetsockopt = "setsockopt"
	DoGetsockopt = "getsockopt"
	DoIoctl      = "ioctl"
	DoSend       = "send"
	DoRecv       = "recv"
	DoClose      = "close"
	DoSilence    = "silence"
	DoHeal       = "heal"
	DoPartition  = "partition"
	DoLoss       = "loss"
	DoLatency    = "latency"
	DoMiddlebox  = "middlebox"
	// DoKeepalive is the portable verb, keepalive: {idle, interval,
	// count}. It never appears in Scenario.Actions: the parser expands it
	// into the calls the host's API makes for it (see keepaliveCalls).
	DoKeepalive = "keepalive"
)

// Action is one timed step of a scenario: a socket call on one end of a
// connection, or a change of the network.
type Action struct {
	Pos Pos
	At  time.Duration
	Do  string // one of the Do constants
	// Conn and End name the socket, for socket actions: End is "client"
	// (the connecting socket) or "server" (the accepted one).
	Conn, End string
	// Socket calls: Level and Opt as numbers for the host's socket API,
	// with their names; Optval and Optlen as passed (ioctl: the input
	// buffer).
	Level, Opt         int
	LevelName, OptName string
	Optval             []byte
	Optlen             int
	Data               []byte // send
	// Network changes: the hosts acted on, and the new setting.
	Hosts     []string
	Direction stack.Direction
	Loss      float64
	Latency   time.Duration
	Idle      time.Duration // middlebox
	// Expect, if set, is what the call must return.
	Expect *CallExpect
	// Note, if set, is recorded in the trace when the action runs: what
	// a keepalive action asked for that the host's API cannot say.
	Note string
}

// CallExpect is a socket call's expected outcome.
type CallExpect struct {
	Pos    Pos
	Result *int   // the return value: 0, -1 (SOCKET_ERROR), a count
	Error  string // the error name (WSAEINVAL, EINVAL), or "none"
	Value  *int64 // getsockopt: the value read back
}

// Expectation kinds.
const (
	ExpectSegment = "segment"
	ExpectProbes  = "probes"
	ExpectError   = "error"
	ExpectState   = "state"
)

// Expect is one expectation of a scenario, checked against the trace.
type Expect struct {
	Pos  Pos
	Kind string // one of the Expect constants
	// Conn and End select a socket; Host a host (for segments, the
	// sender; defaults to the socket's host).
	Conn, End, Host string
	Class           string // segment: the class (ClassSYN, ...)
	Nth             int    // the nth matching event, 1-based
	Count           *int   // instead of one event: how many match
	// At is the exact time; Within a window [From, To]. Neither: any time.
	At       *time.Duration
	From, To *time.Duration
	// Segment shape, where given.
	Flags    *string
	Seq, Ack *uint32
	Len      *int
	Dropped  *bool
	// Error: the name ("none": no error at all), operation and code.
	Error string
	Op    string
	Code  *int
	// State: the RFC 793 name; at At, or at the end of the run.
	State string
}

// LoadScenario reads and parses a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxScenarioBytes+1))
	if err != nil {
		return nil, err
	}
	return ParseScenario(path, data)
}

// ParseScenario parses a scenario from data; file names it in errors. The
// error, if any, is a *ScenarioError listing every problem found.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	return ParseScenarioAs(file, data, nil)
}

// ParseScenarioAs parses a scenario with some hosts' profiles replaced:
// profiles maps a host name to the profile it runs instead of the file's
// (kasim compare). Socket calls are then read for the new profile's API, so
// a call that API lacks is an error at its place in the file.
func ParseScenarioAs(file string, data []byte, profiles map[string]string) (*Scenario, error) {
	d := &decoder{file: file, profiles: profiles}
	if len(data) > MaxScenarioBytes {
		d.problem(1, 1, "file larger than %d bytes: too large for a scenario", MaxScenarioBytes)
		return nil, d.err()
	}
	root, yerr := parseYAML(data)
	if yerr != nil {
		d.problem(yerr.line, yerr.col, "%s", yerr.msg)
		return nil, d.err()
	}
	s := d.scenario(root)
	if err := d.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// maxProblems bounds the problems reported for one file.
const maxProblems = 20

type decoder struct {
	file     string
	problems []Problem
	hosts    map[string]*HostSpec
	conns    map[string]*ConnSpec
	// declared holds every host and connection name the file declares,
	// valid or not, so that a reference to one already reported as
	// invalid adds no second problem.
	declared map[string]bool
	profiles map[string]string // overrides, by host
}

func (d *decoder) problem(line, col int, format string, args ...any) {
	if len(d.problems) < maxProblems {
		d.problems = append(d.problems, Problem{Pos{d.file, line, col}, fmt.Sprintf(format, args...)})
	}
}

func (d *decoder) at(n *ynode, format string, args ...any) { d.problem(n.line, n.col, format, args...) }

func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	sort.SliceStable(d.problems, func(i, j int) bool {
		a, b := d.problems[i].Pos, d.problems[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return &ScenarioError{d.problems}
}

func (d *decoder) pos(n *ynode) Pos { return Pos{d.file, n.line, n.col} }

// fields checks that n is a mapping with only the allowed keys, reporting
// the others, and returns its values by key. what names n in messages.
func (d *decoder) fields(n *ynode, what string, allowed ...string) map[string]*ynode {
	if n.kind != yMap {
		d.at(n, "%s: want a mapping (key: value lines), found %s", what, n.describe())
		return nil
	}
	out := make(map[string]*ynode, len(n.keys))
	for i, k := range n.keys {
		if !slices.Contains(allowed, k.value) {
			d.at(k, "%s: unknown key %q; want one of %s%s", what, k.value, strings.Join(allowed, ", "), suggest(k.value, allowed))
			continue
		}
		out[k.value] = n.vals[i]
	}
	return out
}

// suggest returns ` (did you mean "x"?)` for a near miss.
func suggest(got string, want []string) string {
	if len(got) < 3 {
		return "" // any one-letter name is one edit from any other
	}
	best, bestD := "", 3
	for _, w := range want {
		if dist := editDistance(strings.ToLower(got), strings.ToLower(w)); dist < bestD {
			best, bestD = w, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) str(n *ynode, what string) (string, bool) {
	if n.kind != yScalar || n.tag == "null" {
		d.at(n, "%s: want a name or text, found %s", what, n.describe())
		return "", false
	}
	return n.value, true
}

func (d *decoder) integer(n *ynode, what string, lo, hi int64) (int64, bool) {
	if n.kind != yScalar || n.tag != "int" {
		d.at(n, "%s: want a whole number from %d to %d, found %s", what, lo, hi, n.describe())
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.value, "_", ""), 0, 64)
	if err != nil || v < lo || v > hi {
		d.at(n, "%s: %s is out of range: want %d to %d", what, n.value, lo, hi)
		return 0, false
	}
	return v, true
}

func (d *decoder) float(n *ynode, what string, lo, hi float64) (float64, bool) {
	if n.kind != yScalar || (n.tag != "int" && n.tag != "float") {
		d.at(n, "%s: want a number from %g to %g, found %s", what, lo, hi, n.describe())
		return 0, false
	}
	v, err := strconv.ParseFloat(n.value, 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		d.at(n, "%s: %s is out of range: want %g to %g", what, n.value, lo, hi)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *ynode, what string) (bool, bool) {
	if n.kind != yScalar || n.tag != "bool" {
		d.at(n, "%s: want true or false, found %s", what, n.describe())
		return false, false
	}
	return n.value == "true" || n.value == "True" || n.value == "TRUE", true
}

// duration reads a Go duration (2h, 1500ms, 0) from zero to hi.
func (d *decoder) duration(n *ynode, what string, hi time.Duration) (time.Duration, bool) {
	if n.kind != yScalar || (n.tag != "str" && n.tag != "int") {
		d.at(n, "%s: want a duration such as 2h, 90s or 1500ms, found %s", what, n.describe())
		return 0, false
	}
	if n.tag == "int" && n.value != "0" {
		d.at(n, "%s: %s has no unit: want a duration such as %ss or %sms", what, n.value, n.value, n.value)
		return 0, false
	}
	v, err := time.ParseDuration(n.value)
	switch {
	case err != nil:
		d.at(n, "%s: %q is not a duration: want Go syntax such as 2h, 90s, 1m30s or 1500ms", what, n.value)
		return 0, false
	case v < 0:
		d.at(n, "%s: %v is negative", what, v)
		return 0, false
	case v > hi:
		d.at(n, "%s: %v is longer than the limit, %v", what, v, hi)
		return 0, false
	}
	return v, true
}

func (d *decoder) list(n *ynode, what string, limit int) []*ynode {
	if n.kind != ySeq {
		d.at(n, "%s: want a list (lines starting with -), found %s", what, n.describe())
		return nil
	}
	if len(n.items) > limit {
		d.at(n, "%s: %d entries, more than the limit of %d", what, len(n.items), limit)
		return nil
	}
	return n.items
}

var scenarioKeys = []string{"name", "description", "seed", "duration", "network", "hosts", "connections", "actions", "expect"}

func (d *decoder) scenario(root *ynode) *Scenario {
	f := d.fields(root, "scenario", scenarioKeys...)
	if f == nil {
		return nil
	}
	s := &Scenario{File: d.file, Seed: 1, Latency: DefaultLatency}
	if n := f["name"]; n != nil {
		s.Name, _ = d.str(n, "name")
	}
	if n := f["description"]; n != nil {
		s.Description, _ = d.str(n, "description")
	}
	if n := f["seed"]; n != nil {
		v, _ := d.integer(n, "seed", 0, math.MaxInt64)
		s.Seed = uint64(v)
	}
	if n := f["duration"]; n != nil {
		var ok bool
		if s.Duration, ok = d.duration(n, "duration", MaxScenarioSpan); ok && s.Duration == 0 {
			d.at(n, "duration: want more than 0: how much virtual time the scenario covers, e.g. 3h")
		}
	} else {
		d.at(root, "duration: missing: say how much virtual time the scenario covers, e.g. duration: 3h")
	}
	if n := f["network"]; n != nil {
		nf := d.fields(n, "network", "latency", "loss", "middlebox")
		if v := nf["latency"]; v != nil {
			s.Latency, _ = d.duration(v, "network.latency", time.Minute)
		}
		if v := nf["loss"]; v != nil {
			s.Loss, _ = d.float(v, "network.loss", 0, 0.99)
		}
		if v := nf["middlebox"]; v != nil {
			s.Middlebox, _ = d.duration(v, "network.middlebox", MaxScenarioSpan)
		}
	}
	d.hosts, d.declared = map[string]*HostSpec{}, map[string]bool{}
	for _, key := range []string{"hosts", "connections"} {
		if n := f[key]; n != nil && n.kind == yMap {
			for _, k := range n.keys {
				d.declared[key+"/"+k.value] = true
			}
		}
	}
	if n := f["hosts"]; n != nil {
		s.Hosts = d.hostSpecs(n)
		for i := range s.Hosts {
			d.hosts[s.Hosts[i].Name] = &s.Hosts[i]
		}
	}
	if len(s.Hosts) == 0 && f["hosts"] == nil {
		d.at(root, "hosts: missing: name the hosts, e.g. hosts: {client: {profile: win7}, server: {}}")
	} else if len(s.Hosts) == 0 && len(d.problems) == 0 {
		d.at(f["hosts"], "hosts: empty: a scenario needs at least one host")
	}
	d.conns = map[string]*ConnSpec{}
	if n := f["connections"]; n != nil {
		s.Conns = d.connSpecs(n)
		for i := range s.Conns {
			d.conns[s.Conns[i].Name] = &s.Conns[i]
		}
	}
	if n := f["actions"]; n != nil {
		for _, item := range d.list(n, "actions", MaxScenarioActions) {
			if a, ok := d.action(item, s); ok {
				s.Actions = append(s.Actions, a...)
			}
		}
		sort.SliceStable(s.Actions, func(i, j int) bool { return s.Actions[i].At < s.Actions[j].At })
	}
	if n := f["expect"]; n != nil {
		for _, item := range d.list(n, "expect", MaxScenarioExpects) {
			if e, ok := d.expect(item, s); ok {
				s.Expects = append(s.Expects, e)
			}
		}
	}
	return s
}

// namedEntries checks that n maps names to entries (at most limit of them)
// and returns the indexes of the entries whose names are valid, reporting
// the others. section is the key n stands under, kind what one entry is.
func (d *decoder) namedEntries(n *ynode, section, kind, shape string, limit int) []int {
	if n.kind != yMap {
		d.at(n, "%s: want a mapping of %s names to %s, found %s", section, kind, shape, n.describe())
		return nil
	}
	if len(n.keys) > limit {
		d.at(n, "%s: %d %ss, more than the limit of %d", section, len(n.keys), kind, limit)
		return nil
	}
	var valid []int
	for i, k := range n.keys {
		if !validName(k.value) {
			d.at(k, "%s %q: want a name of letters, digits, - and _ (at most 32)", kind, k.value)
			continue
		}
		valid = append(valid, i)
	}
	return valid
}

func (d *decoder) hostSpecs(n *ynode) []HostSpec {
	var out []HostSpec
	for _, i := range d.namedEntries(n, "hosts", "host", "their settings, e.g. client: {profile: win7}", MaxScenarioHosts) {
		k := n.keys[i]
		h := HostSpec{Pos: d.pos(k), Name: k.value, Profile: "gvisor"}
		v := n.vals[i]
		what := "host " + k.value
		f := map[string]*ynode{}
		if v.kind != yScalar || v.tag != "null" {
			if f = d.fields(v, what, "profile", "registry", "set"); f == nil {
				f = map[string]*ynode{}
			}
		}
		if p := f["profile"]; p != nil {
			h.Profile, _ = d.str(p, what+": profile")
		}
		if p, ok := d.profiles[k.value]; ok {
			h.Profile = p
			if f["profile"] == nil {
				f["profile"] = k // problems with the override point at the host
			}
		}
		h.Registry = d.settings(f["registry"], what+": registry")
		h.Set = d.settings(f["set"], what+": set")
		p, err := profile.Lookup(h.Profile, h.Registry, h.Set)
		var le *profile.LookupError
		switch {
		case err == nil:
			h.Resolved = &p
		case errors.Is(err, profile.ErrNoRegistry):
			d.at(f["registry"], "%s: registry applies to Windows profiles; %s has none (its settings go under set)", what, h.Profile)
		case errors.As(err, &le) && le.Part == "registry":
			d.at(f["registry"], "%s: registry: %v", what, err)
		case errors.As(err, &le) && le.Part == "set":
			d.at(f["set"], "%s: set: %v", what, err)
		default:
			all := profile.Names()
			d.at(f["profile"], "%s: unknown profile %q: want one of %s%s", what, h.Profile, strings.Join(all, ", "), suggest(h.Profile, all))
		}
		out = append(out, h)
	}
	return out
}

// settings reads a mapping of NAME: value into NAME=VALUE strings, in file
// order, for profile.Lookup.
func (d *decoder) settings(n *ynode, what string) []string {
	if n == nil {
		return nil
	}
	if n.kind != yMap {
		d.at(n, "%s: want a mapping of NAME: value, found %s", what, n.describe())
		return nil
	}
	var out []string
	for i, k := range n.keys {
		v := n.vals[i]
		if v.kind != yScalar || v.tag == "null" {
			d.at(v, "%s: %s: want a value, found %s", what, k.value, v.describe())
			continue
		}
		out = append(out, k.value+"="+v.value)
	}
	return out
}

// unknownRef reports a reference to a host or connection the file does not
// declare, listing the valid ones; a name declared but invalid has had its
// own problem reported already.
func (d *decoder) unknownRef(n *ynode, what, section, kind, name string, known []string) {
	if d.declared[section+"/"+name] {
		return
	}
	list := "the file declares no " + kind
	if len(known) > 0 {
		list = "the file's " + kind + "s are " + strings.Join(known, ", ")
	}
	d.at(n, "%s: no %s %q; %s%s", what, kind, name, list, suggest(name, known))
}

func validName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (d *decoder) hostRef(n *ynode, what string) (string, bool) {
	name, ok := d.str(n, what)
	if !ok {
		return "", false
	}
	if d.hosts[name] == nil {
		d.unknownRef(n, what, "hosts", "host", name, slices.Sorted(maps.Keys(d.hosts)))
		return "", false
	}
	return name, true
}

func (d *decoder) connSpecs(n *ynode) []ConnSpec {
	var out []ConnSpec
	for _, i := range d.namedEntries(n, "connections", "connection", "{client: HOST, server: HOST, port: N}", MaxScenarioConns) {
		k := n.keys[i]
		what := "connection " + k.value
		c := ConnSpec{Pos: d.pos(k), Name: k.value, Port: ServerPort}
		f := d.fields(n.vals[i], what, "client", "server", "port")
		if f == nil {
			continue
		}
		ok := true
		for _, end := range []struct {
			key string
			dst *string
		}{{"client", &c.Client}, {"server", &c.Server}} {
			v := f[end.key]
			if v == nil {
				d.at(n.vals[i], "%s: %s: missing: name the host", what, end.key)
				ok = false
				continue
			}
			var good bool
			if *end.dst, good = d.hostRef(v, what+": "+end.key); !good {
				ok = false
			}
		}
		if ok && c.Client == c.Server {
			d.at(n.vals[i], "%s: client and server are both %q: want two different hosts", what, c.Client)
			ok = false
		}
		if v := f["port"]; v != nil {
			p, good := d.integer(v, what+": port", 1, 65535)
			c.Port = uint16(p)
			ok = ok && good
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

var socketVerbs = []string{DoConnect, DoSetsockopt, DoGetsockopt, DoIoctl, DoKeepalive, DoSend, DoRecv, DoClose}
var networkVerbs = []string{DoSilence, DoHeal, DoPartition, DoLoss, DoLatency, DoMiddlebox}

// action reads one action; a keepalive action gives the calls it stands
// for.
func (d *decoder) action(n *ynode, s *Scenario) ([]Action, bool) {
	verbs := append(slices.Clone(socketVerbs), networkVerbs...)
	f := d.fields(n, "action", append([]string{"at", "conn", "end", "expect"}, verbs...)...)
	if f == nil {
		return nil, false
	}
	a := Action{Pos: d.pos(n)}
	ok := true
	if v := f["at"]; v != nil {
		a.At, ok = d.duration(v, "action: at", MaxScenarioSpan)
		if ok && s.Duration > 0 && a.At > s.Duration {
			d.at(v, "action: at %v is after the scenario's duration (%v): it would never run", a.At, s.Duration)
			ok = false
		}
	} else {
		d.at(n, "action: at: missing: say when, e.g. at: 0s")
		ok = false
	}
	var verbNode *ynode
	for _, verb := range verbs {
		if v := f[verb]; v != nil {
			if a.Do != "" {
				d.at(v, "action: both %s and %s: one action does one thing; write two", a.Do, verb)
				return nil, false
			}
			a.Do, verbNode = verb, v
		}
	}
	if a.Do == "" {
		d.at(n, "action: say what to do: one of %s", strings.Join(verbs, ", "))
		return nil, false
	}
	if a.Do == DoKeepalive {
		if e := f["expect"]; e != nil {
			d.at(e, "action: keepalive: expect: a keepalive action makes several calls; to hold one to a result, write the calls out (setsockopt, ioctl)")
			ok = false
		}
		host, good := d.socketRef(n, f, &a, ok)
		if host == nil || !good {
			return nil, false
		}
		return d.keepaliveCalls(verbNode, a, host)
	}
	if slices.Contains(socketVerbs, a.Do) {
		var host *HostSpec
		host, ok = d.socketRef(n, f, &a, ok)
		if host != nil && !d.socketCall(verbNode, &a, host) {
			ok = false
		}
		if e := f["expect"]; e != nil {
			a.Expect = d.callExpect(e, a.Do)
		}
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
	}
	return []Action{a}, ok
}

// keepaliveCalls reads keepalive: {idle, interval, count} and returns the
// calls that turn keep-alive on with those settings in host's API, each an
// action at a's time and place:
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
func (d *decoder) keepaliveCalls(n *ynode, a Action, host *HostSpec) ([]Action, bool) {
	what := "action: keepalive"
	f := d.fields(n, what, "idle", "interval", "count")
	if f == nil {
		return nil, false
	}
	if len(f) == 0 {
		d.at(n, "%s: give idle, interval or count (e.g. {idle: 2s, interval: 1s, count: 3})", what)
		return nil, false
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
	if !ok || host.Resolved == nil {
		return nil, false
	}
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
				unitName(unit), math.MaxInt32)
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
	cn := f["conn"]
	if cn == nil {
		d.at(n, "action: %s: conn: missing: name the connection", a.Do)
		return nil, false
	}
	name, good := d.str(cn, "action: conn")
	if !good {
		return nil, false
	}
	c := d.conns[name]
	if c == nil {
		d.unknownRef(cn, "action: conn", "connections", "connection", name, slices.Sorted(maps.Keys(d.conns)))
		return nil, false
	}
	a.Conn, a.End = name, "client"
	if e := f["end"]; e != nil {
		if a.End, good = d.str(e, "action: end"); good && a.End != "client" && a.End != "server" {
			d.at(e, "action: end: %q: want client (the connecting socket) or server (the accepted one)", a.End)
			return nil, false
		}
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

// unitName names an option's unit in messages.
func unitName(u time.Duration) string {
	if u == time.Millisecond {
		return "milliseconds"
	}
	return "seconds"
}

// socketCall reads the arguments of a socket action for host's API.
func (d *decoder) socketCall(n *ynode, a *Action, host *HostSpec) bool {
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
			a.Data = make([]byte, size)
			for i := range a.Data {
				a.Data[i] = 'a' + byte(i%26)
			}
		default:
			d.at(n, "%s: want text to send, or {bytes: N}, found %s", what, n.describe())
			return false
		}
		if len(a.Data) == 0 || len(a.Data) > MaxSendBytes {
			d.at(n, "%s: want 1 to %d bytes", what, MaxSendBytes)
			return false
		}
		return true
	case DoSetsockopt, DoGetsockopt, DoIoctl:
		if host.Resolved == nil {
			return false // the host's profile is reported as invalid; its API is unknown
		}
	}
	switch a.Do {
	case DoSetsockopt, DoGetsockopt:
		return d.optionCall(n, a, host)
	case DoIoctl:
		return d.ioctl(n, a, host)
	}
	return false
}

func (d *decoder) optionCall(n *ynode, a *Action, host *HostSpec) bool {
	what := "action: " + a.Do
	keys := []string{"level", "opt", "value", "optval", "optlen"}
	if a.Do == DoGetsockopt {
		keys = []string{"level", "opt", "optlen"}
	}
	f := d.fields(n, what, keys...)
	if f == nil {
		return false
	}
	names := host.Resolved.Options()
	levels, opts, units, api := names.Levels(), names.Opts(), names.Unit, host.Resolved.APIName()
	ok := true
	name := func(key string, table map[string]int, dst *int, dstName *string) {
		v := f[key]
		if v == nil {
			d.at(n, "%s: %s: missing", what, key)
			ok = false
			return
		}
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
	a.Optlen = 4
	if a.Do == DoSetsockopt {
		val, raw := f["value"], f["optval"]
		switch {
		case val != nil && raw != nil:
			d.at(raw, "%s: value and optval both given: value is a number (or duration), optval the raw bytes; give one", what)
			return false
		case val != nil:
			x, good := d.optionValue(val, what, a.OptName, units)
			if !good {
				return false
			}
			a.Optval = binary.LittleEndian.AppendUint32(nil, uint32(int32(x)))
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
			d.at(v, "%s: value %v: %s counts whole %s", what, dur, opt, unitName(unit))
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

func (d *decoder) ioctl(n *ynode, a *Action, host *HostSpec) bool {
	what := "action: ioctl"
	if host.Resolved.API != profile.Winsock {
		d.at(n, "%s: WSAIoctl is Winsock; host %s runs %s (POSIX): use setsockopt TCP_KEEPIDLE and TCP_KEEPINTVL", what, host.Name, host.Profile)
		return false
	}
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
	hosts := func(v *ynode, want int) bool {
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
	pair := func(f map[string]*ynode) bool {
		v := f["hosts"]
		if v == nil {
			d.at(n, "%s: hosts: missing: name the two hosts", what)
			return false
		}
		return hosts(v, 2)
	}
	switch a.Do {
	case DoSilence:
		a.Direction = stack.Both
		if n.kind != yMap {
			return hosts(n, 1)
		}
		f := d.fields(n, what, "host", "direction")
		if f == nil {
			return false
		}
		if f["host"] == nil {
			d.at(n, "%s: host: missing", what)
			return false
		}
		if !hosts(f["host"], 1) {
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
	case DoHeal:
		return hosts(n, -2)
	case DoPartition:
		return hosts(n, 2)
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
		return hosts(f["from"], 1) && hosts(f["to"], 1)
	case DoLatency:
		f := d.fields(n, what, "hosts", "latency")
		if f == nil || !pair(f) {
			return false
		}
		if f["latency"] == nil {
			d.at(n, "%s: latency: missing", what)
			return false
		}
		var ok bool
		a.Latency, ok = d.duration(f["latency"], what+": latency", time.Minute)
		return ok
	case DoMiddlebox:
		f := d.fields(n, what, "hosts", "idle")
		if f == nil || !pair(f) {
			return false
		}
		if f["idle"] == nil {
			d.at(n, "%s: idle: missing (flows idle longer are forgotten; 0 removes the box)", what)
			return false
		}
		var ok bool
		a.Idle, ok = d.duration(f["idle"], what+": idle", MaxScenarioSpan)
		return ok
	}
	return false
}

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
