package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"kasim/internal/echo"
	"kasim/profile"
	"kasim/sockopt"
	"kasim/stack"
	"kasim/timers"
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

// Defaults of the built-in scenario: keep-alive as Windows (the seed
// document) does it, 2 h idle, 1 s interval, 10 probes.
const (
	DefaultIdle         = 2 * time.Hour
	DefaultInterval     = time.Second
	DefaultCount        = 10
	DefaultLatency      = 10 * time.Millisecond
	DefaultSilenceAfter = 10 * time.Second
	ServerPort          = 80
	// MaxConns bounds Builtin.Conns: ports of one client address, with room.
	MaxConns = 40000
)

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
	if b.Timers == "" {
		return nil
	}
	q, ok := timers.Lookup(b.Timers)
	switch {
	case !ok:
		return fmt.Errorf("timers %q: want %s", b.Timers, echo.OrList(timers.Names()))
	case b.RecordTimers == nil || q.Exact && !q.PerHost:
		return nil
	case q.PerHost:
		return fmt.Errorf("recording timers needs one exact queue (%s), not %s's per-host queues", exactQueues(), b.Timers)
	case q.Nondeterministic:
		return fmt.Errorf("recording timers needs one exact queue (%s): %s fires equal deadlines in no fixed order, so its trace would not replay", exactQueues(), b.Timers)
	}
	return fmt.Errorf("recording timers needs one exact queue (%s): %s does not fire every timer at its deadline, so its trace would not replay", exactQueues(), b.Timers)
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
}

// RunBuiltin runs the built-in scenario; extra observers (a PcapWriter, say)
// see the run too.
func RunBuiltin(b Builtin, extra ...stack.Observer) (*Result, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	p := b.profile()
	r := &builtinRun{b: b, p: p, buf: make([]byte, 512)}
	r.idle, r.interval, r.count = b.effective(p)
	defer r.close()
	if err := r.setUp(extra); err != nil {
		return nil, err
	}
	if err := r.serve(); err != nil {
		return nil, err
	}
	r.dialAll()
	var err error
	switch {
	case b.Duration > 0:
		err = r.net.RunFor(b.Duration)
	case b.PeerAlive:
		err = r.net.RunFor(3*r.idle + time.Minute)
	default:
		err = r.net.Run()
	}
	if err != nil && !errors.Is(err, stack.ErrHorizon) {
		return nil, err
	}
	if r.sinkErr != nil {
		return nil, fmt.Errorf("writing the trace: %w", r.sinkErr)
	}
	res := &Result{Idle: r.idle, Interval: r.interval, Count: r.count, Events: r.rec.Events(), End: r.net.Now(),
		SilencedAt: r.track.silencedAt, Clients: r.track.outcomes()}
	if r.timerRec != nil {
		if err := r.timerRec.Close(); err != nil {
			return nil, fmt.Errorf("timer trace: %w", err)
		}
		res.TimerHash, res.TimerFires = r.timerRec.Hash()
	}
	return res, nil
}

// builtinRun is one run of the built-in scenario as it goes.
type builtinRun struct {
	b Builtin
	p profile.Profile // the client's
	// idle, interval and count are the client's keep-alive settings:
	// the run's, or the profile's where it set none (effective).
	idle, interval time.Duration
	count          int
	net            *stack.Network
	rec            *Recorder
	timerRec       *timers.Recorder
	client, server *stack.Host
	ws             *sockopt.Winsock // the client's API: Winsock, or
	px             *sockopt.POSIX   // POSIX in its system's numbers
	buf            []byte           // handlers run one at a time on the driver
	closers        []interface{ Close() }
	done           int // clients finished
	track          *outcomeTracker
	sinkErr        error // Builtin.Events failed: the run stopped
}

// close stops what the run's queues started (the nondeterministic queues'
// own timers) and the network.
func (r *builtinRun) close() {
	if r.net != nil {
		r.net.Close()
	}
	for _, c := range r.closers {
		c.Close()
	}
}

// queues returns the network's timer queue (nil: the default) and, for a
// per-host queue such as linux's, a maker of each host's.
func (r *builtinRun) queues() (timers.Queue, func() timers.Queue) {
	closeLater := func(q timers.Queue) timers.Queue {
		if c, ok := q.(interface{ Close() }); ok {
			r.closers = append(r.closers, c)
		}
		return q
	}
	var queue timers.Queue
	var hostTimers func() timers.Queue
	if spec, ok := timers.Lookup(r.b.Timers); ok && spec.PerHost {
		hostTimers = func() timers.Queue { return closeLater(spec.New()) }
	} else if ok {
		queue = closeLater(spec.New())
	}
	if r.b.RecordTimers != nil {
		if queue == nil {
			queue = timers.NewHeap4()
		}
		r.timerRec = timers.NewRecorder(queue, r.b.RecordTimers)
		queue = r.timerRec
	}
	return queue, hostTimers
}

// setUp builds the network, the client (with its profile and socket API)
// and the server (gVisor's own), and notes what the run is.
func (r *builtinRun) setUp(extra []stack.Observer) error {
	b := r.b
	queue, hostTimers := r.queues()
	r.net = stack.NewNetwork(stack.Config{Seed: b.Seed, Latency: b.Latency, Queue: queue})
	r.rec = NewRecorder()
	r.track = newOutcomeTracker("client")
	r.rec.Stream(func(e Event) {
		r.track.add(e)
		if b.Events != nil && r.sinkErr == nil {
			if r.sinkErr = b.Events(e); r.sinkErr != nil {
				r.net.Stop()
			}
		}
	}, b.Events == nil)
	r.net.Observe(r.rec)
	for _, o := range extra {
		r.net.Observe(o)
	}
	addHost := func(name string, o stack.HostOptions) (*stack.Host, error) {
		if hostTimers != nil {
			o.Timers = hostTimers()
		}
		return r.net.AddHostWith(name, o)
	}
	var err error
	if r.client, err = addHost("client", r.p.HostOptions()); err != nil {
		return err
	}
	if r.server, err = addHost("server", stack.HostOptions{}); err != nil {
		return err
	}
	if b.Loss > 0 {
		if err := r.net.SetLoss(r.client, r.server, b.Loss); err != nil {
			return err
		}
		if err := r.net.SetLoss(r.server, r.client, b.Loss); err != nil {
			return err
		}
	}
	record := func(c sockopt.Call) { r.rec.Call(r.net.Now(), "client", c) }
	client0 := "client"
	if r.p.API == profile.Winsock {
		client0 = "client (" + r.p.Title + ")"
		r.ws = sockopt.NewWinsock(r.client, r.p.Winsock)
		r.ws.OnCall = record
	} else {
		r.px = sockopt.NewPOSIXAs(r.client, r.p.Dialect)
		r.px.OnCall = record
	}
	peer := "falls silent " + b.SilenceAfter.String() + " after its last reply"
	if b.PeerAlive {
		peer = "stays up"
	}
	r.rec.Note(0, "client", fmt.Sprintf("built-in scenario: %d %s connection(s) to server:%d, keep-alive idle %v, interval %v, count %d; the server %s",
		b.Conns, client0, ServerPort, r.idle, r.interval, r.count, peer))
	if r.ws != nil {
		r.ws.WSAStartup(0x0202)
	}
	return nil
}

// serve has the server answer each request with Reply; with a dead peer,
// it falls silent SilenceAfter its last reply.
func (r *builtinRun) serve() error {
	replies := 0
	_, err := r.server.Listen("tcp4", ServerPort, stack.KeepAlive{}, func(c *stack.Conn) {
		got := 0
		c.OnEvent(func(c *stack.Conn) {
			for {
				n, err := c.Recv(r.buf)
				if err != nil {
					return
				}
				got += n
				if got >= len(Request) && got-n < len(Request) {
					if _, err := c.Send(Reply); err != nil {
						return
					}
					replies++
					if replies == r.b.Conns && !r.b.PeerAlive {
						r.net.After(r.b.SilenceAfter, func() { r.net.Silence(r.server, stack.Both) })
					}
				}
			}
		})
	})
	return err
}

// dialAll starts the clients: at once for one, spread over the first
// second for more, so that their timers interleave instead of firing in
// lockstep. The run stops when every client has given up.
func (r *builtinRun) dialAll() {
	starts := rand.New(rand.NewPCG(r.b.Seed, 0x7374617274))
	raddr := netip.AddrPortFrom(r.server.Addr(), ServerPort)
	finished := func() {
		r.done++
		if r.done == r.b.Conns {
			r.net.Stop()
		}
	}
	for i := 0; i < r.b.Conns; i++ {
		var at time.Duration
		if r.b.Conns > 1 {
			at = time.Duration(starts.Int64N(int64(time.Second)))
		}
		r.net.At(at, func() {
			if r.ws != nil {
				r.dialWinsock(raddr, finished)
				return
			}
			r.dialPOSIX(raddr, finished)
		})
	}
}

// dialPOSIX opens one client connection the way a POSIX application does,
// through the host's socket calls in its system's numbers: socket, the
// keep-alive options (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, then
// SO_KEEPALIVE, as Go's net package orders them), a non-blocking connect,
// the request once connected, and a recv always pending.
func (r *builtinRun) dialPOSIX(raddr netip.AddrPort, gaveUp func()) {
	px, d := r.px, r.p.Dialect
	fd := px.Socket(sockopt.LinuxAF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
	c := px.Conn(fd)
	if c == nil {
		gaveUp()
		return
	}
	word := func(v int64) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }
	inUnit := func(opt string, t time.Duration) []byte {
		unit, _ := d.Unit(opt)
		return word(int64(t / unit)) // Validate refused what the unit cannot hold
	}
	opts := d.Opts()
	px.Setsockopt(fd, sockopt.IPPROTO_TCP, opts["TCP_KEEPIDLE"], inUnit("TCP_KEEPIDLE", r.idle), 4)
	px.Setsockopt(fd, sockopt.IPPROTO_TCP, opts["TCP_KEEPINTVL"], inUnit("TCP_KEEPINTVL", r.interval), 4)
	px.Setsockopt(fd, sockopt.IPPROTO_TCP, opts["TCP_KEEPCNT"], word(int64(r.count)), 4)
	px.Setsockopt(fd, d.SOL_SOCKET, d.SO_KEEPALIVE, word(1), 4)
	sent, failed := false, false
	c.OnEvent(func(c *stack.Conn) {
		if failed {
			return
		}
		if !sent && c.State() == stack.Established {
			sent = true
			if px.Send(fd, Request) < 0 {
				r.rec.AppError(r.net.Now(), c, "send", px.Errno())
			}
		}
		for {
			_, err := c.Recv(r.buf)
			if err == nil {
				continue
			}
			if errors.Is(err, stack.ErrWouldBlock) {
				return
			}
			failed = true
			if !errors.Is(err, io.EOF) {
				reportAppError(r.net, r.rec, c, "recv", err, d)
			}
			gaveUp()
			return
		}
	})
	px.Connect(fd, raddr)
}

// reportAppError records err as the application sees it, numbered in its
// dialect d.
func reportAppError(net *stack.Network, rec *Recorder, c *stack.Conn, op string, err error, d *sockopt.Dialect) {
	e, ok := d.ErrnoFromError(err)
	if !ok {
		e = sockopt.Errno{Name: err.Error()}
	}
	rec.AppError(net.Now(), c, op, e)
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
// Outcomes reports, for each connection of one host, and when the first
// host fell silent.
type outcomeTracker struct {
	host       string
	byConn     map[int]*Outcome
	order      []int
	silencedAt time.Duration
}

func newOutcomeTracker(host string) *outcomeTracker {
	return &outcomeTracker{host: host, byConn: map[int]*Outcome{}, silencedAt: -1}
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
	if e.Head().Host != t.host {
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
// Timeline.Profiles takes it: the client runs the Windows profile if one is
// set, gVisor otherwise; the server always runs gVisor.
func (b Builtin) Profiles() map[string]string {
	return map[string]string{"client": b.profile().Name, "server": "gvisor"}
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
