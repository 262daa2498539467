package stack

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Behaviour is how a host's TCP differs from gVisor's own, at the points
// where systems differ: what a keep-alive probe carries, what goes out
// when keep-alive gives up and which error the application gets, the
// settings a new connection starts with, where probes go out, and how long
// retransmission goes on. The zero Behaviour is gVisor's own. A host takes
// one, whole, when it is added (HostOptions.Behaviour); kasim's profile
// package says which each system has.
type Behaviour struct {
	// ProbePayload is how many octets keep-alive probes carry: 0 (gVisor's
	// own probes, as RFC 1122 recommends) or 1 (one 0x00 octet, as Windows
	// sends). The octet is added below the stack, which never knows.
	ProbePayload int
	// AbortRST sends RST+ACK (seq = SND.NXT, ack = RCV.NXT) when keep-alive
	// gives up on a connection, as Linux does; gVisor itself sends nothing.
	AbortRST bool
	// AbortError is the error the application gets when keep-alive gives
	// up.
	AbortError AbortError
	// UserTimeoutReplacesCount makes TCP_USER_TIMEOUT, while set on a
	// connection, replace its keep-alive probe count, as Linux's
	// tcp_keepalive_timer does: the connection is dropped at the first
	// probe time where nothing has been received for the user timeout and
	// a probe is unanswered, however many probes that takes. gVisor alone
	// drops at whichever comes first.
	UserTimeoutReplacesCount bool
	// KeepAliveDefaults are the keep-alive settings each new connection
	// starts with, as a system's sysctls set them (FreeBSD probes 8 times,
	// gVisor 9). Zero fields keep gVisor's 2 h / 75 s / 9; Enabled is
	// ignored.
	KeepAliveDefaults KeepAlive
	// AlwaysKeepAlive makes every connection probe once idle, whether or
	// not the application switched SO_KEEPALIVE on, as FreeBSD does with
	// net.inet.tcp.always_keepalive=1 (its default, against RFC 1122's
	// default-off). The application's SO_KEEPALIVE still reads back as it
	// set it.
	AlwaysKeepAlive bool
	// KeepAliveStates, if set, are the only synchronized states in which
	// connections probe: lwIP's tcp_slowtmr probes only in ESTABLISHED and
	// CLOSE-WAIT, FreeBSD's tcp_timer_keep only up to CLOSING. Empty means
	// every state gVisor probes in.
	KeepAliveStates []State
	// CloseStopsKeepAlive makes close() end a connection's keep-alive, as
	// on Linux: an orphan in FIN-WAIT-2 becomes a timewait socket, which
	// has no keep-alive timer, and every other state it passes through has
	// its FIN outstanding. gVisor itself goes on probing an orphan in
	// FIN-WAIT-2 until its FIN-WAIT-2 timeout.
	CloseStopsKeepAlive bool
	// KeepAliveTimerKept makes a keep-alive option set on a connection
	// whose keep-alive runs leave its timer where Linux does
	// (tcp_sock_set_keepidle_locked, tcp_sock_set_keepintvl,
	// tcp_sock_set_keepcnt, tcp_set_keepalive): a new TCP_KEEPIDLE counts
	// from the last segment received (a probe goes at once if that is
	// past), TCP_KEEPINTVL and TCP_KEEPCNT move nothing, unanswered probes
	// stay counted, and SO_KEEPALIVE set while on does nothing. gVisor
	// restarts the idle time from now and forgets the unanswered probes at
	// every such call.
	KeepAliveTimerKept bool
	// ArmAtEstablishment starts keep-alive's idle time when the handshake
	// completes, for a connection whose application switched keep-alive
	// on before connecting, as Linux's tcp_finish_connect, FreeBSD, lwIP
	// and Windows do. gVisor itself arms it only when a segment is
	// processed on the established connection or an option is set there,
	// so such a connection that stays quiet is never probed (measured:
	// kasim conform --dut gvisor).
	ArmAtEstablishment bool
	// LimitRetransmissions makes MaxRetransmissions the number of times
	// the host retransmits an unacknowledged segment before it gives the
	// connection up (gVisor's TCPMaxRetriesOption); otherwise gVisor's own
	// 15 apply, as Linux's tcp_retries2. The application then gets a
	// timeout, which is not keep-alive's doing. (A flag rather than a zero
	// default, because 0 is a limit Windows 2000/XP/2003 can be given.)
	LimitRetransmissions bool
	MaxRetransmissions   uint32
	// RetransmitTimeout, if set, replaces gVisor's count of
	// retransmissions with Linux's rule (tcp_write_timeout): when the
	// retransmission timer fires, after at least one retransmission by
	// it, the connection is given up, without a reset, once this long
	// has passed since its first retransmission (retrans_stamp), however
	// many that took; a tail loss probe is not one. TCP_USER_TIMEOUT,
	// while set, takes its place, counted from the same moment.
	// RetransmitTimeout(tcp_retries2) gives Linux's value.
	RetransmitTimeout time.Duration
	// SynRetransmit, if set, is Linux's, Windows' or lwIP's SYN
	// retransmission for a connect in place of gVisor's (see
	// SynRetransmit).
	SynRetransmit SynRetransmit
	// TickRetransmit, if set, is lwIP's data retransmission in place of
	// gVisor's (see TickRetransmit).
	TickRetransmit TickRetransmit
	// BSDRetransmit, if set, is FreeBSD's data retransmission in place of
	// gVisor's (see BSDRetransmit).
	BSDRetransmit BSDRetransmit
	// MaxRTO, if set, is the ceiling of the data retransmission timeout
	// in place of gVisor's 120 s (its TCPMaxRTOOption): Windows Vista and
	// later stop doubling at 60 s.
	MaxRTO time.Duration
	// BareWindowProbe sends window probes without data, as Linux's
	// tcp_xmit_probe_skb does (an ACK at SND.UNA-1, the shape of its
	// keep-alive probe); gVisor's own resend one acknowledged octet.
	BareWindowProbe bool
	// WindowProbeRetries, if set, replaces gVisor's give-up of probes
	// into a closed window with Linux's (tcp_probe_timer; see
	// windowProbes): this many unanswered in a row (tcp_retries2), or
	// TCP_USER_TIMEOUT from the first probe, answered or not.
	WindowProbeRetries int
	// SynAckRetries, if set, is Linux's tcp_synack_retries: a half-open
	// connection's SYN-ACK goes again at most this many times, and at the
	// timeout after the last the server drops the request (HalfOpen) and
	// resets what comes for it later. gVisor alone sends more.
	SynAckRetries int
	// ReceiveBuffer is SO_RCVBUF's rule; the zero value is gVisor's.
	ReceiveBuffer BufferRule
}

// BufferRule is how a system turns the value given to SO_RCVBUF into a
// receive buffer size: clamped to Max, doubled for the kernel's own
// overhead, and at least Min. The zero value is gVisor's (its sentry's
// clampBufSize with tcp.MinBufferSize 4096 and tcp.MaxBufferSize 4 MiB);
// LinuxReceiveBuffer is Linux's.
type BufferRule struct{ Min, Max int }

// LinuxReceiveBuffer is Linux's SO_RCVBUF (net/core/sock.c
// __sock_set_rcvbuf): at most net.core.rmem_max, 212992 by default,
// doubled, and at least SOCK_MIN_RCVBUF (2048 plus a struct sk_buff: 2304
// on x86-64).
var LinuxReceiveBuffer = BufferRule{Min: 2304, Max: 212992}

// Size is the receive buffer size SO_RCVBUF sets for value v (an int the
// kernel reads unsigned, as both compare it).
func (r BufferRule) Size(v uint32) int {
	if r == (BufferRule{}) {
		r = BufferRule{Min: tcp.MinBufferSize, Max: tcp.MaxBufferSize}
	}
	n := min(int64(v), int64(r.Max), math.MaxInt32/2)
	return max(int(2*n), r.Min)
}

// AbortError is the error an application gets when keep-alive gives up.
type AbortError int

const (
	// AbortTimedOut is gVisor's ErrTimeout: ETIMEDOUT (Linux, FreeBSD).
	AbortTimedOut AbortError = iota
	// AbortConnAborted is ErrConnectionAborted: ECONNABORTED, what lwIP's
	// sockets report for the ERR_ABRT its tcp_slowtmr passes on.
	AbortConnAborted
)

// validate reports the first field out of range.
func (b Behaviour) validate() error {
	if b.ProbePayload != 0 && b.ProbePayload != 1 {
		return fmt.Errorf("probe payload of %d octets: want 0 or 1", b.ProbePayload)
	}
	if b.AbortError != AbortTimedOut && b.AbortError != AbortConnAborted {
		return fmt.Errorf("abort error %d: want AbortTimedOut or AbortConnAborted", b.AbortError)
	}
	if b.RetransmitTimeout < 0 {
		return fmt.Errorf("retransmit timeout %v: want zero (gVisor's count) or more", b.RetransmitTimeout)
	}
	if b.RetransmitTimeout > 0 && b.LimitRetransmissions {
		return errors.New("a retransmit timeout and a retransmission limit: want one rule")
	}
	if err := b.SynRetransmit.validate(); err != nil {
		return err
	}
	if err := b.TickRetransmit.validate(); err != nil {
		return err
	}
	if err := b.BSDRetransmit.validate(); err != nil {
		return err
	}
	if b.ownsRetransmission() && (b.RetransmitTimeout > 0 || b.LimitRetransmissions || (b.TickRetransmit.Max > 0 && b.BSDRetransmit.Max > 0)) {
		return errors.New("lwIP's or FreeBSD's retransmission and another retransmission rule: want one rule")
	}
	if b.MaxRTO < 0 || (b.MaxRTO > 0 && b.MaxRTO < time.Second) {
		return fmt.Errorf("maximum RTO %v: want zero (gVisor's 120 s) or 1 s or more", b.MaxRTO)
	}
	for _, s := range b.KeepAliveStates {
		if !s.synchronized() {
			return fmt.Errorf("keep-alive state %v: want a synchronized state", s)
		}
	}
	return b.KeepAliveDefaults.validate()
}

// applyBehaviour gives a new host b, validated already: what the stack
// must be told now (the retransmission limit); the rest is read as the host
// runs.
func (h *Host) applyBehaviour(b Behaviour) error {
	b.KeepAliveDefaults.Enabled = false
	b.KeepAliveStates = slices.Clone(b.KeepAliveStates)
	h.b = b
	if b.LimitRetransmissions || b.RetransmitTimeout > 0 || b.ownsRetransmission() {
		limit := b.MaxRetransmissions
		if b.RetransmitTimeout > 0 || b.ownsRetransmission() {
			limit = math.MaxUint32 // kasim decides (retransmit.go, tickretx.go)
		}
		opt := tcpip.TCPMaxRetriesOption(limit)
		if err := h.st.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
			return fmt.Errorf("stack: host %q: max retransmissions %d: %s", h.name, b.MaxRetransmissions, err)
		}
	}
	if b.MaxRTO > 0 {
		opt := tcpip.TCPMaxRTOOption(b.MaxRTO)
		if err := h.st.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
			return fmt.Errorf("stack: host %q: maximum RTO %v: %s", h.name, b.MaxRTO, err)
		}
	}
	return nil
}

// Behaviour returns the behaviour the host was given.
func (h *Host) Behaviour() Behaviour {
	b := h.b
	b.KeepAliveStates = slices.Clone(b.KeepAliveStates)
	return b
}
