package sim

import (
	"testing"
	"time"
)

// Triggered actions run on their socket's event, at once or after their
// delay; a network action triggered by the event of a connection of
// several runs once, when the last has had it; and until: ended stops the
// run when every client has seen its connection end.
func TestTriggersAndConnectionsOfSeveral(t *testing.T) {
	s, err := ParseScenario("t.yaml", []byte(`duration: 1h
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
`))
	if err != nil {
		t.Fatal(err)
	}
	run, err := RunScenario(s)
	if err != nil {
		t.Fatal(err)
	}
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
