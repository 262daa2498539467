package stack

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// flow is what a host's wire has seen of one of its TCP connections: the
// sequence space each way and keep-alive's progress. It lives below the
// stack, so kasim can shape probes and craft segments gVisor would not send.
type flow struct {
	sndNxt, rcvNxt   seqnum.Value
	haveSnd, haveRcv bool
	// sndUna is the highest acknowledgement received (haveUna once one
	// came): below sndNxt, sent data or a FIN is outstanding.
	sndUna  seqnum.Value
	haveUna bool
	// unanswered counts keep-alive probes sent since the last segment
	// received; any arriving segment resets it, as in every stack.
	unanswered int
	lastRecv   time.Duration
	lastProbe  time.Duration // when the last keep-alive probe went
	reset      bool          // an RST arrived
	// iss is the first sequence number sent (the SYN's), once haveSnd.
	iss seqnum.Value
	// zeroWindow: the last segment received offered a zero window.
	// windowProbes counts the window probes sent since it closed.
	zeroWindow   bool
	windowProbes int
	zeroSince    time.Duration // when the window closed
	// synAckCopies counts the SYN-ACK's retransmissions, on a host with
	// Linux's tcp_synack_retries; halfOpenGone says the host gave the
	// half-open connection up after the last.
	synAckCopies int
	halfOpenGone bool
	synAckAt     time.Duration // when the first SYN-ACK went
	// synAck is a copy of the SYN-ACK, on a Linux host until the
	// handshake's final ACK; dupSyn says a duplicate of the SYN it answers
	// just arrived, and synAnswered when the last was answered
	// (answerDupSyn); answering marks the copy being routed.
	synAck            packet
	dupSyn, answering bool
	synAnswered       time.Duration
	haveSynAnswered   bool
}

// connFlow is flowOf for a segment of c (nil if no registered Conn of
// the host's has key k), which keeps the flow at hand for the next.
func (h *Host) connFlow(c *Conn, k connKey) *flow {
	if c != nil && c.wire != nil {
		return c.wire
	}
	f := h.flowOf(k)
	if c != nil {
		c.wire = f
	}
	return f
}

func (h *Host) flowOf(k connKey) *flow {
	f := h.flows[k]
	if f == nil {
		f = &flow{}
		h.flows[k] = f
	}
	return f
}

// segEnd is the sequence number after a segment: SYN and FIN count as one.
func segEnd(t header.TCP, payload int) seqnum.Value {
	end := seqnum.Value(t.SequenceNumber()).Add(seqnum.Size(payload))
	if t.Flags().Contains(header.TCPFlagSyn) {
		end++
	}
	if t.Flags().Contains(header.TCPFlagFin) {
		end++
	}
	return end
}

// repeats reports whether an outbound segment starts in sequence space
// already sent: a retransmission (or a probe, which isProbe tells apart).
func (f *flow) repeats(t header.TCP) bool {
	return f.haveSnd && seqnum.Value(t.SequenceNumber()).LessThan(f.sndNxt)
}

// isProbe reports whether an outbound segment is a keep-alive probe: a bare
// ACK with at most one octet at SND.NXT-1 (RFC 1122 4.2.3.6).
func (f *flow) isProbe(t header.TCP, payload int) bool {
	return t.Flags() == header.TCPFlagAck && payload <= 1 && f.haveSnd &&
		seqnum.Value(t.SequenceNumber()) == f.sndNxt-1
}

// sent updates the flow with a segment the host emitted at at; probe says
// whether it was a keep-alive probe.
func (f *flow) sent(t header.TCP, payload int, probe bool, at time.Duration) {
	switch {
	case probe:
		f.unanswered++
		f.lastProbe = at
	case payload > 0 || t.Flags().Contains(header.TCPFlagFin):
		// New data stops keep-alive until it is acknowledged.
		f.unanswered = 0
	}
	if t.Flags().Contains(header.TCPFlagRst) {
		return
	}
	if !f.haveSnd {
		f.iss = seqnum.Value(t.SequenceNumber())
	}
	if end := segEnd(t, payload); !f.haveSnd || f.sndNxt.LessThan(end) {
		f.sndNxt, f.haveSnd = end, true
	}
}

// isWindowProbe reports whether a segment shaped as a keep-alive probe
// (isProbe) is a window probe: the peer's window is closed and c's
// application has handed over data the wire has not carried yet (RFC
// 1122 4.2.2.17; RFC 9293 3.8.6.1). On a wire alone, without c, a probe
// into a closed window cannot be told from a keep-alive probe.
func (f *flow) isWindowProbe(c *Conn) bool {
	return f.zeroWindow && c != nil && c.written > int64(f.sndNxt-f.iss-1)
}

// received updates the flow with a segment that arrived at the host.
func (f *flow) received(t header.TCP, payload int, at time.Duration) {
	f.lastRecv = at
	f.unanswered = 0
	if t.Flags().Contains(header.TCPFlagRst) {
		f.reset = true
		return
	}
	if end := segEnd(t, payload); !f.haveRcv || f.rcvNxt.LessThan(end) {
		f.rcvNxt, f.haveRcv = end, true
	}
	if t.Flags().Contains(header.TCPFlagAck) && !t.Flags().Contains(header.TCPFlagSyn) {
		zero := t.WindowSize() == 0
		if zero && !f.zeroWindow {
			f.zeroSince = at
		}
		if f.zeroWindow = zero; !zero {
			f.windowProbes = 0
		}
	}
	if ack := seqnum.Value(t.AckNumber()); t.Flags().Contains(header.TCPFlagAck) && (!f.haveUna || f.sndUna.LessThan(ack)) {
		f.sndUna, f.haveUna = ack, true
	}
}

// outstanding reports whether sent data or a FIN is unacknowledged, as far
// as the wire shows: then no keep-alive probe goes (RFC 9293 3.8.4), and
// what ends the connection is retransmission.
func (f *flow) outstanding() bool {
	return f.haveSnd && (!f.haveUna || f.sndUna.LessThan(f.sndNxt))
}

// padProbe returns a copy of probe p with one 0x00 octet appended and the
// IP length and both checksums fixed.
func padProbe(p packet, src, dst tcpip.Address) packet { return resizeProbe(p, 1, src, dst) }

// bareProbe returns a copy of probe p without its one octet, lengths and
// checksums fixed: gVisor's window probe resends an acknowledged octet,
// Linux's carries none (tcp_xmit_probe_skb).
func bareProbe(p packet, src, dst tcpip.Address) packet { return resizeProbe(p, -1, src, dst) }

// resizeProbe returns a copy of probe p with by octets appended (0x00) or
// cut off its end.
func resizeProbe(p packet, by int, src, dst tcpip.Address) packet {
	b := make([]byte, len(p.data)+by)
	copy(b, p.data)
	var tcpStart int
	if p.proto == ipv4.ProtocolNumber {
		ip := header.IPv4(b)
		ip.SetTotalLength(uint16(int(ip.TotalLength()) + by))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		tcpStart = int(ip.HeaderLength())
	} else {
		ip := header.IPv6(b)
		ip.SetPayloadLength(uint16(int(ip.PayloadLength()) + by))
		tcpStart = header.IPv6MinimumSize
	}
	setTCPChecksum(header.TCP(b[tcpStart:]), src, dst)
	return packet{proto: p.proto, data: b}
}

func setTCPChecksum(t header.TCP, src, dst tcpip.Address) {
	t.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(t)))
	xsum = checksum.Checksum(t[t.DataOffset():], xsum)
	t.SetChecksum(^t.CalculateChecksum(xsum))
}

// resetPacket builds the RST+ACK a host sends to abort connection c.
func resetPacket(c *Conn, f *flow) packet {
	return rstPacket(c.proto, c.local, c.remote, uint32(f.sndNxt), uint32(f.rcvNxt), header.TCPFlagRst|header.TCPFlagAck)
}

// resetAnswer builds the RST a host sends for segment t (payload octets)
// that no connection of its takes (RFC 9293 3.10.7.1): <SEQ=SEG.ACK><CTL=RST>
// if it has an ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func resetAnswer(proto tcpip.NetworkProtocolNumber, local, remote netip.AddrPort, t header.TCP, payload int) packet {
	if t.Flags().Contains(header.TCPFlagAck) {
		return rstPacket(proto, local, remote, t.AckNumber(), 0, header.TCPFlagRst)
	}
	return rstPacket(proto, local, remote, 0, uint32(segEnd(t, payload)), header.TCPFlagRst|header.TCPFlagAck)
}

// rstPacket builds an RST from local to remote.
func rstPacket(proto tcpip.NetworkProtocolNumber, local, remote netip.AddrPort, seq, ack uint32, flags header.TCPFlags) packet {
	src := tcpip.AddrFromSlice(local.Addr().AsSlice())
	dst := tcpip.AddrFromSlice(remote.Addr().AsSlice())
	ipLen := header.IPv6MinimumSize
	if proto == ipv4.ProtocolNumber {
		ipLen = header.IPv4MinimumSize
	}
	b := make([]byte, ipLen+header.TCPMinimumSize)
	if proto == ipv4.ProtocolNumber {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
			Flags: header.IPv4FlagDontFragment, SrcAddr: src, DstAddr: dst})
		ip.SetChecksum(^ip.CalculateChecksum())
	} else {
		header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: header.TCPMinimumSize,
			TransportProtocol: header.TCPProtocolNumber, HopLimit: 64, SrcAddr: src, DstAddr: dst})
	}
	t := header.TCP(b[ipLen:])
	t.Encode(&header.TCPFields{SrcPort: local.Port(), DstPort: remote.Port(), SeqNum: seq,
		AckNum: ack, DataOffset: header.TCPMinimumSize, Flags: flags})
	setTCPChecksum(t, src, dst)
	return packet{proto: proto, data: b}
}

// flow returns what the host's wire has seen of c's connection, or nil.
func (c *Conn) flow() *flow {
	if c.wire != nil {
		return c.wire
	}
	return c.host.flows[keyOf(c.local.Port(), c.remote.Addr(), c.remote.Port())]
}

// KeepAliveProbes returns how many keep-alive probes the connection has sent
// since it last received a segment, and when that was.
func (c *Conn) KeepAliveProbes() (unanswered int, lastRecv time.Duration) {
	if f := c.flow(); f != nil {
		return f.unanswered, f.lastRecv
	}
	return 0, 0
}

// WasEstablished reports whether the connection ever completed its
// handshake, so that a failure is one of an established connection, not of
// a connect.
func (c *Conn) WasEstablished() bool { return c.established }

// AbortedByKeepAlive reports whether keep-alive gave up on the connection:
// it closed while its probes were unanswered (anything received would have
// answered them, and data sent would have stopped them).
func (c *Conn) AbortedByKeepAlive() bool { return c.keepAliveAbort }
