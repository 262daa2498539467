package bench

// The suite's queues: registering them and looking them up.

import (
	"errors"

	"kasim/timers"
)

// QueueSpec names a timer queue for the suite: the part of a timers.Spec
// the suite reads.
type QueueSpec struct {
	Name string
	New  func() timers.Queue
	// Exact queues fire every timer at its deadline, equal deadlines in
	// scheduling order; their fire hashes must agree.
	Exact bool
}

// The reference queues of the micro benchmarks that are not measured as
// timers.Queue implementations but through their own APIs. They are in the
// timers registry under these names.
const (
	Runtime  = "runtime"  // Go runtime timers (time.AfterFunc)
	Faketime = "faketime" // gVisor's faketime.ManualClock
)

// Register adds a queue to the timers registry (timers.Register), so that
// RunMicro, RunWorkload and `kasim bench` measure it beside the built-in
// ones, and the simulation (sim.Builtin's Timers, `kasim run --timers`)
// can run on it, in a program that registers it. Check it with
// timers/queuetest first.
func Register(q QueueSpec) error {
	if q.Name == "" || q.New == nil {
		return errors.New("bench: a queue needs a name and a constructor")
	}
	return timers.Register(timers.Spec{Name: q.Name, New: q.New, Exact: q.Exact})
}

// Queues returns the suite's queues, the registered timers.Queue
// implementations, in the registry's order (built-in ones first): every
// registered queue but Runtime and Faketime.
func Queues() []QueueSpec {
	var qs []QueueSpec
	for _, s := range timers.Specs() {
		if q, ok := suiteQueue(s); ok {
			qs = append(qs, q)
		}
	}
	return qs
}

// LookupQueue finds one of the suite's queues (Queues) by name.
func LookupQueue(name string) (QueueSpec, bool) {
	s, ok := timers.Lookup(name)
	if !ok {
		return QueueSpec{}, false
	}
	return suiteQueue(s)
}

// suiteQueue returns a registered queue as the suite measures it, or false
// for Runtime and Faketime, which it measures through their own APIs.
func suiteQueue(s timers.Spec) (QueueSpec, bool) {
	if s.Name == Runtime || s.Name == Faketime {
		return QueueSpec{}, false
	}
	return QueueSpec{Name: s.Name, New: s.New, Exact: s.Exact}, true
}
