package main

import (
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"sync"
	"testing"

	"kasim/timers"
)

// Every command in the table is in kasim --help, in table order, and
// dispatches (none is an unknown command); the usage text is the intro and
// the table's lines.
func TestUsageListsEveryCommand(t *testing.T) {
	code, out, _ := kasim("--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out, usageIntro) {
		t.Errorf("kasim --help does not start with the intro:\n%s", out)
	}
	last := -1
	for _, c := range commands {
		i := strings.Index(out, "\n  kasim "+c.name)
		if i < 0 {
			t.Errorf("kasim --help does not list %s:\n%s", c.name, out)
			continue
		}
		if i < last {
			t.Errorf("kasim --help lists %s out of the table's order", c.name)
		}
		last = i
		if _, _, errOut := kasim(c.name, "--help"); strings.Contains(errOut, "unknown command") {
			t.Errorf("kasim %s --help: %s", c.name, errOut)
		}
		if code, help, _ := kasim("help", c.name); code != 0 || !strings.HasPrefix(help, "Usage: kasim "+c.name) {
			t.Errorf("kasim help %s: exit %d, %q", c.name, code, help)
		}
	}
	for _, l := range usageLines() {
		if len(l) > 100 || strings.TrimSpace(l) != l && !strings.HasPrefix(l, strings.Repeat(" ", 22)) {
			t.Errorf("usage line %q: too long, or a summary out of its column", l)
		}
	}
}

// The unknown-command message is one line, lists every command and, for a
// typo, suggests the command meant.
func TestUnknownCommand(t *testing.T) {
	for arg, suggest := range map[string]string{
		"rn": "run", "chekc": "check", "bnech": "bench", "profle": "profile", "profilez": "profiles",
		"versoin": "version", "comp": "compare", "frobnicate": "", "x": "", "prof": "",
	} {
		code, out, errOut := kasim(arg)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("kasim %s: exit %d, stdout %q, stderr %q; want one line, exit 2", arg, code, out, errOut)
		}
		if !strings.HasPrefix(errOut, `kasim: unknown command "`+arg+`"`) {
			t.Errorf("kasim %s: %q", arg, errOut)
		}
		for _, c := range commands {
			if !strings.Contains(errOut, " "+c.name) {
				t.Errorf("kasim %s: the message does not list %s: %q", arg, c.name, errOut)
			}
		}
		did := "did you mean " + suggest + "?"
		if suggest == "" && strings.Contains(errOut, "did you mean") || suggest != "" && !strings.Contains(errOut, did) {
			t.Errorf("kasim %s: %q, want a suggestion of %q", arg, errOut, suggest)
		}
	}
}

// The package doc comment shows the same command lines as kasim --help.
func TestDocCommentListsEveryCommand(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	_, block, ok := strings.Cut(doc, "Usage:\n\n")
	if !ok {
		t.Fatalf("the doc comment has no Usage block:\n%s", doc)
	}
	block, _, _ = strings.Cut(block, "\n\n")
	var got []string
	for _, l := range strings.Split(block, "\n") {
		got = append(got, strings.TrimPrefix(l, "\t"))
	}
	if want := usageLines(); !slices.Equal(got, want) {
		t.Errorf("the doc comment's usage lines:\n%s\nwant the table's (kasim --help's):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var registerCmdQueue sync.Once

// A queue registered in the program (as a researcher's own main would) is
// a --timers choice, listed by kasim run --help, runs the scenario and is
// measured by kasim bench.
func TestRegisteredQueueIsAChoice(t *testing.T) {
	const name = "cmd-test-heap2"
	registerCmdQueue.Do(func() {
		err := timers.Register(timers.Spec{Name: name, Doc: "a binary heap under another name", New: func() timers.Queue { return timers.NewHeap2() }, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
	})
	_, help, _ := kasim("run", "--help")
	if !strings.Contains(help, name+" (a binary heap under another name), which give the same trace") {
		t.Errorf("kasim run --help does not list %s among the exact queues:\n%s", name, help)
	}
	_, want, _ := kasim("run", "--conns", "5", "--format", "jsonl")
	code, got, errOut := kasim("run", "--conns", "5", "--format", "jsonl", "--timers", name)
	if code != 0 || got != want {
		t.Errorf("kasim run --timers %s: exit %d, %s; same trace as heap4: %v", name, code, errOut, got == want)
	}
	if code, _, errOut := kasim("run", "--timers", "nosuch"); code != 2 || !strings.Contains(errOut, "faketime, "+name) {
		t.Errorf("kasim run --timers nosuch: exit %d, %q: want the registered queue listed", code, errOut)
	}
	code, out, errOut := kasim("bench", "--queues", name+",heap4", "--micro", "schedule-cancel", "--workloads", "uniform", "--n", "100", "--ops", "1000", "--format", "csv")
	if code != 0 || !strings.Contains(out, "\n"+name+",uniform,") {
		t.Errorf("kasim bench --queues %s: exit %d, %s\n%s", name, code, errOut, out)
	}
	if _, help, _ := kasim("bench", "--help"); !strings.Contains(help, name) {
		t.Errorf("kasim bench --help does not list %s", name)
	}
}
