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
// profile must not pass. (The scenario's TCP_KEEPIDLE and TCP_KEEPINTVL
// fail on Vista with WSAENOPROTOOPT, so Vista keeps its 2 h default and
// sends no probe in the run: every kernel event is reported as one the
// profile lacks.)
func TestVistaProfileDiffersFromTheKernel(t *testing.T) {
	needLive(t)
	data, _ := fs.ReadFile(Scenarios, "scenarios/1-peer-dead.yaml")
	rep, err := Compare("1-peer-dead.yaml", data, Options{Profile: "vista", Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Agree() {
		t.Fatal("vista agrees with the Linux kernel")
	}
	missing := 0
	for _, row := range rep.Rows {
		t.Logf("%s: kernel %q vista %q: %s", row.What, row.Live, row.Sim, row.Explanation)
		if !row.Agree && row.Sim == "" && row.Live != "" {
			missing++
		}
	}
	if missing < 3 {
		t.Errorf("%d kernel events reported as missing from vista, want the probes, the reset and the error", missing)
	}
}
