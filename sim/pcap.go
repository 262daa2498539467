package sim

import (
	"io"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/sniffer"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"kasim/stack"
	"kasim/timers"
)

// PcapWriter is a stack.Observer that writes every packet any host emits,
// dropped ones included (they left their sender), to a pcap file (raw IP
// link type) through gVisor's link/sniffer. Timestamps are virtual: the
// capture starts at 1970-01-01 00:00:00 UTC, so a packet's timestamp is its
// virtual time since the scenario started.
type PcapWriter struct {
	ep *sniffer.Endpoint
	w  *stickyWriter
}

// NewPcapWriter writes the pcap file header to w and returns the writer.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	sniffer.LogPackets.Store(0) // gVisor logs every sniffed packet by default
	sw := &stickyWriter{w: w}
	// The sniffer wraps a link endpoint; this one is never attached to a
	// stack: only DumpPacket, with explicit timestamps, is used.
	ep, err := sniffer.NewWithWriter(channel.New(1, 1500, ""), sw, 65535)
	if err != nil {
		return nil, err
	}
	if sw.err != nil {
		return nil, sw.err
	}
	return &PcapWriter{ep: ep, w: sw}, nil
}

// Segment implements stack.Observer.
func (p *PcapWriter) Segment(s *stack.Segment) {
	if p.w.err != nil {
		return
	}
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(s.Packet)})
	ts := timers.Epoch.Add(s.At)
	p.ep.DumpPacket(sniffer.DirectionSend, s.Proto, pkt, &ts)
	pkt.DecRef()
}

// Deliver implements stack.Observer.
func (p *PcapWriter) Deliver(*stack.Segment) {}

// State implements stack.Observer.
func (p *PcapWriter) State(stack.StateChange) {}

// Link implements stack.Observer.
func (p *PcapWriter) Link(stack.LinkChange) {}

// Err returns the first error writing the capture.
func (p *PcapWriter) Err() error { return p.w.err }

// stickyWriter keeps the first write error and swallows the rest, because
// the sniffer panics when its writer fails (a full disk must not crash
// kasim). It also zeroes the header's thiszone field, which gVisor fills from
// the machine's local time zone, so that captures are byte-identical
// everywhere.
type stickyWriter struct {
	w       io.Writer
	err     error
	written int64
}

func (s *stickyWriter) Write(b []byte) (int, error) {
	if s.err != nil {
		return len(b), nil
	}
	const zoneOff, zoneEnd = 8, 12 // pcap header: magic, versions, then thiszone
	if s.written == 0 && len(b) >= zoneEnd {
		b = append([]byte(nil), b...)
		clear(b[zoneOff:zoneEnd])
	}
	n, err := s.w.Write(b)
	s.written += int64(n)
	if err != nil {
		s.err = err
	}
	return len(b), nil
}
