package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Triggered actions run on their socket's event, at once or after their
// delay; a network action triggered by the event of a connection of
// several runs once, when the last has had it; and until: ended stops the
// run when every client has seen its connection end.
func TestTriggersAndConnectionsOfSeveral(t *testing.T) {
	s, run := mustRun(t, "t.yaml", `duration: 1h
until: ended
hosts: {a: {profile: linux}, b: {}}
connections: {c: {client: a, server: b, count: 3, spread: 2s}}
actions:
  - {at: 0s, conn: c, keepalive: {idle: 5s, interval: 1s, count: 2}}
  - {at: 0s, conn: c, connect: true}
  - {on: established, after: 1s, conn: c, send: {bytes: 10}}
  - {on: {received: 5}, conn: c, end: server, send: hi}
  - {on: {received: 10, conn: c, end: server}, after: 3s, silence: b}
  - {on: failed, conn: c, recv: true}
`)
	client := map[int]string{} // socket id -> member, from run.Sockets
	var server []int
	for _, m := range []string{"c[1]", "c[2]", "c[3]"} {
		id, ok := run.Sockets[SocketKey(m, "client")]
		if !ok {
			t.Fatalf("no socket %s/client in %v", m, run.Sockets)
		}
		client[id] = m
		if id, ok := run.Sockets[SocketKey(m, "server")]; ok {
			server = append(server, id)
		}
	}
	if len(server) != 3 {
		t.Fatalf("server ends %v: want 3 (every connection accepted)", server)
	}
	established := map[int]time.Duration{}
	sends := map[int]time.Duration{}       // the client's send of 10 bytes
	serverSends := map[int]time.Duration{} // the server's "hi", when 5 of them are in
	var silences []time.Duration
	var lastReceipt, lastFailure time.Duration // the server's 10th byte, each client's error
	failedRecvs := 0
	for _, e := range run.Events {
		at := time.Duration(e.Head().TNS)
		switch e := e.(type) {
		case *StateEvent:
			if _, ok := client[e.Conn]; ok && e.To == "ESTABLISHED" {
				established[e.Conn] = at
			}
		case *SockOptEvent:
			switch {
			case e.Call == "send" && client[e.Conn] != "":
				sends[e.Conn] = at
			case e.Call == "send":
				serverSends[e.Conn] = at
			case e.Call == "recv" && client[e.Conn] != "" && at >= established[e.Conn]:
				failedRecvs++ // Linux's recv after ETIMEDOUT: 0, the end of the stream
			}
		case *SegmentEvent:
			if e.Dir == "out" && client[e.Conn] != "" && e.Len == 10 && e.Host == "a" {
				lastReceipt = max(lastReceipt, at+s.Latency)
			}
		case *LinkEvent:
			if e.Action == "silence" {
				silences = append(silences, at)
			}
		case *AppErrorEvent:
			lastFailure = max(lastFailure, at)
		}
	}
	for id, m := range client {
		if sends[id] != established[id]+time.Second {
			t.Errorf("%s: established at %v, sent at %v: want the send 1s after", m, established[id], sends[id])
		}
	}
	if len(serverSends) != 3 {
		t.Errorf("server sends %v: want one on each connection, once 5 bytes are in", serverSends)
	}
	if len(silences) != 1 || silences[0] != lastReceipt+3*time.Second {
		t.Errorf("silences at %v: want one, 3s after the last connection's request arrived (%v)", silences, lastReceipt)
	}
	// Each client fails (keep-alive) and then makes the failed-triggered
	// recv; the run ends with the last of them.
	if failedRecvs != 3 {
		t.Errorf("%d recv calls after a failure: want 3", failedRecvs)
	}
	if run.End != lastFailure || run.End >= s.Duration {
		t.Errorf("the run ended at %v, the last failure at %v: want it to end there (until: ended)", run.End, lastFailure)
	}
}

// A drop rule loses the Nth to the (Nth+Count-1)th segments of its class
// that its end of each of its connections sends, counted from the rule's
// time, and nothing else; the trace says which rule dropped each.
func TestDropsByClass(t *testing.T) {
	_, run := mustRun(t, "d.yaml", `duration: 30s
hosts: {a: {profile: linux}, b: {}}
connections: {c: {client: a, server: b, count: 2, spread: 1s}}
actions:
  - {at: 0s, drop: {conn: c, from: server, segment: syn-ack}}
  - {at: 0s, drop: {conn: c, segment: data, nth: 2, count: 2}}
  - {at: 0s, drop: {conn: c, segment: keepalive-probe}}
  - {at: 0s, conn: c, keepalive: {idle: 10s, interval: 1s, count: 5}}
  - {at: 0s, conn: c, connect: true}
  - {at: 5s, conn: c, send: one}
  - {at: 6s, conn: c, send: two}
  - {at: 7s, conn: c, send: three}
  - {at: 8s, conn: c, send: four}
`)
	dropped := map[string]int{} // reason without the member, by class
	var probes, dataSent int
	for _, e := range run.Events {
		seg, ok := e.(*SegmentEvent)
		if !ok {
			continue
		}
		if seg.Class == ClassKeepAliveProbe {
			probes++
		}
		if seg.Host == "a" && seg.Len > 0 && seg.Class == ClassData {
			dataSent++
		}
		if !seg.Dropped {
			continue
		}
		if !strings.HasPrefix(seg.DropReason, "dropped by the scenario: c[") {
			t.Errorf("%s dropped for %q: want only the scenario's rules", seg.Class, seg.DropReason)
		}
		dropped[seg.DropReason[strings.Index(seg.DropReason, "'s ")+3:]]++
	}
	want := map[string]int{
		"syn-ack #1 from the server (the drop at line 5)":         2, // one per connection
		"data #2 from the client (the drop at line 6)":            2, // "two"
		"data #3 from the client (the drop at line 6)":            2, // "three", or its retransmission of "two"
		"keepalive-probe #1 from the client (the drop at line 7)": 2,
	}
	if diff := cmp.Diff(want, dropped); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if probes < 4 || dataSent < 8 {
		t.Errorf("%d probes, %d data segments sent: want each connection's probes after the first and its four sends", probes, dataSent)
	}
}

// mustRun parses the scenario src (named file) and runs it, keeping its
// trace, failing t on an error.
func mustRun(t *testing.T, file, src string) (*Scenario, *ScenarioRun) {
	t.Helper()
	s, err := ParseScenario(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	run, err := RunScenario(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, run
}

// reading: false stops the application's reading and reading: true starts
// it again. A POSIX application reads nothing in between; on Winsock the
// overlapped receive in progress when it stopped takes what arrives first,
// and no other is posted until it reads again. What the server's
// application has received is seen through received triggers: each sends
// a reply, whose time the trace has.
func TestReadingStopsAndStarts(t *testing.T) {
	for _, tc := range []struct {
		profile         string
		first, all      time.Duration // when the server's application had 100 and 200 bytes
		stopNote, again string
	}{
		{"gvisor", time.Second, time.Second, "c's server end stops reading", "c's server end reads again"},
		{"win7", 200 * time.Millisecond, time.Second, "c's server end stops reading", "c's server end reads again"},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			_, run := mustRun(t, "r.yaml", `duration: 3s
network: {latency: 0s}
hosts: {a: {}, b: {profile: `+tc.profile+`}}
connections: {c: {client: a, server: b}}
actions:
  - {at: 0s, conn: c, connect: true}
  - {at: 100ms, conn: c, end: server, reading: false}
  - {at: 200ms, conn: c, send: {bytes: 100}}
  - {at: 300ms, conn: c, send: {bytes: 100}}
  - {at: 1s, conn: c, end: server, reading: true}
  - {on: {received: 100}, conn: c, end: server, send: "1"}
  - {on: {received: 200}, conn: c, end: server, send: "2"}
`)
			server := run.Sockets[SocketKey("c", "server")]
			var replies []time.Duration
			var notes []string
			for _, e := range run.Events {
				switch e := e.(type) {
				case *SockOptEvent:
					if e.Conn == server && (e.Call == "send" || e.Call == "WSASend") {
						replies = append(replies, time.Duration(e.TNS))
					}
				case *NoteEvent:
					if strings.HasPrefix(e.Text, "c's server end") {
						notes = append(notes, e.Text)
					}
				}
			}
			if want := []time.Duration{tc.first, tc.all}; !cmp.Equal(replies, want) {
				t.Errorf("the server's replies at %v, want %v (100 and 200 bytes received)", replies, want)
			}
			if len(notes) != 2 || !strings.HasPrefix(notes[0], tc.stopNote) || notes[1] != tc.again {
				t.Errorf("notes %q, want %q... then %q", notes, tc.stopNote, tc.again)
			}
		})
	}
}
