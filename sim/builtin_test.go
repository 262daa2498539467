package sim

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kasim/profile"
	"kasim/timers"
)

// clientView is what the trace says about one client connection, computed
// from segments alone (not from the recorder's keep-alive bookkeeping, which
// is what is under test).
type clientView struct {
	probes    []*SegmentEvent
	kaProbes  []*KeepAliveEvent
	abort     *KeepAliveEvent
	appErrors []*AppErrorEvent
	// arrivals are the times segments reached the client (emission plus
	// latency), in order.
	arrivals []time.Duration
	final    string
}

func viewClient(t *testing.T, events []Event, conn int, latency time.Duration) *clientView {
	t.Helper()
	v := &clientView{}
	for _, e := range events {
		switch e := e.(type) {
		case *SegmentEvent:
			if e.Host == "client" && e.Conn == conn && e.Class == ClassKeepAliveProbe {
				v.probes = append(v.probes, e)
			}
			if e.To == "client" && !e.Dropped {
				v.arrivals = append(v.arrivals, time.Duration(e.TNS)+latency)
			}
		case *KeepAliveEvent:
			if e.Conn != conn {
				continue
			}
			switch e.Action {
			case ActionProbe:
				v.kaProbes = append(v.kaProbes, e)
			case ActionAbort:
				v.abort = e
			}
		case *AppErrorEvent:
			if e.Conn == conn {
				v.appErrors = append(v.appErrors, e)
			}
		case *StateEvent:
			if e.Conn == conn {
				v.final = e.To
			}
		}
	}
	return v
}

func (v *clientView) lastArrivalBefore(t time.Duration) time.Duration {
	last := time.Duration(-1)
	for _, a := range v.arrivals {
		if a <= t {
			last = a
		}
	}
	return last
}

func TestBuiltinDeadPeerTiming(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		idle, interval, latency time.Duration
		count                   int
	}{
		{"seed document defaults 2h/1s/10", 2 * time.Hour, time.Second, 10 * time.Millisecond, 10},
		{"linux defaults 2h/75s/9", 2 * time.Hour, 75 * time.Second, 10 * time.Millisecond, 9},
		{"short 30s/5s/3 no latency", 30 * time.Second, 5 * time.Second, 0, 3},
		{"one probe 2s/1s/1", 2 * time.Second, time.Second, 25 * time.Millisecond, 1},
		{"long 45m/2m/127 (TCP_KEEPCNT's most)", 45 * time.Minute, 2 * time.Minute, 7 * time.Millisecond, 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := DefaultBuiltin()
			b.Idle, b.Interval, b.Count, b.Latency = tc.idle, tc.interval, tc.count, tc.latency
			res, err := RunBuiltin(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Clients) != 1 {
				t.Fatalf("%d clients, want 1", len(res.Clients))
			}
			conn := res.Clients[0].Conn
			v := viewClient(t, res.Events, conn, tc.latency)
			if v.abort == nil {
				t.Fatal("keep-alive never gave up on a dead peer")
			}
			// The probes that count are those after the last segment the
			// client received: earlier ones (short idle) were answered.
			abortAt := time.Duration(v.abort.TNS)
			last := v.lastArrivalBefore(abortAt)
			var unanswered []*SegmentEvent
			for _, p := range v.probes {
				if time.Duration(p.TNS) > last {
					unanswered = append(unanswered, p)
				}
			}
			if len(unanswered) != tc.count {
				t.Fatalf("%d unanswered probes after the last segment received at %v, want exactly %d", len(unanswered), last, tc.count)
			}
			for i, p := range unanswered {
				want := last + tc.idle + time.Duration(i)*tc.interval
				if got := time.Duration(p.TNS); got != want {
					t.Errorf("probe %d at %v, want exactly %v (last received %v + idle + %d x interval)", i+1, got, want, last, i)
				}
				// RFC 1122: SEG.SEQ = SND.NXT-1, no data. The client sent
				// 1 (SYN) + len(Request) sequence numbers.
				if p.Flags != "A" || p.Len != 0 || p.Seq != uint32(len(Request)) || p.Ack != uint32(1+len(Reply)) {
					t.Errorf("probe %d = %s seq=%d ack=%d len=%d, want A seq=%d ack=%d len=0", i+1, p.Flags, p.Seq, p.Ack, p.Len, len(Request), 1+len(Reply))
				}
				if !p.Dropped {
					t.Errorf("probe %d reached a silenced server", i+1)
				}
			}
			wantAbort := last + tc.idle + time.Duration(tc.count)*tc.interval
			if abortAt != wantAbort {
				t.Errorf("abort at %v, want exactly %v", abortAt, wantAbort)
			}
			if v.abort.Unanswered != tc.count || time.Duration(v.abort.LastRecvNS) != last {
				t.Errorf("abort event says %d unanswered, last received %v; want %d, %v", v.abort.Unanswered, time.Duration(v.abort.LastRecvNS), tc.count, last)
			}
			if len(v.appErrors) != 1 || v.appErrors[0].Error != "ETIMEDOUT" || v.appErrors[0].Code != 110 || time.Duration(v.appErrors[0].TNS) != wantAbort {
				t.Errorf("app errors = %+v, want one ETIMEDOUT (110) at %v", v.appErrors, wantAbort)
			}
			if v.final != "CLOSED" {
				t.Errorf("final state %s, want CLOSED", v.final)
			}
			if len(v.kaProbes) != len(v.probes) {
				t.Errorf("%d keep-alive probe decisions for %d probe segments", len(v.kaProbes), len(v.probes))
			}
		})
	}
}

func TestBuiltinLivePeerAnswersEveryProbe(t *testing.T) {
	b := DefaultBuiltin()
	b.PeerAlive = true
	b.Idle, b.Interval, b.Count = time.Minute, time.Second, 3
	b.Duration = 10*b.Idle + 30*time.Second
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	conn := res.Clients[0].Conn
	var probes, acks, rearms int
	var prevProbe *SegmentEvent
	for _, e := range res.Events {
		switch e := e.(type) {
		case *SegmentEvent:
			switch e.Class {
			case ClassKeepAliveProbe:
				if prevProbe != nil && acks < probes {
					t.Fatalf("probe at %s before the probe at %s was answered", e.T, prevProbe.T)
				}
				probes++
				prevProbe = e
			case ClassKeepAliveACK:
				acks++
				if e.Host != "server" || e.Dropped {
					t.Errorf("keep-alive ACK %+v", e)
				}
			}
		case *KeepAliveEvent:
			switch e.Action {
			case ActionRearm:
				rearms++
				if e.Unanswered != 1 {
					t.Errorf("rearm after %d unanswered probes, want 1", e.Unanswered)
				}
			case ActionAbort:
				t.Fatalf("keep-alive aborted a connection to a live peer at %s", e.T)
			}
		case *AppErrorEvent:
			t.Fatalf("application error with a live peer: %+v", e)
		}
	}
	// Each answered probe restarts a full idle period: 10 periods, 10
	// probes (the 11th would be due after the run ends).
	if probes != 10 || acks != probes || rearms != probes {
		t.Errorf("probes %d, keep-alive ACKs %d, rearms %d; want 10 of each", probes, acks, rearms)
	}
	if o := res.Clients[0]; o.Final != "ESTABLISHED" || o.Conn != conn {
		t.Errorf("connection ended %s, want ESTABLISHED", o.Final)
	}
	if res.End != b.Duration {
		t.Errorf("run ended at %v, want %v", res.End, b.Duration)
	}
}

func TestBuiltinManyConnectionsEachGetsReplyBeforeSilence(t *testing.T) {
	b := DefaultBuiltin()
	b.Conns = 200
	b.Idle, b.Count = 10*time.Minute, 2
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	replies := 0
	for _, e := range res.Events {
		if s, ok := e.(*SegmentEvent); ok && s.Host == "server" && s.Class == ClassData && !s.Dropped {
			replies++
		}
	}
	if replies != b.Conns {
		t.Errorf("%d replies before the silence, want %d", replies, b.Conns)
	}
	// Clients start within the first second; the last reply follows within
	// a round trip, and the silence SilenceAfter later.
	if res.SilencedAt > time.Second+b.SilenceAfter+100*time.Millisecond {
		t.Errorf("server fell silent at %v: some client was served late", res.SilencedAt)
	}
	if len(res.Clients) != b.Conns {
		t.Fatalf("%d client outcomes, want %d", len(res.Clients), b.Conns)
	}
	for _, o := range res.Clients {
		if o.AbortAt < 0 || len(o.Probes) != b.Count || o.Error != "ETIMEDOUT" {
			t.Fatalf("client sock%d: abort %v, %d probes, error %q", o.Conn, o.AbortAt, len(o.Probes), o.Error)
		}
		if want := o.LastRecv + b.Idle + time.Duration(b.Count)*b.Interval; o.AbortAt != want {
			t.Errorf("client sock%d gave up at %v, want %v", o.Conn, o.AbortAt, want)
		}
	}
}

// traceJSONL runs b and returns its trace as JSONL.
func traceJSONL(t *testing.T, b Builtin) []byte {
	t.Helper()
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, res.Events); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func traceHash(t *testing.T, b Builtin) [32]byte { return sha256.Sum256(traceJSONL(t, b)) }

// TestDeterminism runs the built-in scenario and a 1,000-connection one 20
// times each under GOMAXPROCS 1 and 2: every trace must be the same bytes.
func TestDeterminism(t *testing.T) {
	many := DefaultBuiltin()
	many.Conns = 1000
	lossy := DefaultBuiltin()
	lossy.Conns, lossy.Loss, lossy.PeerAlive, lossy.Idle = 50, 0.2, true, time.Minute
	win := DefaultBuiltin()
	win.Conns, win.Idle, win.Interval, win.Count = 200, 0, 0, 0
	win.Profile = windows(t, "xp", "TcpMaxDataRetransmissions=7")
	for _, sc := range []struct {
		name string
		b    Builtin
	}{{"builtin", DefaultBuiltin()}, {"1000 connections", many}, {"50 connections, 20% loss", lossy}, {"200 Windows XP connections", win}} {
		t.Run(sc.name, func(t *testing.T) {
			runs := 20
			if raceEnabled {
				runs = 4 // the race detector makes each run ~10x slower
			}
			want := traceHash(t, sc.b)
			prev := runtime.GOMAXPROCS(0)
			defer runtime.GOMAXPROCS(prev)
			for _, procs := range []int{1, 2} {
				runtime.GOMAXPROCS(procs)
				for i := 0; i < runs; i++ {
					if got := traceHash(t, sc.b); got != want {
						t.Fatalf("GOMAXPROCS=%d run %d: trace differs from the first run", procs, i+1)
					}
				}
			}
		})
	}
}

func TestSeedChangesTrace(t *testing.T) {
	a, b := DefaultBuiltin(), DefaultBuiltin()
	b.Seed = 2
	if traceHash(t, a) == traceHash(t, b) {
		t.Error("seeds 1 and 2 gave the same trace: the seed does not reach the stacks")
	}
}

func TestBuiltinValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Builtin)
		want string
	}{
		{func(b *Builtin) { b.Idle = 0 }, "idle 0s: want more than 0"},
		{func(b *Builtin) { b.Interval = -time.Second }, "interval -1s"},
		{func(b *Builtin) { b.Count = 0 }, "count 0: want 1 to 255"},
		{func(b *Builtin) { b.Count = 256 }, "count 256"},
		{func(b *Builtin) { b.Conns = MaxConns + 1 }, "conns 1000001"},
		{func(b *Builtin) { b.Loss = 1 }, "loss 1"},
		{func(b *Builtin) { b.Latency = 2 * time.Minute }, "latency 2m0s"},
		{func(b *Builtin) { b.Timers = "calendar" }, `timers "calendar": want heap4, heap2, wheel, linux, runtime`},
		{func(b *Builtin) { b.Timers, b.RecordTimers = "faketime", io.Discard }, "recording timers needs one exact queue (heap4, heap2"},
		{func(b *Builtin) { b.Timers, b.RecordTimers = "linux", io.Discard }, "recording timers needs one exact queue (heap4, heap2"},
	} {
		b := DefaultBuiltin()
		tc.mod(&b)
		err := b.Validate()
		if err == nil || !bytes.HasPrefix([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("Validate() = %v, want an error starting %q", err, tc.want)
		}
		if _, err := RunBuiltin(b); err == nil {
			t.Errorf("RunBuiltin accepted %s", tc.want)
		}
	}
	if err := DefaultBuiltin().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func ExampleRunBuiltin() {
	b := DefaultBuiltin() // 2 h idle, 1 s interval, 10 probes; the server dies
	res, err := RunBuiltin(b)
	if err != nil {
		panic(err)
	}
	o := res.Clients[0]
	fmt.Println("probes:", len(o.Probes))
	fmt.Println("first probe:", FormatTime(o.Probes[0]))
	fmt.Println("gave up:", FormatTime(o.AbortAt), "with", o.Error)
	// Output:
	// probes: 10
	// first probe: 02:00:00.040
	// gave up: 02:00:10.040 with ETIMEDOUT
}

func TestFormatTime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "00:00:00.000",
		1500 * time.Microsecond: "00:00:00.001",
		2*time.Hour + 10*time.Second + 40*time.Millisecond:     "02:00:10.040",
		99*time.Hour + 59*time.Minute + 59999*time.Millisecond: "99:59:59.999",
		1234 * time.Hour: "1234:00:00.000",
		-time.Second:     "-00:00:01.000",
	} {
		if got := FormatTime(d); got != want {
			t.Errorf("FormatTime(%v) = %q, want %q", d, got, want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite golden files in testdata/ from the current output")

// TestBuiltinGolden holds the built-in scenario's trace to the golden copy
// in testdata/golden. Regenerate with `go test ./sim -update`, then read
// the diff before committing it.
func TestBuiltinGolden(t *testing.T) {
	for name, b := range map[string]Builtin{
		"builtin-default.jsonl":   DefaultBuiltin(),
		"builtin-live-peer.jsonl": func() Builtin { b := DefaultBuiltin(); b.PeerAlive = true; return b }(),
		"builtin-win7.jsonl": func() Builtin {
			b := DefaultBuiltin()
			b.Idle, b.Interval, b.Count = 0, 0, 0
			b.Profile = windows(t, "win7")
			return b
		}(),
		"builtin-xp-registry-3-7.jsonl": func() Builtin {
			b := DefaultBuiltin()
			b.Idle, b.Interval, b.Count = 0, 0, 0
			b.Profile = windows(t, "xp", "TcpMaxDataRetransmissions=3", "PPTPTcpMaxDataRetransmissions=7")
			return b
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			checkGolden(t, filepath.Join("..", "testdata", "golden", name), traceJSONL(t, b))
		})
	}
}

// TestEveryExactQueueGivesTheSameTrace: the timer queue is an
// implementation detail of the clock; 10,000 connections must give the same
// bytes on each.
func TestEveryExactQueueGivesTheSameTrace(t *testing.T) {
	b := DefaultBuiltin()
	b.Conns = 10000
	if testing.Short() || raceEnabled {
		b.Conns = 1000
	}
	var want [32]byte
	for i, name := range []string{"heap4", "wheel"} {
		b.Timers = name
		got := traceHash(t, b)
		if i == 0 {
			want = got
		} else if got != want {
			t.Errorf("queue %s gives a different trace from heap4", name)
		}
	}
}

// The nondeterministic queues drive a whole run: one connection, whose timers
// never tie, gets the probes, abort and error of the exact queues at the same
// virtual instants. (The runtime queue takes real time: this run spans about
// 0.6 s.)
func TestNondeterministicQueuesRunTheScenario(t *testing.T) {
	b := DefaultBuiltin()
	// Windows 10 1709 sets milliseconds (SIO_KEEPALIVE_VALS) and the count
	// (TCP_KEEPCNT), so the real-time queue's run stays short.
	b.Profile = windows(t, "win10-1709")
	b.Idle, b.Interval, b.Count = 300*time.Millisecond, 100*time.Millisecond, 2
	b.SilenceAfter = 50 * time.Millisecond
	want, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Clients) != 1 || len(want.Clients[0].Probes) != 2 || want.Clients[0].Error == "" {
		t.Fatalf("heap4 run: %+v, want one client with 2 probes and an error", want.Clients)
	}
	ran := 0
	for _, spec := range timers.Specs() {
		if !spec.Nondeterministic {
			continue
		}
		ran++
		name := spec.Name
		b.Timers = name
		got, err := RunBuiltin(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want.Clients, got.Clients); diff != "" {
			t.Errorf("%s: outcome differs from heap4 (-heap4 +%s):\n%s", name, name, diff)
		}
	}
	if ran < 2 {
		t.Errorf("%d nondeterministic queues ran, want runtime and faketime at least", ran)
	}
}

// On the Linux-style queue a 1 s interval becomes 1.024 s, as on a HZ=250
// kernel, and the first probe comes when the 2 s idle timer's bucket
// expires; the run stays deterministic.
func TestLinuxTimerSlack(t *testing.T) {
	b := DefaultBuiltin()
	b.Timers = "linux"
	b.Idle, b.Interval, b.Count = 2*time.Second, time.Second, 3
	b.SilenceAfter = 0
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	o := res.Clients[0]
	if len(o.Probes) != 3 {
		t.Fatalf("%d probes, want 3", len(o.Probes))
	}
	for i := 1; i < len(o.Probes); i++ {
		if gap := o.Probes[i] - o.Probes[i-1]; gap != 1024*time.Millisecond {
			t.Errorf("probe %d came %v after probe %d, want 1.024s", i+1, gap, i)
		}
	}
	// Last received at 40ms = jiffy 10; 10+500 = 510 lands on level 1:
	// ((510>>3)+1)<<3 = 512 jiffies = 2.048s.
	if o.Probes[0] != 2048*time.Millisecond {
		t.Errorf("first probe at %v, want 2.048s", o.Probes[0])
	}
	if traceHash(t, b) != traceHash(t, b) {
		t.Error("the linux queue is not deterministic")
	}
}

// A run's recorded timer trace replays on every exact queue with the live
// run's fire hash.
func TestRecordedTimerTraceReplays(t *testing.T) {
	var buf bytes.Buffer
	b := DefaultBuiltin()
	b.Conns, b.Timers, b.RecordTimers = 50, "wheel", &buf
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := timers.ReadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if res.TimerFires < 500 || tr.Hash != res.TimerHash || tr.Fires != res.TimerFires {
		t.Fatalf("run: %d fires, hash %x; trace trailer: %d, %x", res.TimerFires, res.TimerHash, tr.Fires, tr.Hash)
	}
	for name, q := range map[string]timers.Queue{"heap4": timers.NewHeap4(), "heap2": timers.NewHeap2(), "wheel": timers.NewWheel()} {
		h, err := timers.Replay(q, tr.Ops)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.Sum() != res.TimerHash {
			t.Errorf("%s: replay hash %x, live %x", name, h.Sum(), res.TimerHash)
		}
	}
}

// A queue registered with timers.Register is one a run can name, exact
// (the trace of heap4), or per host; and the error for an unknown name
// lists it.
func TestRegisteredQueueRunsTheScenario(t *testing.T) {
	registerTestQueues.Do(func() {
		for _, s := range []timers.Spec{
			{Name: "sim-test-exact", New: func() timers.Queue { return timers.NewHeap2() }, Exact: true},
			{Name: "sim-test-tick", New: func() timers.Queue { return timers.NewTickQueue(int64(500 * time.Millisecond)) }, PerHost: true},
		} {
			if err := timers.Register(s); err != nil {
				t.Fatal(err)
			}
		}
	})
	b := DefaultBuiltin()
	b.Conns = 20
	want := traceHash(t, b)
	b.Timers = "sim-test-exact"
	if got := traceHash(t, b); got != want {
		t.Error("the registered exact queue gives a different trace from heap4")
	}
	b.RecordTimers = io.Discard
	if err := b.Validate(); err != nil {
		t.Errorf("recording on a registered exact queue: %v", err)
	}
	b.Timers = "sim-test-tick"
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), "sim-test-exact), not sim-test-tick's per-host queues") {
		t.Errorf("recording on a registered per-host queue: %v", err)
	}
	b.RecordTimers = nil
	b.Conns = 1
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	// Every stack timer fires on a 500 ms tick: the probes come late.
	o := res.Clients[0]
	if len(o.Probes) != DefaultCount || o.Probes[1]-o.Probes[0] != DefaultInterval {
		t.Errorf("probes on the ticking queue: %v", o.Probes)
	}
	for _, p := range o.Probes {
		if p%(500*time.Millisecond) != 0 {
			t.Errorf("probe at %v: not on a 500ms tick", p)
		}
	}
	b.Timers = "calendar"
	if err := b.Validate(); err == nil || !strings.HasSuffix(err.Error(), "faketime, sim-test-exact or sim-test-tick") {
		t.Errorf("unknown queue: %v, want the registered ones listed", err)
	}
}

var registerTestQueues sync.Once

// The built-in client sets keep-alive through its system's socket calls,
// so what those calls cannot say is refused before the run, naming the
// call: TCP_KEEPIDLE counts whole seconds, Linux's TCP_KEEPCNT stops at
// 127; Winsock's SIO_KEEPALIVE_VALS takes milliseconds.
func TestBuiltinRefusesWhatTheSocketCallsCannotSay(t *testing.T) {
	for _, tc := range []struct {
		profile        string
		idle, interval time.Duration
		count          int
		want           string
	}{
		{"gvisor", 1500 * time.Millisecond, time.Second, 3, "idle 1.5s: gvisor sets it with TCP_KEEPIDLE, in whole seconds"},
		{"linux", time.Minute, 250 * time.Millisecond, 3, "interval 250ms: linux sets it with TCP_KEEPINTVL, in whole seconds"},
		{"linux", time.Minute, time.Second, 200, "count 200: linux's setsockopt(TCP_KEEPCNT, 200) fails with EINVAL"},
		{"gvisor", 32768 * time.Second, time.Second, 3, "idle 9h6m8s: gvisor's setsockopt(TCP_KEEPIDLE, 32768) fails with EINVAL"},
		{"freebsd", time.Minute, time.Second, 200, ""},
		{"win10-1709", 1500 * time.Millisecond, 250 * time.Millisecond, 200, ""},
	} {
		b := DefaultBuiltin()
		p := profile.MustLookup(tc.profile)
		b.Profile, b.Idle, b.Interval, b.Count = &p, tc.idle, tc.interval, tc.count
		err := b.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%s %v/%v/%d: %v, want %q", tc.profile, tc.idle, tc.interval, tc.count, err, tc.want)
		}
	}
}

// The built-in scenario is a scenario: testdata/examples/builtin.yaml,
// the file that writes it out, gives the built-in run's trace but for the
// opening note (the file's description is the run's, so that too is the
// same but for where it came from). With several connections (count and
// spread) and a Windows client (one more recv and closesocket once the
// connection fails) it still does.
func TestBuiltinIsItsFile(t *testing.T) {
	data, err := os.ReadFile("../testdata/examples/builtin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(string) string
		builtin func(*Builtin)
	}{
		{"default", nil, nil},
		{"three connections, lossy",
			func(y string) string {
				y = strings.Replace(y, "c: {client: client, server: server}", "c: {client: client, server: server, count: 3, spread: 1s}", 1)
				y = strings.Replace(y, "1 client connection(s)", "3 client connection(s)", 1)
				return strings.Replace(y, "duration: 1000h", "duration: 1000h\nnetwork: {loss: 0.1}", 1)
			},
			func(b *Builtin) { b.Conns, b.Loss = 3, 0.1 }},
		{"win7",
			func(y string) string {
				y = strings.Replace(y, "client: {profile: gvisor}", "client: {profile: win7}", 1)
				// The system's keep-alive times: SO_KEEPALIVE alone.
				y = strings.Replace(y, "keepalive: {idle: 2h, interval: 1s, count: 10}", "setsockopt: {level: SOL_SOCKET, opt: SO_KEEPALIVE, value: 1}", 1)
				return y + "  - {on: failed, conn: c, recv: true}\n  - {on: failed, conn: c, close: true}\n"
			},
			func(b *Builtin) { b.Profile, b.Idle, b.Interval, b.Count = windows(t, "win7"), 0, 0, 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := string(data)
			b := DefaultBuiltin()
			if tc.edit != nil {
				y, b.Idle, b.Interval, b.Count = tc.edit(y), 2*time.Hour, time.Second, 10
				tc.builtin(&b)
			}
			_, run := mustRun(t, "builtin.yaml", y)
			res, err := RunBuiltin(b)
			if err != nil {
				t.Fatal(err)
			}
			lines := func(events []Event) []string {
				var buf bytes.Buffer
				if err := WriteJSONL(&buf, events); err != nil {
					t.Fatal(err)
				}
				return strings.Split(buf.String(), "\n")[1:] // the opening note names the file
			}
			got, want := lines(run.Events), lines(res.Events)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the file's trace differs from the built-in run's (-built-in +file):\n%s", diff)
			}
			if len(got) < 40 {
				t.Errorf("%d events: want the whole story", len(got))
			}
		})
	}
}

// A timer trace is deterministic: the same run records the same bytes
// whether the garbage collector ran often (freeing timers' clock IDs for
// reuse early) or never (freeing none). The trace numbers timers itself.
func TestRecordedTimerTraceIsDeterministic(t *testing.T) {
	record := func(gcPercent int) []byte {
		defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
		var buf bytes.Buffer
		b := DefaultBuiltin()
		b.Conns, b.Loss, b.RecordTimers = 300, 0.05, &buf
		if _, err := RunBuiltin(b); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	often, never := record(1), record(-1)
	if len(often) < 10000 {
		t.Fatalf("a trace of %d bytes: want a run with many timers", len(often))
	}
	if !bytes.Equal(often, never) {
		t.Errorf("the trace recorded with the collector running often (%d bytes) differs from the one without it (%d bytes)", len(often), len(never))
	}
}
