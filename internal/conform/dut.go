package conform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"kasim/drivers/lwip"
	"kasim/internal/dut"
	_ "kasim/internal/dut/gvisor" // built in: --dut gvisor
	"kasim/internal/live"
	"kasim/sim"
)

// DUT is a stack under test and how to reach it: a driver program that
// speaks kasim's DUT protocol (docs/dut-protocol.md).
type DUT struct {
	// Name is what --dut said: linux, gvisor, lwip, or the program.
	Name string
	// Argv is the driver; nil for the machine's kernel, which kasim's own
	// helper drives over a veth pair instead of a TAP device.
	Argv []string
	Env  []string
	// Hello is what the driver said of itself, once Greet has run: the
	// options it has decide which scenarios it can play.
	Hello *live.Hello
}

// Greet starts the driver once, in a lab of its own, and keeps its hello:
// a broken driver is reported before any scenario runs, and a scenario it
// cannot express is skipped before its simulation is even bound.
func (d *DUT) Greet() error {
	lab, err := live.NewLab(live.Options{DUT: d.Argv, DUTEnv: d.Env})
	if err != nil {
		return err
	}
	h := lab.Peer().Hello()
	d.Hello = &h
	return lab.Close()
}

// The drivers kasim ships, by the name --dut takes.
const (
	DUTLinux  = "linux"
	DUTGVisor = "gvisor"
	DUTLwIP   = "lwip"
)

// DUTNamed resolves --dut: a shipped driver's name, or a program and its
// arguments (split at spaces). lwip is compiled on first use (against
// liblwip-dev) into cacheDir.
func DUTNamed(spec, cacheDir string) (*DUT, error) {
	switch spec {
	case DUTLinux:
		return &DUT{Name: spec}, nil
	case DUTGVisor:
		if _, ok := dut.Builtin(spec); !ok {
			return nil, fmt.Errorf("the gvisor driver is not built into this program")
		}
		return &DUT{Name: spec, Argv: []string{"/proc/self/exe"}, Env: []string{dut.EnvBuiltin + "=" + spec}}, nil
	case DUTLwIP:
		path, err := lwip.Build(cacheDir)
		if err != nil {
			return nil, err
		}
		return &DUT{Name: spec, Argv: []string{path}}, nil
	}
	argv := strings.Fields(spec)
	if len(argv) == 0 {
		return nil, errors.New("no driver given")
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, err
	}
	return &DUT{Name: filepath.Base(argv[0]), Argv: argv}, nil
}

// DriverCache is where kasim keeps the drivers it compiles: the user's
// cache directory (~/.cache/kasim), or the temporary directory.
func DriverCache() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kasim")
	}
	return filepath.Join(os.TempDir(), "kasim-cache")
}

// cannotExpress is why a scenario cannot run on a driver: it needs an
// option the driver's hello does not list.
type cannotExpress struct{ why string }

func (c *cannotExpress) Error() string { return c.why }

// checkDriver refuses a scenario that needs options the peer does not
// have, naming the first such action.
func checkDriver(s *sim.Scenario, h live.Hello) error {
	for _, a := range s.Actions {
		if (a.Do == sim.DoSetsockopt || a.Do == sim.DoGetsockopt) && a.End == "client" && !h.HasOption(a.OptName) {
			return &cannotExpress{fmt.Sprintf("%s:%d:%d: %s %s: the driver (%s) has no such option; it has %s",
				s.File, a.Pos.Line, a.Pos.Col, a.Do, a.OptName, strings.TrimSpace(h.Stack+" "+h.Version), strings.Join(h.Options, ", "))}
		}
	}
	return nil
}

// LiveTrace is the first live run's trace, in kasim's trace format,
// headed by a note naming the scenario and the stack it ran on.
func (r *Report) LiveTrace() []sim.Event {
	stack := r.DUT
	if stack == "" {
		stack = "this machine's kernel"
	}
	subject := r.Subject
	if subject == "" {
		subject = KernelHost
	}
	rec := sim.NewRecorder()
	rec.Note(0, subject, fmt.Sprintf("live run of %s on %s", r.Scenario, stack))
	return append(rec.Events(), r.Live...)
}
