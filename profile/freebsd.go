package profile

import (
	"fmt"
	"io"
	"kasim/stack"
	"time"
)

// freebsdSystem is FreeBSD, modelled from source: sys/netinet/tcp_timer.h
// TCPTV_KEEP_IDLE, TCPTV_KEEPINTVL, TCPTV_KEEPCNT; tcp_timer.c
// always_keepalive = 1 and tcp_timer_keep, which probes up to CLOSING and
// drops with tcp_drop(tp, ETIMEDOUT).
var freebsdSystem = posix{
	name: "freebsd", title: "FreeBSD", owner: "FreeBSD's", dialect: "freebsd",
	idle: 2 * time.Hour, interval: 75 * time.Second, count: 8,
	abortRST: true, fromSource: true, alwaysKeepAlive: true, abortError: "ETIMEDOUT",
	probeStates: []string{"ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-1", "CLOSING"},
	synSchedule: freebsdSyn, bsdRetransmit: freebsdData,
	keys:       []string{"always-keepalive", "abort"},
	describeAs: describeFreeBSD,
	citations: Citations{
		Probe:          []Rule{freebsdKeepalive},
		Rearm:          []Rule{freebsdKeepalive},
		Abort:          []Rule{freebsdAbort},
		AbortRST:       []Rule{freebsdAbort},
		Options:        freebsdOpts,
		SynRetries:     []Rule{freebsdSynRetries},
		Retransmission: []Rule{freebsdDataRetries},
		Connect:        posixConnect,
		abort:          always(freebsdAbort),
	},
}

// freebsdSyn is FreeBSD's SYN retransmission (tcp_timer_rexmt in
// SYN-SENT): the first RTO is tcp_rexmit_initial, 1 s (tcp_newtcpcb sets
// t_rxtcur to it; TCPTV_RTOBASE); the k-th after is tcp_rexmit_initial x
// tcp_backoff[k] (1, 2, 4 ... 512) with tcp_rexmit_slop, 200 ms
// (TCPTV_CPU_VAR, hz/5), added by TCPT_RANGESET, up to TCPTV_REXMTMAX,
// 64 s; TCP_MAXRXTSHIFT, 12 retransmissions, and the keep timer's
// tcp_keepinit, 75 s from the connect (TCPTV_KEEP_INIT; TCP_KEEPINIT per
// socket), bound it: tcp_timer_keep drops a connection not yet
// established with tcp_drop(tp, ETIMEDOUT), which sends no RST before a
// SYN was received. SYNs at 0, 1, 3.2, 7.4, 15.6, 31.8 and 64 s, the
// connect failing at 75 s.
var freebsdSyn = stack.SynRetransmit{ByCount: true, Retries: 12, Initial: time.Second, MaxRTO: 64 * time.Second,
	Slop: 200 * time.Millisecond, Limit: 75 * time.Second}

// freebsdData is FreeBSD's data retransmission (tcp_timer_rexmt,
// tcp_xmit_timer): tcp_rexmit_initial 1 s before a sample, tcp_rexmit_min
// 30 ms (TCPTV_MIN), tcp_rexmit_slop 200 ms (TCPTV_CPU_VAR), TCPTV_REXMTMAX
// 64 s, TCP_MAXRXTSHIFT 12.
var freebsdData = stack.BSDRetransmit{InitialRTO: time.Second, MinRTO: 30 * time.Millisecond, Slop: 200 * time.Millisecond,
	MaxRTO: 64 * time.Second, Max: 12}

// Where FreeBSD's rules come from.
const (
	bsdTimer = "FreeBSD sys/netinet/tcp_timer.c tcp_timer_keep (always_keepalive); tcp_timer.h TP_KEEPIDLE, TP_MAXIDLE, TCPTV_KEEPCNT"
	bsdOpts  = "FreeBSD sys/netinet/tcp_usrreq.c tcp_default_ctloutput; sys/netinet/ip_output.c ip_ctloutput; sys/netinet/tcp.h"
)

// Rules of FreeBSD's keep-alive and calls.
var (
	freebsdDataRetries = Rule{"FreeBSD tcp_timer_rexmt",
		"FreeBSD: unacknowledged data goes again when the retransmission timer fires, t_rxtcur after the send (or the ACK of new data before): tcp_rexmit_initial (1 s) until a round trip is measured, then TCP_REXMTVAL (srtt + 4 rttvar, at least tcp_rexmit_min, 30 ms) plus tcp_rexmit_slop (200 ms); at each timeout the shift grows and the RTO becomes TCP_REXMTVAL x tcp_backoff[shift] (1, 2, 4 ... 512) plus the slop, at most TCPTV_REXMTMAX (64 s); at the timeout after the TCP_MAXRXTSHIFT-th (12th) retransmission tcp_drop sends RST+ACK and fails the socket with ETIMEDOUT (modelled from source).",
		"FreeBSD sys/netinet/tcp_timer.c tcp_timer_rexmt, tcp_backoff; tcp_input.c tcp_xmit_timer; tcp_timer.h TCP_MAXRXTSHIFT, TCPTV_REXMTMAX; tcp_var.h TCP_REXMTVAL, TCPT_RANGESET; tcp_subr.c tcp_drop"}
	freebsdKeepalive = Rule{"FreeBSD tcp_timer_keep",
		"FreeBSD: once nothing has been received for keepidle, tcp_timer_keep sends a zero-length segment at SND.UNA-1, then one each keepintvl, in ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1 and CLOSING; with net.inet.tcp.always_keepalive=1 (the default) on every TCP connection, SO_KEEPALIVE or not.",
		bsdTimer}
	freebsdAbort = Rule{"FreeBSD keepalive drop",
		"FreeBSD: when the ticks since the last receive reach keepidle + keepcnt x keepintvl (TP_MAXIDLE; keepcnt 8 by default), tcp_timer_keep calls tcp_drop(tp, ETIMEDOUT): RST+ACK at SND.NXT, and ETIMEDOUT (60) to the application.",
		bsdTimer + "; tcp_subr.c tcp_drop"}
	freebsdSynRetries = Rule{"FreeBSD keepinit",
		"FreeBSD: the SYN goes again after tcp_rexmit_initial (1 s), then after tcp_rexmit_initial x tcp_backoff[k] + tcp_rexmit_slop (200 ms), up to 64 s; the keep timer, armed at the connect with tcp_keepinit (75 s; TCP_KEEPINIT per socket), drops a connection not yet established with tcp_drop(tp, ETIMEDOUT), and no RST goes before a SYN was received; 12 retransmissions (TCP_MAXRXTSHIFT) end it too.",
		"FreeBSD sys/netinet/tcp_timer.c tcp_timer_rexmt, tcp_timer_keep; tcp_timer.h TCPT_RANGESET, TCPTV_KEEP_INIT, TCPTV_REXMTMAX; tcp_subr.c tcp_newtcpcb, tcp_drop"}
	freebsdOpts = Rule{"FreeBSD tcp_ctloutput",
		"FreeBSD: TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPINIT take seconds as an unsigned int, EINVAL above UINT_MAX/hz, 0 for the system default; TCP_KEEPCNT any count; optlen below sizeof(int) EINVAL; an option tcp_default_ctloutput lacks (such as TCP_USER_TIMEOUT) ENOPROTOOPT (42); another level EINVAL.",
		bsdOpts}
)

// describeFreeBSD writes the freebsd profile: what kasim models from
// FreeBSD's source, and where gVisor underneath does otherwise.
func describeFreeBSD(x posix, p Profile, w io.Writer) error {
	always := "on for EVERY TCP connection, SO_KEEPALIVE or not (net.inet.tcp.always_keepalive=1, the default;\n                    against RFC 1122's default-off); getsockopt(SO_KEEPALIVE) still reads what the application set"
	if !x.alwaysKeepAlive {
		always = "only with SO_KEEPALIVE (net.inet.tcp.always_keepalive=0)"
	}
	_, err := fmt.Fprintf(w, `%s (%s): modelled from source, not measured: FreeBSD sys/netinet/tcp_timer.c tcp_timer_keep,
  tcp_usrreq.c tcp_default_ctloutput, tcp_timer.h (TCPTV_KEEP_IDLE, TCPTV_KEEPINTVL, TCPTV_KEEPCNT, TP_MAXIDLE)
  defaults          idle %v, interval %v, %d probes (net.inet.tcp.keepidle, keepintvl; TCPTV_KEEPCNT); keepinit 75s
  keep-alive        %s%s
  options           SOL_SOCKET 0xffff: SO_KEEPALIVE 0x8; IPPROTO_TCP: TCP_KEEPINIT 128, TCP_KEEPIDLE 256,
                    TCP_KEEPINTVL 512 (seconds, unsigned: 0 means the system default, above UINT_MAX/hz =
                    4294967 s at hz=1000 EINVAL), TCP_KEEPCNT 1024 (any unsigned count, 0 the default);
                    no TCP_USER_TIMEOUT (ENOPROTOOPT); another level EINVAL (ip_ctloutput); errno numbers
                    are FreeBSD's (ETIMEDOUT 60, ENOPROTOOPT 42, EINVAL 22, EINPROGRESS 36)
  probe             zero-length ACK at SND.UNA-1, in ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1 and CLOSING only
  connect           the SYN again after 1 s (tcp_rexmit_initial), then tcp_rexmit_initial x tcp_backoff[k]
                    + tcp_rexmit_slop (200 ms), up to 64 s: at 1, 3.2, 7.4, 15.6, 31.8 and 64 s; the
                    connect fails with ETIMEDOUT, and no RST, at tcp_keepinit (75 s; TCP_KEEPINIT per
                    socket) or after 12 retransmissions (tcp_timer_rexmt, tcp_timer_keep)
  retransmission    unacknowledged data again after the RTO: tcp_rexmit_initial (1 s) until a round trip
                    is measured (none from the handshake), then srtt + 4 rttvar, at least 30 ms
                    (tcp_rexmit_min), plus 200 ms (tcp_rexmit_slop); each time after, that base x
                    tcp_backoff[k] (2, 4 ... 512) + 200 ms, at most 64 s; at the timeout after the 12th
                    (TCP_MAXRXTSHIFT) tcp_drop: RST+ACK at SND.MAX and ETIMEDOUT. On a LAN: 230, 260,
                    320, 440, 680 ms, 1.16, 2.12, 4.04, 7.88 s, then 15.56 s: the drop 79.37 s after the
                    send (tcp_timer_rexmt, tcp_xmit_timer; modelled from source)
  idle counts from  the last segment received (t_rcvtime)
  gives up          when ticks since the last receive reach keepidle + keepcnt x keepintvl (time-based):
                    tcp_drop(tp, ETIMEDOUT): %s, then ETIMEDOUT to the application%s
  timers            %s
  not modelled      gVisor runs the keep-alive underneath: it counts unanswered probes rather than time,
                    which gives the same times while the peer stays silent; it sends no probes while data
                    is unacknowledged (tcp_timer_keep does not check, but FreeBSD's retransmission timer
                    usually decides first); setting TCP_KEEPINTVL or TCP_KEEPCNT restarts the idle time
                    from now and forgets unanswered probes, where FreeBSD restarts its keep timer only
                    for TCP_KEEPIDLE (tcp_default_ctloutput); TCP_KEEPINIT counts from the SYN, where FreeBSD, given
                    it during a connect, restarts the keep timer; round trips are timed one segment at a
                    time, not by timestamps; callouts tick at kern.hz (1 ms at 1000), which kasim's exact
                    timers leave out
`, x.title, x.name, x.idle, x.interval, x.count, always, x.setMark("always-keepalive"), x.rstText(), x.setMark("abort"), p.TimerSlack())
	return err
}
