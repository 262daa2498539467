//go:build linux

package live_test

import (
	"fmt"
	"net/netip"

	"kasim/internal/live"
)

// The kernel connects to gVisor, switches keep-alive on (2 s idle, 1 s
// interval, 3 probes) and blocks in recv; the tester falls silent. About
// 5.1 s later the kernel gives up and the recv fails with ETIMEDOUT.
//
// It needs root, and main must have called live.MaybeRunPeer first, so it
// has no Output to check: it is compiled, not run.
func Example() {
	lab, err := live.NewLab(live.Options{
		OnSegment: func(s live.Segment) { fmt.Println(s) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lab.Close()

	ln, err := lab.ListenTCP(80)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		// The accepted connection stays open until Close aborts it.
		if _, err := ln.Accept(); err == nil {
			lab.SetSilence(live.SilenceBoth) // the peer falls silent
		}
	}()

	p := lab.Peer()
	s, err := p.Socket()
	if err != nil || s.Errno != 0 {
		fmt.Println("socket:", err, s.ErrnoName())
		return
	}
	fd := s.Ret
	r, err := p.Connect(fd, netip.AddrPortFrom(lab.TesterAddr(), 80))
	fmt.Println("connect:", r.ErrnoName(), err) // EINPROGRESS
	ev := <-p.Events()                          // EventConnect, Errno 0
	fmt.Println(ev)

	p.Setsockopt(fd, "SOL_SOCKET", "SO_KEEPALIVE", 1)
	p.Setsockopt(fd, "IPPROTO_TCP", "TCP_KEEPIDLE", 2)
	p.Setsockopt(fd, "IPPROTO_TCP", "TCP_KEEPINTVL", 1)
	p.Setsockopt(fd, "IPPROTO_TCP", "TCP_KEEPCNT", 3)
	p.Recv(fd, 1)
	ev = <-p.Events() // EventRecv
	fmt.Println("recv:", ev.ErrnoName(), "after", ev.At.Sub(r.At))
}

// A driver takes the kernel's place: kasim's helper makes a TAP device in
// the lab's namespace and becomes the driver, which attaches its stack to
// it and answers the same calls (docs/dut-protocol.md). Its hello says
// what it is and which options it has.
//
// It needs root, and main must have called live.MaybeRunPeer first, so it
// has no Output to check: it is compiled, not run.
func ExampleOptions_dut() {
	lab, err := live.NewLab(live.Options{DUT: []string{"./kasim-dut-lwip"}})
	if err != nil {
		fmt.Println(err) // a driver that breaks the protocol is named here, with its line
		return
	}
	defer lab.Close()
	p := lab.Peer()
	h := p.Hello()
	fmt.Println(h.Stack, h.Version, h.Options) // lwIP 2.1.3 ... [SO_KEEPALIVE TCP_KEEPALIVE ...]

	s, err := p.Socket()
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := p.Setsockopt(s.Ret, "IPPROTO_TCP", "TCP_USER_TIMEOUT", 5000)
	fmt.Println(r.ErrnoName()) // ENOPROTOOPT: lwIP has no such option
}
