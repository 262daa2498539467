package timers

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Spec describes a timer queue by name: the one list of queues that the
// simulation (sim.Builtin's Timers), `kasim run --timers`, `kasim bench`
// and bench.Register all read, so that a queue registered once is usable
// everywhere.
type Spec struct {
	// Name is what flags and settings call the queue: letters, digits,
	// '-', '_' and '.'.
	Name string
	// Doc says in a few words what the queue is, for help texts ("4-ary
	// heap"); it may be empty.
	Doc string
	// New returns an empty queue. If it has a Close method, the run that
	// made it calls Close when done.
	New func() Queue
	// Exact queues fire every timer at its deadline, equal deadlines in
	// scheduling order: they all give the same trace and fire hash.
	Exact bool
	// PerHost queues hold one host's stack timers each (a new one per
	// host) while the network's delays stay on an exact queue: "linux",
	// whose HZ wheel fires late, by its rounding, as a kernel's does.
	PerHost bool
	// RealTime queues wait for the wall clock: virtual time advances no
	// faster than real time ("runtime").
	RealTime bool
	// Nondeterministic queues run on timers kasim does not control and
	// fire timers due at the same instant in an order of the
	// implementation's choosing, so runs can differ from one another;
	// they are there for comparison ("runtime", "faketime").
	Nondeterministic bool
}

var registry = struct {
	sync.Mutex
	specs []Spec
}{specs: []Spec{
	{Name: "heap4", Doc: "4-ary heap", New: func() Queue { return NewHeap4() }, Exact: true},
	{Name: "heap2", Doc: "binary heap", New: func() Queue { return NewHeap2() }, Exact: true},
	{Name: "wheel", Doc: "exact hierarchical timing wheel", New: func() Queue { return NewWheel() }, Exact: true},
	{Name: "linux", Doc: "Linux's timer wheel at HZ=250, which fires late, by its rounding", New: func() Queue { return NewLinuxWheel(250) }, PerHost: true},
	{Name: "runtime", Doc: "Go runtime timers", New: func() Queue { return NewRuntimeQueue() }, RealTime: true, Nondeterministic: true},
	{Name: "faketime", Doc: "gVisor's faketime.ManualClock", New: func() Queue { return NewFaketimeQueue() }, Nondeterministic: true},
}}

// Register adds a queue to the registry, after the built-in ones, so that
// a program that registers it (its own main, say) can run and measure it
// by name. Check the queue with timers/queuetest first. A name already
// registered is an error.
func Register(s Spec) error {
	switch {
	case s.Name == "" || s.New == nil:
		return errors.New("timers: a queue needs a name and a constructor")
	case !validName(s.Name):
		return fmt.Errorf("timers: queue name %q: want letters, digits, '-', '_' and '.'", s.Name)
	case s.Exact && s.Nondeterministic:
		return fmt.Errorf("timers: queue %q cannot be both exact and nondeterministic", s.Name)
	}
	registry.Lock()
	defer registry.Unlock()
	if slices.ContainsFunc(registry.specs, func(r Spec) bool { return r.Name == s.Name }) {
		return fmt.Errorf("timers: queue %q is already registered", s.Name)
	}
	registry.specs = append(registry.specs, s)
	return nil
}

// Lookup finds a registered queue by name.
func Lookup(name string) (Spec, bool) {
	registry.Lock()
	defer registry.Unlock()
	i := slices.IndexFunc(registry.specs, func(s Spec) bool { return s.Name == name })
	if i < 0 {
		return Spec{}, false
	}
	return registry.specs[i], true
}

// Specs returns the registered queues: heap4, heap2, wheel, linux, runtime
// and faketime, then the others in the order they were registered.
func Specs() []Spec {
	registry.Lock()
	defer registry.Unlock()
	return slices.Clone(registry.specs)
}

// Names returns the names of the registered queues, in the order of Specs.
func Names() []string {
	var names []string
	for _, s := range Specs() {
		names = append(names, s.Name)
	}
	return names
}

func validName(name string) bool {
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}
