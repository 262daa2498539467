// Package sim runs scenarios on the simulated network and records what
// happens as a trace: kasim's public output, rendered as JSONL, as an
// annotated text timeline, or as a pcap.
package sim

import (
	"fmt"
	"time"
)

// Event is one line of a trace. Every concrete event type embeds Header and
// marshals to the JSONL object described in docs/trace-format.md.
type Event interface {
	Head() *Header
}

// Header holds the fields every trace line has.
type Header struct {
	TNS   int64  `json:"t_ns"`  // virtual nanoseconds since the scenario started
	T     string `json:"t"`     // the same, as HH:MM:SS.mmm
	Host  string `json:"host"`  // the host the event happened on
	Event string `json:"event"` // the event kind
}

// Head implements Event.
func (h *Header) Head() *Header { return h }

// Event kinds.
const (
	KindSegment   = "segment"
	KindSockOpt   = "sockopt"
	KindState     = "state"
	KindKeepAlive = "keepalive"
	KindAppError  = "app-error"
	KindGiveUp    = "give-up"
	KindLink      = "link"
	KindNote      = "note"
)

// Segment classes.
const (
	ClassSYN            = "syn"
	ClassSYNACK         = "syn-ack"
	ClassData           = "data"
	ClassACK            = "ack"
	ClassKeepAliveProbe = "keepalive-probe"
	ClassKeepAliveACK   = "keepalive-ack"
	ClassRetransmission = "retransmission"
	ClassFIN            = "fin"
	ClassRST            = "rst"
	// ClassWindowProbe is a probe of the peer's closed window (RFC 1122
	// 4.2.2.17): on Linux an ACK at SND.UNA-1 without data, the shape of
	// a keep-alive probe; on gVisor the same with one acknowledged octet.
	ClassWindowProbe = "window-probe"
)

// SegmentEvent is a TCP segment as its sender emitted it.
type SegmentEvent struct {
	Header
	Dir        string `json:"dir"` // always "out": from Host
	Src        string `json:"src"`
	Dst        string `json:"dst"`
	To         string `json:"to,omitempty"` // the host Dst belongs to, if any
	Flags      string `json:"flags"`
	Seq        uint32 `json:"seq"` // relative to this direction's ISN
	Ack        uint32 `json:"ack"` // relative to the other direction's ISN; 0 without ACK
	Len        int    `json:"len"`
	Win        uint16 `json:"win"` // the window field as sent, unscaled
	Class      string `json:"class"`
	Conn       int    `json:"conn,omitempty"` // the sending socket, when known
	Dropped    bool   `json:"dropped,omitempty"`
	DropReason string `json:"drop_reason,omitempty"`
}

// SockOptEvent is a socket call and its outcome.
type SockOptEvent struct {
	Header
	Conn   int    `json:"conn"`
	Call   string `json:"call"`
	Level  string `json:"level"`
	Opt    string `json:"opt"`
	Value  any    `json:"value"`  // decoded: a number for flags and counts, a Go duration string for times
	Result int    `json:"result"` // 0, or -1 (SOCKET_ERROR on Winsock)
	Error  string `json:"error,omitempty"`
	Code   int    `json:"code,omitempty"`
}

// StateEvent is a TCP state change.
type StateEvent struct {
	Header
	Conn int    `json:"conn"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Keep-alive actions.
const (
	ActionProbe = "probe" // a probe goes out
	ActionAbort = "abort" // keep-alive gives up on the connection
	ActionRearm = "rearm" // a segment answered the probes: count reset, idle timer restarted
)

// KeepAliveEvent is a keep-alive decision. IdleNS, IntervalNS and Count are
// the connection's settings when the decision was taken.
type KeepAliveEvent struct {
	Header
	Conn       int    `json:"conn"`
	Action     string `json:"action"`
	Probe      int    `json:"probe,omitempty"` // the probe's number, 1-based, for "probe"
	Unanswered int    `json:"unanswered"`      // probes sent before this decision and not answered
	IdleNS     int64  `json:"idle_ns"`
	IntervalNS int64  `json:"interval_ns"`
	Count      int    `json:"count"`
	// LastRecvNS is when the connection last received a segment.
	LastRecvNS int64 `json:"last_recv_ns"`
	// UserTimeoutNS is the connection's TCP_USER_TIMEOUT, if set.
	UserTimeoutNS int64 `json:"user_timeout_ns,omitempty"`
}

// AppErrorEvent is an error surfaced to the application.
type AppErrorEvent struct {
	Header
	Conn  int    `json:"conn"`
	Op    string `json:"op"`
	Error string `json:"error"`
	Code  int    `json:"code"`
}

// GiveUpEvent is a connection given up while data (or a FIN) was
// unacknowledged, and the rule that did it: "retransmission" (Linux:
// tcp_retries2's time since the first retransmission; other systems: a
// count) or "user-timeout" (TCP_USER_TIMEOUT). Keep-alive's own give-up is
// a KeepAliveEvent with action "abort".
type GiveUpEvent struct {
	Header
	Conn int    `json:"conn"`
	Rule string `json:"rule"`
	// Retransmissions counts the retransmission timer's firings before
	// the give-up, FirstRetransmissionNS is when the first retransmission
	// went, and LimitNS the time the rule allows from it: set where the
	// profile gives up by time from that moment (Linux).
	Retransmissions       int   `json:"retransmissions,omitempty"`
	FirstRetransmissionNS int64 `json:"first_retransmission_ns,omitempty"`
	LimitNS               int64 `json:"limit_ns,omitempty"`
	// WindowProbes counts the probes of the peer's closed window before a
	// give-up while it was closed, and FirstWindowProbeNS is when the
	// first went (LimitNS then counts from it).
	WindowProbes       int   `json:"window_probes,omitempty"`
	FirstWindowProbeNS int64 `json:"first_window_probe_ns,omitempty"`
	// HalfOpen, for a half-open connection its server gave up (rule
	// synack-retries; conn 0, as no socket holds it), is the client's
	// address and port.
	HalfOpen string `json:"half_open,omitempty"`
}

// LinkEvent is a change of the simulated network. Host is the host acted on,
// or the first of a pair; Peer the second.
type LinkEvent struct {
	Header
	Action    string   `json:"action"`
	Peer      string   `json:"peer,omitempty"`
	Direction string   `json:"direction,omitempty"` // for silence: in, out or both
	Loss      *float64 `json:"loss,omitempty"`
	LatencyNS *int64   `json:"latency_ns,omitempty"`
	// IdleNS is a middlebox's idle timeout: it forgets flows quiet for
	// longer (0: the box is removed).
	IdleNS *int64 `json:"idle_ns,omitempty"`
}

// NoteEvent is free text for teaching output.
type NoteEvent struct {
	Header
	Text string `json:"text"`
}

// FormatTime renders virtual time as HH:MM:SS.mmm; hours may exceed 24.
// Milliseconds are truncated, so an event never appears to happen later
// than it did.
func FormatTime(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 0 {
		return "-" + FormatTime(-d)
	}
	h := ms / 3600000
	if h > 99 {
		return fmt.Sprintf("%02d:%02d:%02d.%03d", h, ms/60000%60, ms/1000%60, ms%1000)
	}
	// The common case without fmt: this runs for every trace event.
	b := []byte("00:00:00.000")
	put := func(at int, v int64, width int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, h, 2)
	put(3, ms/60000%60, 2)
	put(6, ms/1000%60, 2)
	put(9, ms%1000, 3)
	return string(b)
}

func newHeader(at time.Duration, host, kind string) Header {
	return Header{TNS: int64(at), T: FormatTime(at), Host: host, Event: kind}
}
