package main

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzFlags: no arguments make kasim panic; a usage error exits 2 with a
// message, and every line it prints to stderr is short, whatever the
// arguments' size. The built-in run's flags are read and checked, not run
// (readRunFlags), so each input takes microseconds; the profile commands
// run whole.
func FuzzFlags(f *testing.F) {
	for _, seed := range []string{
		"run\x00--idle\x0010m\x00--interval\x0030s\x00--count\x004",
		"run\x00--profile\x00xp\x00--registry\x00TcpMaxDataRetransmissions=3\x00--registry\x00Bogus=1",
		"run\x00--profile\x00linux\x00--set\x00hz=1000\x00--idle\x001500ms",
		"run\x00--seed\x00-1\x00--conns\x0040001\x00--loss\x001",
		"run\x00--timers\x00wheel\x00--record-timers\x00x\x00--format\x00jsonl",
		"profile\x00win7\x00--set\x00abort=none",
		"profile\x00lwip\x00--set\x00tick=0",
		"run\x00--profile\x00win11\x00--set\x00initial-rto=1s\x00--set\x00max-syn-retransmissions=4",
		"run\x00--profile\x00xp\x00--registry\x00TcpInitialRtt=299\x00--set\x00initial-rto=1s",
		"profiles",
		"nosuchcmd",
		"run\x00--peer\x00maybe\x00extra",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		args := strings.Split(string(data), "\x00")
		if len(args) > 64 {
			return
		}
		var out, errOut bytes.Buffer
		var code int
		switch cmd := args[0]; {
		case cmd == "run" && (len(args) == 1 || isFlag(args[1])):
			_, _, code, _ = readRunFlags(args[1:], &out, &errOut)
		case cmd == "profile" || cmd == "profiles" || cmd == "version":
			code = run(args, &out, &errOut)
		case !isFlag(cmd) && lookupCommand(cmd) == nil:
			code = run(args, &out, &errOut) // an unknown command
		default:
			return // the commands that run scenarios or benchmarks
		}
		if code != exitOK && code != exitUsage {
			t.Fatalf("%q: exit %d, want 0 or 2", args, code)
		}
		if code == exitUsage && errOut.Len() == 0 {
			t.Fatalf("%q: exit 2 without a message", args)
		}
		for _, line := range strings.Split(errOut.String(), "\n") {
			if len(line) > 1200 {
				t.Fatalf("%q: a message line of %d bytes: %.200s...", args, len(line), line)
			}
		}
	})
}
