package profile

import (
	"fmt"
	"io"
	"time"

	"kasim/stack"
)

// gvisorSystem is gVisor's netstack as it is: the engine under every kasim
// host, with nothing shaped. Defaults from pkg/tcpip/transport/tcp
// (DefaultKeepaliveIdle, DefaultKeepaliveInterval, DefaultKeepaliveCount).
var gvisorSystem = posix{
	name: "gvisor", title: "gVisor netstack", owner: "gVisor's", dialect: "linux",
	idle: 2 * time.Hour, interval: 75 * time.Second, count: 9,
	abortError: "ETIMEDOUT",
	lateArm:    true,
	measured:   true,
	measuredAgainst: "modelled from gVisor's source (pkg/tcpip/transport/tcp), the engine under every kasim host;\n" +
		"  measured against gVisor itself (the version kasim is built with) in real time on a TAP device, 2026-12-02:\n" +
		"  sudo kasim conform --dut gvisor (the 14 built-in scenarios it can express agree)",
	keys:       []string{"hz", "abort", "user-timeout", "arm"},
	describeAs: describeLinuxLike,
	citations: Citations{
		Probe:         []Rule{gvisorKeepalive},
		Rearm:         []Rule{gvisorKeepalive},
		Abort:         []Rule{gvisorAbort},
		Options:       linuxOpts,
		UserTimeout:   []Rule{gvisorUserTimeout},
		OptionRestart: []Rule{gvisorOptionRestart},
		WindowProbe:   []Rule{gvisorWindowProbe},
		Connect:       linuxConnect,
		abort: func(count, unanswered int, _ time.Duration) []Rule {
			if unanswered < count {
				return []Rule{gvisorUserTimeout} // the user timeout came first
			}
			return []Rule{gvisorAbort}
		},
	},
}

// Rules of gVisor's keep-alive.
var (
	gvisorKeepalive = Rule{"gVisor keepalive",
		"gVisor netstack: defaults 2 h / 75 s / 9; a zero-length probe at SND.NXT-1 each time the timer fires with nothing received; any processed inbound segment restarts the idle timer and zeroes the unanswered count.",
		gvConnect}
	gvisorAbort = Rule{"gVisor keepalive abort",
		"gVisor netstack: after count unanswered probes the endpoint fails with ErrTimeout (ETIMEDOUT to the application) and sends no reset.",
		gvConnect}
	gvisorUserTimeout = Rule{"gVisor TCP_USER_TIMEOUT",
		"With TCP_USER_TIMEOUT set, the keep-alive timer drops the connection, before the count, at the first firing where the time since the last received ACK is at least the user timeout and a probe is unanswered (as Linux's tcp_keepalive_timer does).",
		gvConnect}
	gvisorWindowProbe = Rule{"gVisor zero window probe",
		"gVisor netstack: while the peer's window is closed and data waits, its retransmission timer sends an ACK at SND.UNA-1 carrying one acknowledged octet, the RTO doubled before each; it gives up (ETIMEDOUT) after 15 unanswered probes, or once TCP_USER_TIMEOUT has passed since the window closed, answered or not.",
		"gVisor pkg/tcpip/transport/tcp/snd.go sendZeroWindowProbe, enableZeroWindowProbing, retransmitTimerExpired"}
	gvisorOptionRestart = Rule{"gVisor option restarts idle",
		"gVisor netstack: setting SO_KEEPALIVE or any keep-alive option restarts the idle timer and zeroes the unanswered count, even mid-probe. (Linux counts a new TCP_KEEPIDLE from the last segment received, and keeps its probe count.)",
		gvEndpoint}
)

// describeLinuxLike writes the linux and gvisor profiles, which share
// gVisor's engine and Linux's calls.
func describeLinuxLike(x posix, p Profile, w io.Writer) error {
	how := x.measuredAgainst
	rst := "no RST: the endpoint just fails with ETIMEDOUT"
	if x.abortRST {
		rst = "RST+ACK at SND.NXT, then ETIMEDOUT to the application"
	}
	ut := "drops at whichever comes first, the user timeout or the probe count"
	if x.userTimeoutReplacesCount {
		ut = "replaces the probe count: drops at the first probe time with nothing received for the user timeout and a probe unanswered"
	}
	_, err := fmt.Fprintf(w, `%s (%s): %s
  defaults          idle %v, interval %v, %d probes (TCP_KEEPIDLE 1-32767 s, TCP_KEEPINTVL 1-32767 s, TCP_KEEPCNT 1-127; else EINVAL)
  probe             zero-length ACK at SND.NXT-1 (= SND.UNA-1: probes go only while nothing is unacknowledged)
  idle counts from  the last segment received (data or pure ACK); sending does not restart it
  gives up          at last received + idle + count x interval: %s%s
  TCP_USER_TIMEOUT  %s%s
  timers            %s%s
`, x.title, x.name, how, x.idle, x.interval, x.count, rst, x.setMark("abort"), ut, x.setMark("user-timeout"), p.TimerSlack(), x.setMark("hz"))
	if err != nil {
		return err
	}
	arm := "armed once the\n                    connection is established (tcp_finish_connect)"
	if x.lateArm {
		arm = "armed only by the\n                    first segment processed after the handshake, or an option set once established: a\n                    connection that stays quiet is never probed (handleSegmentsLocked; measured against\n                    gVisor in real time, kasim conform --dut gvisor)"
	}
	changes := "setting any keep-alive option on an established connection restarts the\n                    idle time and forgets unanswered probes (gVisor's resetKeepaliveTimer)"
	if x.keepTimerKept {
		changes = "a new TCP_KEEPIDLE counts from the last segment received, at once if that\n                    is past; TCP_KEEPINTVL, TCP_KEEPCNT and SO_KEEPALIVE set again move no timer\n                    and keep unanswered probes counted (tcp_sock_set_keepidle_locked,\n                    tcp_set_keepalive; gVisor restarts both, and kasim puts them back)"
	}
	_, err = fmt.Fprintf(w, `  before connect    options are accepted (in SYN-SENT too) and keep-alive is %s%s
  option changes    %s
`, arm, x.setMark("arm"), changes)
	if err == nil {
		err = x.describeRetransmission(w)
	}
	after := "an orphan in FIN-WAIT-2 goes on probing until gVisor's FIN-WAIT-2 timeout (60 s)"
	if x.closeStopsKeepAlive {
		after = "no more probes: an orphan waits out FIN-WAIT-2 as a timewait socket, which has no\n                    keep-alive timer (tcp_rcv_state_process, tcp_time_wait)"
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "  after close()     %s\n", after)
	}
	return err
}

// describeRetransmission writes how retransmission gives a connection up.
func (x posix) describeRetransmission(w io.Writer) error {
	if x.retries2 == 0 {
		_, err := fmt.Fprint(w, `  retransmission    gVisor's: RFC 6298 RTO (200 ms to 120 s), a tail loss probe, and the
                    connection dropped (ETIMEDOUT, no RST) after 15 retransmissions, or
                    TCP_USER_TIMEOUT after the transmission before the first timeout
  connect           the SYN again after 1, 2, 4 ... 64 s; ETIMEDOUT on the connect 127 s after
                    the SYN, once the next timeout would pass 120 s
`)
		return err
	}
	_, err := fmt.Fprintf(w, `  retransmission    the kernel's give-up rule (tcp_write_timeout): unacknowledged data is
                    dropped (ETIMEDOUT, no RST) at the first retransmission timeout %v
                    after the first retransmission by the timer (tcp_retries2=%d, through
                    tcp_model_timeout; a tail loss probe does not count), or TCP_USER_TIMEOUT
                    after it when set; the RTO is gVisor's (RFC 6298, 200 ms to 120 s), which
                    the kernel's exceeds by a few ms (its srtt, and the timer wheel)%s
`, stack.RetransmitTimeout(x.retries2), x.retries2, x.setMark("tcp_retries2"))
	if err != nil || x.synRetries == 0 {
		return err
	}
	_, err = fmt.Fprintf(w, `  connect           the SYN again after 1 s, 1 s apart for the first %d retransmissions
                    (tcp_syn_linear_timeouts), then doubling; ETIMEDOUT on the connect, no
                    RST, at the first timeout past %d retransmissions or %v since the SYN
                    (tcp_syn_retries=%d, through tcp_model_timeout with a 1 s base), or
                    TCP_USER_TIMEOUT since the SYN when set%s%s
`, x.synLinear, x.synRetries+x.synLinear, stack.SynTimeout(x.synRetries),
		x.synRetries, x.setMark("tcp_syn_retries"), x.setMark("tcp_syn_linear_timeouts"))
	if err != nil || x.synAckRetries == 0 {
		return err
	}
	_, err = fmt.Fprintf(w, `  accept            a half-open connection's SYN-ACK again after 1 s, doubling, %d times
                    (tcp_synack_retries); the request dropped at the next timeout, %v
                    after the first, and what comes for it later reset%s; TCP_DEFER_ACCEPT on
                    the listener: seconds kept as SYN-ACK timeouts (5 is 3, read back as 7), the
                    bare final ACK dropped, the SYN-ACK again from the last of them, the request
                    dropped past both them and the retries (secs_to_retrans, syn_ack_recalc)
`, x.synAckRetries, stack.SynAckTimeout(x.synAckRetries), x.setMark("tcp_synack_retries"))
	return err
}
