package profile

import (
	"time"

	"kasim/stack"
)

// linuxSystem is the Linux kernel's keep-alive (net/ipv4/tcp_timer.c
// tcp_keepalive_timer), measured against the kernel in namespaces (kasim
// conform): gVisor's engine, shaped where the kernel differs (the RST at
// the abort, TCP_USER_TIMEOUT replacing the count, close ending keep-alive,
// the HZ=250 timer wheel).
var linuxSystem = posix{
	name: "linux", title: "Linux", owner: "Linux's", dialect: "linux",
	idle: 2 * time.Hour, interval: 75 * time.Second, count: 9,
	abortRST: true, userTimeoutReplacesCount: true, keepTimerKept: true, hz: 250, abortError: "ETIMEDOUT",
	closeStopsKeepAlive: true, measured: true, retries2: 15, synRetries: 6, synLinear: 4,
	receiveBuffer: stack.LinuxReceiveBuffer, bareWindowProbe: true, synAckRetries: 5,
	measuredAgainst: "measured against the real kernel in namespaces (kasim conform); net/ipv4/tcp_timer.c",
	keys: []string{"hz", "abort", "user-timeout", "tcp_retries2", "tcp_syn_retries", "tcp_syn_linear_timeouts", "tcp_synack_retries",
		"tcp_keepalive_time", "tcp_keepalive_intvl", "tcp_keepalive_probes"},
	sysctls: []string{"tcp_retries2", "tcp_syn_retries", "tcp_syn_linear_timeouts", "tcp_synack_retries",
		"tcp_keepalive_time", "tcp_keepalive_intvl", "tcp_keepalive_probes"},
	describeAs: describeLinuxLike,
	citations: Citations{
		Probe:                     []Rule{linuxKeepalive, linuxTimerWheel},
		Rearm:                     []Rule{linuxKeepalive},
		Abort:                     []Rule{linuxAbort},
		AbortRST:                  []Rule{linuxAbort},
		Options:                   linuxOpts,
		UserTimeout:               []Rule{linuxUserTimeout},
		Retransmission:            []Rule{linuxRetries2},
		RetransmissionUserTimeout: []Rule{linuxUserTimeoutData},
		SynRetries:                []Rule{linuxSynRetries},
		SynAckRetries:             []Rule{linuxSynAckRetries},
		WindowProbe:               []Rule{linuxWindowProbe, linuxTimerWheel},
		Connect:                   linuxConnect,
		abort: func(_, _ int, userTimeout time.Duration) []Rule {
			if userTimeout > 0 {
				return []Rule{linuxUserTimeout}
			}
			return []Rule{linuxAbort}
		},
	},
}

// Rules of Linux's keep-alive.
var (
	linuxKeepalive = Rule{"Linux tcp_keepalive_timer",
		"Linux: the keep-alive timer sends a probe (a zero-length ACK at SND.UNA-1) once nothing has been received for the idle time, then one each interval while unanswered; any ACK received zeroes the probe count, and after an answered probe the next waits the full idle time from that receipt.",
		"Linux net/ipv4/tcp_timer.c tcp_keepalive_timer; tcp_output.c tcp_write_wakeup, tcp_xmit_probe_skb"}
	linuxAbort = Rule{"Linux keepalive abort",
		"Linux: when the probes out reach tcp_keepalive_probes (TCP_KEEPCNT), tcp_send_active_reset sends RST+ACK at SND.NXT and tcp_write_err fails the socket with ETIMEDOUT.",
		"Linux net/ipv4/tcp_timer.c tcp_keepalive_timer"}
	linuxUserTimeout = Rule{"Linux TCP_USER_TIMEOUT",
		"Linux: with TCP_USER_TIMEOUT set it replaces the probe count: the keep-alive timer drops the connection (RST+ACK, ETIMEDOUT) at the first firing where the time since the last receive is at least the user timeout and a probe is out.",
		"Linux net/ipv4/tcp_timer.c tcp_keepalive_timer; man 7 tcp"}
	linuxRetries2 = Rule{"Linux tcp_retries2",
		"Linux: when the retransmission timer fires, after at least one retransmission by it, the connection is dropped (tcp_write_err: ETIMEDOUT, no RST) once the time tcp_retries2 allows has passed since the first retransmission (retrans_stamp) -- the time 200 ms doubling up to 120 s would take for tcp_retries2 retransmissions, 924.6 s for the default 15 -- however many retransmissions that took.",
		"Linux net/ipv4/tcp_timer.c tcp_write_timeout, retransmits_timed_out, tcp_model_timeout; tcp_output.c tcp_retransmit_skb (retrans_stamp)"}
	linuxUserTimeoutData = Rule{"Linux TCP_USER_TIMEOUT (data)",
		"Linux: with TCP_USER_TIMEOUT set and data unacknowledged, the connection is dropped (ETIMEDOUT, no RST) once the user timeout has passed since the first retransmission by the timer; the retransmission timer is clamped to fire then.",
		"Linux net/ipv4/tcp_timer.c tcp_write_timeout, tcp_clamp_rto_to_user_timeout; man 7 tcp"}
	linuxSynRetries = Rule{"Linux tcp_syn_retries",
		"Linux: a connect's SYN is retransmitted after 1 s (TCP_TIMEOUT_INIT), every 1 s for the first tcp_syn_linear_timeouts (4) retransmissions, then doubling; the connect fails (ETIMEDOUT, no RST) at the first timeout with tcp_syn_retries + tcp_syn_linear_timeouts retransmissions gone, or the time tcp_model_timeout gives tcp_syn_retries with a 1 s base (127 s for 6) passed since the SYN: 10 retransmissions and 131 s by default, short of RFC 9293's 3 minutes; TCP_USER_TIMEOUT replaces that time, counted from the SYN.",
		"Linux net/ipv4/tcp_timer.c tcp_write_timeout, retransmits_timed_out, tcp_retransmit_timer; ip-sysctl.rst tcp_syn_linear_timeouts"}
	linuxSynAckRetries = Rule{"Linux tcp_synack_retries",
		"Linux: a half-open connection's SYN-ACK is sent again 1 s (TCP_TIMEOUT_INIT) after the first, then doubling, tcp_synack_retries (5) times, rounded by the timer wheel; at the next timeout, about 63 s after the first, the request is dropped without a word, and a segment for it later is answered with a reset. A duplicate SYN draws a SYN-ACK at once, which does not count.",
		"Linux net/ipv4/inet_connection_sock.c reqsk_timer_handler; net/ipv4/tcp_minisocks.c tcp_check_req (inet_rtx_syn_ack); ip-sysctl.rst tcp_synack_retries"}
	linuxWindowProbe = Rule{"Linux tcp_probe_timer",
		"Linux: while the peer's window is closed and data waits, an ACK at SND.UNA-1 without data (tcp_write_wakeup, tcp_xmit_probe_skb: a keep-alive probe's shape) goes one RTO after the window closed, then each backed-off RTO (tcp_probe0_when: the RTO doubled per probe, at most 120 s), counted from the ACK that answers the probe before, backed off no more than tcp_retries2 times, answered or not (tcp_probe0_when); no keep-alive probe goes while data waits. Answered probes go on for ever (RFC 1122 4.2.2.17); unanswered ones end the connection after tcp_retries2 of them, or TCP_USER_TIMEOUT after the first.",
		"Linux net/ipv4/tcp_timer.c tcp_probe_timer; net/ipv4/tcp_output.c tcp_send_probe0, tcp_write_wakeup, tcp_xmit_probe_skb; net/ipv4/tcp_input.c tcp_ack_probe"}
	linuxTimerWheel = Rule{"Linux timer wheel",
		"Linux's timer wheel fires a timeout late, rounded up to the granularity of the level it lands in: at HZ=250, 1 s fires after 1.024 s and 2 s after 2.016 s, so probes are that far apart on a real kernel.",
		"Linux kernel/time/timer.c calc_wheel_index (since 4.8)"}
)
