package stack

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
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
func (n *Network) shapeSynAck(from *Host, f *flow, t header.TCP, src, dst netip.AddrPort) bool {
	if f.halfOpenGone {
		return true
	}
	if !f.repeats(t) {
		return false
	}
	if f.synAckCopies < from.b.SynAckRetries {
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
