package sim

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"

	"kasim/sockopt"
	"kasim/stack"
)

// Recorder observes a stack.Network and builds its trace. Segment classes
// are read off the wire, the way Wireshark's TCP analysis reads a capture
// (see classify); keep-alive decisions are the stack's own bookkeeping
// (stack.Segment.Probe and Answered, stack.StateChange.KeepAliveAbort).
type Recorder struct {
	events  []Event
	flows   map[flowKey]*flowState
	sink    func(Event) // Stream's
	discard bool        // Stream's: keep no events
	// countSegments: segment events are counted in segments, not made
	// (CountSegments).
	countSegments bool
	segments      int64
}

// CountSegments has the Recorder count the segment events it would record
// instead of making them: every other event is recorded as before. A
// summary of a large run reads keep-alive, state and error events only,
// and a segment event costs the most to make (two flow lookups, an
// allocation, its formatted time). Segments returns the count.
func (r *Recorder) CountSegments() { r.countSegments = true }

// Segments returns how many segment events CountSegments counted.
func (r *Recorder) Segments() int64 { return r.segments }

// flowKey is a segment's direction as plain bytes, which hash and compare
// faster than netip values.
type flowKey struct {
	srcPort, dstPort uint16
	src, dst         [16]byte
}

func keyOf(src, dst netip.AddrPort) flowKey {
	return flowKey{srcPort: src.Port(), dstPort: dst.Port(), src: src.Addr().As16(), dst: dst.Addr().As16()}
}

// flowState is one direction of a connection as seen on the wire.
type flowState struct {
	isn       seqnum.Value
	next      seqnum.Value // highest sequence number sent + 1: the sender's SND.NXT
	lastProbe bool         // the last segment in this direction was a delivered probe
	// zeroWin: the last segment in this direction closed the window it
	// had offered (one never offered cannot close: a segment built
	// without a window field is not a zero window).
	zeroWin, offered bool
	src, dst         string // formatted once: a flow's addresses never change
}

// NewRecorder returns an empty Recorder; pass it to Network.Observe.
func NewRecorder() *Recorder {
	return &Recorder{flows: make(map[flowKey]*flowState)}
}

// Events returns the trace so far, in order (nothing after Stream with
// keep false).
func (r *Recorder) Events() []Event { return r.events }

// Stream hands each event to sink as it is recorded, in trace order; with
// keep false the Recorder keeps none, so a run's memory does not grow with
// its length. Events are never changed once recorded.
func (r *Recorder) Stream(sink func(Event), keep bool) {
	r.sink, r.discard = sink, !keep
}

// Add appends e at virtual time at on host, filling in its header.
func (r *Recorder) Add(at time.Duration, host string, kind string, e Event) {
	*e.Head() = newHeader(at, host, kind)
	if !r.discard {
		r.events = append(r.events, e)
	}
	if r.sink != nil {
		r.sink(e)
	}
}

// HalfOpen implements stack.HalfOpenObserver: a half-open connection
// its server gave up is a give-up event of no socket.
func (r *Recorder) HalfOpen(h stack.HalfOpen) {
	r.Add(h.At, h.Host.Name(), KindGiveUp, &GiveUpEvent{Rule: string(h.Rule), Retransmissions: h.Retransmissions, HalfOpen: h.Remote.String()})
}

// Segment implements stack.Observer.
func (r *Recorder) Segment(s *stack.Segment) {
	if s.TCP == nil {
		return
	}
	if s.Probe && s.FromConn != nil {
		r.keepAlive(s.At, s.FromConn, ActionProbe, s.ProbeNumber, s.ProbeNumber-1)
	}
	if r.countSegments {
		r.segments++
		return
	}
	var conn int
	if s.FromConn != nil {
		conn = s.FromConn.ID()
	}
	var to string
	if s.To != nil {
		to = s.To.Name()
	}
	probe := ""
	switch {
	case s.Probe:
		probe = ClassKeepAliveProbe
	case s.WindowProbe > 0:
		probe = ClassWindowProbe
	}
	r.segment(s.At, s.From.Name(), to, conn, s.TCP, s.Src, s.Dst, s.Payload, probe, s.Dropped, s.DropReason)
}

// segment records one TCP segment sent by host from (to host to, "" if
// none) from socket conn (0 if unknown).
// probe is the class of a probe, as the stack (or the wire) has told it:
// ClassKeepAliveProbe, ClassWindowProbe or "".
func (r *Recorder) segment(at time.Duration, from, to string, conn int, t header.TCP, src, dst netip.AddrPort, payload int, probe string, dropped bool, reason string) {
	key := keyOf(src, dst)
	f := r.flows[key]
	rev := r.flows[keyOf(dst, src)]
	class := classify(t, payload, probe, f, rev)

	seq, ack := t.SequenceNumber(), t.AckNumber()
	if f == nil {
		f = &flowState{isn: seqnum.Value(seq), next: seqnum.Value(seq), src: src.String(), dst: dst.String()}
		r.flows[key] = f
	}
	ev := &SegmentEvent{
		Dir:        "out",
		Src:        f.src,
		Dst:        f.dst,
		To:         to,
		Conn:       conn,
		Flags:      flagString(t.Flags()),
		Len:        payload,
		Win:        t.WindowSize(),
		Class:      class,
		Dropped:    dropped,
		DropReason: reason,
	}
	ev.Seq = seq - uint32(f.isn)
	if t.Flags().Contains(header.TCPFlagAck) {
		ev.Ack = ack
		if rev != nil {
			ev.Ack = ack - uint32(rev.isn)
		}
	}
	r.Add(at, from, KindSegment, ev)

	if !t.Flags().Contains(header.TCPFlagRst) {
		end := seqnum.Value(seq).Add(seqnum.Size(payload))
		if t.Flags().Contains(header.TCPFlagSyn) {
			end++
		}
		if t.Flags().Contains(header.TCPFlagFin) {
			end++
		}
		if f.next.LessThan(end) {
			f.next = end
		}
	}
	f.lastProbe = class == ClassKeepAliveProbe && !dropped
	if !t.Flags().Contains(header.TCPFlagRst) {
		f.offered = f.offered || t.WindowSize() > 0
		f.zeroWin = f.offered && t.WindowSize() == 0
	}
}

// WireSegment is a TCP segment seen on a real wire (kasim conform's
// capture), for Recorder.Wire.
type WireSegment struct {
	At       time.Duration // since the run started
	From, To string        // the sending and receiving hosts' names
	Src, Dst netip.AddrPort
	Flags    header.TCPFlags
	Seq, Ack uint32 // absolute, as on the wire
	Win      uint16
	Len      int // payload octets
	Dropped  bool
	// DropReason says why Dropped; empty otherwise.
	DropReason string
}

// Wire records a segment seen on a real wire, with the same class,
// relative sequence numbers and fields a simulated one gets. With no stack
// to ask, a keep-alive probe is read off the wire as Wireshark reads one:
// an ACK without SYN, FIN or RST, of 0 or 1 octet, whose sequence number is
// one below the highest its sender has sent.
func (r *Recorder) Wire(w WireSegment) {
	tcp := header.TCP(make([]byte, header.TCPMinimumSize))
	tcp.Encode(&header.TCPFields{SrcPort: w.Src.Port(), DstPort: w.Dst.Port(), SeqNum: w.Seq, AckNum: w.Ack,
		DataOffset: header.TCPMinimumSize, Flags: w.Flags, WindowSize: w.Win})
	f := r.flows[keyOf(w.Src, w.Dst)]
	probe := ""
	if f != nil && w.Len <= 1 && seqnum.Value(w.Seq).Add(1) == f.next &&
		w.Flags.Contains(header.TCPFlagAck) && !w.Flags.Intersects(header.TCPFlagSyn|header.TCPFlagFin|header.TCPFlagRst) {
		probe = ClassKeepAliveProbe
		if rev := r.flows[keyOf(w.Dst, w.Src)]; rev != nil && rev.zeroWin {
			probe = ClassWindowProbe
		}
	}
	r.segment(w.At, w.From, w.To, 0, tcp, w.Src, w.Dst, w.Len, probe, w.Dropped, w.DropReason)
}

// classify names a segment's role, from its flags, length and sequence
// number against what its direction (f) and the other direction (rev) sent
// before; f or rev is nil when nothing was seen yet. Whether it is a
// keep-alive probe (RFC 1122 4.2.3.6: SEG.SEQ = SND.NXT-1, no data or one
// garbage octet) or a window probe the stack has decided already
// (stack.Segment.Probe, WindowProbe): probe is its class, or "".
func classify(t header.TCP, payload int, probe string, f, rev *flowState) string {
	flags := t.Flags()
	seq := seqnum.Value(t.SequenceNumber())
	old := f != nil && seq.LessThan(f.next) // starts below SND.NXT
	switch {
	case flags.Contains(header.TCPFlagRst):
		return ClassRST
	case flags.Contains(header.TCPFlagSyn):
		if old {
			return ClassRetransmission
		}
		if flags.Contains(header.TCPFlagAck) {
			return ClassSYNACK
		}
		return ClassSYN
	case probe != "":
		return probe
	case (payload > 0 || flags.Contains(header.TCPFlagFin)) && old:
		return ClassRetransmission
	case flags.Contains(header.TCPFlagFin):
		return ClassFIN
	case payload > 0:
		return ClassData
	case flags == header.TCPFlagAck && rev != nil && rev.lastProbe && seqnum.Value(t.AckNumber()) == rev.next:
		return ClassKeepAliveACK
	}
	return ClassACK
}

// flagLetters spells flags as Wireshark's and tcpdump's compact form does:
// F S R P A U E C, in that order ("SA", "PA", "FA", "RA").
var flagLetters = [...]struct {
	flag header.TCPFlags
	c    byte
}{
	{header.TCPFlagFin, 'F'}, {header.TCPFlagSyn, 'S'}, {header.TCPFlagRst, 'R'}, {header.TCPFlagPsh, 'P'},
	{header.TCPFlagAck, 'A'}, {header.TCPFlagUrg, 'U'}, {header.TCPFlagEce, 'E'}, {header.TCPFlagCwr, 'C'},
}

// flagStrings holds the spelling of every flag combination, so that the
// trace's hottest field costs no allocation.
var flagStrings = func() (t [256]string) {
	for i := range t {
		var b []byte
		for _, x := range flagLetters {
			if header.TCPFlags(i).Contains(x.flag) {
				b = append(b, x.c)
			}
		}
		t[i] = string(b)
	}
	return t
}()

func flagString(f header.TCPFlags) string { return flagStrings[uint8(f)] }

// Deliver implements stack.Observer. A segment reaching a connection with
// probes outstanding answers them: the count restarts, and so does the idle
// time.
func (r *Recorder) Deliver(s *stack.Segment) {
	if s.Answered > 0 && s.ToConn != nil {
		r.keepAlive(s.At, s.ToConn, ActionRearm, 0, s.Answered)
	}
}

// State implements stack.Observer.
func (r *Recorder) State(ch stack.StateChange) {
	if ch.KeepAliveAbort {
		unanswered, _ := ch.Conn.KeepAliveProbes()
		r.keepAlive(ch.At, ch.Conn, ActionAbort, 0, unanswered)
	}
	if ch.GaveUp != "" {
		g := &GiveUpEvent{Conn: ch.Conn.ID(), Rule: string(ch.GaveUp), Retransmissions: ch.Retransmissions, LimitNS: int64(ch.Limit)}
		if ch.WindowProbes > 0 {
			g.WindowProbes, g.FirstWindowProbeNS = ch.WindowProbes, int64(ch.Since)
		} else {
			g.FirstRetransmissionNS = int64(ch.Since)
		}
		r.Add(ch.At, ch.Conn.Host().Name(), KindGiveUp, g)
	}
	r.Add(ch.At, ch.Conn.Host().Name(), KindState, &StateEvent{Conn: ch.Conn.ID(), From: ch.From.String(), To: ch.To.String()})
}

func (r *Recorder) keepAlive(at time.Duration, c *stack.Conn, action string, probe, unanswered int) {
	ka := c.KeepAlive()
	_, lastRecv := c.KeepAliveProbes()
	r.Add(at, c.Host().Name(), KindKeepAlive, &KeepAliveEvent{
		Conn: c.ID(), Action: action, Probe: probe, Unanswered: unanswered,
		IdleNS: int64(ka.Idle), IntervalNS: int64(ka.Interval), Count: ka.Count,
		LastRecvNS: int64(lastRecv), UserTimeoutNS: int64(c.UserTimeout()),
	})
}

// Link implements stack.Observer.
func (r *Recorder) Link(ch stack.LinkChange) {
	ev := &LinkEvent{Action: ch.Action}
	if ch.B != nil {
		ev.Peer = ch.B.Name()
	}
	switch ch.Action {
	case "silence":
		ev.Direction = ch.Direction.String()
	case "loss":
		ev.Loss = &ch.Loss
	case "latency":
		ns := int64(ch.Latency)
		ev.LatencyNS = &ns
	case "middlebox":
		ns := int64(ch.Idle)
		ev.IdleNS = &ns
	}
	r.Add(ch.At, ch.A.Name(), KindLink, ev)
}

// SockOpt records a socket call on c and its outcome; err is nil on success.
func (r *Recorder) SockOpt(at time.Duration, c *stack.Conn, call, level, opt string, value any, err error) {
	ev := &SockOptEvent{Conn: c.ID(), Call: call, Level: level, Opt: opt, Value: value}
	if err != nil {
		ev.Result = -1
		if e, ok := sockopt.ErrnoFromError(err); ok {
			ev.Error, ev.Code = e.Name, e.Code
		} else {
			ev.Error = err.Error()
		}
	}
	r.Add(at, c.Host().Name(), KindSockOpt, ev)
}

// AppError records an error an operation on c returned to the application.
func (r *Recorder) AppError(at time.Duration, c *stack.Conn, op string, e sockopt.Errno) {
	r.Add(at, c.Host().Name(), KindAppError, &AppErrorEvent{Conn: c.ID(), Op: op, Error: e.Name, Code: e.Code})
}

// Note records free text for teaching output.
func (r *Recorder) Note(at time.Duration, host, text string) {
	r.Add(at, host, KindNote, &NoteEvent{Text: text})
}

// Call records a socket call and its outcome on host: a Winsock
// call, or a POSIX one (sockopt.Call serves both).
func (r *Recorder) Call(at time.Duration, host string, c sockopt.Call) {
	ev := &SockOptEvent{Call: c.Func, Level: c.Level, Opt: c.Opt, Value: c.Value, Result: c.Result}
	if c.Conn != nil {
		ev.Conn = c.Conn.ID()
	}
	if c.Err != (sockopt.WSAError{}) {
		ev.Error, ev.Code = c.Err.Name, c.Err.Code
	}
	r.Add(at, host, KindSockOpt, ev)
}
