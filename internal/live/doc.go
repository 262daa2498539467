// Package live runs a TCP scenario against a real TCP stack, the machine's
// own Linux kernel, in real time, with gVisor's netstack as the tester at
// the other end of the wire. Where kasim's simulations say what a stack
// should do on a virtual clock, a Lab shows what the kernel does: its
// keep-alive probes, their timing, its reset, the error a blocked recv gets.
//
// # What a Lab is
//
// NewLab builds two network namespaces joined by a veth pair:
//
//   - the peer namespace holds the kernel side: a helper process (this very
//     program, re-executed) that makes socket calls on request (Peer) and
//     reports, with CLOCK_MONOTONIC timestamps, when they return: connect,
//     accept, recv pending in the background like an application blocked
//     in recv, the keep-alive socket options, close; it can also start any
//     program inside the namespace (Peer.Exec);
//   - the tester namespace holds the other veth end, with no address, so its
//     own kernel never answers anything. An AF_PACKET socket on it carries
//     every frame to and from a gVisor stack in this process (Stack,
//     ListenTCP, DialTCP), on a real clock. Every TCP segment in and out can
//     be observed (Options.OnSegment) and captured (Options.PCAP), and the
//     tester can fall silent in either direction or both (SetSilence).
//
// The test's own namespace is never touched: no interface, address or route
// appears there.
//
// # Why the namespaces have no names
//
// A named namespace (ip netns add, a bind mount under /run/netns) outlives
// the process that made it; a kasim killed with SIGKILL would leave it, and
// its veth pair, behind. A Lab's namespaces are referenced only by things
// the kernel takes down with the process: the peer namespace by the helper,
// which gets SIGKILL when its parent dies (Pdeathsig; the helper is started
// from a thread that lives as long as the process, since the signal really
// follows the thread), and the tester
// namespace by the AF_PACKET socket, made on a locked OS thread that enters
// the new namespace and leaves it again. So a Lab leaves nothing behind
// however kasim ends: Close, a return from main, Ctrl-C or SIGKILL. There
// is no need to catch SIGINT to clean up; Close matters only to a process
// that goes on after its Lab.
//
// # What a caller must do
//
//   - Run as root (CAP_NET_ADMIN and CAP_SYS_ADMIN); otherwise NewLab fails
//     with an error wrapping ErrNotRoot that says what is missing.
//   - Call MaybeRunPeer first thing in main, and in TestMain in a test binary
//     that builds Labs: NewLab starts the helper by re-executing
//     /proc/self/exe with KASIM_LIVE_PEER=1, and in that copy MaybeRunPeer
//     runs the helper and exits.
//   - Close the Lab when done with it.
//
// # The wire
//
// Both sides have static neighbour entries (the kernel a permanent one for
// the tester), IPv6 is off in both namespaces, and the veth end in the peer
// namespace computes checksums in software (veth would otherwise hand the
// tester segments with only the pseudo-header sum filled in). So the wire
// carries TCP over IPv4 and nothing else, with correct checksums, and a
// silenced tester cannot stop the kernel's probes by failing neighbour
// resolution.
//
// The veth carrier is up well under a millisecond after the peer end is
// set up. NewLab does not sleep for it: it waits for each end's carrier
// notification, which the kernel sends after activating the device's queue
// (polling the state could see "up" a moment before frames stop being
// dropped). Measured on a 2-core machine over 26 labs: 0.13-0.68 ms (median
// 0.27) from "link up" to the peer end's notification, 0.37-1.25 ms to the
// tester end's (an upper bound: it is read after the helper's reply). The
// helper takes 5-8 ms to start, a whole NewLab 30-55 ms.
//
// # Timing
//
// Times from the two processes compare directly: both read CLOCK_MONOTONIC
// (Now, Mono). A report's time is when the blocking call returned in the
// helper. A segment's is the kernel's timestamp of the frame at the
// tester's veth end (Segment.KernelTime), read from a second packet
// socket: gVisor's own goroutines see a frame typically 0.1 ms later, but
// up to 4 ms later under four busy loops on two cores, and 8 ms once on a
// CI machine, more than the kernel's spread. Under that load the kernel's
// own timers stay within one jiffy (4 ms) of their time; a helper's report
// can be a few ms late.
//
// What the tests measured on Linux 6.18 with HZ=250 (keep-alive idle 2 s,
// interval 1 s, 3 probes, 20 runs): the first probe 2.000-2.031 s after the
// kernel's last receive, the next ones 1.024 s apart (within 2 ms), the RST
// (flags RA) 1.024 s after the third, and the pending recv's ETIMEDOUT at
// the same moment; with the tester answering each probe, probes 2.016 s
// apart. The odd numbers are the timer wheel's: timers more than 63
// jiffies away expire on 8-jiffy (32 ms) boundaries.
package live
