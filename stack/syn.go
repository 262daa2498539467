package stack

import (
	"fmt"
	"math"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// SynRetransmit is a system's SYN retransmission for a connect, which
// kasim runs in place of gVisor's. The zero value keeps gVisor's own: 1 s
// doubling, given up once the next RTO would pass 120 s.
//
// By default it is Linux's (tcp_retransmit_timer, tcp_write_timeout): the
// initial RTO is 1 s (TCP_TIMEOUT_INIT) and stays 1 s for the first Linear
// retransmissions (tcp_syn_linear_timeouts) before it doubles, up to
// 120 s; at a timeout the connect fails, ETIMEDOUT and no RST, once
// Retries+Linear retransmissions have gone or the time tcp_model_timeout
// gives for Retries with a 1 s base has passed since the first SYN,
// whichever comes first; TCP_USER_TIMEOUT, when set, replaces that time,
// the timer clamped to it.
//
// With ByCount it is Windows': the RTO starts at Initial and doubles at
// each retransmission, up to MaxRTO, and the connect fails at the timeout
// after the Retries-th retransmission (TcpMaxConnectRetransmissions,
// MaxSynRetransmissions: "after the final attempt, TCP/IP waits for an
// interval equal to double the last delay, and then it abandons the
// connection request"), with no limit in time, no RST, and the host's
// abort error. With Slop as well it is FreeBSD's (tcp_timer_rexmt in
// SYN-SENT): the k-th backed-off RTO is Initial x 2^k plus Slop
// (tcp_rexmit_initial x tcp_backoff[k], then TCPT_RANGESET adds
// tcp_rexmit_slop), up to MaxRTO; and Limit, if set, is the time the
// connect may take from the SYN (tcp_keepinit; Conn.SetConnectTimeout
// per socket, TCP_KEEPINIT), the timer clamped to it.
//
// With Every it is lwIP's (tcp_slowtmr): the RTO is Every and never backs
// off in SYN-SENT, and it is counted in ticks of the slow timer, Tick
// apart: a retransmission goes at the (Every/Tick)th tick after the SYN
// or the retransmission before. The check that opens tcp_slowtmr gives
// the connect up at the first tick after the Retries-th retransmission
// (TCP_SYNMAXRTX), with the host's abort error and no RST. The host's
// timers must run on those ticks (HostOptions.Timers a timers.TickQueue).
type SynRetransmit struct {
	Retries int // tcp_syn_retries (Linux's default 6); TcpMaxConnectRetransmissions (Windows' 2); TCP_SYNMAXRTX (lwIP's 6)
	Linear  int // tcp_syn_linear_timeouts (default 4 since Linux 6.7)
	ByCount bool
	Initial time.Duration // the first RTO, with ByCount (Windows' 3 s); Linux's is 1 s
	MaxRTO  time.Duration // the RTO's ceiling, with ByCount; Linux's is 120 s
	Slop    time.Duration // added to each backed-off RTO, with ByCount (FreeBSD's 200 ms)
	Limit   time.Duration // the connect's time limit from the SYN, with ByCount (FreeBSD's 75 s); 0: none
	Every   time.Duration
	Tick    time.Duration
}

// active reports whether kasim runs the schedule (not gVisor).
func (r SynRetransmit) active() bool { return r.Retries > 0 || r.ByCount || r.Every > 0 }

// validate reports a schedule kasim cannot run.
func (r SynRetransmit) validate() error {
	if r.Retries < 0 || r.Retries > 255 || r.Linear < 0 || r.Linear > 127 {
		return fmt.Errorf("SYN retransmission: %d retries, %d linear: want 0 to 255 and 0 to 127", r.Retries, r.Linear)
	}
	if r.ByCount && (r.Linear != 0 || r.Every != 0 || r.Initial <= 0 || r.MaxRTO < r.Initial) {
		return fmt.Errorf("SYN retransmission by count from %v up to %v, %d linear: want an initial RTO, a ceiling no lower, no linear count and no tick", r.Initial, r.MaxRTO, r.Linear)
	}
	if !r.ByCount && (r.Initial != 0 || r.MaxRTO != 0 || r.Slop != 0 || r.Limit != 0) {
		return fmt.Errorf("SYN retransmission from %v up to %v, slop %v, limit %v: an initial RTO, a ceiling, a slop and a limit are for a schedule by count", r.Initial, r.MaxRTO, r.Slop, r.Limit)
	}
	if r.Slop < 0 || r.Limit < 0 {
		return fmt.Errorf("SYN retransmission: slop %v, limit %v: want 0 or more", r.Slop, r.Limit)
	}
	if r.Every == 0 && r.Tick == 0 {
		return nil
	}
	// kasim takes over at gVisor's first SYN retransmission, 1 s after
	// the SYN and on the next tick: the schedule's first must come later.
	if r.Tick <= 0 || r.Linear != 0 || r.Every < time.Second+2*r.Tick {
		return fmt.Errorf("SYN retransmission every %v on a %v tick, %d linear: want a tick, no linear count, and at least 1 s + 2 ticks", r.Every, r.Tick, r.Linear)
	}
	return nil
}

// SynTimeout returns the time Linux allows a connect since its first SYN
// for tcp_syn_retries retries (tcp_model_timeout with the 1 s initial
// RTO): 127 s for 6.
func SynTimeout(retries int) time.Duration { return modelTimeout(retries, time.Second) }

// CountTimeout returns when a schedule by count (ByCount: Windows' and
// FreeBSD's) gives a connect up, after its SYN: Retries+1 timeouts, the
// first Initial and each later one backed off (backedOff), or Limit if
// that comes first. 21 s for Windows' 2 from 3 s; 75 s for FreeBSD.
func (r SynRetransmit) CountTimeout() time.Duration {
	var total time.Duration
	for i := 0; i <= r.Retries; i++ {
		total += r.backedOff(i)
		if r.Limit > 0 && total >= r.Limit {
			return r.Limit
		}
	}
	return total
}

// backedOff returns a schedule by count's RTO after k retransmissions:
// Initial x 2^k, plus Slop once backed off, up to MaxRTO.
func (r SynRetransmit) backedOff(k int) time.Duration {
	if k == 0 {
		return r.Initial
	}
	if k > 40 || r.Initial<<k > r.MaxRTO {
		return r.MaxRTO
	}
	return min(r.Initial<<k+r.Slop, r.MaxRTO)
}

// synRetx is a connect's SYN retransmission under SynRetransmit: kasim
// sends the first SYN's copies on Linux's schedule and keeps gVisor's own
// retransmissions, on gVisor's, off the wire.
type synRetx struct {
	pkt      packet        // the SYN, which each retransmission repeats
	sent     int           // retransmissions so far
	last     time.Duration // when the SYN last went
	rto      time.Duration
	resend   bool // the SYN being routed is kasim's copy
	gaveUp   bool
	timer    tcpip.Timer
	deadline time.Duration // when the time limit runs out
	// byUserTimeout: TCP_USER_TIMEOUT sets the time limit. clamped: the
	// timer is clamped to the limit (tcp_clamp_rto_to_user_timeout;
	// FreeBSD's keepinit, a timer of its own); otherwise the limit is
	// checked only when the timer fires.
	byUserTimeout, clamped bool
}

// shapeSyn handles an outbound segment of a connect on a host with
// Linux's SYN retransmission. It reports whether the segment is to be
// kept off the wire: gVisor's own SYN retransmissions after its first,
// and the RST gVisor sends when kasim gives the connect up.
//
// gVisor's first retransmission comes when Linux's does, 1 s after the
// SYN on the same clock, and Linux always sends it (tcp_write_timeout
// gives up only after one, unless a user timeout below 1 s ran out), so
// kasim takes over from there: most connects are answered within the
// second and cost it nothing but the SYN's time. Where the system's first
// comes later (lwIP's, Windows' 3 s), kasim takes over there too and
// keeps gVisor's off the wire; where it comes earlier (an initial RTO or a
// user timeout below 1 s), at the SYN.
func (c *Conn) shapeSyn(t header.TCP, p packet) bool {
	flags := t.Flags()
	s := c.syn
	b := c.host.b.SynRetransmit
	switch {
	case flags == header.TCPFlagSyn && s == nil && !c.synSeen:
		c.synSeen, c.synAt = true, c.host.net.Now()
		if (c.userTimeout > 0 && c.userTimeout < time.Second) || (b.ByCount && b.Initial < time.Second) {
			c.startSyn(p, 0) // the schedule's first comes before gVisor's
		}
		return false
	case flags == header.TCPFlagSyn && s == nil && (b.Every > 0 || (b.ByCount && b.Initial > time.Second)):
		c.startSyn(p, 0) // gVisor's first retransmission, before the system's
		return true
	case flags == header.TCPFlagSyn && s == nil:
		c.startSyn(p, 1) // gVisor's first retransmission, the system's too
		return false
	case flags == header.TCPFlagSyn:
		return !s.resend
	case flags.Contains(header.TCPFlagRst) && s != nil && s.gaveUp:
		return true
	}
	return false
}

// startSyn starts the host's schedule from the SYN p, sent
// retransmissions in, and arms its timer.
func (c *Conn) startSyn(p packet, sent int) {
	b := c.host.b.SynRetransmit
	limit, rto := SynTimeout(c.SynRetries()), time.Second
	switch {
	case c.userTimeout > 0:
		limit = c.userTimeout
	case b.ByCount && c.connectTimeout > 0:
		limit = c.connectTimeout
	case b.ByCount && b.Limit > 0:
		limit = b.Limit
	case b.Every > 0 || b.ByCount:
		limit = math.MaxInt64 - c.synAt // a count only
	}
	if b.ByCount {
		rto = b.Initial
	}
	c.syn = &synRetx{pkt: packet{proto: p.proto, data: append([]byte(nil), p.data...)}, rto: rto,
		last: c.synAt, deadline: c.synAt + limit, byUserTimeout: c.userTimeout > 0,
		clamped: c.userTimeout > 0 || b.ByCount && (c.connectTimeout > 0 || b.Limit > 0)}
	for range sent {
		c.syn.backOff(b, c.host.net.Now())
	}
	c.armSyn()
}

// backOff counts a retransmission, sent at now, and sets the next RTO:
// Linux's 1 s for the first Linear, then doubling up to 120 s; Windows'
// doubling up to MaxRTO. (lwIP's is Every, always: armSyn reads it
// there.)
func (s *synRetx) backOff(b SynRetransmit, now time.Duration) {
	s.sent++
	s.last = now
	switch {
	case b.ByCount:
		s.rto = b.backedOff(s.sent)
	case b.Every == 0 && s.sent > b.Linear:
		s.rto = min(2*s.rto, 120*time.Second)
	}
}

// armSyn arms the SYN's retransmission timer on the host's clock (its
// timer wheel, as the kernel's), clamped to the time limit. On lwIP's
// ticks the timer is armed a nanosecond past the tick before the one
// due, Every after the last SYN, so that the tick queue fires it on the
// (Every/Tick)th tick after that SYN even when the SYN went between two;
// after the last retransmission, for the next tick, where lwIP gives up.
func (c *Conn) armSyn() {
	s, b, now := c.syn, c.host.b.SynRetransmit, c.host.net.Now()
	d := max(s.last+s.rto-now, 0) // the RTO from the last SYN, which kasim may take over after it went
	switch {
	case b.Every > 0 && s.sent >= b.Retries:
		d = time.Nanosecond
	case b.Every > 0:
		d = max(s.last+b.Every-b.Tick+time.Nanosecond-now, time.Nanosecond)
	case s.clamped:
		d = min(d, max(s.deadline-now, 0))
	}
	s.timer = c.host.st.Clock().AfterFunc(d, c.synTimeout)
}

// synTimeout is the SYN's retransmission timeout: give up, or send the
// SYN again and back off.
func (c *Conn) synTimeout() {
	s := c.syn
	if s.gaveUp || (stateOf(c.ep) != SynSent && !c.synMasked()) {
		return
	}
	b := c.host.b.SynRetransmit
	now := c.host.net.Now()
	if s.sent >= c.SynRetries()+b.Linear || now >= s.deadline {
		s.gaveUp = true
		c.abandon() // its RST stays off the wire (shapeSyn); the application gets the host's error (gaveUpErr)
		return
	}
	c.sendCopy(s.pkt, &s.resend)
	s.backOff(b, now)
	c.armSyn()
}

// SetSynRetries sets TCP_SYNCNT: how many times a connect's SYN may be
// retransmitted, in place of the host's tcp_syn_retries (Linux's
// icsk_syn_retries), for the count and for the time it gives. On a host
// with gVisor's own SYN schedule it is stored, as gVisor stores it, and
// changes nothing: gVisor gives up once its RTO would pass 120 s.
func (c *Conn) SetSynRetries(n int) error {
	if n < 1 || n > 255 {
		return fmt.Errorf("stack: %s: SYN retries %d: want 1 to 255", c, n)
	}
	if err := c.sockErr(c.ep.SetSockOptInt(tcpip.TCPSynCountOption, n)); err != nil {
		return err
	}
	c.synRetries = n
	return nil
}

// SynRetries returns the connection's TCP_SYNCNT, or the host's
// tcp_syn_retries (gVisor's 6 on a host without Linux's schedule).
func (c *Conn) SynRetries() int {
	switch {
	case c.synRetries != 0:
		return c.synRetries
	case c.host.b.SynRetransmit.active():
		return c.host.b.SynRetransmit.Retries
	}
	return tcp.DefaultSynRetries
}

// synGaveUp fills in the give-up of a connect: kasim's, under Linux's
// rule, with its count and limit, or gVisor's own.
func (c *Conn) synGaveUp(ch *StateChange) {
	ch.GaveUp = GaveUpSynRetries
	s := c.syn
	if s == nil || !s.gaveUp {
		return
	}
	ch.Retransmissions, ch.Since, ch.Limit = s.sent, c.synAt, s.deadline-c.synAt
	if b := c.host.b.SynRetransmit; (b.Every > 0 || b.ByCount) && !s.clamped {
		ch.Limit = 0 // lwIP and Windows count, and have no limit in time
	}
	if s.byUserTimeout {
		ch.GaveUp = GaveUpUserTimeout
	}
}

// synMasked reports whether gVisor has given the connect up before
// Linux's schedule would: its own SYN timer doubles from 1 s and stops
// once the next RTO would pass 120 s, 127 s after the first SYN, where
// Linux's defaults go on to 131 s. kasim then goes on as Linux would,
// sending the SYN again on its schedule, and the application learns of
// the failure when Linux's schedule gives up. (A SYN-ACK answering one of
// those late SYNs finds no connection: the one difference left.)
func (c *Conn) synMasked() bool {
	return c.syn != nil && !c.syn.gaveUp && c.state == SynSent && stateOf(c.ep) == Closed
}

// stopSyn stops the SYN's timer once the connect is over.
func (c *Conn) stopSyn() {
	if c.syn != nil && c.syn.timer != nil {
		c.syn.timer.Stop()
	}
}

// SetConnectTimeout sets the time a connect may take from its SYN, on a
// host whose SYN schedule has a limit of its own (SynRetransmit.Limit:
// FreeBSD's TCP_KEEPINIT, in place of tcp_keepinit); 0 restores the
// host's. Elsewhere it is stored and changes nothing.
func (c *Conn) SetConnectTimeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("stack: %s: connect timeout %v: want 0 or more", c, d)
	}
	c.connectTimeout = d
	return nil
}
