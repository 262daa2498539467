package sim

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"kasim/stack"
)

// FuzzClassify feeds the recorder arbitrary TCP headers and payload lengths,
// in both directions of one flow: classification and the keep-alive
// bookkeeping must never panic, and every segment must get a known class.
// Seeds are in testdata/fuzz/FuzzClassify.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{0x00, 0x50, 0x30, 0x39, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0}, 0, false)
	f.Add([]byte{0x30, 0x39, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 2, 0x50, 0x10, 0x10, 0x00, 0, 0, 0, 0}, 1, true)
	net := stack.NewNetwork(stack.Config{})
	f.Cleanup(net.Close)
	a, _ := net.AddHost("a")
	b, _ := net.AddHost("b")
	known := map[string]bool{ClassSYN: true, ClassSYNACK: true, ClassData: true, ClassACK: true, ClassKeepAliveProbe: true,
		ClassKeepAliveACK: true, ClassRetransmission: true, ClassFIN: true, ClassRST: true}
	f.Fuzz(func(t *testing.T, tcp []byte, payload int, reverse bool) {
		if len(tcp) < header.TCPMinimumSize || payload < 0 || payload > 1<<16 {
			return
		}
		r := NewRecorder()
		from, to := a, b
		src, dst := netip.AddrPortFrom(a.Addr(), 1), netip.AddrPortFrom(b.Addr(), 2)
		for i := 0; i+header.TCPMinimumSize <= len(tcp); i += header.TCPMinimumSize {
			if reverse {
				from, to, src, dst = to, from, dst, src
			}
			seg := &stack.Segment{From: from, To: to, Proto: ipv4.ProtocolNumber, TCP: header.TCP(tcp[i : i+header.TCPMinimumSize]),
				Src: src, Dst: dst, Payload: payload}
			r.Segment(seg)
			r.Deliver(seg)
		}
		for _, e := range r.Events() {
			if s, ok := e.(*SegmentEvent); ok && !known[s.Class] {
				t.Fatalf("unknown class %q", s.Class)
			}
		}
	})
}

// members counts the connections s makes (a connection with count: N is N).
func members(s *Scenario) int {
	n := 0
	for i := range s.Conns {
		n += s.Conns[i].members()
	}
	return n
}
