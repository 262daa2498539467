package stack

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// GaveUpWindowProbes is the limit on unanswered probes of a closed window:
// Linux's tcp_retries2 of them (tcp_probe_timer), gVisor's 15.
const GaveUpWindowProbes GiveUp = "window-probes"

// windowProbes is a connection's account of its probes into its peer's
// closed window under Linux's rules (Behaviour.WindowProbeRetries), kept
// from the wire: tcp_probe_timer gives the connection up, instead of
// sending a probe, once tcp_retries2 probes in a row went unanswered
// (icsk_probes_out, which every ACK clears), or once TCP_USER_TIMEOUT has
// passed since the first probe of the closed window (icsk_probes_tstamp),
// answered or not, its timer clamped to that moment
// (tcp_clamp_probe0_to_user_timeout); with ETIMEDOUT and no RST
// (tcp_write_err). gVisor counts its user timeout from the moment the
// window closed, one RTO earlier, so kasim keeps gVisor's own out of the
// way while it probes and keeps the deadline itself.
type windowProbes struct {
	first      time.Duration // when the first probe of this closed window went
	base       time.Duration // the first probe's delay after the window closed: the RTO it backs off from
	sent       int           // probes since the window closed (icsk_backoff's count)
	unanswered int           // probes since the last segment received
	deadline   tcpip.Timer   // TCP_USER_TIMEOUT from first
	limit      tcpip.Timer   // the timeout after the last probe the count allows
	gaveUp     GiveUp        // the rule that gave the connection up, once one has
	// capped: the back-off has reached tcp_retries2 doublings, where
	// gVisor's goes on doubling, so kasim sends the probes (a copy of the
	// last, probe, when next fires) and keeps gVisor's off the wire;
	// resend marks kasim's copy as it is routed.
	capped, resend bool
	probe          packet
	next           tcpip.Timer
}

// shapeWindowProbe handles an outbound segment on a host with Linux's
// window probe rules. It reports whether the segment is to be kept off the
// wire: a probe past the count Linux allows (it gives up at that timeout
// instead), and the RST gVisor sends when kasim gives the connection up.
func (c *Conn) shapeWindowProbe(t header.TCP, payload int, f *flow) bool {
	w := c.wprobe
	if w != nil && w.gaveUp != "" {
		return t.Flags().Contains(header.TCPFlagRst)
	}
	if !f.isProbe(t, payload) || !f.isWindowProbe(c) {
		return false
	}
	if w != nil && w.capped && !w.resend {
		return true // gVisor's own, later than Linux's capped back-off: kasim sends those
	}
	now, retries := c.host.net.Now(), c.host.b.WindowProbeRetries
	if w == nil {
		w = &windowProbes{first: now, base: max(now-f.zeroSince, 200*time.Millisecond)}
		c.wprobe = w
		if c.userTimeout > 0 {
			c.setGVisorUserTimeout(0)
		}
	}
	if w.unanswered >= retries {
		// gVisor's probe came no later than Linux's give-up: Linux gives
		// up now instead, from a timer (not from gVisor's send path).
		c.afterWindowTimeout(0, GaveUpWindowProbes)
		return true
	}
	w.unanswered++
	w.sent++
	if w.capped {
		c.armWindowProbe() // tcp_send_probe0: the next one backed off from this one
	}
	if w.unanswered == retries {
		// tcp_probe_timer gives up at the next timeout: the RTO backed
		// off once per probe, but never more than tcp_retries2 times
		// (tcp_send_probe0), and at most TCP_RTO_MAX.
		c.afterWindowTimeout(min(w.base<<min(w.sent, retries, 20), 120*time.Second), GaveUpWindowProbes)
	}
	c.armWindowDeadline()
	return false
}

// afterWindowTimeout gives the connection up by rule after d, unless it
// is given up by then or the window opens.
func (c *Conn) afterWindowTimeout(d time.Duration, rule GiveUp) {
	w := c.wprobe
	if w.limit != nil {
		w.limit.Stop()
	}
	w.limit = c.host.st.Clock().AfterFunc(d, func() { c.giveUpProbing(rule) })
}

// armWindowProbe (re)arms kasim's own next probe of the closed window, on
// a host where the back-off has reached its cap (windowProbes.capped): the
// RTO it started from backed off tcp_retries2 times, at most TCP_RTO_MAX
// (tcp_probe0_when).
func (c *Conn) armWindowProbe() {
	w := c.wprobe
	if w.next != nil {
		w.next.Stop()
	}
	d := min(w.base<<min(c.host.b.WindowProbeRetries, 20), 120*time.Second)
	w.next = c.host.st.Clock().AfterFunc(d, func() {
		if c.wprobe == w && w.gaveUp == "" && w.probe.data != nil {
			c.sendCopy(w.probe, &w.resend)
		}
	})
}

// armWindowDeadline (re)arms the user timeout's deadline for the time
// left of it, as Linux clamps its probe timer to it each time it arms it,
// after a probe (tcp_send_probe0) and at its answer (tcp_ack_probe): the
// timer wheel rounds what is left then, not the whole user timeout.
func (c *Conn) armWindowDeadline() {
	w := c.wprobe
	if c.userTimeout == 0 || w.sent == 0 {
		return
	}
	if w.deadline != nil {
		w.deadline.Stop()
	}
	left := max(w.first+c.userTimeout-c.host.net.Now(), 0)
	w.deadline = c.host.st.Clock().AfterFunc(left, func() { c.giveUpProbing(GaveUpUserTimeout) })
}

// windowAnswered accounts for a segment that arrived while the connection
// probes a closed window: any ACK clears the unanswered count, and a window
// that opens ends the probing, and gives gVisor back the application's
// user timeout.
func (c *Conn) windowAnswered(f *flow) {
	w := c.wprobe
	if w == nil || w.gaveUp != "" {
		return
	}
	w.unanswered = 0
	if w.limit != nil {
		w.limit.Stop()
	}
	if f.zeroWindow {
		if w.sent > c.host.b.WindowProbeRetries {
			// tcp_ack_probe: the next probe one backed-off RTO after this
			// answer, backed off no more than tcp_retries2 times, where
			// gVisor's doubles on
			w.capped = true
			c.armWindowProbe()
		}
		c.armWindowDeadline()
		return
	}
	c.stopWindowProbes()
	c.wprobe = nil
	if c.userTimeout > 0 {
		c.setGVisorUserTimeout(c.userTimeout)
	}
}

// giveUpProbing gives the connection up by rule, if it still probes.
func (c *Conn) giveUpProbing(rule GiveUp) {
	w := c.wprobe
	if w == nil || w.gaveUp != "" || !stateOf(c.ep).synchronized() {
		return
	}
	w.gaveUp = rule
	c.stopWindowProbes()
	c.abandon() // its RST stays off the wire (shapeWindowProbe); the application gets ETIMEDOUT (gaveUpErr)
}

func (c *Conn) stopWindowProbes() {
	w := c.wprobe
	if w == nil {
		return
	}
	for _, t := range []tcpip.Timer{w.deadline, w.limit, w.next} {
		if t != nil {
			t.Stop()
		}
	}
}

// windowGaveUp fills in the give-up of a connection that probed a closed
// window: kasim's, under Linux's rules, with the probes and the limit, or
// gVisor's own (its user timeout, or 15 probes unanswered). It reports
// whether it was one.
func (c *Conn) windowGaveUp(ch *StateChange, f *flow) bool {
	if w := c.wprobe; w != nil && w.gaveUp != "" {
		ch.GaveUp, ch.WindowProbes, ch.Since = w.gaveUp, w.sent, w.first
		if w.gaveUp == GaveUpUserTimeout {
			ch.Limit = c.userTimeout
		}
		return true
	}
	if !f.zeroWindow || f.windowProbes == 0 || f.outstanding() {
		return false
	}
	ch.GaveUp, ch.WindowProbes = GaveUpWindowProbes, f.windowProbes
	if c.userTimeout > 0 {
		ch.GaveUp = GaveUpUserTimeout
	}
	return true
}
