//go:build linux

package conform

import (
	"io/fs"
	"os"
	"strings"
	"testing"

	"kasim/internal/live"
)

// TestMain lets the test binary serve as the live lab's peer helper.
func TestMain(m *testing.M) {
	live.MaybeRunPeer()
	os.Exit(m.Run())
}

func needLive(t *testing.T) {
	t.Helper()
	if os.Getenv("KASIM_LIVE") == "0" {
		t.Skip("KASIM_LIVE=0: skipping the comparison with the machine's kernel")
	}
	if testing.Short() {
		t.Skip("-short: the live comparison takes real time")
	}
}

// TestLinuxProfileMatchesTheKernel is the fidelity test: every built-in
// scenario, run live against this machine's kernel and simulated with the
// linux profile, agrees in the shape of the kernel's probes, reset and
// error, and in their timing within the kernel's spread. It fails (never
// skips in silence) where namespaces cannot be made.
func TestLinuxProfileMatchesTheKernel(t *testing.T) {
	needLive(t)
	entries, err := fs.ReadDir(Scenarios, "scenarios")
	if err != nil || len(entries) < 7 {
		t.Fatalf("built-in scenarios: %d, %v", len(entries), err)
	}
	for _, e := range entries {
		t.Run(strings.TrimSuffix(e.Name(), ".yaml"), func(t *testing.T) {
			data, _ := fs.ReadFile(Scenarios, "scenarios/"+e.Name())
			rep, err := Compare(e.Name(), data, Options{Profile: "linux", Runs: 2})
			if err != nil {
				t.Fatalf("%v\n(this test runs the kernel in network namespaces: it needs root; KASIM_LIVE=0 skips it)", err)
			}
			for _, row := range rep.Rows {
				t.Logf("%-20s after %-12s kernel %-22s %v (spread %v)  linux %-22s %v  %s",
					row.What, row.From, row.Live, row.LiveAt, row.Spread, row.Sim, row.SimAt, row.Explanation)
			}
			if !rep.Agree() {
				t.Errorf("the linux profile and the kernel differ on %s", rep.Scenario)
			}
			var probes int
			for _, row := range rep.Rows {
				if strings.HasPrefix(row.What, "keepalive-probe") {
					probes++
				}
			}
			if probes == 0 {
				t.Errorf("%s: no probe compared: the scenario tests nothing", rep.Scenario)
			}
		})
	}
}

// TestVistaProfileDiffersFromTheKernel: held against Linux, a Windows
// profile must not pass, and must fail for the reasons a user expects: one
// byte in each probe where Linux sends none, ten probes where the scenario
// asked for three (Vista cannot set the count), WSAENETRESET where Linux
// says ETIMEDOUT, and SO_KEEPALIVE refused while a connect is in progress.
func TestVistaProfileDiffersFromTheKernel(t *testing.T) {
	needLive(t)
	rows := map[string]Row{}
	for _, name := range []string{"1-peer-dead.yaml", "5-set-during-connect.yaml"} {
		data, _ := fs.ReadFile(Scenarios, "scenarios/"+name)
		rep, err := Compare(name, data, Options{Profile: "vista", Runs: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Agree() {
			t.Errorf("%s: vista agrees with the Linux kernel", name)
		}
		for _, row := range rep.Rows {
			t.Logf("%s %s: kernel %q vista %q: %s", name, row.What, row.Live, row.Sim, row.Explanation)
			rows[name+" "+row.What] = row
		}
	}
	for _, c := range []struct{ row, live, vista, why string }{
		{"1-peer-dead.yaml keepalive-probe #1", "A seq=0 ack=1 len=0", "A seq=0 ack=1 len=1", "different shape"},
		{"1-peer-dead.yaml keepalive-probe #10", "", "A seq=0 ack=1 len=1", "the profile does this; the kernel does not"},
		{"1-peer-dead.yaml recv error", "ETIMEDOUT", "WSAENETRESET", "different shape"},
		{"5-set-during-connect.yaml option error #1", "", "setsockopt SO_KEEPALIVE: WSAEINVAL", "the profile does this; the kernel does not"},
	} {
		r, ok := rows[c.row]
		if !ok || r.Agree || r.Live != c.live || r.Sim != c.vista || r.Explanation != c.why {
			t.Errorf("%s: got kernel %q, vista %q, %q (agree %v); want %q, %q, %q", c.row, r.Live, r.Sim, r.Explanation, r.Agree, c.live, c.vista, c.why)
		}
	}
	if _, ok := rows["1-peer-dead.yaml keepalive-probe #11"]; ok {
		t.Error("vista sent an 11th probe")
	}
}
