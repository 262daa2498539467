package sim

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"kasim/internal/echo"
	"kasim/profile"
	"kasim/sockopt"
	"kasim/stack"
	"kasim/timers"
)

// ScenarioRun is a finished run of a scenario: its trace, and what each
// socket call returned, for Check.
type ScenarioRun struct {
	Scenario *Scenario
	Events   []Event
	End      time.Duration
	// Sockets maps SocketKey(conn, end) to the socket's id in the trace
	// (the conn field of its events); ends never opened are missing.
	Sockets map[string]int
	// Calls holds the outcome of each of Scenario.Actions, by index (of
	// an action on a connection of several, the last one's).
	Calls []CallOutcome

	// TimerHash and TimerFires are the recorded timer trace's fire hash
	// and fire count (RunOptions.RecordTimers).
	TimerHash  uint64
	TimerFires int64
	// SegmentEvents counts the segment events left out of the trace
	// (RunOptions.CountSegments).
	SegmentEvents int64
}

// SocketKey names one end ("client" or "server") of a scenario
// connection, as ScenarioRun.Sockets keys it: "c1/client".
func SocketKey(conn, end string) string { return conn + "/" + end }

// CallOutcome is what one action did.
type CallOutcome struct {
	Ran     bool
	Skipped string // why the action could not run, if it did not
	Result  int    // the call's return value
	Error   string // the error name, "" for none
	Code    int
	Value   int64 // getsockopt: the value read back
}

// simHost is a scenario host as the run drives it: its stack, and the
// socket API its applications call.
type simHost struct {
	spec *HostSpec
	h    *stack.Host
	ws   *sockopt.Winsock // Windows profiles
	px   *sockopt.POSIX   // POSIX profiles
}

type scenarioRunner struct {
	s        *Scenario
	cfg      RunOptions
	events   int64 // recorded so far
	sinkErr  error // the stream failed, or the kept trace reached its ceiling
	net      *stack.Network
	rec      *Recorder
	timerRec *timers.Recorder
	closers  []interface{ Close() } // what the queues started
	hosts    map[string]*simHost
	ends     map[string]*sockEnd // by SocketKey of the member's name
	run      *ScenarioRun
	buf      []byte
	apps
}

// RunOptions are how RunScenarioWith carries a run out, beside what its
// scenario says.
type RunOptions struct {
	// Events, if set, sees each event as it is recorded; an error from it
	// stops the run, and the run returns it.
	Events func(Event) error
	// Keep keeps the trace in ScenarioRun.Events, up to MaxScenarioEvents:
	// past that the run stops with an error.
	Keep bool
	// Timers names the clock's timer queue (timers.Lookup; "" is heap4):
	// every exact queue gives the same trace; a per-host one ("linux")
	// gives each host's stack a queue of its own.
	Timers string
	// RecordTimers, if set, receives every call the run makes to its
	// timer queue, as a timer trace (timers.Recorder) that `kasim bench
	// --replay` runs; it needs one exact queue (CheckTimers).
	RecordTimers io.Writer
	// Observers see the run too (a PcapWriter, say).
	Observers []stack.Observer
	// CountSegments counts the trace's segment events in
	// ScenarioRun.SegmentEvents instead of making them (Events never sees
	// one): for a summary of a large run, which needs the other events
	// only (Recorder.CountSegments).
	CountSegments bool
}

// exactQueues names the registered exact queues, as "a, b or c".
func exactQueues() string {
	var names []string
	for _, s := range timers.Specs() {
		if s.Exact {
			names = append(names, s.Name)
		}
	}
	return echo.OrList(names)
}

// CheckTimers reports whether queue (a timers.Lookup name; "" is heap4)
// can run a scenario, and be recorded if recording.
func CheckTimers(queue string, recording bool) error {
	if queue == "" {
		return nil
	}
	q, ok := timers.Lookup(queue)
	switch {
	case !ok:
		return fmt.Errorf("timers %q: want %s", queue, echo.OrList(timers.Names()))
	case !recording || q.Exact && !q.PerHost:
		return nil
	case q.PerHost:
		return fmt.Errorf("recording timers needs one exact queue (%s), not %s's per-host queues", exactQueues(), queue)
	case q.Nondeterministic:
		return fmt.Errorf("recording timers needs one exact queue (%s): %s fires equal deadlines in no fixed order, so its trace would not replay", exactQueues(), queue)
	}
	return fmt.Errorf("recording timers needs one exact queue (%s): %s does not fire every timer at its deadline, so its trace would not replay", exactQueues(), queue)
}

// MaxScenarioEvents bounds the trace a scenario run keeps in memory for
// its expectations (RunScenario): about 300 MB of events. A run that would
// record more stops there with an error; RunScenarioStreaming keeps none
// and has no ceiling.
const MaxScenarioEvents = 1 << 20

// maxScenarioEvents is the ceiling in force (tests lower it).
var maxScenarioEvents int64 = MaxScenarioEvents

// RunScenario runs s for its duration and returns the trace and the
// outcome of every action; extra observers (a PcapWriter, say) see the run
// too. The run is deterministic: the same scenario gives the same trace.
// It keeps the trace, for Check: past MaxScenarioEvents it stops with an
// error.
func RunScenario(s *Scenario, extra ...stack.Observer) (*ScenarioRun, error) {
	return RunScenarioWith(s, RunOptions{Keep: true, Observers: extra})
}

// RunScenarioStreaming runs s as RunScenario does, but hands each event to
// events as it is recorded and keeps none (ScenarioRun.Events stays empty,
// so there is nothing to Check): its memory does not grow with the run's
// length. An error from events stops the run and is returned.
func RunScenarioStreaming(s *Scenario, events func(Event) error, extra ...stack.Observer) (*ScenarioRun, error) {
	return RunScenarioWith(s, RunOptions{Events: events, Observers: extra})
}

// RunScenarioWith runs s as opts say: RunScenario and
// RunScenarioStreaming are its two common cases.
func RunScenarioWith(s *Scenario, opts RunOptions) (*ScenarioRun, error) {
	if err := CheckTimers(opts.Timers, opts.RecordTimers != nil); err != nil {
		return nil, err
	}
	cfg := opts
	r := &scenarioRunner{
		s:     s,
		cfg:   cfg,
		rec:   NewRecorder(),
		hosts: map[string]*simHost{},
		ends:  map[string]*sockEnd{},
		run:   &ScenarioRun{Scenario: s, Sockets: map[string]int{}, Calls: make([]CallOutcome, len(s.Actions))},
		buf:   make([]byte, 64<<10), // handlers run one at a time on the driver
	}
	defer r.close()
	queue, hostTimers := r.queues()
	r.net = stack.NewNetwork(stack.Config{Seed: s.Seed, Latency: s.Latency, Queue: queue})
	r.rec.Stream(r.record, cfg.Keep)
	if cfg.CountSegments {
		r.rec.CountSegments()
	}
	r.net.Observe(r.rec)
	for _, o := range cfg.Observers {
		r.net.Observe(o)
	}
	if err := r.setUp(hostTimers); err != nil {
		return nil, err
	}
	r.schedule()
	var err error
	if s.Duration > 0 {
		err = r.net.RunUntil(s.Duration)
	} else {
		err = r.net.Run()
	}
	if err != nil && !errors.Is(err, stack.ErrHorizon) {
		return nil, err
	}
	if r.sinkErr != nil {
		return nil, r.sinkErr
	}
	r.run.Events, r.run.End, r.run.SegmentEvents = r.rec.Events(), r.net.Now(), r.rec.Segments()
	if r.timerRec != nil {
		if err := r.timerRec.Close(); err != nil {
			return nil, fmt.Errorf("timer trace: %w", err)
		}
		r.run.TimerHash, r.run.TimerFires = r.timerRec.Hash()
	}
	return r.run, nil
}

// record sees each event as it is recorded: it hands it to the stream, or
// counts it against the ceiling of a kept trace, and stops the run when
// either fails.
func (r *scenarioRunner) record(e Event) {
	if r.sinkErr != nil {
		return
	}
	r.events++
	if r.cfg.Events != nil {
		r.sinkErr = r.cfg.Events(e)
	}
	if r.sinkErr == nil && r.cfg.Keep && r.events > maxScenarioEvents {
		r.sinkErr = fmt.Errorf("the run passed %d events at %s: a scenario run keeps its trace for its expectations, and at most that many (kasim run streams it instead)", maxScenarioEvents, e.Head().T)
	}
	if r.sinkErr != nil {
		r.net.Stop()
	}
}

// close stops the network and what the run's queues started (the
// nondeterministic queues' own timers).
func (r *scenarioRunner) close() {
	if r.net != nil {
		r.net.Close()
	}
	for _, c := range r.closers {
		c.Close()
	}
}

// queues returns the network's timer queue (nil: the network's default)
// and, for a per-host queue such as linux's, a maker of each host's
// (CheckTimers has checked the choice).
func (r *scenarioRunner) queues() (timers.Queue, func() timers.Queue) {
	closeLater := func(q timers.Queue) timers.Queue {
		if c, ok := q.(interface{ Close() }); ok {
			r.closers = append(r.closers, c)
		}
		return q
	}
	var queue timers.Queue
	var hostTimers func() timers.Queue
	if spec, ok := timers.Lookup(r.cfg.Timers); ok && spec.PerHost {
		hostTimers = func() timers.Queue { return closeLater(spec.New()) }
	} else if ok {
		queue = closeLater(spec.New())
	}
	if r.cfg.RecordTimers != nil {
		if queue == nil {
			queue = timers.NewHeap4()
		}
		r.timerRec = timers.NewRecorder(queue, r.cfg.RecordTimers)
		queue = r.timerRec
	}
	return queue, hostTimers
}

func (r *scenarioRunner) setUp(hostTimers func() timers.Queue) error {
	s := r.s
	title := s.Name
	if title == "" {
		title = s.File
	}
	first := s.Hosts[0].Name
	note := "scenario " + title
	if s.Description != "" {
		note += ": " + s.Description
	}
	r.rec.Note(0, first, note)
	for i := range s.Hosts {
		spec := &s.Hosts[i]
		p := spec.Resolved
		o := p.HostOptions()
		if hostTimers != nil {
			o.Timers = hostTimers()
		}
		h, err := r.net.AddHostWith(spec.Name, o)
		if err != nil {
			return err
		}
		sh := &simHost{spec: spec, h: h}
		name := spec.Name
		record := func(c sockopt.Call) { r.rec.Call(r.net.Now(), name, c) }
		if p.API == profile.Winsock {
			sh.ws = sockopt.NewWinsock(h, p.Winsock)
			sh.ws.OnCall = record
			r.rec.Note(0, name, name+" runs "+p.Note())
			sh.ws.WSAStartup(0x0202)
		} else {
			sh.px = sockopt.NewPOSIXAs(h, p.Dialect)
			sh.px.OnCall = record
			r.rec.Note(0, name, name+" runs "+p.Note())
		}
		if len(spec.SysctlIgnored) > 0 {
			r.rec.Note(0, name, fmt.Sprintf("%s has no Linux sysctls: the scenario's %s does not apply to it", p.Name, strings.Join(spec.SysctlIgnored, ", ")))
		}
		r.hosts[name] = sh
	}
	if err := r.setUpPaths(); err != nil {
		return err
	}
	return r.listen()
}

// setUpPaths applies the scenario's loss and middlebox between every pair
// of hosts.
func (r *scenarioRunner) setUpPaths() error {
	s := r.s
	for i := range s.Hosts {
		for j := i + 1; j < len(s.Hosts); j++ {
			a, b := r.hosts[s.Hosts[i].Name].h, r.hosts[s.Hosts[j].Name].h
			if s.Loss > 0 {
				if err := r.net.SetLoss(a, b, s.Loss); err != nil {
					return err
				}
				if err := r.net.SetLoss(b, a, s.Loss); err != nil {
					return err
				}
			}
			if s.Middlebox > 0 {
				if err := r.net.SetMiddlebox(a, b, s.Middlebox); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// listen notes each connection and has its server listen, once per port.
func (r *scenarioRunner) listen() error {
	listening := map[string]bool{}
	for i := range r.s.Conns {
		c := &r.s.Conns[i]
		if n := c.members(); n == 1 {
			r.rec.Note(0, c.Client, fmt.Sprintf("connection %s: %s -> %s:%d", c.Name, c.Client, c.Server, c.Port))
		} else {
			starts := "all starting at once"
			if c.Spread > 0 {
				starts = fmt.Sprintf("each starting at a time the seed draws from the first %v", c.Spread)
			}
			from := c.Client
			if k := len(c.clients); k > 1 {
				from = fmt.Sprintf("%s to %s (%d hosts, member by member in turn)", c.clients[0], c.clients[k-1], k)
			}
			r.rec.Note(0, c.Client, fmt.Sprintf("connections %s to %s: %s -> %s:%d, %s", c.memberName(0), c.memberName(n-1), from, c.Server, c.Port, starts))
		}
		key := fmt.Sprintf("%s:%d", c.Server, c.Port)
		if listening[key] {
			continue
		}
		listening[key] = true
		server, port := r.hosts[c.Server], c.Port
		onAccept := func(conn *stack.Conn) { r.accepted(server, port, conn) }
		var err error
		if sock := r.listenerOptions(c); sock != nil {
			_, err = server.h.ListenOn(sock, port, stack.KeepAlive{}, onAccept)
		} else {
			_, err = server.h.Listen("tcp4", port, stack.KeepAlive{}, onAccept)
		}
		if err != nil {
			return fmt.Errorf("%s: %s listening on port %d: %w", c.Pos, c.Server, port, err)
		}
	}
	return nil
}

// listenerOptions opens, through the server's socket API, the listening
// socket c's server listens on, and makes the calls the scenario makes on
// it (end: listener) before it listens, in file order; it returns nil,
// and the listener is opened as before, when there are none.
func (r *scenarioRunner) listenerOptions(c *ConnSpec) *stack.Conn {
	var calls []int
	var shared []*ConnSpec // the connections this listener serves
	for i := range r.s.Conns {
		if o := &r.s.Conns[i]; o.Server == c.Server && o.Port == c.Port {
			shared = append(shared, o)
		}
	}
	for i, a := range r.s.Actions {
		if a.End == EndListener && slices.ContainsFunc(shared, func(o *ConnSpec) bool { return o.Name == a.Conn }) {
			calls = append(calls, i)
		}
	}
	if len(calls) == 0 {
		return nil
	}
	server := r.hosts[c.Server]
	end := &sockEnd{host: server, spec: c, end: EndListener}
	end.open()
	for _, o := range shared {
		r.ends[SocketKey(o.memberName(0), EndListener)] = end
	}
	for _, i := range calls {
		r.act(i, 0)
	}
	return end.conn
}

func (r *scenarioRunner) network(a *Action) {
	host := func(i int) *stack.Host { return r.hosts[a.Hosts[i]].h }
	switch a.Do {
	case DoSilence:
		r.net.Silence(host(0), a.Direction)
	case DoHeal:
		if len(a.Hosts) == 2 {
			r.net.HealPartition(host(0), host(1))
		} else {
			r.net.Heal(host(0))
		}
	case DoPartition:
		r.net.Partition(host(0), host(1))
	case DoLoss:
		_ = r.net.SetLoss(host(0), host(1), a.Loss) // checked when parsed
	case DoLatency:
		_ = r.net.SetLatency(host(0), host(1), a.Latency)
	case DoMiddlebox:
		_ = r.net.SetMiddlebox(host(0), host(1), a.Idle)
	case DoDrop:
		r.startDrop(a)
	}
}

// Profiles maps each host of the scenario to its profile's name, as
// Timeline.Profiles takes it.
func (s *Scenario) Profiles() map[string]string {
	m := make(map[string]string, len(s.Hosts))
	for _, h := range s.Hosts {
		m[h.Name] = h.Profile
	}
	return m
}
