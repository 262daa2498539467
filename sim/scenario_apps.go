package sim

// The applications of a scenario run: the sockets at each end of its
// connections, the calls its actions make on them at their times or on
// their triggers, and the receive each keeps pending.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"kasim/sockopt"
	"kasim/stack"
)

// sockEnd is one end of a scenario connection, once it exists.
type sockEnd struct {
	host   *simHost
	spec   *ConnSpec
	member int    // which of spec's connections
	end    string // "client" or "server"
	conn   *stack.Conn
	ws     sockopt.SOCKET
	fd     int
	// What its application has seen: the connection established, bytes
	// received, the connection failed, or ended (failed, or closed by the
	// peer).
	established bool
	received    int64
	failed      bool
	ended       bool
	// paused: the scenario has the application stop reading. posted: a
	// Winsock end's overlapped receive is in progress. eof: a POSIX end's
	// application read the end of the stream.
	paused, posted, eof bool
}

// apps is the runner's state for triggers and connections of several.
type apps struct {
	// waiting lists the actions each socket event triggers, in file order.
	waiting map[triggerKey][]int
	// seen counts, for a network action triggered by the event of a
	// connection of several, the members that have had it.
	seen map[int]int
	// clientAt finds a client's end by its address, for the accept and
	// the drop rules.
	clientAt map[netip.AddrPort]*sockEnd
	drops    DropRules
	// clients and clientsEnded count the client ends, for
	// Scenario.UntilEnded.
	clients, clientsEnded int
}

// triggerKey is a socket event: its connection, end and kind.
type triggerKey struct{ conn, end, event string }

// startSalt seeds the draw of connections' starts ("start").
const startSalt = 0x7374617274

// schedule sets every action off: the timed ones at their times (those of
// a connection at each member's start), in runs of one connection's
// actions at one instant, and the triggered ones waiting for their event.
func (r *scenarioRunner) schedule() {
	s := r.s
	r.waiting, r.seen, r.clientAt = map[triggerKey][]int{}, map[int]int{}, map[netip.AddrPort]*sockEnd{}
	offsets := map[string][]time.Duration{} // each connection's members' starts
	draw := rand.New(rand.NewPCG(s.Seed, startSalt))
	for i := range s.Conns {
		c := &s.Conns[i]
		starts := make([]time.Duration, c.members())
		if c.Spread > 0 {
			for m := range starts {
				starts[m] = time.Duration(draw.Int64N(int64(c.Spread)))
			}
		}
		offsets[c.Name] = starts
		r.clients += c.members()
	}
	for i := 0; i < len(s.Actions); {
		a := &s.Actions[i]
		if a.End == EndListener {
			i++ // made before the listener listens (listenerOptions)
			continue
		}
		if a.On != nil {
			k := triggerKey{a.Conn, a.End, a.On.Event}
			if a.Conn == "" {
				k.conn, k.end = a.On.Conn, a.On.End
			}
			r.waiting[k] = append(r.waiting[k], i)
			i++
			continue
		}
		j := i + 1 // the run of actions on a's socket at a's time
		for a.Conn != "" && j < len(s.Actions) && s.Actions[j].On == nil && s.Actions[j].At == a.At &&
			s.Actions[j].Conn == a.Conn && s.Actions[j].End == a.End {
			j++
		}
		first, last := i, j
		if a.Conn == "" {
			r.net.At(a.At, func() { r.act(first, 0) })
		} else {
			for m, off := range offsets[a.Conn] {
				r.net.At(off+a.At, func() {
					for k := first; k < last; k++ {
						r.act(k, m)
					}
				})
			}
		}
		i = j
	}
}

// fire runs the actions end's event triggers: received moves the end's
// total from before to after (OnReceived fires those it passes).
func (r *scenarioRunner) fire(end *sockEnd, event string, before, after int64) {
	for _, i := range r.waiting[triggerKey{end.spec.Name, end.end, event}] {
		a := &r.s.Actions[i]
		if event == OnReceived && !(before < a.On.Bytes && a.On.Bytes <= after) {
			continue
		}
		m := end.member
		if a.Conn == "" {
			if r.seen[i]++; r.seen[i] < end.spec.members() {
				continue
			}
			m = 0
		}
		if a.At == 0 {
			r.act(i, m)
		} else {
			r.net.After(a.At, func() { r.act(i, m) })
		}
	}
}

// endOf notes that end's application has seen its connection end, and
// stops a scenario that runs until every client's has.
func (r *scenarioRunner) endOf(end *sockEnd) {
	if end.ended {
		return
	}
	end.ended = true
	if end.end != "client" {
		return
	}
	if r.clientsEnded++; r.s.UntilEnded && r.clientsEnded == r.clients {
		r.net.Stop()
	}
}

// failedWith records the error end's application got from op, and what
// that triggers: a failed connect triggers nothing (its connection never
// was).
func (r *scenarioRunner) failedWith(end *sockEnd, op string, e sockopt.Errno) {
	end.failed = true
	r.rec.AppError(r.net.Now(), end.conn, op, e)
	if op != "connect" {
		r.fire(end, OnFailed, 0, 0)
	}
	r.endOf(end)
}

// gotBytes counts n bytes end's application received, and fires what
// they trigger.
func (r *scenarioRunner) gotBytes(end *sockEnd, n int) {
	before := end.received
	end.received += int64(n)
	r.fire(end, OnReceived, before, end.received)
}

// establish notes that end's connection is established, once.
func (r *scenarioRunner) establish(end *sockEnd) {
	if !end.established {
		end.established = true
		r.fire(end, OnEstablished, 0, 0)
	}
}

// accepted gives a connection the listener took to its scenario
// connection's server end, matching it by the client's address.
func (r *scenarioRunner) accepted(server *simHost, port uint16, conn *stack.Conn) {
	client := r.clientAt[conn.RemoteAddr()]
	if client == nil || client.spec.Server != server.spec.Name || client.spec.Port != port {
		return
	}
	key := SocketKey(client.spec.memberName(client.member), "server")
	if r.ends[key] != nil {
		return // accepted already
	}
	end := &sockEnd{host: server, spec: client.spec, member: client.member, end: "server", conn: conn, established: true}
	if server.ws != nil {
		end.ws = server.ws.Accept(conn)
	} else {
		end.fd = server.px.Accept(conn)
	}
	r.ends[key] = end
	r.run.Sockets[key] = conn.ID()
	r.startReading(end)
	r.fire(end, OnEstablished, 0, 0)
}

// startReading keeps a receive in progress on end, as an application
// waiting for its peer does, so that it learns at once when the connection
// fails; while the scenario has it stop reading (reading: false), it
// makes none.
func (r *scenarioRunner) startReading(end *sockEnd) {
	if end.host.ws != nil {
		r.postRecv(end)
		return
	}
	end.conn.OnEvent(func(c *stack.Conn) {
		if c.WasEstablished() {
			r.establish(end)
		}
		r.readPOSIX(end)
	})
}

// postRecv posts an overlapped receive on a Winsock end, and the next
// once it completes, unless the end has stopped reading by then.
func (r *scenarioRunner) postRecv(end *sockEnd) {
	ws := end.host.ws
	var onRecv func(n int, e sockopt.WSAError)
	onRecv = func(n int, e sockopt.WSAError) {
		end.posted = false
		switch {
		case e != (sockopt.WSAError{}):
			r.failedWith(end, "recv", sockopt.Errno{Name: e.Name, Code: e.Code})
		case n > 0:
			r.gotBytes(end, n)
			if !end.paused {
				end.posted = true
				ws.RecvAsync(end.ws, r.buf, onRecv)
			}
		default:
			r.endOf(end) // the peer closed
		}
	}
	end.posted = true
	ws.RecvAsync(end.ws, r.buf, onRecv)
}

// readPOSIX reads what a POSIX end has, as its application's loop on a
// non-blocking socket does when the socket is readable, unless the end
// has stopped reading.
func (r *scenarioRunner) readPOSIX(end *sockEnd) {
	c := end.conn
	for !end.failed && !end.paused && !end.eof {
		n, err := c.Recv(r.buf)
		if errors.Is(err, stack.ErrWouldBlock) {
			return
		}
		if errors.Is(err, io.EOF) {
			// Having read the end of the stream, the application reads
			// no more (as a Winsock one, and kasim conform's kernel
			// side): a later failure of the half-open connection is
			// not a receive's.
			end.eof = true
			r.endOf(end)
			return
		}
		if err != nil {
			// A connect that failed is the connect's error, as the
			// application's poll and SO_ERROR report it (and the
			// kernel's, live), not the pending receive's.
			op := "recv"
			if !c.WasEstablished() {
				op = "connect"
			}
			e, ok := end.host.px.Dialect().ErrnoFromError(err)
			if !ok {
				e = sockopt.Errno{Name: err.Error()}
			}
			r.failedWith(end, op, e)
			return
		}
		r.gotBytes(end, n)
	}
}

// setReading has end's application stop reading, or start again: a POSIX
// one then reads what is waiting; a Winsock one posts a receive, if the
// one in progress when it stopped has completed (an overlapped receive
// cannot be taken back, so that one takes what arrives first).
func (r *scenarioRunner) setReading(end *sockEnd, on bool) {
	end.paused = !on
	switch {
	case !on:
		r.rec.Note(r.net.Now(), end.host.spec.Name, fmt.Sprintf("%s's %s end stops reading: what arrives stays in its receive buffer (%d octets)", end.spec.memberName(end.member), end.end, end.conn.ReceiveBuffer()))
	case end.host.ws != nil:
		r.rec.Note(r.net.Now(), end.host.spec.Name, fmt.Sprintf("%s's %s end reads again", end.spec.memberName(end.member), end.end))
		if !end.posted && !end.failed && !end.ended {
			r.postRecv(end)
		}
	default:
		r.rec.Note(r.net.Now(), end.host.spec.Name, fmt.Sprintf("%s's %s end reads again", end.spec.memberName(end.member), end.end))
		r.readPOSIX(end)
	}
}

// socket returns the end an action works on, for member m of its
// connection, opening the client's socket on first use; it fails for a
// server end not yet accepted.
func (r *scenarioRunner) socket(a *Action, m int) (*sockEnd, string) {
	spec := r.s.connSpec(a.Conn)
	key := SocketKey(spec.memberName(m), a.End)
	if end := r.ends[key]; end != nil {
		return end, ""
	}
	if a.End == "server" {
		return nil, fmt.Sprintf("%s's server end is not open: %s has not accepted the connection yet", spec.memberName(m), spec.Server)
	}
	host := r.hosts[spec.clientOf(m)]
	end := &sockEnd{host: host, spec: spec, member: m, end: "client"}
	end.open()
	if end.conn == nil {
		return nil, "socket() failed on " + host.spec.Name
	}
	r.ends[key] = end
	r.run.Sockets[key] = end.conn.ID()
	return end, ""
}

// open opens end's TCP socket through its host's socket API (socket(),
// recorded as any call); end.conn stays nil if that fails.
func (end *sockEnd) open() {
	if ws := end.host.ws; ws != nil {
		end.ws = ws.Socket(sockopt.AF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
		end.conn = ws.Conn(end.ws)
		return
	}
	end.fd = end.host.px.Socket(sockopt.LinuxAF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
	end.conn = end.host.px.Conn(end.fd)
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

// act runs action i, on member m of its connection.
func (r *scenarioRunner) act(i, m int) {
	a := &r.s.Actions[i]
	out := &r.run.Calls[i]
	*out = CallOutcome{}
	if a.Conn == "" {
		r.network(a)
		out.Ran = true
		return
	}
	end, why := r.socket(a, m)
	if end == nil {
		out.Skipped = why
		r.rec.Note(r.net.Now(), r.s.socketHost(a), fmt.Sprintf("%s: %s not done: %s", a.Pos, a.Do, why))
		return
	}
	out.Ran = true
	if a.Note != "" {
		r.rec.Note(r.net.Now(), end.host.spec.Name, a.Note)
	}
	if a.Do == DoReading {
		r.setReading(end, a.Reading)
		return
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

// connectingFrom notes end as the client whose connection the server will
// accept.
func (r *scenarioRunner) connectingFrom(end *sockEnd) {
	if addr := end.conn.LocalAddr(); addr.IsValid() {
		r.clientAt[addr] = end
	}
}

func (r *scenarioRunner) winsock(a *Action, end *sockEnd, out *CallOutcome) {
	ws, s := end.host.ws, end.ws
	switch a.Do {
	case DoConnect:
		out.Result = ws.ConnectEx(s, r.raddr(a), func(e sockopt.WSAError) {
			if e != (sockopt.WSAError{}) {
				r.failedWith(end, "connect", sockopt.Errno{Name: e.Name, Code: e.Code})
				return
			}
			r.establish(end)
			r.startReading(end)
		})
		r.connectingFrom(end)
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
	case DoShutdown:
		out.Result = ws.Shutdown(s, a.How)
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
			r.connectingFrom(end)
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
	case DoShutdown:
		out.Result = px.Shutdown(fd, a.How)
	}
	if out.Result == -1 {
		e := px.Errno()
		out.Error, out.Code = e.Name, e.Code
		if (a.Do == DoRecv || a.Do == DoSend) && e.Name != "EAGAIN" {
			r.rec.AppError(r.net.Now(), end.conn, a.Do, e)
		}
	}
}

// startDrop puts drop action a's rule to work, and the network's filter
// with the first.
func (r *scenarioRunner) startDrop(a *Action) {
	if r.drops.Len() == 0 {
		r.net.SetDropFilter(r.dropFilter)
	}
	r.drops.Start(a)
}

// dropFilter says why a segment is dropped by the scenario's rules, or "".
func (r *scenarioRunner) dropFilter(seg *stack.Segment) string {
	from, end := "client", r.clientAt[seg.Src]
	if end == nil {
		from, end = "server", r.clientAt[seg.Dst]
	}
	if end == nil {
		return ""
	}
	return r.drops.Apply(end.spec.Name, end.member, end.spec.memberName(end.member), from, DropClassOf(seg.TCP.Flags(), seg.Payload, seg.Probe))
}

// DropRules are a scenario's drop rules at work (drop actions that have
// run): each counts the segments of its class that its end of each of its
// connections sends, and drops its Nth to its (Nth+Count-1)th. The runner
// applies them; kasim conform's lab applies the same, on its wire.
type DropRules struct {
	rules []*Action
	seen  map[[2]int]int // by (rule, member)
}

// Start puts drop action a's rule to work.
func (d *DropRules) Start(a *Action) {
	if d.seen == nil {
		d.seen = map[[2]int]int{}
	}
	d.rules = append(d.rules, a)
}

// Len is how many rules are at work.
func (d *DropRules) Len() int { return len(d.rules) }

// Apply counts a segment of class (DropClassOf) that end from ("client" or
// "server") of connection conn's member (named name) sends, and says why
// a rule drops it, or "".
func (d *DropRules) Apply(conn string, member int, name, from, class string) string {
	why := ""
	for i, a := range d.rules {
		rule := a.Drop
		if rule.Conn != conn || rule.From != from || rule.Class != class {
			continue
		}
		k := [2]int{i, member}
		d.seen[k]++
		if n := d.seen[k]; n >= rule.Nth && n < rule.Nth+rule.Count && why == "" {
			// The action's line, not its file: a trace does not depend
			// on the path the file was read from.
			why = fmt.Sprintf("dropped by the scenario: %s's %s #%d from the %s (the drop at line %d)", name, class, n, from, a.Pos.Line)
		}
	}
	return why
}
