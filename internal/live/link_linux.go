package live

import (
	"encoding/binary"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tap sits between gVisor's stack and the link (the sniffer, then fdbased):
// it reports TCP segments to the observer and drops frames while the
// silence switch is on. Being above the sniffer, a frame it drops on the
// way in is still captured (it was on the wire) and one it drops on the
// way out is not (it never was).
type tap struct {
	nested.Endpoint
	silence atomic.Uint32
	// filter, if set, names a reason to drop a TCP segment (SetDropFilter).
	filter atomic.Pointer[func(Segment) string]

	// closed, once set by shut, makes the tap drop everything both ways
	// and report nothing. inMu is held for reading while a frame goes up
	// into the stack, so that shut can wait for the last one.
	closed atomic.Bool
	inMu   sync.RWMutex

	obsMu sync.Mutex // serialises observe's calls to onSegment
	obs   func(Segment)
	// stamps has the kernel's time of each frame on the wire; nil means
	// the tap's own reading of the clock.
	stamps *stamper
}

func newTap(lower stack.LinkEndpoint, obs func(Segment), stamps *stamper) *tap {
	t := &tap{obs: obs, stamps: stamps}
	t.Endpoint.Init(lower, t)
	return t
}

// shut disconnects the stack from the wire and returns once no frame is on
// its way up any more. Close needs that before it destroys the stack:
// gVisor's Stack.Wait holds the stack's lock while it waits for fdbased's
// reader, and a frame being handled by that reader (a segment for an
// aborted connection, answered with an RST) needs the same lock: a
// deadlock, seen when the kernel's segment met the teardown.
func (t *tap) shut() {
	t.closed.Store(true)
	t.inMu.Lock() // waits for the frames already on their way up
	t.inMu.Unlock()
}

// DeliverNetworkPacket implements stack.NetworkDispatcher: frames arriving
// from the wire.
func (t *tap) DeliverNetworkPacket(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	t.inMu.RLock()
	defer t.inMu.RUnlock()
	if t.closed.Load() {
		return
	}
	at := Now()
	drop, why := t.drops(In, protocol, pkt)
	t.observe(In, at, protocol, pkt, drop, why)
	if drop {
		return
	}
	t.Endpoint.DeliverNetworkPacket(protocol, pkt)
}

// drops says whether a frame going dir is dropped: by the silence switch
// (no reason), or by the drop filter (its reason).
func (t *tap) drops(dir Direction, protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) (bool, string) {
	if !silenceable(protocol) {
		return false, ""
	}
	if s := Silence(t.silence.Load()); dir == In && s&SilenceIn != 0 || dir == Out && s&SilenceOut != 0 {
		return true, ""
	}
	f := t.filter.Load()
	if f == nil || protocol != header.IPv4ProtocolNumber {
		return false, ""
	}
	seg, ok := parseSegment(pkt)
	if !ok {
		return false, ""
	}
	seg.Dir = dir
	why := (*f)(seg)
	return why != "", why
}

// WritePackets implements stack.LinkEndpoint: frames gVisor sends. The
// caller keeps ownership of pkts, so dropping is just not passing them on.
// It must not take inMu: it runs inside DeliverNetworkPacket when gVisor
// answers a segment, and a read lock taken twice deadlocks against a
// waiting shut.
//
// Frames that go out are observed after the write, once the kernel has
// stamped them.
func (t *tap) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	if t.closed.Load() {
		return pkts.Len(), nil
	}
	at := Now()
	sent := pkts.AsSlice()
	if Silence(t.silence.Load())&SilenceOut == 0 && t.filter.Load() == nil {
		n, err := t.Endpoint.WritePackets(pkts)
		for _, pkt := range sent[:n] {
			t.observe(Out, at, pkt.NetworkProtocolNumber, pkt, false, "")
		}
		return n, err
	}
	var kept stack.PacketBufferList
	for _, pkt := range sent {
		if drop, why := t.drops(Out, pkt.NetworkProtocolNumber, pkt); drop {
			t.observe(Out, at, pkt.NetworkProtocolNumber, pkt, true, why)
		} else {
			kept.PushBack(pkt)
		}
	}
	if kept.Len() > 0 {
		if _, err := t.Endpoint.WritePackets(kept); err != nil {
			return 0, err
		}
		for _, pkt := range kept.AsSlice() {
			t.observe(Out, at, pkt.NetworkProtocolNumber, pkt, false, "")
		}
	}
	return len(sent), nil
}

// silenceable reports whether the silence switch drops frames of a
// network protocol: IP, which carries TCP, and not ARP. A silent peer is
// a dead TCP peer, as in the simulation, which has no ARP: a stack under
// test that resolves the tester's address (lwIP as Debian builds it has
// no static entries) must not be kept from sending its SYNs, probes and
// retransmissions by an unanswered ARP request. The kernel and the
// tester have permanent entries and never ask.
func silenceable(protocol tcpip.NetworkProtocolNumber) bool {
	return protocol != header.ARPProtocolNumber
}

// observe reports a segment. at is the tap's reading of the clock, used
// when the kernel has no stamp for it: a segment the silence switch
// dropped on its way out never reached the wire.
func (t *tap) observe(dir Direction, at Mono, protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer, dropped bool, why string) {
	if t.obs == nil || protocol != header.IPv4ProtocolNumber {
		return
	}
	seg, ok := parseSegment(pkt)
	if !ok {
		return
	}
	seg.Dir, seg.At, seg.Dropped, seg.DropReason = dir, at, dropped, why
	if onWire := !(dir == Out && dropped); onWire && t.stamps != nil {
		if k, ok := t.stamps.take(dir, seg.key); ok {
			seg.At, seg.KernelTime = k, true
		}
	}
	t.obsMu.Lock()
	defer t.obsMu.Unlock()
	t.obs(seg)
}

// parseSegment reads an IPv4 TCP segment out of a frame, whichever way it
// is going: the link header (pushed on the way out, consumed on the way
// in) is still in the buffer, so it is trimmed the way gVisor's sniffer
// does.
func parseSegment(pkt *stack.PacketBuffer) (Segment, bool) {
	buf := pkt.ToBuffer()
	defer buf.Release()
	buf.TrimFront(int64(len(pkt.VirtioNetHeader().Slice())))
	buf.TrimFront(int64(len(pkt.LinkHeader().Slice())))
	return parseIPv4TCP(buf.Flatten())
}

// parseIPv4TCP reads an IPv4 packet carrying a whole TCP segment.
func parseIPv4TCP(b []byte) (Segment, bool) {
	ip := header.IPv4(b)
	if !ip.IsValid(len(b)) || ip.TransportProtocol() != header.TCPProtocolNumber || ip.FragmentOffset() != 0 {
		return Segment{}, false
	}
	payload := ip.Payload()
	if len(payload) < header.TCPMinimumSize {
		return Segment{}, false
	}
	tcp := header.TCP(payload)
	off := int(tcp.DataOffset())
	if off < header.TCPMinimumSize || off > len(payload) {
		return Segment{}, false
	}
	src, dst := ip.SourceAddress().As4(), ip.DestinationAddress().As4()
	return Segment{
		key:    keyOf(ip, tcp, len(payload)-off),
		Src:    netip.AddrPortFrom(netip.AddrFrom4(src), tcp.SourcePort()),
		Dst:    netip.AddrPortFrom(netip.AddrFrom4(dst), tcp.DestinationPort()),
		Flags:  tcp.Flags(),
		Seq:    tcp.SequenceNumber(),
		Ack:    tcp.AckNumber(),
		Len:    len(payload) - off,
		Window: tcp.WindowSize(),
	}, true
}

// pcapFilter stands between gVisor's sniffer and the caller's writer:
//   - it serialises writes (the sniffer writes from whichever goroutine
//     carries the frame, incoming and outgoing at once);
//   - it keeps the first write error and swallows it and all later writes,
//     because the sniffer panics when its writer fails;
//   - it zeroes the header's thiszone, which gVisor fills from the local
//     time zone although the timestamps are UTC;
//   - it leaves out records that are not IP (ARP), which the sniffer writes
//     too although its link type, LINKTYPE_RAW, can only say IP.
//
// It parses the stream rather than trusting one record per Write.
type pcapFilter struct {
	mu      sync.Mutex
	w       io.Writer
	err     error
	pending []byte
	header  bool // the file header has been passed on
}

const (
	pcapHeaderLen = 24
	pcapRecordLen = 16
)

func (p *pcapFilter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return len(b), nil
	}
	p.pending = append(p.pending, b...)
	rest := p.pending
	for p.err == nil {
		if !p.header {
			if len(rest) < pcapHeaderLen {
				break
			}
			h := append([]byte(nil), rest[:pcapHeaderLen]...)
			clear(h[8:12]) // thiszone
			p.emit(h)
			rest = rest[pcapHeaderLen:]
			p.header = true
			continue
		}
		if len(rest) < pcapRecordLen {
			break
		}
		n := pcapRecordLen + int(binary.LittleEndian.Uint32(rest[8:12]))
		if len(rest) < n {
			break
		}
		if v := rest[pcapRecordLen:n]; len(v) == 0 || v[0]>>4 == 4 || v[0]>>4 == 6 {
			p.emit(rest[:n])
		}
		rest = rest[n:]
	}
	p.pending = append(p.pending[:0], rest...)
	return len(b), nil
}

func (p *pcapFilter) emit(b []byte) {
	if _, err := p.w.Write(b); err != nil {
		p.err = err
	}
}

func (p *pcapFilter) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
