package stack

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// TickRetransmit is lwIP's retransmission of data on its slow timer
// (tcp_slowtmr, Tick apart), which kasim runs in place of gVisor's. The
// zero value keeps gVisor's own. As lwIP 2.1.3 does it:
//
//   - The retransmission timer counts ticks (pcb->rtime) from its last
//     start: a send with nothing outstanding, an ACK of new data with more
//     outstanding, a retransmission. It fires at the tick where the count
//     reaches the RTO in ticks (pcb->rto).
//   - The RTO is (sa >> 3) + sv, Van Jacobson's estimator kept in ticks
//     (tcp_receive), from sa 0 and sv InitialRTO; an ACK of new data sets
//     it so, and each retransmission to that shifted left by tcp_backoff
//     (1, 2, ... 7, then 7: the base doubled up to 128 times).
//   - One segment is timed at a time (pcb->rttest): any segment sent while
//     none is, the SYN and retransmissions included, and its sample is the
//     ticks from its send to the first ACK above it (a SYN-ACK in SYN-SENT
//     is not one). A send before the host's first tick is not timed, as
//     rttest is the tick count and 0 means none.
//   - A retransmission sends the oldest unacknowledged segment again.
//   - At the first tick after the Max-th retransmission the connection is
//     removed: no RST, and the application gets ECONNABORTED (ERR_ABRT).
//
// gVisor's own retransmissions by its timer, and its tail loss probes, are
// kept off the wire; its fast retransmissions go, as lwIP has those too.
// The host's timers must run on the ticks (HostOptions.Timers a
// timers.TickQueue).
type TickRetransmit struct {
	Tick       time.Duration // TCP_SLOW_INTERVAL: 500 ms
	InitialRTO time.Duration // sv's start, 3 s (3000 / TCP_SLOW_INTERVAL ticks)
	Max        int           // TCP_MAXRTX: 12
}

// lwipBackoff is lwIP's tcp_backoff: the shift of the RTO for the
// retransmission after the nth.
var lwipBackoff = [...]int{1, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7, 7, 7}

func (r TickRetransmit) validate() error {
	if r == (TickRetransmit{}) {
		return nil
	}
	if r.Tick <= 0 || r.InitialRTO < r.Tick || r.Max < 1 || r.Max > 255 {
		return fmt.Errorf("tick retransmission on a %v tick, initial RTO %v, %d retransmissions: want a tick, an RTO of a tick or more, and 1 to 255", r.Tick, r.InitialRTO, r.Max)
	}
	return nil
}

// tickRetx is one connection's retransmission under TickRetransmit.
type tickRetx struct {
	sa, sv, rto int // lwIP's estimator and RTO, in ticks (sa scaled by 8)
	nrtx        int // retransmissions since the last ACK of new data
	running     bool
	started     time.Duration // when the timer's count (pcb->rtime) was last set to 0
	lastack     seqnum.Value  // the highest ACK received (pcb->lastack)
	rttest      int64         // the tick count when the timed segment went; 0: none
	rtseq       seqnum.Value  // the timed segment's sequence number
	segs        []sentSeg     // copies of the unacknowledged segments, oldest first
	timer       tcpip.Timer
	resend      bool   // the segment being routed is kasim's copy
	fast        uint64 // gVisor's count of fast retransmissions, as last seen
	gaveUp      bool
}

// sentSeg is a copy of a segment sent with data or a FIN.
type sentSeg struct {
	seq, end seqnum.Value
	p        packet
}

// tickRetx returns the connection's account, made on first use.
func (c *Conn) tickRetx() *tickRetx {
	if c.tick == nil {
		r := c.host.b.TickRetransmit
		sv := int(r.InitialRTO / r.Tick)
		c.tick = &tickRetx{sv: sv, rto: sv}
	}
	return c.tick
}

// tcpTicks is lwIP's tcp_ticks on the host now: how many ticks have gone
// since its first connection started them (HostOptions.TimersStart), or
// since the start of the run.
func (h *Host) tcpTicks() int64 { return h.tcpTicksAt(h.net.Now()) }

// tcpTicksAt is tcp_ticks at the time at.
func (h *Host) tcpTicksAt(at time.Duration) int64 {
	tick := h.b.TickRetransmit.Tick
	origin := tick
	if h.tickOrigin > 0 {
		origin = h.tickOrigin
	}
	if at < origin {
		return 0
	}
	return int64((at-origin)/tick) + 1
}

// shapeTick handles an outbound segment on a host with lwIP's
// retransmission. It reports whether the segment is to be kept off the
// wire: a retransmission of gVisor's own by its timer or loss probe, or
// the RST gVisor sends when kasim gives the connection up.
func (c *Conn) shapeTick(seg *Segment, f *flow, p packet) bool {
	t := seg.TCP
	r := c.tickRetx()
	flags := t.Flags()
	seq := seqnum.Value(t.SequenceNumber())
	switch {
	case flags.Contains(header.TCPFlagRst):
		return r.gaveUp
	case flags.Contains(header.TCPFlagSyn):
		if c.syn != nil && c.syn.resend {
			r.rttest = 0 // tcp_rexmit_rto_prepare: the copy is timed afresh
		}
		r.time(c.host, seq)
		return false
	case seg.Payload == 0 && !flags.Contains(header.TCPFlagFin):
		return false
	}
	if f.isProbe(t, seg.Payload) {
		return false
	}
	if r.resend {
		r.time(c.host, seq)
		return false
	}
	if f.repeats(t) {
		_, fast := c.sendCounters()
		byFast := fast > r.fast
		r.fast = fast
		return !byFast
	}
	if len(r.segs) == 0 {
		r.lastack = seq
	}
	r.segs = append(r.segs, sentSeg{seq: seq, end: segEnd(t, seg.Payload),
		p: packet{proto: p.proto, data: append([]byte(nil), p.data...)}})
	r.time(c.host, seq)
	if !r.running {
		c.restartTick()
	}
	return false
}

// time starts timing the segment at seq if none is being timed.
func (r *tickRetx) time(h *Host, seq seqnum.Value) {
	if r.rttest == 0 {
		r.rttest, r.rtseq = h.tcpTicks(), seq
	}
}

// tickReceived takes a segment arriving on a connection of a host with
// lwIP's retransmission: an ACK of new data resets the back-off and
// restarts the timer, or stops it with nothing left outstanding, and the
// ACK of the timed segment is a round-trip sample (tcp_receive).
func (c *Conn) tickReceived(t header.TCP) {
	r := c.tick
	if r == nil || r.gaveUp || !t.Flags().Contains(header.TCPFlagAck) || t.Flags().Contains(header.TCPFlagSyn) {
		return
	}
	ack := seqnum.Value(t.AckNumber())
	newAck := len(r.segs) > 0 && r.lastack.LessThan(ack) && !r.segs[len(r.segs)-1].end.LessThan(ack)
	if newAck {
		r.lastack = ack
		r.nrtx = 0
		r.rto = max(r.sa>>3+r.sv, 1)
		n := 0
		for n < len(r.segs) && !ack.LessThan(r.segs[n].end) {
			n++
		}
		r.segs = append(r.segs[:0], r.segs[n:]...)
	}
	if r.rttest != 0 && r.rtseq.LessThan(ack) {
		m := int(c.host.tcpTicks() - r.rttest)
		m -= r.sa >> 3
		r.sa += m
		if m < 0 {
			m = -m
		}
		m -= r.sv >> 2
		r.sv += m
		r.rto = max(r.sa>>3+r.sv, 1)
		r.rttest = 0
	}
	switch {
	case len(r.segs) == 0:
		r.stop()
	case newAck:
		c.restartTick()
	case r.running:
		c.armTick() // a sample alone moved the RTO; the count goes on
	}
}

// restartTick sets the timer's count to 0 now, and arms it.
func (c *Conn) restartTick() {
	c.tick.started = c.host.net.Now()
	c.armTick()
}

// armTick arms the timer for the tick where its count, one more at each
// tick since it started, reaches the RTO: k ticks from now, armed a
// nanosecond past the (k-1)th, so that the host's tick queue fires it on
// the kth even from between two.
func (c *Conn) armTick() {
	r, h := c.tick, c.host
	r.stop()
	r.running = true
	elapsed := int(h.tcpTicks() - h.tcpTicksAt(r.started))
	k := max(r.rto-elapsed, 1)
	r.timer = h.st.Clock().AfterFunc(time.Duration(k-1)*h.b.TickRetransmit.Tick+time.Nanosecond, c.tickTimeout)
}

func (r *tickRetx) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.running = false
}

// tickTimeout is the retransmission timer's tick: give the connection up
// if the last retransmission was the Max-th (the check that opens
// tcp_slowtmr), or send the oldest unacknowledged segment again and back
// off.
func (c *Conn) tickTimeout() {
	r := c.tick
	if r.gaveUp || !stateOf(c.ep).synchronized() {
		return
	}
	if len(r.segs) == 0 {
		r.running = false
		return
	}
	b := c.host.b.TickRetransmit
	if r.nrtx >= b.Max {
		r.gaveUp = true
		c.abandon() // its RST stays off the wire (shapeTick); the application gets ECONNABORTED
		return
	}
	r.rto = max(r.sa>>3+r.sv, 1) << lwipBackoff[min(r.nrtx, len(lwipBackoff)-1)]
	r.rttest = 0 // tcp_rexmit_rto_prepare; the copy is timed afresh as it goes
	c.sendCopy(r.segs[0].p, &r.resend)
	r.nrtx++
	if r.nrtx >= b.Max {
		r.running = true
		r.timer = c.host.st.Clock().AfterFunc(time.Nanosecond, c.tickTimeout) // the next tick
		return
	}
	c.restartTick()
}

// tickGaveUp fills in the give-up of a connection kasim's lwIP rule ended,
// and reports whether it was one.
func (c *Conn) tickGaveUp(ch *StateChange) bool {
	if c.tick == nil || !c.tick.gaveUp {
		return false
	}
	ch.GaveUp, ch.Retransmissions = GaveUpRetransmission, c.tick.nrtx
	return true
}
