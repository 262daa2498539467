package sim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"kasim/profile"
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
	// MaxScenarioSendBytes bounds the payload of all a scenario's send
	// actions together: each byte sent becomes segments in the trace,
	// which is kept in memory (about 16 MiB of payload is 11,500 full
	// segments and their acknowledgments).
	MaxScenarioSendBytes = 16 << 20
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
	// UntilEnded stops the run once the client of every connection has
	// seen it end (failed, or closed by the peer), before Duration; with
	// Duration zero the run then goes on until that, or until nothing is
	// left to happen, or the horizon (stack.DefaultHorizon).
	UntilEnded bool
	// Actions are what the run does, in time order (stable: file order at
	// equal times): each action of the file lowered for its host's
	// profile (a keepalive action becomes the calls its API makes).
	Actions []Action
	Expects []Expect

	// written are the actions as the file wrote them, before lowering:
	// option names symbolic, keepalive one action. WithProfiles lowers
	// them again for other profiles.
	written []Action
	scaled  bool // Scaled made it: Actions no longer follow from written
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
	// Sysctl are Linux kernel settings (NAME=VALUE, NAME one of
	// profile.Sysctls): a profile that takes them (linux) gets them as
	// settings, and kasim conform sets them in the kernel's namespace;
	// other profiles have no such setting, and SysctlIgnored lists the
	// ones they leave aside.
	Sysctl, SysctlIgnored []string

	nodes hostNodes // where the file said what, for problems found when binding
}

// hostNodes are the places in the file a host's settings came from.
type hostNodes struct {
	key, profile, registry, set, sysctl *ynode
}

// ConnSpec is a connection a scenario makes: Client connects to Server:Port
// when a connect action says so; Server listens from the start.
type ConnSpec struct {
	Pos            Pos
	Name           string
	Client, Server string
	Port           uint16
	// Count is how many such connections there are (0 or 1: one). Each
	// runs the connection's actions as its own, from its own start: with
	// Spread, an offset drawn from the scenario's seed in [0, Spread),
	// connection by connection; without, 0. A network action triggered by
	// their event (Trigger) runs once, when the last of them has had it.
	// Expectations and socket keys name a connection of one; the members
	// of a larger one are named NAME[1] to NAME[Count].
	Count  int
	Spread time.Duration
	// clients, if set, are the client hosts the members are dealt over,
	// member m on clients[m % len(clients)]: the built-in scenario's
	// connections past one address's ports. Client is the first of them.
	clients []string
}

// members is how many connections c stands for.
func (c *ConnSpec) members() int { return max(c.Count, 1) }

// clientOf names the host member m (0-based) of c connects from.
func (c *ConnSpec) clientOf(m int) string {
	if len(c.clients) == 0 {
		return c.Client
	}
	return c.clients[m%len(c.clients)]
}

// memberName names the m-th (0-based) connection of c.
func (c *ConnSpec) memberName(m int) string {
	if c.members() == 1 {
		return c.Name
	}
	return fmt.Sprintf("%s[%d]", c.Name, m+1)
}

// DropRule is what a drop action loses: segments of one class that one
// end of a connection sends, the Nth to the (Nth+Count-1)th of them from
// the action's time on (for each connection, if Conn is several).
type DropRule struct {
	Conn  string
	From  string // the sending end: "client" or "server"
	Class string // one of DropClasses
	Nth   int
	Count int
}

// DropClasses are the classes of segment a drop rule names, by the
// segment's flags and length, as on the wire: "syn" (SYN without ACK),
// "syn-ack", "ack" (ACK alone: no data, SYN, FIN or RST, and not a
// keep-alive probe), "data" (a payload, and not a probe), "fin", "rst",
// "keepalive-probe". A retransmitted SYN-ACK is a "syn-ack" here, where
// the trace's class says "retransmission".
var DropClasses = []string{ClassSYN, ClassSYNACK, ClassACK, ClassData, ClassFIN, ClassRST, ClassKeepAliveProbe}

// DropClassOf says which of DropClasses a segment is: its flags, payload
// length and whether its sender's stack sent it as a keep-alive probe.
func DropClassOf(flags header.TCPFlags, payload int, probe bool) string {
	switch {
	case flags.Contains(header.TCPFlagRst):
		return ClassRST
	case flags.Contains(header.TCPFlagSyn | header.TCPFlagAck):
		return ClassSYNACK
	case flags.Contains(header.TCPFlagSyn):
		return ClassSYN
	case probe:
		return ClassKeepAliveProbe
	case flags.Contains(header.TCPFlagFin):
		return ClassFIN
	case payload > 0:
		return ClassData
	}
	return ClassACK
}

// Trigger events: what an action can wait for on a socket.
const (
	// OnEstablished: the connection is established (the client's connect
	// completed; the server's end accepted).
	OnEstablished = "established"
	// OnReceived: the end's application has received Trigger.Bytes in
	// all (its receive always pending reads what arrives).
	OnReceived = "received"
	// OnFailed: the end's application has seen its established
	// connection fail (its pending receive got an error); a failed
	// connect is not this.
	OnFailed = "failed"
)

// Trigger is the socket event an action waits for: the action runs At
// after the event, instead of at At from the start.
type Trigger struct {
	Event string // OnEstablished, OnReceived or OnFailed
	Bytes int64  // OnReceived: the total that fires it
	// Conn and End name the socket whose event it is, for a network
	// action; a socket action's trigger is on its own socket.
	Conn, End string
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
	DoDrop       = "drop"
	// DoKeepalive is the portable verb, keepalive: {idle, interval,
	// count}. It never appears in Scenario.Actions: lowering expands it
	// into the calls the host's API makes for it (see lowerKeepalive).
	DoKeepalive = "keepalive"
	// DoReading is reading: true|false: the end's application keeps a
	// receive in progress (the default) or stops reading, so that what
	// arrives stays in the receive buffer and the window closes.
	DoReading = "reading"
	// DoShutdown is shutdown: write|read|both, shutdown(2) (Winsock's
	// shutdown) on the socket.
	DoShutdown = "shutdown"
)

// ShutdownHows are shutdown's directions as a scenario writes them, in
// the order the socket APIs number them (SHUT_RD, SHUT_WR, SHUT_RDWR).
var ShutdownHows = []string{"read", "write", "both"}

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
	Reading            bool   // reading: the value
	How                int    // shutdown: the direction, numbered as in ShutdownHows
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
	// On, if set, is the socket event the action waits for (At is then
	// the delay after it). Actions with a trigger are not in time order.
	On *Trigger
	// Drop is a drop action's rule.
	Drop *DropRule

	w *written // what the file wrote, where lowering depends on the host's API
}

// written is what the file wrote for a socket call whose lowering depends
// on the host's API (setsockopt, getsockopt, ioctl, keepalive): the nodes
// it came from, which lowering reads and places its problems at.
type written struct {
	verb *ynode            // the verb's value
	f    map[string]*ynode // its fields: level, opt, value; idle, interval, count
	// keepalive: the times and count given (count -1: not given).
	times map[string]time.Duration
	count int64
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
	return parseScenario(file, data, func(d *decoder, s *Scenario) { d.bind(s, profiles) })
}

// parseScenario reads a file within its limits, then has bind (if set)
// resolve its hosts; the error lists every problem either found.
func parseScenario(file string, data []byte, bind func(*decoder, *Scenario)) (*Scenario, error) {
	d := &decoder{file: file}
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
	if s != nil && bind != nil {
		bind(d, s)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseScenarioLayout parses a scenario without binding its hosts to
// profiles: its hosts (each with the profile, registry and settings the
// file gives it), connections, network, actions as written and
// expectations. Actions is empty and every host's Resolved nil until
// WithProfiles binds it. It is for a caller that must see the file's hosts
// before it can say which profiles to run them as (kasim conform: the
// client of the one connection is the stack under test); problems are
// those of the file's shape alone.
func ParseScenarioLayout(file string, data []byte) (*Scenario, error) {
	return parseScenario(file, data, nil)
}

// WithProfiles returns a copy of s with some hosts' profiles replaced
// (profiles maps a host name to a profile name, as ParseScenarioAs takes
// it), its actions lowered again for the new profiles' APIs from what the
// file wrote, without reading the file again. A call the new API lacks is
// an error at its place in the file, as with ParseScenarioAs.
func (s *Scenario) WithProfiles(profiles map[string]string) (*Scenario, error) {
	if s.scaled {
		return nil, errors.New("WithProfiles on a scaled scenario would lower the file's unscaled actions: scale after choosing the profiles")
	}
	out := *s
	out.Hosts = slices.Clone(s.Hosts)
	d := &decoder{file: s.File}
	d.bind(&out, profiles)
	if err := d.err(); err != nil {
		return nil, err
	}
	return &out, nil
}

// socketHostOf names the host whose API lowers a: its socket's host; ""
// for a network change.
func (s *Scenario) socketHostOf(a Action) string {
	if a.Conn == "" || s.connSpec(a.Conn) == nil {
		return ""
	}
	return s.socketHost(&a)
}

// bind resolves every host's profile (with overrides) and lowers the
// written actions for them into s.Actions.
func (d *decoder) bind(s *Scenario, overrides map[string]string) {
	hosts := map[string]*HostSpec{}
	for i := range s.Hosts {
		d.bindHost(&s.Hosts[i], overrides)
		hosts[s.Hosts[i].Name] = &s.Hosts[i]
	}
	s.Actions = nil
	for _, a := range s.written {
		if lowered, ok := d.lower(a, hosts[s.socketHostOf(a)]); ok {
			s.Actions = append(s.Actions, lowered...)
		}
	}
}
