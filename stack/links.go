package stack

import (
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// The links between hosts: each direction's path, what impairs it
// (silence, partitions, loss, latency, a middlebox that forgets idle
// flows, a scenario's drop filter), and the decision whether a segment
// gets through.

// path is one direction between two hosts.
type path struct {
	from, to    *Host
	latency     time.Duration
	loss        float64
	partitioned bool
	inflight    flights // packets on a link do not overtake each other
	timer       tcpip.Timer

	partitionedWhy, lostWhy string
	// box, if set, is the stateful middlebox (a NAT or firewall) this
	// path goes through; both directions of a pair share it.
	box *middlebox
}

// middlebox forgets a TCP flow that has been idle longer than idle, as NATs
// and stateful firewalls do, and then drops the flow's packets: a flow is
// created by a SYN and refreshed by every packet it passes.
type middlebox struct {
	idle  time.Duration
	flows map[[2]netip.AddrPort]time.Duration // last packet, keyed by the sorted endpoints
}

// pass reports why the box drops seg now, or "" if it lets it through.
func (m *middlebox) pass(seg *Segment, now time.Duration) string {
	k := [2]netip.AddrPort{seg.Src, seg.Dst}
	if k[1].Compare(k[0]) < 0 {
		k[0], k[1] = k[1], k[0]
	}
	flags := seg.TCP.Flags()
	if flags.Contains(header.TCPFlagSyn) && !flags.Contains(header.TCPFlagAck) {
		m.flows[k] = now
		return ""
	}
	last, ok := m.flows[k]
	if !ok {
		return "middlebox: no such flow (forgotten, or never opened by a SYN)"
	}
	if now-last > m.idle {
		delete(m.flows, k)
		return fmt.Sprintf("middlebox: flow idle %v, longer than %v: forgotten", now-last, m.idle)
	}
	m.flows[k] = now
	return ""
}

type flight struct {
	due time.Duration
	p   packet
}

// flights is a path's FIFO of packets in flight. It reuses its array: a
// slice advanced past delivered packets and appended to would reallocate
// every time its window reached the array's end, and a run of 100,000
// connections threw away about 700 bytes a connection that way.
type flights struct {
	q    []flight
	head int // q[head:] are in flight
}

func (f *flights) len() int { return len(f.q) - f.head }

// first returns the oldest packet in flight.
func (f *flights) first() *flight { return &f.q[f.head] }

func (f *flights) push(x flight) {
	if len(f.q) == cap(f.q) && f.head >= len(f.q)/2 {
		// At least half the array is delivered: move the rest down, which
		// costs no more than the deliveries did.
		k := copy(f.q, f.q[f.head:])
		clear(f.q[k:])
		f.q, f.head = f.q[:k], 0
	}
	f.q = append(f.q, x)
}

// pop takes the oldest packet out of flight.
func (f *flights) pop() flight {
	x := f.q[f.head]
	f.q[f.head] = flight{}
	if f.head++; f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	}
	return x
}

func (n *Network) path(from, to *Host) *path {
	k := [2]int{from.index, to.index}
	p := n.paths[k]
	if p == nil {
		p = &path{from: from, to: to, latency: n.cfg.Latency,
			partitionedWhy: "partitioned: " + from.name + " cannot reach " + to.name,
			lostWhy:        "lost: random loss on " + from.name + " -> " + to.name}
		n.paths[k] = p
	}
	return p
}

func (n *Network) emitLink(c LinkChange) {
	c.At = n.Now()
	for _, o := range n.observers {
		o.Link(c)
	}
}

// Silence makes h fall silent in direction d: packets it sends (Outbound)
// and/or packets sent to it (Inbound) are dropped. Silencing both is a dead
// peer: a crashed host, or one whose cable was pulled.
func (n *Network) Silence(h *Host, d Direction) {
	n.silenced[h.index] |= d
	n.emitLink(LinkChange{Action: "silence", A: h, Direction: d})
}

// Heal undoes Silence on h.
func (n *Network) Heal(h *Host) {
	delete(n.silenced, h.index)
	n.emitLink(LinkChange{Action: "heal", A: h})
}

// Partition cuts both directions between a and b.
func (n *Network) Partition(a, b *Host) {
	n.path(a, b).partitioned = true
	n.path(b, a).partitioned = true
	n.emitLink(LinkChange{Action: "partition", A: a, B: b})
}

// HealPartition undoes Partition between a and b.
func (n *Network) HealPartition(a, b *Host) {
	n.path(a, b).partitioned = false
	n.path(b, a).partitioned = false
	n.emitLink(LinkChange{Action: "heal", A: a, B: b})
}

// SetMiddlebox puts a stateful middlebox (a NAT, a firewall) between a and
// b that forgets TCP flows idle for longer than idle and drops their later
// packets; zero removes it. The box sees the flows that open after it is
// put in place, as a box on a new route would.
func (n *Network) SetMiddlebox(a, b *Host, idle time.Duration) error {
	if idle < 0 {
		return fmt.Errorf("stack: middlebox idle %v: want zero or more", idle)
	}
	var box *middlebox
	if idle > 0 {
		box = &middlebox{idle: idle, flows: make(map[[2]netip.AddrPort]time.Duration)}
	}
	n.path(a, b).box = box
	n.path(b, a).box = box
	n.emitLink(LinkChange{Action: "middlebox", A: a, B: b, Idle: idle})
	return nil
}

// SetLoss makes the path from a to b drop each packet with probability p,
// drawn from the Network's seeded generator.
func (n *Network) SetLoss(from, to *Host, p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("stack: loss %v: want a probability from 0 to 1", p)
	}
	n.path(from, to).loss = p
	n.emitLink(LinkChange{Action: "loss", A: from, B: to, Loss: p})
	return nil
}

// SetLatency sets the one-way delay between a and b, both directions.
// Packets already in flight keep their delivery times.
func (n *Network) SetLatency(a, b *Host, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("stack: latency %v: want zero or more", d)
	}
	n.path(a, b).latency = d
	n.path(b, a).latency = d
	n.emitLink(LinkChange{Action: "latency", A: a, B: b, Latency: d})
	return nil
}

// SetDropFilter has the network drop each TCP segment f gives a reason
// for, after its sender's silence and a partition and before a
// middlebox and random loss: a scenario's drops by segment class. f sees
// the segment as it goes out (Probe set) and must not keep it.
func (n *Network) SetDropFilter(f func(*Segment) string) { n.dropFilter = f }

// dropReason says why a packet from->to would be dropped now, or "". The
// strings are built once per host or path: a dead peer drops every probe.
func (n *Network) dropReason(from, to *Host, p *path, seg *Segment) string {
	if n.silenced[from.index]&Outbound != 0 {
		return from.sendsNothing
	}
	if to == nil {
		return "no route: no host has that address"
	}
	if n.silenced[to.index]&Inbound != 0 {
		return to.receivesNothing
	}
	if p.partitioned {
		return p.partitionedWhy
	}
	if n.dropFilter != nil && seg.TCP != nil {
		if why := n.dropFilter(seg); why != "" {
			return why
		}
	}
	if p.box != nil && seg.TCP != nil {
		if why := p.box.pass(seg, n.Now()); why != "" {
			return why
		}
	}
	if p.loss > 0 && n.loss.Float64() < p.loss {
		return p.lostWhy
	}
	return ""
}
