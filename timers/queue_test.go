package timers

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// modelQueue is the obviously correct Queue: a slice kept sorted by
// (deadline, scheduling order). Every real queue must match it call for call.
type modelQueue struct {
	seq     uint64
	entries []heapEntry
}

func (m *modelQueue) find(id ID) int {
	for i, e := range m.entries {
		if e.id == id {
			return i
		}
	}
	return -1
}

func (m *modelQueue) Push(id ID, when int64) {
	m.seq++
	m.entries = append(m.entries, heapEntry{when: when, seq: m.seq, id: id})
	sort.Slice(m.entries, func(i, j int) bool { return m.entries[i].before(m.entries[j]) })
}

func (m *modelQueue) Remove(id ID) {
	i := m.find(id)
	m.entries = append(m.entries[:i], m.entries[i+1:]...)
}

func (m *modelQueue) Reschedule(id ID, when int64) { m.Remove(id); m.Push(id, when) }

func (m *modelQueue) Peek() (int64, bool) {
	if len(m.entries) == 0 {
		return 0, false
	}
	return m.entries[0].when, true
}

func (m *modelQueue) PopDue(now int64) (ID, int64, bool) {
	if len(m.entries) == 0 || m.entries[0].when > now {
		return 0, 0, false
	}
	e := m.entries[0]
	m.entries = m.entries[1:]
	return e.id, e.when, true
}

func (m *modelQueue) Len() int { return len(m.entries) }

type popped struct {
	ID   ID
	When int64
}

// runQueueOps drives q and the model with the same operations decoded from
// ops and fails on the first difference. Deadlines come from a small range so
// that equal deadlines, the case that decides determinism, are common.
func runQueueOps(t *testing.T, q Queue, ops []byte) {
	t.Helper()
	m := &modelQueue{}
	const ids = 16
	pending := make([]bool, ids)
	var now int64
	for i := 0; i+1 < len(ops); i += 2 {
		op, arg := ops[i]%5, ops[i+1]
		id := ID(arg % ids)
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
			var got, want []popped
			for {
				id, when, ok := q.PopDue(now)
				if !ok {
					break
				}
				got = append(got, popped{id, when})
				pending[id] = false
			}
			for {
				id, when, ok := m.PopDue(now)
				if !ok {
					break
				}
				want = append(want, popped{id, when})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("op %d: fire order differs from the model (-want +got):\n%s", i/2, diff)
			}
		case 3, 4:
			gw, gok := q.Peek()
			ww, wok := m.Peek()
			if gw != ww || gok != wok || q.Len() != m.Len() {
				t.Fatalf("op %d: Peek/Len = %d,%v,%d; model %d,%v,%d", i/2, gw, gok, q.Len(), ww, wok, m.Len())
			}
		}
	}
}

func TestHeap4MatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 200; run++ {
		ops := make([]byte, 2000)
		for i := range ops {
			ops[i] = byte(r.UintN(256))
		}
		runQueueOps(t, NewHeap4(), ops)
	}
}

// FuzzHeap4 checks Heap4 against the model on arbitrary operation sequences;
// the seed corpus is in testdata/fuzz/FuzzHeap4.
func FuzzHeap4(f *testing.F) {
	f.Add([]byte{0, 0, 0, 16, 0, 32, 2, 7, 3, 0})
	f.Fuzz(func(t *testing.T, ops []byte) { runQueueOps(t, NewHeap4(), ops) })
}

func TestWheelMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for run := 0; run < 200; run++ {
		ops := make([]byte, 2000)
		for i := range ops {
			ops[i] = byte(r.UintN(256))
		}
		runQueueOps(t, NewWheel(), ops)
	}
}

// FuzzWheel checks the wheel against the model; seeds in testdata/fuzz.
func FuzzWheel(f *testing.F) {
	f.Add([]byte{0, 0, 0, 16, 0, 32, 2, 7, 3, 0})
	f.Fuzz(func(t *testing.T, ops []byte) { runQueueOps(t, NewWheel(), ops) })
}

// The model test uses small deadlines; this one spreads them over the whole
// int64 range, so every level and every cascade path is used, with
// Peek-driven jumps as the Clock makes them.
func TestWheelMatchesHeapAcrossAllLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w, h := NewWheel(), NewHeap4()
	pending := map[ID]bool{}
	var now int64
	for step := 0; step < 200000; step++ {
		id := ID(r.UintN(512))
		switch op := r.UintN(10); {
		case op < 5:
			// Deadlines from the next nanosecond to centuries ahead,
			// log-uniformly, and many exact repeats.
			d := int64(1) << r.UintN(62)
			d += r.Int64N(d)
			if r.UintN(4) == 0 {
				d = 1000
			}
			if pending[id] {
				w.Reschedule(id, now+d)
				h.Reschedule(id, now+d)
			} else {
				w.Push(id, now+d)
				h.Push(id, now+d)
				pending[id] = true
			}
		case op < 7:
			if pending[id] {
				w.Remove(id)
				h.Remove(id)
				delete(pending, id)
			}
		default:
			wd, wok := w.Peek()
			hd, hok := h.Peek()
			if wd != hd || wok != hok {
				t.Fatalf("step %d: Peek %d,%v; heap %d,%v", step, wd, wok, hd, hok)
			}
			if !wok {
				continue
			}
			now = wd
			for {
				wid, wwhen, ok1 := w.PopDue(now)
				hid, hwhen, ok2 := h.PopDue(now)
				if wid != hid || wwhen != hwhen || ok1 != ok2 {
					t.Fatalf("step %d: PopDue(%d) %d@%d,%v; heap %d@%d,%v", step, now, wid, wwhen, ok1, hid, hwhen, ok2)
				}
				if !ok1 {
					break
				}
				delete(pending, wid)
			}
		}
		if w.Len() != h.Len() {
			t.Fatalf("step %d: Len %d, heap %d", step, w.Len(), h.Len())
		}
	}
}

func TestHeap4EqualDeadlinesFireInSchedulingOrder(t *testing.T) {
	h := NewHeap4()
	for id := ID(0); id < 100; id++ {
		h.Push(id, 5)
	}
	h.Reschedule(3, 5) // rescheduled: now last among deadline 5
	var got []ID
	for {
		id, _, ok := h.PopDue(5)
		if !ok {
			break
		}
		got = append(got, id)
	}
	if len(got) != 100 || got[99] != 3 || got[0] != 0 || got[3] != 4 {
		t.Fatalf("order = %v", got)
	}
}
