package live

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// ErrNotRoot is wrapped by the error NewLab returns when the process may not
// create network namespaces (it is not root, or lacks CAP_NET_ADMIN or
// CAP_SYS_ADMIN). Test it with errors.Is.
var ErrNotRoot = errors.New("live: needs root (CAP_NET_ADMIN) to create network namespaces")

// Sysctls are the kernel settings Peer.Sysctl sets: TCP's, which every
// network namespace has its own of (net.ipv4.*), so a lab's change ends
// with its namespace.
var Sysctls = []string{
	"tcp_retries1", "tcp_retries2", "tcp_syn_retries", "tcp_synack_retries", "tcp_syn_linear_timeouts",
	"tcp_orphan_retries", "tcp_keepalive_time", "tcp_keepalive_intvl", "tcp_keepalive_probes",
}

// Options configure a Lab. The zero value gives the defaults below, and no
// capture or observer.
type Options struct {
	// TesterAddr is the tester's (gVisor's) address and prefix; default
	// 10.99.0.1/24. PeerAddr is the kernel side's; default 10.99.0.2/24.
	// Both must be IPv4 and in the same subnet. They exist only inside the
	// lab's namespaces, so they clash with nothing on the machine.
	TesterAddr, PeerAddr netip.Prefix

	// TesterIf and PeerIf name the two ends of the veth pair; default kt0
	// and kp0. Each lives in its own namespace, so the names clash with
	// nothing outside.
	TesterIf, PeerIf string

	// PCAP, if set, receives a capture of every IP frame on the tester's
	// veth end, in both directions, with wall-clock timestamps (gVisor's
	// link/sniffer: pcap, LINKTYPE_RAW). Frames the silence switch drops on
	// the way in are in it (they were on the wire); frames it drops on the
	// way out are not (they never left). Writes are serialised; the first
	// write error stops the capture and is returned by Err and Close.
	PCAP io.Writer

	// OnSegment, if set, is called for every TCP segment the tester sends
	// or receives, dropped ones included. Calls are serialised, come from
	// gVisor's goroutines, and must return quickly without calling into
	// the Lab. Once Close has begun it is not called again. Each segment
	// waits, holding up gVisor's handling of it, for the kernel's
	// timestamp of its frame: usually microseconds, at most 200 ms, after
	// which the tap's own time is used.
	OnSegment func(Segment)

	// PeerStderr, if set, receives the peer helper's standard error (its
	// diagnostics, and the output of programs started by Peer.Exec).
	// Either way its last few kilobytes are quoted when the helper dies.
	PeerStderr io.Writer

	// DUT, if set, is a driver program (argv) for a stack under test
	// (docs/dut-protocol.md): instead of the kernel on a veth end, the
	// peer namespace holds a TAP device (PeerIf, default kd0) and the
	// driver, which attaches its stack to it and makes the socket calls
	// the Peer asks for. DUTEnv is added to its environment.
	DUT    []string
	DUTEnv []string

	// hooks lets this package's tests inject failures; nil outside them.
	hooks *labHooks
}

// labHooks are test-only: failAt names a NewLab step (see the step
// constants) at which NewLab fails as if that step had gone wrong;
// peerStarted and testerNS learn the helper's pid and the tester
// namespace's inode as soon as they exist, so a test can check that a
// failed NewLab left neither behind.
type labHooks struct {
	failAt      string
	peerStarted func(pid int)
	testerNS    func(ino uint64)
}

// Silence says which directions the tester's link drops.
type Silence uint32

// The silence switch: SilenceIn drops frames arriving at the tester before
// gVisor sees them, SilenceOut drops the frames gVisor sends before they
// reach the wire, SilenceBoth does both: the peer falls silent. It drops
// IP frames only: the tester goes on answering ARP, as a dead peer in the
// simulation (which has no ARP) leaves address resolution alone.
const (
	SilenceNone Silence = 0
	SilenceIn   Silence = 1 << 0
	SilenceOut  Silence = 1 << 1
	SilenceBoth         = SilenceIn | SilenceOut
)

// String names the setting: none, in, out or both.
func (s Silence) String() string {
	switch s {
	case SilenceNone:
		return "none"
	case SilenceIn:
		return "in"
	case SilenceOut:
		return "out"
	case SilenceBoth:
		return "both"
	}
	return fmt.Sprintf("Silence(%d)", uint32(s))
}

// Direction is a segment's direction as seen from the tester.
type Direction int

// In: sent by the kernel, arriving at the tester. Out: sent by the tester.
const (
	In Direction = iota
	Out
)

// String returns "in" or "out".
func (d Direction) String() string {
	if d == In {
		return "in"
	}
	return "out"
}

// Mono is a CLOCK_MONOTONIC reading in nanoseconds. The Lab and the peer
// helper both read this clock, so their times compare directly.
type Mono int64

// Now reads CLOCK_MONOTONIC.
func Now() Mono {
	var ts unix.Timespec
	// CLOCK_MONOTONIC cannot fail on Linux; on an error ts stays zero.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return Mono(ts.Nano())
}

// Sub returns m-o.
func (m Mono) Sub(o Mono) time.Duration { return time.Duration(m - o) }

// Segment is one TCP segment seen at the tester's link.
type Segment struct {
	Dir Direction
	// At is when the segment was on the wire (CLOCK_MONOTONIC): the
	// kernel's timestamp of the frame at the tester's veth end if
	// KernelTime, else when gVisor's side of the link handled it, which
	// can be milliseconds later on a busy machine. Segments the silence
	// switch drops on the way out never reach the wire and always have
	// the latter.
	At         Mono
	KernelTime bool
	Src, Dst   netip.AddrPort
	Flags      header.TCPFlags
	Seq, Ack   uint32
	Len        int    // payload octets
	Window     uint16 // the raw window field, unscaled
	Dropped    bool   // the silence switch or the drop filter dropped it
	// DropReason is the drop filter's reason (Lab.SetDropFilter); empty
	// for the silence switch.
	DropReason string

	key segKey // matches the segment to the kernel's timestamp
}

// FlagString returns the flags as letters, e.g. "A", "SA", "RA".
func (s Segment) FlagString() string {
	var b strings.Builder
	for _, f := range []struct {
		bit header.TCPFlags
		c   byte
	}{{header.TCPFlagFin, 'F'}, {header.TCPFlagSyn, 'S'}, {header.TCPFlagRst, 'R'}, {header.TCPFlagPsh, 'P'}, {header.TCPFlagAck, 'A'}, {header.TCPFlagUrg, 'U'}, {header.TCPFlagEce, 'E'}, {header.TCPFlagCwr, 'C'}} {
		if s.Flags&f.bit != 0 {
			b.WriteByte(f.c)
		}
	}
	return b.String()
}

// String describes the segment on one line, tcpdump-like.
func (s Segment) String() string {
	d := ""
	if s.Dropped {
		d = " dropped"
	}
	return fmt.Sprintf("%s %s -> %s %s seq=%d ack=%d len=%d win=%d%s", s.Dir, s.Src, s.Dst, s.FlagString(), s.Seq, s.Ack, s.Len, s.Window, d)
}

// Result is the outcome of one call the peer helper made: Ret is the call's
// return value (a new fd, an option's value, a byte count, a pid) and Errno
// its error, 0 on success. At is when the call returned in the helper.
type Result struct {
	Ret   int
	Errno syscall.Errno
	// Name is the error's name as the peer gave it, which is what counts
	// for a driver whose system numbers errors its own way.
	Name string
	At   Mono
}

// Err returns Errno as an error, or nil if the call succeeded.
func (r Result) Err() error {
	if r.Errno == 0 {
		return nil
	}
	return r.Errno
}

// ErrnoName returns the errno's symbolic name ("ETIMEDOUT"), or "" for
// none.
func (r Result) ErrnoName() string { return nameOf(r.Name, r.Errno) }

// nameOf is an error's name as the peer gave it, or else Linux's name for
// its number.
func nameOf(given string, e syscall.Errno) string {
	if given != "" {
		return given
	}
	return errnoName(e)
}

// ErrnoByName returns Linux's number for an errno's name ("ETIMEDOUT").
func ErrnoByName(name string) (syscall.Errno, bool) {
	// x/sys/unix names errnos but has no lookup by name; there are
	// fewer than 150 on Linux.
	for e := syscall.Errno(1); e < 256; e++ {
		if unix.ErrnoName(e) == name {
			return e, true
		}
	}
	return 0, false
}

// errnoNumber is ErrnoByName, with EIO for a name Linux lacks: a driver's
// error is still an error, and its name is kept beside the number.
func errnoNumber(name string) syscall.Errno {
	if e, ok := ErrnoByName(name); ok {
		return e
	}
	return unix.EIO
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		return ""
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// EventKind names an asynchronous report from the peer helper.
type EventKind string

// The asynchronous reports: a non-blocking connect finished (Errno is its
// SO_ERROR); a pending accept returned (Ret is the new fd); a pending recv
// returned (Ret is the byte count, 0 at end of stream); a program started
// by Exec ended (Ret is its exit status, -1 if a signal killed it).
const (
	EventConnect EventKind = "connect"
	EventAccept  EventKind = "accept"
	EventRecv    EventKind = "recv"
	EventExit    EventKind = "exit"
	// EventOutput is a line a program started by Exec wrote to its
	// standard output (Detail, without the newline; FD is its pid), timed
	// when the helper read it.
	EventOutput EventKind = "output"
)

// Event is an asynchronous report from the peer helper. Req is the id of
// the request that started the operation, FD the socket it concerns (for
// EventExit, the program's pid), At when the blocking call returned.
type Event struct {
	Kind   EventKind
	Req    uint64
	FD     int
	Ret    int
	Errno  syscall.Errno
	Name   string // the error's name as the peer gave it
	At     Mono
	Detail string // EventAccept: the remote address; EventExit: how it ended
}

// ErrnoName returns the errno's symbolic name, or "" for none.
func (e Event) ErrnoName() string { return nameOf(e.Name, e.Errno) }

// String describes the report on one line.
func (e Event) String() string {
	s := fmt.Sprintf("%s fd=%d ret=%d", e.Kind, e.FD, e.Ret)
	if e.Errno != 0 {
		s += " " + errnoName(e.Errno)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}
