package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"go.uber.org/goleak"

	"kasim/bench"
	"kasim/internal/dut"
	"kasim/internal/live"
)

func TestMain(m *testing.M) {
	// kasim conform's lab re-executes this binary as its helper, and as
	// the gvisor driver.
	live.MaybeRunPeer()
	dut.MaybeRunBuiltin()
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("runtime.runCleanups"),
		// The thread live starts its helpers from lives as long as the process.
		goleak.IgnoreTopFunction("kasim/internal/live.forkerLoop"))
}

func kasim(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestDefaultRunPrintsAnnotatedTimeline(t *testing.T) {
	code, out, errOut := kasim()
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1) = 0",
		"SYN-SENT -> ESTABLISHED",
		"server falls silent",
		"pass with nothing on the wire",
		"02:00:00.040  client  sock2 keep-alive probe 1 of 10",
		"02:00:09.040  client  sock2 keep-alive probe 10 of 10",
		"02:00:10.040  client  sock2 keep-alive gives up: 10 probes unanswered",
		"recv() fails: ETIMEDOUT (110)",
		"keep-alive gave up at 02:00:10.040 = last segment received 00:00:00.040 + idle 2h0m0s + 10 x interval 1s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	_, viaRun, _ := kasim("run")
	if viaRun != out {
		t.Error("`kasim` and `kasim run` print different output")
	}
}

func TestJSONLHasRequiredFieldsOnEveryLine(t *testing.T) {
	code, out, _ := kasim("run", "--format", "jsonl", "--idle", "10m", "--interval", "30s", "--count", "4")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	lines, probes := 0, 0
	for sc.Scan() {
		lines++
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", lines, err)
		}
		for _, f := range []string{"t_ns", "t", "host", "event"} {
			if _, ok := m[f]; !ok {
				t.Fatalf("line %d lacks %q: %s", lines, f, sc.Text())
			}
		}
		if m["event"] == "keepalive" && m["action"] == "probe" {
			probes++
		}
	}
	if probes != 4 {
		t.Errorf("%d probe decisions, want 4 (--count 4)", probes)
	}
}

func TestUsageErrorsAreOneLineExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--idle", "abc"}, `--idle "abc": want a duration such as 2h, 90s or 1500ms`},
		{[]string{"run", "--idle", "0s"}, "--idle 0s: want more than 0"},
		{[]string{"run", "--interval", "-1s"}, "--interval -1s"},
		{[]string{"run", "--count", "0"}, "--count 0: want 1 to 255"},
		{[]string{"run", "--count", "ten"}, `--count "ten": not a number`},
		{[]string{"run", "--seed", "-1"}, `--seed "-1": a negative number: want 0 or more`},
		{[]string{"run", "--format", "xml"}, `--format "xml": want one of text, jsonl`},
		{[]string{"run", "--peer", "zombie"}, `--peer "zombie": want one of dead, alive`},
		{[]string{"run", "--loss", "1"}, "--loss 1: want at least 0 and below 1"},
		{[]string{"run", "--conns", "1000001"}, "--conns 1000001"},
		{[]string{"run", "--bogus"}, "unknown flag -bogus"},
		{[]string{"run", "--timers", "runtime", "--record-timers", "x.trace"}, "--record-timers: recording timers needs one exact queue"},
		{[]string{"run", "--idle"}, "--idle needs a value"},
		{[]string{"run", "scenario.yaml"}, `open scenario.yaml: no such file or directory`},
		{[]string{"run", "--format", "jsonl", "scenario.yaml"}, `unexpected argument "scenario.yaml" (a scenario file comes first`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"conform", "--scale", "-1/2"}, "--scale -1/2: want a positive fraction such as 1/3600 or 0.01"},
		{[]string{"conform", "--stack", "/nonexistent/stack"}, "--stack: exec: \"/nonexistent/stack\""},
		{[]string{"conform", "--runs", "0"}, "--runs 0: want 1 to 50"},
		{[]string{"conform", "--dut", "/nonexistent/driver"}, `--dut /nonexistent/driver: exec: "/nonexistent/driver"`},
		{[]string{"conform", "--dut", "lwip", "--stack", "true"}, "--dut and --stack: give one"},
		{[]string{"conform", "--format", "xml"}, "--format xml: want text or jsonl"},
		{[]string{"conform", "--profile", "win95"}, "--profile win95: unknown profile"},
		{[]string{"conform", "--vectors", "/nonexistent"}, "--vectors /nonexistent: want a directory of scenario files"},
		{[]string{"conform", "--vectors", "."}, "--vectors .: no scenario files (*.yaml) in it"},
		{[]string{"--count", "300"}, "--count 300"},
	} {
		code, out, errOut := kasim(tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if out != "" {
			t.Errorf("%v: printed to stdout: %q", tc.args, out)
		}
		if !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, errOut, tc.want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		if code, out, _ := kasim(args...); code != 0 || !strings.Contains(out, "kasim run [flags]") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
	code, out, _ := kasim("run", "--help")
	if code != 0 {
		t.Fatalf("run --help: exit %d", code)
	}
	for _, f := range []string{"idle", "interval", "count", "seed", "conns", "latency", "loss", "peer", "silence-after", "duration", "format", "pcap", "svg"} {
		if !strings.Contains(out, "-"+f) {
			t.Errorf("run --help does not mention --%s", f)
		}
	}
	if code, out, _ := kasim("version"); code != 0 || !strings.HasPrefix(out, "kasim ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, out, _ := kasim("version", "--help"); code != 0 || !strings.HasPrefix(out, "Usage: kasim version") {
		t.Errorf("version --help: exit %d, %q", code, out)
	}
	if code, _, errOut := kasim("version", "extra"); code != 2 || !strings.Contains(errOut, `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, %q", code, errOut)
	}
	if code, out, _ := kasim("help", "run"); code != 0 || !strings.HasPrefix(out, "Usage: kasim run") {
		t.Errorf("help run: exit %d, %q", code, out)
	}
	if strings.Contains(out, " value\n") || strings.Contains(out, "(default 0s)") {
		t.Errorf("run --help shows placeholder or zero defaults:\n%s", out)
	}
}

func TestPcapFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.pcap")
	if code, _, errOut := kasim("run", "--pcap", path, "--format", "jsonl"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 || !bytes.Equal(b[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}) {
		t.Fatalf("pcap: %v, % x", err, b[:min(len(b), 8)])
	}
	code, _, errOut := kasim("run", "--pcap", filepath.Join(t.TempDir(), "no", "such", "dir", "x.pcap"))
	if code != 1 || !strings.Contains(errOut, "--pcap") {
		t.Errorf("unwritable --pcap: exit %d, %q; want 1 and a message naming --pcap", code, errOut)
	}
}

func TestSVGFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.svg")
	code, out, errOut := kasim("run", "--svg", path, "--format", "jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// One arrow per segment of the trace the same run printed.
	if segs := strings.Count(out, `"event":"segment"`); segs == 0 || strings.Count(string(b), `<g class="segment"`) != segs {
		t.Errorf("%d segment arrows in the SVG, %d segments in the trace", strings.Count(string(b), `<g class="segment"`), segs)
	}
	if !strings.Contains(string(b), "1h59m50.01s idle") {
		t.Error("the SVG lacks the compressed idle gap")
	}
	code, _, errOut = kasim("run", "--svg", filepath.Join(t.TempDir(), "no", "such", "dir", "x.svg"))
	if code != 1 || !strings.Contains(errOut, "--svg") {
		t.Errorf("unwritable --svg: exit %d, %q; want 1 and a message naming --svg", code, errOut)
	}
}

func TestLivePeerStaysUp(t *testing.T) {
	code, out, _ := kasim("run", "--peer", "alive", "--idle", "1m")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "3 keep-alive probe(s), 3 answered") || !strings.Contains(out, "the connection is ESTABLISHED") {
		t.Errorf("live peer summary wrong:\n%s", out[strings.Index(out, "Summary"):])
	}
}

// docFile is a Markdown file of the documentation: README.md or one of
// docs/*.md, named by its path from the repository's root.
type docFile struct {
	name string // README.md, docs/cli.md, ...
	text string
}

// docFiles reads README.md and every docs/*.md, README first, the others in
// name order, so that every command and excerpt shown anywhere is tested.
func docFiles(t *testing.T) []docFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	paths = append([]string{filepath.Join("..", "..", "README.md")}, paths...)
	var files []docFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(filepath.Join("..", ".."), p)
		files = append(files, docFile{name: filepath.ToSlash(name), text: string(b)})
	}
	return files
}

// TestREADMECommandsWork runs every kasim command the README and the pages
// under docs/ show, so that no page can drift from the command. A command
// shown on several pages runs once, in the order of its first showing (a
// later command may read a file an earlier one wrote, as bench --replay
// does), and a failure names every page that shows it.
func TestREADMECommandsWork(t *testing.T) {
	re := regexp.MustCompile("(?m)^\\s*(?:\\$ )?go run \\./cmd/kasim(.*)$")
	var order []string               // distinct command lines, first shown first
	shownIn := map[string][]string{} // command line -> the files that show it
	inREADME := 0
	for _, f := range docFiles(t) {
		for _, m := range re.FindAllStringSubmatch(f.text, -1) {
			line := " " + m[1]
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i] // a comment
			}
			if i := strings.Index(line, "|"); i >= 0 {
				line = line[:i] // output piped to head or a pager
			}
			line = strings.TrimSpace(line)
			if f.name == "README.md" {
				inREADME++
			}
			if _, seen := shownIn[line]; !seen {
				order = append(order, line)
			}
			shownIn[line] = append(shownIn[line], f.name)
		}
	}
	// The README keeps its Quick start and one example per audience; the
	// docs hold the rest, so the total is far above the README's alone.
	if inREADME < 3 {
		t.Errorf("found %d `go run ./cmd/kasim` lines in README.md, expected several", inREADME)
	}
	if len(order) < 20 {
		t.Fatalf("found %d distinct `go run ./cmd/kasim` lines in README.md and docs/*.md, expected many more", len(order))
	}
	dir := t.TempDir()
	for _, line := range order {
		args := strings.Fields(line)
		for i, a := range args {
			if strings.HasSuffix(a, ".pcap") || strings.HasSuffix(a, ".svg") || strings.HasSuffix(a, ".trace") {
				args[i] = filepath.Join(dir, filepath.Base(a))
			}
			if strings.HasPrefix(a, "testdata/") {
				args[i] = filepath.Join("..", "..", a) // the docs' paths are from the repository's root
			}
		}
		for i := 1; i < len(args); i++ {
			if n, err := strconv.Atoi(args[i]); err == nil && args[i-1] == "--conns" && n > 1000 {
				// The docs show runs at server scale, of minutes and
				// gigabytes: the flags must parse, and a thousand
				// connections run the same way.
				args[i] = "1000"
			}
		}
		if len(args) > 0 && args[0] == "bench" {
			// The flags must parse and the run work; a small one will do
			// (the last --n and --ops win).
			args = append(args, "--n", "500", "--ops", "2000")
		}
		if code, _, errOut := kasim(args...); code != 0 {
			t.Errorf("%s: command `kasim %s`: exit %d: %s", strings.Join(shownIn[line], ", "), line, code, errOut)
		}
	}
}

// TestREADMETimelineExcerptsAreTrue: each timeline line the README or a page
// under docs/ quotes is, byte for byte, a line of the built-in run it comes
// from (the default run, the one on Windows 7, or the Linux one).
func TestREADMETimelineExcerptsAreTrue(t *testing.T) {
	printed := map[string]bool{}
	for _, args := range [][]string{nil, {"run", "--profile", "win7"},
		{"run", "--profile", "linux", "--idle", "2s", "--interval", "1s", "--count", "3"}} {
		code, out, errOut := kasim(args...)
		if code != 0 {
			t.Fatalf("kasim %v: exit %d: %s", args, code, errOut)
		}
		for _, l := range strings.Split(out, "\n") {
			printed[l] = true
		}
	}
	re := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3}  .*$`)
	total, inREADME := 0, 0
	for _, f := range docFiles(t) {
		quoted := re.FindAllString(f.text, -1)
		total += len(quoted)
		if f.name == "README.md" {
			inREADME = len(quoted)
		}
		for _, q := range quoted {
			if !printed[q] {
				t.Errorf("%s quotes a line neither run prints:\n%s", f.name, q)
			}
		}
	}
	// The README's Quick start quotes the built-in run; docs/profiles.md
	// quotes the Windows 7 and Linux runs.
	if inREADME < 5 {
		t.Errorf("found %d quoted timeline lines in README.md, expected more", inREADME)
	}
	if total < 12 {
		t.Errorf("found %d quoted timeline lines in README.md and docs/*.md, expected more", total)
	}
}

// TestREADMEStaysShort: the README is what a newcomer reads first; the rest
// belongs in docs/, one page per topic.
func TestREADMEStaysShort(t *testing.T) {
	readme := docFiles(t)[0]
	if n := strings.Count(readme.text, "\n"); n > 250 {
		t.Errorf("README.md has %d lines, more than 250: move a topic to docs/", n)
	}
}

// TestDocsNameTheirPackages: each page under docs/ says near its top which
// package(s) it describes, so that whoever changes a package knows which
// page to change with it.
func TestDocsNameTheirPackages(t *testing.T) {
	for _, f := range docFiles(t)[1:] {
		lines := strings.SplitN(f.text, "\n", 12)
		if !strings.Contains(strings.Join(lines[:len(lines)-1], "\n"), "This page describes") {
			t.Errorf("%s does not say near its top which package(s) it describes (\"This page describes ...\")", f.name)
		}
	}
}

// TestDocsLinksResolve: every relative link in the README and docs/*.md
// names a file that exists and, with a #fragment into a Markdown file, a
// heading of that file; and the README links every page under docs/.
func TestDocsLinksResolve(t *testing.T) {
	files := docFiles(t)
	if len(files) < 2 {
		t.Fatal("no docs/*.md files")
	}
	fence := regexp.MustCompile("(?ms)^```.*?^```")
	code := regexp.MustCompile("`[^`\n]*`")
	link := regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	linked := map[string]bool{} // files the README links, from the root
	for _, f := range files {
		text := code.ReplaceAllString(fence.ReplaceAllString(f.text, ""), "")
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := f.name // a bare #fragment is into the same file
			if file != "" {
				path = filepath.ToSlash(filepath.Join(filepath.Dir(f.name), file))
			}
			if f.name == "README.md" {
				linked[path] = true
			}
			b, err := os.ReadFile(filepath.Join("..", "..", path))
			if err != nil {
				if _, serr := os.Stat(filepath.Join("..", "..", path)); serr != nil {
					t.Errorf("%s: link %q: %s does not exist", f.name, target, path)
				}
				continue // a directory
			}
			if frag != "" && strings.HasSuffix(path, ".md") && !headingSlugs(string(b))[frag] {
				t.Errorf("%s: link %q: %s has no heading #%s", f.name, target, path, frag)
			}
		}
	}
	for _, f := range files[1:] {
		if !linked[f.name] {
			t.Errorf("README.md does not link %s (its \"Where to read next\" should)", f.name)
		}
	}
}

// headingSlugs returns the anchors GitHub makes for a Markdown file's
// headings: lower case, punctuation dropped, spaces turned into hyphens.
func headingSlugs(md string) map[string]bool {
	slugs := map[string]bool{}
	md = regexp.MustCompile("(?ms)^```.*?^```").ReplaceAllString(md, "")
	for _, m := range regexp.MustCompile(`(?m)^#{1,6} +(.+?) *#* *$`).FindAllStringSubmatch(md, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		for n := 1; slugs[slug]; n++ { // a repeated heading gets -1, -2, ...
			slug = fmt.Sprintf("%s-%d", b.String(), n)
		}
		slugs[slug] = true
	}
	return slugs
}

func TestWindowsProfiles(t *testing.T) {
	code, out, errOut := kasim("run", "--profile", "vista")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"WSAStartup(2.2) = 0",
		"setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1) = 0",
		"len=1",
		"keep-alive gives up: 10 probes unanswered",
		"WSARecv completes = SOCKET_ERROR, WSAENETRESET (10052)",
		"recv(65536) = SOCKET_ERROR, WSAECONNRESET (10054)",
		"RA  seq=19",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("vista run lacks %q", want)
		}
	}
	_, out, _ = kasim("run", "--profile", "xp", "--registry", "TcpMaxDataRetransmissions=3", "--registry", "PPTPTcpMaxDataRetransmissions=7")
	if !strings.Contains(out, "7 keep-alive probe(s)") {
		t.Errorf("XP with registry (3, 7) did not send 7 probes:\n%s", out[strings.Index(out, "Summary"):])
	}
	_, out, _ = kasim("run", "--profile", "win10-1703", "--idle", "30s", "--interval", "500ms", "--count", "3")
	if !strings.Contains(out, "WSAIoctl(SIO_KEEPALIVE_VALS, {onoff=1, keepalivetime=30000, keepaliveinterval=500}) = 0") ||
		!strings.Contains(out, "setsockopt(IPPROTO_TCP, TCP_KEEPCNT, 3) = 0") || !strings.Contains(out, "3 keep-alive probe(s)") {
		t.Errorf("per-connection settings on 1703 not applied:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--profile", "windows95"}, `--profile windows95: unknown profile "windows95" (known: linux, gvisor, freebsd, lwip, win2000, xp,`},
		{[]string{"run", "--profile", "xp", "--registry", "KeepAliveTime=0"}, "--registry: KeepAliveTime=0: out of range, valid 1 to 4294967295 (ms)"},
		{[]string{"run", "--profile", "xp", "--registry", "Colour=1"}, `--registry: unknown registry value "Colour" (known: KeepAliveTime, KeepAliveInterval,`},
		{[]string{"run", "--profile", "xp", "--set", "KeepAliveTime=1"}, `--set: unknown setting "KeepAliveTime" (want abort, probe-bytes, max-syn-retransmissions or initial-rto)`},
		{[]string{"run", "--profile", "xp", "--registry", "KeepAliveTime"}, `--registry "KeepAliveTime": want NAME=VALUE`},
		{[]string{"run", "--profile", "xp", "--set", "abort=sometimes"}, "--set: abort=sometimes: want rst or none"},
		{[]string{"run", "--profile", "xp", "--count", "3"}, "--registry TcpMaxDataRetransmissions=3"},
		{[]string{"run", "--profile", "win7", "--idle", "1500us"}, "whole milliseconds"},
		{[]string{"run", "--registry", "KeepAliveTime=5"}, "--registry needs a Windows --profile; gvisor has none"},
		{[]string{"run", "--profile", "linux", "--set", "hz=200"}, "--set: hz=200: want 0 (exact timers) or one of 100, 250, 300, 1000"},
		{[]string{"run", "--profile", "linux", "--set", "probe-bytes=1"}, `--set: unknown setting "probe-bytes" (want hz, abort, user-timeout, tcp_retries2, tcp_syn_retries, tcp_syn_linear_timeouts, tcp_synack_retries, tcp_keepalive_time, tcp_keepalive_intvl or tcp_keepalive_probes)`},
		{[]string{"profile"}, "name a profile"},
		{[]string{"profile", "nt4"}, `unknown profile "nt4" (known: linux, gvisor,`},
		{[]string{"profiles", "extra"}, `unexpected argument "extra"`},
	} {
		code, out, errOut := kasim(tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line containing %q", tc.args, code, errOut, tc.want)
		}
	}
	code, out, _ = kasim("profiles")
	if code != 0 || !strings.Contains(out, "win10-1709") || !strings.Contains(out, "gvisor") {
		t.Errorf("profiles: exit %d\n%s", code, out)
	}
	code, out, _ = kasim("profile", "xp", "--registry", "TcpMaxDataRetransmissions=3", "--registry", "PPTPTcpMaxDataRetransmissions=7")
	if code != 0 || !strings.Contains(out, "probe count                    7") || !strings.Contains(out, "(set; valid 0-255)") {
		t.Errorf("profile xp: exit %d\n%s", code, out)
	}
	if code, out, _ := kasim("profile", "gvisor"); code != 0 || !strings.Contains(out, "gVisor netstack") {
		t.Errorf("profile gvisor: exit %d\n%s", code, out)
	}
}

func TestBench(t *testing.T) {
	// A trace that parses but removes a timer never scheduled: replaying
	// it unchecked would break the queues' preconditions.
	handMade := filepath.Join(t.TempDir(), "bad.trace")
	if err := os.WriteFile(handMade, []byte("kasim timer trace 1\n\x02\x05\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"bench", "--queues", "nosuch"},
		{"bench", "--n", "0"},
		{"bench", "--n", "2e7"},
		{"bench", "--n", "1.5"},
		{"bench", "--micro", "nosuch"},
		{"bench", "--workloads", "nosuch"},
		{"bench", "--format", "xml"},
		{"bench", "--ops", "0"},
		{"bench", "--count", "0"},
		{"bench", "--count", "101"},
		{"bench", "--replay", "/nonexistent/trace"},
		{"bench", "--replay", handMade},
	} {
		code, out, errOut := kasim(args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "kasim bench: ") {
			t.Errorf("kasim %s: exit %d, stdout %q, stderr %q; want one line, exit 2", strings.Join(args, " "), code, out, errOut)
		}
	}
	dir := t.TempDir()
	trace := filepath.Join(dir, "run.trace")
	code, _, errOut := kasim("run", "--conns", "20", "--timers", "wheel", "--record-timers", trace, "--format", "jsonl")
	if code != 0 || !strings.Contains(errOut, "fire hash") {
		t.Fatalf("kasim run --record-timers: exit %d, %s", code, errOut)
	}
	live := errOut[strings.Index(errOut, "fire hash ")+len("fire hash "):]
	live = strings.TrimSpace(live)
	svg := filepath.Join(dir, "plot.svg")
	code, out, errOut := kasim("bench", "--queues", "wheel,heap4,runtime", "--micro", "reset-later", "--workloads", "stack",
		"--n", "1e3", "--ops", "5000", "--format", "csv", "--replay", trace, "--svg", svg)
	if code != 0 {
		t.Fatalf("kasim bench: exit %d: %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// reset-later on three queues, stack on two, replay on two, and a header.
	if len(rows) != 1+3+2+2 {
		t.Fatalf("%d CSV rows:\n%s", len(rows), out)
	}
	replays := 0
	for _, row := range rows[1:] {
		if row[1] == "replay" {
			replays++
			if !strings.Contains(out, live) {
				t.Errorf("replay row %v: the live run's hash %s is not in the output", row, live)
			}
		}
	}
	if replays != 2 {
		t.Errorf("%d replay rows, want 2", replays)
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("--svg: %v, %d bytes", err, len(b))
	}
	if !strings.Contains(errOut, "[1/7]") {
		t.Errorf("no progress lines on a non-terminal: %q", errOut)
	}
}

// --count measures each result several times, the queues taking turns in
// a rotated order, and reports the median with its range.
func TestBenchCountReportsTheMedian(t *testing.T) {
	code, out, errOut := kasim("bench", "--queues", "wheel,heap4", "--micro", "reset-later", "--workloads", "stack",
		"--n", "100", "--ops", "2000", "--count", "3", "--format", "json")
	if code != 0 {
		t.Fatalf("kasim bench --count 3: exit %d: %s", code, errOut)
	}
	var doc struct{ Results []bench.Result }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Results) != 4 {
		t.Fatalf("%d results, want reset-later and stack on two queues:\n%s", len(doc.Results), out)
	}
	for _, r := range doc.Results {
		if r.Runs != 3 || r.NsPerOpMin > r.NsPerOp || r.NsPerOp > r.NsPerOpMax {
			t.Errorf("%s/%s: %d runs, %v <= %v <= %v; want 3 runs around the median", r.Workload, r.Queue, r.Runs, r.NsPerOpMin, r.NsPerOp, r.NsPerOpMax)
		}
		if len(r.NsPerOpRuns) != 3 || !slices.Contains(r.NsPerOpRuns, r.NsPerOp) || !slices.Contains(r.NsPerOpRuns, r.NsPerOpMin) || !slices.Contains(r.NsPerOpRuns, r.NsPerOpMax) {
			t.Errorf("%s/%s: runs %v, want the three the median and range come from", r.Workload, r.Queue, r.NsPerOpRuns)
		}
	}
	// The wheel's rows carry a p-value against heap4's runs; heap4's none.
	var ps struct {
		Results []struct {
			Queue string   `json:"queue"`
			P     *float64 `json:"p_vs_heap4"`
		}
	}
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatal(err)
	}
	for _, r := range ps.Results {
		if (r.Queue == "wheel") != (r.P != nil) || (r.P != nil && (*r.P < 0.1 || *r.P > 1)) {
			t.Errorf("%s: p_vs_heap4 = %v, want one in [0.1, 1] (three runs each) for the wheel only", r.Queue, r.P)
		}
	}
	// Round 1 starts with wheel, round 2 with heap4.
	first := "reset-later n=100 wheel (run 1 of 3)\n"
	second := "reset-later n=100 heap4 (run 2 of 3)\n"
	if i, j := strings.Index(errOut, "[1/12] "+first), strings.Index(errOut, "[3/12] "+second); i < 0 || j < 0 {
		t.Errorf("progress does not show the rotated turns:\n%s", errOut)
	}
}

// freebsd and lwip are listed, described as modelled from source (lwip
// also as measured), and run; their bad settings are usage errors.
func TestFreeBSDAndLwIPProfiles(t *testing.T) {
	code, out, _ := kasim("profiles")
	if code != 0 || !strings.Contains(out, "freebsd") || !strings.Contains(out, "lwip") || !strings.Contains(out, "modelled from source, not measured") {
		t.Errorf("profiles: exit %d\n%s", code, out)
	}
	for name, want := range map[string]string{"freebsd": "modelled from source, not measured", "lwip": "measured against lwIP 2.1.3"} {
		if code, out, _ := kasim("profile", name); code != 0 || !strings.Contains(out, want) {
			t.Errorf("profile %s: exit %d, want %q\n%s", name, code, want, out)
		}
	}
	for name, want := range map[string]string{"freebsd": "ETIMEDOUT", "lwip": "ECONNABORTED"} {
		code, out, errOut := kasim("run", "--profile", name, "--idle", "2s", "--interval", "1s", "--count", "3")
		if code != 0 || !strings.Contains(out, "failed at") || !strings.Contains(out, want) {
			t.Errorf("run --profile %s: exit %d, want %s\n%s%s", name, code, want, out, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--profile", "freebsd", "--set", "hz=250"}, `--set: unknown setting "hz" (want always-keepalive or abort)`},
		{[]string{"run", "--profile", "lwip", "--set", "tick=fast"}, "tick=fast: want 0 (exact timers) or a duration"},
	} {
		if code, _, errOut := kasim(tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// A long run shows progress only on a terminal: with stderr a pipe or a
// file (here a buffer) it gets nothing, and the streamed trace is whole.
func TestLongRunIsQuietOffATerminal(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"run", "--duration", "6h", "--peer", "alive", "--idle", "1s", "--format", "jsonl"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet it got %q", errOut.String())
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n < 10000 {
		t.Errorf("the trace of a 6h run with a probe a second has %d lines, want over 10,000", n)
	}
}

// Messages name what is wrong in a line a person can read: every bad
// registry value on its own line, a negative number called that, and a
// value of any size echoed as its start and its length.
func TestMessagesAreWholeAndShort(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		lines []string // each line must contain its entry, in order
	}{
		{[]string{"run", "--seed", "-1"}, []string{`kasim run: --seed "-1": a negative number: want 0 or more`}},
		{[]string{"compare", "--profiles", "xp", "../../testdata/examples/dead-peer.yaml"}, []string{"--profiles: name two or more profiles"}},
		{[]string{"run", "--profile", "xp", "--registry", "KeepAliveTime=0", "--registry", "TcpMaxDataRetransmissions=x", "--registry", "Bogus=1"}, []string{
			"kasim run: --registry: KeepAliveTime=0: out of range",
			"kasim run: --registry: TcpMaxDataRetransmissions=x: want a number",
			`kasim run: --registry: unknown registry value "Bogus"`}},
		{[]string{"run", "--profile", "linux", "--set", "hz=7", "--set", "abort=maybe"}, []string{
			"kasim run: --set: hz=7: want 0 (exact timers)",
			"kasim run: --set: abort=maybe: want rst or none"}},
		{[]string{"run", "--profile", strings.Repeat("x", 100000)}, []string{"... (100000 bytes): unknown profile"}},
		{[]string{"run", "--profile", "linux", "--set", "hz=" + strings.Repeat("9", 5000)}, []string{"... (5000 bytes): too long for any setting"}},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		lines := strings.Split(strings.TrimRight(errOut.String(), "\n"), "\n")
		if code != exitUsage || len(lines) != len(tc.lines) {
			t.Errorf("%.80q: exit %d, %d line(s) %q; want 2 and %d", tc.args, code, len(lines), errOut.String(), len(tc.lines))
			continue
		}
		for i, want := range tc.lines {
			if !strings.Contains(lines[i], want) || len(lines[i]) > 600 {
				t.Errorf("%.80q: line %d %q; want it to contain %q, in at most 600 bytes", tc.args, i+1, lines[i], want)
			}
		}
	}
}

// A golden file that lacks only its final newline is named, with the line.
func TestTraceDiffNamesAMissingFinalNewline(t *testing.T) {
	got := traceDiff("g.jsonl", []byte("a\nb"), []byte("a\nb\n"))
	if !strings.Contains(got, "g.jsonl:2: the golden file's last line has no newline") {
		t.Errorf("traceDiff = %q", got)
	}
}

// --format summary describes a run in numbers: the simulation's block is
// the same run to run, and the process's own measures follow it.
func TestRunSummary(t *testing.T) {
	args := []string{"run", "--conns", "200", "--idle", "10s", "--interval", "1s", "--count", "3", "--format", "summary"}
	code, out, errOut := kasim(args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, again, _ := kasim(args...)
	simulated := func(s string) string { return s[:strings.Index(s, "  wall time")] }
	if simulated(out) != simulated(again) {
		t.Errorf("the simulation's summary differs run to run:\n%s\n%s", out, again)
	}
	for _, want := range []string{"200 client connection(s)", "200 gave up by keep-alive, 0 failed otherwise, 0 open at the end",
		"detection time    min ", "events/s)", "peak memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "->") || strings.Contains(out, "{") {
		t.Errorf("summary has events in it:\n%s", out)
	}
	// It counts the segment events it does not make: as many events as
	// the trace of the same run has lines.
	_, trace, _ := kasim(append(args[:len(args)-1], "jsonl")...)
	if want := fmt.Sprintf("  events            %d\n", strings.Count(trace, "\n")); !strings.Contains(out, want) {
		t.Errorf("summary's events: want %q, as the trace has lines:\n%s", want, out)
	}
}
