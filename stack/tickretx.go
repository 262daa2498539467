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

// BSDRetransmit is FreeBSD's retransmission of data (tcp_timer_rexmt,
// tcp_xmit_timer, at kern.hz 1000), which kasim runs in place of gVisor's.
// The zero value keeps gVisor's own. As FreeBSD's default stack does it:
//
//   - The RTO (t_rxtcur) starts at InitialRTO (tcp_rexmit_initial, 1 s).
//     A round-trip sample, one segment of new data timed at a time
//     (t_rtttime; none from the handshake, none from a retransmission),
//     updates the
//     smoothed RTT and its variance (srtt and rttvar, in ticks scaled by
//     32 and 16) and sets the RTO to REXMTVAL, the larger of MinRTO
//     (tcp_rexmit_min, 30 ms) and srtt + 4 rttvar, plus Slop
//     (tcp_rexmit_slop, 200 ms), at least MinRTO and rtt + 2 ticks, at most
//     MaxRTO (TCPTV_REXMTMAX, 64 s) (TCPT_RANGESET), and zeroes the back-off.
//   - The timer starts at a send with nothing outstanding, and again with
//     the RTO at an ACK of new data with more outstanding; it stops when
//     nothing is.
//   - At a timeout, after Max (TCP_MAXRXTSHIFT, 12) retransmissions the
//     connection is dropped (tcp_drop: RST+ACK at SND.MAX, ETIMEDOUT);
//     else the oldest unacknowledged segment goes again and the RTO
//     becomes REXMTVAL x tcp_backoff[shift] (1, 2, 4 ... 512) plus Slop, at
//     most MaxRTO; past the third, srtt is forgotten (folded into rttvar).
//
// On a LAN (srtt and rttvar far below 30 ms) that is 230 ms after the
// send, then 260, 320, 440, 680 ms, 1.16, 2.12, 4.04, 7.88 s, and 15.56 s
// four times: the drop about 79 s after the first send, where gVisor's
// 200 ms doubling to 120 s with 15 retransmissions takes minutes.
// gVisor's own retransmissions by its timer, and its tail loss probes
// (FreeBSD's default stack has none), are kept off the wire; its fast
// retransmissions go.
type BSDRetransmit struct {
	InitialRTO, MinRTO, Slop, MaxRTO time.Duration
	Max                              int
}

// bsdBackoff is FreeBSD's tcp_backoff: the RTO's multiple after the
// shift-th retransmission.
var bsdBackoff = [...]int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512, 512}

func (r BSDRetransmit) validate() error {
	if r == (BSDRetransmit{}) {
		return nil
	}
	if r.InitialRTO < time.Millisecond || r.MinRTO < time.Millisecond || r.Slop < 0 || r.MaxRTO < r.MinRTO || r.Max < 1 || r.Max > len(bsdBackoff)-1 {
		return fmt.Errorf("BSD retransmission from %v, at least %v plus %v, at most %v, %d retransmissions: want times of 1 ms or more, a maximum above the minimum, and 1 to %d", r.InitialRTO, r.MinRTO, r.Slop, r.MaxRTO, r.Max, len(bsdBackoff)-1)
	}
	return nil
}

// ownsRetransmission reports whether kasim runs b's data retransmission
// (TickRetransmit or BSDRetransmit) in place of gVisor's.
func (b *Behaviour) ownsRetransmission() bool {
	return b.TickRetransmit.Max > 0 || b.BSDRetransmit.Max > 0
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

// tickRetx is one connection's retransmission under TickRetransmit, or
// BSDRetransmit (bsd set).
type tickRetx struct {
	sa, sv, rto int // lwIP's estimator and RTO, in ticks (sa scaled by 8)
	nrtx        int // retransmissions since the last ACK of new data (FreeBSD's t_rxtshift: since the last sample)
	// FreeBSD's estimator, in 1 ms ticks (srtt scaled by 32, rttvar by
	// 16), and its RTO (t_rxtcur).
	bsd          bool
	srtt, rttvar int
	rxtcur       time.Duration
	running      bool
	started      time.Duration // when the timer's count (pcb->rtime) was last set to 0
	lastack      seqnum.Value  // the highest ACK received (pcb->lastack)
	rttest       int64         // the tick count when the timed segment went; 0: none
	rtseq        seqnum.Value  // the timed segment's sequence number
	segs         []sentSeg     // copies of the unacknowledged segments, oldest first
	timer        tcpip.Timer
	resend       bool   // the segment being routed is kasim's copy
	fast         uint64 // gVisor's count of fast retransmissions, as last seen
	gaveUp       bool
}

// sentSeg is a copy of a segment sent with data or a FIN.
type sentSeg struct {
	seq, end seqnum.Value
	p        packet
}

// tickRetx returns the connection's account, made on first use.
func (c *Conn) tickRetx() *tickRetx {
	if c.tick == nil {
		if b := c.host.b.BSDRetransmit; b.Max > 0 {
			// tcp_newtcpcb: no srtt yet, and an rttvar that makes
			// REXMTVAL the initial RTO
			c.tick = &tickRetx{bsd: true, rttvar: int(b.InitialRTO/time.Millisecond) << 4 / 4, rxtcur: b.InitialRTO}
			return c.tick
		}
		r := c.host.b.TickRetransmit
		sv := int(r.InitialRTO / r.Tick)
		c.tick = &tickRetx{sv: sv, rto: sv}
	}
	return c.tick
}

// retxTicks is the tick count the host's own retransmission times
// segments in: lwIP's tcp_ticks, or FreeBSD's ticks at kern.hz 1000 (one
// more, so that 0 means no segment timed).
func (h *Host) retxTicks() int64 {
	if h.b.BSDRetransmit.Max > 0 {
		return int64(h.net.Now()/time.Millisecond) + 1
	}
	return h.tcpTicks()
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
		return r.gaveUp && !r.resend
	case flags.Contains(header.TCPFlagSyn) && r.bsd:
		// No sample from the handshake: FreeBSD's SYN-SENT processing
		// skips the ACK processing that takes one (tcp_input.c, goto
		// step6), and kasim assumes the same of a socket its syncache
		// makes; the RTO stays tcp_rexmit_initial until data is
		// acknowledged.
		return false
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
		if !r.bsd { // Karn: FreeBSD does not time a retransmission
			r.time(c.host, seq)
		}
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
		r.rttest, r.rtseq = h.retxTicks(), seq
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
		if !r.bsd { // FreeBSD zeroes its back-off with a sample (tcp_xmit_timer)
			r.nrtx = 0
			r.rto = max(r.sa>>3+r.sv, 1)
		}
		n := 0
		for n < len(r.segs) && !ack.LessThan(r.segs[n].end) {
			n++
		}
		r.segs = append(r.segs[:0], r.segs[n:]...)
	}
	if r.rttest != 0 && r.rtseq.LessThan(ack) && r.bsd {
		r.xmitTimer(int(c.host.retxTicks()-r.rttest), c.host.b.BSDRetransmit)
		r.rttest = 0
	} else if r.rttest != 0 && r.rtseq.LessThan(ack) {
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
	case r.running && !r.bsd:
		c.armTick() // a sample alone moved the RTO; the count goes on
	}
}

// xmitTimer is FreeBSD's tcp_xmit_timer: a round-trip sample of rtt ticks
// updates srtt and rttvar, sets the RTO, and zeroes the back-off.
func (r *tickRetx) xmitTimer(rtt int, b BSDRetransmit) {
	if r.srtt != 0 {
		delta := (rtt-1)<<2 - r.srtt>>3 // TCP_DELTA_SHIFT 2, TCP_RTT_SHIFT 5
		if r.srtt += delta; r.srtt <= 0 {
			r.srtt = 1
		}
		if delta < 0 {
			delta = -delta
		}
		delta -= r.rttvar >> 2 // TCP_RTTVAR_SHIFT 4
		if r.rttvar += delta; r.rttvar <= 0 {
			r.rttvar = 1
		}
	} else {
		r.srtt, r.rttvar = rtt<<5, rtt<<3
	}
	r.nrtx = 0
	r.rxtcur = bsdRange(r.rexmtval(b), max(b.MinRTO, time.Duration(rtt+2)*time.Millisecond), b)
}

// rexmtval is TCP_REXMTVAL: srtt + 4 rttvar, at least the minimum RTO.
func (r *tickRetx) rexmtval(b BSDRetransmit) time.Duration {
	return max(b.MinRTO, time.Duration((r.srtt>>3+r.rttvar)>>2)*time.Millisecond)
}

// bsdRange is TCPT_RANGESET: v plus the slop, at least low, at most the
// maximum RTO.
func bsdRange(v, low time.Duration, b BSDRetransmit) time.Duration {
	return min(max(v+b.Slop, low), b.MaxRTO)
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
	if r.bsd {
		r.timer = h.st.Clock().AfterFunc(r.rxtcur, c.tickTimeout) // a callout, exact at kern.hz 1000
		return
	}
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
	if r.bsd {
		c.bsdTimeout()
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

// bsdTimeout is FreeBSD's tcp_timer_rexmt: drop the connection after the
// last retransmission (tcp_drop: the RST goes as the state changes,
// refresh), or send the oldest unacknowledged segment again, untimed, and
// back off.
func (c *Conn) bsdTimeout() {
	r, b := c.tick, c.host.b.BSDRetransmit
	if r.nrtx >= b.Max {
		r.gaveUp = true
		c.abandon()
		return
	}
	r.nrtx++
	r.rxtcur = bsdRange(r.rexmtval(b)*time.Duration(bsdBackoff[r.nrtx]), b.MinRTO, b)
	if r.nrtx > (len(bsdBackoff)-1)/4 {
		// the srtt is probably bogus by now: keep its weight in rttvar
		r.rttvar += r.srtt >> 5
		r.srtt = 0
	}
	r.rttest = 0
	c.sendCopy(r.segs[0].p, &r.resend)
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
