package timers_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"kasim/timers"
)

// recordRun drives a Clock over a recorded queue with timers that re-arm,
// stop and reset one another, and returns the trace bytes and the live
// run's hash.
func recordRun(t *testing.T, q timers.Queue) ([]byte, uint64, int64) {
	t.Helper()
	var buf bytes.Buffer
	rec := timers.NewRecorder(q, &buf)
	c := timers.NewClock(rec, time.Time{})
	r := rand.New(rand.NewPCG(7, 8))
	var ts []interface {
		Reset(time.Duration)
		Stop() bool
	}
	for i := 0; i < 300; i++ {
		var tm interface {
			Reset(time.Duration)
			Stop() bool
		}
		tm = c.AfterFunc(time.Duration(r.Int64N(int64(time.Minute))), func() {
			switch r.IntN(3) {
			case 0:
				tm.Reset(time.Duration(r.Int64N(int64(10 * time.Second))))
			case 1:
				ts[r.IntN(len(ts))].Stop()
			default:
				ts[r.IntN(len(ts))].Reset(time.Second) // equal deadlines
			}
		})
		ts = append(ts, tm)
	}
	for step := 0; step < 5000; step++ {
		next, ok := c.NextDeadline()
		if !ok {
			break
		}
		c.AdvanceTo(next)
		c.FireDue(1 << 20)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	sum, fires := rec.Hash()
	if fires < 400 {
		t.Fatalf("only %d fires recorded; the run is too small to mean anything", fires)
	}
	return buf.Bytes(), sum, fires
}

func TestReplayGivesTheRecordedFireHash(t *testing.T) {
	data, live, fires := recordRun(t, timers.NewWheel())
	tr, err := timers.ReadTrace(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Hash != live || tr.Fires != fires {
		t.Fatalf("trailer says %x/%d, the live run %x/%d", tr.Hash, tr.Fires, live, fires)
	}
	for name, q := range map[string]timers.Queue{"wheel": timers.NewWheel(), "heap4": timers.NewHeap4(), "heap2": timers.NewHeap2()} {
		h, err := timers.Replay(q, tr.Ops)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.Sum() != live || h.Fires != fires {
			t.Errorf("%s: replay hash %x (%d fires), live %x (%d)", name, h.Sum(), h.Fires, live, fires)
		}
	}
	// An inexact queue diverges, and Replay says where.
	if _, err := timers.Replay(timers.NewLinuxWheel(250), tr.Ops); err == nil || !strings.Contains(err.Error(), "PopDue") {
		t.Fatalf("replay on the Linux wheel: err = %v, want a PopDue divergence", err)
	}
}

func TestReadTraceRejectsDamage(t *testing.T) {
	data, _, _ := recordRun(t, timers.NewHeap4())
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": data[:len(data)/2],
		"no magic":  append([]byte("kasim timer trace 9\n"), data[20:]...),
		"trailing":  append(append([]byte{}, data...), 1),
		"bad kind":  append(append([]byte{}, data[:20]...), 0x42),
	} {
		if _, err := timers.ReadTrace(bytes.NewReader(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzReadTrace(f *testing.F) {
	f.Add([]byte("kasim timer trace 1\n\x01\x00\x02\x05\x01\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := timers.ReadTrace(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever parses must replay without breaking a queue's
		// preconditions: Replay refuses what the run could not have done.
		timers.Replay(timers.NewWheel(), tr.Ops)
	})
}
