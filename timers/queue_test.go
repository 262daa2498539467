package timers_test

import (
	"testing"

	"kasim/timers"
	"kasim/timers/queuetest"
)

func newHeap4() timers.Queue { return timers.NewHeap4() }
func newWheel() timers.Queue { return timers.NewWheel() }

func TestHeap4MatchesModel(t *testing.T) { queuetest.Check(t, newHeap4) }
func TestWheelMatchesModel(t *testing.T) { queuetest.Check(t, newWheel) }

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
	f.Fuzz(func(t *testing.T, ops []byte) { queuetest.Ops(t, timers.NewWheel(), ops) })
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
