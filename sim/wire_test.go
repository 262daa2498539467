package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestWireClassifiesAsWireshark: segments from a real wire get the classes,
// relative numbers and probe reading a simulated trace has.
func TestWireClassifiesAsWireshark(t *testing.T) {
	k := netip.MustParseAddrPort("10.99.0.2:40000")
	p := netip.MustParseAddrPort("10.99.0.1:80")
	const kisn, pisn = 1000, 5000
	ack, syn, rst, psh := header.TCPFlagAck, header.TCPFlagSyn, header.TCPFlagRst, header.TCPFlagPsh
	r := NewRecorder()
	for i, w := range []WireSegment{
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: syn, Seq: kisn},
		{From: "tester", To: "kernel", Src: p, Dst: k, Flags: syn | ack, Seq: pisn, Ack: kisn + 1},
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: kisn + 1, Ack: pisn + 1},
		{From: "tester", To: "kernel", Src: p, Dst: k, Flags: psh | ack, Seq: pisn + 1, Ack: kisn + 1, Len: 5},
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: kisn + 1, Ack: pisn + 6},
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: kisn, Ack: pisn + 6},                // probe
		{From: "tester", To: "kernel", Src: p, Dst: k, Flags: ack, Seq: pisn + 6, Ack: kisn + 1},            // its answer
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: kisn, Ack: pisn + 6, Dropped: true}, // probe, lost
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: rst | ack, Seq: kisn + 1, Ack: pisn + 6},
	} {
		w.At = time.Duration(i) * time.Second
		if w.From == "tester" {
			w.Win = 502
		}
		r.Wire(w)
	}
	type row struct {
		Host, Class, Flags string
		Seq, Ack           uint32
		Len                int
	}
	var got []row
	for _, e := range r.Events() {
		s := e.(*SegmentEvent)
		got = append(got, row{s.Host, s.Class, s.Flags, s.Seq, s.Ack, s.Len})
	}
	want := []row{
		{"kernel", ClassSYN, "S", 0, 0, 0},
		{"tester", ClassSYNACK, "SA", 0, 1, 0},
		{"kernel", ClassACK, "A", 1, 1, 0},
		{"tester", ClassData, "PA", 1, 1, 5},
		{"kernel", ClassACK, "A", 1, 6, 0},
		{"kernel", ClassKeepAliveProbe, "A", 0, 6, 0},
		{"tester", ClassKeepAliveACK, "A", 6, 1, 0},
		{"kernel", ClassKeepAliveProbe, "A", 0, 6, 0},
		{"kernel", ClassRST, "RA", 1, 6, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wire trace (-want +got):\n%s", diff)
	}
}

// TestWireTellsWindowProbes: on a wire, a segment of a keep-alive probe's
// shape that goes into a window its peer closed is read as a window
// probe (Linux's, RFC 1122 4.2.2.17), and one after the window opened
// again as a keep-alive probe.
func TestWireTellsWindowProbes(t *testing.T) {
	k := netip.MustParseAddrPort("10.99.0.2:40000")
	p := netip.MustParseAddrPort("10.99.0.1:80")
	ack, syn := header.TCPFlagAck, header.TCPFlagSyn
	r := NewRecorder()
	for i, w := range []WireSegment{
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: syn, Seq: 100, Win: 64240},
		{From: "tester", To: "kernel", Src: p, Dst: k, Flags: syn | ack, Seq: 900, Ack: 101, Win: 2048},
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: 101, Ack: 901, Win: 502},
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: 101, Ack: 901, Win: 502, Len: 2048},
		{From: "tester", To: "kernel", Src: p, Dst: k, Flags: ack, Seq: 901, Ack: 2149, Win: 0},
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: 2148, Ack: 901, Win: 502}, // into the closed window
		{From: "tester", To: "kernel", Src: p, Dst: k, Flags: ack, Seq: 901, Ack: 2149, Win: 1024},
		{From: "kernel", To: "tester", Src: k, Dst: p, Flags: ack, Seq: 2148, Ack: 901, Win: 502}, // window open: keep-alive
	} {
		w.At = time.Duration(i) * time.Second
		r.Wire(w)
	}
	var got []string
	for _, e := range r.Events() {
		got = append(got, e.(*SegmentEvent).Class)
	}
	want := []string{ClassSYN, ClassSYNACK, ClassACK, ClassData, ClassACK, ClassWindowProbe, ClassACK, ClassKeepAliveProbe}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
}
