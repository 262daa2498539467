package live

import (
	"context"
	"errors"
	"fmt"
	"kasim/internal/caps"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/link/sniffer"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	mtu   = 1500
	nicID = tcpip.NICID(1)
)

// config is Options with the defaults filled in and the derived values.
type config struct {
	Options
	testerIf, peerIf   string
	tester, peer       netip.Prefix
	testerMAC, peerMAC net.HardwareAddr
}

func (o Options) resolve() (*config, error) {
	c := &config{Options: o, testerIf: o.TesterIf, peerIf: o.PeerIf, tester: o.TesterAddr, peer: o.PeerAddr}
	if c.testerIf == "" {
		c.testerIf = "kt0"
	}
	if c.peerIf == "" {
		c.peerIf = "kp0"
		if len(o.DUT) > 0 {
			c.peerIf = "kd0"
		}
	}
	if !c.tester.IsValid() {
		c.tester = netip.MustParsePrefix("10.99.0.1/24")
	}
	if !c.peer.IsValid() {
		c.peer = netip.MustParsePrefix("10.99.0.2/24")
	}
	for _, n := range []string{c.testerIf, c.peerIf} {
		if len(n) == 0 || len(n) >= unix.IFNAMSIZ || n == "lo" {
			return nil, fmt.Errorf("live: interface name %q: want 1 to %d characters, not lo", n, unix.IFNAMSIZ-1)
		}
	}
	if c.testerIf == c.peerIf {
		return nil, fmt.Errorf("live: the tester and peer interfaces are both named %q", c.testerIf)
	}
	if !c.tester.Addr().Is4() || !c.peer.Addr().Is4() {
		return nil, fmt.Errorf("live: addresses %s and %s: both must be IPv4", c.tester, c.peer)
	}
	if c.tester.Masked() != c.peer.Masked() {
		return nil, fmt.Errorf("live: addresses %s and %s are not in one subnet", c.tester, c.peer)
	}
	if c.tester.Addr() == c.peer.Addr() {
		return nil, fmt.Errorf("live: the tester and the peer both have address %s", c.tester.Addr())
	}
	c.testerMAC = macFor(c.tester.Addr().As4())
	c.peerMAC = macFor(c.peer.Addr().As4())
	return c, nil
}

// Lab is a running lab: the peer helper in its namespace, the veth pair,
// and gVisor's stack on the tester's end. Create it with NewLab and release
// it with Close.
type Lab struct {
	cfg    *config
	peer   *Peer
	tester *tester
	st     *stack.Stack
	tap    *tap
	pcap   *pcapFilter
	// fdbased's eventfds, which it never closes itself.
	stopFDs []int

	// How long NewLab's link setup took (logged by the tests; the
	// package doc quotes typical values).
	peerStart   time.Duration // starting the helper until its hello
	peerCarrier time.Duration // the peer end's "up" until its carrier notification; with a driver, its start until its hello
	carrier     time.Duration // the same, until the tester end's notification

	errMu    sync.Mutex
	asyncErr error // the link reader stopped on its own

	closeOnce sync.Once
	closeErr  error
	closing   chan struct{}
}

// NewLab builds a lab. It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); a
// caller without them gets an error wrapping ErrNotRoot. Whatever NewLab
// fails at, it first undoes what it had done.
//
// The program must call MaybeRunPeer first thing in main (or TestMain):
// NewLab starts the helper by re-executing it.
func NewLab(opts Options) (_ *Lab, err error) {
	c, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if err := checkPrivileges(); err != nil {
		return nil, err
	}
	sniffer.LogPackets.Store(0) // gVisor logs every sniffed packet by default

	l := &Lab{cfg: c, closing: make(chan struct{})}
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
		}
	}()

	start := time.Now()
	if l.peer, err = startPeer(c); err != nil {
		return nil, err
	}
	l.peerStart = time.Since(start)
	if c.hooks != nil && c.hooks.peerStarted != nil {
		c.hooks.peerStarted(l.peer.pid)
	}
	if err := c.failAt(stepPeer); err != nil {
		return nil, err
	}

	if len(c.DUT) > 0 {
		if err := l.startDUT(); err != nil {
			return nil, err
		}
		if err := l.startStack(); err != nil {
			return nil, err
		}
		return l, nil
	}
	if l.tester, err = makeTester(c, l.peer.pid); err != nil {
		return nil, err
	}

	m, err := l.peer.call(request{
		Op:       opSetup,
		Ifname:   c.peerIf,
		Addr:     c.peer.String(),
		NeighIP:  c.tester.Addr().String(),
		NeighMAC: c.testerMAC.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("live: setting up %s in the peer namespace: %w", c.peerIf, err)
	}
	l.peerCarrier = time.Duration(m.Ret)
	linkUp := Mono(m.T) - Mono(m.Ret) // when the helper set the peer end up
	if err := c.failAt(stepSetup); err != nil {
		return nil, err
	}
	// The tester end's carrier came up with the peer end's; wait for its
	// own notification too, since gVisor transmits through it.
	if err := waitOperUp(l.tester.sub, l.tester.ifindex, 5*time.Second); err != nil {
		return nil, fmt.Errorf("live: waiting for %s's carrier: %v", c.testerIf, err)
	}
	// An upper bound: the notification may have waited in the socket.
	l.carrier = Now().Sub(linkUp)
	l.tester.closeSub()
	if err := c.failAt(stepCarrier); err != nil {
		return nil, err
	}

	if err := l.startStack(); err != nil {
		return nil, err
	}
	if err := c.failAt(stepStack); err != nil {
		return nil, err
	}
	return l, nil
}

// checkPrivileges fails early, with the reason, where creating namespaces
// would fail with a bare EPERM: unshare(CLONE_NEWNET) and setns need
// CAP_SYS_ADMIN, the veth and address work CAP_NET_ADMIN.
func checkPrivileges() error {
	if why := caps.MissingForNamespaces(); why != "" {
		return fmt.Errorf("%w: %s", ErrNotRoot, why)
	}
	return nil
}

// startStack puts gVisor on the packet socket: fdbased, the sniffer if a
// capture is wanted, the tap, and a stack with IPv4, ARP and TCP on a real
// clock.
func (l *Lab) startStack() error {
	c := l.cfg
	lower, err := fdbased.New(&fdbased.Options{
		FDs:            []int{l.tester.fd},
		MTU:            mtu,
		EthernetHeader: true,
		Address:        tcpip.LinkAddress(c.testerMAC),
		// One goroutine hands frames to the stack, so they arrive in
		// the order the wire had them.
		ProcessorsPerChannel: 1,
		ClosedFunc:           l.linkClosed,
	})
	if err != nil {
		return fmt.Errorf("live: opening gVisor's link on %s: %v", c.testerIf, err)
	}
	l.stopFDs = fdbasedStopFDs(lower)
	if c.PCAP != nil {
		l.pcap = &pcapFilter{w: c.PCAP}
		sn, err := sniffer.NewWithWriter(lower, l.pcap, mtu+64)
		if err != nil {
			stopUnattached(lower)
			return fmt.Errorf("live: starting the capture: %v", err)
		}
		lower = sn
	}
	l.tap = newTap(lower, c.OnSegment, l.tester.stamps)

	l.st = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
		Clock:              tcpip.NewStdClock(),
	})
	if err := l.st.CreateNIC(nicID, l.tap); err != nil {
		stopUnattached(lower)
		return fmt.Errorf("live: creating gVisor's NIC: %v", err)
	}
	// From here on Close's Destroy stops the link.
	if l.pcap != nil {
		if err := l.pcap.Err(); err != nil {
			return fmt.Errorf("live: writing the capture header: %v", err)
		}
	}
	addr := tcpip.AddrFrom4(c.tester.Addr().As4())
	if err := l.st.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr, PrefixLen: c.tester.Bits()},
	}, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("live: adding %s to gVisor's NIC: %v", c.tester, err)
	}
	subnet, err := tcpip.NewSubnet(tcpip.AddrFrom4(c.tester.Masked().Addr().As4()), tcpip.MaskFromBytes(net.CIDRMask(c.tester.Bits(), 32)))
	if err != nil {
		return fmt.Errorf("live: gVisor's route to %s: %v", c.tester.Masked(), err)
	}
	l.st.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: nicID}})
	// Like the kernel's permanent entry for the tester: no ARP on the
	// wire, and nothing for a silence to break but TCP.
	if err := l.st.AddStaticNeighbor(nicID, ipv4.ProtocolNumber, tcpip.AddrFrom4(c.peer.Addr().As4()), tcpip.LinkAddress(c.peerMAC)); err != nil {
		return fmt.Errorf("live: gVisor's neighbour entry for %s: %v", c.peer.Addr(), err)
	}
	return nil
}

// stopUnattached stops a link endpoint that never got attached to a stack:
// fdbased starts its packet-processing goroutines in New, and they end
// only when a dispatch loop does, so it is attached to a dispatcher that
// drops everything and detached at once.
func stopUnattached(ep stack.LinkEndpoint) {
	ep.Attach(nopDispatcher{})
	ep.Attach(nil)
}

type nopDispatcher struct{}

func (nopDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}
func (nopDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer)    {}

// linkClosed is fdbased's report that it stopped reading the packet
// socket. During Close that is expected; before, the tester has gone deaf.
func (l *Lab) linkClosed(terr tcpip.Error) {
	select {
	case <-l.closing:
		return
	default:
	}
	err := errors.New("live: gVisor's link stopped reading the packet socket")
	if terr != nil {
		err = fmt.Errorf("%v: %v", err, terr)
	}
	l.errMu.Lock()
	if l.asyncErr == nil {
		l.asyncErr = err
	}
	l.errMu.Unlock()
}

// Stack returns the tester's gVisor stack, for endpoints and options the
// Lab does not wrap. Its NIC is NIC(); it holds TesterAddr.
func (l *Lab) Stack() *stack.Stack { return l.st }

// NIC returns the id of the tester's NIC in Stack.
func (l *Lab) NIC() tcpip.NICID { return nicID }

// TesterAddr returns the tester's (gVisor's) address.
func (l *Lab) TesterAddr() netip.Addr { return l.cfg.tester.Addr() }

// PeerAddr returns the kernel side's address.
func (l *Lab) PeerAddr() netip.Addr { return l.cfg.peer.Addr() }

// Peer returns the client of the helper that makes the kernel's calls.
func (l *Lab) Peer() *Peer { return l.peer }

// ListenTCP listens on the tester's address and port, through gVisor.
func (l *Lab) ListenTCP(port uint16) (*gonet.TCPListener, error) {
	return gonet.ListenTCP(l.st, l.fullAddr(l.TesterAddr(), port), ipv4.ProtocolNumber)
}

// ListenTCPBuffer is ListenTCP with the listening socket's receive buffer
// set to rcvbuf octets first (0: gVisor's default), as SO_RCVBUF on a
// listener sets it for the connections it accepts.
func (l *Lab) ListenTCPBuffer(port uint16, rcvbuf int) (*gonet.TCPListener, error) {
	if rcvbuf == 0 {
		return l.ListenTCP(port)
	}
	var wq waiter.Queue
	ep, err := l.st.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if err != nil {
		return nil, fmt.Errorf("live: tester endpoint: %s", err)
	}
	ep.SocketOptions().SetReceiveBufferSize(int64(rcvbuf), true)
	if err := ep.Bind(l.fullAddr(l.TesterAddr(), port)); err != nil {
		ep.Close()
		return nil, fmt.Errorf("live: tester bind to %d: %s", port, err)
	}
	if err := ep.Listen(16); err != nil {
		ep.Close()
		return nil, fmt.Errorf("live: tester listen on %d: %s", port, err)
	}
	return gonet.NewTCPListener(l.st, &wq, ep), nil
}

// DialTCP connects from the tester to the peer's port, through gVisor.
func (l *Lab) DialTCP(ctx context.Context, port uint16) (*gonet.TCPConn, error) {
	return gonet.DialContextTCP(ctx, l.st, l.fullAddr(l.PeerAddr(), port), ipv4.ProtocolNumber)
}

func (l *Lab) fullAddr(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(a.As4()), Port: port}
}

// SetSilence sets the silence switch: which directions the tester's link
// drops from now on. Dropped segments still reach OnSegment (Dropped set).
func (l *Lab) SetSilence(s Silence) { l.tap.silence.Store(uint32(s & SilenceBoth)) }

// SetDropFilter has the tester's link drop each TCP segment f names a
// reason for, either way, while the silence switch lets it through: f
// sees the segment (Dir, addresses, flags, length; At is not yet set)
// and is called from the lab's goroutines, both directions at once. The
// observer sees a dropped segment with Dropped and the reason. Nil
// removes the filter.
func (l *Lab) SetDropFilter(f func(Segment) string) {
	if f == nil {
		l.tap.filter.Store(nil)
		return
	}
	l.tap.filter.Store(&f)
}

// Silence returns the silence switch's setting.
func (l *Lab) Silence() Silence { return Silence(l.tap.silence.Load()) }

// Err returns the first failure that happened in the background: the
// capture could not be written, or gVisor's link stopped reading. nil
// means the lab is sound.
func (l *Lab) Err() error {
	l.errMu.Lock()
	err := l.asyncErr
	l.errMu.Unlock()
	if err != nil {
		return err
	}
	if l.pcap != nil {
		if err := l.pcap.Err(); err != nil {
			return fmt.Errorf("live: writing the capture: %v", err)
		}
	}
	return nil
}

// Close tears the lab down: it unplugs gVisor from the wire (so OnSegment
// is not called again and the kernel sees nothing more), destroys its stack
// (aborting its connections), the
// packet socket (and with it the tester namespace and the veth pair), and
// the helper (and with it the peer namespace). It returns the first error
// met, or Err's. Calling it again does nothing and returns the same.
//
// Close is for a process that goes on after the lab. A process that exits
// or is killed, by SIGINT, SIGKILL or a crash, leaves nothing behind either:
// the kernel closes the socket and Pdeathsig kills the helper.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	errs := []error{l.Err()}
	close(l.closing)
	if l.st != nil {
		// Unplug first (see tap.shut), so the kernel sees nothing of
		// the teardown either. Destroy then removes the NIC, which
		// stops and waits for fdbased's goroutines, so the socket is no
		// longer read when it closes.
		l.tap.shut()
		l.st.Destroy()
	}
	closeStopFDs(l.stopFDs)
	if l.tester != nil {
		l.tester.close()
	}
	if l.peer != nil {
		errs = append(errs, l.peer.close())
	}
	return errors.Join(errs...)
}

// fdbasedStopFDs finds the eventfd each of fdbased's dispatchers creates to
// be told to stop. fdbased never closes them (runsc, its main user, keeps
// its link for the life of the process), so without this every Lab would
// leak one descriptor. They are unexported, hence reflection; if a gVisor
// upgrade moves them this finds nothing, and the cleanup test notices the
// leak.
func fdbasedStopFDs(ep stack.LinkEndpoint) []int {
	v := reflect.ValueOf(ep)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	ds := v.Elem().FieldByName("inboundDispatchers")
	if !ds.IsValid() || ds.Kind() != reflect.Slice {
		return nil
	}
	var fds []int
	for i := 0; i < ds.Len(); i++ {
		d := ds.Index(i)
		for (d.Kind() == reflect.Interface || d.Kind() == reflect.Pointer) && !d.IsNil() {
			d = d.Elem()
		}
		if d.Kind() != reflect.Struct {
			continue
		}
		if efd := d.FieldByName("EFD"); efd.IsValid() && efd.CanInt() && efd.Int() >= 0 {
			fds = append(fds, int(efd.Int()))
		}
	}
	return fds
}

// closeStopFDs closes fdbased's eventfds once its dispatchers have
// stopped, checking first that each descriptor still is an eventfd.
func closeStopFDs(fds []int) {
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil && l == "anon_inode:[eventfd]" {
			unix.Close(fd)
		}
	}
}
