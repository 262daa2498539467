package stack

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	randv2 "math/rand/v2"
	"net/netip"
	"regexp"
	"runtime"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// MaxHosts is how many hosts one Network holds: each gets the address
// 192.0.2.N and 2001:db8::N (documentation prefixes, RFC 5737 and RFC 3849,
// so no simulated address can be mistaken for a real one).
const MaxHosts = 254

const (
	nicID = 1
	mtu   = 1500
)

var hostNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,62}$`)

// Host is one simulated machine: a gVisor network stack with one interface,
// an IPv4 and an IPv6 address, attached to its Network.
type Host struct {
	net   *Network
	name  string
	index int // 1-based; also the last octet of its addresses
	st    *gstack.Stack
	nic   *nic
	v4    netip.Addr
	v6    netip.Addr

	needBarrier bool
	// ticks, until the host's first connection anchors them, is its ticking
	// timer queue, to start ticksStart later (HostOptions.TimersStart).
	ticks      originSetter
	ticksStart time.Duration
	tickOrigin time.Duration // when the first tick fell, once anchored
	conns      map[connKey]*Conn
	flows      map[connKey]*flow
	b          Behaviour // how its TCP differs from gVisor's (behaviour.go)

	sendsNothing, receivesNothing string // drop reasons while silenced
}

// Name returns the host's name in the scenario.
func (h *Host) Name() string { return h.name }

// Addr returns the host's IPv4 address.
func (h *Host) Addr() netip.Addr { return h.v4 }

// Addr6 returns the host's IPv6 address.
func (h *Host) Addr6() netip.Addr { return h.v6 }

func (h *Host) String() string { return h.name }

// gomaxprocsMu serialises the GOMAXPROCS dance in newGStack, so that two
// networks built at once cannot leave the process at GOMAXPROCS=1.
var gomaxprocsMu sync.Mutex

// newGStack builds a gVisor stack whose randomness comes from seed and whose
// TCP layer has exactly one processor goroutine. gVisor sizes that pool from
// GOMAXPROCS when the protocol is created and offers no option for it; with
// more than one processor, segments for different connections are handled in
// parallel and the order of the packets they emit varies from run to run.
func newGStack(clk tcpip.Clock, seed uint64, index int) *gstack.Stack {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(index))
	copy(key[16:], "kasim-host-rng")
	secure := &lockedReader{r: randv2.NewChaCha8(key)}
	var s [8]byte
	_, _ = secure.Read(s[:])

	gomaxprocsMu.Lock()
	defer gomaxprocsMu.Unlock()
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	return gstack.New(gstack.Options{
		NetworkProtocols: []gstack.NetworkProtocolFactory{
			ipv4.NewProtocolWithOptions(ipv4.Options{IGMP: ipv4.IGMPOptions{Enabled: false}}),
			ipv6.NewProtocolWithOptions(ipv6.Options{
				MLD:        ipv6.MLDOptions{Enabled: false},
				DADConfigs: gstack.DADConfigurations{DupAddrDetectTransmits: 0},
			}),
		},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol},
		Clock:              clk,
		RandSource:         &lockedSource{src: rand.NewSource(int64(binary.LittleEndian.Uint64(s[:])))},
		SecureRNG:          secure,
	})
}

func (n *Network) newHost(name string, o HostOptions) (*Host, error) {
	if !hostNameRE.MatchString(name) {
		return nil, fmt.Errorf("stack: host name %q: want a letter, then up to 62 letters, digits, '_', '.' or '-'", name)
	}
	for _, h := range n.hosts {
		if h.name == name {
			return nil, fmt.Errorf("stack: host name %q is already taken", name)
		}
	}
	if err := o.Behaviour.validate(); err != nil {
		return nil, fmt.Errorf("stack: host %q: %w", name, err)
	}
	if len(n.hosts) >= MaxHosts {
		return nil, fmt.Errorf("stack: host %q: a network holds at most %d hosts", name, MaxHosts)
	}
	i := len(n.hosts) + 1
	h := &Host{
		net:   n,
		name:  name,
		index: i,
		v4:    netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}),
		v6:    netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}),
		conns: make(map[connKey]*Conn),
		flows: make(map[connKey]*flow),

		sendsNothing:    "silenced: " + name + " sends nothing",
		receivesNothing: "silenced: " + name + " receives nothing",
	}
	var clk tcpip.Clock = n.clock
	if o.Timers != nil {
		clk = n.clock.NewLane(o.Timers)
		if ticks, ok := o.Timers.(originSetter); ok && o.TimersStart > 0 {
			h.ticks, h.ticksStart = ticks, o.TimersStart
		}
	}
	h.st = newGStack(clk, n.cfg.Seed, i)
	h.nic = &nic{Endpoint: channel.New(1, mtu, "")}
	if err := h.st.CreateNIC(nicID, h.nic); err != nil {
		return nil, fmt.Errorf("stack: host %q: create NIC: %s", name, err)
	}
	for _, a := range []tcpip.ProtocolAddress{
		{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom4(h.v4.As4()).WithPrefix()},
		{Protocol: ipv6.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom16(h.v6.As16()).WithPrefix()},
	} {
		if err := h.st.AddProtocolAddress(nicID, a, gstack.AddressProperties{}); err != nil {
			return nil, fmt.Errorf("stack: host %q: add address %s: %s", name, a.AddressWithPrefix, err)
		}
	}
	// Every destination goes out of the one interface; the Network routes.
	h.st.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	sack := tcpip.TCPSACKEnabled(true)
	h.st.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	// The TCP processor runs only inside barrier. Were it left running,
	// a packet injected during a pump would be processed while the driver
	// goes on pumping and observing, and what the host sends in reply would
	// land in this pump or the next depending on the goroutine scheduler.
	h.st.Pause()
	if err := h.applyBehaviour(o.Behaviour); err != nil {
		return nil, err
	}
	return h, nil
}

// barrier lets the host's TCP processor handle every segment injected so
// far, and returns once it has: Pause returns only when the processor's
// queue is empty.
func (h *Host) barrier() {
	h.st.Resume()
	h.st.Pause()
}

// startTicks anchors the host's ticking timers at its first connection
// (HostOptions.TimersStart), once.
func (h *Host) startTicks() {
	if h.ticks != nil {
		h.tickOrigin = h.net.Now() + h.ticksStart
		h.ticks.SetOrigin(int64(h.tickOrigin))
		h.ticks = nil
	}
}

// inject delivers an IP packet to the host as if it had arrived on its wire.
func (h *Host) inject(p packet) {
	if h.ticks != nil && isSYN(p) {
		h.startTicks() // before the stack arms the SYN-ACK's timer
	}
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(p.data)})
	h.nic.InjectInbound(p.proto, pkt)
	pkt.DecRef()
	h.needBarrier = true
}

// nic is the host's link endpoint: a gVisor channel endpoint whose outbound
// side is an unbounded queue. channel.Endpoint drops packets silently once its
// fixed-size channel is full, and a herd of probes due at one instant would
// overflow any size chosen in advance.
type nic struct {
	*channel.Endpoint
	mu     sync.Mutex
	outbox []packet
	free   [][]byte // buffers of packets delivered or dropped, for reuse
}

type packet struct {
	proto tcpip.NetworkProtocolNumber
	data  []byte
}

// WritePackets implements stack.LinkEndpoint. It copies each packet out, so
// gVisor keeps ownership of its buffers.
func (e *nic) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, pkt := range pkts.AsSlice() {
		var buf []byte
		if n := len(e.free); n > 0 {
			buf, e.free = e.free[n-1][:0], e.free[:n-1]
		}
		for _, s := range pkt.AsSlices() {
			buf = append(buf, s...)
		}
		e.outbox = append(e.outbox, packet{proto: pkt.NetworkProtocolNumber, data: buf})
	}
	return pkts.Len(), nil
}

// recycle takes back the buffer of a packet this NIC sent, once the network
// is done with it (gVisor copies what it is given on inject).
func (e *nic) recycle(b []byte) {
	e.mu.Lock()
	e.free = append(e.free, b)
	e.mu.Unlock()
}

// take returns the queued outbound packets, oldest first, and empties the
// queue; spare is reused as the next queue's backing array.
func (e *nic) take(spare []packet) []packet {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.outbox
	e.outbox = spare[:0]
	return out
}

type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func (s *lockedSource) Int63() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Int63()
}

func (s *lockedSource) Seed(seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src.Seed(seed)
}

type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// isSYN reports whether p carries a TCP SYN without ACK: a connection
// request.
func isSYN(p packet) bool {
	var tcpBytes []byte
	switch p.proto {
	case ipv4.ProtocolNumber:
		ip := header.IPv4(p.data)
		if !ip.IsValid(len(p.data)) || ip.TransportProtocol() != tcp.ProtocolNumber {
			return false
		}
		tcpBytes = ip.Payload()
	case ipv6.ProtocolNumber:
		ip := header.IPv6(p.data)
		if !ip.IsValid(len(p.data)) || ip.TransportProtocol() != tcp.ProtocolNumber {
			return false
		}
		tcpBytes = ip.Payload()
	default:
		return false
	}
	if len(tcpBytes) < header.TCPMinimumSize {
		return false
	}
	f := header.TCP(tcpBytes).Flags()
	return f&header.TCPFlagSyn != 0 && f&header.TCPFlagAck == 0
}
