package profile

import "time"

// A Rule is a statement an event follows: a Microsoft document's
// statement, or what a stack's source does. The timeline prints a rule's
// label on each event it explains, and the whole rule once, at the end.
// (The requirements of RFC 9293 that every stack shares are the timeline's
// own, in package sim.)
type Rule struct {
	Label  string // on the event's line: "Linux tcp_keepalive_timer"
	Says   string // the statement, in one or two sentences
	Source string // where to read it
}

// Citations are the rules a system's events follow, by kind of event. A
// nil list cites only the RFC's rule for the event.
type Citations struct {
	// Probe: a keep-alive probe going out, after the RFC's idle or
	// repeated-probe rule.
	Probe []Rule
	// Rearm: an answered probe, after which the idle time starts again.
	Rearm []Rule
	// Abort: what keep-alive's abort causes (the connection closing, the
	// application's error, the system's own RST).
	Abort []Rule
	// AbortRST: an RST sent when keep-alive gave up; nil when the system
	// sends none of its own (an RST then answers a segment for no
	// connection).
	AbortRST []Rule
	// ProbeOctet: a probe carrying one octet, after RFC 9293 MAY-6.
	ProbeOctet []Rule
	// WindowProbe: a probe of the peer's closed window, after RFC 1122
	// 4.2.2.17.
	WindowProbe []Rule
	// Retransmission: a connection that retransmission gave up, after RFC
	// 9293 MUST-20.
	Retransmission []Rule
	// RetransmissionUserTimeout: a connection that TCP_USER_TIMEOUT gave
	// up while data was unacknowledged.
	RetransmissionUserTimeout []Rule
	// SynRetries: a connect that SYN retransmission gave up, after RFC
	// 9293 MUST-23.
	SynRetries []Rule
	// SynAckRetries: a half-open connection its server gave up, after
	// RFC 9293 MUST-23.
	SynAckRetries []Rule
	// Options: the socket options' calls and errors, on a POSIX host.
	Options Rule
	// UserTimeout: TCP_USER_TIMEOUT set.
	UserTimeout []Rule
	// OptionRestart: a keep-alive option set on a synchronized connection,
	// where that restarts the idle time (gVisor's own).
	OptionRestart []Rule
	// Connect: a non-blocking connect in progress.
	Connect Rule

	// abort chooses the rules of the keep-alive abort itself.
	abort func(count, unanswered int, userTimeout time.Duration) []Rule
}

// AbortEvent returns the rules behind keep-alive giving up after
// unanswered of count probes, with a user timeout set or not (zero); nil
// for a host without a profile.
func (c Citations) AbortEvent(count, unanswered int, userTimeout time.Duration) []Rule {
	if c.abort == nil {
		return nil
	}
	return c.abort(count, unanswered, userTimeout)
}

// always returns an abort chooser that cites rs whatever happened.
func always(rs ...Rule) func(int, int, time.Duration) []Rule {
	return func(int, int, time.Duration) []Rule { return rs }
}

// Unknown are the citations of a host kasim has no profile for: the RFC's
// rules, and Linux's for socket calls.
var Unknown = Citations{Options: linuxOpts, Connect: linuxConnect}

// Where the POSIX systems' rules come from.
const (
	gvConnect       = "gVisor pkg/tcpip/transport/tcp/connect.go, (*Endpoint).keepaliveTimerExpired"
	gvEndpoint      = "gVisor pkg/tcpip/transport/tcp/endpoint.go: setting the keep-alive options calls resetKeepaliveTimer(true)"
	linuxOptsSource = "Linux man 7 tcp and net/ipv4/tcp.c do_tcp_setsockopt (kasim's POSIX calls use Linux's numbers, ranges and errnos)"
)

// Rules Linux and gVisor hosts share: their calls are Linux's.
var (
	linuxOpts = Rule{"Linux tcp(7) options",
		"SO_KEEPALIVE switches keep-alive; TCP_KEEPIDLE and TCP_KEEPINTVL take 1 to 32767 seconds and TCP_KEEPCNT 1 to 127, anything else EINVAL; TCP_USER_TIMEOUT takes milliseconds, 0 for the system default.",
		linuxOptsSource}
	linuxConnect = Rule{"Linux connect(2)",
		"A non-blocking connect returns -1 with EINPROGRESS and completes in the background; the socket becomes writable when it does.",
		"Linux man 2 connect"}
	posixConnect = Rule{"POSIX connect()",
		"A connect on a non-blocking socket that cannot complete at once returns -1 with EINPROGRESS and completes in the background.",
		"POSIX.1-2017 connect(); lwIP src/api/sockets.c lwip_connect; FreeBSD kern/uipc_syscalls.c kern_connectat"}
)
