package stack

import (
	"math/bits"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// GiveUp names the rule that ended a connection with data outstanding.
type GiveUp string

const (
	// GaveUpRetransmission is the retransmission limit: on Linux the time
	// tcp_retries2 allows since the first retransmission
	// (Behaviour.RetransmitTimeout), elsewhere a count of retransmissions.
	GaveUpRetransmission GiveUp = "retransmission"
	// GaveUpUserTimeout is TCP_USER_TIMEOUT.
	GaveUpUserTimeout GiveUp = "user-timeout"
	// GaveUpSynRetries is a connect's limit on SYN retransmissions: on
	// Linux tcp_syn_retries (and tcp_syn_linear_timeouts) as a count, or
	// the time tcp_model_timeout gives for it, whichever comes first.
	GaveUpSynRetries GiveUp = "syn-retries"
)

// retx is a host's account of one connection's retransmissions under
// Linux's rule (Behaviour.RetransmitTimeout), kept from what the wire
// shows and gVisor's counters: gVisor counts retransmissions and measures
// a user timeout from the original transmission, Linux measures both
// from its first retransmission (retrans_stamp), so kasim tells gVisor
// when to stop.
type retx struct {
	active bool // data is outstanding and being accounted
	// stamp is when the first retransmission by the timer or by fast
	// retransmit went (Linux's retrans_stamp); a loss probe does not
	// count, as tcp_send_loss_probe calls __tcp_retransmit_skb directly.
	stamp   time.Duration
	stamped bool
	// byTimer counts retransmissions by the timer (icsk_retransmits).
	byTimer        int
	timeouts, fast uint64 // gVisor's counters, as last seen
	// headXmit is when the oldest unacknowledged octet last went out:
	// gVisor measures a user timeout from it.
	headXmit time.Duration
	// rule is what ends the connection at its next retransmission
	// timeout, once kasim has told gVisor to stop there.
	rule GiveUp
	// limit is the time rule allows from stamp.
	limit time.Duration
}

// sentData accounts for an outbound segment carrying data or a FIN on a
// host with Linux's retransmission rule. retrans says it repeats sequence
// space already sent; head that it starts at the oldest unacknowledged
// octet.
func (c *Conn) sentData(f *flow, t header.TCP, retrans bool) {
	now := c.host.net.Now()
	r := &c.retx
	head := !f.haveUna || seqnum.Value(t.SequenceNumber()) == f.sndUna
	if !r.active {
		*r = retx{active: true, headXmit: now}
		r.timeouts, r.fast = c.sendCounters()
		if c.userTimeout > 0 {
			// Linux counts the user timeout from its first retransmission;
			// until then kasim keeps gVisor's own count, which starts at
			// the original transmission, out of the way.
			c.setGVisorUserTimeout(0)
		}
		return
	}
	if retrans {
		timeouts, fast := c.sendCounters()
		byTimer, byFast := timeouts > r.timeouts, fast > r.fast
		r.timeouts, r.fast = timeouts, fast
		if (byTimer || byFast) && !r.stamped {
			r.stamp, r.stamped = now, true
		}
		if byTimer {
			r.byTimer++
			c.judge(now)
		}
	}
	if head {
		r.headXmit = now
	}
}

// judge decides, after a retransmission by the timer at now, whether
// Linux gives up at the next timeout, and if so has gVisor stop there.
// With a user timeout Linux gives up once it has passed since stamp, its
// timer clamped to that moment (tcp_clamp_rto_to_user_timeout); gVisor
// clamps its own the same way, from the head's transmission, so kasim
// moves gVisor's user timeout by the difference, once. Without one, the
// limit is the host's RetransmitTimeout (tcp_write_timeout,
// retransmits_timed_out), checked only when the timer fires.
func (c *Conn) judge(now time.Duration) {
	r := &c.retx
	if c.userTimeout > 0 {
		if r.byTimer == 1 {
			// Linux's deadline is stamp + the user timeout (stamp may be
			// an earlier fast retransmission); gVisor's, the head's
			// transmission before this timeout + its own.
			r.rule, r.limit = GaveUpUserTimeout, c.userTimeout
			c.setGVisorUserTimeout(c.userTimeout + r.stamp - r.headXmit)
		}
		return
	}
	var info tcpip.TCPInfoOption
	if r.rule != "" || c.ep.GetSockOpt(&info) != nil {
		return
	}
	if now+info.RTO-r.stamp >= c.host.b.RetransmitTimeout {
		// Any user timeout gVisor has gives up at its next timeout:
		// elapsed time already exceeds a nanosecond.
		r.rule, r.limit = GaveUpRetransmission, c.host.b.RetransmitTimeout
		c.setGVisorUserTimeout(time.Nanosecond)
	}
}

// acked ends the account once nothing is outstanding, and gives gVisor
// back the application's user timeout (keep-alive reads it too).
func (c *Conn) acked(f *flow) {
	if !c.retx.active || f.outstanding() {
		return
	}
	c.retx = retx{}
	if c.userTimeout > 0 {
		c.setGVisorUserTimeout(c.userTimeout)
	}
}

// gaveUp fills in why a connection that closed without keep-alive's doing
// was given up, if it was: nothing but a give-up closes a synchronized
// connection with data or a FIN outstanding and no reset received.
func (c *Conn) gaveUp(ch *StateChange, f *flow) {
	if f.reset || !f.outstanding() {
		return
	}
	r := c.retx
	switch {
	case r.rule != "":
		ch.GaveUp, ch.Retransmissions, ch.Since, ch.Limit = r.rule, r.byTimer, r.stamp, r.limit
	case c.userTimeout > 0:
		ch.GaveUp = GaveUpUserTimeout
	default:
		ch.GaveUp = GaveUpRetransmission
	}
}

// sendCounters returns gVisor's counts of the endpoint's retransmission
// timeouts and fast retransmissions.
func (c *Conn) sendCounters() (timeouts, fast uint64) {
	s, ok := c.ep.Stats().(*tcp.Stats)
	if !ok {
		return 0, 0
	}
	return s.SendErrors.Timeouts.Value(), s.SendErrors.FastRetransmit.Value()
}

func (c *Conn) setGVisorUserTimeout(d time.Duration) {
	opt := tcpip.TCPUserTimeoutOption(d)
	_ = c.ep.SetSockOpt(&opt) // a connected endpoint always takes it
}

// RetransmitTimeout returns how long Linux lets retransmissions go on
// since the first one before it gives a connection up, for tcp_retries2
// boundary: as if the RTO started at TCP_RTO_MIN (200 ms) and doubled up
// to TCP_RTO_MAX (120 s) each time (tcp_model_timeout, net/ipv4/
// tcp_timer.c). 15, the default, gives 924.6 s.
func RetransmitTimeout(boundary int) time.Duration {
	return modelTimeout(boundary, 200*time.Millisecond)
}

// modelTimeout is Linux's tcp_model_timeout: the time boundary
// retransmissions take with an RTO starting at base and doubling up to
// TCP_RTO_MAX (120 s), the doubling stopping after ilog2(120 s / base).
func modelTimeout(boundary int, base time.Duration) time.Duration {
	const rtoMax = 120 * time.Second
	thresh := bits.Len64(uint64(rtoMax/base)) - 1 // ilog2: 9 for 200 ms, 6 for 1 s
	if boundary <= thresh {
		return time.Duration((2<<boundary)-1) * base
	}
	return time.Duration((2<<thresh)-1)*base + time.Duration(boundary-thresh)*rtoMax
}
