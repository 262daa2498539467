package timers_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"kasim/internal/gctest"
	"kasim/timers"
	"kasim/timers/queuetest"
)

// streamTrace reads a trace with a TraceReader, replaying each chunk on q
// as it comes, and returns what it read and the fire hash. As
// bench.CheckTrace does, it reads on after a bad operation: damage
// further on is the error, as when ReadTrace read it all first.
func streamTrace(r io.Reader, q timers.Queue) (ops, chunks int64, h *timers.FireHash, hash uint64, fires int64, err error) {
	tr, err := timers.NewTraceReader(r)
	if err != nil {
		return 0, 0, nil, 0, 0, err
	}
	p := timers.NewReplayer(q)
	var bad error
	for {
		c, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, nil, 0, 0, err
		}
		if len(c) == 0 || len(c) > timers.TraceChunk {
			return 0, 0, nil, 0, 0, fmt.Errorf("a chunk of %d operations", len(c))
		}
		chunks++
		if bad == nil {
			bad = p.Play(c)
		}
	}
	if bad != nil {
		return 0, 0, nil, 0, 0, bad
	}
	if _, err := tr.Next(); err != io.EOF {
		return 0, 0, nil, 0, 0, fmt.Errorf("Next after the end: %v, want io.EOF", err)
	}
	hash, fires = tr.Trailer()
	return tr.Ops(), chunks, p.Hash(), hash, fires, nil
}

// A trace of several chunks streamed and replayed chunk by chunk gives
// what ReadTrace and Replay give it whole.
func TestTraceReaderStreamsWhatReadTraceHolds(t *testing.T) {
	var buf bytes.Buffer
	live := queuetest.Trace(t, &buf, 3*timers.TraceChunk+1234, 500)
	data := buf.Bytes()
	whole, err := timers.ReadTrace(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	hw, err := timers.Replay(timers.NewWheel(), whole.Ops)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Hash != live || hw.Sum() != live || hw.Fires != whole.Fires || whole.Fires < 1000 {
		t.Fatalf("in memory: trailer %x, replay %x (%d fires, trailer %d), live %x", whole.Hash, hw.Sum(), hw.Fires, whole.Fires, live)
	}
	// Read in small pieces too, so that records straddle the refills.
	for name, r := range map[string]io.Reader{"whole": bytes.NewReader(data), "one byte a read": iotest.OneByteReader(bytes.NewReader(data))} {
		ops, chunks, h, hash, fires, err := streamTrace(r, timers.NewWheel())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ops != int64(len(whole.Ops)) || chunks != 4 || h.Sum() != live || h.Fires != whole.Fires || hash != live || fires != whole.Fires {
			t.Errorf("%s: %d ops in %d chunks, hash %x (%d fires), trailer %x (%d); in memory %d ops, %x (%d)",
				name, ops, chunks, h.Sum(), h.Fires, hash, fires, len(whole.Ops), live, whole.Fires)
		}
	}
}

// Damage anywhere, in the first chunk or a later one, is the error
// ReadTrace always gave, at the same byte; a bad operation is the error
// Replay gives, numbered from the trace's first.
func TestTraceReaderErrorsAreReadTraces(t *testing.T) {
	var buf bytes.Buffer
	queuetest.Trace(t, &buf, 2*timers.TraceChunk+100, 300)
	data := buf.Bytes()
	r := rand.New(rand.NewPCG(3, 4))
	cases := map[string][]byte{"trailing": append(bytes.Clone(data), 0)}
	for _, at := range []int{21, len(data) / 2, len(data) - 30, len(data) - 9, len(data) - 1} {
		cases[fmt.Sprintf("cut at %d", at)] = data[:at]
	}
	for i := 0; i < 40; i++ {
		at := 20 + r.IntN(len(data)-20)
		bad := bytes.Clone(data)
		bad[at] = byte(r.IntN(256))
		cases[fmt.Sprintf("byte %d set to %d", at, bad[at])] = bad
	}
	errs := 0
	for name, bad := range cases {
		want, werr := oldReadTrace(bytes.NewReader(bad))
		got, gerr := timers.ReadTrace(bytes.NewReader(bad))
		_, _, _, _, _, serr := streamTrace(iotest.HalfReader(bytes.NewReader(bad)), timers.NewHeap4())
		if werr != nil {
			errs++
			if gerr == nil || gerr.Error() != werr.Error() {
				t.Errorf("%s: ReadTrace: %v, before: %v", name, gerr, werr)
			}
			if serr == nil || serr.Error() != werr.Error() {
				t.Errorf("%s: streamed: %v, ReadTrace before: %v", name, serr, werr)
			}
			continue
		}
		if gerr != nil || len(got.Ops) != len(want.Ops) || got.Hash != want.Hash || got.Fires != want.Fires {
			t.Errorf("%s: ReadTrace: %v, before it read the trace", name, gerr)
			continue
		}
		// It parses: replayed whole or streamed, the same error, or none.
		_, rerr := timers.Replay(timers.NewHeap4(), want.Ops)
		if fmt.Sprint(serr) != fmt.Sprint(rerr) {
			t.Errorf("%s: streamed replay: %v, whole: %v", name, serr, rerr)
		}
	}
	if errs < len(cases)/2 {
		t.Errorf("only %d of %d damaged traces are refused as read: the test damages too little", errs, len(cases))
	}
}

// What a TraceReader and a Replayer hold is the chunk, the window and a
// bit per timer: streaming eight times the operations allocates no more.
func TestTraceReaderMemoryIsBounded(t *testing.T) {
	allocated := func(ops int) uint64 {
		pr, pw := io.Pipe()
		go func() {
			_, err := queuetest.RecordTrace(pw, ops, 1000) // the recorder buffers
			pw.CloseWithError(err)
		}()
		var err error
		var n int64
		q := timers.NewHeap4()
		used := gctest.Allocated(func() { n, _, _, _, _, err = streamTrace(pr, q) })
		if err != nil || n != int64(ops) {
			t.Fatalf("%d operations: read %d, %v", ops, n, err)
		}
		t.Logf("%d operations: %d KB allocated", ops, used>>10)
		return used
	}
	small, large := allocated(500_000), allocated(4_000_000)
	// The recorder's writes through the pipe allocate a little per write.
	if large > small+small/2 || large > 8<<20 {
		t.Errorf("streaming 500,000 operations allocated %d KB, 4,000,000 %d KB: want about the same, under 8 MB", small>>10, large>>10)
	}
}

// oldReadTrace is ReadTrace as it was before the TraceReader (commit
// 4e2e945): the reference the reader's errors must match.
func oldReadTrace(rd io.Reader) (*timers.Trace, error) {
	const traceMagic, traceTrailer = "kasim timer trace 1\n", 0xff
	br := bufio.NewReaderSize(rd, 1<<16)
	magic := make([]byte, len(traceMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != traceMagic {
		return nil, errors.New("not a kasim timer trace (no header)")
	}
	t := &timers.Trace{}
	off := int64(len(traceMagic))
	cr := &countingReader{r: br, n: off}
	var ids int64
	var fires int64
	for {
		kb, err := cr.ReadByte()
		if err == io.EOF {
			return nil, fmt.Errorf("byte %d: trace ends without its trailer (truncated?)", cr.n)
		}
		if err != nil {
			return nil, err
		}
		at := cr.n - 1
		k := timers.OpKind(kb)
		var op timers.Op
		op.Kind = k
		switch k {
		case timers.OpPush, timers.OpReschedule, timers.OpRemove, timers.OpPopDue:
			a, err := binary.ReadUvarint(cr)
			if err != nil || a > uint64(^timers.ID(0)) {
				return nil, fmt.Errorf("byte %d: %v record: bad id", at, k)
			}
			if k == timers.OpPopDue {
				op.Fired = a != 0
				if op.Fired {
					op.ID = timers.ID(a - 1)
				}
			} else {
				op.ID = timers.ID(a)
			}
			if k != timers.OpRemove {
				if op.When, err = binary.ReadVarint(cr); err != nil {
					return nil, fmt.Errorf("byte %d: %v record: bad time", at, k)
				}
			}
			switch {
			case k == timers.OpPush && int64(op.ID) > ids:
				return nil, fmt.Errorf("byte %d: push of timer %d, but the next new timer is %d: a trace's timer IDs are dense (0, 1, 2, ...)", at, op.ID, ids)
			case k == timers.OpPush && int64(op.ID) == ids:
				ids++
			case (k != timers.OpPopDue || op.Fired) && int64(op.ID) >= ids:
				return nil, fmt.Errorf("byte %d: %v of timer %d, which was never pushed (%d timers so far)", at, k, op.ID, ids)
			}
			if op.Fired {
				fires++
			}
		case timers.OpPeek:
		case traceTrailer:
			var h [8]byte
			if _, err := io.ReadFull(cr, h[:]); err != nil {
				return nil, fmt.Errorf("byte %d: truncated trailer", at)
			}
			t.Hash = binary.LittleEndian.Uint64(h[:])
			told, err := binary.ReadUvarint(cr)
			if err != nil {
				return nil, fmt.Errorf("byte %d: truncated trailer", at)
			}
			if told != uint64(fires) {
				return nil, fmt.Errorf("byte %d: the trailer counts %d fires; the trace's pops fired %d", at, told, fires)
			}
			t.Fires = fires
			if _, err := cr.ReadByte(); err != io.EOF {
				return nil, fmt.Errorf("byte %d: data after the trailer", cr.n)
			}
			return t, nil
		default:
			return nil, fmt.Errorf("byte %d: unknown record kind %d", at, kb)
		}
		if len(t.Ops) == timers.MaxTraceOps {
			return nil, fmt.Errorf("byte %d: more than %d operations: kasim replays at most that many", at, timers.MaxTraceOps)
		}
		t.Ops = append(t.Ops, op)
	}
}

type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
