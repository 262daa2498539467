package timers_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"kasim/timers"
)

var registerOnce sync.Once

// registerTestQueue registers "test-heap" once per test binary: the
// registry only grows.
func registerTestQueue(t *testing.T) {
	t.Helper()
	var err error
	registerOnce.Do(func() {
		err = timers.Register(timers.Spec{Name: "test-heap", Doc: "a 4-ary heap under another name", New: func() timers.Queue { return timers.NewHeap4() }, Exact: true})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegistryOrderAndLookup(t *testing.T) {
	registerTestQueue(t)
	builtin := []string{"heap4", "heap2", "wheel", "linux", "runtime", "faketime"}
	names := timers.Names()
	if len(names) < len(builtin)+1 || !slices.Equal(names[:len(builtin)], builtin) {
		t.Fatalf("Names() = %v, want %v first", names, builtin)
	}
	if !slices.Contains(names[len(builtin):], "test-heap") {
		t.Fatalf("Names() = %v: the registered queue is not after the built-in ones", names)
	}
	for _, s := range timers.Specs() {
		got, ok := timers.Lookup(s.Name)
		if !ok || got.Name != s.Name {
			t.Errorf("Lookup(%q) = %v, %v", s.Name, got.Name, ok)
		}
		q := s.New()
		q.Push(1, 5)
		if _, ok := q.Peek(); !ok || q.Len() != 1 {
			t.Errorf("%s: after one Push, Peek says %v and Len %d", s.Name, ok, q.Len())
		}
		if c, ok := q.(interface{ Close() }); ok {
			c.Close()
		}
	}
	if _, ok := timers.Lookup("nosuch"); ok {
		t.Error("Lookup found a queue never registered")
	}
	for name, want := range map[string][3]bool{ // exact, per host, nondeterministic
		"heap4": {true, false, false}, "wheel": {true, false, false}, "linux": {false, true, false},
		"runtime": {false, false, true}, "faketime": {false, false, true},
	} {
		s, _ := timers.Lookup(name)
		if got := [3]bool{s.Exact, s.PerHost, s.Nondeterministic}; got != want {
			t.Errorf("%s: exact, per host, nondeterministic = %v, want %v", name, got, want)
		}
	}
	if s, _ := timers.Lookup("runtime"); !s.RealTime {
		t.Error("runtime is not marked real-time")
	}
}

func TestRegisterRefuses(t *testing.T) {
	registerTestQueue(t)
	heap := func() timers.Queue { return timers.NewHeap4() }
	for _, tc := range []struct {
		spec timers.Spec
		want string
	}{
		{timers.Spec{Name: "heap4", New: heap, Exact: true}, `queue "heap4" is already registered`},
		{timers.Spec{Name: "runtime", New: heap}, `queue "runtime" is already registered`},
		{timers.Spec{Name: "test-heap", New: heap}, `queue "test-heap" is already registered`},
		{timers.Spec{Name: "", New: heap}, "needs a name and a constructor"},
		{timers.Spec{Name: "nil-new"}, "needs a name and a constructor"},
		{timers.Spec{Name: "a,b", New: heap}, `queue name "a,b"`},
		{timers.Spec{Name: "both", New: heap, Exact: true, Nondeterministic: true}, "both exact and nondeterministic"},
	} {
		before := len(timers.Specs())
		err := timers.Register(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Register(%q) = %v, want an error containing %q", tc.spec.Name, err, tc.want)
		}
		if after := len(timers.Specs()); after != before {
			t.Errorf("Register(%q) failed but the registry grew to %d", tc.spec.Name, after)
		}
	}
}
