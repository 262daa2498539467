// Package stack runs simulated hosts, each a real gVisor TCP/IP stack, on one
// virtual clock, joined by links the driver loop pumps itself.
//
// Determinism comes from four rules: every timer lives on the Network's
// virtual clock and fires on the driver's goroutine in (deadline, scheduling
// order); each host has exactly one TCP processor goroutine; after packets are
// injected into a host the driver waits for that processor to drain (a
// barrier) before it moves anything else; and all randomness (ISNs, ports,
// loss) comes from the Network's seed. The same program and seed therefore
// produce the same packets at the same virtual nanoseconds on every run.
package stack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"kasim/timers"
)

// Config configures a Network. The zero value is usable.
type Config struct {
	// Seed drives every random choice: ISNs, ephemeral ports, loss.
	Seed uint64
	// Queue holds the virtual clock's timers; nil means a timers.Heap4.
	Queue timers.Queue
	// Latency is the initial one-way delay between every pair of hosts.
	Latency time.Duration
	// Horizon bounds Run: it stops with ErrHorizon rather than advance the
	// clock past it. Zero means DefaultHorizon.
	Horizon time.Duration
}

// DefaultHorizon is the virtual time Run gives up at unless told otherwise:
// far beyond any keep-alive schedule (Windows' largest, 0xFFFFFFFF ms idle
// plus 255 probes of the same, is under 50 days), and finite.
const DefaultHorizon = 100 * 24 * time.Hour

// maxWorkPerInstant bounds the settle loop at one virtual instant, counted
// in rounds plus timer callbacks. A herd of 40,000 connections probing at
// once needs about 10^5; millions mean something keeps scheduling work for
// "now" forever.
const maxWorkPerInstant = 1 << 22

// ErrHorizon is returned by Run when timers are still pending at the
// Network's horizon.
var ErrHorizon = errors.New("stack: virtual time horizon reached with timers still pending")

// Network is a set of hosts on one virtual clock, and the driver that moves
// packets between them. Every method must be called from one goroutine: the
// one running the Network, or a callback the Network runs.
type Network struct {
	cfg      Config
	clock    *timers.Clock
	hosts    []*Host
	byAddr   map[netip.Addr]*Host
	paths    map[[2]int]*path // by (from.index, to.index)
	silenced map[int]Direction
	// dropFilter, if set, drops the TCP segments it names a reason for
	// (SetDropFilter).
	dropFilter func(*Segment) string
	observers  []Observer
	loss       *rand.Rand
	nextSock   int
	listeners  []*Listener
	stopped    bool
	closed     bool
	workLimit  int // maxWorkPerInstant; tests lower it

	dirtyMu sync.Mutex
	dirty   []*Conn
	spare   []*Conn
	pkts    []packet
	seg     Segment
}

// Direction selects one or both directions of traffic at a host.
type Direction int

// Directions for Silence.
const (
	Inbound  Direction = 1 << iota // packets addressed to the host
	Outbound                       // packets the host sends
	Both     = Inbound | Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "in"
	case Outbound:
		return "out"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// NewNetwork returns an empty network at virtual time zero.
func NewNetwork(cfg Config) *Network {
	if cfg.Horizon <= 0 {
		cfg.Horizon = DefaultHorizon
	}
	return &Network{
		cfg:       cfg,
		clock:     timers.NewClock(cfg.Queue, time.Time{}),
		byAddr:    make(map[netip.Addr]*Host),
		paths:     make(map[[2]int]*path),
		silenced:  make(map[int]Direction),
		loss:      rand.New(rand.NewPCG(cfg.Seed, 0x6b6173696d)),
		workLimit: maxWorkPerInstant,
	}
}

// AddHost adds a host named name (a letter, then letters, digits, '_', '.'
// or '-'); names are unique within a Network.
func (n *Network) AddHost(name string) (*Host, error) { return n.AddHostWith(name, HostOptions{}) }

// HostOptions configure one host.
type HostOptions struct {
	// Timers, if set, holds the host's stack timers instead of the
	// Network's queue: a timers.LinuxWheel gives the host a Linux kernel's
	// timer slack while the network's own timers (link delays) stay exact.
	Timers timers.Queue
	// Behaviour is how the host's TCP differs from gVisor's own; the zero
	// value is gVisor's.
	Behaviour Behaviour
	// TimersStart, if set with a Timers that ticks (timers.TickQueue),
	// anchors its ticks to the host's first connection: they fall at
	// TimersStart after the host first connects or receives a SYN, and
	// every tick from there. lwIP's tcp_tmr is started when its first
	// connection becomes active (tcp_timer_needed) and calls
	// tcp_slowtmr on its first run, TCP_TMR_INTERVAL (250 ms) later.
	TimersStart time.Duration
}

// originSetter is a timer queue whose ticks can be moved (TickQueue).
type originSetter interface{ SetOrigin(origin int64) }

// AddHostWith adds a host with options; see AddHost.
func (n *Network) AddHostWith(name string, o HostOptions) (*Host, error) {
	if n.closed {
		return nil, errClosed
	}
	h, err := n.newHost(name, o)
	if err != nil {
		return nil, err
	}
	n.hosts = append(n.hosts, h)
	n.byAddr[h.v4] = h
	n.byAddr[h.v6] = h
	return h, nil
}

// Hosts returns the hosts in the order they were added.
func (n *Network) Hosts() []*Host { return slices.Clone(n.hosts) }

// Host returns the host named name, or nil.
func (n *Network) Host(name string) *Host {
	for _, h := range n.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// Clock returns the Network's virtual clock.
func (n *Network) Clock() *timers.Clock { return n.clock }

// Now returns the virtual time since the Network started.
func (n *Network) Now() time.Duration { return n.clock.Elapsed() }

// Observe adds an observer; observers are called in the order added.
func (n *Network) Observe(o Observer) { n.observers = append(n.observers, o) }

// At runs f on the driver at virtual time t (now, if t is already past).
// Stop on the returned timer cancels it.
func (n *Network) At(t time.Duration, f func()) tcpip.Timer {
	return n.clock.AfterFunc(t-n.Now(), f)
}

// After runs f on the driver d from now.
func (n *Network) After(d time.Duration, f func()) tcpip.Timer {
	return n.clock.AfterFunc(d, f)
}

// Observer sees everything that happens in a Network, in the order it
// happens. Calls come from the driver; an observer must not call back into
// the Network.
type Observer interface {
	// Segment reports an IP packet as its sender emitted it, including
	// packets the network then dropped.
	Segment(*Segment)
	// State reports a TCP state change of a connection.
	State(StateChange)
	// Deliver reports a packet arriving at its destination host, just
	// before the host processes it: later than Segment by the path's
	// latency, and never for a dropped packet.
	Deliver(*Segment)
	// Link reports a change of the simulated network.
	Link(LinkChange)
}

// Segment is a packet on the wire. Packet and TCP are valid only during the
// Observer call. At is the time of the report: when the sender emitted the
// packet for Segment, when it arrived for Deliver.
type Segment struct {
	At       time.Duration
	From, To *Host // To is nil if no host has the destination address
	Proto    tcpip.NetworkProtocolNumber
	Packet   []byte // the whole IP packet
	// TCP is the packet's TCP header and payload, nil for other protocols.
	TCP header.TCP
	// Src and Dst are the packet's addresses and, for TCP, ports.
	Src, Dst netip.AddrPort
	// Payload is the TCP payload length in bytes.
	Payload int
	// FromConn and ToConn are the sending and receiving sockets, when known.
	FromConn, ToConn *Conn
	Dropped          bool
	DropReason       string
	// Probe says the segment is a keep-alive probe, the ProbeNumber-th
	// since its sender last received anything (Segment only).
	Probe       bool
	ProbeNumber int
	// WindowProbe, if not 0, says the segment probes the peer's closed
	// window, the WindowProbe-th since it closed (Segment only).
	WindowProbe int
	// Answered is how many unanswered keep-alive probes of the receiver
	// this segment answers (Deliver only; 0 for an RST).
	Answered int
}

// StateChange is a connection moving between TCP states.
type StateChange struct {
	At       time.Duration
	Conn     *Conn
	From, To State
	// KeepAliveAbort says keep-alive gave up on the connection: it closed
	// while its probes were unanswered.
	KeepAliveAbort bool
	// GaveUp, if set, names the rule that gave the connection up while it
	// had data (or a FIN) unacknowledged: retransmission, or the user
	// timeout. Keep-alive's own give-up is KeepAliveAbort.
	GaveUp GiveUp
	// Retransmissions is how many times the retransmission timer fired
	// before GaveUp (Linux's rule only; 0 otherwise), and Since when the
	// first retransmission went, from which Limit was counted.
	Retransmissions int
	Since, Limit    time.Duration
	// WindowProbes is how many probes of the peer's closed window went
	// before a give-up while it was closed (Since: the first of them).
	WindowProbes int
}

// LinkChange is a change of the simulated network, made through one of the
// Network's fault or path methods.
type LinkChange struct {
	At     time.Duration
	Action string // "silence", "heal", "partition", "loss", "latency", "middlebox"
	// A is the host acted on (Silence, Heal) or the first of a pair; B is
	// the second of a pair, or nil.
	A, B      *Host
	Direction Direction     // for silence
	Loss      float64       // for loss: the new drop probability A->B
	Latency   time.Duration // for latency: the new one-way delay
	Idle      time.Duration // for middlebox: flows idle longer are forgotten (0: no box)
}

// pump moves every queued outbound packet of every host onto the network,
// hosts in the order they were added, and reports whether it moved any.
func (n *Network) pump() bool {
	moved := false
	for _, h := range n.hosts {
		n.pkts = h.nic.take(n.pkts)
		for _, p := range n.pkts {
			moved = true
			n.route(h, p)
		}
	}
	return moved
}

// parse describes packet p sent by from, as of now. The Segment is the
// Network's one scratch Segment: observers may not keep it, and reusing it
// saves an allocation per packet.
func (n *Network) parse(from *Host, p packet) (*Segment, bool) {
	seg := &n.seg
	*seg = Segment{At: n.Now(), From: from, Proto: p.proto, Packet: p.data}
	var src, dst netip.Addr
	var payload []byte
	var ok bool
	switch p.proto {
	case ipv4.ProtocolNumber:
		src, dst, payload, ok = ipFields(header.IPv4(p.data), len(p.data))
	case ipv6.ProtocolNumber:
		src, dst, payload, ok = ipFields(header.IPv6(p.data), len(p.data))
	}
	if !ok {
		return nil, false
	}
	seg.Src, seg.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	seg.To = n.byAddr[dst]
	if t := header.TCP(payload); len(t) >= header.TCPMinimumSize && int(t.DataOffset()) >= header.TCPMinimumSize && int(t.DataOffset()) <= len(t) {
		seg.TCP = t
		seg.Src = netip.AddrPortFrom(src, t.SourcePort())
		seg.Dst = netip.AddrPortFrom(dst, t.DestinationPort())
		seg.Payload = len(t) - int(t.DataOffset())
		seg.FromConn = from.conns[keyOf(t.SourcePort(), dst, t.DestinationPort())]
		if seg.To != nil {
			seg.ToConn = seg.To.conns[keyOf(t.DestinationPort(), src, t.SourcePort())]
		}
	}
	return seg, true
}

func (n *Network) route(from *Host, p packet) {
	seg, ok := n.parse(from, p)
	if !ok {
		from.nic.recycle(p.data)
		return
	}
	if t := seg.TCP; t != nil {
		c := seg.FromConn
		if c != nil && from.b.SynRetransmit.active() && c.shapeSyn(t, p) {
			from.nic.recycle(p.data) // off the wire: gVisor's own SYN schedule, or its RST at kasim's give-up
			return
		}
		f := from.connFlow(seg.FromConn, keyOf(t.SourcePort(), seg.Dst.Addr(), t.DestinationPort()))
		if from.b.SynAckRetries > 0 && t.Flags() == header.TCPFlagSyn|header.TCPFlagAck && n.shapeSynAck(from, f, t, seg.Src, seg.Dst, p) {
			from.nic.recycle(p.data) // off the wire: a SYN-ACK past tcp_synack_retries; the request is dropped
			return
		}
		if f.dupSyn && t.Flags() == header.TCPFlagAck && seg.Payload == 0 {
			n.answerDupSyn(from, f)
			from.nic.recycle(p.data) // off the wire: gVisor's ACK to a duplicate SYN, where Linux resends its SYN-ACK
			return
		}
		if c != nil && from.b.WindowProbeRetries > 0 && c.shapeWindowProbe(t, seg.Payload, f) {
			from.nic.recycle(p.data) // off the wire: the probe Linux gives up at instead, or gVisor's RST then
			return
		}
		if c != nil && from.b.ownsRetransmission() && c.shapeTick(seg, f, p) {
			from.nic.recycle(p.data) // off the wire: gVisor's own retransmission, or its RST at kasim's give-up
			return
		}
		seg, p = n.sentTCP(from, f, seg, p)
	}
	var pth *path // dropReason needs none without a receiver (and drops the segment)
	if seg.To != nil {
		pth = n.path(from, seg.To)
	}
	seg.DropReason = n.dropReason(from, seg.To, pth, seg)
	seg.Dropped = seg.DropReason != ""
	for _, o := range n.observers {
		o.Segment(seg)
	}
	if seg.FromConn != nil {
		n.markDirty(seg.FromConn)
	}
	if seg.Dropped {
		from.nic.recycle(p.data)
		return
	}
	if pth.latency == 0 && pth.inflight.len() == 0 {
		n.arrive(seg, p)
		from.nic.recycle(p.data)
		return
	}
	pth.inflight.push(flight{due: n.Now() + pth.latency, p: p})
	if pth.inflight.len() == 1 {
		n.armPath(pth)
	}
}

// sentTCP records an outbound segment in its sender's flow f, and pads it
// if it is a probe and the host's probes carry an octet. It returns the
// segment and packet to route (new ones, if padded).
func (n *Network) sentTCP(from *Host, f *flow, seg *Segment, p packet) (*Segment, packet) {
	probe := f.isProbe(seg.TCP, seg.Payload)
	windowProbe := probe && f.isWindowProbe(seg.FromConn)
	probe = probe && !windowProbe
	if c := seg.FromConn; c != nil && from.b.RetransmitTimeout > 0 && !probe && !windowProbe &&
		(seg.Payload > 0 || seg.TCP.Flags().Contains(header.TCPFlagFin)) {
		c.sentData(f, seg.TCP, f.repeats(seg.TCP))
	}
	src, dst := tcpip.AddrFromSlice(seg.Src.Addr().AsSlice()), tcpip.AddrFromSlice(seg.Dst.Addr().AsSlice())
	switch {
	case probe && from.b.ProbePayload > seg.Payload:
		seg, p = n.reshape(from, p, padProbe(p, src, dst))
	case windowProbe && from.b.BareWindowProbe && seg.Payload > 0:
		seg, p = n.reshape(from, p, bareProbe(p, src, dst))
	}
	f.sent(seg.TCP, seg.Payload, probe, n.Now())
	seg.Probe = probe
	if probe {
		seg.ProbeNumber = f.unanswered
	}
	if windowProbe {
		f.windowProbes++
		seg.WindowProbe = f.windowProbes
		if w := seg.FromConn.wprobe; w != nil && from.b.WindowProbeRetries > 0 {
			w.probe = packet{proto: p.proto, data: append([]byte(nil), p.data...)} // what kasim sends again once capped
		}
	}
	return seg, p
}

// reshape puts packet q, a reshaped copy of p, in p's place.
func (n *Network) reshape(from *Host, p, q packet) (*Segment, packet) {
	from.nic.recycle(p.data)
	seg, _ := n.parse(from, q)
	return seg, q
}

// arrive hands a packet to its destination host, now.
func (n *Network) arrive(seg *Segment, p packet) {
	if t := seg.TCP; t != nil {
		f := seg.To.connFlow(seg.ToConn, keyOf(t.DestinationPort(), seg.Src.Addr(), t.SourcePort()))
		if f.halfOpenGone {
			n.answerHalfOpenGone(seg)
			return
		}
		if f.synAck.data != nil {
			f.arrivedAtHalfOpen(t) // only a Linux host's request keeps one
		}
		if !t.Flags().Contains(header.TCPFlagRst) {
			seg.Answered = f.unanswered
		}
		f.received(t, seg.Payload, n.Now())
		if seg.ToConn != nil {
			seg.ToConn.giveBackKeepAlive()
			seg.ToConn.acked(f)
			seg.ToConn.tickReceived(t)
			seg.ToConn.windowAnswered(f)
		}
	}
	for _, o := range n.observers {
		o.Deliver(seg)
	}
	if c := seg.ToConn; c != nil && c.resetOnData && seg.Payload > 0 && stateOf(c.ep).synchronized() {
		c.abandon() // data a socket shut for receiving cannot deliver: a reset instead (ResetOnData)
		return
	}
	seg.To.inject(p)
	if seg.ToConn != nil {
		n.markDirty(seg.ToConn)
	}
}

// ipHeader is what parse needs of an IPv4 or IPv6 header. ipFields takes it
// as a type parameter, not an interface: boxing the header slice into an
// interface would cost an allocation per packet.
type ipHeader interface {
	IsValid(pktSize int) bool
	SourceAddress() tcpip.Address
	DestinationAddress() tcpip.Address
	TransportProtocol() tcpip.TransportProtocolNumber
	Payload() []byte
}

// ipFields returns a packet's addresses and, for TCP, its TCP bytes; size
// is the packet's length. Nothing is read before IsValid vouches for it.
func ipFields[H ipHeader](ip H, size int) (src, dst netip.Addr, tcp []byte, ok bool) {
	if !ip.IsValid(size) {
		return src, dst, nil, false
	}
	src = addrOf(ip.SourceAddress())
	dst = addrOf(ip.DestinationAddress())
	if ip.TransportProtocol() == header.TCPProtocolNumber {
		tcp = ip.Payload()
	}
	return src, dst, tcp, true
}

func addrOf(a tcpip.Address) netip.Addr {
	if a.Len() == 4 {
		return netip.AddrFrom4(a.As4())
	}
	return netip.AddrFrom16(a.As16())
}

// armPath sets the path's delivery timer for its oldest packet in flight.
func (n *Network) armPath(p *path) {
	d := p.inflight.first().due - n.Now()
	if p.timer == nil {
		p.timer = n.clock.AfterFunc(d, func() { n.deliver(p) })
	} else {
		p.timer.Reset(d)
	}
}

// deliver hands over every packet of p that is due now, in order.
func (n *Network) deliver(p *path) {
	now := n.Now()
	for p.inflight.len() > 0 && p.inflight.first().due <= now {
		f := p.inflight.pop() // first: nothing arrive does can then see it again
		if seg, ok := n.parse(p.from, f.p); ok && seg.To != nil {
			n.arrive(seg, f.p)
		}
		p.from.nic.recycle(f.p.data)
	}
	if p.inflight.len() > 0 {
		n.armPath(p)
	}
}

func (h *Host) addrFor(proto tcpip.NetworkProtocolNumber) netip.Addr {
	if proto == ipv6.ProtocolNumber {
		return h.v6
	}
	return h.v4
}

// barrier waits, host by host, for every host that was injected into to
// finish processing, and reports whether any had to.
func (n *Network) barrier() bool {
	any := false
	for _, h := range n.hosts {
		if h.needBarrier {
			h.needBarrier = false
			h.barrier()
			any = true
		}
	}
	return any
}

// settle runs the current instant to quiescence: move packets, let the
// hosts process them, report state changes and run event handlers, fire due
// timers; again, until a round does nothing.
func (n *Network) settle() error {
	budget := n.workLimit
	for {
		work := n.pump()
		work = n.barrier() || work
		work = n.pollConns() || work
		fired := n.clock.FireDue(budget)
		budget -= fired + 1
		if fired == 0 && !work {
			return nil
		}
		if budget <= 0 {
			return fmt.Errorf("stack: virtual time %v: still busy after %d rounds and timer callbacks at one instant (something keeps scheduling work for now)", n.Now(), n.workLimit)
		}
	}
}

// RunUntil runs the network until virtual time t (inclusive), or until a
// callback calls Stop. The clock is left at t unless stopped earlier.
func (n *Network) RunUntil(t time.Duration) error {
	if err := n.runTo(t); err != nil {
		return err
	}
	if !n.stopped && t > n.Now() {
		n.clock.AdvanceTo(t)
	}
	return nil
}

// runTo runs every instant up to t that has something scheduled, and leaves
// the clock at the last of them.
func (n *Network) runTo(t time.Duration) error {
	if n.closed {
		return errClosed
	}
	n.stopped = false
	if err := n.settle(); err != nil {
		return err
	}
	for !n.stopped {
		next, ok := n.clock.NextDeadline()
		if !ok || next > t {
			return nil
		}
		n.clock.AdvanceTo(next)
		if err := n.settle(); err != nil {
			return err
		}
	}
	return nil
}

// RunFor runs the network for d of virtual time.
func (n *Network) RunFor(d time.Duration) error { return n.RunUntil(n.Now() + d) }

// Run runs the network until nothing is left to do (no timer pending) or a
// callback calls Stop, and leaves the clock at the last thing that happened.
// It returns ErrHorizon if timers are still pending at the Network's horizon.
func (n *Network) Run() error {
	if err := n.runTo(n.cfg.Horizon); err != nil {
		return err
	}
	if !n.stopped && n.clock.Pending() > 0 {
		return fmt.Errorf("%w (%v)", ErrHorizon, n.cfg.Horizon)
	}
	return nil
}

// Stop makes the current Run, RunUntil or RunFor return once the current
// instant has settled.
func (n *Network) Stop() { n.stopped = true }

// Close shuts every host down and waits for gVisor's goroutines to exit.
func (n *Network) Close() {
	if n.closed {
		return
	}
	n.closed = true
	for _, h := range n.hosts {
		h.st.Resume() // a paused processor would never see the close
		h.st.Close()
	}
	for _, h := range n.hosts {
		h.st.Wait()
	}
	n.clock.StopAll()
}

var errClosed = errors.New("stack: network is closed")
