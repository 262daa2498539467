package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"kasim/profile"
	"kasim/sockopt"
	"kasim/stack"
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
	// Calls holds the outcome of each of Scenario.Actions, by index.
	Calls []CallOutcome
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

// sockEnd is one end of a scenario connection, once it exists.
type sockEnd struct {
	host   *simHost
	conn   *stack.Conn
	ws     sockopt.SOCKET
	fd     int
	failed bool // the application has seen the connection fail
}

type scenarioRunner struct {
	s       *Scenario
	events  int64 // recorded so far
	sinkErr error // the stream failed, or the kept trace reached its ceiling
	net     *stack.Network
	rec     *Recorder
	hosts   map[string]*simHost
	ends    map[string]*sockEnd // by SocketKey
	run     *ScenarioRun
	buf     []byte
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
	return runScenario(s, nil, extra)
}

// RunScenarioStreaming runs s as RunScenario does, but hands each event to
// events as it is recorded and keeps none (ScenarioRun.Events stays empty,
// so there is nothing to Check): its memory does not grow with the run's
// length. An error from events stops the run and is returned.
func RunScenarioStreaming(s *Scenario, events func(Event) error, extra ...stack.Observer) (*ScenarioRun, error) {
	return runScenario(s, events, extra)
}

func runScenario(s *Scenario, events func(Event) error, extra []stack.Observer) (*ScenarioRun, error) {
	r := &scenarioRunner{
		s:     s,
		net:   stack.NewNetwork(stack.Config{Seed: s.Seed, Latency: s.Latency}),
		rec:   NewRecorder(),
		hosts: map[string]*simHost{},
		ends:  map[string]*sockEnd{},
		run:   &ScenarioRun{Scenario: s, Sockets: map[string]int{}, Calls: make([]CallOutcome, len(s.Actions))},
		buf:   make([]byte, 64<<10), // handlers run one at a time on the driver
	}
	defer r.net.Close()
	r.rec.Stream(func(e Event) {
		if r.sinkErr != nil {
			return
		}
		r.events++
		switch {
		case events != nil:
			r.sinkErr = events(e)
		case r.events > maxScenarioEvents:
			r.sinkErr = fmt.Errorf("the run passed %d events at %s: a scenario run keeps its trace for its expectations, and at most that many (kasim run FILE.yaml streams it instead)", maxScenarioEvents, e.Head().T)
		}
		if r.sinkErr != nil {
			r.net.Stop()
		}
	}, events == nil)
	r.net.Observe(r.rec)
	for _, o := range extra {
		r.net.Observe(o)
	}
	if err := r.setUp(); err != nil {
		return nil, err
	}
	for i := range s.Actions {
		i := i
		r.net.At(s.Actions[i].At, func() { r.act(i) })
	}
	if err := r.net.RunUntil(s.Duration); err != nil && !errors.Is(err, stack.ErrHorizon) {
		return nil, err
	}
	if r.sinkErr != nil {
		return nil, r.sinkErr
	}
	r.run.Events, r.run.End = r.rec.Events(), r.net.Now()
	return r.run, nil
}

func (r *scenarioRunner) setUp() error {
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
		h, err := r.net.AddHostWith(spec.Name, p.HostOptions())
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
	listening := map[string]bool{}
	for i := range s.Conns {
		c := &s.Conns[i]
		r.rec.Note(0, c.Client, fmt.Sprintf("connection %s: %s -> %s:%d", c.Name, c.Client, c.Server, c.Port))
		key := fmt.Sprintf("%s:%d", c.Server, c.Port)
		if listening[key] {
			continue
		}
		listening[key] = true
		server, port := r.hosts[c.Server], c.Port
		if _, err := server.h.Listen("tcp4", port, stack.KeepAlive{}, func(conn *stack.Conn) { r.accepted(server, port, conn) }); err != nil {
			return fmt.Errorf("%s: %s listening on port %d: %w", c.Pos, c.Server, port, err)
		}
	}
	return nil
}

// accepted gives a connection the listener took to its scenario
// connection's server end, matching it by the client's address.
func (r *scenarioRunner) accepted(server *simHost, port uint16, conn *stack.Conn) {
	for i := range r.s.Conns {
		c := &r.s.Conns[i]
		client := r.ends[SocketKey(c.Name, "client")]
		if c.Server != server.spec.Name || c.Port != port || client == nil || client.conn.LocalAddr() != conn.RemoteAddr() {
			continue
		}
		end := &sockEnd{host: server, conn: conn}
		if server.ws != nil {
			end.ws = server.ws.Accept(conn)
		} else {
			end.fd = server.px.Accept(conn)
		}
		key := SocketKey(c.Name, "server")
		r.ends[key] = end
		r.run.Sockets[key] = conn.ID()
		r.startReading(end)
		return
	}
}

// startReading keeps a receive in progress on end, as an application
// waiting for its peer does, so that it learns at once when the connection
// fails.
func (r *scenarioRunner) startReading(end *sockEnd) {
	if ws := end.host.ws; ws != nil {
		var onRecv func(n int, e sockopt.WSAError)
		onRecv = func(n int, e sockopt.WSAError) {
			switch {
			case e != (sockopt.WSAError{}):
				end.failed = true
				r.rec.AppError(r.net.Now(), end.conn, "recv", sockopt.Errno{Name: e.Name, Code: e.Code})
			case n > 0:
				ws.RecvAsync(end.ws, r.buf, onRecv)
			}
		}
		ws.RecvAsync(end.ws, r.buf, onRecv)
		return
	}
	end.conn.OnEvent(func(c *stack.Conn) {
		for !end.failed {
			_, err := c.Recv(r.buf)
			if errors.Is(err, stack.ErrWouldBlock) || errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				end.failed = true
				// A connect that failed is the connect's error, as the
				// application's poll and SO_ERROR report it (and the
				// kernel's, live), not the pending receive's.
				op := "recv"
				if !c.WasEstablished() {
					op = "connect"
				}
				reportAppError(r.net, r.rec, c, op, err, end.host.px.Dialect())
			}
		}
	})
}

// socket returns the end an action works on, opening the client's socket
// on first use; it fails for a server end not yet accepted.
func (r *scenarioRunner) socket(a *Action) (*sockEnd, string) {
	key := SocketKey(a.Conn, a.End)
	if end := r.ends[key]; end != nil {
		return end, ""
	}
	spec := r.s.connSpec(a.Conn)
	if a.End == "server" {
		return nil, fmt.Sprintf("%s's server end is not open: %s has not accepted the connection yet", a.Conn, spec.Server)
	}
	host := r.hosts[spec.Client]
	end := &sockEnd{host: host}
	if host.ws != nil {
		end.ws = host.ws.Socket(sockopt.AF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
		end.conn = host.ws.Conn(end.ws)
	} else {
		end.fd = host.px.Socket(sockopt.LinuxAF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
		end.conn = host.px.Conn(end.fd)
	}
	if end.conn == nil {
		return nil, "socket() failed on " + spec.Client
	}
	r.ends[key] = end
	r.run.Sockets[key] = end.conn.ID()
	return end, ""
}

func (s *Scenario) connSpec(name string) *ConnSpec {
	for i := range s.Conns {
		if s.Conns[i].Name == name {
			return &s.Conns[i]
		}
	}
	return nil
}

// socketHost names the host whose socket a socket action uses.
func (s *Scenario) socketHost(a *Action) string {
	c := s.connSpec(a.Conn)
	if a.End == "server" {
		return c.Server
	}
	return c.Client
}

// act runs action i at its time.
func (r *scenarioRunner) act(i int) {
	a := &r.s.Actions[i]
	out := &r.run.Calls[i]
	if a.Conn == "" {
		r.network(a)
		out.Ran = true
		return
	}
	end, why := r.socket(a)
	if end == nil {
		out.Skipped = why
		r.rec.Note(r.net.Now(), r.s.socketHost(a), fmt.Sprintf("%s: %s not done: %s", a.Pos, a.Do, why))
		return
	}
	out.Ran = true
	if a.Note != "" {
		r.rec.Note(r.net.Now(), end.host.spec.Name, a.Note)
	}
	if end.host.ws != nil {
		r.winsock(a, end, out)
	} else {
		r.posix(a, end, out)
	}
}

func (r *scenarioRunner) raddr(a *Action) netip.AddrPort {
	c := r.s.connSpec(a.Conn)
	return netip.AddrPortFrom(r.hosts[c.Server].h.Addr(), c.Port)
}

func (r *scenarioRunner) winsock(a *Action, end *sockEnd, out *CallOutcome) {
	ws, s := end.host.ws, end.ws
	switch a.Do {
	case DoConnect:
		out.Result = ws.ConnectEx(s, r.raddr(a), func(e sockopt.WSAError) {
			if e != (sockopt.WSAError{}) {
				end.failed = true
				r.rec.AppError(r.net.Now(), end.conn, "connect", sockopt.Errno{Name: e.Name, Code: e.Code})
				return
			}
			r.startReading(end)
		})
	case DoSetsockopt:
		out.Result = ws.Setsockopt(s, a.Level, a.Opt, a.Optval, a.Optlen)
	case DoGetsockopt:
		buf, n := make([]byte, max(len(a.Optval), 4)), a.Optlen
		out.Result = ws.Getsockopt(s, a.Level, a.Opt, buf, &n)
		out.Value = int64(binary.LittleEndian.Uint32(buf))
	case DoIoctl:
		var ret uint32
		out.Result = ws.WSAIoctl(s, uint32(a.Opt), a.Optval, nil, &ret)
	case DoSend:
		out.Result = ws.Send(s, a.Data)
	case DoRecv:
		out.Result = ws.Recv(s, r.buf)
	case DoClose:
		out.Result = ws.Closesocket(s) // the end stays: later calls get WSAENOTSOCK
	}
	if out.Result == sockopt.SOCKET_ERROR {
		e := ws.LastError()
		out.Error, out.Code = e.Name, e.Code
		if a.Do == DoRecv || a.Do == DoSend {
			if e != sockopt.WSAEWOULDBLOCK {
				r.rec.AppError(r.net.Now(), end.conn, a.Do, sockopt.Errno{Name: e.Name, Code: e.Code})
			}
		}
	}
}

func (r *scenarioRunner) posix(a *Action, end *sockEnd, out *CallOutcome) {
	px, fd := end.host.px, end.fd
	switch a.Do {
	case DoConnect:
		out.Result = px.Connect(fd, r.raddr(a))
		// Reading starts with a connect under way, as an application's
		// would: on a socket that never connects, a receive is not the
		// runner's to make (it would fail with ENOTCONN).
		if px.Errno().Name == "EINPROGRESS" { // POSIX.Connect's success
			r.startReading(end)
		}
	case DoSetsockopt:
		out.Result = px.Setsockopt(fd, a.Level, a.Opt, a.Optval, a.Optlen)
	case DoGetsockopt:
		buf, n := make([]byte, max(len(a.Optval), 4)), a.Optlen
		out.Result = px.Getsockopt(fd, a.Level, a.Opt, buf, &n)
		out.Value = int64(int32(binary.LittleEndian.Uint32(buf)))
	case DoSend:
		out.Result = px.Send(fd, a.Data)
	case DoRecv:
		out.Result = px.Recv(fd, r.buf)
	case DoClose:
		out.Result = px.Close(fd) // the end stays: later calls get EBADF
	}
	if out.Result == -1 {
		e := px.Errno()
		out.Error, out.Code = e.Name, e.Code
		if (a.Do == DoRecv || a.Do == DoSend) && e.Name != "EAGAIN" {
			r.rec.AppError(r.net.Now(), end.conn, a.Do, e)
		}
	}
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
