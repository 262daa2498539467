package gvisor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"kasim/internal/dut"
)

const (
	nicID = 1
	mtu   = 1500
	// defaultTTL is what runsc sets (socket/netstack.DefaultTTL).
	defaultTTL = 64
)

// Run is the driver: it attaches gVisor's stack to the TAP device the
// environment names (getenv reads it), writes the hello, then serves the
// requests on stdin, writing replies and reports to stdout, until stdin
// ends; then it closes every socket and returns 0. It returns 2 when the
// environment is wrong (a variable missing or malformed), and 1 when the
// link cannot be set up or stops working. stderr gets why.
func Run(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c, err := readConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kasim gvisor driver: %v\n", err)
		return 2
	}
	l, err := openLink(c)
	if err != nil {
		fmt.Fprintf(stderr, "kasim gvisor driver: %v\n", err)
		return 1
	}
	d := newDriver(l.st, stdout)
	d.hello(os.Getpid())
	code := d.serve(stdin, l.dead, stderr)
	l.close()
	return code
}

// config is what the environment says.
type config struct {
	ifname    string
	addr      netip.Prefix
	mac       net.HardwareAddr
	tester    netip.Addr
	testerMAC net.HardwareAddr
}

func readConfig(getenv func(string) string) (config, error) {
	var c config
	get := func(name string) (string, error) {
		v := getenv(name)
		if v == "" {
			return "", fmt.Errorf("%s is not set", name)
		}
		return v, nil
	}
	if p := getenv(dut.EnvProtocol); p != "" && p != strconv.Itoa(dut.Version) {
		return c, fmt.Errorf("%s=%s: this driver speaks protocol %d", dut.EnvProtocol, p, dut.Version)
	}
	var err error
	if c.ifname, err = get(dut.EnvIf); err != nil {
		return c, err
	}
	if len(c.ifname) >= unix.IFNAMSIZ {
		return c, fmt.Errorf("%s=%s: longer than an interface name can be", dut.EnvIf, c.ifname)
	}
	s, err := get(dut.EnvAddr)
	if err != nil {
		return c, err
	}
	if c.addr, err = netip.ParsePrefix(s); err != nil || !c.addr.Addr().Is4() {
		return c, fmt.Errorf("%s=%s: want an IPv4 address and prefix, such as 10.99.0.2/24", dut.EnvAddr, s)
	}
	if s, err = get(dut.EnvTesterAddr); err != nil {
		return c, err
	}
	if c.tester, err = netip.ParseAddr(s); err != nil || !c.tester.Is4() {
		return c, fmt.Errorf("%s=%s: want an IPv4 address", dut.EnvTesterAddr, s)
	}
	if !c.addr.Contains(c.tester) || c.tester == c.addr.Addr() {
		return c, fmt.Errorf("%s=%s is not another address in %s=%s", dut.EnvTesterAddr, c.tester, dut.EnvAddr, c.addr)
	}
	for _, m := range []struct {
		name string
		to   *net.HardwareAddr
	}{{dut.EnvMAC, &c.mac}, {dut.EnvTesterMAC, &c.testerMAC}} {
		if s, err = get(m.name); err != nil {
			return c, err
		}
		if *m.to, err = net.ParseMAC(s); err != nil || len(*m.to) != 6 {
			return c, fmt.Errorf("%s=%s: want an Ethernet address, such as 02:00:0a:63:00:02", m.name, s)
		}
	}
	return c, nil
}

// link is gVisor's stack on the TAP device.
type link struct {
	fd    int
	lower stack.LinkEndpoint
	st    *stack.Stack

	closing atomic.Bool
	dead    chan error // fdbased stopped reading on its own
}

// openLink attaches to the TAP device and builds a stack on it: IPv4, ARP
// and TCP on the real clock, with the TCP settings runsc gives its stack
// (runsc/boot/loader.go: SACK, receive buffer moderation, TTL 64), the
// address, the subnet's route, and a static neighbour entry for the tester.
func openLink(c config) (_ *link, err error) {
	l := &link{fd: -1, dead: make(chan error, 1)}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	// TUNSETIFF, IFF_TAP|IFF_NO_PI, non-blocking.
	if l.fd, err = tun.OpenTAP(c.ifname); err != nil {
		return nil, fmt.Errorf("attaching to the TAP device %s: %v", c.ifname, err)
	}
	unix.CloseOnExec(l.fd)
	if err := setTxFilter(l.fd, c.mac); err != nil {
		return nil, fmt.Errorf("setting %s's MAC filter: %v", c.ifname, err)
	}
	mac := tcpip.LinkAddress(c.mac)
	lower, err := fdbased.New(&fdbased.Options{
		FDs:            []int{l.fd},
		MTU:            mtu,
		EthernetHeader: true,
		Address:        mac,
		// One goroutine hands frames to the stack, in the wire's order.
		ProcessorsPerChannel: 1,
		ClosedFunc:           l.linkClosed,
	})
	if err != nil {
		return nil, fmt.Errorf("opening gVisor's link on %s: %v", c.ifname, err)
	}
	l.st = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
		Clock:              tcpip.NewStdClock(),
	})
	if err := l.st.CreateNIC(nicID, lower); err != nil {
		// fdbased's processors run from New; attaching and detaching
		// a dispatcher stops them.
		lower.Attach(nopDispatcher{})
		lower.Attach(nil)
		return nil, fmt.Errorf("creating gVisor's NIC: %v", err)
	}
	l.lower = lower
	sack := tcpip.TCPSACKEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &moderate} {
		if err := l.st.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return nil, fmt.Errorf("setting gVisor's TCP option %T: %v", o, err)
		}
	}
	ttl := tcpip.DefaultTTLOption(defaultTTL)
	if err := l.st.SetNetworkProtocolOption(ipv4.ProtocolNumber, &ttl); err != nil {
		return nil, fmt.Errorf("setting gVisor's TTL: %v", err)
	}
	if err := l.st.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFrom4(c.addr.Addr().As4()),
			PrefixLen: c.addr.Bits(),
		},
	}, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("adding %s to gVisor's NIC: %v", c.addr, err)
	}
	subnet, err := tcpip.NewSubnet(tcpip.AddrFrom4(c.addr.Masked().Addr().As4()),
		tcpip.MaskFromBytes(net.CIDRMask(c.addr.Bits(), 32)))
	if err != nil {
		return nil, fmt.Errorf("gVisor's route to %s: %v", c.addr.Masked(), err)
	}
	l.st.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: nicID}})
	// No ARP on the wire, and nothing for a silent tester to break but TCP.
	if err := l.st.AddStaticNeighbor(nicID, ipv4.ProtocolNumber, tcpip.AddrFrom4(c.tester.As4()), tcpip.LinkAddress(c.testerMAC)); err != nil {
		return nil, fmt.Errorf("gVisor's neighbour entry for %s: %v", c.tester, err)
	}
	return l, nil
}

// linkClosed is fdbased's report that it stopped reading the TAP device.
// Unless the driver is closing, the stack is deaf from now on, and every
// probe kasim saw unanswered would be the driver's fault: the driver stops.
func (l *link) linkClosed(terr tcpip.Error) {
	if l.closing.Load() {
		return
	}
	err := errors.New("gVisor's link stopped reading the TAP device")
	if terr != nil {
		err = fmt.Errorf("%v: %v", err, terr)
	}
	select {
	case l.dead <- err:
	default:
	}
}

// close takes the stack off the TAP device and destroys it. The link's
// readers are stopped first, with no lock of the stack held: Stack.Destroy
// waits for them while holding the stack's lock, which a frame on its way
// up may need (the deadlock kasim's lab met, internal/live: tap.shut).
func (l *link) close() {
	l.closing.Store(true)
	if l.st != nil {
		if l.lower != nil {
			l.lower.Attach(nil) // stops fdbased's readers and waits for them
		}
		l.st.Destroy()
	}
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

type nopDispatcher struct{}

func (nopDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}
func (nopDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer)    {}

// setTxFilter makes the kernel hand the TAP device's reader only frames
// for mac, broadcast and multicast (TUNSETTXFILTER with TUN_FLT_ALLMULTI),
// as a NIC filters what it receives. gVisor's fdbased assumes a NIC's
// filtering: reading a unicast frame for another address from a TAP device
// makes it stop reading for good.
func setTxFilter(fd int, mac net.HardwareAddr) error {
	// struct tun_filter { __u16 flags; __u16 count; __u8 addr[][ETH_ALEN]; }
	var f struct {
		flags uint16
		count uint16
		addr  [6]byte
	}
	const tunFltAllmulti = 0x0001
	f.flags = tunFltAllmulti
	f.count = 1
	copy(f.addr[:], mac)
	// _IOW('T', 209, unsigned int): TUNSETIFF's encoding, number 209.
	const tunsettxfilter = unix.TUNSETIFF&^0xff | 209
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), tunsettxfilter, uintptr(unsafe.Pointer(&f)))
	if errno != 0 {
		return errno
	}
	return nil
}
