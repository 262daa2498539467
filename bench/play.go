package bench

// Playing a stream's operations on a queue: an exact one checked fire by
// fire, an inexact one on the stream's clock.

import (
	"fmt"

	"kasim/timers"
)

// player plays a stream's operations on a queue. An exact queue must
// return exactly the recorded fires. An inexact one (the Linux wheel, which
// fires late by design) runs on the stream's clock: at every recorded
// PopDue, fired or not, it fires what it has due, as the kernel's jiffies
// move on whether or not a timer expires, and so files the timers armed
// next from the right clock. A timer it still holds when the stream fires
// it is owed: it fires when the queue's rounding says, and if the stream
// arms the same ID again meanwhile (recordings reuse freed IDs), the new
// timer takes a queue ID of its own.
type player struct {
	q     timers.Queue
	exact bool
	h     *timers.FireHash
	late  int64 // the largest lateness of an exact queue's fires

	// For an inexact queue only. By stream ID: the queue's ID for it.
	qid []timers.ID
	// By queue ID: pending in the queue; pending but given up by its
	// stream ID (armed again elsewhere); owed (the stream fired it).
	held, orphan, owes []bool
	spare              []timers.ID // queue IDs past the stream's, free again
	owed               int
}

// newPlayer returns a player of q, whose stream's IDs are below ids,
// with the stream's fill pushed as timers 0, 1, ... (untimed).
func newPlayer(q timers.Queue, exact bool, ids int, fill []int64) *player {
	p := &player{q: q, exact: exact, h: timers.NewFireHash()}
	if !exact {
		p.qid = make([]timers.ID, ids)
		for i := range p.qid {
			p.qid[i] = timers.ID(i)
		}
		p.held, p.orphan, p.owes = make([]bool, ids), make([]bool, ids), make([]bool, ids)
	}
	for i, w := range fill {
		q.Push(timers.ID(i), w)
		if !exact {
			p.held[i] = true
		}
	}
	return p
}

// play runs ops, the stream's operations from number from on.
func (p *player) play(ops []timers.Op, from int64) error {
	if !p.exact {
		for _, op := range ops {
			p.playLate(op)
		}
		return nil
	}
	q := p.q
	for i, op := range ops {
		switch op.Kind {
		case timers.OpPush:
			q.Push(op.ID, op.When)
		case timers.OpReschedule:
			q.Reschedule(op.ID, op.When)
		case timers.OpRemove:
			q.Remove(op.ID)
		case timers.OpPeek:
			q.Peek()
		case timers.OpPopDue:
			id, when, ok := q.PopDue(op.When)
			if ok != op.Fired || ok && id != op.ID {
				return fmt.Errorf("operation %d: PopDue(%d) = %v, the stream expects %v", from+int64(i), op.When, popString(id, ok), popString(op.ID, op.Fired))
			}
			if ok {
				p.h.Add(id, when)
				p.late = max(p.late, op.When-when)
			}
		}
	}
	return nil
}

// playLate plays one operation on an inexact queue.
func (p *player) playLate(op timers.Op) {
	q := p.q
	switch op.Kind {
	case timers.OpPush, timers.OpReschedule:
		id := p.qid[op.ID]
		switch {
		case p.held[id] && !p.owes[id]:
			q.Reschedule(id, op.When)
			return
		case p.held[id]:
			// Still held, owed: the stream's ID starts a new timer.
			p.orphan[id] = true
			id = p.freshID()
			p.qid[op.ID] = id
		}
		q.Push(id, op.When)
		p.held[id] = true
	case timers.OpRemove:
		if id := p.qid[op.ID]; p.held[id] && !p.owes[id] {
			q.Remove(id)
			p.held[id] = false
		}
	case timers.OpPeek:
		q.Peek()
	case timers.OpPopDue:
		p.fireDue(op.When)
		if id := p.qid[op.ID]; op.Fired && p.held[id] && !p.owes[id] {
			p.owes[id] = true
			p.owed++
		}
	}
}

// fireDue fires what the inexact queue has due at now.
func (p *player) fireDue(now int64) {
	for {
		id, when, ok := p.q.PopDue(now)
		if !ok {
			return
		}
		p.h.Add(id, when)
		p.held[id] = false
		if p.owes[id] {
			p.owes[id] = false
			p.owed--
		}
		if p.orphan[id] {
			p.orphan[id] = false
			p.spare = append(p.spare, id)
		}
	}
}

// freshID returns a queue ID no stream ID uses.
func (p *player) freshID() timers.ID {
	if n := len(p.spare); n > 0 {
		id := p.spare[n-1]
		p.spare = p.spare[:n-1]
		return id
	}
	id := timers.ID(len(p.held))
	p.held, p.orphan, p.owes = append(p.held, false), append(p.orphan, false), append(p.owes, false)
	return id
}

// settleOwed runs an inexact queue's clock on, past the stream's end, until
// it has fired every timer the stream fired.
func (p *player) settleOwed() {
	for p.owed > 0 {
		next, ok := p.q.Peek()
		if !ok {
			return
		}
		p.fireDue(next)
	}
}

func popString(id timers.ID, ok bool) string {
	if !ok {
		return "nothing"
	}
	return fmt.Sprintf("timer %d", id)
}
