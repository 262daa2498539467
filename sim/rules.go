package sim

import (
	"strconv"
	"strings"

	"kasim/winprofile"
)

// A rule is a statement an event follows: a requirement of RFC 9293 (which
// updates RFC 1122 section 4.2.3.6 and carries its keep-alive requirements
// with labels), a Microsoft document's statement, or what a stack's source
// does. The timeline prints a rule's label on each event it explains, and
// the whole rule once, at the end.
type rule struct {
	label  string // on the event's line: "RFC 9293 MUST-26"
	says   string // the statement, in one or two sentences
	source string // where to read it
}

const (
	rfc9293    = "RFC 9293 (STD 7)"
	msKeep     = "Microsoft Learn, \"SO_KEEPALIVE socket option\" (learn.microsoft.com/windows/win32/winsock/so-keepalive)"
	msSIO      = "Microsoft Learn, \"SIO_KEEPALIVE_VALS control code\" (learn.microsoft.com/windows/win32/winsock/sio-keepalive-vals)"
	msTCPOpts  = "Microsoft Learn, \"IPPROTO_TCP socket options\" (learn.microsoft.com/windows/win32/winsock/ipproto-tcp-socket-options)"
	msErrors   = "Microsoft Learn, \"Windows Sockets Error Codes\" (learn.microsoft.com/windows/win32/winsock/windows-sockets-error-codes-2)"
	msOverlap  = "Microsoft Learn, \"WSARecv function\" and \"ConnectEx\" (overlapped I/O)"
	gvConnect  = "gVisor pkg/tcpip/transport/tcp/connect.go, (*Endpoint).keepaliveTimerExpired"
	gvEndpoint = "gVisor pkg/tcpip/transport/tcp/endpoint.go: setting the keep-alive options calls resetKeepaliveTimer(true)"
	linuxOpts  = "Linux man 7 tcp and net/ipv4/tcp.c do_tcp_setsockopt (kasim's POSIX calls use Linux's numbers, ranges and errnos)"
	bsdTimer   = "FreeBSD sys/netinet/tcp_timer.c tcp_timer_keep (always_keepalive); tcp_timer.h TP_KEEPIDLE, TP_MAXIDLE, TCPTV_KEEPCNT"
	bsdOpts    = "FreeBSD sys/netinet/tcp_usrreq.c tcp_default_ctloutput; sys/netinet/ip_output.c ip_ctloutput; sys/netinet/tcp.h"
	lwipTimer  = "lwIP src/core/tcp.c tcp_slowtmr; src/core/tcp_out.c tcp_keepalive; src/core/tcp_in.c tcp_process (pcb->tmr)"
	lwipOpts   = "lwIP src/api/sockets.c lwip_setsockopt_impl; src/include/lwip/sockets.h"
)

var (
	ruleOpen = rule{"RFC 9293 3.10.1",
		"OPEN: a passive OPEN waits in LISTEN; an active OPEN sends a SYN and enters SYN-SENT.",
		rfc9293 + " section 3.10.1"}
	ruleHandshake = rule{"RFC 9293 3.5",
		"A connection opens with the three-way handshake: SYN, SYN-ACK, ACK; each side is ESTABLISHED once its SYN is acknowledged.",
		rfc9293 + " section 3.5"}
	ruleSend = rule{"RFC 9293 3.10.2",
		"SEND: the data goes out in segments as the send window allows.",
		rfc9293 + " section 3.10.2"}
	ruleReceive = rule{"RFC 9293 3.10.3",
		"RECEIVE: the call completes when data (or the end of the stream, or an error) arrives.",
		rfc9293 + " section 3.10.3"}
	ruleAck = rule{"RFC 9293 3.10.7.4",
		"An acceptable segment that occupies sequence space is acknowledged: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.",
		rfc9293 + " section 3.10.7.4, SEGMENT ARRIVES in a synchronized state"}
	ruleUnacceptableAck = rule{"RFC 9293 3.10.7.4 (unacceptable)",
		"A segment whose sequence number is not acceptable (a probe's SND.NXT-1 is already acknowledged) is answered with an ACK <SEQ=SND.NXT><ACK=RCV.NXT>: that is how a live peer answers a keep-alive probe.",
		rfc9293 + " section 3.10.7.4, first check the sequence number"}
	ruleRSTArrives = rule{"RFC 9293 3.10.7.4 (RST)",
		"An acceptable RST in a synchronized state closes the connection: outstanding RECEIVEs and SENDs get \"reset\" responses.",
		rfc9293 + " section 3.10.7.4, second check the RST bit"}
	ruleResetGeneration = rule{"RFC 9293 3.5.2",
		"A segment for a connection that does not exist is answered with a reset (unless it is a reset itself).",
		rfc9293 + " section 3.5.2, Reset Generation"}
	ruleClose = rule{"RFC 9293 3.6",
		"Closing: each side sends a FIN when it has no more to send; the side that closes first waits in TIME-WAIT for 2 MSL.",
		rfc9293 + " sections 3.6 and 3.10.4 (CLOSE)"}
	ruleRTO = rule{"RFC 9293 MUST-18",
		"Unacknowledged data is retransmitted when the retransmission timeout expires; the RTO is computed per RFC 6298 and backs off exponentially (MUST-19).",
		rfc9293 + " sections 3.8.1 and 3.8.2"}
	ruleR2 = rule{"RFC 9293 MUST-20",
		"Excessive retransmission of the same segment: at threshold R2 the connection is closed and the application told.",
		rfc9293 + " section 3.8.3"}
	ruleOnOff = rule{"RFC 9293 MUST-24/25",
		"If keep-alives are implemented (MAY-5), the application MUST be able to turn them on or off for each connection (MUST-24), and they MUST default to off (MUST-25).",
		rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleIdle = rule{"RFC 9293 MUST-26",
		"Keep-alive packets MUST only be sent when no sent data is outstanding and no data or acknowledgment has been received for the connection within an interval; the interval MUST be configurable (MUST-27) and default to no less than two hours (MUST-28).",
		rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleNotOneProbe = rule{"RFC 9293 MUST-29",
		"ACKs without data are not reliably transmitted, so failure to answer any single probe MUST NOT be taken as a dead connection: probes are repeated.",
		rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleProbeEmpty = rule{"RFC 9293 SHLD-12",
		"A keep-alive probe SHOULD carry no data; it has SEG.SEQ = SND.NXT-1, so a live peer must answer it.",
		rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleProbeOctet = rule{"RFC 9293 MAY-6",
		"An implementation MAY send a keep-alive probe with one garbage octet, for compatibility with peers that ignore empty ones; SEG.SEQ = SND.NXT-1.",
		rfc9293 + " section 3.8.4 (RFC 1122 4.2.3.6)"}
	ruleNAT = rule{"RFC 5382 REQ-5",
		"A NAT that cannot tell whether a TCP connection's endpoints are alive MAY drop it when idle, but its established-connection idle timeout MUST NOT be less than 2 hours 4 minutes. kasim's middlebox drops every later segment of a flow it forgot.",
		"RFC 5382 (BCP 142), NAT Behavioral Requirements for TCP, section 5"}

	ruleWinTimes = rule{"MS SO_KEEPALIVE: times",
		"Windows: the keep-alive timeout is 2 hours and the interval 1 second unless the registry (KeepAliveTime, KeepAliveInterval, in ms) or the connection's SIO_KEEPALIVE_VALS says otherwise.",
		msKeep}
	ruleWinTen = rule{"MS SO_KEEPALIVE: 10 probes",
		"Windows Vista and later send 10 keep-alive probes and the count cannot be changed (until TCP_KEEPCNT, Windows 10 1703).",
		msKeep}
	ruleWinLegacyCount = rule{"MS SO_KEEPALIVE: registry count",
		"Windows 2000, XP and Server 2003 send 5 probes by default; the count is the larger of the registry values TcpMaxDataRetransmissions and PPTPTcpMaxDataRetransmissions, and 0 sends none.",
		msKeep}
	ruleWinTransitional = rule{"MS SO_KEEPALIVE: well-known state",
		"Windows Vista and later: SO_KEEPALIVE can be set only in a well-known state (before connect or after it completed), not while a connect is in progress: WSAEINVAL. Windows 2000, XP and 2003 accept it then.",
		msKeep}
	ruleWinOptErrors = rule{"MS SO_KEEPALIVE: errors",
		"setsockopt and getsockopt return SOCKET_ERROR and WSAGetLastError names the reason: WSANOTINITIALISED without WSAStartup, WSAEFAULT for optlen < sizeof(DWORD), WSAEINVAL for an unknown level, WSAENOPROTOOPT for an option the protocol lacks (a datagram socket), WSAENOTSOCK for a handle that is not a socket.",
		msKeep}
	ruleWinSIO = rule{"MS SIO_KEEPALIVE_VALS",
		"WSAIoctl(SIO_KEEPALIVE_VALS) takes struct tcp_keepalive {onoff, keepalivetime, keepaliveinterval}, in milliseconds, for one connection: it switches keep-alive and sets both times at once, and cannot be read back.",
		msSIO}
	ruleWinKeepOpts = rule{"MS IPPROTO_TCP options",
		"TCP_KEEPCNT (Windows 10 1703 on) sets the probe count, at most 255; TCP_KEEPIDLE and TCP_KEEPINTVL (Windows 10 1709 on) set the times in seconds. Older builds answer WSAENOPROTOOPT.",
		msTCPOpts}
	ruleWinProbeOctet = rule{"Windows probe octet (observed)",
		"Windows keep-alive probes carry one 0x00 octet at SND.NXT-1. Captures show it (contiki-os/contiki#558, seladb/PcapPlusPlus#1594); Microsoft does not document it.",
		"packet captures; kasim's Windows profiles, probe-bytes=1"}
	ruleWinAbortRST = rule{"Windows abort RST (undocumented)",
		"Whether Windows sends a reset when keep-alive gives up is not documented; kasim's Windows profiles send one (abort=rst, as Windows does for connections it abandons after retransmission), and abort=none turns it off.",
		"kasim winprofile; no Microsoft statement"}
	ruleWinNetReset = rule{"MS WSAENETRESET",
		"WSAENETRESET 10052: the connection has been broken due to keep-alive activity detecting a failure while the operation was in progress.",
		msErrors}
	ruleWinConnReset = rule{"MS WSAECONNRESET",
		"WSAECONNRESET 10054: the connection was reset, by the peer or by keep-alive activity detecting a failure; after the latter, operations in progress fail with WSAENETRESET and subsequent ones with WSAECONNRESET.",
		msErrors}
	ruleWinConnAborted = rule{"MS WSAECONNABORTED",
		"WSAECONNABORTED 10053: an established connection was aborted by the software in the host, possibly due to a data transmission time-out or protocol error. kasim reports it when retransmission, not keep-alive, gives a Windows connection up (keep-alive's is WSAENETRESET).",
		msErrors}
	ruleWinLegacyRetransmissions = rule{"MS TcpMaxDataRetransmissions",
		"Windows 2000, XP and Server 2003: TcpMaxDataRetransmissions (default 5) is how many times TCP retransmits an unacknowledged data segment before it gives the connection up; the same value counts keep-alive probes.",
		msKeep + "; Microsoft, TCP/IP registry values for Windows 2000 and Windows Server 2003"}
	ruleWinOverlapped = rule{"MS overlapped I/O",
		"An overlapped call that cannot finish at once returns SOCKET_ERROR with WSA_IO_PENDING and completes later, through its completion routine, event or port.",
		msOverlap}

	ruleGVisorKeepalive = rule{"gVisor keepalive",
		"gVisor netstack: defaults 2 h / 75 s / 9; a zero-length probe at SND.NXT-1 each time the timer fires with nothing received; any processed inbound segment restarts the idle timer and zeroes the unanswered count.",
		gvConnect}
	ruleGVisorAbort = rule{"gVisor keepalive abort",
		"gVisor netstack: after count unanswered probes the endpoint fails with ErrTimeout (ETIMEDOUT to the application) and sends no reset.",
		gvConnect}
	ruleGVisorUserTimeout = rule{"gVisor TCP_USER_TIMEOUT",
		"With TCP_USER_TIMEOUT set, the keep-alive timer drops the connection, before the count, at the first firing where the time since the last received ACK is at least the user timeout and a probe is unanswered (as Linux's tcp_keepalive_timer does).",
		gvConnect}
	ruleGVisorOptionRestart = rule{"gVisor option restarts idle",
		"gVisor netstack: setting SO_KEEPALIVE or any keep-alive option restarts the idle timer and zeroes the unanswered count, even mid-probe. (Linux counts a new TCP_KEEPIDLE from the last segment received, and keeps its probe count.)",
		gvEndpoint}
	ruleLinuxKeepalive = rule{"Linux tcp_keepalive_timer",
		"Linux: the keep-alive timer sends a probe (a zero-length ACK at SND.UNA-1) once nothing has been received for the idle time, then one each interval while unanswered; any ACK received zeroes the probe count, and after an answered probe the next waits the full idle time from that receipt.",
		"Linux net/ipv4/tcp_timer.c tcp_keepalive_timer; tcp_output.c tcp_write_wakeup, tcp_xmit_probe_skb"}
	ruleLinuxAbort = rule{"Linux keepalive abort",
		"Linux: when the probes out reach tcp_keepalive_probes (TCP_KEEPCNT), tcp_send_active_reset sends RST+ACK at SND.NXT and tcp_write_err fails the socket with ETIMEDOUT.",
		"Linux net/ipv4/tcp_timer.c tcp_keepalive_timer"}
	ruleLinuxUserTimeout = rule{"Linux TCP_USER_TIMEOUT",
		"Linux: with TCP_USER_TIMEOUT set it replaces the probe count: the keep-alive timer drops the connection (RST+ACK, ETIMEDOUT) at the first firing where the time since the last receive is at least the user timeout and a probe is out.",
		"Linux net/ipv4/tcp_timer.c tcp_keepalive_timer; man 7 tcp"}
	ruleLinuxTimerWheel = rule{"Linux timer wheel",
		"Linux's timer wheel fires a timeout late, rounded up to the granularity of the level it lands in: at HZ=250, 1 s fires after 1.024 s and 2 s after 2.016 s, so probes are that far apart on a real kernel.",
		"Linux kernel/time/timer.c calc_wheel_index (since 4.8)"}
	ruleLinuxOpts = rule{"Linux tcp(7) options",
		"SO_KEEPALIVE switches keep-alive; TCP_KEEPIDLE and TCP_KEEPINTVL take 1 to 32767 seconds and TCP_KEEPCNT 1 to 127, anything else EINVAL; TCP_USER_TIMEOUT takes milliseconds, 0 for the system default.",
		linuxOpts}
	ruleFreeBSDKeepalive = rule{"FreeBSD tcp_timer_keep",
		"FreeBSD: once nothing has been received for keepidle, tcp_timer_keep sends a zero-length segment at SND.UNA-1, then one each keepintvl, in ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1 and CLOSING; with net.inet.tcp.always_keepalive=1 (the default) on every TCP connection, SO_KEEPALIVE or not.",
		bsdTimer}
	ruleFreeBSDAbort = rule{"FreeBSD keepalive drop",
		"FreeBSD: when the ticks since the last receive reach keepidle + keepcnt x keepintvl (TP_MAXIDLE; keepcnt 8 by default), tcp_timer_keep calls tcp_drop(tp, ETIMEDOUT): RST+ACK at SND.NXT, and ETIMEDOUT (60) to the application.",
		bsdTimer + "; tcp_subr.c tcp_drop"}
	ruleFreeBSDOpts = rule{"FreeBSD tcp_ctloutput",
		"FreeBSD: TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPINIT take seconds as an unsigned int, EINVAL above UINT_MAX/hz, 0 for the system default; TCP_KEEPCNT any count; optlen below sizeof(int) EINVAL; an option tcp_default_ctloutput lacks (such as TCP_USER_TIMEOUT) ENOPROTOOPT (42); another level EINVAL.",
		bsdOpts}
	ruleLwIPKeepalive = rule{"lwIP tcp_slowtmr keepalive",
		"lwIP: every 500 ms (TCP_SLOW_INTERVAL) tcp_slowtmr sends a zero-length probe at SND.NXT-1 (tcp_keepalive) on a connection with SO_KEEPALIVE in ESTABLISHED or CLOSE-WAIT once the ticks since the last receive exceed (keep_idle + probes sent x keep_intvl) / 500 ms.",
		lwipTimer}
	ruleLwIPTick = rule{"lwIP 500 ms slow timer",
		"lwIP's TCP timers are checked by tcp_slowtmr every 500 ms, so a deadline between two runs is met at the later one; kasim fires every timer of an lwip host at the next multiple of 500 ms.",
		"lwIP src/core/tcp.c tcp_slowtmr, TCP_SLOW_INTERVAL; kasim timers.TickQueue"}
	ruleLwIPAbort = rule{"lwIP keepalive abort",
		"lwIP: once the ticks since the last receive exceed (keep_idle + keep_cnt x keep_intvl) / 500 ms, one interval after the last probe, tcp_slowtmr removes the connection, sends RST+ACK at SND.NXT (tcp_rst) and calls the error callback with ERR_ABRT, which the socket API reports as ECONNABORTED.",
		lwipTimer + "; src/core/err.c err_to_errno; src/api/api_msg.c err_tcp"}
	ruleLwIPOpts = rule{"lwIP lwip_setsockopt_impl",
		"lwIP: TCP_KEEPALIVE (milliseconds), TCP_KEEPIDLE and TCP_KEEPINTVL (seconds, times 1000 into a u32_t) and TCP_KEEPCNT are stored without range checks; an IPPROTO_TCP option with optlen below sizeof(int) is EINVAL, an option it lacks (such as TCP_USER_TIMEOUT) ENOPROTOOPT.",
		lwipOpts}
	rulePOSIXConnect = rule{"POSIX connect()",
		"A connect on a non-blocking socket that cannot complete at once returns -1 with EINPROGRESS and completes in the background.",
		"POSIX.1-2017 connect(); lwIP src/api/sockets.c lwip_connect; FreeBSD kern/uipc_syscalls.c kern_connectat"}
	ruleSocket = rule{"socket()",
		"socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) makes an unconnected TCP endpoint with every option at its default: keep-alive off (RFC 9293 MUST-25).",
		"POSIX socket(); Microsoft Learn, \"socket function\""}
	ruleWSAStartup = rule{"MS WSAStartup",
		"A Winsock application calls WSAStartup before any other Winsock function; until then they fail with WSANOTINITIALISED.",
		"Microsoft Learn, \"WSAStartup function\" (learn.microsoft.com/windows/win32/api/winsock/nf-winsock-wsastartup)"}
	ruleLinuxConnect = rule{"Linux connect(2)",
		"A non-blocking connect returns -1 with EINPROGRESS and completes in the background; the socket becomes writable when it does.",
		"Linux man 2 connect"}
)

// family is the kind of stack a host runs, as far as the rules go.
type family int

const (
	famUnknown family = iota // cite the standards only
	famGVisor
	famWinModern // Vista and later
	famWinLegacy // 2000, XP, Server 2003
	famLinux
	famFreeBSD
	famLwIP
)

func familyOf(profile string) family {
	switch profile {
	case "gvisor":
		return famGVisor
	case "linux":
		return famLinux
	case "freebsd":
		return famFreeBSD
	case "lwip":
		return famLwIP
	}
	p, err := winprofile.Lookup(profile)
	if err != nil {
		return famUnknown
	}
	if p.Family == winprofile.Legacy {
		return famWinLegacy
	}
	return famWinModern
}

func (f family) windows() bool { return f == famWinModern || f == famWinLegacy }

// citer chooses the rules behind each event of a trace, in order: some
// depend on what came before (a reset after a keep-alive abort is the
// abort's; one out of nowhere answers a segment for no connection).
type citer struct {
	family  map[string]family
	aborted map[string]bool   // host/conn whose keep-alive gave up
	reset   map[string]bool   // hosts that received a reset
	synAck  map[string]bool   // flows "src>dst" whose SYN-ACK awaits the handshake's ACK
	states  map[string]string // host/conn -> its TCP state
	// retransmitted: host/conn that has retransmitted; when neither
	// keep-alive nor a reset ended it, retransmission did.
	retransmitted map[string]bool
}

func newCiter(profiles map[string]string) *citer {
	c := &citer{family: map[string]family{}, aborted: map[string]bool{}, reset: map[string]bool{}, synAck: map[string]bool{}, states: map[string]string{}, retransmitted: map[string]bool{}}
	for host, p := range profiles {
		c.family[host] = familyOf(p)
	}
	return c
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
	case *LinkEvent:
		if e.Action == "middlebox" && e.IdleNS != nil && *e.IdleNS != 0 {
			return []rule{ruleNAT}
		}
	}
	return nil
}

func (c *citer) segment(e *SegmentEvent) []rule {
	fam := c.family[e.Host]
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
			rs = []rule{ruleProbeOctet}
			if fam.windows() {
				rs = append(rs, ruleWinProbeOctet)
			}
		}
	case ClassKeepAliveACK:
		rs = []rule{ruleUnacceptableAck}
	case ClassRetransmission:
		rs = []rule{ruleRTO}
		c.retransmitted[connKey(e.Host, e.Conn)] = true
	case ClassFIN:
		rs = []rule{ruleClose}
	case ClassRST:
		switch aborted := c.aborted[connKey(e.Host, e.Conn)]; {
		case aborted && fam.windows():
			rs = []rule{ruleWinAbortRST}
		case aborted && (fam == famLinux || fam == famFreeBSD || fam == famLwIP):
			rs = c.abortRules(e.Host) // each cites its own abort, RST included
		default:
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
	fam := c.family[e.Host]
	switch e.Action {
	case ActionProbe:
		first := ruleIdle
		if e.Probe > 1 {
			first = ruleNotOneProbe
		}
		switch {
		case fam.windows():
			return []rule{first, ruleWinTimes}
		case fam == famGVisor:
			return []rule{first, ruleGVisorKeepalive}
		case fam == famLinux:
			return []rule{first, ruleLinuxKeepalive, ruleLinuxTimerWheel}
		case fam == famFreeBSD:
			return []rule{first, ruleFreeBSDKeepalive}
		case fam == famLwIP:
			return []rule{first, ruleLwIPKeepalive, ruleLwIPTick}
		}
		return []rule{first}
	case ActionRearm:
		switch fam {
		case famGVisor:
			return []rule{ruleIdle, ruleGVisorKeepalive}
		case famLinux:
			return []rule{ruleIdle, ruleLinuxKeepalive}
		case famFreeBSD:
			return []rule{ruleIdle, ruleFreeBSDKeepalive}
		case famLwIP:
			return []rule{ruleIdle, ruleLwIPKeepalive}
		}
		return []rule{ruleIdle}
	case ActionAbort:
		c.aborted[connKey(e.Host, e.Conn)] = true
		switch fam {
		case famWinModern:
			if e.Count != 10 {
				return []rule{ruleWinKeepOpts}
			}
			return []rule{ruleWinTen}
		case famWinLegacy:
			return []rule{ruleWinLegacyCount}
		case famGVisor:
			if e.Unanswered < e.Count {
				return []rule{ruleGVisorUserTimeout}
			}
			return []rule{ruleGVisorAbort}
		case famLinux:
			if e.UserTimeoutNS > 0 {
				return []rule{ruleLinuxUserTimeout}
			}
			return []rule{ruleLinuxAbort}
		case famFreeBSD, famLwIP:
			return c.abortRules(e.Host)
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
		if c.retransmitted[connKey(e.Host, e.Conn)] {
			return c.retransmissionRules(e.Host)
		}
	}
	return []rule{ruleClose}
}

// retransmissionRules are what a host follows when retransmission gives a
// connection up.
func (c *citer) retransmissionRules(host string) []rule {
	if c.family[host] == famWinLegacy {
		return []rule{ruleR2, ruleWinLegacyRetransmissions}
	}
	return []rule{ruleR2}
}

// abortRules are what a host's keep-alive abort follows, for the events it
// causes (the connection closing).
func (c *citer) abortRules(host string) []rule {
	switch c.family[host] {
	case famWinModern:
		return []rule{ruleWinTen}
	case famWinLegacy:
		return []rule{ruleWinLegacyCount}
	case famGVisor:
		return []rule{ruleGVisorAbort}
	case famLinux:
		return []rule{ruleLinuxAbort}
	case famFreeBSD:
		return []rule{ruleFreeBSDAbort}
	case famLwIP:
		return []rule{ruleLwIPAbort}
	}
	return nil
}

func (c *citer) appError(e *AppErrorEvent) []rule {
	aborted := c.aborted[connKey(e.Host, e.Conn)]
	switch e.Error {
	case "WSAENETRESET":
		return []rule{ruleWinNetReset}
	case "WSAECONNRESET":
		if aborted {
			return []rule{ruleWinConnReset}
		}
		return []rule{ruleRSTArrives}
	case "ECONNRESET":
		return []rule{ruleRSTArrives}
	case "WSAECONNABORTED":
		if c.retransmitted[connKey(e.Host, e.Conn)] {
			return append([]rule{ruleWinConnAborted}, c.retransmissionRules(e.Host)...)
		}
		return []rule{ruleWinConnAborted}
	case "ECONNABORTED":
		if aborted && c.family[e.Host] == famLwIP {
			return c.abortRules(e.Host)
		}
	case "ETIMEDOUT":
		if aborted && c.family[e.Host] != famUnknown {
			return c.abortRules(e.Host)
		}
		if !aborted {
			return []rule{ruleR2}
		}
	}
	return []rule{ruleReceive}
}

func (c *citer) call(e *SockOptEvent) []rule {
	fam := c.family[e.Host]
	win := strings.HasPrefix(e.Error, "WSA") || fam.windows()
	switch e.Error {
	case "WSAENETRESET", "WSAECONNRESET", "WSAECONNABORTED", "ECONNRESET", "ETIMEDOUT", "ECONNABORTED":
		// A call failing because the connection is gone: the same rules as
		// the error the stack reports.
		return c.appError(&AppErrorEvent{Header: e.Header, Conn: e.Conn, Op: e.Call, Error: e.Error, Code: e.Code})
	}
	switch {
	case e.Error == "WSA_IO_PENDING" || strings.HasSuffix(e.Call, " completes"):
		return []rule{ruleWinOverlapped}
	case e.Opt == "SIO_KEEPALIVE_VALS":
		return []rule{ruleWinSIO}
	case e.Opt == "SO_KEEPALIVE" && e.Error == "WSAEINVAL" && e.Level == "SOL_SOCKET":
		return []rule{ruleWinTransitional}
	case win && (e.Opt == "TCP_KEEPCNT" || e.Opt == "TCP_KEEPIDLE" || e.Opt == "TCP_KEEPINTVL"):
		if e.Error == "WSAEINVAL" && fam == famWinModern {
			return []rule{ruleWinKeepOpts, ruleWinTransitional}
		}
		return []rule{ruleWinKeepOpts}
	case win && (e.Call == "setsockopt" || e.Call == "getsockopt") && e.Error != "":
		return []rule{ruleWinOptErrors}
	case !win && e.Error != "" && (e.Call == "setsockopt" || e.Call == "getsockopt"):
		return []rule{c.optsRule(fam)}
	case e.Opt == "SO_KEEPALIVE":
		rs := []rule{ruleOnOff}
		if c.restarts(e) {
			rs = append(rs, ruleGVisorOptionRestart)
		}
		return rs
	case e.Opt == "TCP_USER_TIMEOUT":
		rs := []rule{ruleLinuxOpts}
		if e.Call == "setsockopt" && e.Error == "" {
			switch fam {
			case famGVisor:
				rs = append(rs, ruleGVisorUserTimeout)
			case famLinux:
				rs = append(rs, ruleLinuxUserTimeout)
			}
		}
		return rs
	case strings.HasPrefix(e.Opt, "TCP_KEEP"):
		rs := []rule{c.optsRule(fam)}
		if c.restarts(e) {
			rs = append(rs, ruleGVisorOptionRestart)
		}
		return rs
	case e.Call == "connect" && e.Error == "EINPROGRESS":
		if fam == famFreeBSD || fam == famLwIP {
			return []rule{rulePOSIXConnect}
		}
		return []rule{ruleLinuxConnect}
	case e.Call == "connect" || e.Call == "ConnectEx":
		return []rule{ruleOpen}
	case e.Call == "socket":
		return []rule{ruleSocket}
	case e.Call == "WSAStartup":
		return []rule{ruleWSAStartup}
	case e.Call == "accept":
		return []rule{ruleHandshake}
	case e.Call == "send":
		return []rule{ruleSend}
	case e.Call == "recv" || e.Call == "WSARecv":
		return []rule{ruleReceive}
	case e.Call == "close" || e.Call == "closesocket":
		return []rule{ruleClose}
	}
	return nil
}

// optsRule is the rule a host's POSIX option calls follow: its system's
// setsockopt (Linux's for linux and gvisor hosts).
func (c *citer) optsRule(fam family) rule {
	switch fam {
	case famFreeBSD:
		return ruleFreeBSDOpts
	case famLwIP:
		return ruleLwIPOpts
	}
	return ruleLinuxOpts
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
		if !l.seen[r.label] {
			l.seen[r.label] = true
			l.rules = append(l.rules, r)
		}
	}
}

// restarts says whether a call restarted a gVisor connection's idle timer:
// a keep-alive option set without error while the connection is up.
func (c *citer) restarts(e *SockOptEvent) bool {
	if c.family[e.Host] != famGVisor || e.Call != "setsockopt" || e.Error != "" {
		return false
	}
	switch c.states[connKey(e.Host, e.Conn)] {
	case "ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-1", "FIN-WAIT-2":
		return true
	}
	return false
}
