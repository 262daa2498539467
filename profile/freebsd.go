package profile

import (
	"fmt"
	"io"
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
	keys:        []string{"always-keepalive", "abort"},
	describeAs:  describeFreeBSD,
	citations: Citations{
		Probe:    []Rule{freebsdKeepalive},
		Rearm:    []Rule{freebsdKeepalive},
		Abort:    []Rule{freebsdAbort},
		AbortRST: []Rule{freebsdAbort},
		Options:  freebsdOpts,
		Connect:  posixConnect,
		abort:    always(freebsdAbort),
	},
}

// Where FreeBSD's rules come from.
const (
	bsdTimer = "FreeBSD sys/netinet/tcp_timer.c tcp_timer_keep (always_keepalive); tcp_timer.h TP_KEEPIDLE, TP_MAXIDLE, TCPTV_KEEPCNT"
	bsdOpts  = "FreeBSD sys/netinet/tcp_usrreq.c tcp_default_ctloutput; sys/netinet/ip_output.c ip_ctloutput; sys/netinet/tcp.h"
)

// Rules of FreeBSD's keep-alive and calls.
var (
	freebsdKeepalive = Rule{"FreeBSD tcp_timer_keep",
		"FreeBSD: once nothing has been received for keepidle, tcp_timer_keep sends a zero-length segment at SND.UNA-1, then one each keepintvl, in ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1 and CLOSING; with net.inet.tcp.always_keepalive=1 (the default) on every TCP connection, SO_KEEPALIVE or not.",
		bsdTimer}
	freebsdAbort = Rule{"FreeBSD keepalive drop",
		"FreeBSD: when the ticks since the last receive reach keepidle + keepcnt x keepintvl (TP_MAXIDLE; keepcnt 8 by default), tcp_timer_keep calls tcp_drop(tp, ETIMEDOUT): RST+ACK at SND.NXT, and ETIMEDOUT (60) to the application.",
		bsdTimer + "; tcp_subr.c tcp_drop"}
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
  idle counts from  the last segment received (t_rcvtime)
  gives up          when ticks since the last receive reach keepidle + keepcnt x keepintvl (time-based):
                    tcp_drop(tp, ETIMEDOUT): %s, then ETIMEDOUT to the application%s
  timers            %s
  not modelled      gVisor runs the keep-alive underneath: it counts unanswered probes rather than time,
                    which gives the same times while the peer stays silent; it sends no probes while data
                    is unacknowledged (tcp_timer_keep does not check, but FreeBSD's retransmission timer
                    usually decides first); setting an option restarts the idle time from now (FreeBSD
                    counts from the last receive); TCP_KEEPINIT is stored and read back but gVisor's own
                    SYN retries decide when a connect fails; retransmission is gVisor's, not tcp_timer_rexmt;
                    callouts tick at kern.hz (1 ms at 1000), which kasim's exact timers leave out
`, x.title, x.name, x.idle, x.interval, x.count, always, x.setMark("always-keepalive"), x.rstText(), x.setMark("abort"), p.TimerSlack())
	return err
}
