package stack

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// FuzzRoute sends arbitrary bytes from a host as if its stack had emitted
// them: the router, the observers and the receiving gVisor stack must take
// any packet without panicking. Seeds are in testdata/fuzz/FuzzRoute.
func FuzzRoute(f *testing.F) {
	f.Add(false, []byte{0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
		0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(true, []byte{0x60, 0, 0, 0, 0, 20, 6, 64})
	f.Fuzz(func(t *testing.T, v6 bool, data []byte) {
		n := NewNetwork(Config{Seed: 1, Latency: time.Millisecond})
		defer n.Close()
		n.Observe(&tape{})
		a, _ := n.AddHost("a")
		b, _ := n.AddHost("b")
		if _, err := b.Listen("tcp4", 80, KeepAlive{}, nil); err != nil {
			t.Fatal(err)
		}
		proto := ipv4.ProtocolNumber
		if v6 {
			proto = ipv6.ProtocolNumber
		}
		n.route(a, packet{proto: proto, data: append([]byte(nil), data...)})
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
	})
}
