// Package queuetest checks that a timers.Queue keeps the contract the
// virtual clock relies on: timers come out in (deadline, scheduling order),
// never early, and Peek and Len tell the truth. Run it against your own
// queue before you benchmark it or plug it into a Network:
//
//	func TestMyQueue(t *testing.T) { queuetest.Check(t, func() timers.Queue { return myqueue.New() }) }
package queuetest

import (
	"io"
	"math/rand/v2"
	"sort"

	"kasim/timers"
)

// T is the part of *testing.T the checks use.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Check drives fresh queues from newQueue with random operation sequences,
// short and long deadlines, equal deadlines and Peek-driven jumps, and
// compares every answer with an obviously correct model.
func Check(t T, newQueue func() timers.Queue) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 100; run++ {
		ops := make([]byte, 2000)
		for i := range ops {
			ops[i] = byte(r.UintN(256))
		}
		Ops(t, newQueue(), ops)
	}
	Spread(t, newQueue(), 100000, 3)
}

// model is the obviously correct Queue: a slice kept sorted by (deadline,
// scheduling order).
type model struct {
	seq     uint64
	entries []entry
}

type entry struct {
	when int64
	seq  uint64
	id   timers.ID
}

func (m *model) Push(id timers.ID, when int64) {
	m.seq++
	m.entries = append(m.entries, entry{when, m.seq, id})
	sort.Slice(m.entries, func(i, j int) bool {
		a, b := m.entries[i], m.entries[j]
		return a.when < b.when || a.when == b.when && a.seq < b.seq
	})
}

func (m *model) Remove(id timers.ID) {
	for i, e := range m.entries {
		if e.id == id {
			m.entries = append(m.entries[:i], m.entries[i+1:]...)
			return
		}
	}
}

func (m *model) Reschedule(id timers.ID, when int64) { m.Remove(id); m.Push(id, when) }

func (m *model) Peek() (int64, bool) {
	if len(m.entries) == 0 {
		return 0, false
	}
	return m.entries[0].when, true
}

func (m *model) PopDue(now int64) (timers.ID, int64, bool) {
	if len(m.entries) == 0 || m.entries[0].when > now {
		return 0, 0, false
	}
	e := m.entries[0]
	m.entries = m.entries[1:]
	return e.id, e.when, true
}

func (m *model) Len() int { return len(m.entries) }

// Ops drives q and the model with the operations encoded in ops (two bytes
// each) and fails t at the first difference. Deadlines come from a small
// range, so equal deadlines, the case determinism rests on, are common. It
// suits a fuzz target: f.Fuzz(func(t *testing.T, ops []byte) {
// queuetest.Ops(t, myqueue.New(), ops) }). After a failure (Fatalf) it stops.
func Ops(t T, q timers.Queue, ops []byte) {
	t.Helper()
	m := &model{}
	const ids = 16
	pending := make([]bool, ids)
	var now int64
	for i := 0; i+1 < len(ops); i += 2 {
		op, arg := ops[i]%5, ops[i+1]
		id := timers.ID(arg % ids)
		when := now + int64(arg/ids)
		switch op {
		case 0: // push or reschedule
			if pending[id] {
				q.Reschedule(id, when)
				m.Reschedule(id, when)
			} else {
				q.Push(id, when)
				m.Push(id, when)
				pending[id] = true
			}
		case 1:
			if pending[id] {
				q.Remove(id)
				m.Remove(id)
				pending[id] = false
			}
		case 2: // advance and drain everything due
			now += int64(arg % 8)
			for {
				gid, gwhen, gok := q.PopDue(now)
				wid, wwhen, wok := m.PopDue(now)
				if gid != wid || gwhen != wwhen || gok != wok {
					t.Fatalf("op %d: PopDue(%d) = %d@%d,%v; want %d@%d,%v", i/2, now, gid, gwhen, gok, wid, wwhen, wok)
					return
				}
				if !gok {
					break
				}
				pending[gid] = false
			}
		default:
			gw, gok := q.Peek()
			ww, wok := m.Peek()
			if gw != ww || gok != wok || q.Len() != m.Len() {
				t.Fatalf("op %d: Peek/Len = %d,%v,%d; want %d,%v,%d", i/2, gw, gok, q.Len(), ww, wok, m.Len())
				return
			}
		}
	}
}

// Spread runs steps random operations on q and timers.Heap4 side by side,
// with deadlines from a nanosecond to a century ahead and the clock jumping
// from deadline to deadline as the Clock makes it, and fails at the first
// difference.
func Spread(t T, q timers.Queue, steps int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	h := timers.NewHeap4()
	pending := map[timers.ID]bool{}
	var now int64
	for step := 0; step < steps; step++ {
		id := timers.ID(r.UintN(512))
		switch op := r.UintN(10); {
		case op < 5:
			d := int64(1) << r.UintN(62)
			d += r.Int64N(d)
			if r.UintN(4) == 0 {
				d = 1000 // many equal deadlines
			}
			if pending[id] {
				q.Reschedule(id, now+d)
				h.Reschedule(id, now+d)
			} else {
				q.Push(id, now+d)
				h.Push(id, now+d)
				pending[id] = true
			}
		case op < 7:
			if pending[id] {
				q.Remove(id)
				h.Remove(id)
				delete(pending, id)
			}
		default:
			qd, qok := q.Peek()
			hd, hok := h.Peek()
			if qd != hd || qok != hok {
				t.Fatalf("step %d: Peek = %d,%v; want %d,%v", step, qd, qok, hd, hok)
			}
			if !qok {
				continue
			}
			now = qd
			for {
				qid, qwhen, ok1 := q.PopDue(now)
				hid, hwhen, ok2 := h.PopDue(now)
				if qid != hid || qwhen != hwhen || ok1 != ok2 {
					t.Fatalf("step %d: PopDue(%d) = %d@%d,%v; want %d@%d,%v", step, now, qid, qwhen, ok1, hid, hwhen, ok2)
				}
				if !ok1 {
					break
				}
				delete(pending, qid)
			}
		}
		if q.Len() != h.Len() {
			t.Fatalf("step %d: Len = %d; want %d", step, q.Len(), h.Len())
		}
	}
}

// RecordTrace records ops seeded operations on a Heap4 into w, as
// timers.Recorder writes them: pushes, removes and reschedules of about
// live pending timers (IDs below 2*live), peeks, and pops as the clock
// moves on by a few nanoseconds, deadlines within a microsecond, so that
// equal deadlines are common. It returns the recorded fire hash. A trace
// for tests of trace readers and replays, of any length.
func RecordTrace(w io.Writer, ops, live int) (uint64, error) {
	rec := timers.NewRecorder(timers.NewHeap4(), w)
	r := rand.New(rand.NewPCG(1, uint64(ops)))
	pending := make([]bool, 2*live)
	var ids []timers.ID // pending, in no order
	now := int64(0)
	for n := 0; n < ops; n++ {
		switch k := r.IntN(10); {
		case k < 3 && len(ids) < 2*live:
			id := timers.ID(r.IntN(2 * live))
			if !pending[id] {
				rec.Push(id, now+r.Int64N(1000))
				pending[id] = true
				ids = append(ids, id)
				continue
			}
			rec.Peek()
		case k < 4 && len(ids) > 0:
			i := r.IntN(len(ids))
			rec.Remove(ids[i])
			pending[ids[i]] = false
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
		case k < 6 && len(ids) > 0:
			rec.Reschedule(ids[r.IntN(len(ids))], now+r.Int64N(1000))
		case k < 7:
			rec.Peek()
		default:
			now += r.Int64N(10)
			if id, _, ok := rec.PopDue(now); ok {
				pending[id] = false
				for i, p := range ids {
					if p == id {
						ids[i] = ids[len(ids)-1]
						ids = ids[:len(ids)-1]
						break
					}
				}
			}
		}
	}
	err := rec.Close()
	sum, _ := rec.Hash()
	return sum, err
}

// Trace is RecordTrace that fails t if writing the trace fails.
func Trace(t T, w io.Writer, ops, live int) uint64 {
	t.Helper()
	sum, err := RecordTrace(w, ops, live)
	if err != nil {
		t.Fatalf("recording a trace: %v", err)
	}
	return sum
}
