package sim

import (
	"strconv"
	"strings"
	"time"

	"kasim/profile"
	"kasim/stack"
)

// A rule is a statement an event follows. The requirements of RFC 9293
// (which updates RFC 1122 section 4.2.3.6 and carries its keep-alive
// requirements with labels) are here; what a system does (a Microsoft
// document's statement, or what a stack's source does) comes from the
// host's profile (profile.Citations). The timeline prints a rule's label
// on each event it explains, and the whole rule once, at the end.
type rule = profile.Rule

// Winsock's rules, which every Windows version shares.
var ws = profile.WinsockRules

const rfc9293 = "RFC 9293 (STD 7)"

var (
	ruleOpen = rule{Label: "RFC 9293 3.10.1",
		Says:   "OPEN: a passive OPEN waits in LISTEN; an active OPEN sends a SYN and enters SYN-SENT.",
		Source: rfc9293 + " section 3.10.1"}
	ruleHandshake = rule{Label: "RFC 9293 3.5",
		Says:   "A connection opens with the three-way handshake: SYN, SYN-ACK, ACK; each side is ESTABLISHED once its SYN is acknowledged.",
		Source: rfc9293 + " section 3.5"}
	ruleSend = rule{Label: "RFC 9293 3.10.2",
		Says:   "SEND: the data goes out in segments as the send window allows.",
		Source: rfc9293 + " section 3.10.2"}
	ruleReceive = rule{Label: "RFC 9293 3.10.3",
		Says:   "RECEIVE: the call completes when data (or the end of the stream, or an error) arrives.",
		Source: rfc9293 + " section 3.10.3"}
	ruleAck = rule{Label: "RFC 9293 3.10.7.4",
		Says:   "An acceptable segment that occupies sequence space is acknowledged: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.",
		Source: rfc9293 + " section 3.10.7.4, SEGMENT ARRIVES in a synchronized state"}
	ruleUnacceptableAck = rule{Label: "RFC 9293 3.10.7.4 (unacceptable)",
		Says:   "A segment whose sequence number is not acceptable (a probe's SND.NXT-1 is already acknowledged) is answered with an ACK <SEQ=SND.NXT><ACK=RCV.NXT>: that is how a live peer answers a keep-alive probe.",
		Source: rfc9293 + " section 3.10.7.4, first check the sequence number"}
	ruleRSTArrives = rule{Label: "RFC 9293 3.10.7.4 (RST)",
		Says:   "An acceptable RST in a synchronized state closes the connection: outstanding RECEIVEs and SENDs get \"reset\" responses.",
		Source: rfc9293 + " section 3.10.7.4, second check the RST bit"}
	ruleResetGeneration = rule{Label: "RFC 9293 3.5.2",
		Says:   "A segment for a connection that does not exist is answered with a reset (unless it is a reset itself).",
		Source: rfc9293 + " section 3.5.2, Reset Generation"}
	ruleClose = rule{Label: "RFC 9293 3.6",
		Says:   "Closing: each side sends a FIN when it has no more to send; the side that closes first waits in TIME-WAIT for 2 MSL.",
		Source: rfc9293 + " sections 3.6 and 3.10.4 (CLOSE)"}
	ruleShutdownRead = rule{Label: "shutdown(2) SHUT_RD",
		Says:   "Shutting a socket down for reading sends nothing: TCP has no way to say it (RFC 9293 has a CLOSE for sending only); later receives return end of stream.",
		Source: "POSIX shutdown(); Linux man 2 shutdown; Microsoft Learn, \"shutdown function (winsock.h)\""}
	ruleWinShutdownReceive = rule{Label: "Windows shutdown SD_RECEIVE",
		Says:   "Windows: for a TCP socket shut down for receiving, if data is still queued or arrives later, the connection is reset, since the data cannot be delivered; later receives fail with WSAESHUTDOWN. (kasim's choice: the reset is an RST+ACK at SND.NXT, and the data is not acknowledged.)",
		Source: "Microsoft Learn, \"shutdown function (winsock.h)\""}
	ruleRTO = rule{Label: "RFC 9293 MUST-18",
		Says:   "Unacknowledged data is retransmitted when the retransmission timeout expires; the RTO is computed per RFC 6298 and backs off exponentially (MUST-19).",
		Source: rfc9293 + " sections 3.8.1 and 3.8.2"}
	ruleR2 = rule{Label: "RFC 9293 MUST-20",
		Says:   "Excessive retransmission of the same segment: at threshold R2 the connection is closed and the application told.",
		Source: rfc9293 + " section 3.8.3"}
	ruleR2Syn = rule{Label: "RFC 9293 MUST-23",
		Says:   "SYN retransmissions are handled as data retransmissions are, the application told when the attempt fails; R2 for a SYN must allow retransmission for at least 3 minutes (the application may give up sooner).",
		Source: rfc9293 + " section 3.8.3"}
	ruleOnOff = rule{Label: "RFC 9293 MUST-24/25",
		Says:   "If keep-alives are implemented (MAY-5), the application MUST be able to turn them on or off for each connection (MUST-24), and they MUST default to off (MUST-25).",
		Source: rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleIdle = rule{Label: "RFC 9293 MUST-26",
		Says:   "Keep-alive packets MUST only be sent when no sent data is outstanding and no data or acknowledgment has been received for the connection within an interval; the interval MUST be configurable (MUST-27) and default to no less than two hours (MUST-28).",
		Source: rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleNotOneProbe = rule{Label: "RFC 9293 MUST-29",
		Says:   "ACKs without data are not reliably transmitted, so failure to answer any single probe MUST NOT be taken as a dead connection: probes are repeated.",
		Source: rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleProbeEmpty = rule{Label: "RFC 9293 SHLD-12",
		Says:   "A keep-alive probe SHOULD carry no data; it has SEG.SEQ = SND.NXT-1, so a live peer must answer it.",
		Source: rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleProbeOctet = rule{Label: "RFC 9293 MAY-6",
		Says:   "An implementation MAY send a keep-alive probe with one garbage octet, for compatibility with peers that ignore empty ones; SEG.SEQ = SND.NXT-1.",
		Source: rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleWindowProbe = rule{Label: "RFC 1122 4.2.2.17",
		Says:   "Probing of zero (offered) windows MUST be supported: the first probe SHOULD go when the window has been zero for the retransmission timeout, and the interval between probes SHOULD grow exponentially; as long as the receiver acknowledges the probes, the sender MUST keep the connection open.",
		Source: "RFC 1122 section 4.2.2.17 (RFC 9293 section 3.8.6.1)"}
	ruleNAT = rule{Label: "RFC 5382 REQ-5",
		Says:   "A NAT that cannot tell whether a TCP connection's endpoints are alive MAY drop it when idle, but its established-connection idle timeout MUST NOT be less than 2 hours 4 minutes. kasim's middlebox drops every later segment of a flow it forgot.",
		Source: "RFC 5382 (BCP 142), NAT Behavioral Requirements for TCP, section 5"}

	ruleSocket = rule{Label: "socket()",
		Says:   "socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) makes an unconnected TCP endpoint with every option at its default: keep-alive off (RFC 9293 MUST-25).",
		Source: "POSIX socket(); Microsoft Learn, \"socket function\""}
)

// citer chooses the rules behind each event of a trace, in order: some
// depend on what came before (a reset after a keep-alive abort is the
// abort's; one out of nowhere answers a segment for no connection).
type citer struct {
	profiles map[string]*profile.Profile // by host; nil for a host without a known profile
	aborted  map[string]bool             // host/conn whose keep-alive gave up
	reset    map[string]bool             // hosts that received a reset
	synAck   map[string]bool             // flows "src>dst" whose SYN-ACK awaits the handshake's ACK
	states   map[string]string           // host/conn -> its TCP state
	// retransmitted: host/conn that has retransmitted; when neither
	// keep-alive nor a reset ended it, retransmission did.
	retransmitted map[string]bool
	// shutRead: host/conn shut down for receiving on Windows, whose reset
	// then follows Microsoft's rule.
	shutRead map[string]bool
	// gaveUp: host/conn -> the rule its give-up event named.
	gaveUp map[string]string
}

func newCiter(profiles map[string]string) *citer {
	c := &citer{profiles: map[string]*profile.Profile{}, aborted: map[string]bool{}, reset: map[string]bool{}, synAck: map[string]bool{}, states: map[string]string{}, retransmitted: map[string]bool{}, gaveUp: map[string]string{}, shutRead: map[string]bool{}}
	for host, name := range profiles {
		if p, err := profile.Lookup(name, nil, nil); err == nil {
			c.profiles[host] = &p
		}
	}
	return c
}

// cites returns the citations of host's system: profile.Unknown for a
// host without a known profile.
func (c *citer) cites(host string) profile.Citations {
	if p := c.profiles[host]; p != nil {
		return p.Cites
	}
	return profile.Unknown
}

// winsock reports whether host's applications call Winsock.
func (c *citer) winsock(host string) bool {
	p := c.profiles[host]
	return p != nil && p.API == profile.Winsock
}

func connKey(host string, conn int) string { return host + "/" + strconv.Itoa(conn) }

// cite returns the rules behind e. Link changes and notes have none: they
// are the scenario's doing, not a stack's.
func (c *citer) cite(e Event) []rule {
	switch e := e.(type) {
	case *SegmentEvent:
		return c.segment(e)
	case *SockOptEvent:
		return c.call(e)
	case *StateEvent:
		return c.state(e)
	case *KeepAliveEvent:
		return c.keepalive(e)
	case *AppErrorEvent:
		return c.appError(e)
	case *GiveUpEvent:
		c.retransmitted[connKey(e.Host, e.Conn)] = true
		c.gaveUp[connKey(e.Host, e.Conn)] = e.Rule
		if e.WindowProbes > 0 {
			c.gaveUp[connKey(e.Host, e.Conn)] = "window" // the window probes' rules, whichever limit
		}
		return c.giveUpRules(e.Host, c.gaveUp[connKey(e.Host, e.Conn)])
	case *LinkEvent:
		if e.Action == "middlebox" && e.IdleNS != nil && *e.IdleNS != 0 {
			return []rule{ruleNAT}
		}
	}
	return nil
}

func (c *citer) segment(e *SegmentEvent) []rule {
	cs := c.cites(e.Host)
	var rs []rule
	switch e.Class {
	case ClassSYN:
		rs = []rule{ruleHandshake}
	case ClassSYNACK:
		rs = []rule{ruleHandshake}
		c.synAck[e.Dst+">"+e.Src] = true
	case ClassACK:
		if flow := e.Src + ">" + e.Dst; c.synAck[flow] {
			delete(c.synAck, flow)
			rs = []rule{ruleHandshake}
		} else {
			rs = []rule{ruleAck}
		}
	case ClassData:
		rs = []rule{ruleSend}
	case ClassKeepAliveProbe:
		if e.Len == 0 {
			rs = []rule{ruleProbeEmpty}
		} else {
			rs = append([]rule{ruleProbeOctet}, cs.ProbeOctet...)
		}
	case ClassWindowProbe:
		rs = append([]rule{ruleWindowProbe}, cs.WindowProbe...)
	case ClassKeepAliveACK:
		rs = []rule{ruleUnacceptableAck}
	case ClassRetransmission:
		rs = []rule{ruleRTO}
		c.retransmitted[connKey(e.Host, e.Conn)] = true
	case ClassFIN:
		rs = []rule{ruleClose}
	case ClassRST:
		if c.shutRead[connKey(e.Host, e.Conn)] {
			rs = []rule{ruleWinShutdownReceive}
			break
		}
		if c.aborted[connKey(e.Host, e.Conn)] && cs.AbortRST != nil {
			rs = cs.AbortRST // the system's own RST when keep-alive gave up
		} else {
			rs = []rule{ruleResetGeneration}
		}
		if !e.Dropped && e.To != "" {
			c.reset[e.To] = true
		}
	}
	if e.Dropped && strings.HasPrefix(e.DropReason, "middlebox") {
		rs = append(rs, ruleNAT)
	}
	return rs
}

func (c *citer) keepalive(e *KeepAliveEvent) []rule {
	cs := c.cites(e.Host)
	switch e.Action {
	case ActionProbe:
		first := ruleIdle
		if e.Probe > 1 {
			first = ruleNotOneProbe
		}
		return append([]rule{first}, cs.Probe...)
	case ActionRearm:
		return append([]rule{ruleIdle}, cs.Rearm...)
	case ActionAbort:
		c.aborted[connKey(e.Host, e.Conn)] = true
		if rs := cs.AbortEvent(e.Count, e.Unanswered, time.Duration(e.UserTimeoutNS)); rs != nil {
			return rs
		}
		return []rule{ruleNotOneProbe}
	}
	return nil
}

func (c *citer) state(e *StateEvent) []rule {
	c.states[connKey(e.Host, e.Conn)] = e.To
	switch e.To {
	case "LISTEN", "SYN-SENT":
		return []rule{ruleOpen}
	case "SYN-RECEIVED", "ESTABLISHED":
		return []rule{ruleHandshake}
	case "CLOSED":
		if c.aborted[connKey(e.Host, e.Conn)] {
			return c.abortRules(e.Host)
		}
		if e.From == "TIME-WAIT" || e.From == "LAST-ACK" {
			break // the orderly end
		}
		if c.reset[e.Host] {
			return []rule{ruleRSTArrives}
		}
		if r, ok := c.gaveUp[connKey(e.Host, e.Conn)]; ok {
			return c.giveUpRules(e.Host, r)
		}
		if c.retransmitted[connKey(e.Host, e.Conn)] {
			return c.retransmissionRules(e.Host)
		}
	}
	return []rule{ruleClose}
}

// giveUpRules are what a host follows when the rule a give-up event
// names gives a connection up.
func (c *citer) giveUpRules(host, giveUp string) []rule {
	cs := c.cites(host)
	switch giveUp {
	case "window":
		return append([]rule{ruleWindowProbe}, cs.WindowProbe...)
	case "user-timeout":
		return append([]rule{ruleR2}, cs.RetransmissionUserTimeout...)
	case "syn-retries":
		return append([]rule{ruleR2Syn}, cs.SynRetries...)
	case "synack-retries":
		return append([]rule{ruleR2Syn}, cs.SynAckRetries...)
	}
	return c.retransmissionRules(host)
}

// retransmissionRules are what a host follows when retransmission gives a
// connection up.
func (c *citer) retransmissionRules(host string) []rule {
	return append([]rule{ruleR2}, c.cites(host).Retransmission...)
}

// abortRules are what a host's keep-alive abort follows, for the events it
// causes (the connection closing).
func (c *citer) abortRules(host string) []rule { return c.cites(host).Abort }

func (c *citer) appError(e *AppErrorEvent) []rule {
	aborted := c.aborted[connKey(e.Host, e.Conn)]
	switch e.Error {
	case "WSAENETRESET":
		return []rule{ws.NetReset}
	case "WSAECONNRESET":
		if aborted {
			return []rule{ws.ConnReset}
		}
		return []rule{ruleRSTArrives}
	case "ECONNRESET":
		return []rule{ruleRSTArrives}
	case "WSAECONNABORTED":
		if c.retransmitted[connKey(e.Host, e.Conn)] {
			return append([]rule{ws.ConnAborted}, c.retransmissionRules(e.Host)...)
		}
		return []rule{ws.ConnAborted}
	case "ECONNABORTED":
		if p := c.profiles[e.Host]; aborted && p != nil && p.Behaviour.AbortError == stack.AbortConnAborted {
			return c.abortRules(e.Host)
		}
	case "ETIMEDOUT":
		if aborted && c.profiles[e.Host] != nil {
			return c.abortRules(e.Host)
		}
		if r, ok := c.gaveUp[connKey(e.Host, e.Conn)]; ok && !aborted {
			return c.giveUpRules(e.Host, r)
		}
		if !aborted {
			return []rule{ruleR2}
		}
	}
	return []rule{ruleReceive}
}

func (c *citer) call(e *SockOptEvent) []rule {
	cs := c.cites(e.Host)
	win := strings.HasPrefix(e.Error, "WSA") || c.winsock(e.Host)
	switch e.Error {
	case "WSAENETRESET", "WSAECONNRESET", "WSAECONNABORTED", "ECONNRESET", "ETIMEDOUT", "ECONNABORTED":
		// A call failing because the connection is gone: the same rules as
		// the error the stack reports.
		return c.appError(&AppErrorEvent{Header: e.Header, Conn: e.Conn, Op: e.Call, Error: e.Error, Code: e.Code})
	}
	switch {
	case e.Error == "WSA_IO_PENDING" || strings.HasSuffix(e.Call, " completes"):
		return []rule{ws.Overlapped}
	case e.Opt == "SIO_KEEPALIVE_VALS":
		return []rule{ws.SIO}
	case e.Opt == "SO_KEEPALIVE" && e.Error == "WSAEINVAL" && e.Level == "SOL_SOCKET":
		return []rule{ws.Transitional}
	case win && (e.Opt == "TCP_KEEPCNT" || e.Opt == "TCP_KEEPIDLE" || e.Opt == "TCP_KEEPINTVL"):
		if p := c.profiles[e.Host]; e.Error == "WSAEINVAL" && p != nil && p.Winsock.RejectDuringConnect {
			return []rule{ws.KeepOpts, ws.Transitional}
		}
		return []rule{ws.KeepOpts}
	case win && (e.Call == "setsockopt" || e.Call == "getsockopt") && e.Error != "":
		return []rule{ws.OptErrors}
	case !win && e.Error != "" && (e.Call == "setsockopt" || e.Call == "getsockopt"):
		return []rule{cs.Options}
	case e.Opt == "SO_KEEPALIVE":
		rs := []rule{ruleOnOff}
		if c.restarts(e) {
			rs = append(rs, cs.OptionRestart...)
		}
		return rs
	case e.Opt == "TCP_USER_TIMEOUT":
		rs := []rule{cs.Options}
		if e.Call == "setsockopt" && e.Error == "" {
			rs = append(rs, cs.UserTimeout...)
		}
		return rs
	case strings.HasPrefix(e.Opt, "TCP_KEEP"):
		rs := []rule{cs.Options}
		if c.restarts(e) {
			rs = append(rs, cs.OptionRestart...)
		}
		return rs
	case e.Call == "connect" && e.Error == "EINPROGRESS":
		return []rule{cs.Connect}
	case e.Call == "connect" || e.Call == "ConnectEx":
		return []rule{ruleOpen}
	case e.Call == "socket":
		return []rule{ruleSocket}
	case e.Call == "WSAStartup":
		return []rule{ws.Startup}
	case e.Call == "accept":
		return []rule{ruleHandshake}
	case e.Call == "send":
		return []rule{ruleSend}
	case e.Call == "recv" || e.Call == "WSARecv":
		return []rule{ruleReceive}
	case e.Call == "close" || e.Call == "closesocket":
		return []rule{ruleClose}
	case e.Call == "shutdown" && e.Error == "":
		switch v, _ := e.Value.(string); v {
		case "SD_RECEIVE", "SD_BOTH":
			c.shutRead[connKey(e.Host, e.Conn)] = true
			if v == "SD_RECEIVE" {
				return []rule{ruleWinShutdownReceive}
			}
			return []rule{ruleClose, ruleWinShutdownReceive}
		case "SHUT_RD":
			return []rule{ruleShutdownRead}
		}
		return []rule{ruleClose}
	}
	return nil
}

// ruleLegend collects the rules a timeline cited, in first-cited order.
type ruleLegend struct {
	seen  map[string]bool
	rules []rule
}

func (l *ruleLegend) add(rs []rule) {
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	for _, r := range rs {
		if !l.seen[r.Label] {
			l.seen[r.Label] = true
			l.rules = append(l.rules, r)
		}
	}
}

// restarts says whether a call restarted a connection's idle timer, on a
// system where setting an option does (gVisor's own): a keep-alive option
// set without error while the connection is up.
func (c *citer) restarts(e *SockOptEvent) bool {
	if c.cites(e.Host).OptionRestart == nil || e.Call != "setsockopt" || e.Error != "" {
		return false
	}
	switch c.states[connKey(e.Host, e.Conn)] {
	case "ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-1", "FIN-WAIT-2":
		return true
	}
	return false
}
