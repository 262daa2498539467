package sim

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"kasim/profile"
	"kasim/stack"
)

// Builtin is kasim's built-in scenario: clients connect to a server, a
// little data goes each way, keep-alive is on at the client, and the server
// falls silent (a dead peer) some time after the last data; the run goes on
// until every client gives up. With PeerAlive the server stays up and
// answers every probe.
type Builtin struct {
	// Idle, Interval and Count are the client's keep-alive settings (the
	// defaults: 2h, 1s, 10). With a Windows profile, zero means the
	// system's (registry) value, which the application gets by switching
	// SO_KEEPALIVE on and nothing else; set values go through
	// SIO_KEEPALIVE_VALS and TCP_KEEPCNT.
	Idle     time.Duration
	Interval time.Duration
	Count    int
	// Profile is the client's profile (profile.Lookup): with a Windows
	// one the client speaks Winsock, and its probes, errors and abort
	// follow the version; with a POSIX one it makes POSIX calls in the
	// system's numbers. Nil runs gVisor's own behaviour.
	Profile *profile.Profile
	Seed    uint64        // drives ISNs, ports, loss and start times
	Conns   int           // client connections (default 1)
	Latency time.Duration // one-way latency between the hosts (default 10ms)
	Loss    float64       // probability of losing a packet, each direction
	// PeerAlive keeps the server up; otherwise it falls silent SilenceAfter
	// its last reply.
	PeerAlive    bool
	SilenceAfter time.Duration // default 10s
	// Duration bounds the run; zero means until every client gives up (dead
	// peer) or three idle periods and a minute (live peer).
	Duration time.Duration
	// Timers names the virtual clock's timer queue in the timers
	// registry (timers.Lookup; timers.Register adds one); empty means
	// heap4. Every exact queue (heap4, heap2, wheel) gives the same trace.
	// A per-host queue, "linux", gives each host's stack a queue of its
	// own, a Linux timer wheel at HZ=250 (its timers fire late, as a
	// kernel's do), while the network's delays stay exact.
	// Nondeterministic queues, "runtime" (Go runtime timers) and
	// "faketime" (gVisor's faketime.ManualClock), run the clock on timers
	// kasim does not control, for comparison: timers due at the same
	// instant fire in an order of the implementation's choosing, so
	// traces of runs with many connections can differ from run to run
	// and from the exact queues'. A real-time queue, "runtime", runs no
	// faster than the wall clock: a run takes as long as the virtual time
	// it spans.
	Timers string
	// Events, if set, receives every event of the trace as it is
	// recorded, and Result.Events stays empty: a run's memory then does
	// not grow with its length (streamed output, kasim run). An error
	// stops the run, and RunBuiltin returns it.
	Events func(Event) error
	// RecordTimers, if set, receives every call the run makes to its timer
	// queue, as a timer trace (timers.Recorder) that `kasim bench --replay`
	// runs against any queue. Not with Timers "linux", whose timers live in
	// per-host queues.
	RecordTimers io.Writer
	// CountSegments counts the segment events in Result.SegmentEvents
	// instead of making them: Events sees every other event (for a
	// summary, RunOptions.CountSegments).
	CountSegments bool
}

// Defaults of the built-in scenario: keep-alive as Windows (the seed
// document) does it, 2 h idle, 1 s interval, 10 probes.
const (
	DefaultIdle         = 2 * time.Hour
	DefaultInterval     = time.Second
	DefaultCount        = 10
	DefaultLatency      = 10 * time.Millisecond
	DefaultSilenceAfter = 10 * time.Second
	ServerPort          = 80
	// MaxConns bounds Builtin.Conns.
	MaxConns = 1_000_000
	// ConnsPerClient is how many connections one client host makes at
	// most: the ports of one address, with room. Past it the run has
	// more client hosts (ClientHosts).
	ConnsPerClient = 40_000
)

// connsPerClient is ConnsPerClient, which tests lower.
var connsPerClient = ConnsPerClient

// ClientHosts names the client hosts of a run of conns connections: one,
// "client", up to ConnsPerClient connections, and as many more as the
// count needs past that, "client2" to "clientK", connections dealt to them
// in turn (connection m from host m mod K). The server is always "server".
func ClientHosts(conns int) []string {
	k := max(1, (conns+connsPerClient-1)/connsPerClient)
	hosts := make([]string, k)
	hosts[0] = "client"
	for i := 1; i < k; i++ {
		hosts[i] = fmt.Sprintf("client%d", i+1)
	}
	return hosts
}

// Request and Reply are the data the built-in scenario exchanges.
var (
	Request = []byte("hello from client\n")
	Reply   = []byte("hello from server\n")
)

// DefaultBuiltin returns the built-in scenario with its defaults.
func DefaultBuiltin() Builtin {
	return Builtin{
		Idle: DefaultIdle, Interval: DefaultInterval, Count: DefaultCount, Seed: 1, Conns: 1,
		Latency: DefaultLatency, SilenceAfter: DefaultSilenceAfter, Timers: "heap4",
	}
}

// Validate reports the first setting out of range, naming it.
func (b Builtin) Validate() error {
	const maxDur = 1000 * time.Hour
	p := b.profile()
	if err := p.CheckKeepAlive(b.Idle, b.Interval, b.Count); err != nil {
		return err
	}
	if p.API == profile.Winsock {
		b.Idle, b.Interval, b.Count = b.effective(p)
		if b.Count == 0 {
			b.Count = 1 // the legacy registry's "no probes" is valid
		}
	}
	switch {
	case b.Idle <= 0 || b.Idle > maxDur:
		return fmt.Errorf("idle %v: want more than 0 and at most %v", b.Idle, maxDur)
	case b.Interval <= 0 || b.Interval > maxDur:
		return fmt.Errorf("interval %v: want more than 0 and at most %v", b.Interval, maxDur)
	case b.Count < 1 || b.Count > 255:
		return fmt.Errorf("count %d: want 1 to 255", b.Count)
	case b.Conns < 1 || b.Conns > MaxConns:
		return fmt.Errorf("conns %d: want 1 to %d", b.Conns, MaxConns)
	case b.Latency < 0 || b.Latency > time.Minute:
		return fmt.Errorf("latency %v: want 0 to 1m", b.Latency)
	case !(b.Loss >= 0 && b.Loss < 1):
		return fmt.Errorf("loss %v: want at least 0 and below 1", b.Loss)
	case b.SilenceAfter < 0 || b.SilenceAfter > maxDur:
		return fmt.Errorf("silence-after %v: want 0 to %v", b.SilenceAfter, maxDur)
	case b.Duration < 0 || b.Duration > stack.DefaultHorizon:
		return fmt.Errorf("duration %v: want 0 (automatic) to %v", b.Duration, stack.DefaultHorizon)
	}
	return CheckTimers(b.Timers, b.RecordTimers != nil)
}

// Outcome is what happened to one client connection.
type Outcome struct {
	Conn int
	// Probes is when each probe went out: the first MaxOutcomeProbes;
	// ProbeCount counts them all.
	Probes     []time.Duration
	ProbeCount int
	Answered   int // probes answered
	// LastRecv is when the connection last received a segment before its
	// keep-alive gave up (or before the run ended).
	LastRecv time.Duration
	AbortAt  time.Duration // when keep-alive gave up; -1 if it did not
	Error    string        // the error the application got, if any
	ErrorOp  string        // the call that got it: recv, send, connect
	ErrorAt  time.Duration
	// LaterError is the error of the next call after Error, where the
	// scenario makes one (Windows: WSAECONNRESET after WSAENETRESET).
	LaterError   string
	LaterErrorOp string
	LaterErrorAt time.Duration
	Final        string // the TCP state at the end of the run
}

// Result is a finished run of the built-in scenario.
type Result struct {
	// Idle, Interval and Count are the keep-alive settings the clients
	// had (with a Windows profile, the system's unless the run set them).
	Idle, Interval time.Duration
	Count          int
	Events         []Event
	End            time.Duration // virtual time when the run ended
	SilencedAt     time.Duration // when the server fell silent; -1 if it did not
	Clients        []Outcome     // one per client connection, in socket order
	// TimerHash and TimerFires are the recorded timer trace's fire hash and
	// fire count (with Builtin.RecordTimers).
	TimerHash  uint64
	TimerFires int64
	// SegmentEvents counts the segment events left out (CountSegments).
	SegmentEvents int64
}

// RunBuiltin runs the built-in scenario; extra observers (a PcapWriter, say)
// see the run too. It is a scenario (Builtin.Scenario), run as every
// scenario is.
func RunBuiltin(b Builtin, extra ...stack.Observer) (*Result, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	s, err := b.Scenario()
	if err != nil {
		return nil, err
	}
	track := newOutcomeTracker(ClientHosts(b.Conns)...)
	events := func(e Event) error {
		track.add(e)
		if b.Events == nil {
			return nil
		}
		if err := b.Events(e); err != nil {
			return fmt.Errorf("writing the trace: %w", err)
		}
		return nil
	}
	run, err := RunScenarioWith(s, RunOptions{Events: events, Keep: b.Events == nil, Timers: b.Timers,
		RecordTimers: b.RecordTimers, Observers: extra, CountSegments: b.CountSegments})
	if err != nil {
		return nil, err
	}
	idle, interval, count := b.effective(b.profile())
	return &Result{Idle: idle, Interval: interval, Count: count, Events: run.Events, End: run.End,
		SilencedAt: track.silencedAt, Clients: track.outcomes(), TimerHash: run.TimerHash, TimerFires: run.TimerFires,
		SegmentEvents: run.SegmentEvents}, nil
}

// Scenario returns the built-in scenario as a scenario: the client's
// keep-alive (a keepalive action, lowered for its API as a file's is) and
// connect at each connection's start, the request once connected, the
// server's reply once the request is in, the server falling silent
// SilenceAfter after the last reply, and (Winsock) one more receive and
// closesocket once a connection fails; the run ends when every
// connection has. b must be valid (Validate).
func (b Builtin) Scenario() (*Scenario, error) {
	p := b.profile()
	server := profile.MustLookup("gvisor")
	idle, interval, count := b.effective(p)
	peer := "falls silent " + b.SilenceAfter.String() + " after its last reply"
	if b.PeerAlive {
		peer = "stays up"
	}
	s := &Scenario{
		File: "built-in", Name: "built-in",
		Description: fmt.Sprintf("%d client connection(s) to server:%d, keep-alive idle %v, interval %v, count %d; the server %s",
			b.Conns, ServerPort, idle, interval, count, peer),
		Seed: b.Seed, Latency: b.Latency, Loss: b.Loss, Duration: b.Duration, UntilEnded: true,
		Hosts: []HostSpec{{Name: "client", Profile: p.Name, Resolved: &p}, {Name: "server", Profile: server.Name, Resolved: &server}},
		Conns: []ConnSpec{{Name: "c", Client: "client", Server: "server", Port: ServerPort, Count: b.Conns}},
	}
	if clients := ClientHosts(b.Conns); len(clients) > 1 {
		// After the server, so that its address stays what it is with one.
		for _, h := range clients[1:] {
			s.Hosts = append(s.Hosts, HostSpec{Name: h, Profile: p.Name, Resolved: &p})
		}
		s.Conns[0].clients = clients
		s.Description = strings.Replace(s.Description, "client connection(s)", fmt.Sprintf("client connection(s) from %d hosts", len(clients)), 1)
	}
	if b.Conns > 1 {
		s.Conns[0].Spread = time.Second // so that their timers interleave instead of firing in lockstep
	}
	if b.PeerAlive && b.Duration == 0 {
		s.Duration = 3*idle + time.Minute
	}
	// The keep-alive settings: with Winsock, those the run sets (the
	// system's apply to the rest); with POSIX, all three.
	ka := &written{times: map[string]time.Duration{}, count: -1}
	if p.API != profile.Winsock || b.Idle != 0 {
		ka.times["idle"] = idle
	}
	if p.API != profile.Winsock || b.Interval != 0 {
		ka.times["interval"] = interval
	}
	if p.API != profile.Winsock || b.Count != 0 {
		ka.count = int64(count)
	}
	d := &decoder{file: s.File}
	calls, _ := d.lowerKeepalive(Action{Do: DoKeepalive, Conn: "c", End: "client", w: ka}, &s.Hosts[0])
	if err := d.err(); err != nil {
		return nil, err
	}
	received := &Trigger{Event: OnReceived, Bytes: int64(len(Request)), Conn: "c", End: "server"}
	s.Actions = append(calls,
		Action{Do: DoConnect, Conn: "c", End: "client"},
		Action{Do: DoSend, Conn: "c", End: "client", Data: Request, On: &Trigger{Event: OnEstablished}},
		Action{Do: DoSend, Conn: "c", End: "server", Data: Reply, On: received})
	if !b.PeerAlive {
		s.Actions = append(s.Actions, Action{At: b.SilenceAfter, Do: DoSilence, Hosts: []string{"server"}, Direction: stack.Both, On: received})
	}
	if p.API == profile.Winsock {
		// The next call learns what later calls get; then the socket goes.
		failed := &Trigger{Event: OnFailed}
		s.Actions = append(s.Actions, Action{Do: DoRecv, Conn: "c", End: "client", On: failed},
			Action{Do: DoClose, Conn: "c", End: "client", On: failed})
	}
	return s, nil
}

// MaxOutcomeProbes bounds Outcome.Probes: a connection's first probe
// times (ProbeCount counts them all), so that what a long run keeps per
// connection does not grow with its length.
const MaxOutcomeProbes = 1024

// Outcomes reads from a trace what happened to each connection of host, in
// the order the trace first mentions them: its probes, the answers, when
// keep-alive gave up and the errors the application saw.
func Outcomes(events []Event, host string) []Outcome {
	t := newOutcomeTracker(host)
	for _, e := range events {
		t.add(e)
	}
	return t.outcomes()
}

// outcomeTracker follows a trace as it is recorded and keeps what
// Outcomes reports, for each connection of some hosts, and when the first
// host fell silent.
type outcomeTracker struct {
	hosts      []string
	byConn     map[int]*Outcome
	order      []int
	silencedAt time.Duration
}

func newOutcomeTracker(hosts ...string) *outcomeTracker {
	return &outcomeTracker{hosts: hosts, byConn: map[int]*Outcome{}, silencedAt: -1}
}

func (t *outcomeTracker) get(id int) *Outcome {
	o := t.byConn[id]
	if o == nil {
		o = &Outcome{Conn: id, AbortAt: -1}
		t.byConn[id] = o
		t.order = append(t.order, id)
	}
	return o
}

func (t *outcomeTracker) add(e Event) {
	if l, ok := e.(*LinkEvent); ok && l.Action == "silence" && t.silencedAt < 0 {
		t.silencedAt = time.Duration(l.TNS)
	}
	if !slices.Contains(t.hosts, e.Head().Host) {
		return
	}
	switch e := e.(type) {
	case *SockOptEvent:
		if e.Conn != 0 {
			t.get(e.Conn)
		}
	case *KeepAliveEvent:
		o := t.get(e.Conn)
		switch e.Action {
		case ActionProbe:
			if o.ProbeCount++; len(o.Probes) < MaxOutcomeProbes {
				o.Probes = append(o.Probes, time.Duration(e.TNS))
			}
		case ActionRearm:
			o.Answered += e.Unanswered
		case ActionAbort:
			o.AbortAt = time.Duration(e.TNS)
			o.LastRecv = time.Duration(e.LastRecvNS)
		}
	case *AppErrorEvent:
		o := t.get(e.Conn)
		if o.Error == "" {
			o.Error, o.ErrorOp, o.ErrorAt = e.Error, e.Op, time.Duration(e.TNS)
		} else if o.LaterError == "" {
			o.LaterError, o.LaterErrorOp, o.LaterErrorAt = e.Error, e.Op, time.Duration(e.TNS)
		}
	case *StateEvent:
		t.get(e.Conn).Final = e.To
	}
}

func (t *outcomeTracker) outcomes() []Outcome {
	var out []Outcome
	for _, id := range t.order {
		out = append(out, *t.byConn[id])
	}
	return out
}

// Profiles maps the built-in scenario's hosts to their profiles' names, as
// Timeline.Profiles takes it: the clients (ClientHosts) run the profile if
// one is set, gVisor otherwise; the server always runs gVisor.
func (b Builtin) Profiles() map[string]string {
	m := map[string]string{"server": "gvisor"}
	for _, h := range ClientHosts(b.Conns) {
		m[h] = b.profile().Name
	}
	return m
}

// profile returns the client's profile: gVisor's own unless Profile says.
func (b Builtin) profile() profile.Profile {
	if b.Profile != nil {
		return *b.Profile
	}
	return profile.MustLookup("gvisor")
}

// effective returns the keep-alive settings the client's connections get:
// the run's, or where it set none (zero), the profile's.
func (b Builtin) effective(p profile.Profile) (idle, interval time.Duration, count int) {
	idle, interval, count = b.Idle, b.Interval, b.Count
	if idle == 0 {
		idle = p.Idle
	}
	if interval == 0 {
		interval = p.Interval
	}
	if count == 0 {
		count = p.Count
	}
	return idle, interval, count
}
