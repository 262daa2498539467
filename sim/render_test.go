package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// citedLabels runs the citer over events and returns the labels it gives
// each event, by index.
func citedLabels(events []Event, profiles map[string]string) [][]string {
	c := newCiter(profiles)
	out := make([][]string, len(events))
	for i, e := range events {
		for _, r := range c.cite(e) {
			out[i] = append(out[i], r.Label)
		}
	}
	return out
}

// A citation expected on the events a predicate picks.
type wantCite struct {
	what  string
	match func(Event) bool
	label string
}

func isSegment(class string, length int) func(Event) bool {
	return func(e Event) bool {
		s, ok := e.(*SegmentEvent)
		return ok && s.Class == class && (length < 0 || s.Len == length)
	}
}

func isKeepAlive(action string, probe int) func(Event) bool {
	return func(e Event) bool {
		k, ok := e.(*KeepAliveEvent)
		return ok && k.Action == action && (probe < 0 || (probe == 1) == (k.Probe == 1))
	}
}

func isAppError(name string) func(Event) bool {
	return func(e Event) bool {
		a, ok := e.(*AppErrorEvent)
		return ok && a.Error == name
	}
}

func isState(to string) func(Event) bool {
	return func(e Event) bool {
		s, ok := e.(*StateEvent)
		return ok && s.To == to
	}
}

// TestTimelineCitesTheRuleBehindEachEvent: each kind of event cites the
// RFC 9293 requirement, Microsoft statement or gVisor behaviour that makes
// it happen, for the profile its host runs.
func TestTimelineCitesTheRuleBehindEachEvent(t *testing.T) {
	win7 := DefaultBuiltin()
	win7.Idle, win7.Interval, win7.Count = 0, 0, 0
	win7.Profile = windows(t, "win7")
	xp := win7
	xp.Profile = windows(t, "xp")
	for _, tc := range []struct {
		name  string
		b     Builtin
		wants []wantCite
	}{
		{"gvisor", DefaultBuiltin(), []wantCite{
			{"the SYN", isSegment(ClassSYN, -1), "RFC 9293 3.5"},
			{"the first probe's decision", isKeepAlive(ActionProbe, 1), "RFC 9293 MUST-26"},
			{"the first probe's decision", isKeepAlive(ActionProbe, 1), "gVisor keepalive"},
			{"later probes' decisions", isKeepAlive(ActionProbe, 2), "RFC 9293 MUST-29"},
			{"each zero-byte probe", isSegment(ClassKeepAliveProbe, 0), "RFC 9293 SHLD-12"},
			{"the abort", isKeepAlive(ActionAbort, -1), "gVisor keepalive abort"},
			{"the connection closing", isState("CLOSED"), "gVisor keepalive abort"},
			{"ETIMEDOUT", isAppError("ETIMEDOUT"), "gVisor keepalive abort"},
		}},
		{"win7", win7, []wantCite{
			{"the first probe's decision", isKeepAlive(ActionProbe, 1), "MS SO_KEEPALIVE: times"},
			{"each one-octet probe", isSegment(ClassKeepAliveProbe, 1), "RFC 9293 MAY-6"},
			{"each one-octet probe", isSegment(ClassKeepAliveProbe, 1), "Windows probe octet (observed)"},
			{"the abort", isKeepAlive(ActionAbort, -1), "MS SO_KEEPALIVE: 10 probes"},
			{"the abort's RST", isSegment(ClassRST, -1), "Windows abort RST (undocumented)"},
			{"WSAENETRESET", isAppError("WSAENETRESET"), "MS WSAENETRESET"},
		}},
		{"xp", xp, []wantCite{
			{"the abort", isKeepAlive(ActionAbort, -1), "MS SO_KEEPALIVE: registry count"},
		}},
		{"live peer", func() Builtin { b := DefaultBuiltin(); b.PeerAlive = true; return b }(), []wantCite{
			{"the peer's answer", isSegment(ClassKeepAliveACK, -1), "RFC 9293 3.10.7.4 (unacceptable)"},
			{"the re-arm", isKeepAlive(ActionRearm, -1), "RFC 9293 MUST-26"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := RunBuiltin(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			labels := citedLabels(res.Events, tc.b.Profiles())
			for _, w := range tc.wants {
				n := 0
				for i, e := range res.Events {
					if !w.match(e) {
						continue
					}
					n++
					if !slices.Contains(labels[i], w.label) {
						t.Errorf("%s (%s %s): cites %q, want %q among them", w.what, e.Head().T, e.Head().Event, labels[i], w.label)
					}
				}
				if n == 0 {
					t.Errorf("%s: no such event in the trace", w.what)
				}
			}
			for i, e := range res.Events {
				switch e.(type) {
				case *SegmentEvent, *KeepAliveEvent, *StateEvent, *AppErrorEvent:
					if len(labels[i]) == 0 {
						t.Errorf("%s %s event cites no rule", e.Head().T, e.Head().Event)
					}
				}
			}
		})
	}
}

// TestTimelineWithoutProfilesCitesNoStackBehaviour: a host whose profile
// the timeline was not told gets no stack's keep-alive behaviour pinned on
// it. (A Winsock call or error still cites Microsoft's API documentation:
// the event itself says it is Winsock.)
func TestTimelineWithoutProfilesCitesNoStackBehaviour(t *testing.T) {
	b := DefaultBuiltin()
	b.Profile = windows(t, "win7")
	b.Idle, b.Interval, b.Count = 0, 0, 0
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, ls := range citedLabels(res.Events, nil) {
		for _, l := range ls {
			if strings.HasPrefix(l, "gVisor") || strings.HasPrefix(l, "Windows") || strings.HasPrefix(l, "MS SO_KEEPALIVE") {
				t.Errorf("event %d (%s %s) cites %q without a profile", i, res.Events[i].Head().T, res.Events[i].Head().Event, l)
			}
		}
	}
}

var citation = regexp.MustCompile(`\[([^\]]+)\]$`)

// TestTimelineLegendListsEachCitedRuleOnce: every label on an event line is
// explained once at the end, and nothing uncited is.
func TestTimelineLegendListsEachCitedRuleOnce(t *testing.T) {
	b := DefaultBuiltin()
	b.Profile = windows(t, "xp")
	b.Idle, b.Interval, b.Count = 0, 0, 0
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (Timeline{Profiles: b.Profiles()}).Write(&buf, res.Events); err != nil {
		t.Fatal(err)
	}
	body, legend, ok := strings.Cut(buf.String(), "\nRules cited above\n")
	if !ok {
		t.Fatalf("no legend in:\n%s", buf.String())
	}
	cited := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if m := citation.FindStringSubmatch(line); m != nil {
			for _, l := range strings.Split(m[1], "; ") {
				cited[l] = true
			}
		}
	}
	explained := map[string]int{}
	for _, line := range strings.Split(legend, "\n") {
		if l, ok := strings.CutPrefix(line, "  ["); ok {
			explained[strings.TrimSuffix(l, "]")]++
		}
	}
	for l := range cited {
		if explained[l] != 1 {
			t.Errorf("label %q is explained %d times in the legend, want once", l, explained[l])
		}
	}
	for l := range explained {
		if !cited[l] {
			t.Errorf("legend explains %q, which no event cites", l)
		}
	}
	if len(cited) < 10 {
		t.Errorf("only %d distinct rules cited: %v", len(cited), cited)
	}
}

// TestTimelineExplainsUserTimeoutAbort: a connection dropped by
// TCP_USER_TIMEOUT before its probe count says so, in the singular.
func TestTimelineExplainsUserTimeoutAbort(t *testing.T) {
	text := scenarioTimeline(t, filepath.Join("..", "testdata", "conformance", "65-gvisor-user-timeout-shorter.yaml"))
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "keep-alive gives up: 1 probe unanswered") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no abort after one probe in:\n%s", text)
	}
	for _, want := range []string{"before the count (9)", "TCP_USER_TIMEOUT", "[gVisor TCP_USER_TIMEOUT]"} {
		if !strings.Contains(line, want) {
			t.Errorf("abort line %q lacks %q", line, want)
		}
	}
}

// TestTimelineGolden holds the annotated timelines of the example scenarios
// to testdata/golden. Regenerate with `go test ./sim -update` and read the
// diff before committing it.
func TestTimelineGolden(t *testing.T) {
	for _, name := range []string{"win7-server-nat", "dead-peer"} {
		t.Run(name, func(t *testing.T) {
			text := scenarioTimeline(t, filepath.Join("..", "testdata", "examples", name+".yaml"))
			checkGolden(t, filepath.Join("..", "testdata", "golden", "timeline-"+name+".txt"), []byte(text))
		})
	}
}

// scenarioTimeline runs the scenario file at path and returns its timeline,
// citing each host's rules.
func scenarioTimeline(t *testing.T, path string) string {
	t.Helper()
	s, err := LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := RunScenario(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (Timeline{Profiles: s.Profiles()}).Write(&buf, run.Events); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// checkGolden compares got with the golden file at path, or rewrites the
// file with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./sim -update` to create it)", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("output differs from %s (-golden +got):\n%s", path, diff)
	}
}
