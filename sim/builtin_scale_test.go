package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Past ConnsPerClient connections the built-in scenario deals them to more
// client hosts in turn, after the server (whose address stays), and
// tracks every one of them.
func TestBuiltinDealsConnectionsToClientHosts(t *testing.T) {
	defer func(n int) { connsPerClient = n }(connsPerClient)
	connsPerClient = 3
	b := DefaultBuiltin()
	b.Conns, b.Idle, b.Count = 7, 30*time.Second, 2
	want := []string{"client", "client2", "client3"}
	if got := ClientHosts(b.Conns); !slices.Equal(got, want) {
		t.Fatalf("ClientHosts(7) = %v, want %v", got, want)
	}
	s, err := b.Scenario()
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, h := range s.Hosts {
		hosts = append(hosts, h.Name)
	}
	if want := []string{"client", "server", "client2", "client3"}; !slices.Equal(hosts, want) {
		t.Errorf("hosts %v, want %v", hosts, want)
	}
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Clients) != b.Conns {
		t.Fatalf("%d client outcomes, want %d", len(res.Clients), b.Conns)
	}
	for _, o := range res.Clients {
		if o.AbortAt < 0 || o.ProbeCount != b.Count {
			t.Errorf("client sock%d: abort %v, %d probes: want every connection probed twice and aborted", o.Conn, o.AbortAt, o.ProbeCount)
		}
	}
	// Connection m from host m mod 3: three, two and two.
	aborted := map[string]int{}
	for _, e := range res.Events {
		if k, ok := e.(*KeepAliveEvent); ok && k.Action == ActionAbort {
			aborted[k.Host]++
		}
	}
	if want := map[string]int{"client": 3, "client2": 2, "client3": 2}; !cmp.Equal(aborted, want) {
		t.Errorf("aborts by host %v, want %v", aborted, want)
	}
	if p := b.Profiles(); len(p) != 4 || p["client3"] != "gvisor" {
		t.Errorf("Profiles() = %v: want every client host and the server", p)
	}
}

// CountSegments leaves every segment event out of the trace and counts
// it; the other events are the same, in the same order.
func TestBuiltinCountSegments(t *testing.T) {
	b := DefaultBuiltin()
	b.Conns, b.Idle, b.Count = 20, time.Minute, 3
	full, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	var others []Event
	segments := 0
	for _, e := range full.Events {
		if _, ok := e.(*SegmentEvent); ok {
			segments++
		} else {
			others = append(others, e)
		}
	}
	b.CountSegments = true
	counted, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	if counted.SegmentEvents != int64(segments) || segments == 0 {
		t.Errorf("SegmentEvents %d, the trace has %d segment events", counted.SegmentEvents, segments)
	}
	if diff := cmp.Diff(others, counted.Events); diff != "" {
		t.Errorf("the other events differ (-full +counted):\n%s", diff)
	}
	if diff := cmp.Diff(full.Clients, counted.Clients); diff != "" {
		t.Errorf("outcomes differ (-full +counted):\n%s", diff)
	}
}
