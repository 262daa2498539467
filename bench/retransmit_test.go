package bench

import (
	"strings"
	"testing"

	"math/rand/v2"

	"kasim/timers"
)

// The retransmit workload is a recorded simulation: every exact queue
// fires it alike, it holds thousands of timers armed and fired, and n past
// its bound is refused, naming the bound.
func TestRetransmitWorkload(t *testing.T) {
	var w Workload
	for _, x := range Workloads {
		if x.Name == "retransmit" {
			w = x
		}
	}
	if w.gen == nil || w.MaxN != RetransmitMaxConns {
		t.Fatalf("no retransmit workload with MaxN %d in %v", RetransmitMaxConns, Workloads)
	}
	s := Settings{Ops: 200_000, Samples: 1000}
	hashes := map[string]bool{}
	for _, q := range []string{"heap4", "wheel"} {
		r, err := RunWorkload(w, q, 200, s)
		if err != nil {
			t.Fatal(err)
		}
		hashes[r.FireHash] = true
		if r.Ops < 10_000 {
			t.Errorf("%s: %d operations: want a real run's worth", q, r.Ops)
		}
	}
	if len(hashes) != 1 {
		t.Errorf("fire hashes %v: every exact queue must fire the recording alike", hashes)
	}
	// gVisor's TCP timers (tcp/timer.go) disarm lazily: an ACK leaves the
	// retransmission timer to fire and find nothing to do, so the queue
	// sees pushes and fires, hardly a cancel.
	st := retransmitStream(200, s.Ops, rand.New(rand.NewPCG(1, 200)))
	kinds := map[timers.OpKind]int{}
	for _, op := range st.ops {
		if op.Kind != timers.OpPopDue || op.Fired {
			kinds[op.Kind]++
		}
	}
	if kinds[timers.OpPush] < 1000 || kinds[timers.OpPopDue] < 1000 || kinds[timers.OpPeek] == 0 {
		t.Errorf("operations by kind %v: want thousands of timers armed and fired", kinds)
	}
	if _, err := RunWorkload(w, "heap4", RetransmitMaxConns+1, s); err == nil || !strings.Contains(err.Error(), "want 1 to 10000 connections") {
		t.Errorf("n past the bound: %v", err)
	}
}
