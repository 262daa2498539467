package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const example = "../../testdata/examples/win7-server-nat.yaml"

func TestRunScenarioFile(t *testing.T) {
	code, out, errOut := kasim("run", example)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"scenario win7-server-nat",
		"WSAIoctl(SIO_KEEPALIVE_VALS, {onoff=1, keepalivetime=30000, keepaliveinterval=5000}) = 0",
		"a middlebox (NAT, firewall) between client and server forgets TCP flows idle longer than 5m0s",
		"keep-alive gives up: 10 probes unanswered",
		"WSAENETRESET",
		"kasim check",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	svg := filepath.Join(t.TempDir(), "x.svg")
	code, jsonl, errOut := kasim("run", example, "--format", "jsonl", "--pcap", filepath.Join(t.TempDir(), "x.pcap"), "--svg", svg)
	if code != 0 {
		t.Fatalf("jsonl: exit %d: %s", code, errOut)
	}
	if data, err := os.ReadFile(svg); err != nil || !strings.Contains(string(data), "WSAENETRESET") {
		t.Errorf("--svg wrote no diagram of the scenario (%v)", err)
	}
	if _, again, _ := kasim("run", example, "--format", "jsonl"); again != jsonl {
		t.Error("two runs of the scenario gave different traces")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", example, "--idle", "1m"}, "unknown flag -idle"},
		{[]string{"run", "no-such.yaml"}, "no such file"},
		{[]string{"run", example, "extra"}, `unexpected argument "extra"`},
	} {
		if code, _, errOut := kasim(tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("kasim %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	if code, out, errOut := kasim("check", example); code != 0 || !strings.Contains(out, "ok    "+example) {
		t.Fatalf("check of the example: exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A deliberately wrong expectation fails, naming the event and both values.
	wrong := strings.Replace(string(data), "at: 32.02s", "at: 30s", 1)
	if wrong == string(data) {
		t.Fatal("the example no longer has the expectation this test edits")
	}
	if err := os.WriteFile(filepath.Join(dir, "wrong.yaml"), []byte(wrong), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "right.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := kasim("check", dir)
	if code != 1 {
		t.Errorf("check of a directory with a wrong expectation: exit %d, want 1", code)
	}
	for _, want := range []string{
		"ok    " + filepath.Join(dir, "right.yaml"),
		"FAIL  " + filepath.Join(dir, "wrong.yaml"),
		"wrong.yaml:34:6: keepalive-probe segment #1 sent by server (c1's server end, sock3)",
		`"30s"`, `"32.02s"`,
		"1 of 2 scenario(s) failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// A golden trace beside the scenario must match byte for byte.
	_, jsonl, _ := kasim("run", example, "--format", "jsonl")
	if err := os.WriteFile(filepath.Join(dir, "right.jsonl"), []byte(jsonl), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := kasim("check", filepath.Join(dir, "right.yaml")); code != 0 {
		t.Errorf("check against its own golden trace: exit %d\n%s", code, out)
	}
	tampered := strings.Replace(jsonl, `"len":1,`, `"len":0,`, 1)
	if err := os.WriteFile(filepath.Join(dir, "right.jsonl"), []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := kasim("check", filepath.Join(dir, "right.yaml")); code != 1 || !strings.Contains(out, "the trace differs from the golden file") {
		t.Errorf("check against a tampered golden trace: exit %d\n%s", code, out)
	}
	// Bad input: exit 2, file:line:col, nothing run.
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("duration: soon\nhosts: {a: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := kasim("check", dir)
	if code != 2 || !strings.Contains(errOut, filepath.Join(dir, "bad.yaml")+`:1:11: duration: "soon" is not a duration`) || out != "" {
		t.Errorf("check with a bad file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, args := range [][]string{{"check"}, {"check", filepath.Join(dir, "missing")}, {"check", t.TempDir()}} {
		if code, _, _ := kasim(args...); code != 2 {
			t.Errorf("kasim %v: exit %d, want 2", args, code)
		}
	}
}

func TestCompare(t *testing.T) {
	const file = "../../testdata/examples/dead-peer.yaml"
	code, out, errOut := kasim("compare", "--profiles", "vista,xp,gvisor", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[strings.Join(f[:min(2, len(f))], " ")] = strings.Join(strings.Fields(l), " ")
		}
	}
	for key, want := range map[string]string{
		"keep-alive probes": "keep-alive probes 10 5 9",
		"probe 2":           "probe 2 02:00:02.020 02:00:02.020 02:01:16.020",
		"gives up":          "gives up 02:00:11.020 02:00:06.020 02:11:16.020",
		"RST at":            "RST at give-up yes yes no",
		"application sees":  "application sees 02:00:11.020 recv() WSAENETRESET 02:00:06.020 recv() WSAENETRESET 02:11:16.020 recv() ETIMEDOUT",
	} {
		if lines[key] != want {
			t.Errorf("row %q = %q, want %q\n%s", key, lines[key], want, out)
		}
	}
	// A call the other profile's API lacks is reported, not run.
	code, out, _ = kasim("compare", "--profiles", "win7,gvisor", "--host", "server", example)
	if code != 0 || !strings.Contains(out, "gvisor: cannot run: "+example+":26:13: action: ioctl: WSAIoctl is Winsock") {
		t.Errorf("compare with a Winsock-only call: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"compare", file},
		{"compare", "--profiles", "vista"},
		{"compare", "--profiles", "vista,win95", file},
		{"compare", "--profiles", "vista", "--host", "nobody", file},
	} {
		if code, _, errOut := kasim(args...); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("kasim %v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
}

// kasim run FILE.yaml records its timers as the built-in run does: the
// trace replays on kasim bench with the live run's hash, and a queue that
// cannot be recorded is a usage error.
func TestScenarioRunRecordsItsTimers(t *testing.T) {
	const file = "../../testdata/examples/builtin.yaml"
	trace := filepath.Join(t.TempDir(), "run.trace")
	code, _, errOut := kasim("run", file, "--timers", "wheel", "--record-timers", trace, "--format", "jsonl")
	if code != 0 || !strings.Contains(errOut, "fire hash ") {
		t.Fatalf("kasim run FILE --record-timers: exit %d, %s", code, errOut)
	}
	live := strings.TrimSpace(errOut[strings.Index(errOut, "fire hash ")+len("fire hash "):])
	code, out, errOut := kasim("bench", "--queues", "heap4,wheel", "--micro", "none", "--workloads", "none", "--format", "csv", "--replay", trace)
	if code != 0 || strings.Count(out, live[:12]) != 2 {
		t.Fatalf("kasim bench --replay: exit %d, want both queues' rows with the live hash %s:\n%s%s", code, live, out, errOut)
	}
	code, _, errOut = kasim("run", file, "--timers", "linux", "--record-timers", trace)
	if code != 2 || !strings.Contains(errOut, "--record-timers: recording timers needs one exact queue") {
		t.Errorf("--timers linux --record-timers: exit %d, %s; want a usage error", code, errOut)
	}
}
