package stack

import (
	"fmt"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// gvisorKeepAlive is what a gVisor endpoint starts with.
var gvisorKeepAlive = KeepAlive{Idle: tcp.DefaultKeepaliveIdle, Interval: tcp.DefaultKeepaliveInterval, Count: tcp.DefaultKeepaliveCount}

// KeepAliveDefaults returns the settings each new connection starts with.
func (h *Host) KeepAliveDefaults() KeepAlive {
	k, d := gvisorKeepAlive, h.b.KeepAliveDefaults
	if d.Idle > 0 {
		k.Idle = d.Idle
	}
	if d.Interval > 0 {
		k.Interval = d.Interval
	}
	if d.Count > 0 {
		k.Count = d.Count
	}
	return k
}

// applyDefaults gives a new connection the host's defaults where they
// differ from gVisor's, so hosts without any keep gVisor's behaviour call
// for call.
func (c *Conn) applyDefaults() {
	d := c.host.KeepAliveDefaults()
	if d.Idle != gvisorKeepAlive.Idle {
		_ = c.SetKeepAliveIdle(d.Idle)
	}
	if d.Interval != gvisorKeepAlive.Interval {
		_ = c.SetKeepAliveInterval(d.Interval)
	}
	if d.Count != gvisorKeepAlive.Count {
		_ = c.SetKeepAliveCount(d.Count)
	}
}

// keepAliveWanted reports whether gVisor's keep-alive should run on c now:
// switched on (by the application, or for every connection) and, once
// synchronized, in a state the host probes in.
func (c *Conn) keepAliveWanted() bool {
	if c.closed && c.host.b.CloseStopsKeepAlive {
		return false
	}
	return (c.keepAliveOn || c.host.b.AlwaysKeepAlive) && c.probesIn(c.state)
}

func (c *Conn) probesIn(s State) bool {
	return len(c.host.b.KeepAliveStates) == 0 || !s.synchronized() || slices.Contains(c.host.b.KeepAliveStates, s)
}

// gaveUpWithoutProbing reports whether keep-alive with a probe count of 0
// ended the connection, which it does at the idle time without a probe
// (Windows 2000/XP/2003 with both registry counts 0). Nothing else closes a
// connection that has nothing outstanding and has received nothing for
// the idle time, outside TIME-WAIT: an RST or the last ACK would have been
// received just now, and outstanding data means retransmission decided.
func (c *Conn) gaveUpWithoutProbing(from State, f *flow) bool {
	if from == TimeWait || f.outstanding() || !c.ep.SocketOptions().GetKeepAlive() {
		return false
	}
	if n, _ := c.ep.GetSockOptInt(tcpip.KeepaliveCountOption); n != 0 {
		return false
	}
	var idle tcpip.KeepaliveIdleOption
	_ = c.ep.GetSockOpt(&idle)
	return c.host.net.Now()-f.lastRecv >= time.Duration(idle)
}

// abortErr turns gVisor's ErrTimeout for a keep-alive abort into the
// host's abort error.
func (c *Conn) abortErr(err tcpip.Error) tcpip.Error {
	if _, timeout := err.(*tcpip.ErrTimeout); timeout && c.keepAliveAbort && c.host.b.AbortError == AbortConnAborted {
		return &tcpip.ErrConnectionAborted{}
	}
	return err
}

// keepTimer runs after gVisor took a keep-alive option on c (TCP_KEEPIDLE
// if idleSet, else TCP_KEEPINTVL or TCP_KEEPCNT; interval is the one in
// force before TCP_KEEPINTVL, 0 if unchanged): gVisor then restarted its idle time from now and forgot
// the unanswered probes (resetKeepaliveTimer(true)). On a host with
// Behaviour.KeepAliveTimerKept it puts the next firing back where Linux's
// timer is, by running gVisor with an idle time that ends then and a
// count less the probes already out, and holds the application's values
// for KeepAlive and for the next segment received (giveBackKeepAlive):
//
//   - no probe out, or TCP_KEEPIDLE set: the last segment received plus
//     the idle time (tcp_sock_set_keepidle_locked re-arms the timer for
//     what is left of the idle time after keepalive_time_elapsed; the
//     others leave it armed from the last receive), at once if that is
//     past;
//   - TCP_KEEPINTVL or TCP_KEEPCNT with probes out: the last probe plus
//     the interval it was sent with, the timer Linux armed then.
//
// Outside an established connection with nothing outstanding, gVisor's
// timer is off or Linux's does not probe, and nothing is shaped.
func (c *Conn) keepTimer(idleSet bool, interval time.Duration) {
	if !c.host.b.KeepAliveTimerKept || !c.ep.SocketOptions().GetKeepAlive() || !c.state.synchronized() {
		return
	}
	f := c.flow()
	if f == nil || !f.haveRcv || f.outstanding() || f.zeroWindow {
		return
	}
	k := c.KeepAlive()
	if interval == 0 {
		interval = k.Interval
	}
	due := f.lastRecv + k.Idle
	if f.unanswered > 0 && !idleSet {
		due = f.lastProbe + interval
	}
	wait := max(due-c.host.net.Now(), 0) // 0: at the host's next timer tick, as Linux's timer re-armed for 0
	out := f.unanswered
	if c.userTimeoutReplacesCount() {
		out = 0 // the count is not gVisor's to reach while the user timeout decides
	}
	if wait == k.Idle && out == 0 {
		return // gVisor's restart is Linux's timer: nothing received, nothing probed, since now
	}
	c.held = &KeepAlive{Idle: k.Idle, Count: k.Count}
	_ = c.setIdle(wait)
	if out > 0 {
		_ = c.setCount(max(k.Count-out, 0))
	}
}

// giveBackKeepAlive gives gVisor the idle time and count the application
// set, if keepTimer held them, which re-arms gVisor's timer for the idle
// time from now and forgets unanswered probes: what a segment received
// does, which is when it is called, before gVisor takes the segment.
func (c *Conn) giveBackKeepAlive() {
	h := c.held
	if h == nil {
		return
	}
	c.held = nil
	_ = c.setIdle(h.Idle)
	if !c.userTimeoutReplacesCount() {
		_ = c.setCount(h.Count)
	}
}

// SetKeepAlive applies k: idle, interval and count first (non-zero values
// only), then on or off. Like every keep-alive option set in gVisor, it
// restarts the idle timer and forgets unanswered probes.
func (c *Conn) SetKeepAlive(k KeepAlive) error {
	if err := k.validate(); err != nil {
		return fmt.Errorf("stack: %s: %w", c, err)
	}
	if k.Idle > 0 {
		if err := c.SetKeepAliveIdle(k.Idle); err != nil {
			return err
		}
	}
	if k.Interval > 0 {
		if err := c.SetKeepAliveInterval(k.Interval); err != nil {
			return err
		}
	}
	if k.Count > 0 {
		if err := c.SetKeepAliveCount(k.Count); err != nil {
			return err
		}
	}
	c.SetKeepAliveEnabled(k.Enabled)
	return nil
}

// SetKeepAliveEnabled switches keep-alive on or off (SO_KEEPALIVE).
func (c *Conn) SetKeepAliveEnabled(on bool) {
	c.keepAliveOn = on
	want := c.keepAliveWanted()
	if c.host.b.KeepAliveTimerKept && want == c.ep.SocketOptions().GetKeepAlive() {
		return // Linux's tcp_set_keepalive: setting what is set moves no timer
	}
	c.giveBackKeepAlive()
	c.ep.SocketOptions().SetKeepAlive(want)
	c.refresh()
}

// SetKeepAliveIdle sets the idle time before the first probe (TCP_KEEPIDLE).
func (c *Conn) SetKeepAliveIdle(d time.Duration) error {
	c.giveBackKeepAlive()
	if err := c.setIdle(d); err != nil {
		return err
	}
	c.keepTimer(true, 0)
	return nil
}

func (c *Conn) setIdle(d time.Duration) error {
	opt := tcpip.KeepaliveIdleOption(d)
	return c.sockErr(c.ep.SetSockOpt(&opt))
}

// SetKeepAliveInterval sets the time between probes (TCP_KEEPINTVL).
func (c *Conn) SetKeepAliveInterval(d time.Duration) error {
	c.giveBackKeepAlive()
	var before time.Duration // the interval Linux's timer was armed with, if it matters
	if c.host.b.KeepAliveTimerKept {
		before = c.KeepAlive().Interval
	}
	opt := tcpip.KeepaliveIntervalOption(d)
	if err := c.sockErr(c.ep.SetSockOpt(&opt)); err != nil {
		return err
	}
	c.keepTimer(false, before)
	return nil
}

// SetKeepAliveCount sets how many unanswered probes abort (TCP_KEEPCNT).
// While a user timeout replaces the count (see
// Behaviour.UserTimeoutReplacesCount), the count is kept for when it is
// cleared.
func (c *Conn) SetKeepAliveCount(n int) error {
	c.giveBackKeepAlive()
	c.count = n
	if c.userTimeoutReplacesCount() {
		return nil
	}
	if err := c.setCount(n); err != nil {
		return err
	}
	c.keepTimer(false, 0)
	return nil
}

func (c *Conn) setCount(n int) error {
	return c.sockErr(c.ep.SetSockOptInt(tcpip.KeepaliveCountOption, n))
}

// KeepAlive reads the connection's keep-alive configuration back from the
// stack.
func (c *Conn) KeepAlive() KeepAlive {
	var idle tcpip.KeepaliveIdleOption
	var intvl tcpip.KeepaliveIntervalOption
	_ = c.ep.GetSockOpt(&idle)
	_ = c.ep.GetSockOpt(&intvl)
	count, _ := c.ep.GetSockOptInt(tcpip.KeepaliveCountOption)
	if h := c.held; h != nil {
		idle, count = tcpip.KeepaliveIdleOption(h.Idle), h.Count
	}
	if c.userTimeoutReplacesCount() {
		count = c.count
	}
	return KeepAlive{
		Enabled:  c.ep.SocketOptions().GetKeepAlive(),
		Idle:     time.Duration(idle),
		Interval: time.Duration(intvl),
		Count:    count,
	}
}
