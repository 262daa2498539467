package sim

import (
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes f allocates (runtime.MemStats.TotalAlloc), a
// measure of work that does not depend on how busy the machine is.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Flow collections nested past the limit are refused before the YAML
// parser sees them: its cost grows with the square of their depth (a
// 200 KB file of brackets took 8.8 GB and 50 s), its lexer's linearly.
// Budget: 100 MB allocated for a 200 KB file (measured: 48 and 55 MB).
func TestDeepFlowNestingIsRefusedCheaply(t *testing.T) {
	for name, body := range map[string]string{
		"sequences": strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		"mappings":  strings.Repeat("{a: ", 50000) + "1" + strings.Repeat("}", 50000),
	} {
		var err error
		used := allocated(func() { _, err = ParseScenario("n.yaml", []byte("duration: 1h\nx: "+body+"\n")) })
		if err == nil || !strings.Contains(err.Error(), "n.yaml:2:") || !strings.Contains(err.Error(), "nested more than 32 levels deep") {
			t.Errorf("%s: %v, want nesting refused at its place on line 2", name, err)
		}
		if used > 100<<20 {
			t.Errorf("%s: refusing a 200 KB file allocated %d MB, want at most 100 MB", name, used>>20)
		}
		t.Logf("%s: %d MB allocated", name, used>>20)
	}
	// Brackets in quoted text, comments and block scalars are not nesting.
	deep := strings.Repeat("[", 40)
	ok := "name: \"" + deep + "\"\ndescription: |\n  " + deep + "\nduration: 1h # " + deep + "\nhosts: {a: {}}\n"
	if _, err := ParseScenario("q.yaml", []byte(ok)); err != nil {
		t.Errorf("brackets that are text: %v", err)
	}
}
