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

// AbortError is the error an application gets when keep-alive gives up.
type AbortError int

const (
	// AbortTimedOut is gVisor's ErrTimeout: ETIMEDOUT (Linux, FreeBSD).
	AbortTimedOut AbortError = iota
	// AbortConnAborted is ErrConnectionAborted: ECONNABORTED, what lwIP's
	// sockets report for the ERR_ABRT its tcp_slowtmr passes on.
	AbortConnAborted
)

// SetKeepAliveDefaults sets the keep-alive settings each new connection of
// the host starts with, as a system's sysctls do (FreeBSD probes 8 times,
// gVisor 9). Zero fields keep gVisor's 2 h / 75 s / 9; Enabled is ignored.
func (h *Host) SetKeepAliveDefaults(k KeepAlive) error {
	if err := k.validate(); err != nil {
		return fmt.Errorf("stack: %s: %w", h.name, err)
	}
	k.Enabled = false
	h.keepAliveDefaults = k
	return nil
}

// KeepAliveDefaults returns the settings each new connection starts with.
func (h *Host) KeepAliveDefaults() KeepAlive {
	k, d := gvisorKeepAlive, h.keepAliveDefaults
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

// SetAlwaysKeepAlive makes every connection of the host probe once idle,
// whether or not the application switched SO_KEEPALIVE on, as FreeBSD does
// with net.inet.tcp.always_keepalive=1 (its default, against RFC 1122's
// default-off). The application's SO_KEEPALIVE still reads back as it set
// it.
func (h *Host) SetAlwaysKeepAlive(on bool) { h.alwaysKeepAlive = on }

// SetKeepAliveStates limits the synchronized states in which the host's
// connections probe: lwIP's tcp_slowtmr probes only in ESTABLISHED and
// CLOSE-WAIT, FreeBSD's tcp_timer_keep only up to CLOSING. With none given,
// every state gVisor probes in.
func (h *Host) SetKeepAliveStates(states ...State) { h.keepAliveStates = slices.Clone(states) }

// SetCloseStopsKeepAlive makes close() end a connection's keep-alive, as on
// Linux: an orphan in FIN-WAIT-2 becomes a timewait socket, which has no
// keep-alive timer, and every other state it passes through has its FIN
// outstanding. gVisor itself goes on probing an orphan in FIN-WAIT-2 until
// its FIN-WAIT-2 timeout.
func (h *Host) SetCloseStopsKeepAlive(on bool) { h.closeStopsKeepAlive = on }

// SetMaxRetransmissions sets how many times the host retransmits an
// unacknowledged segment before it gives the connection up (gVisor's
// TCPMaxRetriesOption; its default is 15, as Linux's tcp_retries2). The
// application then gets a timeout, which is not keep-alive's doing.
func (h *Host) SetMaxRetransmissions(n uint32) error {
	opt := tcpip.TCPMaxRetriesOption(n)
	if err := h.st.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
		return fmt.Errorf("stack: %s: max retransmissions %d: %s", h.name, n, err)
	}
	return nil
}

// SetKeepAliveAbortError sets the error the application gets when
// keep-alive gives up on a connection.
func (h *Host) SetKeepAliveAbortError(e AbortError) { h.abortError = e }

// keepAliveWanted reports whether gVisor's keep-alive should run on c now:
// switched on (by the application, or for every connection) and, once
// synchronized, in a state the host probes in.
func (c *Conn) keepAliveWanted() bool {
	if c.closed && c.host.closeStopsKeepAlive {
		return false
	}
	return (c.keepAliveOn || c.host.alwaysKeepAlive) && c.probesIn(c.state)
}

func (c *Conn) probesIn(s State) bool {
	return len(c.host.keepAliveStates) == 0 || !s.synchronized() || slices.Contains(c.host.keepAliveStates, s)
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
	if _, timeout := err.(*tcpip.ErrTimeout); timeout && c.keepAliveAbort && c.host.abortError == AbortConnAborted {
		return &tcpip.ErrConnectionAborted{}
	}
	return err
}
