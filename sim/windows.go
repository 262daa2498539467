package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"kasim/posixprofile"
	"kasim/sockopt"
	"kasim/stack"
	"kasim/timers"
	"kasim/winprofile"
)

// FeaturesOf returns the Winsock a Windows profile offers.
func FeaturesOf(p winprofile.Profile) sockopt.Features {
	return sockopt.Features{
		Idle: p.Idle(), Interval: p.Interval(), ProbeCount: p.ProbeCount(),
		KeepCnt: p.HasKeepCnt(), KeepIdle: p.HasKeepIdle(),
		RejectDuringConnect: p.RejectsSetDuringConnect(),
	}
}

// ApplyWire gives a host the profile's behaviour below the stack: the
// probe's payload, what goes out when keep-alive gives up, that close ends
// keep-alive, and on 2000/XP/2003 the data retransmission limit.
func ApplyWire(h *stack.Host, p winprofile.Profile) error {
	if err := h.SetProbePayload(p.ProbeBytes); err != nil {
		return err
	}
	h.SetAbortRST(p.AbortRST)
	// Whether Windows probes a connection after closesocket is not
	// documented; kasim's choice is that keep-alive, a socket option,
	// ends with the socket, as on Linux (docs/profiles.md, Windows).
	h.SetCloseStopsKeepAlive(true)
	if p.Family == winprofile.Legacy {
		// 2000/XP/2003: the registry value that counts probes also
		// bounds data retransmission.
		return h.SetMaxRetransmissions(p.Registry.TcpMaxDataRetransmissions)
	}
	return nil
}

// ApplyPOSIX gives a host a POSIX profile's behaviour where it differs
// from gVisor's own: the RST at the abort, TCP_USER_TIMEOUT replacing the
// probe count, the default settings, keep-alive on for every connection,
// the states probes go out in, and the error at the abort. (Its timer
// slack is the host's timer queue, chosen when the host is added:
// HostTimers.)
func ApplyPOSIX(h *stack.Host, p posixprofile.Profile) {
	h.SetAbortRST(p.AbortRST)
	h.SetCloseStopsKeepAlive(p.CloseStopsKeepAlive)
	h.SetUserTimeoutReplacesCount(p.UserTimeoutReplacesCount)
	// Only what differs from gVisor's 2 h / 75 s / 9 is applied.
	_ = h.SetKeepAliveDefaults(stack.KeepAlive{Idle: p.Idle, Interval: p.Interval, Count: p.Count})
	h.SetAlwaysKeepAlive(p.AlwaysKeepAlive)
	var states []stack.State
	for _, name := range p.ProbeStates {
		for s := stack.Closed; s <= stack.TimeWait; s++ {
			if s.String() == name {
				states = append(states, s)
			}
		}
	}
	h.SetKeepAliveStates(states...)
	if p.AbortError == "ECONNABORTED" {
		h.SetKeepAliveAbortError(stack.AbortConnAborted)
	}
}

// HostTimers returns the timer queue a POSIX profile's host keeps its
// stack's timers in: a tick queue (lwIP's 500 ms slow timer), a Linux
// timer wheel at the profile's HZ, or nil for the network's exact queue.
// Every gVisor timer of the host then fires late, not only keep-alive's.
func HostTimers(p *posixprofile.Profile) timers.Queue {
	switch {
	case p == nil:
		return nil
	case p.Tick != 0:
		return timers.NewTickQueue(int64(p.Tick))
	case p.HZ != 0:
		return timers.NewLinuxWheel(p.HZ)
	}
	return nil
}

// DialectOf returns the socket dialect a POSIX profile's applications
// call (Linux's for linux and gvisor).
func DialectOf(p posixprofile.Profile) *sockopt.Dialect {
	if d, err := sockopt.DialectNamed(p.Dialect); err == nil {
		return d
	}
	return sockopt.Linux
}

// effective returns the keep-alive settings the client's connections get.
func (b Builtin) effective() (idle, interval time.Duration, count int) {
	idle, interval, count = b.Idle, b.Interval, b.Count
	if p := b.Windows; p != nil {
		if idle == 0 {
			idle = p.Idle()
		}
		if interval == 0 {
			interval = p.Interval()
		}
		if count == 0 {
			count = p.ProbeCount()
		}
	}
	return idle, interval, count
}

func (b Builtin) validateWindows() error {
	p := b.Windows
	const maxMS = time.Duration(0xFFFFFFFF) * time.Millisecond
	switch {
	case b.Idle < 0 || b.Idle > maxMS || b.Idle%time.Millisecond != 0:
		return fmt.Errorf("idle %v: %s takes whole milliseconds from 1ms to %v (SIO_KEEPALIVE_VALS)", b.Idle, p.Title, maxMS)
	case b.Interval < 0 || b.Interval > maxMS || b.Interval%time.Millisecond != 0:
		return fmt.Errorf("interval %v: %s takes whole milliseconds from 1ms to %v (SIO_KEEPALIVE_VALS)", b.Interval, p.Title, maxMS)
	case b.Count != 0 && !p.HasKeepCnt():
		if p.Family == winprofile.Legacy {
			return fmt.Errorf("count %d: %s has no per-connection probe count (TCP_KEEPCNT came with Windows 10 1703); set the registry instead, e.g. --registry TcpMaxDataRetransmissions=%d", b.Count, p.Title, b.Count)
		}
		return fmt.Errorf("count %d: %s sends 10 probes and cannot change that (TCP_KEEPCNT came with Windows 10 1703)", b.Count, p.Title)
	case b.Count < 0 || b.Count > 255:
		return fmt.Errorf("count %d: want 1 to 255 (TCP_KEEPCNT)", b.Count)
	}
	return nil
}

// WinsockCall records a Winsock call and its outcome on host.
func (r *Recorder) WinsockCall(at time.Duration, host string, c sockopt.Call) {
	ev := &SockOptEvent{Call: c.Func, Level: c.Level, Opt: c.Opt, Value: c.Value, Result: c.Result}
	if c.Conn != nil {
		ev.Conn = c.Conn.ID()
	}
	if c.Err != (sockopt.WSAError{}) {
		ev.Error, ev.Code = c.Err.Name, c.Err.Code
	}
	r.Add(at, host, KindSockOpt, ev)
}

// dialWinsock opens one client connection the way a Windows application
// does: SO_KEEPALIVE before connect (the system's timing), SIO_KEEPALIVE_VALS
// and TCP_KEEPCNT if the run asks for other values, an overlapped connect,
// the request, and a receive always in progress. When keep-alive gives up,
// the receive in progress fails, and so does one more call after it.
func dialWinsock(net *stack.Network, rec *Recorder, ws *sockopt.Winsock, raddr netip.AddrPort, b Builtin, buf []byte, done func()) {
	s := ws.Socket(sockopt.AF_INET, sockopt.SOCK_STREAM, sockopt.IPPROTO_TCP)
	if s == sockopt.INVALID_SOCKET {
		done()
		return
	}
	conn := ws.Conn(s)
	ws.Setsockopt(s, sockopt.SOL_SOCKET, sockopt.SO_KEEPALIVE, binary.LittleEndian.AppendUint32(nil, 1), 4)
	if b.Idle != 0 || b.Interval != 0 {
		idle, interval, _ := b.effective()
		vals := binary.LittleEndian.AppendUint32(nil, 1)
		vals = binary.LittleEndian.AppendUint32(vals, uint32(idle/time.Millisecond))
		vals = binary.LittleEndian.AppendUint32(vals, uint32(interval/time.Millisecond))
		var ret uint32
		ws.WSAIoctl(s, sockopt.SIO_KEEPALIVE_VALS, vals, nil, &ret)
	}
	if b.Count != 0 {
		ws.Setsockopt(s, sockopt.IPPROTO_TCP, sockopt.TCP_KEEPCNT, binary.LittleEndian.AppendUint32(nil, uint32(b.Count)), 4)
	}
	var onRecv func(n int, e sockopt.WSAError)
	onRecv = func(n int, e sockopt.WSAError) {
		if e == (sockopt.WSAError{}) && n > 0 {
			ws.RecvAsync(s, buf, onRecv) // keep a receive in progress
			return
		}
		if e != (sockopt.WSAError{}) {
			rec.AppError(net.Now(), conn, "recv", sockopt.Errno{Name: e.Name, Code: e.Code})
			// The next call learns what later calls get.
			if ws.Recv(s, buf) == sockopt.SOCKET_ERROR {
				le := ws.LastError()
				rec.AppError(net.Now(), conn, "recv", sockopt.Errno{Name: le.Name, Code: le.Code})
			}
		}
		ws.Closesocket(s)
		done()
	}
	ws.ConnectEx(s, raddr, func(e sockopt.WSAError) {
		if e != (sockopt.WSAError{}) {
			rec.AppError(net.Now(), conn, "connect", sockopt.Errno{Name: e.Name, Code: e.Code})
			done()
			return
		}
		ws.Send(s, Request)
		ws.RecvAsync(s, buf, onRecv)
	})
}
