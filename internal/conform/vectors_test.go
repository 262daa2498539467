package conform

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"kasim/internal/live"
	"kasim/sim"
)

// namedScenario names its hosts as a conformance vector does: the stack
// under test "lw" (lwIP), the tester "peer".
const namedScenario = `name: named
duration: 10s
hosts:
  lw: {profile: lwip}
  peer: {profile: linux}
connections:
  c1: {client: lw, server: peer}
actions:
  - {at: 0s, conn: c1, keepalive: {idle: 2s, interval: 1s, count: 3}}
  - {at: 0s, conn: c1, connect: true}
  - {at: 1s, silence: peer}
`

// TestRolesComeFromTheScenario: the client of the one connection is the
// stack under test and the server the tester, whatever they are called;
// the live side calls in Linux's names, the traces record under the file's
// names, and the story reads them by those names. A setting of the model
// given to the stack under test (lwip's tick-start) is one the live stack
// cannot take: the lab refuses the scenario, naming it.
func TestRolesComeFromTheScenario(t *testing.T) {
	withSetting := strings.Replace(namedScenario, "lw: {profile: lwip}", "lw: {profile: lwip, set: {tick-start: 100ms}}", 1)
	if _, err := forLab("n.yaml", []byte(withSetting), Options{}); !errors.Is(err, ErrNotLive) || !strings.Contains(err.Error(), "n.yaml:4:3") || !strings.Contains(err.Error(), "tick-start=100ms") {
		t.Errorf("a model setting on the stack under test: %v, want ErrNotLive naming it and its place", err)
	}
	l, err := forLab("n.yaml", []byte(namedScenario), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.subject != "lw" || l.tester != "peer" {
		t.Fatalf("roles %q, %q; want lw, peer", l.subject, l.tester)
	}
	var opts []string
	for _, a := range l.live.Actions {
		if a.Do == sim.DoSetsockopt {
			opts = append(opts, a.OptName)
		}
	}
	if strings.Join(opts, " ") != "TCP_KEEPIDLE TCP_KEEPINTVL TCP_KEEPCNT SO_KEEPALIVE" {
		t.Errorf("live calls %v, want the keepalive action in Linux's options", opts)
	}
	for _, h := range l.live.Hosts {
		if want := map[string]string{"lw": "linux", "peer": "gvisor"}[h.Name]; h.Profile != want || len(h.Set) != 0 {
			t.Errorf("live host %s: %s %v, want %s without settings", h.Name, h.Profile, h.Set, want)
		}
	}

	// A live run records under the file's names, and the drop reason names
	// the tester as the simulation does.
	r := &liveRun{subject: l.subject, tester: l.tester, rec: sim.NewRecorder(), syn: make(chan live.Mono, 1)}
	lw, peer := netip.MustParseAddrPort("10.99.0.2:40000"), netip.MustParseAddrPort("10.99.0.1:80")
	r.onSegment(live.Segment{Dir: live.In, At: 0, Src: lw, Dst: peer, Flags: header.TCPFlagSyn})
	r.onSegment(live.Segment{Dir: live.Out, At: 1, Src: peer, Dst: lw, Flags: header.TCPFlagSyn | header.TCPFlagAck, Ack: 1})
	r.onSegment(live.Segment{Dir: live.Out, At: 2, Src: peer, Dst: lw, Flags: header.TCPFlagAck, Ack: 1, Dropped: true})
	r.appError(3, "recv", live.Event{Errno: 103})
	var got []string
	for _, e := range r.events() {
		got = append(got, e.Head().Host)
		if s, ok := e.(*sim.SegmentEvent); ok && s.Dropped && s.DropReason != "silenced: peer sends nothing" {
			t.Errorf("drop reason %q", s.DropReason)
		}
	}
	if strings.Join(got, " ") != "lw peer peer lw" {
		t.Errorf("live trace hosts %v, want lw peer peer lw", got)
	}

	trace := tracedAs("lw", "peer", 2250*time.Millisecond, 3250*time.Millisecond)
	if st := story(trace, "lw", "peer", 0); len(st) != 3 || st[0].key != "keepalive-probe #1" {
		t.Errorf("story under the file's names: %v", st)
	}
	if st := story(trace, KernelHost, TesterHost, 0); len(st) != 0 {
		t.Errorf("story under other names found %v", st)
	}
}

// tracedAs is probeTrace's wire with other host names.
func tracedAs(subject, tester string, probes ...time.Duration) []sim.Event {
	var out []sim.Event
	for _, e := range probeTrace(probes...) {
		switch e := e.(type) {
		case *sim.SegmentEvent:
			c := *e
			c.Host = map[string]string{KernelHost: subject, TesterHost: tester}[e.Host]
			out = append(out, &c)
		}
	}
	return out
}

// TestStoryCountsFromTheReceipt: a simulated segment is timed when sent,
// and its receipt comes the scenario's latency later; live, the lab's link
// has next to none. The first probe counts from the receipt, and a
// segment still in flight at a probe is not yet received.
func TestStoryCountsFromTheReceipt(t *testing.T) {
	ms := time.Millisecond
	// The SYN-ACK is sent at 0: with 10 ms latency received at 10 ms.
	if st := story(probeTrace(2250*ms), KernelHost, TesterHost, 10*ms); st[0].at != 2240*ms || !st[0].fromRecv {
		t.Errorf("first probe %v after the receipt (from receive %v), want 2.24s", st[0].at, st[0].fromRecv)
	}
	// An answer sent just before a probe, still in flight, does not count.
	r := sim.NewRecorder()
	k, tst := netip.MustParseAddrPort("10.99.0.2:40000"), netip.MustParseAddrPort("10.99.0.1:80")
	r.Wire(sim.WireSegment{At: 0, From: KernelHost, To: TesterHost, Src: k, Dst: tst, Flags: header.TCPFlagSyn, Seq: 100})
	r.Wire(sim.WireSegment{At: 0, From: TesterHost, To: KernelHost, Src: tst, Dst: k, Flags: header.TCPFlagSyn | header.TCPFlagAck, Seq: 500, Ack: 101})
	r.Wire(sim.WireSegment{At: time.Microsecond, From: KernelHost, To: TesterHost, Src: k, Dst: tst, Flags: header.TCPFlagAck, Seq: 101, Ack: 501})
	r.Wire(sim.WireSegment{At: 2 * time.Second, From: KernelHost, To: TesterHost, Src: k, Dst: tst, Flags: header.TCPFlagAck, Seq: 100, Ack: 501})
	r.Wire(sim.WireSegment{At: 2995 * ms, From: TesterHost, To: KernelHost, Src: tst, Dst: k, Flags: header.TCPFlagAck, Seq: 501, Ack: 101})
	r.Wire(sim.WireSegment{At: 3 * time.Second, From: KernelHost, To: TesterHost, Src: k, Dst: tst, Flags: header.TCPFlagAck, Seq: 100, Ack: 501})
	st := story(r.Events(), KernelHost, TesterHost, 10*ms)
	if len(st) != 2 || st[1].fromRecv || st[1].at != time.Second {
		t.Errorf("second probe: %+v, want 1s after the first probe", st)
	}
}

// TestKernelTesterScenariosReadAsBefore: a scenario whose hosts are kernel
// and tester binds, live and simulated, exactly as conform bound it when
// those names were fixed: the same live calls, and the same simulated
// trace, byte for byte.
func TestKernelTesterScenariosReadAsBefore(t *testing.T) {
	entries, _ := fs.ReadDir(Scenarios, "scenarios")
	for _, e := range entries {
		data, _ := fs.ReadFile(Scenarios, "scenarios/"+e.Name())
		before, err := sim.ParseScenarioAs(e.Name(), data, map[string]string{KernelHost: "linux", TesterHost: "gvisor"})
		if err != nil {
			t.Fatal(err)
		}
		l, err := forLab(e.Name(), data, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if l.subject != KernelHost || l.tester != TesterHost || !reflect.DeepEqual(l.live.Actions, before.Actions) {
			t.Errorf("%s: live scenario differs from the kernel/tester binding", e.Name())
		}
		for i, h := range l.live.Hosts {
			if b := before.Hosts[i]; h.Name != b.Name || h.Profile != b.Profile || h.Resolved.Name != b.Resolved.Name {
				t.Errorf("%s: live host %s %s, was %s %s", e.Name(), h.Name, h.Profile, b.Name, b.Profile)
			}
		}
		for _, p := range []string{"linux", "lwip", "vista"} {
			simBefore, errBefore := before.WithProfiles(map[string]string{KernelHost: p})
			simNow, errNow := l.layout.WithProfiles(map[string]string{l.subject: p, l.tester: "gvisor"})
			if (errBefore == nil) != (errNow == nil) || errBefore != nil && errBefore.Error() != errNow.Error() {
				t.Errorf("%s as %s: error %v, was %v", e.Name(), p, errNow, errBefore)
				continue
			}
			if errNow == nil && simTrace(t, simNow) != simTrace(t, simBefore) {
				t.Errorf("%s as %s: simulated trace differs", e.Name(), p)
			}
		}
	}
}

// simTrace runs a scenario and returns its trace in the trace format.
func simTrace(t *testing.T, s *sim.Scenario) string {
	t.Helper()
	run, err := sim.RunScenario(s)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := sim.WriteJSONL(&b, run.Events); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// vectorsDir holds the conformance vectors.
const vectorsDir = "../../testdata/conformance"

// vectorsFor returns the vectors for a stack of profile p, each with why
// the lab cannot play it ("" if it can).
func vectorsFor(t *testing.T, p string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorsDir, "*.yaml"))
	if err != nil || len(files) < 90 {
		t.Fatalf("%d vectors, %v", len(files), err)
	}
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := IsVectorFor(f, data, p)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		out[filepath.Base(f)] = ""
		if _, err := forLab(f, data, Options{}); err != nil {
			if !errors.Is(err, ErrNotLive) {
				t.Errorf("%s: %v, want ErrNotLive or nothing", f, err)
			}
			out[filepath.Base(f)] = err.Error()
		}
	}
	return out
}

// TestVectorSelection: which vectors each stack gets (the client of a
// connection has its profile), and which of them the lab cannot play,
// each refused at its place in the file with the reason.
func TestVectorSelection(t *testing.T) {
	for _, tc := range []struct {
		profile string
		want    map[string][]string // vector: what its refusal says (none: it runs)
	}{
		{"lwip", map[string][]string{
			"108-lwip-slow-timer.yaml":            nil,
			"109-lwip-probe-states.yaml":          {"109-lwip-probe-states.yaml:24:6: not a conform scenario: setsockopt TCP_KEEPIDLE on the server end (server)"},
			"110-freebsd-lwip-option-errors.yaml": {"110-freebsd-lwip-option-errors.yaml: not a conform scenario: the lab has two hosts", "this one has 3 (bsd, lw, server)"},
			"123-lwip-syn-retransmission.yaml":    nil,
			"124-lwip-syn-counts-ticks.yaml":      {"124-lwip-syn-counts-ticks.yaml: not a conform scenario: the lab has two hosts", "this one has 3 (client, server, up)"},
			"125-lwip-data-retransmission.yaml":   nil,
			"126-lwip-rto-from-samples.yaml":      nil,
			"127-lwip-times-the-syn.yaml":         {"127-lwip-times-the-syn.yaml: not a conform scenario: the lab has two hosts", "this one has 3 (client, other, server)"},
			"131-final-ack-lost.yaml":             {"this one has 4 (lw, lx, server, w7)"},
			"132-lwip-first-data-lost.yaml":       nil, // a drop, played on the lab's wire
			"136-lwip-syn-lost.yaml":              nil,
			"140-lwip-syns-lost-twice.yaml":       nil,
		}},
		{"linux", map[string][]string{
			"100-linux-dead-peer-hz250.yaml":      nil,
			"101-linux-user-timeout-longer.yaml":  nil,
			"102-linux-user-timeout-shorter.yaml": nil,
			"103-linux-answered-probe.yaml":       nil,
			"104-linux-set-during-connect.yaml":   {"104-linux-set-during-connect.yaml:18:6:", "setsockopt TCP_KEEPIDLE at 300ms", "handshake is under way until 600ms"},
			"105-keepalive-verb-each-api.yaml":    {"this one has 4 (lin, server, vis, w10)"},
			"111-linux-close-ends-keepalive.yaml": {"111-linux-close-ends-keepalive.yaml:20:6:", "close is not something the live lab can do"},
			// The retransmit path: the kernel's sysctls (114, 117) are set
			// in its namespace, so every one runs.
			"113-linux-retries2-default.yaml":              nil,
			"114-linux-retries2-time-not-count.yaml":       nil,
			"115-linux-user-timeout-with-data.yaml":        nil,
			"116-linux-syn-retries-default.yaml":           nil,
			"117-linux-syn-retries-by-time.yaml":           nil,
			"118-linux-syn-user-timeout.yaml":              nil,
			"122-linux-syncnt.yaml":                        nil,
			"130-linux-first-data-lost.yaml":               nil, // a drop, played on the lab's wire
			"131-final-ack-lost.yaml":                      {"this one has 4 (lw, lx, server, w7)"},
			"135-linux-syn-lost.yaml":                      nil,
			"138-linux-data-lost-twice.yaml":               nil,
			"142-final-ack-lost-silent-client.yaml":        nil,
			"143-linux-zero-window.yaml":                   nil, // the tester's listening SO_RCVBUF, and it stops reading
			"145-linux-zero-window-reopens.yaml":           nil,
			"146-linux-zero-window-user-timeout.yaml":      nil,
			"147-linux-zero-window-retries2.yaml":          nil,
			"149-linux-shutdown-write-keepalive.yaml":      nil,
			"150-linux-peer-half-closes.yaml":              nil,
			"151-shutdown-read-and-errors.yaml":            {"this one has 3 (client, server, w)"},
			"153-linux-synacks-lost.yaml":                  nil,
			"154-linux-server-synacks-lost.yaml":           nil,
			"155-linux-server-synack-retries.yaml":         nil,
			"156-linux-keepalive-set-when-idle.yaml":       nil, // options set after the connect, on the stack under test
			"157-linux-keepidle-already-past.yaml":         nil,
			"158-linux-server-defer-accept.yaml":           nil, // on the kernel's listener
			"159-linux-server-defer-accept-data.yaml":      nil,
			"160-linux-server-defer-accept-expires.yaml":   nil,
			"163-linux-server-duplicate-syn.yaml":          nil,
			"164-linux-zero-window-answered-retries2.yaml": nil,
		}},
	} {
		got := vectorsFor(t, tc.profile)
		if len(got) != len(tc.want) {
			t.Errorf("%s: picked %d vectors, want %d: %v", tc.profile, len(got), len(tc.want), got)
		}
		for name, wants := range tc.want {
			why, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: %s not picked", tc.profile, name)
			case len(wants) == 0 && why != "":
				t.Errorf("%s: %s refused: %s", tc.profile, name, why)
			case len(wants) > 0 && why == "":
				t.Errorf("%s: %s accepted, want it refused", tc.profile, name)
			}
			for _, w := range wants {
				if !strings.Contains(why, w) {
					t.Errorf("%s: %s: %q lacks %q", tc.profile, name, why, w)
				}
			}
		}
	}
	// gVisor's: the client runs gvisor, with or without settings of its
	// own; a middlebox, a close, a second connection and calls on the
	// server's end are refused.
	got := vectorsFor(t, "gvisor")
	for name, want := range map[string]string{
		"10-gvisor-probe-shape.yaml":            "",
		"15-gvisor-probe-timing.yaml":           "the model's settings arm=establishment",
		"90-gvisor-middlebox-shorter.yaml":      "network: middlebox 5m0s: the lab has no middlebox",
		"84-gvisor-set-in-close-wait.yaml":      "close is not something",
		"112-gvisor-late-arm.yaml":              "the lab has one connection; this one has 2",
		"63-gvisor-server-end-established.yaml": "getsockopt SO_KEEPALIVE on the server end",
		"80-gvisor-set-during-connect.yaml":     "handshake is under way",
	} {
		why, ok := got[name]
		if !ok || (want == "") != (why == "") || !strings.Contains(why, want) {
			t.Errorf("gvisor: %s: picked %v, refused %q; want %q", name, ok, why, want)
		}
	}
	if _, ok := got["64-win7-server-end-established.yaml"]; !ok {
		t.Error("gvisor: 64's client runs gvisor (a win7 server); not picked")
	}
	if _, ok := got["12-win7-probe-shape.yaml"]; ok {
		t.Error("gvisor: a win7 client's vector picked")
	}
}

// TestCheckLiveRefusesWhatTheLabCannotDo: each thing the lab cannot play
// is refused at its place, naming the hosts as the file does.
func TestCheckLiveRefusesWhatTheLabCannotDo(t *testing.T) {
	head := "duration: 5s\n%shosts: {a: {profile: lwip}, b: {}}\nconnections: {c1: {client: a, server: b}}\nactions:\n  - {at: 0s, conn: c1, connect: true}\n"
	for _, tc := range []struct{ network, actions, want string }{
		{"", "  - {at: 1s, silence: b}\n  - {at: 2s, heal: b}\n  - {at: 1s, conn: c1, end: server, send: hi}\n", ""},
		{"", "  - {at: 1s, silence: a}\n", "x.yaml:6:6: not a conform scenario: silence a: the lab silences and heals the tester (b) only"},
		{"", "  - {at: 1s, conn: c1, close: true}\n", "x.yaml:6:6: not a conform scenario: close is not something"},
		{"", "  - {at: 1s, conn: c1, end: server, keepalive: {idle: 2s}}\n", "on the server end (b): the lab makes the socket calls of the stack under test (a), and sets the tester's listening SO_RCVBUF, only"},
		{"", "  - {at: 0s, conn: c1, end: listener, setsockopt: {level: SOL_SOCKET, opt: SO_RCVBUF, value: 2048}}\n  - {at: 1s, conn: c1, end: server, reading: false}\n  - {at: 2s, conn: c1, end: server, reading: true}\n", ""},
		{"", "  - {at: 1s, conn: c1, reading: false}\n", "x.yaml:6:6: not a conform scenario: reading on the end of the stack under test (a): the lab's peer keeps a receive pending; only the tester (b) stops reading"},
		{"", "  - {at: 1s, latency: {hosts: [a, b], latency: 20ms}}\n", "latency is not something"},
		{"network: {loss: 0.1}\n", "", "x.yaml: not a conform scenario: network: loss 0.1: the lab's link loses nothing"},
		{"network: {middlebox: 1m}\n", "", "network: middlebox 1m0s: the lab has no middlebox"},
		{"network: {latency: 100ms}\n", "  - {at: 150ms, conn: c1, keepalive: {idle: 2s}}\n", "x.yaml:7:6: not a conform scenario: setsockopt TCP_KEEPIDLE at 150ms: by the scenario's latency (100ms each way) a's handshake is under way until 200ms"},
		{"network: {latency: 100ms}\n", "  - {at: 200ms, conn: c1, keepalive: {idle: 2s}}\n", ""},
		{"", "  - {at: 0s, drop: {conn: c1, from: server, segment: syn-ack, count: 2}}\n", ""},
		{"", "  - {at: 0s, drop: {conn: c1, segment: keepalive-probe}}\n", "x.yaml:6:6: not a conform scenario: drop keepalive-probe: the lab drops segments by their flags and length"},
	} {
		data := []byte(strings.Replace(head, "%s", tc.network, 1) + tc.actions)
		_, err := forLab("x.yaml", data, Options{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s%s: %v, want it accepted", tc.network, tc.actions, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrNotLive)):
			t.Errorf("%s%s: %v, want ErrNotLive with %q", tc.network, tc.actions, err, tc.want)
		}
	}
}

// TestTheLabRefusesTriggersAndCounts: the lab plays actions at their times
// on one connection, so a file with an action on an event, or a connection
// of several, is refused at its place.
func TestTheLabRefusesTriggersAndCounts(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"  - {at: 1s, silence: peer}", "  - {on: {event: established, conn: c1}, after: 1s, silence: peer}", "n.yaml:11:6: not a conform scenario: silence on established: the lab plays actions at their times"},
		{"c1: {client: lw, server: peer}", "c1: {client: lw, server: peer, count: 2}", "the lab has one connection; c1 is 2"},
	} {
		file := strings.Replace(namedScenario, tc.from, tc.to, 1)
		if file == namedScenario {
			t.Fatalf("%q is not in the scenario", tc.from)
		}
		if _, err := forLab("n.yaml", []byte(file), Options{}); !errors.Is(err, ErrNotLive) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrNotLive with %q", tc.to, err, tc.want)
		}
	}
}

// TestTheLabDropsByClass: a drop rule is played on the lab's wire both
// ways, as the simulation plays it: the tester's first SYN-ACK (on its
// way out) and the kernel's first data segment (on its way in) are lost,
// each with the rule's reason, and each is sent again (the data 2.34 s
// later: the SYN-ACK's retransmission made the round trip 1 s).
func TestTheLabDropsByClass(t *testing.T) {
	needLive(t)
	t.Parallel()
	data := []byte(`name: drops
duration: 6s
network: {latency: 50us}
hosts: {kernel: {profile: linux}, tester: {}}
connections: {c1: {client: kernel, server: tester}}
actions:
  - {at: 0s, drop: {conn: c1, from: server, segment: syn-ack}}
  - {at: 0s, drop: {conn: c1, segment: data}}
  - {at: 0s, conn: c1, connect: true}
  - {at: 1500ms, conn: c1, send: {bytes: 100}}
`)
	rep, err := Compare("drops.yaml", data, Options{Profile: "linux", Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for name, events := range map[string][]sim.Event{"live": rep.Live, "simulated": rep.Sim} {
		dropped := map[string]string{} // class -> reason
		sent := map[string]int{}       // flags -> segments
		for _, e := range events {
			if seg, ok := e.(*sim.SegmentEvent); ok {
				sent[seg.Flags]++
				if seg.Dropped {
					dropped[seg.Flags] = seg.DropReason
				}
			}
		}
		if !strings.Contains(dropped["SA"], "c1's syn-ack #1 from the server") || !strings.Contains(dropped["PA"], "c1's data #1 from the client") || len(dropped) != 2 {
			t.Errorf("%s: dropped %v; want the first SYN-ACK and the first data, by the rules", name, dropped)
		}
		if sent["SA"] < 2 || sent["PA"] < 2 {
			t.Errorf("%s: sent %v; want the SYN-ACK and the data sent again", name, sent)
		}
	}
}
