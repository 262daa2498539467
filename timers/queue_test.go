package timers_test

import (
	"math/rand/v2"
	"testing"

	"kasim/timers"
	"kasim/timers/queuetest"
)

func newHeap4() timers.Queue { return timers.NewHeap4() }
func newWheel() timers.Queue { return timers.NewWheel() }

func TestHeap4MatchesModel(t *testing.T) { queuetest.Check(t, newHeap4) }
func TestHeap2MatchesModel(t *testing.T) {
	queuetest.Check(t, func() timers.Queue { return timers.NewHeap2() })
}
func TestWheelMatchesModel(t *testing.T) { queuetest.Check(t, newWheel) }

// With sequences running out every few hundred schedulings, so that the
// pending timers are renumbered again and again, the wheel still matches the
// model.
func TestWheelMatchesModelAcrossRenumbering(t *testing.T) {
	defer timers.SetSeqLimit(300)()
	queuetest.Check(t, newWheel)
}

// The model check uses small deadlines; this spreads them over the whole
// int64 range, so every wheel level and every cascade path is used.
func TestWheelMatchesHeapAcrossAllLevels(t *testing.T) {
	queuetest.Spread(t, timers.NewWheel(), 200000, 5)
}

// FuzzHeap4 and FuzzWheel check the queues against the model on arbitrary
// operation sequences; their seed corpora are in testdata/fuzz.
func FuzzHeap4(f *testing.F) {
	f.Add([]byte{0, 0, 0, 16, 0, 32, 2, 7, 3, 0})
	f.Fuzz(func(t *testing.T, ops []byte) { queuetest.Ops(t, timers.NewHeap4(), ops) })
}

func FuzzWheel(f *testing.F) {
	f.Add([]byte{0, 0, 0, 16, 0, 32, 2, 7, 3, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		for _, k := range wheelScales {
			queuetest.Ops(t, scaled{timers.NewWheel(), k}, ops)
		}
	})
}

// The model check's deadlines are a few nanoseconds apart, all inside one
// of the wheel's 65.5 µs ticks; scaled up they land in different ticks,
// slots and levels, so the same operation sequences exercise cascades,
// lazy moves and stale entries.
var wheelScales = []int64{1, 1 << 10, 1<<16 - 1, 1 << 16, 1<<16 + 1, 1 << 20, 1<<24 + 7, 1 << 30, 1 << 40}

func TestWheelMatchesModelAtEveryScale(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range wheelScales {
		for run := 0; run < 200; run++ {
			ops := make([]byte, 4000)
			for i := range ops {
				ops[i] = byte(r.UintN(256))
			}
			queuetest.Ops(t, scaled{timers.NewWheel(), k}, ops)
		}
	}
}

// scaled is a queue seen through a magnifying glass: deadlines are
// multiplied by k on the way in and divided on the way out.
type scaled struct {
	q timers.Queue
	k int64
}

func (s scaled) Push(id timers.ID, when int64)       { s.q.Push(id, when*s.k) }
func (s scaled) Remove(id timers.ID)                 { s.q.Remove(id) }
func (s scaled) Reschedule(id timers.ID, when int64) { s.q.Reschedule(id, when*s.k) }
func (s scaled) Len() int                            { return s.q.Len() }
func (s scaled) Peek() (int64, bool) {
	when, ok := s.q.Peek()
	return when / s.k, ok
}
func (s scaled) PopDue(now int64) (timers.ID, int64, bool) {
	id, when, ok := s.q.PopDue(now * s.k)
	return id, when / s.k, ok
}

func TestHeap4EqualDeadlinesFireInSchedulingOrder(t *testing.T) {
	h := timers.NewHeap4()
	for id := timers.ID(0); id < 100; id++ {
		h.Push(id, 5)
	}
	h.Reschedule(3, 5) // rescheduled: now last among deadline 5
	var got []timers.ID
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
