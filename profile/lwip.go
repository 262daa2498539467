package profile

import (
	"fmt"
	"io"
	"time"
)

// lwipSystem is lwIP, modelled from source:
// src/include/lwip/priv/tcp_priv.h TCP_KEEPIDLE_DEFAULT,
// TCP_KEEPINTVL_DEFAULT, TCP_KEEPCNT_DEFAULT; src/core/tcp.c tcp_slowtmr
// (every TCP_SLOW_INTERVAL, 500 ms), which probes in ESTABLISHED and
// CLOSE_WAIT and aborts with tcp_rst and ERR_ABRT.
var lwipSystem = posix{
	name: "lwip", title: "lwIP", owner: "lwIP's", dialect: "lwip",
	idle: 2 * time.Hour, interval: 75 * time.Second, count: 9,
	abortRST: true, measured: true, tick: 500 * time.Millisecond, abortError: "ECONNABORTED",
	measuredAgainst: "measured against lwIP 2.1.3 as Debian builds it (liblwip-dev) on a TAP device, 2026-12-02:\n" +
		"  sudo kasim conform --dut lwip (the 9 built-in scenarios it can express agree)",
	// tcp_timer_needed starts tcp_tmr (TCP_TMR_INTERVAL, 250 ms) when the
	// first connection becomes active; tcp_slowtmr runs on its first call.
	// Measured against lwIP 2.1.3: first probe 2.25 s after a SYN-ACK
	// received right after connect, with idle 2 s.
	tickStart: 250 * time.Millisecond,
	// tcp_alloc: pcb->rto = 3000 / TCP_SLOW_INTERVAL, which tcp_slowtmr
	// does not back off in SYN-SENT; TCP_SYNMAXRTX (opt.h) is 6.
	synRetries: 6, synEvery: 3 * time.Second,
	// tcp_alloc: sv = 3000 / TCP_SLOW_INTERVAL; TCP_MAXRTX (opt.h) is 12.
	dataRetries: 12, initialRTO: 3 * time.Second,
	probeStates: []string{"ESTABLISHED", "CLOSE-WAIT"},
	keys:        []string{"tick", "tick-start", "abort"},
	describeAs:  describeLwIP,
	citations: Citations{
		Probe:          []Rule{lwipKeepalive, lwipTick},
		Rearm:          []Rule{lwipKeepalive},
		Abort:          []Rule{lwipAbort},
		AbortRST:       []Rule{lwipAbort},
		Options:        lwipOpts,
		Connect:        posixConnect,
		SynRetries:     []Rule{lwipSynRetries},
		Retransmission: []Rule{lwipDataRetries},
		abort:          always(lwipAbort),
	},
}

// Where lwIP's rules come from.
const (
	lwipTimer      = "lwIP src/core/tcp.c tcp_slowtmr; src/core/tcp_out.c tcp_keepalive; src/core/tcp_in.c tcp_process (pcb->tmr)"
	lwipOptsSource = "lwIP src/api/sockets.c lwip_setsockopt_impl; src/include/lwip/sockets.h"
)

// Rules of lwIP's keep-alive and calls.
var (
	lwipKeepalive = Rule{"lwIP tcp_slowtmr keepalive",
		"lwIP: every 500 ms (TCP_SLOW_INTERVAL) tcp_slowtmr sends a zero-length probe at SND.NXT-1 (tcp_keepalive) on a connection with SO_KEEPALIVE in ESTABLISHED or CLOSE-WAIT once the ticks since the last receive exceed (keep_idle + probes sent x keep_intvl) / 500 ms.",
		lwipTimer}
	lwipTick = Rule{"lwIP 500 ms slow timer",
		"lwIP's TCP timers are checked by tcp_slowtmr every 500 ms, so a deadline between two runs is met at the later one; the timer starts with the first active connection (tcp_timer_needed) and its first call, 250 ms later, runs tcp_slowtmr. kasim fires every timer of an lwip host at the next such tick (measured against lwIP 2.1.3).",
		"lwIP src/core/tcp.c tcp_slowtmr, tcp_tmr, TCP_SLOW_INTERVAL; src/core/timeouts.c tcp_timer_needed; kasim timers.TickQueue"}
	lwipAbort = Rule{"lwIP keepalive abort",
		"lwIP: once the ticks since the last receive exceed (keep_idle + keep_cnt x keep_intvl) / 500 ms, one interval after the last probe, tcp_slowtmr removes the connection, sends RST+ACK at SND.NXT (tcp_rst) and calls the error callback with ERR_ABRT, which the socket API reports as ECONNABORTED.",
		lwipTimer + "; src/core/err.c err_to_errno; src/api/api_msg.c err_tcp"}
	lwipSynRetries = Rule{"lwIP TCP_SYNMAXRTX",
		"lwIP: a connect's SYN goes again when the retransmission timer, counted in 500 ms ticks by tcp_slowtmr from the SYN, reaches pcb->rto: 3 s (tcp_alloc), which tcp_slowtmr does not back off in SYN-SENT, so every 3 s on the tick; at the first tick after the TCP_SYNMAXRTX-th (6th) retransmission tcp_slowtmr removes the connection, no RST, and the error callback gets ERR_ABRT: connect() fails with ECONNABORTED, 18 s or so after the SYN, short of RFC 9293's 3 minutes (measured against lwIP 2.1.3).",
		"lwIP src/core/tcp.c tcp_slowtmr (TCP_SYNMAXRTX, pcb->rtime, pcb->rto), tcp_alloc; src/include/lwip/opt.h TCP_SYNMAXRTX; src/api/api_msg.c err_tcp"}
	lwipDataRetries = Rule{"lwIP TCP_MAXRTX",
		"lwIP: unacknowledged data goes again when the retransmission timer, counted in 500 ms ticks by tcp_slowtmr from the send (or the last ACK of new data, or the last retransmission), reaches pcb->rto; the RTO is (sa >> 3) + sv, Van Jacobson's estimator in ticks, from sv 6 (3 s) until a round trip is measured (tcp_receive times one segment at a time), and each retransmission shifts it left by tcp_backoff (1 to 7: 3 s, then 6, 12, 24 ... 384 s without a sample); at the first tick after the TCP_MAXRTX-th (12th) retransmission tcp_slowtmr removes the connection, no RST, and the error callback gets ERR_ABRT: ECONNABORTED (measured against lwIP 2.1.3).",
		"lwIP src/core/tcp.c tcp_slowtmr (TCP_MAXRTX, tcp_backoff, pcb->rtime), tcp_alloc; src/core/tcp_in.c tcp_receive (RTT estimation); src/core/tcp_out.c tcp_output_segment, tcp_rexmit_rto_prepare"}
	lwipOpts = Rule{"lwIP lwip_setsockopt_impl",
		"lwIP: TCP_KEEPALIVE (milliseconds), TCP_KEEPIDLE and TCP_KEEPINTVL (seconds, times 1000 into a u32_t) and TCP_KEEPCNT are stored without range checks; an IPPROTO_TCP option with optlen below sizeof(int) is EINVAL, an option it lacks (such as TCP_USER_TIMEOUT) ENOPROTOOPT.",
		lwipOptsSource}
)

// describeLwIP writes the lwip profile: what kasim models from lwIP's
// source, and where gVisor underneath does otherwise.
func describeLwIP(x posix, p Profile, w io.Writer) error {
	_, err := fmt.Fprintf(w, `%s (%s): %s
  modelled from source: lwIP src/core/tcp.c tcp_slowtmr, tcp_timer_needed, tcp_out.c tcp_keepalive, tcp_in.c tcp_process,
  src/api/sockets.c lwip_setsockopt_impl, src/include/lwip/sockets.h, err.c err_to_errno
  defaults          idle %v, interval %v, %d probes (TCP_KEEPIDLE_DEFAULT, TCP_KEEPINTVL_DEFAULT, TCP_KEEPCNT_DEFAULT,
                    compile-time); keep-alive off until SO_KEEPALIVE
  options           SOL_SOCKET 0xfff: SO_KEEPALIVE 0x8; IPPROTO_TCP: TCP_KEEPALIVE 0x2 (idle in ms), TCP_KEEPIDLE 0x3,
                    TCP_KEEPINTVL 0x4 (seconds, times 1000 into a u32_t: no range check, large values wrap),
                    TCP_KEEPCNT 0x5 (no check); optlen below sizeof(int) EINVAL; no TCP_USER_TIMEOUT
                    (ENOPROTOOPT); errno numbers as lwip/errno.h gives them (Linux's); getsockopt(SO_KEEPALIVE)
                    reads 8 (SOF_KEEPALIVE); a build with external socket headers (Debian's, measured) takes
                    the C library's numbers instead (glibc: SOL_SOCKET 1, SO_KEEPALIVE 9, TCP_KEEPIDLE 4, ...)
  probe             zero-length ACK at SND.NXT-1, in ESTABLISHED and CLOSE-WAIT only
  idle counts from  the last segment received (pcb->tmr = tcp_ticks in tcp_process)
  schedule          tcp_slowtmr runs every 500 ms; probe n+1 goes at the first tick where the ticks since the last
                    receive exceed (idle + n x interval) / 500 ms: the first at the first tick after last
                    received + idle, the next exactly an interval apart
  gives up          at the first tick past (idle + count x interval) / 500 ms, one interval after the last probe:
                    %s (tcp_rst), and the error callback gets ERR_ABRT: %s to the application%s
  connect           the SYN goes again every 3 s on the tick (pcb->rto, not backed off in SYN-SENT), from the
                    sixth tick after the SYN; at the first tick after the 6th retransmission (TCP_SYNMAXRTX)
                    connect() fails, ECONNABORTED, no RST: 2.75 s, then 3 s apart, and the error 0.5 s after the
                    last for a connect 250 ms before a tick (measured against lwIP 2.1.3)
  retransmission    on the tick too: data goes again at the RTO-th tick after it is sent (or after the last ACK of
                    new data); the RTO is (sa >> 3) + sv in ticks, Van Jacobson's estimator, 3 s until a round
                    trip is measured (tcp_receive times one segment at a time, the SYN included, not one sent
                    before the first tick), and each retransmission shifts it left by tcp_backoff (x2 ... x128);
                    at the tick after the 12th (TCP_MAXRTX) the connection is removed: ECONNABORTED, no RST.
                    Without a sample: 3, 6, 12 ... 384 s apart, given up 38 min 21.5 s after the data; after
                    three quick answers (RTO 1.5 s): 1.25, 3, 6, 12 s (both measured against lwIP 2.1.3)
  timers            %s%s
  not modelled      every other gVisor timer of the host runs on the tick, TIME-WAIT's included (lwIP runs those
                    on the same 500 ms timer, but with its own rules); kasim rounds each timer up to the
                    tick where lwIP divides idle + n x interval by 500 ms: the two agree when both times are
                    multiples of 500 ms; values lwIP takes unchecked that make its schedule degenerate (interval 0:
                    lwIP aborts without probing) run as gVisor runs them; no probes while data is unacknowledged
                    (gVisor's rule; tcp_slowtmr does not check); setting an option restarts the idle time from now;
                    lwIP delays ACKs up to 250 ms (tcp_fasttmr), so a peer may send its first data twice and the
                    idle time count from the copy (seen: 200 ms later); fast retransmission, the zero-window
                    probe (persist) and the FIN-WAIT-2 timeout are gVisor's, on the tick; lwIP's tcp_ticks
                    counts from the host's first connect (a fresh lwIP), so the first SYN is never timed
`, x.title, x.name, x.measuredAgainst, x.idle, x.interval, x.count, x.rstText(), x.abortError, x.setMark("abort"), p.TimerSlack(), x.setMark("tick"))
	return err
}
