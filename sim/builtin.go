package sim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

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
	// RecordTimers, if set, receives every call the run makes to its timer
	// queue, as a timer trace (timers.Recorder) that `kasim bench --replay`
	// runs against any queue. Not with Timers "linux", whose timers live in
	// per-host queues.
	RecordTimers io.Writer
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// exactQueues names the registered exact queues, as "a, b or c".
func exactQueues() string {
	var names []string
	for _, s := range timers.Specs() {
		if s.Exact {
			names = append(names, s.Name)
		}
	}
	return orList(names)
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
	if p := b.profile(); p.API == profile.Winsock {
		if err := p.CheckKeepAlive(b.Idle, b.Interval, b.Count); err != nil {
			return err
		}
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
		return fmt.Errorf("timers %q: want %s", b.Timers, orList(timers.Names()))
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
	Conn     int
	Probes   []time.Duration // when each probe went out
	Answered int             // probes answered
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
	var queue timers.Queue
	var hostTimers func() timers.Queue
	// The queues with a Close method are closed when the run is done:
	// the nondeterministic queues stop their own timers.
	var closers []interface{ Close() }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	closeQueue := func(q timers.Queue) timers.Queue {
		if c, ok := q.(interface{ Close() }); ok {
			closers = append(closers, c)
		}
		return q
	}
	if spec, ok := timers.Lookup(b.Timers); ok && spec.PerHost {
		hostTimers = func() timers.Queue { return closeQueue(spec.New()) }
	} else if ok {
		queue = closeQueue(spec.New())
	}
	var recorder *timers.Recorder
	if b.RecordTimers != nil {
		if queue == nil {
			queue = timers.NewHeap4()
		}
		recorder = timers.NewRecorder(queue, b.RecordTimers)
		queue = recorder
	}
	net := stack.NewNetwork(stack.Config{Seed: b.Seed, Latency: b.Latency, Queue: queue})
	defer net.Close()
	rec := NewRecorder()
	net.Observe(rec)
	for _, o := range extra {
		net.Observe(o)
	}
	p := b.profile()
	addHost := func(name string, o stack.HostOptions) (*stack.Host, error) {
		if hostTimers != nil {
			o.Timers = hostTimers()
		}
		return net.AddHostWith(name, o)
	}
	client, err := addHost("client", p.HostOptions())
	if err != nil {
		return nil, err
	}
	server, err := addHost("server", stack.HostOptions{})
	if err != nil {
		return nil, err
	}
	if b.Loss > 0 {
		if err := net.SetLoss(client, server, b.Loss); err != nil {
			return nil, err
		}
		if err := net.SetLoss(server, client, b.Loss); err != nil {
			return nil, err
		}
	}
	peer := "falls silent " + b.SilenceAfter.String() + " after its last reply"
	if b.PeerAlive {
		peer = "stays up"
	}
	idle, interval, count := b.effective(p)
	client0 := "client"
	var ws *sockopt.Winsock
	if p.API == profile.Winsock {
		client0 = "client (" + p.Title + ")"
		ws = sockopt.NewWinsock(client, p.Winsock)
		ws.OnCall = func(c sockopt.Call) { rec.Call(net.Now(), "client", c) }
	}
	rec.Note(0, "client", fmt.Sprintf("built-in scenario: %d %s connection(s) to server:%d, keep-alive idle %v, interval %v, count %d; the server %s",
		b.Conns, client0, ServerPort, idle, interval, count, peer))
	if ws != nil {
		ws.WSAStartup(0x0202)
	}

	replies := 0
	buf := make([]byte, 512) // handlers run one at a time on the driver
	_, err = server.Listen("tcp4", ServerPort, stack.KeepAlive{}, func(c *stack.Conn) {
		got := 0
		c.OnEvent(func(c *stack.Conn) {
			for {
				n, err := c.Recv(buf)
				if err != nil {
					return
				}
				got += n
				if got >= len(Request) && got-n < len(Request) {
					if _, err := c.Send(Reply); err != nil {
						return
					}
					replies++
					if replies == b.Conns && !b.PeerAlive {
						net.After(b.SilenceAfter, func() { net.Silence(server, stack.Both) })
					}
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}

	starts := rand.New(rand.NewPCG(b.Seed, 0x7374617274))
	done := 0
	raddr := netip.AddrPortFrom(server.Addr(), ServerPort)
	for i := 0; i < b.Conns; i++ {
		var at time.Duration
		if b.Conns > 1 {
			// Spread the clients over a second, so that their timers
			// interleave instead of firing in lockstep.
			at = time.Duration(starts.Int64N(int64(time.Second)))
		}
		finished := func() {
			done++
			if done == b.Conns {
				net.Stop()
			}
		}
		net.At(at, func() {
			if ws != nil {
				dialWinsock(net, rec, ws, raddr, b, buf, finished)
				return
			}
			if err := dialBuiltin(net, rec, client, raddr, b, buf, finished); err != nil {
				rec.Note(net.Now(), "client", "dial failed: "+err.Error())
			}
		})
	}

	switch {
	case b.Duration > 0:
		err = net.RunFor(b.Duration)
	case b.PeerAlive:
		err = net.RunFor(3*idle + time.Minute)
	default:
		err = net.Run()
	}
	if err != nil && !errors.Is(err, stack.ErrHorizon) {
		return nil, err
	}
	res := &Result{Idle: idle, Interval: interval, Count: count, Events: rec.Events(), End: net.Now()}
	res.summarize(client.Name())
	if recorder != nil {
		if err := recorder.Close(); err != nil {
			return nil, fmt.Errorf("timer trace: %w", err)
		}
		res.TimerHash, res.TimerFires = recorder.Hash()
	}
	return res, nil
}

// dialBuiltin opens one client connection the way a Windows application
// does: keep-alive set up before connect, a request once connected, and a
// recv always pending.
func dialBuiltin(net *stack.Network, rec *Recorder, client *stack.Host, raddr netip.AddrPort, b Builtin, buf []byte, gaveUp func()) error {
	c, err := client.Socket("tcp4")
	if err != nil {
		return err
	}
	dialect := b.profile().Dialect
	now := net.Now()
	rec.SockOpt(now, c, "setsockopt", "IPPROTO_TCP", "TCP_KEEPIDLE", b.Idle.String(), c.SetKeepAliveIdle(b.Idle))
	rec.SockOpt(now, c, "setsockopt", "IPPROTO_TCP", "TCP_KEEPINTVL", b.Interval.String(), c.SetKeepAliveInterval(b.Interval))
	rec.SockOpt(now, c, "setsockopt", "IPPROTO_TCP", "TCP_KEEPCNT", b.Count, c.SetKeepAliveCount(b.Count))
	c.SetKeepAliveEnabled(true)
	rec.SockOpt(now, c, "setsockopt", "SOL_SOCKET", "SO_KEEPALIVE", 1, nil)
	sent, failed := false, false
	c.OnEvent(func(c *stack.Conn) {
		if failed {
			return
		}
		if !sent && c.State() == stack.Established {
			sent = true
			if _, err := c.Send(Request); err != nil {
				reportAppError(net, rec, c, "send", err, dialect)
			}
		}
		for {
			_, err := c.Recv(buf)
			if errors.Is(err, stack.ErrWouldBlock) {
				return
			}
			if errors.Is(err, io.EOF) {
				failed = true
				gaveUp()
				return
			}
			if err != nil {
				failed = true
				reportAppError(net, rec, c, "recv", err, dialect)
				gaveUp()
				return
			}
		}
	})
	return c.Connect(raddr)
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

// summarize fills in the client outcomes from the trace, so that they say
// exactly what the trace says.
func (r *Result) summarize(clientHost string) {
	r.SilencedAt = -1
	for _, e := range r.Events {
		if e, ok := e.(*LinkEvent); ok && e.Action == "silence" {
			r.SilencedAt = time.Duration(e.TNS)
			break
		}
	}
	r.Clients = Outcomes(r.Events, clientHost)
}

// Outcomes reads from a trace what happened to each connection of host, in
// the order the trace first mentions them: its probes, the answers, when
// keep-alive gave up and the errors the application saw.
func Outcomes(events []Event, host string) []Outcome {
	byConn := map[int]*Outcome{}
	var order []int
	get := func(id int) *Outcome {
		o := byConn[id]
		if o == nil {
			o = &Outcome{Conn: id, AbortAt: -1}
			byConn[id] = o
			order = append(order, id)
		}
		return o
	}
	for _, e := range events {
		if e.Head().Host != host {
			continue
		}
		switch e := e.(type) {
		case *SockOptEvent:
			if e.Conn != 0 {
				get(e.Conn)
			}
		case *KeepAliveEvent:
			o := get(e.Conn)
			switch e.Action {
			case ActionProbe:
				o.Probes = append(o.Probes, time.Duration(e.TNS))
			case ActionRearm:
				o.Answered += e.Unanswered
			case ActionAbort:
				o.AbortAt = time.Duration(e.TNS)
				o.LastRecv = time.Duration(e.LastRecvNS)
			}
		case *AppErrorEvent:
			o := get(e.Conn)
			if o.Error == "" {
				o.Error, o.ErrorOp, o.ErrorAt = e.Error, e.Op, time.Duration(e.TNS)
			} else if o.LaterError == "" {
				o.LaterError, o.LaterErrorOp, o.LaterErrorAt = e.Error, e.Op, time.Duration(e.TNS)
			}
		case *StateEvent:
			get(e.Conn).Final = e.To
		}
	}
	var out []Outcome
	for _, id := range order {
		out = append(out, *byConn[id])
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
