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
	"kasim/timers"
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
// the extra observers attached, on a clock with queue q (nil: heap4).
func pair(seed uint64, q timers.Queue, extra []stack.Observer) (net *stack.Network, client, server *stack.Host, count *segmentCounter, err error) {
	net = stack.NewNetwork(stack.Config{Seed: seed, Latency: 5 * time.Millisecond, Queue: q})
	count = &segmentCounter{}
	net.Observe(count)
	for _, o := range extra {
		net.Observe(o)
	}
	// The client arms keep-alive at the handshake, as Linux and Windows
	// do: these workloads are keep-alive's timers, and a gVisor host
	// alone would never arm them on a connection that stays quiet.
	if client, err = net.AddHostWith("client", clientOptions); err == nil {
		server, err = net.AddHost("server")
	}
	if err != nil {
		net.Close()
	}
	return net, client, server, count, err
}

// clientOptions are the client hosts': keep-alive armed at the handshake.
var clientOptions = stack.HostOptions{Behaviour: stack.Behaviour{ArmAtEstablishment: true}}

// ConnsPerClient is how many connections one client host of SilentConns
// dials at most (its ports, with room); past it the workload adds client
// hosts and deals the connections to them in turn, as kasim run does.
const ConnsPerClient = 40_000

// Silent describes a SilentConns workload.
type Silent struct {
	Conns int
	Seed  uint64
	// Timers names the clock's timer queue (timers.Lookup): "" is heap4.
	Timers string
	// Spread is the time over which the connections are dialled, evenly;
	// zero dials them all at the same instant (a herd: the stacks handle
	// them in batches, and the listener falls back to SYN cookies).
	Spread      time.Duration
	MeasureHeap bool // measure live heap per connection (forces collections)
	// observers, if set, makes a run's extra observers (the benchmarks'
	// traced shape: a fresh trace recorder each run).
	observers func() []stack.Observer
}

// SilentConns runs w.Conns keep-alive connections to one server (from one
// client host, or ConnsPerClient to each of several) and silences the
// server a minute in: every connection probes 10 times and is aborted. It returns once all are. Extra observers (a trace
// recorder, say) see the whole run.
func SilentConns(w Silent, extra ...stack.Observer) (RunResult, error) {
	n := w.Conns
	var res RunResult
	var before runtime.MemStats
	if w.MeasureHeap {
		runtime.GC()
		runtime.ReadMemStats(&before)
	}
	var q timers.Queue
	if w.Timers != "" {
		spec, ok := timers.Lookup(w.Timers)
		if !ok || spec.PerHost {
			return res, fmt.Errorf("bench: timers %q: want a queue for the whole network (%v)", w.Timers, timers.Names())
		}
		q = spec.New()
		if c, ok := q.(interface{ Close() }); ok {
			defer c.Close()
		}
	}
	net, client, server, count, err := pair(w.Seed, q, extra)
	if err != nil {
		return res, err
	}
	defer net.Close()
	clients := []*stack.Host{client}
	for len(clients)*ConnsPerClient < n {
		h, err := net.AddHostWith(fmt.Sprintf("client%d", len(clients)+1), clientOptions)
		if err != nil {
			return res, err
		}
		clients = append(clients, h)
	}
	if _, err := server.Listen("tcp4", 80, stack.KeepAlive{}, nil); err != nil {
		return res, err
	}
	raddr := netip.AddrPortFrom(server.Addr(), 80)
	onEvent := func(c *stack.Conn) {
		if c.State() == stack.Closed && c.Host() != server {
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
		from := clients[i%len(clients)]
		net.At(at, func() {
			c, err := from.Dial(raddr, KeepAlive)
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
	net, client, server, count, err := pair(seed, nil, nil)
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
