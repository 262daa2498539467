package profile_test

import (
	"fmt"
	"net/netip"
	"time"

	"kasim/profile"
	"kasim/stack"
)

// A name, with registry values and settings, becomes a Profile once.
func ExampleLookup() {
	p, err := profile.Lookup("xp", []string{"TcpMaxDataRetransmissions=3", "PPTPTcpMaxDataRetransmissions=7"}, []string{"abort=none"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Title, p.API, p.Idle, p.Interval, p.Count, "probes")
	fmt.Println("RST at the abort:", p.Behaviour.AbortRST, "- probe octets:", p.Behaviour.ProbePayload)

	_, err = profile.Lookup("linux", []string{"KeepAliveTime=5000"}, nil)
	fmt.Println(err)
	// Output:
	// Windows XP Winsock 2h0m0s 1s 7 probes
	// RST at the abort: false - probe octets: 1
	// registry values apply to Windows profiles only: linux has no registry
}

// A host runs a system's TCP when it is added with the profile's host
// options: here Linux's RST when keep-alive gives up, on the kernel's
// HZ=1000 timer wheel.
func ExampleProfile_HostOptions() {
	p := profile.MustLookup("linux")
	n := stack.NewNetwork(stack.Config{Seed: 1, Latency: 10 * time.Millisecond})
	defer n.Close()
	client, _ := n.AddHostWith("client", p.HostOptions())
	server, _ := n.AddHost("server")
	server.Listen("tcp4", 80, stack.KeepAlive{}, nil)
	c, _ := client.Dial(netip.AddrPortFrom(server.Addr(), 80),
		stack.KeepAlive{Enabled: true, Idle: time.Minute, Interval: 10 * time.Second, Count: 3})
	n.RunFor(time.Second)
	n.Silence(server, stack.Both)
	n.RunFor(time.Hour)
	fmt.Println(c.State(), c.AbortedByKeepAlive(), client.Behaviour().AbortRST)
	// Output: CLOSED true true
}
