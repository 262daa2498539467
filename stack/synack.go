package stack

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// GaveUpSynAckRetries is a server's limit on a half-open connection's
// SYN-ACK retransmissions: Linux's tcp_synack_retries.
const GaveUpSynAckRetries GiveUp = "synack-retries"

// HalfOpen is a half-open connection (SYN-RECEIVED, never accepted) that
// its server gave up: on Linux, at the timeout after tcp_synack_retries
// retransmissions of its SYN-ACK (reqsk_timer_handler drops the request).
type HalfOpen struct {
	At              time.Duration
	Host            *Host
	Local, Remote   netip.AddrPort
	Rule            GiveUp
	Retransmissions int
}

// HalfOpenObserver is an Observer that also hears of half-open
// connections given up; the network tells the observers that implement
// it.
type HalfOpenObserver interface {
	HalfOpen(HalfOpen)
}

// SynAckTimeout is how long after its first SYN-ACK Linux drops a
// half-open connection with retries retransmissions: the RTO starts at 1 s
// (TCP_TIMEOUT_INIT) and doubles up to TCP_RTO_MAX (reqsk_timeout), and
// the request goes at the timeout after the last retransmission.
func SynAckTimeout(retries int) time.Duration {
	var d time.Duration
	for k := range retries + 1 {
		d += min(time.Second<<min(k, 8), 120*time.Second)
	}
	return d
}

// shapeSynAck handles a SYN-ACK a host with Linux's tcp_synack_retries
// (Behaviour.SynAckRetries) sends. It reports whether the segment is to
// be kept off the wire: gVisor's retransmission past the limit, at which
// Linux drops the request instead (and from then on answers the
// connection's segments with a reset, as a listener does a segment of no
// request: answerHalfOpenGone).
//
// gVisor's half-open connection resends its SYN-ACK on the same schedule
// as Linux's request socket (1 s, doubling, both on the host's timer
// wheel), so its copy past the limit comes at the timeout at which Linux
// gives up. A SYN-ACK sent again in answer to a duplicate SYN, which
// Linux sends (inet_rtx_syn_ack) and gVisor does not (it sends an ACK),
// does not count toward the limit on Linux either.
func (n *Network) shapeSynAck(from *Host, f *flow, t header.TCP, src, dst netip.AddrPort, p packet) bool {
	if f.halfOpenGone {
		return true
	}
	if f.answering {
		return false // a duplicate SYN's answer, which the limit does not count (answerDupSyn)
	}
	if !f.repeats(t) {
		f.synAckAt = n.Now()
		f.synAck = packet{proto: p.proto, data: append([]byte(nil), p.data...)}
		return false
	}
	limit, deferring := n.synAckLimit(from, src.Port())
	due := f.synAckCopies < limit
	if deferring {
		// gVisor sends no copy at the timeouts within the deferring
		// period once the final ACK came, so the copies are no count of
		// the timeouts: the copy past the limit is the one at the
		// timeout after the limit-th, at SynAckTimeout(limit), more
		// than half a second after the limit-th at SynAckTimeout(limit-1).
		due = n.Now()-f.synAckAt < (SynAckTimeout(limit-1)+SynAckTimeout(limit))/2
	}
	if due {
		f.synAckCopies++
		return false
	}
	f.halfOpenGone = true
	h := HalfOpen{At: n.Now(), Host: from, Local: src, Remote: dst, Rule: GaveUpSynAckRetries, Retransmissions: f.synAckCopies}
	for _, o := range n.observers {
		if ho, ok := o.(HalfOpenObserver); ok {
			ho.HalfOpen(h)
		}
	}
	return true
}

// answerHalfOpenGone answers seg, which goes to a half-open connection its
// host gave up, with a reset, as Linux's listener answers a segment that
// matches no request (RFC 9293 3.10.7.1); the caller does not deliver it
// to gVisor's half-open endpoint, which has not given up yet.
func (n *Network) answerHalfOpenGone(seg *Segment) {
	if t := seg.TCP; !t.Flags().Contains(header.TCPFlagRst) {
		n.route(seg.To, resetAnswer(seg.Proto, seg.Dst, seg.Src, t, seg.Payload))
	}
}

// DeferAcceptTimeouts is how many SYN-ACK timeouts Linux makes of a
// TCP_DEFER_ACCEPT of secs seconds (secs_to_retrans): the fewest whose
// sum, 1 s doubling up to 120 s, reaches secs; 0 for 0 or less.
func DeferAcceptTimeouts(secs int) int {
	if secs <= 0 {
		return 0
	}
	n, period, timeout := 1, 1, 1
	for secs > period && n < 255 {
		n++
		timeout = min(timeout*2, 120)
		period += timeout
	}
	return n
}

// DeferAcceptSeconds is what getsockopt reads back of TCP_DEFER_ACCEPT on
// Linux (retrans_to_secs): the sum of its timeouts, 0 for none.
func DeferAcceptSeconds(timeouts int) int {
	return int(SynAckTimeout(timeouts-1) / time.Second)
}

// SetDeferAccept sets TCP_DEFER_ACCEPT on a listening socket: its
// half-open connections drop the handshake's bare final ACK, and are
// accepted when data comes, or an ACK after the deferring period. gVisor
// keeps the period as a time: it resends its SYN-ACK only at the timeouts
// past it, and takes a bare ACK from then. Linux (on a host with its
// SYN-ACK rule, Behaviour.SynAckRetries) keeps a count of timeouts
// (DeferAcceptTimeouts): once the final ACK came it resends the SYN-ACK
// from the last of them on (syn_ack_recalc: num_timeout >=
// rskq_defer_accept - 1), takes a bare ACK after it, and drops the request
// at the timeout past both tcp_synack_retries and the count. kasim gives
// gVisor the period that ends a nanosecond before that last timeout,
// which makes its time rule Linux's count rule; gVisor caps the period at
// 120 s, so counts above 7 (a TCP_DEFER_ACCEPT above 127 s) resend from
// 127 s.
func (c *Conn) SetDeferAccept(secs int) {
	c.deferSecs = secs
	d := time.Duration(max(secs, 0)) * time.Second
	if c.host.b.SynAckRetries > 0 {
		c.deferTimeouts = DeferAcceptTimeouts(secs)
		d = 0
		if c.deferTimeouts > 0 {
			d = SynAckTimeout(c.deferTimeouts-1) - time.Nanosecond
		}
	}
	opt := tcpip.TCPDeferAcceptOption(d)
	_ = c.ep.SetSockOpt(&opt)
}

// DeferAccept reads TCP_DEFER_ACCEPT back as the host's system does:
// Linux the seconds its timeouts sum to (DeferAcceptSeconds), gVisor the
// seconds it keeps, at most 120.
func (c *Conn) DeferAccept() int {
	if c.host.b.SynAckRetries > 0 {
		return DeferAcceptSeconds(c.deferTimeouts)
	}
	return min(max(c.deferSecs, 0), 120)
}

// synAckLimit returns after how many SYN-ACK timeouts the listener on
// host h's port drops a half-open connection: Linux's tcp_synack_retries,
// or its TCP_DEFER_ACCEPT timeouts if more (syn_ack_recalc expires a
// request whose final ACK came only past both; measured against Linux
// 6.18: with 2 timeouts deferred and 5 retries, the copies at 3, 7 and
// 15 s), and whether the deferring rule applies.
func (n *Network) synAckLimit(h *Host, port uint16) (int, bool) {
	for _, l := range n.listeners {
		if s := l.sock; s.host == h && s.local.Port() == port && s.deferTimeouts > 0 {
			return max(h.b.SynAckRetries, s.deferTimeouts), true
		}
	}
	return h.b.SynAckRetries, false
}

// arrivedAtHalfOpen notes, on a host with Linux's request socket
// (Behaviour.SynAckRetries; the caller's host), what a segment arriving
// for a connection that sent its SYN-ACK means to it: a duplicate of the
// SYN it answered (dupSyn), or the end of the handshake, after which the
// SYN-ACK's copy is no longer needed.
func (f *flow) arrivedAtHalfOpen(t header.TCP) {
	switch flags := t.Flags(); {
	case flags == header.TCPFlagSyn && f.haveRcv && seqnum.Value(t.SequenceNumber()).Add(1) == f.rcvNxt:
		f.dupSyn = true
	case flags.Contains(header.TCPFlagAck) && !flags.Contains(header.TCPFlagSyn):
		f.synAck = packet{}
	}
}

// synAnswerGap is Linux's tcp_invalid_ratelimit (500 ms): the least time
// between two answers to out-of-window segments of one request.
const synAnswerGap = 500 * time.Millisecond

// answerDupSyn answers a duplicate SYN to a half-open connection of a
// Linux host as tcp_check_req does: with its SYN-ACK again
// (inet_rtx_syn_ack), at most once per tcp_invalid_ratelimit
// (tcp_oow_rate_limited), which does not count toward tcp_synack_retries.
// gVisor answers with a bare ACK (RFC 9293 3.10.7.4), which the caller
// keeps off the wire. Linux also restarts the request's timer then
// (mod_timer_pending with reqsk_timeout), which kasim leaves out: the
// next copy comes on gVisor's schedule.
func (n *Network) answerDupSyn(from *Host, f *flow) {
	f.dupSyn = false
	now := n.Now()
	if f.haveSynAnswered && now-f.synAnswered < synAnswerGap {
		return
	}
	f.synAnswered, f.haveSynAnswered = now, true
	f.answering = true
	n.route(from, packet{proto: f.synAck.proto, data: append([]byte(nil), f.synAck.data...)})
	f.answering = false
}
