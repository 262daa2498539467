package stack

import (
	"testing"
	"time"

	"kasim/timers"

	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// FuzzRoute sends arbitrary bytes from a host as if its stack had emitted
// them: the router, the observers and the receiving gVisor stack must take
// any packet without panicking, whether the sender's behaviour is
// gVisor's own, Windows' SYN schedule or lwIP's retransmission on its
// ticks (whose hooks route consults for every packet). Seeds are in
// testdata/fuzz/FuzzRoute.
func FuzzRoute(f *testing.F) {
	f.Add(false, []byte{0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
		0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(true, []byte{0x60, 0, 0, 0, 0, 20, 6, 64})
	senders := []HostOptions{
		{},
		{Behaviour: Behaviour{SynRetransmit: SynRetransmit{ByCount: true, Retries: 2, Initial: 3 * time.Second, MaxRTO: time.Minute}}},
		{Behaviour: lwipRetx, Timers: timers.NewTickQueue(int64(500 * time.Millisecond)), TimersStart: 250 * time.Millisecond},
	}
	f.Fuzz(func(t *testing.T, v6 bool, data []byte) {
		for _, o := range senders {
			if o.Timers != nil {
				o.Timers = timers.NewTickQueue(int64(500 * time.Millisecond)) // a queue per network
			}
			n := NewNetwork(Config{Seed: 1, Latency: time.Millisecond})
			n.Observe(&tape{})
			a, _ := n.AddHostWith("a", o)
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
			n.Close()
		}
	})
}
