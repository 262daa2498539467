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
// format of docs/trace-format.md. Field order is fixed, so equal traces are equal
// byte for byte.
func WriteJSONL(w io.Writer, events []Event) error {
	jw := NewJSONLWriter(w)
	for _, e := range events {
		if err := jw.Event(e); err != nil {
			return err
		}
	}
	return jw.Close()
}

// JSONLWriter writes a trace event by event, as a run goes (Builtin.Events).
type JSONLWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

// NewJSONLWriter returns a writer of the trace format to w.
func NewJSONLWriter(w io.Writer) *JSONLWriter {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONLWriter{bw: bw, enc: enc}
}

// Event writes one event.
func (j *JSONLWriter) Event(e Event) error { return j.enc.Encode(e) }

// Close flushes what is buffered; it does not close the underlying writer.
func (j *JSONLWriter) Close() error { return j.bw.Flush() }

// GapThreshold is the shortest quiet stretch the timeline marks with a line
// of its own, so that the idle time before a probe stands out.
const GapThreshold = time.Minute

// Timeline renders a trace for people: one line per event, each explained
// and labelled with the rule behind it (an RFC 9293 requirement, a
// Microsoft document's statement, what gVisor's source does), the long
// quiet stretches marked, and at the end every cited rule in full with
// where to read it.
type Timeline struct {
	// Profiles names each host's profile ("linux", "gvisor", "freebsd",
	// "lwip" or a Windows profile name, as kasim profiles lists them), so that its events cite the
	// rules that host follows. Hosts not named cite the standards only.
	Profiles map[string]string
}

// Write writes the timeline of events.
func (t Timeline) Write(w io.Writer, events []Event) error {
	width := 0
	for _, e := range events {
		width = max(width, len(e.Head().Host))
	}
	tw := t.newWriter(w, width)
	for _, e := range events {
		if err := tw.Event(e); err != nil {
			return err
		}
	}
	return tw.Close()
}

// NewWriter returns a writer of the timeline event by event, as a run goes
// (Builtin.Events); hosts are the names its events will carry, which set
// the width of the host column. Close writes the rules cited.
func (t Timeline) NewWriter(w io.Writer, hosts []string) *TimelineWriter {
	width := 0
	for _, h := range hosts {
		width = max(width, len(h))
	}
	return t.newWriter(w, width)
}

// newWriter returns a writer whose host column is at least width wide.
func (t Timeline) newWriter(w io.Writer, width int) *TimelineWriter {
	return &TimelineWriter{bw: bufio.NewWriter(w), width: max(width, 4), cite: newCiter(t.Profiles), ctx: newDescribeContext()}
}

// TimelineWriter writes a timeline one event at a time: what it keeps
// grows with the connections and the rules cited, not with the run's
// length.
type TimelineWriter struct {
	bw     *bufio.Writer
	width  int
	cite   *citer
	ctx    *describeContext
	legend ruleLegend
	prev   time.Duration
	n      int
}

// Event writes e's line, after a line marking the quiet stretch before it
// if that was long.
func (t *TimelineWriter) Event(e Event) error {
	h := e.Head()
	at := time.Duration(h.TNS)
	if t.n > 0 && at-t.prev >= GapThreshold {
		fmt.Fprintf(t.bw, "%12s  %*s  ... %v pass with nothing on the wire ...\n", "", t.width, "", (at - t.prev).Round(time.Millisecond))
	}
	t.prev = at
	t.n++
	text, why := t.ctx.describe(e)
	rules := t.cite.cite(e)
	t.legend.add(rules)
	if len(rules) > 0 {
		labels := make([]string, len(rules))
		for i, r := range rules {
			labels[i] = r.Label
		}
		why = strings.TrimSpace(why + "  [" + strings.Join(labels, "; ") + "]")
	}
	line := fmt.Sprintf("%s  %-*s  %s", h.T, t.width, h.Host, text)
	if why != "" {
		line = fmt.Sprintf("%-78s  %s", line, why)
	}
	_, err := fmt.Fprintln(t.bw, line)
	return err
}

// Close writes every rule cited, in full with where to read it, and
// flushes; it does not close the underlying writer.
func (t *TimelineWriter) Close() error {
	bw := t.bw
	if len(t.legend.rules) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "Rules cited above")
		for _, r := range t.legend.rules {
			fmt.Fprintf(bw, "  [%s]\n", r.Label)
			for _, l := range wrapWords(r.Says, 94) {
				fmt.Fprintf(bw, "      %s\n", l)
			}
			fmt.Fprintf(bw, "      -- %s\n", r.Source)
		}
	}
	return bw.Flush()
}

// wrapWords breaks text into lines of at most width bytes at spaces (a
// longer word gets a line of its own).
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// describeContext remembers what the explanations need from earlier
// events: when each connection last had a keep-alive option set, which
// restarts its idle timer.
type describeContext struct {
	lastSet   map[string]int64 // host/conn -> time of the last keep-alive option set
	lastProbe map[string]int64 // host/conn -> time of its last probe
}

func newDescribeContext() *describeContext {
	return &describeContext{lastSet: map[string]int64{}, lastProbe: map[string]int64{}}
}

// late says how much later than due a keep-alive decision came, when its
// host's timers have slack (a Linux timer wheel); "" when on time.
func (c *describeContext) late(e *KeepAliveEvent) string {
	key := connKey(e.Host, e.Conn)
	due := e.LastRecvNS + e.IdleNS
	if prev, ok := c.lastProbe[key]; ok && e.Unanswered > 0 {
		due = prev + e.IntervalNS
	}
	if e.Action == ActionProbe {
		c.lastProbe[key] = e.TNS
	}
	if e.Action == ActionRearm || e.TNS <= due || e.TNS-due >= e.IdleNS {
		return ""
	}
	return fmt.Sprintf(" (+%v of timer slack)", time.Duration(e.TNS-due))
}

func (c *describeContext) describe(e Event) (text, why string) {
	switch e := e.(type) {
	case *SockOptEvent:
		if e.Error == "" && (e.Call == "setsockopt" || e.Call == "WSAIoctl") && isKeepAliveOpt(e.Opt) {
			c.lastSet[connKey(e.Host, e.Conn)] = e.TNS
		}
	case *KeepAliveEvent:
		late := c.late(e)
		set, wasSet := c.lastSet[connKey(e.Host, e.Conn)]
		first := wasSet && e.Action == ActionProbe && e.Probe == 1
		idle := time.Duration(e.IdleNS)
		if first && set > e.LastRecvNS+e.IdleNS && e.TNS-set < e.IdleNS {
			// A host that counts a new idle time from the last receive
			// (Linux) probes at once when it is already past.
			text, _ = describe(e)
			return text, fmt.Sprintf("nothing received since %s: the idle time (%v) was already up when the option was set at %s, so the probe goes at once",
				FormatTime(time.Duration(e.LastRecvNS)), idle, FormatTime(time.Duration(set)))
		}
		if late != "" && e.Action != ActionRearm {
			defer func() { why += late }()
		}
		if first && set > e.LastRecvNS && e.TNS-set >= e.IdleNS {
			text, _ = describe(e)
			return text, fmt.Sprintf("the idle time (%v) is up, counted from the option set at %s (setting one restarts it); nothing received since %s",
				idle, FormatTime(time.Duration(set)), FormatTime(time.Duration(e.LastRecvNS)))
		}
	}
	return describe(e)
}

// describeGiveUp says which rule gave a connection up, and from when it
// counted.
func describeGiveUp(e *GiveUpEvent) (text, why string) {
	if e.WindowProbes > 0 {
		return describeWindowGiveUp(e)
	}
	if e.HalfOpen != "" {
		return fmt.Sprintf("SYN-ACK retransmission gives up: the half-open connection from %s is dropped", e.HalfOpen),
			fmt.Sprintf("%s unanswered, and the timeout after the last has passed; what comes for it later is reset", plural(e.Retransmissions, "retransmission"))
	}
	what, unanswered, from := e.Rule, "data unacknowledged", "the first retransmission"
	switch e.Rule {
	case "user-timeout":
		what = "TCP_USER_TIMEOUT"
	case "syn-retries":
		what, unanswered, from = "SYN retransmission", "the SYN unanswered", "the first SYN"
	}
	text = fmt.Sprintf("sock%d %s gives up: %s", e.Conn, what, unanswered)
	if e.LimitNS == 0 {
		return text, "the retransmission limit is reached"
	}
	since := time.Duration(e.TNS - e.FirstRetransmissionNS)
	why = fmt.Sprintf("the limit (%v since %s, %s) has passed at this timeout: %v (%s by the timer)",
		time.Duration(e.LimitNS), from, FormatTime(time.Duration(e.FirstRetransmissionNS)), since, plural(e.Retransmissions, "retransmission"))
	if e.Rule == "syn-retries" && since < time.Duration(e.LimitNS) {
		why = fmt.Sprintf("%s by the timer, the limit on their number (%v since %s, %s, is the limit in time)",
			plural(e.Retransmissions, "retransmission"), time.Duration(e.LimitNS), from, FormatTime(time.Duration(e.FirstRetransmissionNS)))
	}
	return text, why
}

// describeWindowGiveUp says which rule gave up a connection that was
// probing its peer's closed window.
func describeWindowGiveUp(e *GiveUpEvent) (text, why string) {
	text = fmt.Sprintf("sock%d window probes give up: the peer's window stays closed", e.Conn)
	if e.Rule == "user-timeout" {
		text = fmt.Sprintf("sock%d TCP_USER_TIMEOUT gives up: the peer's window stays closed", e.Conn)
	}
	switch {
	case e.Rule == "user-timeout" && e.LimitNS > 0:
		why = fmt.Sprintf("the user timeout (%v) has passed since the first window probe, %s, answered or not (%s)",
			time.Duration(e.LimitNS), FormatTime(time.Duration(e.FirstWindowProbeNS)), plural(e.WindowProbes, "probe"))
	case e.Rule == "user-timeout":
		why = fmt.Sprintf("the user timeout has passed since the window closed (%s)", plural(e.WindowProbes, "probe"))
	default:
		why = fmt.Sprintf("the limit on unanswered window probes is reached (%s in all)", plural(e.WindowProbes, "probe"))
	}
	return text, why
}

func isKeepAliveOpt(opt string) bool {
	switch opt {
	case "SO_KEEPALIVE", "SIO_KEEPALIVE_VALS", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_KEEPALIVE", "TCP_USER_TIMEOUT":
		return true
	}
	return false
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
			if e.Probe > e.Count {
				text = fmt.Sprintf("sock%d keep-alive probe %d (TCP_USER_TIMEOUT, not the count of %d, decides)", e.Conn, e.Probe, e.Count)
			}
			if e.Probe == 1 {
				why = fmt.Sprintf("nothing received since %s: the idle time (%v) is up", last, idle)
			} else {
				why = fmt.Sprintf("probe %d unanswered for the interval (%v)", e.Probe-1, intvl)
			}
		case ActionRearm:
			text = fmt.Sprintf("sock%d keep-alive answered", e.Conn)
			why = fmt.Sprintf("a segment arrived: %s forgotten, next probe after %v idle", plural(e.Unanswered, "unanswered probe"), idle)
		case ActionAbort:
			text = fmt.Sprintf("sock%d keep-alive gives up: %s unanswered", e.Conn, plural(e.Unanswered, "probe"))
			ut := time.Duration(e.UserTimeoutNS)
			if e.Count == 0 {
				text = fmt.Sprintf("sock%d keep-alive gives up without a probe", e.Conn)
				why = fmt.Sprintf("last received %s + idle %v; a probe count of 0 sends none", last, idle)
			} else if e.Unanswered < e.Count || (ut > 0 && time.Duration(e.TNS-e.LastRecvNS) >= ut) {
				setting := "TCP_USER_TIMEOUT"
				if ut > 0 {
					setting += " " + ut.String()
				}
				why = fmt.Sprintf("the user timeout (%s) has run out since %s, with a probe unanswered", setting, last)
				if e.Unanswered < e.Count {
					why = fmt.Sprintf("before the count (%d): %s", e.Count, why)
				}
			} else {
				why = fmt.Sprintf("last received %s + idle %v + %d x interval %v", last, idle, e.Unanswered, intvl)
			}
		}
		return text, why
	case *AppErrorEvent:
		return fmt.Sprintf("sock%d %s() fails: %s (%d)", e.Conn, e.Op, e.Error, e.Code), "the application learns the connection is gone"
	case *GiveUpEvent:
		return describeGiveUp(e)
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
	ClassWindowProbe:    "window probe: the peer's window is closed and data waits",
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
		idle := time.Duration(*e.IdleNS)
		text := fmt.Sprintf("network: a middlebox (NAT, firewall) between %s and %s forgets TCP flows idle longer than %v", e.Host, e.Peer, idle)
		if idle < natMinIdle {
			text += fmt.Sprintf(", under the %v RFC 5382 asks of NATs", natMinIdle)
		}
		return text
	}
	return "network: " + e.Action
}

// natMinIdle is the shortest established-connection idle timeout RFC 5382
// REQ-5 allows a NAT.
const natMinIdle = 2*time.Hour + 4*time.Minute

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
	completion := strings.HasSuffix(e.Call, " completes")
	if completion {
		// The completion of an overlapped call has no arguments of its own.
		text = fmt.Sprintf("%s = %s", e.Call, result)
	}
	if e.Conn != 0 {
		text = fmt.Sprintf("sock%d %s", e.Conn, text)
	}
	if e.Error != "" {
		text += fmt.Sprintf(", %s (%d)", e.Error, e.Code)
	}
	switch {
	case e.Opt == "SO_KEEPALIVE" && e.Result == 0 && e.Call == "setsockopt":
		why = "keep-alive is off unless the application turns it on"
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
	case completion:
		why = "the overlapped call started earlier finishes"
	}
	return text, why
}

// plural writes n thing or n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
