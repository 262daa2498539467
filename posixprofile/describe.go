package posixprofile

import (
	"fmt"
	"io"
)

// set marks a value the user overrode: "  (set: key=value)".
func (p Profile) set(key string) string {
	if p.Overridden(key) {
		return "  (set: " + key + "=" + p.overrides[key] + ")"
	}
	return ""
}

func (p Profile) rstText() string {
	if p.AbortRST {
		return "RST+ACK at SND.NXT"
	}
	return "no RST"
}

// describeFreeBSD writes the freebsd profile: what kasim models from
// FreeBSD's source, and where gVisor underneath does otherwise.
func (p Profile) describeFreeBSD(w io.Writer) error {
	always := "on for EVERY TCP connection, SO_KEEPALIVE or not (net.inet.tcp.always_keepalive=1, the default;\n                    against RFC 1122's default-off); getsockopt(SO_KEEPALIVE) still reads what the application set"
	if !p.AlwaysKeepAlive {
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
`, p.Title, p.Name, p.Idle, p.Interval, p.Count, always, p.set("always-keepalive"), p.rstText(), p.set("abort"), p.TimerSlack())
	return err
}

// describeLwIP writes the lwip profile: what kasim models from lwIP's
// source, and where gVisor underneath does otherwise.
func (p Profile) describeLwIP(w io.Writer) error {
	_, err := fmt.Fprintf(w, `%s (%s): modelled from source, not measured: lwIP src/core/tcp.c tcp_slowtmr, tcp_out.c tcp_keepalive,
  tcp_in.c tcp_process, src/api/sockets.c lwip_setsockopt_impl, src/include/lwip/sockets.h, err.c err_to_errno
  defaults          idle %v, interval %v, %d probes (TCP_KEEPIDLE_DEFAULT, TCP_KEEPINTVL_DEFAULT, TCP_KEEPCNT_DEFAULT,
                    compile-time); keep-alive off until SO_KEEPALIVE
  options           SOL_SOCKET 0xfff: SO_KEEPALIVE 0x8; IPPROTO_TCP: TCP_KEEPALIVE 0x2 (idle in ms), TCP_KEEPIDLE 0x3,
                    TCP_KEEPINTVL 0x4 (seconds, times 1000 into a u32_t: no range check, large values wrap),
                    TCP_KEEPCNT 0x5 (no check); optlen below sizeof(int) EINVAL; no TCP_USER_TIMEOUT
                    (ENOPROTOOPT); errno numbers as lwip/errno.h gives them (Linux's)
  probe             zero-length ACK at SND.NXT-1, in ESTABLISHED and CLOSE-WAIT only
  idle counts from  the last segment received (pcb->tmr = tcp_ticks in tcp_process)
  schedule          tcp_slowtmr runs every 500 ms; probe n+1 goes at the first tick where the ticks since the last
                    receive exceed (idle + n x interval) / 500 ms: the first at the first tick after last
                    received + idle, the next exactly an interval apart
  gives up          at the first tick past (idle + count x interval) / 500 ms, one interval after the last probe:
                    %s (tcp_rst), and the error callback gets ERR_ABRT: %s to the application%s
  timers            %s%s
  not modelled      every gVisor timer of the host runs on the tick, retransmission and TIME-WAIT included (lwIP
                    runs those on the same 500 ms timer, but with its own rules); kasim rounds each timer up to the
                    tick where lwIP divides idle + n x interval by 500 ms: the two agree when both times are
                    multiples of 500 ms; values lwIP takes unchecked that make its schedule degenerate (interval 0:
                    lwIP aborts without probing) run as gVisor runs them; no probes while data is unacknowledged
                    (gVisor's rule; tcp_slowtmr does not check); setting an option restarts the idle time from now
`, p.Title, p.Name, p.Idle, p.Interval, p.Count, p.rstText(), p.AbortError, p.set("abort"), p.TimerSlack(), p.set("tick"))
	return err
}
