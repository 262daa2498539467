package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteJSONL writes one JSON object per event, one per line: the trace
// format of the README. Field order is fixed, so equal traces are equal
// byte for byte.
func WriteJSONL(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// GapThreshold is the shortest quiet stretch the timeline marks with a line
// of its own, so that the idle time before a probe stands out.
const GapThreshold = time.Minute

// WriteTimeline writes the trace as a timeline for people: one line per
// event, each explained, and the long quiet stretches marked.
func WriteTimeline(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	width := 4
	for _, e := range events {
		width = max(width, len(e.Head().Host))
	}
	var prev time.Duration
	for i, e := range events {
		h := e.Head()
		at := time.Duration(h.TNS)
		if i > 0 && at-prev >= GapThreshold {
			fmt.Fprintf(bw, "%12s  %*s  ... %v pass with nothing on the wire ...\n", "", width, "", (at - prev).Round(time.Millisecond))
		}
		prev = at
		text, why := describe(e)
		line := fmt.Sprintf("%s  %-*s  %s", h.T, width, h.Host, text)
		if why != "" {
			line = fmt.Sprintf("%-78s  %s", line, why)
		}
		fmt.Fprintln(bw, line)
	}
	return bw.Flush()
}

// describe returns what an event says and, separately, why it happened.
func describe(e Event) (text, why string) {
	switch e := e.(type) {
	case *SegmentEvent:
		peer := e.Dst
		if e.To != "" {
			// "server:80" reads better than an address; keep the port.
			if i := strings.LastIndexByte(e.Dst, ':'); i >= 0 {
				peer = e.To + e.Dst[i:]
			}
		}
		text = fmt.Sprintf("-> %-13s %-3s seq=%d ack=%d len=%d win=%d", peer, e.Flags, e.Seq, e.Ack, e.Len, e.Win)
		why = classWhy[e.Class]
		if e.Dropped {
			why += " -- DROPPED: " + e.DropReason
		}
		return text, why
	case *SockOptEvent:
		return describeCall(e)
	case *StateEvent:
		text = fmt.Sprintf("sock%d %s -> %s", e.Conn, e.From, e.To)
		return text, stateWhy[e.To]
	case *KeepAliveEvent:
		idle, intvl := time.Duration(e.IdleNS), time.Duration(e.IntervalNS)
		last := FormatTime(time.Duration(e.LastRecvNS))
		switch e.Action {
		case ActionProbe:
			text = fmt.Sprintf("sock%d keep-alive probe %d of %d", e.Conn, e.Probe, e.Count)
			if e.Probe == 1 {
				why = fmt.Sprintf("nothing received since %s: the idle time (%v) is up", last, idle)
			} else {
				why = fmt.Sprintf("probe %d unanswered for the interval (%v)", e.Probe-1, intvl)
			}
		case ActionRearm:
			text = fmt.Sprintf("sock%d keep-alive answered", e.Conn)
			why = fmt.Sprintf("a segment arrived: %d unanswered probe(s) forgotten, next probe after %v idle", e.Unanswered, idle)
		case ActionAbort:
			text = fmt.Sprintf("sock%d keep-alive gives up: %d probes unanswered", e.Conn, e.Unanswered)
			why = fmt.Sprintf("last received %s + idle %v + %d x interval %v", last, idle, e.Unanswered, intvl)
		}
		return text, why
	case *AppErrorEvent:
		return fmt.Sprintf("sock%d %s() fails: %s (%d)", e.Conn, e.Op, e.Error, e.Code), "the application learns the connection is gone"
	case *LinkEvent:
		return linkText(e), ""
	case *NoteEvent:
		return "note: " + e.Text, ""
	}
	return fmt.Sprintf("%T", e), ""
}

var classWhy = map[string]string{
	ClassSYN:            "SYN: opens the connection",
	ClassSYNACK:         "SYN-ACK: the server accepts",
	ClassData:           "data",
	ClassACK:            "ACK",
	ClassKeepAliveProbe: "keep-alive probe: seq = SND.NXT-1, so a live peer must answer",
	ClassKeepAliveACK:   "keep-alive ACK: the peer is alive",
	ClassRetransmission: "retransmission",
	ClassFIN:            "FIN: no more data from this side",
	ClassRST:            "RST: reset",
}

var stateWhy = map[string]string{
	"ESTABLISHED": "handshake complete",
	"TIME-WAIT":   "waits 2 x MSL before forgetting the connection",
}

func linkText(e *LinkEvent) string {
	switch e.Action {
	case "silence":
		what := map[string]string{"in": "receives nothing", "out": "sends nothing", "both": "neither sends nor receives: a dead peer"}[e.Direction]
		return fmt.Sprintf("network: %s falls silent, %s", e.Host, what)
	case "heal":
		if e.Peer != "" {
			return fmt.Sprintf("network: %s and %s reach each other again", e.Host, e.Peer)
		}
		return fmt.Sprintf("network: %s is heard again", e.Host)
	case "partition":
		return fmt.Sprintf("network: %s and %s are cut off from each other", e.Host, e.Peer)
	case "loss":
		return fmt.Sprintf("network: %s -> %s now loses %.3g%% of packets", e.Host, e.Peer, *e.Loss*100)
	case "latency":
		return fmt.Sprintf("network: %s <-> %s one-way latency now %v", e.Host, e.Peer, time.Duration(*e.LatencyNS))
	case "middlebox":
		if *e.IdleNS == 0 {
			return fmt.Sprintf("network: no middlebox between %s and %s", e.Host, e.Peer)
		}
		return fmt.Sprintf("network: a middlebox (NAT, firewall) between %s and %s forgets TCP flows idle longer than %v", e.Host, e.Peer, time.Duration(*e.IdleNS))
	}
	return "network: " + e.Action
}

// describeCall renders a socket call as C reads: name(arguments) = result.
func describeCall(e *SockOptEvent) (text, why string) {
	var args []string
	for _, a := range []string{e.Level, e.Opt} {
		if a != "" {
			args = append(args, a)
		}
	}
	if e.Value != nil {
		args = append(args, fmt.Sprint(e.Value))
	}
	result := fmt.Sprint(e.Result)
	winsock := strings.HasPrefix(e.Error, "WSA")
	if e.Result == -1 && winsock {
		result = "SOCKET_ERROR"
	}
	text = fmt.Sprintf("%s(%s) = %s", e.Call, strings.Join(args, ", "), result)
	if e.Conn != 0 {
		text = fmt.Sprintf("sock%d %s", e.Conn, text)
	}
	if e.Error != "" {
		text += fmt.Sprintf(", %s (%d)", e.Error, e.Code)
	}
	switch {
	case e.Opt == "SO_KEEPALIVE" && e.Result == 0 && e.Call == "setsockopt":
		why = "keep-alive is off unless the application turns it on (RFC 1122 4.2.3.6)"
	case e.Error == "WSA_IO_PENDING":
		why = "in progress: completes later"
	case e.Error == "WSAEWOULDBLOCK" && e.Call == "connect":
		why = "non-blocking connect: in progress"
	case e.Error == "WSAENETRESET":
		why = "the operation in progress when keep-alive gave up"
	case e.Error == "WSAECONNRESET" && winsock:
		why = "every later call on the connection"
	case e.Opt == "SIO_KEEPALIVE_VALS" && e.Result == 0:
		why = "per-connection idle and interval, in milliseconds (write-only)"
	}
	return text, why
}
