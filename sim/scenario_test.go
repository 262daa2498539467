package sim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kasim/internal/gctest"
	"kasim/stack"
)

const conformanceDir = "../testdata/conformance"

// TestConformanceDocCountsTheVectors: docs/conformance.md, the vectors'
// reference, gives their number and says whether known gaps are left; both
// must match testdata/conformance/.
func TestConformanceDocCountsTheVectors(t *testing.T) {
	const doc = "../docs/conformance.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(conformanceDir, "*.yaml"))
	gaps, _ := filepath.Glob(filepath.Join(conformanceDir, "known-gaps", "*.yaml"))
	m := regexp.MustCompile(`holds (\d+) scenario files`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s does not say how many scenario files testdata/conformance/ holds (\"holds N scenario files\")", doc)
	}
	if n, _ := strconv.Atoi(string(m[1])); n != len(files) {
		t.Errorf("%s says testdata/conformance/ holds %d scenario files; it holds %d", doc, n, len(files))
	}
	if noneLeft := bytes.Contains(b, []byte("none is left")); noneLeft != (len(gaps) == 0) {
		t.Errorf("%s says none is left in known-gaps/ (%v), but %d known gaps are there", doc, noneLeft, len(gaps))
	}
}

// TestConformance runs every conformance scenario: its expectations must
// hold, its trace must equal the golden NAME.jsonl beside it (regenerate
// with `go test ./sim -update` and read the diff), and a second run must
// give the same bytes.
func TestConformance(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Errorf("%d conformance scenarios, want at least 40", len(files))
	}
	// Known gaps state what the sources say and kasim does not do yet:
	// they must fail, until kasim is fixed and they move up a directory.
	gaps, err := filepath.Glob(filepath.Join(conformanceDir, "known-gaps", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	isGap := map[string]bool{}
	for _, g := range gaps {
		isGap[g] = true
	}
	for _, file := range append(files, gaps...) {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(file, conformanceDir+"/"), ".yaml"), func(t *testing.T) {
			s, err := LoadScenario(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Expects) == 0 {
				t.Errorf("%s has no expectations", file)
			}
			first, failures := scenarioTrace(t, s)
			switch {
			case isGap[file] && len(failures) == 0:
				t.Errorf("%s, a known gap, now holds: move it (and its golden) to %s and out of docs/conformance.md's known gaps", file, conformanceDir)
			case !isGap[file]:
				for _, f := range failures {
					t.Errorf("%v", f)
				}
			}
			second, _ := scenarioTrace(t, s)
			if !bytes.Equal(first, second) {
				t.Error("two runs of the scenario gave different traces")
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".jsonl"
			if *update {
				if err := os.WriteFile(golden, first, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run `go test ./sim -update` to create it)", err)
			}
			if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(first), "\n")); diff != "" {
				t.Errorf("trace differs from %s (-golden +got):\n%s", golden, diff)
			}
		})
	}
}

func scenarioTrace(t *testing.T, s *Scenario) ([]byte, []Failure) {
	t.Helper()
	run, err := RunScenario(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, run.Events); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), run.Check()
}

const goodScenario = `name: example
duration: 3h
hosts:
  client: {profile: win7}
  server: {}
connections:
  c1: {client: client, server: server}
actions:
  - {at: 0s, conn: c1, setsockopt: {level: SOL_SOCKET, opt: SO_KEEPALIVE, value: 1}}
  - {at: 0s, conn: c1, connect: true}
  - {at: 10s, silence: server}
expect:
  - {segment: keepalive-probe, conn: c1, nth: 1, at: 2h0m0.02s, len: 1}
  - {probes: 10, conn: c1}
  - {error: WSAENETRESET, conn: c1, at: 2h0m10.02s}
`

// A wrong expectation fails with a diff that names the event and shows
// both values.
func TestWrongExpectationFailsWithDiff(t *testing.T) {
	s, err := ParseScenario("good.yaml", []byte(goodScenario))
	if err != nil {
		t.Fatal(err)
	}
	run, err := RunScenario(s)
	if err != nil {
		t.Fatal(err)
	}
	if f := run.Check(); len(f) != 0 {
		t.Fatalf("the example's expectations fail: %v", f)
	}
	wrong := strings.Replace(goodScenario, "at: 2h0m0.02s", "at: 2h0m1s", 1)
	wrong = strings.Replace(wrong, "probes: 10", "probes: 5", 1)
	s, err = ParseScenario("wrong.yaml", []byte(wrong))
	if err != nil {
		t.Fatal(err)
	}
	if run, err = RunScenario(s); err != nil {
		t.Fatal(err)
	}
	f := run.Check()
	if len(f) != 2 {
		t.Fatalf("%d failures, want 2: %v", len(f), f)
	}
	for i, want := range []string{
		"wrong.yaml:13:6: keepalive-probe segment #1 sent by client (c1's client end, sock2)",
		"wrong.yaml:14:6: number of keepalive-probe segments sent by client",
	} {
		if got := f[i].String(); !strings.HasPrefix(got, want) {
			t.Errorf("failure %d: %q, want it to start %q", i, got, want)
		}
	}
	// go-cmp's spacing is deliberately unstable; look for the -want and
	// +got lines by their content.
	for i, want := range [][2]string{{`"at":  "2h0m1s"`, `"at":  "2h0m0.02s"`}, {`"count": 5`, `"count": 10`}} {
		var minus, plus bool
		for _, line := range strings.Split(f[i].Diff, "\n") {
			minus = minus || strings.HasPrefix(line, "-") && strings.Contains(line, want[0])
			plus = plus || strings.HasPrefix(line, "+") && strings.Contains(line, want[1])
		}
		if !minus || !plus {
			t.Errorf("failure %d's diff lacks -%s or +%s:\n%s", i, want[0], want[1], f[i].Diff)
		}
	}
}

// Every malformed scenario is reported at file:line:col with what was
// expected, and never panics.
func TestScenarioErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "x.yaml:1:1: empty file"},
		{"a: b: c\n", "x.yaml:1:4: not valid YAML: mapping value is not allowed in this context"},
		{"- 1\n", "x.yaml:1:1: scenario: want a mapping"},
		{"duration: 1h\nhosts: {a: {}}\nidle: 3\n", `x.yaml:3:1: scenario: unknown key "idle"`},
		{"hosts: {a: {}}\n", "x.yaml:1:1: duration: missing"},
		{"duration: -1s\nhosts: {a: {}}\n", "x.yaml:1:11: duration: -1s is negative"},
		{"duration: 90\nhosts: {a: {}}\n", "x.yaml:1:11: duration: 90 has no unit"},
		{"duration: 5000h\nhosts: {a: {}}\n", "x.yaml:1:11: duration: 5000h0m0s is longer than the limit"},
		{"duration: soon\nhosts: {a: {}}\n", `x.yaml:1:11: duration: "soon" is not a duration`},
		{"duration: 1h\nhosts: {a: {profile: win95}}\n", `x.yaml:2:22: host a: unknown profile "win95"`},
		{"duration: 1h\nhosts: {a: {profile: xp, registry: {KeepAliveTime: 0}}}\n", "x.yaml:2:37: host a: registry: KeepAliveTime=0: out of range"},
		{"duration: 1h\nhosts: {a: {profile: linux, sysctl: {tcp_retries: 5}}}\n", `x.yaml:2:38: host a: sysctl: tcp_retries: kasim models only tcp_retries2, tcp_syn_retries, tcp_syn_linear_timeouts, tcp_synack_retries, tcp_keepalive_time, tcp_keepalive_intvl or tcp_keepalive_probes (did you mean "tcp_retries2"?)`},
		{"duration: 1h\nhosts: {a: {profile: linux, sysctl: {tcp_retries2: 0}}}\n", "x.yaml:2:38: host a: sysctl: tcp_retries2=0: want a whole number from 1 to 100"},
		{"duration: 1h\nhosts: {a: {profile: linux, sysctl: [tcp_retries2]}}\n", "x.yaml:2:37: host a: sysctl: want a mapping of NAME: value"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: z}}\n", `x.yaml:3:38: connection c: server: no host "z"`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b, port: 70000}}\n", "x.yaml:3:47: connection c: port: 70000 is out of range"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 2h, conn: c, connect: true}\n", "x.yaml:5:10: action: at 2h0m0s is after the scenario's duration"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, connect: true, close: true}\n", "action: both connect and close"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, setsockopt: {level: SOL_SOCKET, opt: SO_KEEPALVE, value: 1}}\n", `opt "SO_KEEPALVE": POSIX (gvisor: Linux's numbers) on host a knows`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, setsockopt: {level: IPPROTO_TCP, opt: TCP_KEEPIDLE, value: 1500ms}}\n", "TCP_KEEPIDLE counts whole seconds"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, ioctl: {code: SIO_KEEPALIVE_VALS, onoff: 1, time: 1s, interval: 1s}}\n", "WSAIoctl is Winsock; host a runs gvisor"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, end: server, connect: true}\n", "the server end does not connect"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 1s, conn: c, end: server, reading: false, expect: {result: 0}}\n", "x.yaml:5:61: action: expect: reading makes no socket call, so it has no result to expect"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 1s, conn: c, reading: maybe}\n", "action: reading"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 1s, conn: c, shutdown: send}\n", `x.yaml:5:33: action: shutdown: "send": want write (SHUT_WR, SD_SEND: a FIN), read (SHUT_RD, SD_RECEIVE) or both`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, end: listener, send: hi}\n", "x.yaml:5:28: action: end: listener: the listening socket takes setsockopt and getsockopt, not send"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 1s, conn: c, end: listener, setsockopt: {level: SOL_SOCKET, opt: SO_RCVBUF, value: 2048}}\n", "x.yaml:5:28: action: end: listener: the listening socket's options are set before it listens, at the start: say at: 0s"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, end: accepted, recv: true}\n", "listener (the server's listening socket)"},
		{"duration: 1h\nhosts: {a: {profile: freebsd}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, setsockopt: {level: SOL_SOCKET, opt: SO_RCVBUF, value: 2048}}\n", `opt "SO_RCVBUF"`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {idle: 1500ms}}\n", "x.yaml:5:41: action: keepalive: idle 1.5s: host a sets it with TCP_KEEPIDLE, in whole seconds"},
		{"duration: 1h\nhosts: {a: {profile: xp}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {interval: 1500us}}\n", "interval 1.5ms: host a sets it with SIO_KEEPALIVE_VALS, in whole milliseconds"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {}}\n", "keepalive: give idle, interval or count"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {idle: 0s}}\n", "keepalive: idle 0s: want a positive duration"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {count: 0}}\n", "keepalive: count: 0 is out of range"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {idle: 2s, intervall: 1s}}\n", `unknown key "intervall"`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {idle: 2s}, expect: {result: 0}}\n", "a keepalive action makes several calls"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, on: established, conn: c, send: x}\n", `x.yaml:5:10: action: at: with on, the action runs after its event`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {after: 1s, conn: c, send: x}\n", `x.yaml:5:13: action: after: the delay after an event (on:)`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {conn: c, send: x}\n", `action: at: missing: say when, e.g. at: 0s (or on: EVENT)`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: connected, conn: c, send: x}\n", `x.yaml:5:10: action: on: "connected": want established, failed, or {received: N}`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: received, conn: c, send: x}\n", `action: on: "received": want established, failed, or {received: N}`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: {received: 0}, conn: c, send: x}\n", `action: on: received: 0 is out of range`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: {event: received}, conn: c, send: x}\n", `action: on: event: received: say how many bytes`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: established, conn: c, connect: true}\n", `action: on: a connect starts its connection`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: {event: failed, conn: c}, conn: c, recv: true}\n", `action: on: conn: a socket action waits for an event of its own socket`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: established, silence: b}\n", `action: on: "established": want {event: established|failed, conn: C}`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: {event: failed}, silence: b}\n", `action: on: conn: missing: name the connection whose event silence waits for`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: {event: failed, conn: d}, silence: b}\n", `action: on: conn: no connection "d"`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {on: {received: 1, conn: c, end: peer}, silence: b}\n", `action: on: end: "peer": want client`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b, count: 1001}}\n", `connection c: count: 1001 is out of range`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b, count: 600}, d: {client: a, server: b, count: 600}}\n", `connection d: count 600: the scenario's connections come to 1200 with these, more than the limit of 1000`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b, spread: 1s}}\n", `connection c: spread: spreads the starts of several connections; give count too`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b, count: 2}}\nexpect:\n  - {probes: 3, conn: c}\n", `expect: conn c is 2 connections (count): an expectation names one socket (a segment expectation on host: a counts across them)`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b, count: 2}}\nactions:\n  - {at: 0s, conn: c, connect: true, expect: {result: -1}}\n", `action: expect: conn c is 2 connections (count)`},
		{"duration: 1h\nuntil: done\nhosts: {a: {}}\n", `x.yaml:2:8: until: "done": want ended`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, drop: {from: server, segment: syn-ack}}\n", `x.yaml:5:21: action: drop: conn: missing: name the connection whose segments are lost`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, drop: {conn: d, segment: syn}}\n", `action: drop: conn: no connection "d"`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, drop: {conn: c, from: peer, segment: syn}}\n", `action: drop: from: "peer": want client or server`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, drop: {conn: c, segment: synack}}\n", `action: drop: segment "synack": want one of syn, syn-ack, ack, data, fin, rst, keepalive-probe (did you mean "syn-ack"?)`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, drop: {conn: c}}\n", `action: drop: segment: missing`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, drop: {conn: c, segment: data, nth: 0}}\n", `action: drop: nth: 0 is out of range`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, drop: {segment: data}}\n", `action: conn applies to socket actions, not to drop`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nexpect:\n  - {segment: probe, host: a}\n", `x.yaml:4:15: expect: segment "probe": want a class`},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nexpect:\n  - {probes: 3}\n", "expect: name the socket"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nexpect:\n  - {segment: syn, host: a, at: 3h}\n", "expect: at 3h0m0s is after the scenario's duration (1h0m0s): it can never be checked"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nexpect:\n  - {segment: syn, host: a, within: [2s, 1s]}\n", "the window ends before it starts"},
		{"duration: 1h\nhosts: {a: {}, b: {}}\nexpect:\n  - {error: EWHATEVER, host: a}\n", `expect: error "EWHATEVER"`},
		{"duration: 1h\nhosts: {a: {}}\nexpect:\n  - {state: OPEN, host: a}\n", `expect: state "OPEN": want one of CLOSED`},
		{"duration: 1h\nhosts: {a: &x {}}\n", "anchors, aliases and merge keys are not supported"},
		{"duration: 1h\nduration: 2h\n", `mapping key "duration" already defined`},
		{"duration: 1h\nhosts: {a: {}}\n---\nx: 1\n", "a second YAML document"},
		{"duration: 1h\nhosts: []\n", "hosts: want a mapping"},
		{"duration: 1h\nhosts:\n" + strings.Repeat("  h", 1) + "0: {}\n" + func() string {
			var b strings.Builder
			for i := 1; i <= MaxScenarioHosts; i++ {
				b.WriteString("  h" + strings.Repeat("x", i) + ": {}\n")
			}
			return b.String()
		}(), "hosts: 17 hosts, more than the limit of 16"},
	} {
		_, err := ParseScenario("x.yaml", []byte(tc.src))
		var se *ScenarioError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a *ScenarioError containing %q", tc.src, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %s\nwant it to contain %q", tc.src, err, tc.want)
		}
		for _, p := range se.Problems {
			if p.Pos.File != "x.yaml" || p.Pos.Line < 1 || p.Pos.Col < 1 {
				t.Errorf("%q: problem without a place: %+v", tc.src, p)
			}
		}
	}
	big := "duration: 1h\n#" + strings.Repeat("x", MaxScenarioBytes)
	if _, err := ParseScenario("big.yaml", []byte(big)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("a file over the limit: %v", err)
	}
}

// FuzzParseScenario: no input makes the parser panic, every error names a
// place, and whatever parses also runs (briefly) without panicking.
func FuzzParseScenario(f *testing.F) {
	f.Add([]byte(goodScenario))
	f.Add([]byte("duration: 1m\nhosts: {a: {profile: vista}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c, keepalive: {idle: 2s, interval: 1s, count: 3}}\n"))
	// Triggers, connections of several and until: the built-in scenario
	// as a file, and a network action on the last of three.
	if data, err := os.ReadFile("../testdata/examples/builtin.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("duration: 20s\nhosts: {a: {profile: xp}, b: {profile: linux}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 0s, drop: {conn: c, from: server, segment: syn-ack, nth: 1, count: 2}}\n  - {at: 0s, drop: {conn: c, segment: data, nth: 2}}\n  - {at: 0s, conn: c, connect: true}\n  - {at: 5s, conn: c, send: {bytes: 3000}}\n"))
	f.Add([]byte("duration: 1m\nuntil: ended\nhosts: {a: {profile: win11}, b: {profile: lwip}}\nconnections: {c: {client: a, server: b, count: 3, spread: 2s}}\nactions:\n  - {at: 0s, conn: c, keepalive: {idle: 5s, interval: 1s, count: 2}}\n  - {at: 0s, conn: c, connect: true}\n  - {on: established, after: 1s, conn: c, send: {bytes: 10}}\n  - {on: {received: 5}, conn: c, end: server, send: hi}\n  - {on: {received: 10, conn: c, end: server}, after: 3s, silence: b}\n  - {on: failed, conn: c, recv: true}\n"))
	// A closed window: the listener's SO_RCVBUF, an application that stops
	// reading and starts again, on POSIX and on Winsock.
	f.Add([]byte("duration: 10s\nhosts: {a: {profile: linux, sysctl: {tcp_retries2: 3}}, b: {}, w: {profile: win7}}\nconnections: {c: {client: a, server: b}, d: {client: a, server: w}}\nactions:\n  - {at: 0s, conn: c, end: listener, setsockopt: {level: SOL_SOCKET, opt: SO_RCVBUF, value: 2048}}\n  - {at: 0s, conn: c, end: listener, getsockopt: {level: SOL_SOCKET, opt: SO_RCVBUF}, expect: {value: 4096}}\n  - {at: 0s, conn: c, setsockopt: {level: IPPROTO_TCP, opt: TCP_USER_TIMEOUT, value: 3000}}\n  - {at: 0s, conn: c, connect: true}\n  - {at: 0s, conn: d, connect: true}\n  - {at: 100ms, conn: c, end: server, reading: false}\n  - {at: 100ms, conn: d, end: server, reading: false}\n  - {at: 200ms, conn: c, send: {bytes: 20000}}\n  - {at: 200ms, conn: d, send: {bytes: 70000}}\n  - {at: 2s, silence: b}\n  - {at: 5s, conn: d, end: server, reading: true}\n  - {at: 6s, conn: d, shutdown: read}\n  - {at: 7s, conn: c, end: server, shutdown: both}\nexpect:\n  - {segment: window-probe, conn: c, count: 4}\n"))
	if files, _ := filepath.Glob(filepath.Join(conformanceDir, "*.yaml")); len(files) > 0 {
		for _, file := range files[:min(len(files), 8)] {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	placed := func(t *testing.T, err error) {
		t.Helper()
		var se *ScenarioError
		if !errors.As(err, &se) || len(se.Problems) == 0 {
			t.Fatalf("error %v is not a ScenarioError with problems", err)
		}
		for _, p := range se.Problems {
			if p.Pos.Line < 1 || p.Pos.Col < 1 || p.Msg == "" {
				t.Fatalf("problem without a place or message: %+v", p)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		layout, lerr := ParseScenarioLayout("f.yaml", data)
		if lerr != nil {
			placed(t, lerr)
		}
		s, err := ParseScenario("f.yaml", data)
		if err != nil {
			placed(t, err)
			return
		}
		// The layout reads a subset of what binding reads: a file that
		// binds has a layout, with the same hosts.
		if lerr != nil {
			t.Fatalf("bound with %d hosts, but its layout fails: %v", len(s.Hosts), lerr)
		}
		if len(layout.Hosts) != len(s.Hosts) {
			t.Fatalf("bound with %d hosts, its layout has %d", len(s.Hosts), len(layout.Hosts))
		}
		if len(s.Hosts) == 0 {
			t.Fatal("a scenario without hosts parsed")
		}
		// Lowering the same actions for other APIs: Winsock without
		// TCP_KEEPCNT, and lwIP's numbers.
		for _, other := range []string{"win2000", "lwip"} {
			all := map[string]string{}
			for _, h := range s.Hosts {
				all[h.Name] = other
			}
			if _, err := s.WithProfiles(all); err != nil {
				placed(t, err)
			}
		}
		if s.Duration > 0 && members(s) <= 4 && len(s.Actions) <= 16 {
			s.Duration = min(s.Duration, 24*60*60*1e9) // a day of virtual time is quick
			// The run keeps its trace, up to a ceiling lowered for speed
			// (stopping there is the limit at work, not a failure); its
			// memory has a budget.
			defer func(m int64) { maxScenarioEvents = m }(maxScenarioEvents)
			maxScenarioEvents = 100000
			var err error
			if used := gctest.Allocated(func() { _, err = RunScenario(s) }); used > 256<<20 {
				t.Fatalf("the run allocated %d MB, over its 256 MB budget", used>>20)
			}
			if err != nil {
				t.Logf("run: %v", err)
			}
		}
	})
}

// A file is read once: WithProfiles lowers its actions, as written, for
// other profiles, and gives what reading the file for them gives, its
// problems included.
func TestWithProfilesLowersWhatTheFileWrote(t *testing.T) {
	const src = `duration: 1m
hosts: {client: {profile: linux}, server: {}}
connections: {c1: {client: client, server: server}}
actions:
  - {at: 0s, conn: c1, keepalive: {idle: 2s, interval: 1s, count: 3}}
  - {at: 0s, conn: c1, setsockopt: {level: IPPROTO_TCP, opt: TCP_KEEPIDLE, value: 30s}}
  - {at: 1s, conn: c1, connect: true}
`
	linux, err := ParseScenario("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for _, a := range linux.Actions {
		opts = append(opts, a.OptName)
	}
	if want := []string{"TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "SO_KEEPALIVE", "TCP_KEEPIDLE", ""}; !slices.Equal(opts, want) {
		t.Errorf("linux: options %q, want %q", opts, want)
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		sf, ok := p.Last().(cmp.StructField)
		return ok && (sf.Name() == "w" || sf.Name() == "nodes") // the written form and the YAML nodes behind it
	}, cmp.Ignore())
	for _, name := range []string{"win7", "win11", "freebsd", "lwip", "gvisor"} {
		again, err := linux.WithProfiles(map[string]string{"client": name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		read, err := ParseScenarioAs("x.yaml", []byte(src), map[string]string{"client": name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(read.Actions, again.Actions, ignore); diff != "" {
			t.Errorf("%s: WithProfiles differs from reading the file for it (-read +again):\n%s", name, diff)
		}
		if again.Hosts[0].Resolved.Name != name || linux.Hosts[0].Resolved.Name != "linux" {
			t.Errorf("%s: hosts %s (the copy) and %s (the original)", name, again.Hosts[0].Resolved.Name, linux.Hosts[0].Resolved.Name)
		}
	}
	// What the new API cannot say is a problem at its place, as when read.
	const userTimeout = `duration: 1m
hosts: {client: {profile: linux}, server: {}}
connections: {c1: {client: client, server: server}}
actions:
  - {at: 0s, conn: c1, setsockopt: {level: IPPROTO_TCP, opt: TCP_USER_TIMEOUT, value: 5000}}
`
	s, err := ParseScenario("u.yaml", []byte(userTimeout))
	if err != nil {
		t.Fatal(err)
	}
	_, again := s.WithProfiles(map[string]string{"client": "win7"})
	_, read := ParseScenarioAs("u.yaml", []byte(userTimeout), map[string]string{"client": "win7"})
	if again == nil || read == nil || again.Error() != read.Error() || !strings.Contains(again.Error(), `u.yaml:5:62: action: setsockopt: opt "TCP_USER_TIMEOUT": Winsock (win7)`) {
		t.Errorf("TCP_USER_TIMEOUT on win7: WithProfiles says %v; reading says %v", again, read)
	}
	if _, err := s.WithProfiles(map[string]string{"client": "win95"}); err == nil || !strings.Contains(err.Error(), `u.yaml:2:27: host client: unknown profile "win95"`) {
		t.Errorf("an unknown profile: %v", err)
	}
	scaled, err := linux.Scaled(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scaled.WithProfiles(map[string]string{"client": "win7"}); err == nil {
		t.Error("WithProfiles on a scaled scenario lowered the unscaled file")
	}
}

// TestSysctlIsLinuxs: a host's sysctl: settings are the Linux kernel's:
// the linux profile takes them as its settings of the same name, and a
// profile without them (Windows) runs as it is, its trace saying the
// scenario's sysctl does not apply to it.
func TestSysctlIsLinuxs(t *testing.T) {
	src := "duration: 1s\nhosts: {a: {profile: linux, sysctl: {tcp_retries2: 5}}, b: {}}\n"
	s, err := ParseScenario("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Hosts[0].Resolved.Behaviour.RetransmitTimeout, stack.RetransmitTimeout(5); got != want || len(s.Hosts[0].SysctlIgnored) != 0 {
		t.Fatalf("linux with tcp_retries2=5: retransmit timeout %v, ignored %v; want %v, none", got, s.Hosts[0].SysctlIgnored, want)
	}
	win, err := s.WithProfiles(map[string]string{"a": "win7"})
	if err != nil {
		t.Fatal(err)
	}
	if got := win.Hosts[0].SysctlIgnored; len(got) != 1 || got[0] != "tcp_retries2=5" {
		t.Fatalf("win7 with tcp_retries2=5: ignored %v, want [tcp_retries2=5]", got)
	}
	run, err := RunScenario(win)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range run.Events {
		if n, ok := e.(*NoteEvent); ok && strings.Contains(n.Text, "win7 has no Linux sysctls: the scenario's tcp_retries2=5 does not apply") {
			found = true
		}
	}
	if !found {
		t.Error("the win7 trace does not say the scenario's sysctl does not apply to it")
	}
}
