package live

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewLab's steps, as named by the failure-injection hook (tests only).
const (
	stepPeer    = "peer"    // the helper child, with its namespace, is running
	stepUnshare = "unshare" // the tester namespace exists
	stepVeth    = "veth"    // the veth pair exists in it
	stepMove    = "move"    // the peer end is in the peer namespace
	stepUp      = "up"      // the tester end is up
	stepPacket  = "packet"  // the AF_PACKET sockets are bound
	stepReturn  = "return"  // the thread is back in its namespace
	stepSetup   = "setup"   // the helper has configured the peer end
	stepCarrier = "carrier" // the tester end's carrier is up
	stepStack   = "stack"   // gVisor's stack is running on the link
)

var errInjected = errors.New("injected failure")

func (c *config) failAt(step string) error {
	if c.hooks != nil && c.hooks.failAt == step {
		return fmt.Errorf("live: %s: %w", step, errInjected)
	}
	return nil
}

// tester is the kernel-side plumbing of the tester: the AF_PACKET socket on
// the tester's veth end, which is also the only thing that keeps the tester
// namespace alive once NewLab's thread has left it.
type tester struct {
	fd      int               // AF_PACKET socket, -1 once closed
	stamps  *stamper          // the kernel's timestamps of the frames on the wire
	ifindex int               // the tester end's index, in the tester namespace
	nsIno   uint64            // the tester namespace's inode, for tests
	sub     *nl.NetlinkSocket // link notifications from the tester namespace; NewLab closes it
}

func (t *tester) closeSub() {
	if t.sub != nil {
		t.sub.Close()
		t.sub = nil
	}
}

func (t *tester) close() {
	t.closeSub()
	if t.stamps != nil {
		t.stamps.close()
		t.stamps = nil
	}
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
}

// makeTester creates the tester namespace and its end of the veth pair, on
// a locked OS thread that enters the new namespace and leaves it again. The
// namespace is never named or mounted: afterwards only the returned
// socket (and, until NewLab closes it, the notification socket) refers to
// it, so closing them destroys the namespace and the veth pair with it, and
// so does the process's death, however it dies.
func makeTester(c *config, peerPID int) (*tester, error) {
	enter := func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("%w: unshare(CLONE_NEWNET): %v", ErrNotRoot, err)
			}
			return fmt.Errorf("live: creating the tester namespace: %v", err)
		}
		return nil
	}
	return visitNamespace(enter, func() (*tester, error) {
		t, err := buildTester(c, peerPID)
		if err == nil {
			err = c.failAt(stepReturn)
		}
		return t, err
	})
}

// visitNamespace runs build on a locked OS thread that enter has moved into
// another network namespace, and brings the thread back. On an error the
// tester build returned is closed. A thread that cannot come back stays
// locked, so that Go discards it when the goroutine ends rather than run
// other goroutines in the wrong namespace.
func visitNamespace(enter func() error, build func() (*tester, error)) (*tester, error) {
	type result struct {
		t   *tester
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("live: opening this thread's network namespace: %v", err)}
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		t, err := build()
		if serr := netns.Set(orig); serr != nil {
			if t != nil {
				t.close()
			}
			ch <- result{nil, fmt.Errorf("live: returning to the original network namespace: %v", serr)}
			return
		}
		runtime.UnlockOSThread()
		if err != nil && t != nil {
			t.close()
			t = nil
		}
		ch <- result{t, err}
	}()
	r := <-ch
	return r.t, r.err
}

// buildTester runs on the locked thread, inside the new namespace. On an
// error it releases what it made; the namespace itself goes when the
// thread leaves it.
func buildTester(c *config, peerPID int) (_ *tester, err error) {
	t := &tester{fd: -1}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), &st); err != nil {
		return nil, fmt.Errorf("live: reading the tester namespace's inode: %v", err)
	}
	t.nsIno = st.Ino
	if c.hooks != nil && c.hooks.testerNS != nil {
		c.hooks.testerNS(st.Ino)
	}
	if err := c.failAt(stepUnshare); err != nil {
		return nil, err
	}
	if err := disableIPv6(); err != nil {
		return nil, fmt.Errorf("live: tester namespace: %v", err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("live: opening netlink in the tester namespace: %v", err)
	}
	defer h.Close()
	// Subscribed before anything changes, so the tester end's carrier
	// notification cannot be missed; NewLab waits for it once the peer end
	// is up.
	t.sub, err = nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		return nil, fmt.Errorf("live: subscribing to link notifications in the tester namespace: %v", err)
	}

	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: c.testerIf, HardwareAddr: c.testerMAC, MTU: mtu},
		PeerName:         c.peerIf,
		PeerHardwareAddr: c.peerMAC,
		PeerMTU:          mtu,
	}
	if err := h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("live: creating the veth pair %s/%s: %v", c.testerIf, c.peerIf, err)
	}
	if err := c.failAt(stepVeth); err != nil {
		return nil, err
	}
	peer, err := h.LinkByName(c.peerIf)
	if err != nil {
		return nil, fmt.Errorf("live: finding %s: %v", c.peerIf, err)
	}
	if err := h.LinkSetNsPid(peer, peerPID); err != nil {
		return nil, fmt.Errorf("live: moving %s into the peer namespace: %v", c.peerIf, err)
	}
	if err := c.failAt(stepMove); err != nil {
		return nil, err
	}
	link, err := h.LinkByName(c.testerIf)
	if err != nil {
		return nil, fmt.Errorf("live: finding %s: %v", c.testerIf, err)
	}
	t.ifindex = link.Attrs().Index
	// Up, with no address: the tester namespace's own kernel then answers
	// nothing (no ARP, no ICMP: it forwards nothing and owns no address);
	// only gVisor, through the packet socket, speaks on this link.
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("live: bringing %s up: %v", c.testerIf, err)
	}
	if err := c.failAt(stepUp); err != nil {
		return nil, err
	}
	// After the link is up: binding to a device that is down marks the
	// socket with ENETDOWN, which its first read returns.
	t.fd, err = packetSocket(t.ifindex)
	if err != nil {
		return nil, fmt.Errorf("live: opening the packet socket on %s: %v", c.testerIf, err)
	}
	if c.OnSegment != nil { // the stamps time segments for it, and only for it
		sfd, err := stampSocket(t.ifindex)
		if err != nil {
			return nil, fmt.Errorf("live: opening the timestamping socket on %s: %v", c.testerIf, err)
		}
		t.stamps = newStamper(sfd)
	}
	if err := c.failAt(stepPacket); err != nil {
		return nil, err
	}
	return t, nil
}

// packetSocket opens an AF_PACKET socket that receives the frames arriving
// at ifindex, and only those.
//
// It is opened with protocol 0, so it receives nothing until it is bound,
// and the filter is attached before that. The filter keeps only frames whose
// packet type is host, broadcast or multicast: it drops frames the
// namespace sends (outgoing) and frames addressed to another station. That
// matters: gVisor's fdbased dispatcher stops reading for good when it reads
// a frame not addressed to its MAC.
func packetSocket(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %v", err)
	}
	filter := []unix.SockFilter{
		// A = skb->pkt_type (a classic BPF ancillary load).
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: skfAdOff + skfAdPkttype},
		// PACKET_HOST 0, BROADCAST 1, MULTICAST 2 pass; OTHERHOST 3,
		// OUTGOING 4 (and anything newer) do not.
		{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: unix.PACKET_OTHERHOST, Jt: 1, Jf: 0},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: unsafe.SliceData(filter)}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("attaching the packet-type filter: %v", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %v", err)
	}
	// A pending socket error would end gVisor's reading at its first read;
	// reading SO_ERROR clears it, and there should be none.
	if soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soerr != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("after bind: error %v %v", unix.Errno(soerr), err)
	}
	return fd, nil
}

// Classic BPF's ancillary data (linux/filter.h): loads at SKF_AD_OFF
// (-0x1000, as the unsigned offset BPF_ABS takes) plus SKF_AD_PKTTYPE read
// the packet's type instead of its bytes.
const (
	skfAdOff     = 0xfffff000
	skfAdPkttype = 4
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// macFor derives a locally administered unicast MAC from an IPv4 address
// (02:00:a:b:c:d), so captures are the same on every run.
func macFor(a [4]byte) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x00, a[0], a[1], a[2], a[3]}
}
