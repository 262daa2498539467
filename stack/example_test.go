package stack_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"kasim/stack"
)

// A client with keep-alive on (1 h idle, 10 s interval, 3 probes) loses its
// server: three probes go unanswered and the connection times out exactly
// at idle + 3 x interval after the handshake. The client arms keep-alive
// at the handshake, as Linux does; a host with gVisor's own behaviour
// (AddHost) would wait for a segment after it.
func ExampleNetwork() {
	n := stack.NewNetwork(stack.Config{Seed: 1})
	defer n.Close()
	client, _ := n.AddHostWith("client", stack.HostOptions{Behaviour: stack.Behaviour{ArmAtEstablishment: true}})
	server, _ := n.AddHost("server")
	if _, err := server.Listen("tcp4", 80, stack.KeepAlive{}, nil); err != nil {
		panic(err)
	}
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80),
		stack.KeepAlive{Enabled: true, Idle: time.Hour, Interval: 10 * time.Second, Count: 3})
	if err != nil {
		panic(err)
	}
	c.OnEvent(func(c *stack.Conn) {
		if _, err := c.Recv(make([]byte, 64)); err != nil && !errors.Is(err, stack.ErrWouldBlock) {
			fmt.Printf("%v: recv: %v\n", n.Now(), err)
		}
	})
	if err := n.RunFor(time.Second); err != nil {
		panic(err)
	}
	fmt.Println("state:", c.State())
	n.Silence(server, stack.Both)
	if err := n.Run(); err != nil {
		panic(err)
	}
	fmt.Println("state:", c.State())
	// Output:
	// state: ESTABLISHED
	// 1h0m30s: recv: recv on client/sock2: operation timed out
	// state: CLOSED
}
