package bench

// The retransmit workload: the timer operations of a real TCP stack's
// retransmission path, recorded from a lossy simulation.

import (
	"bytes"
	_ "embed" // the workload's scenario
	"fmt"
	"math/rand/v2"
	"sync"

	"kasim/sim"
	"kasim/timers"
)

// retransmitScenario is bench/retransmit.yaml: request/response rounds
// over a lossy path, on count connections.
//
//go:embed retransmit.yaml
var retransmitScenario []byte

// RetransmitMaxConns bounds the retransmit workload's n: it simulates n
// connections, which takes about 1.5 s and 50 MB a thousand.
const RetransmitMaxConns = 10_000

// retransmitStreams keeps each recording, so that the queues of one
// measurement replay one simulation rather than each running its own.
var retransmitStreams struct {
	sync.Mutex
	m map[[3]uint64]stream
}

// retransmitStream runs bench/retransmit.yaml on n connections (the seed
// drawn from r), records its timer queue, and returns the first ops
// operations.
func retransmitStream(n, ops int, r *rand.Rand) stream {
	seed := r.Uint64()
	key := [3]uint64{uint64(n), uint64(ops), seed}
	retransmitStreams.Lock()
	defer retransmitStreams.Unlock()
	if st, ok := retransmitStreams.m[key]; ok {
		return st
	}
	st := recordRetransmit(n, ops, seed)
	if retransmitStreams.m == nil {
		retransmitStreams.m = map[[3]uint64]stream{}
	}
	retransmitStreams.m[key] = st
	return st
}

func recordRetransmit(n, ops int, seed uint64) stream {
	if n < 1 || n > RetransmitMaxConns {
		return stream{err: fmt.Errorf("retransmit: n %d: want 1 to %d connections (each is simulated)", n, RetransmitMaxConns)}
	}
	s, err := sim.ParseScenario("bench/retransmit.yaml", retransmitScenario)
	if err != nil {
		return stream{err: err}
	}
	s.Conns[0].Count, s.Seed = n, seed
	var trace bytes.Buffer
	if _, err := sim.RunScenarioWith(s, sim.RunOptions{RecordTimers: &trace}); err != nil {
		return stream{err: fmt.Errorf("retransmit: %w", err)}
	}
	t, err := timers.ReadTrace(&trace)
	if err != nil {
		return stream{err: fmt.Errorf("retransmit: %w", err)}
	}
	st := stream{ops: t.Ops[:min(ops, len(t.Ops))]}
	for _, op := range st.ops {
		if op.Kind == timers.OpPush || op.Kind == timers.OpReschedule {
			st.peak = max(st.peak, int(op.ID)+1)
		}
	}
	return st
}
