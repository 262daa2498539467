package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kasim/internal/gctest"
)

// Flow collections nested past the limit are refused before the YAML
// parser sees them: its cost grows with the square of their depth (a
// 200 KB file of brackets took 8.8 GB and 50 s), its lexer's linearly.
// Budget: 100 MB allocated for a 200 KB file (measured: 48 and 55 MB).
func TestDeepFlowNestingIsRefusedCheaply(t *testing.T) {
	for name, body := range map[string]string{
		"sequences": strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		"mappings":  strings.Repeat("{a: ", 50000) + "1" + strings.Repeat("}", 50000),
	} {
		var err error
		used := gctest.Allocated(func() { _, err = ParseScenario("n.yaml", []byte("duration: 1h\nx: "+body+"\n")) })
		if err == nil || !strings.Contains(err.Error(), "n.yaml:2:") || !strings.Contains(err.Error(), "nested more than 32 levels deep") {
			t.Errorf("%s: %v, want nesting refused at its place on line 2", name, err)
		}
		if used > 100<<20 {
			t.Errorf("%s: refusing a 200 KB file allocated %d MB, want at most 100 MB", name, used>>20)
		}
		t.Logf("%s: %d MB allocated", name, used>>20)
	}
	// Brackets in quoted text, comments and block scalars are not nesting.
	deep := strings.Repeat("[", 40)
	ok := "name: \"" + deep + "\"\ndescription: |\n  " + deep + "\nduration: 1h # " + deep + "\nhosts: {a: {}}\n"
	if _, err := ParseScenario("q.yaml", []byte(ok)); err != nil {
		t.Errorf("brackets that are text: %v", err)
	}
}

// A scenario's sends have one budget, MaxScenarioSendBytes: at the limit
// it runs in bounded memory (no copy per action: every {bytes: N} shares
// one pattern), one byte past it is refused at the action that crosses
// it. 9,999 sends of 1 MiB, each within MaxSendBytes, once reached 9.3 GB.
func TestSendsHaveOneBudget(t *testing.T) {
	file := func(sends int) []byte {
		var b strings.Builder
		b.WriteString("duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, connect: true}\n")
		for i := 0; i < sends; i++ {
			fmt.Fprintf(&b, "  - {at: %ds, conn: c, send: {bytes: %d}}\n", 1+i, MaxSendBytes)
		}
		return []byte(b.String())
	}
	atLimit := MaxScenarioSendBytes / MaxSendBytes
	var run *ScenarioRun
	used := gctest.Allocated(func() {
		s, err := ParseScenario("limit.yaml", file(atLimit))
		if err != nil {
			t.Fatal(err)
		}
		if run, err = RunScenario(s); err != nil {
			t.Fatal(err)
		}
	})
	sent := 0
	for _, c := range run.Calls {
		if c.Result > 1 {
			sent += c.Result
		}
	}
	if sent != MaxScenarioSendBytes {
		t.Errorf("at the limit the sends took %d bytes, want %d", sent, MaxScenarioSendBytes)
	}
	// Budget: 512 MB allocated in all, 16 MiB of payload through two
	// stacks and its trace (measured: 9 MB).
	if used > 512<<20 {
		t.Errorf("a scenario at the send limit allocated %d MB, want at most 512", used>>20)
	}
	t.Logf("at the limit: %d MB allocated, %d events", used>>20, len(run.Events))
	_, err := ParseScenario("over.yaml", file(atLimit+1))
	want := fmt.Sprintf("over.yaml:%d:", 6+atLimit) // the action past the limit
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "past the limit of 16777216 (16 MiB) for a whole scenario") {
		t.Errorf("one send past the limit: %v, want the problem at %s", err, want)
	}
}

// A scenario run that keeps its trace (for its expectations) stops at
// the events ceiling with an error that says where; streamed, the same run
// keeps nothing and has no ceiling. The ceiling is lowered to 20,000 here
// (the path is the same at MaxScenarioEvents, 2^20): a live peer answering
// a probe every second for 3 hours records about 43,000 events.
func TestTraceEventsHaveACeiling(t *testing.T) {
	defer func(m int64) { maxScenarioEvents = m }(maxScenarioEvents)
	maxScenarioEvents = 20000
	s, err := ParseScenario("long.yaml", []byte(`duration: 3h
hosts: {a: {profile: gvisor, set: {arm: establishment}}, b: {}}
connections: {c: {client: a, server: b}}
actions:
  - {at: 0s, conn: c, keepalive: {idle: 1s, interval: 1s, count: 3}}
  - {at: 0s, conn: c, connect: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	var kept *ScenarioRun
	used := gctest.Allocated(func() { kept, err = RunScenario(s) })
	if kept != nil || err == nil || !strings.Contains(err.Error(), "the run passed 20000 events at 01:24:55.930: a scenario run keeps its trace") {
		t.Fatalf("keeping the trace: %v, want the ceiling's error", err)
	}
	// Budget: 20 MB allocated up to a ceiling of 20,000 events, so 1 GB at
	// MaxScenarioEvents (measured: 412 MB for 2^20 events).
	if used > 20<<20 {
		t.Errorf("up to the ceiling the run allocated %d MB, want at most 20 MB", used>>20)
	}
	t.Logf("up to the ceiling: %d KB allocated; %v", used>>10, err)
	n := 0
	run, err := RunScenarioStreaming(s, func(Event) error { n++; return nil })
	if err != nil || len(run.Events) != 0 || n <= 20000 {
		t.Errorf("streamed: %v, %d events kept, %d streamed; want none kept and more than 20000 streamed", err, len(run.Events), n)
	}
}

// Each documented limit of a scenario file (docs/scenarios.md): a file at
// the limit is read and run within a memory budget, and one past it is
// refused with a message naming the limit, before any of it runs.
func TestEachLimitAtAndPast(t *testing.T) {
	const head = "duration: 1m\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\n"
	repeat := func(n int, f func(i int) string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(f(i))
		}
		return b.String()
	}
	for _, tc := range []struct {
		limit string
		file  func(n int) string
		at    int
		past  string // the message for at+1
	}{
		{"hosts", func(n int) string {
			return "duration: 1m\nhosts:\n" + repeat(n, func(i int) string { return fmt.Sprintf("  h%d: {}\n", i) })
		}, MaxScenarioHosts, fmt.Sprintf("hosts: %d hosts, more than the limit of %d", MaxScenarioHosts+1, MaxScenarioHosts)},
		{"connections", func(n int) string {
			return "duration: 1m\nhosts: {a: {}, b: {}}\nconnections:\n" + repeat(n, func(i int) string { return fmt.Sprintf("  c%d: {client: a, server: b, port: %d}\n", i, 1000+i) })
		}, MaxScenarioConns, fmt.Sprintf("connections: %d connections, more than the limit of %d", MaxScenarioConns+1, MaxScenarioConns)},
		{"actions", func(n int) string {
			return head + "actions:\n" + repeat(n, func(i int) string {
				return fmt.Sprintf("  - {at: %dms, conn: c, setsockopt: {level: IPPROTO_TCP, opt: TCP_KEEPCNT, value: %d}}\n", i, 1+i%100)
			})
		}, MaxScenarioActions, fmt.Sprintf("actions: %d entries, more than the limit of %d", MaxScenarioActions+1, MaxScenarioActions)},
		{"expectations", func(n int) string {
			return head + "actions:\n  - {at: 0s, conn: c, connect: true}\nexpect:\n" + repeat(n, func(int) string { return "  - {state: ESTABLISHED, conn: c}\n" })
		}, MaxScenarioExpects, fmt.Sprintf("expect: %d entries, more than the limit of %d", MaxScenarioExpects+1, MaxScenarioExpects)},
		{"bytes", func(n int) string {
			body := head + "#"
			return body + strings.Repeat("x", n-len(body)-1) + "\n"
		}, MaxScenarioBytes, fmt.Sprintf("file larger than %d bytes", MaxScenarioBytes)},
		{"virtual time", func(n int) string {
			return fmt.Sprintf("duration: %ds\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {idle: 7200s}}\n  - {at: 0s, conn: c, connect: true}\n", n)
		}, int(MaxScenarioSpan / time.Second), fmt.Sprintf("is longer than the limit, %v", MaxScenarioSpan)},
	} {
		t.Run(tc.limit, func(t *testing.T) {
			var err error
			used := gctest.Allocated(func() {
				var s *Scenario
				if s, err = ParseScenario("at.yaml", []byte(tc.file(tc.at))); err == nil {
					var run *ScenarioRun
					if run, err = RunScenario(s); err == nil {
						run.Check()
					}
				}
			})
			if err != nil {
				t.Fatalf("at the limit (%d): %v", tc.at, err)
			}
			// Budget: 512 MB allocated to read, run and check a file at
			// any one limit.
			if used > 512<<20 {
				t.Errorf("at the limit (%d): %d MB allocated, want at most 512", tc.at, used>>20)
			}
			t.Logf("at the limit (%d): %d MB allocated", tc.at, used>>20)
			if _, err := ParseScenario("past.yaml", []byte(tc.file(tc.at+1))); err == nil || !strings.Contains(err.Error(), tc.past) {
				t.Errorf("past the limit (%d): %v, want %q", tc.at+1, err, tc.past)
			}
		})
	}
}
