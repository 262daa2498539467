package stack

import (
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
