// Package bench holds kasim's benchmark workloads: one simulated
// connection's whole life, and crowds of silent keep-alive connections run
// to abort. The Benchmark functions beside it run them; the workloads are
// exported so that other harnesses can reuse them.
package bench

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"kasim/stack"
)

// KeepAlive is the keep-alive setting of every workload: the seed
// document's defaults, 2 h idle, 1 s interval, 10 probes.
var KeepAlive = stack.KeepAlive{Enabled: true, Idle: 2 * time.Hour, Interval: time.Second, Count: 10}

// RunResult is what one workload run measured.
type RunResult struct {
	Aborted  int           // connections keep-alive gave up on
	Segments int           // segments emitted by all hosts
	Fired    uint64        // timer callbacks run
	End      time.Duration // virtual time at the end of the run
	// HeapPerConn is the live heap per connection once all are established
	// (both endpoints: kasim's and gVisor's state), in bytes; measured only
	// when asked for, since it forces garbage collections.
	HeapPerConn float64
}

// Events returns the simulated events of a run: segments and timer fires.
func (r RunResult) Events() int { return r.Segments + int(r.Fired) }

// segmentCounter is the cheapest useful Observer.
type segmentCounter struct{ n int }

func (c *segmentCounter) Segment(*stack.Segment)  { c.n++ }
func (c *segmentCounter) Deliver(*stack.Segment)  {}
func (c *segmentCounter) State(stack.StateChange) {}
func (c *segmentCounter) Link(stack.LinkChange)   {}

// pair builds a client and a server 5 ms apart, with a segment counter and
// the extra observers attached.
func pair(seed uint64, extra []stack.Observer) (net *stack.Network, client, server *stack.Host, count *segmentCounter, err error) {
	net = stack.NewNetwork(stack.Config{Seed: seed, Latency: 5 * time.Millisecond})
	count = &segmentCounter{}
	net.Observe(count)
	for _, o := range extra {
		net.Observe(o)
	}
	// The client arms keep-alive at the handshake, as Linux and Windows
	// do: these workloads are keep-alive's timers, and a gVisor host
	// alone would never arm them on a connection that stays quiet.
	armed := stack.HostOptions{Behaviour: stack.Behaviour{ArmAtEstablishment: true}}
	if client, err = net.AddHostWith("client", armed); err == nil {
		server, err = net.AddHost("server")
	}
	if err != nil {
		net.Close()
	}
	return net, client, server, count, err
}

// Silent describes a SilentConns workload.
type Silent struct {
	Conns int
	Seed  uint64
	// Spread is the time over which the connections are dialled, evenly;
	// zero dials them all at the same instant (a herd: the stacks handle
	// them in batches, and the listener falls back to SYN cookies).
	Spread      time.Duration
	MeasureHeap bool // measure live heap per connection (forces collections)
}

// SilentConns runs w.Conns keep-alive connections from one client to one
// server and silences the server a minute in: every connection probes 10
// times and is aborted. It returns once all are. Extra observers (a trace
// recorder, say) see the whole run.
func SilentConns(w Silent, extra ...stack.Observer) (RunResult, error) {
	n := w.Conns
	var res RunResult
	var before runtime.MemStats
	if w.MeasureHeap {
		runtime.GC()
		runtime.ReadMemStats(&before)
	}
	net, client, server, count, err := pair(w.Seed, extra)
	if err != nil {
		return res, err
	}
	defer net.Close()
	if _, err := server.Listen("tcp4", 80, stack.KeepAlive{}, nil); err != nil {
		return res, err
	}
	raddr := netip.AddrPortFrom(server.Addr(), 80)
	onEvent := func(c *stack.Conn) {
		if c.State() == stack.Closed && c.Host() == client {
			res.Aborted++
			c.OnEvent(nil)
			if res.Aborted == n {
				net.Stop()
			}
		}
	}
	var dialErr error
	for i := 0; i < n; i++ {
		at := time.Duration(i) * w.Spread / time.Duration(n)
		net.At(at, func() {
			c, err := client.Dial(raddr, KeepAlive)
			if err != nil {
				dialErr = err
				net.Stop()
				return
			}
			c.OnEvent(onEvent)
		})
	}
	if err := net.RunUntil(time.Minute); err != nil {
		return res, err
	}
	if dialErr != nil {
		return res, dialErr
	}
	if w.MeasureHeap {
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		res.HeapPerConn = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	}
	net.Silence(server, stack.Both)
	if err := net.Run(); err != nil {
		return res, err
	}
	res.Segments, res.Fired, res.End = count.n, net.Clock().Fired(), net.Now()
	if res.Aborted != n {
		return res, fmt.Errorf("bench: %d of %d connections aborted", res.Aborted, n)
	}
	return res, nil
}

// ConnectionLife runs one connection's whole life: two hosts, the
// handshake, a request and a reply, two hours idle, ten unanswered probes
// and the abort.
func ConnectionLife(seed uint64) (RunResult, error) {
	var res RunResult
	net, client, server, count, err := pair(seed, nil)
	if err != nil {
		return res, err
	}
	defer net.Close()
	buf := make([]byte, 64)
	_, err = server.Listen("tcp4", 80, stack.KeepAlive{}, func(c *stack.Conn) {
		c.OnEvent(func(c *stack.Conn) {
			if n, err := c.Recv(buf); err == nil && n > 0 {
				_, _ = c.Send([]byte("reply"))
				net.After(10*time.Second, func() { net.Silence(server, stack.Both) })
			}
		})
	})
	if err != nil {
		return res, err
	}
	c, err := client.Dial(netip.AddrPortFrom(server.Addr(), 80), KeepAlive)
	if err != nil {
		return res, err
	}
	sent := false
	c.OnEvent(func(c *stack.Conn) {
		if !sent && c.State() == stack.Established {
			sent = true
			_, _ = c.Send([]byte("request"))
		}
		if c.State() == stack.Closed {
			res.Aborted++
			net.Stop()
		}
	})
	if err := net.Run(); err != nil {
		return res, err
	}
	res.Segments, res.Fired, res.End = count.n, net.Clock().Fired(), net.Now()
	if res.Aborted != 1 {
		return res, fmt.Errorf("bench: the connection was not aborted")
	}
	return res, nil
}
