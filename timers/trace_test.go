package timers_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"kasim/internal/gctest"
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
		// The reader gives the errors ReadTrace always gave, streamed in
		// pieces as whole.
		if _, werr := oldReadTrace(bytes.NewReader(data)); fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("ReadTrace: %v; before the TraceReader: %v", err, werr)
		}
		_, _, h, _, _, serr := streamTrace(iotest.HalfReader(bytes.NewReader(data)), timers.NewWheel())
		if err != nil {
			if serr == nil || serr.Error() != err.Error() {
				t.Fatalf("streamed: %v; ReadTrace: %v", serr, err)
			}
			return
		}
		// Whatever parses must replay without breaking a queue's
		// preconditions: Replay refuses what the run could not have done.
		hw, rerr := timers.Replay(timers.NewWheel(), tr.Ops)
		if fmt.Sprint(serr) != fmt.Sprint(rerr) || rerr == nil && (h.Sum() != hw.Sum() || h.Fires != hw.Fires) {
			t.Fatalf("streamed replay: %v; whole: %v", serr, rerr)
		}
	})
}

// ReadTrace bounds what it reads as it reads: no record can make a queue
// size its storage past what the file's length allows, and a trace whose
// trailer disagrees with it is refused, each with the byte and the reason.
func TestReadTraceRefusesWhatNoRunRecords(t *testing.T) {
	const header = "kasim timer trace 1\n"
	uv := func(v uint64) string { return string(binary.AppendUvarint(nil, v)) }
	sv := func(v int64) string { return string(binary.AppendVarint(nil, v)) }
	trailer := func(fires uint64) string { return "\xff" + strings.Repeat("\x00", 8) + uv(fires) }
	push := func(id uint64, when int64) string { return "\x01" + uv(id) + sv(when) }
	for _, tc := range []struct{ name, data, want string }{
		// Found by go test ./timers -fuzz FuzzReadTrace: replaying it took
		// 102 s and 8.8 GB before.
		{"the fuzzer's 37 bytes", header + "\x01\xf7ɏ\x8f\x020\xff\x1000000000", "byte 20: push of timer"},
		{"timer 2^32-2", header + push(1<<32-2, 5) + trailer(0), "byte 20: push of timer 4294967294, but the next new timer is 0"},
		{"a gap in the IDs", header + push(0, 5) + push(2, 5) + trailer(0), "byte 23: push of timer 2, but the next new timer is 1"},
		{"remove of a timer never pushed", header + push(0, 5) + "\x02" + uv(7) + trailer(0), "byte 23: remove of timer 7, which was never pushed (1 timers so far)"},
		{"a pop of a timer never pushed", header + "\x05" + uv(4) + sv(5) + trailer(1), "byte 20: popdue of timer 3, which was never pushed"},
		{"the trailer's count", header + push(0, 5) + "\x05" + uv(1) + sv(5) + trailer(2), "the trailer counts 2 fires; the trace's pops fired 1"},
	} {
		var err error
		used := gctest.Allocated(func() { _, err = timers.ReadTrace(strings.NewReader(tc.data)) })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if used > 1<<20 {
			t.Errorf("%s: reading %d bytes allocated %d KB, want at most 1 MB", tc.name, len(tc.data), used>>10)
		}
	}
	ok := header + push(0, 5) + push(1, 7) + "\x05" + uv(1) + sv(5) + "\x02" + uv(1) + push(1, 9) + trailer(1)
	if tr, err := timers.ReadTrace(strings.NewReader(ok)); err != nil || len(tr.Ops) != 5 || tr.Fires != 1 {
		t.Errorf("a good trace: %v, %+v", err, tr)
	}
}
