package conform

// The live run: a scenario played in real time on a lab (internal/live),
// the stack under test's calls made through its peer, the tester's in
// kasim's gVisor, and every segment and report recorded as a trace.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"kasim/internal/live"
	"kasim/sim"
	"kasim/sockopt"
	"kasim/stack"
)

// programStart is how long the actions after a program's connect wait for
// its SYN.
const programStart = 5 * time.Second

// accepted is the tester's accepted connection, or why there is none.
type accepted struct {
	c   io.ReadWriteCloser
	err error
}

// liveRun holds one live run's state.
type liveRun struct {
	// subject and tester are the scenario's names for the stack under
	// test and the tester: the trace records events under them, so that
	// it compares with the simulation's.
	subject, tester string
	mu              sync.Mutex
	rec             *sim.Recorder
	t0              live.Mono
	sawSyn          bool           // the kernel host's first SYN was seen
	syn             chan live.Mono // its time, sent once (buffered)
	// drops are the scenario's drop rules at work on the lab's wire,
	// applied from the lab's goroutines under dropMu.
	dropMu sync.Mutex
	drops  sim.DropRules
	// gate stops and starts the tester's reading.
	gate *readGate
	// serverSide: the kernel is the server; the tester connects to it.
	// Then lfd is the kernel's listening socket and kfd the connection it
	// accepted (-1 until then).
	serverSide bool
	lfd, kfd   int
	dialed     chan accepted // the tester's connect, when it serves
}

// listenerBuffer is the receive buffer the scenario gives the tester's
// listening socket (SO_RCVBUF on end: listener, by the tester's profile's
// rule), or 0 for gVisor's default.
func listenerBuffer(s *sim.Scenario) int {
	for _, a := range s.Actions {
		if a.End == sim.EndListener && a.Do == sim.DoSetsockopt && a.OptName == "SO_RCVBUF" {
			for _, h := range s.Hosts {
				if h.Name == s.Conns[0].Server && h.Resolved != nil {
					return h.Resolved.Behaviour.ReceiveBuffer.Size(binary.LittleEndian.Uint32(a.Optval))
				}
			}
		}
	}
	return 0
}

// at is a live time as the trace counts it, from t0; r.mu is held.
func (r *liveRun) at(m live.Mono) time.Duration { return m.Sub(r.t0) }

// runLive plays s against the kernel (or the DUT) in real time and returns
// the trace and the peer's hello.
func runLive(l *labScenario, pcap io.Writer, program []string, d *DUT) (_ []sim.Event, _ live.Hello, err error) {
	s := l.live
	r := &liveRun{subject: l.subject, tester: l.tester, rec: sim.NewRecorder(), syn: make(chan live.Mono, 1), serverSide: l.serverSide}
	if l.serverSide && d != nil && d.Argv != nil {
		return nil, live.Hello{}, &cannotExpress{fmt.Sprintf("%s: the stack under test (%s) is the server here, which the lab plays on this machine's kernel only: a driver's stack connects", s.File, l.subject)}
	}
	opts := live.Options{PCAP: pcap, OnSegment: r.onSegment}
	if d != nil {
		opts.DUT, opts.DUTEnv = d.Argv, d.Env
	}
	lab, err := live.NewLab(opts)
	if err != nil {
		return nil, live.Hello{}, err
	}
	defer lab.Close()
	hello := lab.Peer().Hello()
	if err := checkDriver(s, hello); err != nil {
		return nil, hello, err
	}
	for _, c := range l.sysctls {
		res, err := lab.Peer().Sysctl(c.name, c.value)
		if err == nil && res.Errno != 0 {
			err = fmt.Errorf("%s", res.ErrnoName())
		}
		if err != nil {
			return nil, hello, fmt.Errorf("kernel: sysctl net.ipv4.%s=%d: %v", c.name, c.value, err)
		}
		r.mu.Lock()
		r.rec.Note(0, r.subject, fmt.Sprintf("net.ipv4.%s = %d in the kernel's namespace (it was %d)", c.name, c.value, res.Ret))
		r.mu.Unlock()
	}
	events, err := r.play(s, lab, program)
	return events, hello, err
}

// play runs the scenario's actions on the lab as their times come, and
// records what the peer reports and the wire carries.
func (r *liveRun) play(s *sim.Scenario, lab *live.Lab, program []string) ([]sim.Event, error) {
	conn := s.Conns[0]
	r.gate = newReadGate()
	var acceptc chan accepted
	var err error
	p := lab.Peer()
	fd := -1
	if r.serverSide {
		acceptc = make(chan accepted, 1) // the tester's connect, once an action makes it
		r.dialed = acceptc
		if err := r.listenKernel(s, p, netip.AddrPortFrom(lab.PeerAddr(), conn.Port)); err != nil {
			return nil, err
		}
	} else {
		ln, err := lab.ListenTCPBuffer(conn.Port, listenerBuffer(s))
		if err != nil {
			return nil, fmt.Errorf("tester: listen on %d: %v", conn.Port, err)
		}
		defer ln.Close()
		acceptc = startTester(ln.Accept, r.gate)
	}
	var tester io.ReadWriteCloser
	defer func() {
		if tester != nil {
			tester.Close()
		}
	}()
	if len(program) == 0 && !r.serverSide {
		if fd, err = kernelSocket(p); err != nil {
			return nil, err
		}
	}
	r.mu.Lock() // the lab's goroutines read it (at), for segments from now on
	r.t0 = live.Now()
	r.mu.Unlock()
	actions := slices.Clone(s.Actions)
	sort.SliceStable(actions, func(i, j int) bool { return actions[i].At < actions[j].At })
	events := p.Events()
	next := 0
	c := &playClock{base: r.t0, deadline: r.t0 + live.Mono(s.Duration)}
	for {
		now := live.Now()
		c.expire(now)
		if next < len(actions) && c.due(actions[next], now) {
			a := actions[next]
			next++
			if len(program) > 0 && a.End == "client" {
				if a.Do == sim.DoConnect {
					if err := r.startProgram(s, &a, p, netip.AddrPortFrom(lab.TesterAddr(), conn.Port), program); err != nil {
						return nil, err
					}
					c.holdForSyn(a, r.syn)
				}
				continue // the program sets its options itself
			}
			if r.serverSide {
				fd = r.kfd
			}
			if err := r.do(lab, a, fd, conn.Port, &tester, acceptc, r.call); err != nil {
				return nil, fmt.Errorf("%s:%d:%d: %s: %v", s.File, a.Pos.Line, a.Pos.Col, a.Do, err)
			}
			if a.Do == sim.DoConnect && lab.Silence() == live.SilenceNone {
				c.holdForAccept(a, 2*s.Latency, acceptc)
			}
			continue
		}
		if now >= c.deadline {
			break
		}
		wait := c.deadline.Sub(now)
		if c.until != 0 {
			wait = min(wait, c.until.Sub(now))
		}
		if next < len(actions) && (c.until == 0 || actions[next].At <= c.after) {
			wait = min(wait, (c.base + live.Mono(actions[next].At)).Sub(now))
		}
		tm := time.NewTimer(wait)
		select {
		case syn := <-c.syn:
			tm.Stop()
			c.release(syn)
		case acc := <-c.accept:
			tm.Stop()
			if acc.err != nil {
				return nil, fmt.Errorf("tester: accept: %v", acc.err)
			}
			tester = acc.c
			c.release(live.Now() - c.handshake)
		case ev, ok := <-events:
			tm.Stop()
			if !ok {
				return nil, errors.New("the kernel-side helper stopped")
			}
			if err := r.kernelEvent(p, fd, ev, program); err != nil {
				return nil, err
			}
		case <-tm.C:
		}
	}
	return r.events(), lab.Err()
}

// playClock is the live run's clock for the scenario's actions. Their
// times count from base, which moves on when the connection came up later
// than the simulation has it: a program takes a while to start (a Python
// interpreter, hundreds of ms on a busy machine), and on a busy machine a
// handshake can take longer than the scenario's next action, a silence
// that would then catch it half done. So the actions after a connect wait
// (up to programStart) for the program's SYN, or for the tester's accept,
// and count from it: a tester's "send at 2.2 s" stays 2.2 s after the
// connect, as in the simulation.
type playClock struct {
	base, deadline live.Mono
	// While until is set, actions later than after wait for syn or
	// accept, whichever is set; connectAt is when the connect was due.
	until, connectAt live.Mono
	after            time.Duration
	handshake        live.Mono // how long the simulation's handshake takes
	syn              <-chan live.Mono
	accept           <-chan accepted
}

// due says whether action a is to be done at now.
func (c *playClock) due(a sim.Action, now live.Mono) bool {
	if c.until != 0 && a.At > c.after {
		return false
	}
	return now >= c.base+live.Mono(a.At)
}

// holdForSyn holds the actions after a program's connect a until its SYN
// arrives on syn. The ones at the connect's own time wait too: the program
// makes its own calls, and the tester's are about its connection.
func (c *playClock) holdForSyn(a sim.Action, syn <-chan live.Mono) {
	c.connectAt, c.until, c.after = c.base+live.Mono(a.At), live.Now()+live.Mono(programStart), a.At-1
	c.syn, c.handshake = syn, 0
}

// holdForAccept holds the actions after connect a, later than its own
// time, until the tester accepts the connection, which the simulation
// establishes handshake after the connect.
func (c *playClock) holdForAccept(a sim.Action, handshake time.Duration, accept <-chan accepted) {
	c.connectAt, c.until, c.after = c.base+live.Mono(a.At), live.Now()+live.Mono(programStart), a.At
	c.accept, c.handshake = accept, live.Mono(handshake)
}

// release ends a hold: the connection came up at up (less the
// simulation's handshake), so the actions count on that much later.
func (c *playClock) release(up live.Mono) {
	if late := up - c.connectAt; late > 0 {
		c.base += late
		c.deadline += late
	}
	c.until, c.syn, c.accept = 0, nil, nil
}

// expire ends a hold that has waited programStart: no SYN or no accept,
// so the actions count on from the connect.
func (c *playClock) expire(now live.Mono) {
	if c.until != 0 && now >= c.until {
		c.until, c.syn, c.accept = 0, nil, nil
	}
}

// events returns the trace in time order: the lab's goroutines record
// segments and the helper's reports as they come.
func (r *liveRun) events() []sim.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.rec.Events())
	sort.SliceStable(out, func(i, j int) bool { return out[i].Head().TNS < out[j].Head().TNS })
	return out
}

// kernelSocket opens the kernel's socket through the helper.
func kernelSocket(p *live.Peer) (int, error) {
	sock, err := p.Socket()
	if err != nil || sock.Errno != 0 {
		return -1, fmt.Errorf("kernel: socket: %v %s", err, sock.ErrnoName())
	}
	return sock.Ret, nil
}

// startProgram starts the program that takes the kernel's place, at the
// scenario's connect, telling it what to connect to and the options the
// scenario sets before.
func (r *liveRun) startProgram(s *sim.Scenario, a *sim.Action, p *live.Peer, tester netip.AddrPort, program []string) error {
	env := stackEnv(s, a, tester)
	res, err := p.ExecEnv(env, program...)
	if err != nil {
		return fmt.Errorf("%s:%d:%d: starting %s: %v", s.File, a.Pos.Line, a.Pos.Col, program[0], err)
	}
	r.mu.Lock()
	r.rec.Note(r.at(res.At), r.subject, fmt.Sprintf("%s started (pid %d), told %s", program[0], res.Ret, strings.Join(env, " ")))
	r.mu.Unlock()
	return nil
}

// onSegment records a segment the lab saw on the wire, and the kernel's
// first SYN's time once.
func (r *liveRun) onSegment(seg live.Segment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	from, to := r.subject, r.tester
	reason := ""
	if seg.Dir != live.Out && seg.Flags&header.TCPFlagSyn != 0 && seg.Flags&header.TCPFlagAck == 0 && !r.sawSyn {
		r.sawSyn = true
		r.syn <- seg.At
	}
	if seg.Dir == live.Out {
		from, to = r.tester, r.subject
	}
	if seg.Dropped {
		reason = "silenced: " + r.tester + " receives nothing"
		if seg.Dir == live.Out {
			reason = "silenced: " + r.tester + " sends nothing"
		}
		if seg.DropReason != "" {
			reason = seg.DropReason
		}
	}
	r.rec.Wire(sim.WireSegment{At: r.at(seg.At), From: from, To: to, Src: seg.Src, Dst: seg.Dst,
		Flags: seg.Flags, Seq: seg.Seq, Ack: seg.Ack, Win: seg.Window, Len: seg.Len, Dropped: seg.Dropped, DropReason: reason})
}

// wireSoFar says what the wire has carried so far, for an error that
// would otherwise leave the reader guessing why (a SYN lost, a handshake
// that came late on a busy machine).
func (r *liveRun) wireSoFar() string {
	var segs []string
	for _, e := range r.events() {
		if e, ok := e.(*sim.SegmentEvent); ok {
			seg := fmt.Sprintf("%s %s %s", e.T, e.Host, e.Flags)
			if e.Dropped {
				seg += " dropped"
			}
			segs = append(segs, seg)
		}
	}
	if len(segs) == 0 {
		return "no segment on the wire yet"
	}
	const most = 8
	if len(segs) > most {
		segs = append(segs[:most:most], fmt.Sprintf("and %d more", len(segs)-most))
	}
	return "the wire so far: " + strings.Join(segs, ", ")
}

// startTester accepts the kernel's connection (open: the listener's
// Accept, or the tester's connect) and keeps a receive pending on it, as
// the simulation's application does, except while the scenario has the
// tester stop reading (reading: false, through pause).
func startTester(open func() (net.Conn, error), pause *readGate) chan accepted {
	acceptc := make(chan accepted, 1)
	go func() {
		c, err := open()
		acceptc <- accepted{c, err}
		if err != nil {
			return
		}
		pause.attach(c)
		buf := make([]byte, 65536)
		for {
			pause.wait()
			if _, err := c.Read(buf); err != nil {
				var to interface{ Timeout() bool }
				if errors.As(err, &to) && to.Timeout() {
					continue // the gate woke the receive (gonet's timeout is not os.ErrDeadlineExceeded): wait
				}
				return
			}
		}
	}()
	return acceptc
}

// readGate lets the live run stop the tester's reading and start it
// again: a stop wakes the receive in progress with a past deadline, so
// that what arrives from then on stays in the tester's receive buffer.
type readGate struct {
	mu      sync.Mutex
	c       net.Conn
	stopped bool
	resume  chan struct{} // closed when reading starts again
}

func newReadGate() *readGate { return &readGate{resume: make(chan struct{})} }

func (g *readGate) attach(c net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.c = c
	if g.stopped {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
}

// set stops reading (on false) or starts it again.
func (g *readGate) set(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !on && !g.stopped:
		g.stopped, g.resume = true, make(chan struct{})
		if g.c != nil {
			_ = g.c.SetReadDeadline(time.Unix(1, 0))
		}
	case on && g.stopped:
		g.stopped = false
		if g.c != nil {
			_ = g.c.SetReadDeadline(time.Time{})
		}
		close(g.resume)
	}
}

// wait returns once reading is on.
func (g *readGate) wait() {
	g.mu.Lock()
	stopped, resume := g.stopped, g.resume
	g.mu.Unlock()
	if stopped {
		<-resume
	}
}

// appError records an error the kernel's application saw.
func (r *liveRun) appError(at live.Mono, op string, e live.Event) {
	r.mu.Lock()
	r.rec.Add(r.at(at), r.subject, sim.KindAppError, &sim.AppErrorEvent{Op: op, Error: e.ErrnoName(), Code: int(e.Errno)})
	r.mu.Unlock()
}

// call records a socket call the helper made on the kernel, and its
// result.
func (r *liveRun) call(at live.Mono, name, level, opt string, value any, res live.Result) {
	ev := &sim.SockOptEvent{Call: name, Level: level, Opt: opt, Value: value, Result: res.Ret}
	if res.Errno != 0 {
		ev.Result, ev.Error, ev.Code = -1, res.ErrnoName(), int(res.Errno)
	}
	r.mu.Lock()
	r.rec.Add(r.at(at), r.subject, sim.KindSockOpt, ev)
	r.mu.Unlock()
}

// kernelEvent handles what the kernel-side helper reports: a program's
// output and exit, a connect's completion, a receive's; it keeps a receive
// pending, as the simulation's application does.
func (r *liveRun) kernelEvent(p *live.Peer, fd int, ev live.Event, program []string) error {
	switch ev.Kind {
	case live.EventOutput:
		if op, errno, ok := programReport(ev.Detail); ok {
			ev.Errno = errno
			r.appError(ev.At, op, ev)
		}
	case live.EventExit:
		r.mu.Lock()
		r.rec.Note(r.at(ev.At), r.subject, fmt.Sprintf("%s ended: exit status %d %s", program[0], ev.Ret, ev.Detail))
		r.mu.Unlock()
	case live.EventConnect:
		if ev.Errno != 0 {
			r.appError(ev.At, "connect", ev)
			return nil
		}
		if _, err := p.Recv(fd, 65536); err != nil {
			return err
		}
	case live.EventAccept:
		if ev.Errno != 0 {
			r.appError(ev.At, "accept", ev)
			return nil
		}
		r.kfd = ev.Ret
		r.call(ev.At, "accept", "", "", ev.Detail, live.Result{Ret: ev.Ret, At: ev.At})
		if _, err := p.Recv(ev.Ret, 65536); err != nil {
			return err
		}
	case live.EventRecv:
		if ev.Errno != 0 {
			r.appError(ev.At, "recv", ev)
		} else if ev.Ret > 0 {
			if _, err := p.Recv(ev.FD, 65536); err != nil {
				return err
			}
		}
	}
	return nil
}

// listenKernel opens the kernel's listening socket at addr: the calls the
// scenario makes on it (end: listener) first, as an application makes
// them before it listens, then bind, listen, and an accept pending.
func (r *liveRun) listenKernel(s *sim.Scenario, p *live.Peer, addr netip.AddrPort) error {
	fd, err := kernelSocket(p)
	if err != nil {
		return err
	}
	r.lfd, r.kfd = fd, -1
	for _, a := range s.Actions {
		if a.End != sim.EndListener {
			continue
		}
		a.End = "client" // do's socket calls, on fd
		if err := r.socketCall(p, a, fd); err != nil {
			return fmt.Errorf("%s:%d:%d: %s: %v", s.File, a.Pos.Line, a.Pos.Col, a.Do, err)
		}
	}
	for _, step := range []struct {
		name string
		call func() (live.Result, error)
	}{
		{"bind", func() (live.Result, error) { return p.Bind(fd, addr) }},
		{"listen", func() (live.Result, error) { return p.Listen(fd, 16) }},
		{"accept", func() (live.Result, error) { return p.Accept(fd) }},
	} {
		res, err := step.call()
		if err == nil && res.Errno != 0 {
			err = fmt.Errorf("%s", res.ErrnoName())
		}
		if err != nil {
			return fmt.Errorf("kernel: %s on %v: %v", step.name, addr, err)
		}
	}
	return nil
}

// do performs one action live.
func (r *liveRun) do(lab *live.Lab, a sim.Action, fd int, port uint16, tester *io.ReadWriteCloser,
	acceptc <-chan accepted, call func(live.Mono, string, string, string, any, live.Result)) error {
	p := lab.Peer()
	if a.End == sim.EndListener {
		return nil // the listener took it when it was made (listenerBuffer, listenKernel)
	}
	subjectEnd := "client"
	if r.serverSide {
		subjectEnd = "server"
	}
	switch a.Do {
	case sim.DoSetsockopt, sim.DoGetsockopt:
		if fd < 0 {
			return fmt.Errorf("kernel: no connection accepted yet to call %s on (%s)", a.Do, r.wireSoFar())
		}
		return r.socketCall(p, a, fd)
	case sim.DoConnect:
		if r.serverSide {
			r.dial(lab, port)
			return nil
		}
		res, err := p.Connect(fd, netip.AddrPortFrom(lab.TesterAddr(), port))
		if err != nil {
			return err
		}
		call(res.At, "connect", "", "", netip.AddrPortFrom(lab.TesterAddr(), port).String(), res)
	case sim.DoSend:
		if a.End == subjectEnd {
			res, err := p.Send(fd, len(a.Data))
			if err != nil {
				return err
			}
			call(res.At, "send", "", "", len(a.Data), res)
			return nil
		}
		if *tester == nil {
			select {
			case acc := <-acceptc:
				if acc.err != nil {
					return fmt.Errorf("tester: accept: %v", acc.err)
				}
				*tester = acc.c
			case <-time.After(time.Second):
				return fmt.Errorf("tester: no connection to send on (%s)", r.wireSoFar())
			}
		}
		if _, err := (*tester).Write(a.Data); err != nil {
			return fmt.Errorf("tester: send: %v", err)
		}
	case sim.DoReading:
		r.gate.set(a.Reading)
	case sim.DoShutdown:
		if a.End == subjectEnd {
			res, err := p.Shutdown(fd, a.How) // SHUT_RD, SHUT_WR, SHUT_RDWR: numbered as the scenario's
			if err != nil {
				return err
			}
			call(res.At, "shutdown", "", "", sockopt.POSIXShutdownNames[a.How], res)
			return nil
		}
		return r.shutdownTester(*tester, a.How)
	case sim.DoSilence:
		s := live.SilenceBoth
		switch a.Direction {
		case stack.Inbound:
			s = live.SilenceIn
		case stack.Outbound:
			s = live.SilenceOut
		}
		lab.SetSilence(s)
	case sim.DoHeal:
		lab.SetSilence(live.SilenceNone)
	case sim.DoDrop:
		r.startDrop(lab, a)
	}
	return nil
}

// socketCall makes the kernel's setsockopt or getsockopt a on fd, and
// records it.
func (r *liveRun) socketCall(p *live.Peer, a sim.Action, fd int) error {
	var res live.Result
	var err error
	var v any
	if a.Do == sim.DoSetsockopt {
		n := int(int32(binary.LittleEndian.Uint32(a.Optval)))
		res, err = p.Setsockopt(fd, a.LevelName, a.OptName, n)
		v = n
	} else {
		res, err = p.Getsockopt(fd, a.LevelName, a.OptName)
		v = res.Ret
	}
	if err != nil {
		return err
	}
	r.call(res.At, a.Do, a.LevelName, a.OptName, v, res)
	return nil
}

// dial has the tester connect to the kernel's listener, in the
// background: r.dialed gets the connection, or why there is none, which
// the tester then reads from as startTester's do.
func (r *liveRun) dial(lab *live.Lab, port uint16) {
	got := startTester(func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return lab.DialTCP(ctx, port)
	}, r.gate)
	go func() { r.dialed <- <-got }()
}

// shutdownTester shuts the tester's end down as the scenario's shutdown
// on the server end says.
func (r *liveRun) shutdownTester(tester io.ReadWriteCloser, how int) error {
	c, ok := tester.(interface {
		CloseRead() error
		CloseWrite() error
	})
	if !ok {
		return fmt.Errorf("tester: no connection to shut down (%s)", r.wireSoFar())
	}
	var err error
	if how != stack.ShutdownWrite {
		err = c.CloseRead()
	}
	if how != stack.ShutdownRead && err == nil {
		err = c.CloseWrite()
	}
	if err != nil {
		return fmt.Errorf("tester: shutdown: %v", err)
	}
	return nil
}

// startDrop puts drop action a's rule to work on the lab's wire, as the
// simulation's runner does on its network: the stack under test is the
// client of the one connection, the tester its server.
func (r *liveRun) startDrop(lab *live.Lab, a sim.Action) {
	r.dropMu.Lock()
	defer r.dropMu.Unlock()
	if r.drops.Len() == 0 {
		lab.SetDropFilter(func(seg live.Segment) string {
			from := "client" // In: the kernel's, the client's unless it serves
			if (seg.Dir == live.Out) != r.serverSide {
				from = "server"
			}
			class := sim.DropClassOf(seg.Flags, seg.Len, false) // checkLive refused keep-alive probes
			r.dropMu.Lock()
			defer r.dropMu.Unlock()
			return r.drops.Apply(a.Drop.Conn, 0, a.Drop.Conn, from, class)
		})
	}
	r.drops.Start(&a)
}
