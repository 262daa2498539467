package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"kasim/internal/gctest"
	"kasim/timers"
	"kasim/timers/queuetest"
)

// A replay streamed from the trace, chunk by chunk, measures what a replay
// of the operations held in memory does: the same operations, timers and
// fire hash, on exact queues and on the Linux wheel (guarded).
func TestReplayStreamsAsInMemory(t *testing.T) {
	var buf bytes.Buffer
	live := queuetest.Trace(t, &buf, 2*timers.TraceChunk+777, 400)
	data := buf.Bytes()
	tr, err := timers.ReadTrace(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := CheckTrace(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	peak := 0
	for _, op := range tr.Ops {
		peak = max(peak, int(op.ID)+1)
	}
	if ct.Ops != int64(len(tr.Ops)) || ct.Timers != peak || ct.Hash != live || ct.Fires != tr.Fires || tr.Fires < 1000 {
		t.Fatalf("CheckTrace: %+v; in memory %d ops, %d timers, hash %x, %d fires", ct, len(tr.Ops), peak, live, tr.Fires)
	}
	s := Settings{Samples: 1000}.withDefaults()
	for _, q := range []string{"wheel", "heap4", "linux"} {
		got, err := RunReplay(ct, q, s)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		want, err := runStream(q, "replay", peak, stream{ops: tr.Ops}, s)
		if err != nil {
			t.Fatalf("%s in memory: %v", q, err)
		}
		if got.Ops != want.Ops || got.N != want.N || got.FireHash != want.FireHash || got.Note != want.Note || got.NsPerOp <= 0 {
			t.Errorf("%s: streamed %d ops, n=%d, hash %s, %.1f ns/op; in memory %d ops, n=%d, hash %s", q, got.Ops, got.N, got.FireHash, got.NsPerOp, want.Ops, want.N, want.FireHash)
		}
		if q != "linux" && got.FireHash != fmt.Sprintf("%x", live) {
			t.Errorf("%s: fire hash %s, recorded %x", q, got.FireHash, live)
		}
	}
}

// CheckTrace gives ReadTrace's error for damage in a later chunk, at the
// same byte, and Replay's for an operation no run makes.
func TestCheckTraceStreamedErrors(t *testing.T) {
	var buf bytes.Buffer
	queuetest.Trace(t, &buf, 2*timers.TraceChunk, 300)
	data := buf.Bytes()
	cut := data[:len(data)-len(data)/4] // in the last chunk
	_, want := timers.ReadTrace(bytes.NewReader(cut))
	if _, err := CheckTrace(bytes.NewReader(cut)); err == nil || want == nil || err.Error() != want.Error() {
		t.Errorf("a cut trace: CheckTrace %v, ReadTrace %v", err, want)
	}
	// Two pushes of timer 0 (at time 0) before the trailer: the second,
	// if not the first, pushes a pending timer. The trace still parses
	// (no fires added), in a chunk after the first two.
	tr, err := timers.ReadTrace(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	at := len(data) - 9 - len(binary.AppendUvarint(nil, uint64(tr.Fires)))
	bad := append(append(data[:at:at], 1, 0, 0, 1, 0, 0), data[at:]...)
	bt, err := timers.ReadTrace(bytes.NewReader(bad))
	if err != nil {
		t.Fatalf("the damaged trace does not parse: %v", err)
	}
	_, want = timers.Replay(timers.NewHeap4(), bt.Ops)
	if _, err := CheckTrace(bytes.NewReader(bad)); err == nil || want == nil || err.Error() != want.Error() {
		t.Errorf("a push of a pending timer: CheckTrace %v, Replay %v", err, want)
	}
}

// A replay holds its queue, its pending bits and a chunk: replaying eight
// times the operations from a file allocates no more.
func TestReplayMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("records and replays 4.5 million operations")
	}
	allocated := func(ops int) uint64 {
		path := filepath.Join(t.TempDir(), "run.trace")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		queuetest.Trace(t, f, ops, 2000) // closes f
		if f, err = os.Open(path); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var r Result
		used := gctest.Allocated(func() {
			var ct *CheckedTrace
			if ct, err = CheckTrace(f); err == nil {
				r, err = RunReplay(ct, "heap4", Settings{Samples: 1000})
			}
		})
		if err != nil || r.Ops != int64(ops) {
			t.Fatalf("%d operations: replayed %d, %v", ops, r.Ops, err)
		}
		t.Logf("%d operations: %d KB allocated", ops, used>>10)
		return used
	}
	small, large := allocated(500_000), allocated(4_000_000)
	if large > small+small/2 || large > 16<<20 {
		t.Errorf("checking and replaying 500,000 operations allocated %d KB, 4,000,000 %d KB: want about the same, under 16 MB", small>>10, large>>10)
	}
}

// A run that never touched its queue records an empty trace: it replays
// to nothing, without percentiles or a fire hash, and without failing.
func TestReplayOfAnEmptyTrace(t *testing.T) {
	var buf bytes.Buffer
	if err := timers.NewRecorder(timers.NewHeap4(), &buf).Close(); err != nil {
		t.Fatal(err)
	}
	ct, err := CheckTrace(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"wheel", "linux"} {
		r, err := RunReplay(ct, q, Settings{})
		if err != nil || r.Ops != 0 || r.FireHash != "" {
			t.Errorf("%s: %v, %d ops, hash %q", q, err, r.Ops, r.FireHash)
		}
	}
	if _, err := RunReplay(&CheckedTrace{}, "wheel", Settings{}); err == nil {
		t.Error("RunReplay of a trace CheckTrace did not return: no error")
	}
}

// The Linux wheel files a timer by its distance from the wheel's clock,
// which a replay moves on every recorded PopDue, fired or not, as the
// kernel's jiffies move: a 1 s timer armed after two idle hours is filed
// on the 32 ms level and fires 1.024 s after it was armed, not on the
// level for two hours away, minutes late.
func TestReplayMovesTheLinuxWheelsClock(t *testing.T) {
	const armed = int64(2 * time.Hour)
	r := replayOnLinux(t, func(rec *timers.Recorder) {
		rec.PopDue(armed) // nothing pending: nothing fires, but the clock moves
		rec.Push(1, armed+int64(time.Second))
		rec.Peek()
		if _, _, ok := rec.PopDue(armed + int64(time.Second)); !ok {
			t.Fatal("the recorded run did not fire its timer")
		}
	})
	if late := time.Duration(r.LatenessNs); late != 24*time.Millisecond {
		t.Errorf("lateness %v; want 24ms (a 1 s timeout at HZ=250 fires after 1.024 s)", late)
	}
}

// A recording reuses a fired timer's ID at once. The Linux wheel, which
// still holds the timer (it rounds a two-hour timeout up to its level's
// 131 s granularity), fires it late, and the ID's next timer, a second
// armed as the first fires in the recording, fires on time beside it: the
// replay keeps the stream's clock and gives the new timer an ID of its own.
func TestReplayFiresLateTimersOnTheirOwn(t *testing.T) {
	const due = int64(2 * time.Hour)
	r := replayOnLinux(t, func(rec *timers.Recorder) {
		rec.Push(0, due)
		rec.Peek()
		rec.PopDue(due)
		rec.Push(0, due+int64(time.Second))
		rec.Peek()
		rec.PopDue(due + int64(time.Second))
	})
	// Jiffies at HZ=250 are 4 ms: the second timer's 250 jiffies become
	// 256 (1.024 s); the first's 1,800,000 go to level 5 and fire at the
	// next multiple of 32,768, 1,802,240 (2h0m8.96s).
	want := timers.NewFireHash()
	want.Add(1, due+int64(1024*time.Millisecond))
	want.Add(0, int64(1_802_240*4*time.Millisecond))
	if r.FireHash != strconv.FormatUint(want.Sum(), 16) {
		t.Errorf("fire hash %s; want %x (timer 1 at 2h0m1.024s, then timer 0 at 2h0m8.96s)", r.FireHash, want.Sum())
	}
	if late := time.Duration(r.LatenessNs); late != 8960*time.Millisecond {
		t.Errorf("lateness %v; want 8.96s", late)
	}
}

// replayOnLinux records what record does on a Heap4 and replays the trace
// on the Linux wheel.
func replayOnLinux(t *testing.T, record func(*timers.Recorder)) Result {
	t.Helper()
	var buf bytes.Buffer
	rec := timers.NewRecorder(timers.NewHeap4(), &buf)
	record(rec)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	ct, err := CheckTrace(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := RunReplay(ct, "linux", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
