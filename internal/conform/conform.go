// Package conform runs a scenario against a real TCP stack (the machine's
// own kernel, in namespaces internal/live makes) and in simulation, and
// says where the two agree: kasim conform.
//
// A conform scenario is an ordinary scenario file with two hosts and one
// connection between them: its client is the stack under test (the
// built-in scenarios call it "kernel"), its server the tester ("tester"),
// gVisor driven by kasim on the other end of a veth pair or TAP device.
// Live, the subject's socket calls go to the helper (or driver) in its
// namespace, and silencing the tester drops its traffic at its link. In
// simulation the subject runs the chosen profile, the tester gvisor.
package conform

import (
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kasim/internal/live"
	"kasim/profile"
	"kasim/sim"
)

// Scenarios holds the built-in conform scenarios, scenarios/*.yaml.
//
//go:embed scenarios/*.yaml
var Scenarios embed.FS

// Host names the built-in conform scenarios use: the stack under test and
// the tester. A scenario may name them as it likes (Roles).
const (
	KernelHost = "kernel"
	TesterHost = "tester"
)

// Options configure a comparison.
type Options struct {
	// Profile is the profile the simulated kernel host runs (linux,
	// gvisor, or a Windows profile).
	Profile string
	// Runs is how many times each scenario runs live, to measure the
	// kernel's own spread (default 3).
	Runs int
	// Tolerance is the least difference in time that counts as a
	// disagreement, on top of the measured spread (default 5ms).
	Tolerance time.Duration
	// Phase is the allowance for a timeout counted from a receive: the
	// kernel counts from the receive's jiffy (up to one jiffy, 4ms at
	// HZ=250, before it) and its timer wheel then fires anywhere within
	// one granule of the level the timeout lands in (8 jiffies, 32ms, for
	// timeouts of 63 to 503 jiffies), so the kernel's delay spans 36ms;
	// the simulation's phase is fixed. Default 36ms.
	Phase time.Duration
	// AppTolerance is the least difference that counts for an error the
	// application saw (default 20ms): segments are timed by the kernel,
	// but an application's error only when the helper, or the user's
	// program, got to run after the kernel woke it.
	AppTolerance time.Duration
	// PCAP, if set, receives the first live run's capture.
	PCAP io.Writer
	// Stack, if set, is a program (argv) that takes the kernel host's
	// place: kasim starts it in the peer namespace at the scenario's
	// connect, and it connects and sets its options itself, as told by
	// its environment: KASIM_CONNECT=addr:port, and KASIM_<OPTION>=value
	// for each option the scenario sets before the connect. The actions
	// after the connect count from its SYN, however long it took to
	// start. The kernel of this machine still carries its segments, so
	// this holds a user-space stack (or an application's own keep-alive)
	// against the profile.
	Stack []string
	// DUT, if set, is the stack under test, reached through its driver
	// (docs/dut-protocol.md); nil is the machine's kernel through kasim's
	// own helper, as DUT "linux" is too.
	DUT *DUT
	// MaxDuration, if set, skips a scenario that would play longer than
	// this in real time (after scaling): the gvisor vectors run for up to
	// hours each.
	MaxDuration time.Duration
	// ScaleNum/ScaleDen, if set, scale every time the scenario states
	// (sim.Scenario.Scaled) before it runs, live and simulated: a
	// scenario written with a 2 h idle time runs with 2 s at 1/3600.
	ScaleNum, ScaleDen int64
}

// Row is one compared event: the n-th of its kind sent or seen at the
// kernel host.
type Row struct {
	What      string // "keepalive-probe #1", "rst", "recv error"
	Sim, Live string // the event's shape on each side ("A seq=0 ack=1 len=0", "ETIMEDOUT"); "" if missing
	// From is what the times count from: "last receive" or "last probe"
	// (see story).
	From string
	// Untimed rows compare shape only: a failed option call.
	Untimed bool
	SimAt   time.Duration
	LiveAt  time.Duration // the median over the live runs
	Spread  time.Duration // max - min over the live runs
	Agree   bool
	// OffInTime marks a row that has the same shape on both sides and
	// differs only in time, by more than allowed but within what a busy
	// machine can cause, by firing a kernel timer late (loadSlack more).
	OffInTime   bool
	Explanation string
}

// Report is one scenario's comparison.
type Report struct {
	Scenario string
	Profile  string
	Runs     int
	Rows     []Row
	// Live is the first live run's trace; Sim the simulated one.
	Live, Sim []sim.Event
	// Scale is the scale its times were played at ("1/3600"), or "".
	Scale string
	// Stack is the program that took the kernel host's place
	// (Options.Stack), or "".
	Stack string
	// DUT names the stack under test as its driver's hello did ("lwIP
	// 2.1.3"), or "" for the kernel through kasim's helper.
	DUT string
	// Skipped, if set, says why the scenario was not run: it needs
	// something the driver cannot do (an option its hello does not list).
	Skipped string
	// SimExtended is how much longer than the scenario's duration the
	// simulation ran (SimGrace, because the kernel had given up), or 0.
	SimExtended time.Duration
	// Subject and Tester are the scenario's names for the stack under
	// test and the tester (Roles): both traces record events under them.
	Subject, Tester string
}

// Agree reports whether every row agrees.
func (r *Report) Agree() bool {
	for _, row := range r.Rows {
		if !row.Agree {
			return false
		}
	}
	return len(r.Rows) > 0
}

// AgreeInShape reports whether every row agrees or differs only in time
// (Row.OffInTime): every event the profile has, the kernel has, alike.
func (r *Report) AgreeInShape() bool {
	for _, row := range r.Rows {
		if !row.Agree && !row.OffInTime {
			return false
		}
	}
	return len(r.Rows) > 0
}

// Compare runs the scenario file data (named file) live Runs times and in
// simulation under opts.Profile, and compares the kernel's keep-alive
// probes, reset and application error, time and shape.
func Compare(file string, data []byte, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	lab, err := forLab(file, data, opts)
	if err != nil {
		return nil, err
	}
	rep := lab.report(file, opts)
	if d := lab.live.Duration; opts.MaxDuration > 0 && d > opts.MaxDuration {
		rep.Skipped, rep.Runs = fmt.Sprintf("it plays for %v in real time (%d run(s)), longer than --max-duration %v (--scale, or a larger --max-duration, runs it)", d, opts.Runs, opts.MaxDuration), 0
		return rep, nil
	}
	if opts.DUT != nil && opts.DUT.Argv != nil && len(lab.sysctls) > 0 {
		rep.Skipped, rep.Runs = fmt.Sprintf("it sets the Linux kernel's net.ipv4.%s; the stack under test is a driver's, not the kernel", lab.sysctls[0].name), 0
		return rep, nil
	}
	if opts.DUT != nil && opts.DUT.Hello != nil {
		if err := checkDriver(lab.live, *opts.DUT.Hello); err != nil {
			rep.Skipped, rep.Runs = err.Error(), 0
			return rep, nil
		}
	}
	simSpec, unsayable, err := lab.simulated(opts)
	if unsayable != nil {
		// The scenario is good (it parsed for the kernel) but asks for
		// something the profile's API has no way to say, such as
		// TCP_USER_TIMEOUT on Windows: that is a difference, not a
		// usage error.
		rep.Runs = 0
		for _, p := range unsayable.Problems {
			rep.Rows = append(rep.Rows, Row{What: "socket calls", Untimed: true,
				Explanation: fmt.Sprintf("%s cannot make them: %s:%d:%d: %s", opts.Profile, file, p.Pos.Line, p.Pos.Col, p.Msg)})
		}
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	var subject *profile.Profile
	for _, h := range simSpec.Hosts {
		if h.Name == lab.subject {
			subject = h.Resolved
		}
	}
	if subject.Tick > opts.Phase {
		// A stack on a coarse tick (lwIP's 500 ms tcp_slowtmr) meets a
		// timeout counted from a receive at its next tick, whose phase is
		// the stack's, not the profile's.
		opts.Phase = subject.Tick
	}
	lives, hello, err := lab.measure(file, opts, rep)
	if err != nil {
		return nil, err
	}
	if rep.Skipped != "" {
		return rep, nil
	}
	rep.Live = lives[0]
	liveEnd := simSpec.Duration
	if kernelGaveUp(lives, lab.subject, lab.tester) {
		// The kernel's story is over; the profile's may not be (Vista
		// probes 10 times where Linux was told 3). Let it finish, so the
		// comparison shows how and when it ends.
		simSpec.Duration += SimGrace
		rep.SimExtended = SimGrace
	}
	simRun, err := sim.RunScenario(simSpec)
	if err != nil {
		return nil, err
	}
	rep.Sim = simRun.Events
	who := "the kernel"
	if rep.DUT != "" {
		who = hello.Stack
	}
	simStory := story(simRun.Events, lab.subject, lab.tester, simSpec.Latency)
	rep.Rows = compare(simStory, lives, lab.subject, lab.tester, opts.Tolerance, opts.Phase, opts.AppTolerance, subject.Granularity, who, liveEnd)
	return rep, nil
}

// withDefaults fills in the options left zero.
func (o Options) withDefaults() Options {
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 5 * time.Millisecond
	}
	if o.Phase <= 0 {
		o.Phase = 36 * time.Millisecond
	}
	if o.AppTolerance <= 0 {
		o.AppTolerance = 20 * time.Millisecond
	}
	if o.Profile == "" {
		o.Profile = "linux"
	}
	return o
}

// report starts the scenario's report.
func (l *labScenario) report(file string, opts Options) *Report {
	rep := &Report{Scenario: l.live.Name, Profile: opts.Profile, Runs: opts.Runs, Subject: l.subject, Tester: l.tester}
	if rep.Scenario == "" {
		rep.Scenario = file
	}
	if len(opts.Stack) > 0 {
		rep.Stack = opts.Stack[0]
	}
	if opts.ScaleNum > 0 {
		rep.Scale = fmt.Sprintf("%d/%d", opts.ScaleNum, opts.ScaleDen)
	}
	return rep
}

// simulated binds the file, read once, for the simulation: the subject
// runs the profile, lowered for its API, and the tester is what it is
// live. unsayable is set when the profile's API cannot make the
// scenario's calls.
func (l *labScenario) simulated(opts Options) (_ *sim.Scenario, unsayable *sim.ScenarioError, _ error) {
	simSpec, err := l.layout.WithProfiles(map[string]string{l.subject: opts.Profile, l.tester: "gvisor"})
	if errors.As(err, &unsayable) {
		return nil, unsayable, err
	}
	if err == nil && opts.ScaleNum > 0 {
		simSpec, err = simSpec.Scaled(opts.ScaleNum, opts.ScaleDen)
	}
	return simSpec, nil, err
}

// measure runs the scenario live opts.Runs times. It names the stack under
// test in rep and, for a scenario the driver cannot express, says so in
// rep.Skipped and runs nothing more.
func (l *labScenario) measure(file string, opts Options, rep *Report) ([][]sim.Event, live.Hello, error) {
	var lives [][]sim.Event
	var hello live.Hello
	for i := 0; i < opts.Runs; i++ {
		var pcap io.Writer
		if i == 0 {
			pcap = opts.PCAP
		}
		events, h, err := runLive(l, pcap, opts.Stack, opts.DUT)
		hello = h
		if opts.DUT != nil && opts.DUT.Argv != nil {
			rep.DUT = strings.TrimSpace(hello.Stack + " " + hello.Version)
		}
		var cannot *cannotExpress
		if errors.As(err, &cannot) {
			rep.Skipped, rep.Runs = cannot.why, 0
			return nil, hello, nil
		}
		if err != nil {
			return nil, hello, fmt.Errorf("%s: live run %d: %w", file, i+1, err)
		}
		lives = append(lives, events)
	}
	return lives, hello, nil
}

// labScenario is a scenario file read for the live lab.
type labScenario struct {
	// layout is the file as written, for the simulation to bind; live
	// the scenario as the lab plays it (liveScenario), scaled.
	layout, live *sim.Scenario
	// subject and tester name the stack under test and the tester (Roles).
	subject, tester string
	// serverSide: the stack under test is the connection's server; the
	// tester connects to it.
	serverSide bool
	// sysctls are the kernel's settings the scenario gives the subject.
	sysctls []sysctl
}

// forLab reads a scenario file for the live lab, and refuses (ErrNotLive)
// what the lab, or the program of opts.Stack, cannot play.
func forLab(file string, data []byte, opts Options) (*labScenario, error) {
	layout, err := sim.ParseScenarioLayout(file, data)
	if err != nil {
		// Every problem at once, as a parse that binds the hosts finds
		// them.
		if _, all := sim.ParseScenarioAs(file, data, map[string]string{KernelHost: "linux", TesterHost: "gvisor"}); all != nil {
			return nil, all
		}
		return nil, err
	}
	l := &labScenario{layout: layout}
	l.subject, l.tester = Roles(layout)
	if l.live, err = liveScenario(layout, l.subject, l.tester); err != nil {
		return nil, err
	}
	if err := checkLive(l.live, l.subject, l.tester); err != nil {
		return nil, err
	}
	if l.sysctls, err = checkModelSettings(layout, l.subject); err != nil {
		return nil, err
	}
	if opts.ScaleNum > 0 {
		if l.live, err = l.live.Scaled(opts.ScaleNum, opts.ScaleDen); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrScale, err)
		}
	}
	if len(opts.Stack) > 0 {
		if err := checkStack(l.live); err != nil {
			return nil, err
		}
	}
	l.serverSide = serverIsSubject(l.live)
	if l.serverSide && len(opts.Stack) > 0 {
		return nil, fmt.Errorf("%s: %w: with --stack the program connects; in this scenario the stack under test (%s) is the server", l.live.File, ErrNotLive, l.subject)
	}
	return l, nil
}

// SimGrace is how much longer the simulation runs than the scenario says
// when the kernel gave up on the connection in every live run: enough for
// any profile's default keep-alive (2 h idle, then up to 10 probes) to end
// too. Virtual time costs nothing while nothing happens.
const SimGrace = 2*time.Hour + 15*time.Minute

// kernelGaveUp reports whether the kernel's application saw its connection
// fail in every live run.
func kernelGaveUp(lives [][]sim.Event, subject, tester string) bool {
	for _, ev := range lives {
		failed := false
		for _, it := range story(ev, subject, tester, 0) {
			failed = failed || isAppError(it.key)
		}
		if !failed {
			return false
		}
	}
	return len(lives) > 0
}

// ErrScale is wrapped by the error for a scale the scenario's option
// values cannot take (Options.ScaleNum).
var ErrScale = errors.New("cannot scale the scenario")

// ErrNotLive is wrapped by the error for a scenario the live lab cannot
// play (other hosts, more connections, actions it cannot do).
var ErrNotLive = errors.New("not a conform scenario")

// Roles names a scenario's stack under test, the subject (the client of
// its one connection), and its tester (the server): "kernel" and "tester"
// in the built-in scenarios, "client" and "server" in most conformance
// vectors. With other than one connection both are "" (checkLive refuses
// the scenario).
func Roles(s *sim.Scenario) (subject, tester string) {
	if len(s.Conns) != 1 {
		return "", ""
	}
	c := s.Conns[0]
	if serverIsSubject(s) {
		return c.Server, c.Client
	}
	return c.Client, c.Server
}

// serverIsSubject reports whether the stack under test is the server of
// the scenario's connection: its client runs gvisor, as the tester does,
// and its server another profile (a Linux server, say, for its SYN-ACKs
// and its listening socket's options).
func serverIsSubject(s *sim.Scenario) bool {
	if len(s.Conns) != 1 {
		return false
	}
	c := s.Conns[0]
	return writtenProfile(s, c.Client) == "gvisor" && writtenProfile(s, c.Server) != "gvisor"
}

// writtenProfile is the profile the file gives host (gvisor when none).
func writtenProfile(s *sim.Scenario, host string) string {
	for _, h := range s.Hosts {
		if h.Name == host && h.Profile != "" {
			return h.Profile
		}
	}
	return "gvisor"
}

// liveScenario binds a scenario's hosts as the live lab runs them: the
// subject's calls in Linux's API (the helper makes them by name, and a
// driver takes them by name), the tester as gVisor. The tester's registry
// values and settings describe a model, not what runs live, and are left
// out: the simulation keeps the tester's, and checkModelSettings refuses a
// subject that has any.
func liveScenario(layout *sim.Scenario, subject, tester string) (*sim.Scenario, error) {
	if subject == "" {
		// Not a scenario the lab can play (checkLive says why): bound as
		// the built-in scenarios' hosts are, the rest as the file says.
		return layout.WithProfiles(map[string]string{KernelHost: "linux", TesterHost: "gvisor"})
	}
	bare := *layout
	bare.Hosts = slices.Clone(layout.Hosts)
	for i, h := range bare.Hosts {
		if h.Name == subject || h.Name == tester {
			bare.Hosts[i].Registry, bare.Hosts[i].Set = nil, nil
		}
	}
	return bare.WithProfiles(map[string]string{subject: "linux", tester: "gvisor"})
}

// checkModelSettings refuses a scenario that gives the stack under test
// settings of the model (set:, registry:), such as gvisor's
// arm=establishment: the live stack runs as it is, so only the simulation
// could take them. The kernel's own settings (sysctl: tcp_retries2) are
// not the model's: the lab sets them in the kernel's namespace, so the
// kernel (or a program on it) takes them; Compare skips such a scenario
// for a driver's stack. It returns those sysctls.
func checkModelSettings(layout *sim.Scenario, subject string) ([]sysctl, error) {
	var sysctls []sysctl
	for _, h := range layout.Hosts {
		if h.Name != subject {
			continue
		}
		if len(h.Set)+len(h.Registry) > 0 {
			return nil, fmt.Errorf("%s:%d:%d: %w: it gives %s the model's settings %s; the live stack runs as it is, so only the simulation could take them",
				layout.File, h.Pos.Line, h.Pos.Col, ErrNotLive, h.Name, strings.Join(append(slices.Clone(h.Set), h.Registry...), ", "))
		}
		for _, kv := range h.Sysctl {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%s:%d:%d: sysctl %s: want a whole number", layout.File, h.Pos.Line, h.Pos.Col, kv)
			}
			sysctls = append(sysctls, sysctl{k, n})
		}
	}
	return sysctls, nil
}

// sysctl is a kernel setting (net.ipv4.name) a scenario gives the kernel.
type sysctl struct {
	name  string
	value int
}

// checkLive refuses what the live lab cannot do, naming the action: the
// lab has the subject, which connects, and the tester, which listens, on
// a link of its own, with no loss and no middlebox.
func checkLive(s *sim.Scenario, subject, tester string) error {
	names := []string{}
	for _, h := range s.Hosts {
		names = append(names, h.Name)
	}
	slices.Sort(names)
	if len(names) != 2 {
		return fmt.Errorf("%s: %w: the lab has two hosts, the stack under test and the tester; this one has %d (%s)", s.File, ErrNotLive, len(names), strings.Join(names, ", "))
	}
	if len(s.Conns) != 1 {
		return fmt.Errorf("%s: %w: the lab has one connection; this one has %d", s.File, ErrNotLive, len(s.Conns))
	}
	if c := s.Conns[0]; c.Count > 1 {
		return fmt.Errorf("%s:%d:%d: %w: the lab has one connection; %s is %d", s.File, c.Pos.Line, c.Pos.Col, ErrNotLive, c.Name, c.Count)
	}
	if c := s.Conns[0]; c.Client == c.Server {
		return fmt.Errorf("%s:%d:%d: %w: the stack under test connects to the tester, another host; this connection's ends are both %s", s.File, c.Pos.Line, c.Pos.Col, ErrNotLive, c.Client)
	}
	if s.Loss > 0 {
		return fmt.Errorf("%s: %w: network: loss %g: the lab's link loses nothing", s.File, ErrNotLive, s.Loss)
	}
	if s.Middlebox > 0 {
		return fmt.Errorf("%s: %w: network: middlebox %v: the lab has no middlebox", s.File, ErrNotLive, s.Middlebox)
	}
	subjectEnd, testerEnd := "client", "server"
	if serverIsSubject(s) {
		subjectEnd, testerEnd = "server", "client"
	} else if err := checkHandshake(s, subject); err != nil {
		return err
	}
	for _, a := range s.Actions {
		if a.On != nil {
			return fmt.Errorf("%s:%d:%d: %w: %s on %s: the lab plays actions at their times, not on events", s.File, a.Pos.Line, a.Pos.Col, ErrNotLive, a.Do, a.On.Event)
		}
		ok, why := false, ""
		switch a.Do {
		case sim.DoSetsockopt, sim.DoGetsockopt:
			ok = a.End == subjectEnd || (a.End == sim.EndListener && (subjectEnd == "server" || a.Do == sim.DoSetsockopt && a.OptName == "SO_RCVBUF"))
			why = fmt.Sprintf("%s %s on the %s end (%s): the lab makes the socket calls of the stack under test (%s), and sets the tester's listening SO_RCVBUF, only", a.Do, a.OptName, a.End, tester, subject)
		case sim.DoReading:
			ok = a.End == testerEnd
			why = fmt.Sprintf("reading on the end of the stack under test (%s): the lab's peer keeps a receive pending; only the tester (%s) stops reading", subject, tester)
		case sim.DoConnect:
			ok = a.End == "client"
		case sim.DoSend, sim.DoShutdown:
			ok = true
		case sim.DoSilence, sim.DoHeal:
			ok = len(a.Hosts) == 1 && a.Hosts[0] == tester
			why = fmt.Sprintf("%s %s: the lab silences and heals the tester (%s) only", a.Do, strings.Join(a.Hosts, ", "), tester)
		case sim.DoDrop:
			ok = a.Drop.Class != sim.ClassKeepAliveProbe
			why = "drop keepalive-probe: the lab drops segments by their flags and length, and cannot tell a probe so; silence the tester instead"
		}
		if why == "" {
			why = fmt.Sprintf("%s is not something the live lab can do (it makes the socket calls of the stack under test, %s, sends from either end, silences or heals the tester, %s, and drops segments by class)", a.Do, subject, tester)
		}
		if !ok {
			return fmt.Errorf("%s:%d:%d: %w: %s", s.File, a.Pos.Line, a.Pos.Col, ErrNotLive, why)
		}
	}
	return nil
}

// checkHandshake refuses a call the stack under test makes while, by the
// scenario's latency, its handshake is still under way: the lab's link has
// next to none (tens of microseconds), so live the call would find the
// connection established, and the scenario would not be played. (A
// handshake held up by silence the lab plays as written.) Latency moves
// nothing else the comparison holds the two sides to: story counts the
// first probe after a receive from the receipt, the latency after the
// send.
func checkHandshake(s *sim.Scenario, subject string) error {
	var connect *sim.Action
	for i, a := range s.Actions {
		if a.Do == sim.DoConnect && a.End == "client" && connect == nil {
			connect = &s.Actions[i]
		}
	}
	if connect == nil {
		return nil
	}
	done := connect.At + 2*s.Latency
	for _, a := range s.Actions {
		if a.Conn != "" && a.End == "client" && a.At > connect.At && a.At < done {
			return fmt.Errorf("%s:%d:%d: %w: %s at %v: by the scenario's latency (%v each way) %s's handshake is under way until %v, but the lab's link has next to none, so live this call would find the connection established",
				s.File, a.Pos.Line, a.Pos.Col, ErrNotLive, strings.TrimSpace(a.Do+" "+a.OptName), a.At, s.Latency, subject, done)
		}
	}
	return nil
}

// checkStack refuses what a program cannot be told through its
// environment: options it would have to set after connecting, option
// reads, and sends from its end.
func checkStack(s *sim.Scenario) error {
	var connect *sim.Action
	for i, a := range s.Actions {
		if a.Do == sim.DoConnect {
			connect = &s.Actions[i]
		}
	}
	for _, a := range s.Actions {
		bad := ""
		switch {
		case a.End != "client":
		case a.Do == sim.DoSetsockopt && connect != nil && a.At > connect.At:
			bad = "a program is told its options when it starts, at the connect; this one comes later"
		case a.Do == sim.DoSetsockopt && !isOptName(a.OptName):
			bad = "a program is told its options by name; give the option's name, not its number"
		case a.Do == sim.DoGetsockopt || a.Do == sim.DoSend || a.Do == sim.DoShutdown:
			bad = "with --stack the program makes its own calls; kasim can only tell it what to set"
		}
		if bad != "" {
			return fmt.Errorf("%s:%d:%d: %w: %s: %s", s.File, a.Pos.Line, a.Pos.Col, ErrNotLive, strings.TrimSpace(a.Do+" "+a.OptName), bad)
		}
	}
	return nil
}

func isOptName(s string) bool {
	for _, r := range s {
		if (r < 'A' || r > 'Z') && r != '_' {
			return false
		}
	}
	return s != ""
}

// stackEnv is what a program taking the kernel's place is told: where to
// connect, and each option the scenario sets before connecting, by name,
// in the option's own unit.
func stackEnv(s *sim.Scenario, connect *sim.Action, tester netip.AddrPort) []string {
	env := []string{"KASIM_CONNECT=" + tester.String()}
	for _, a := range s.Actions {
		if a.Do == sim.DoSetsockopt && a.End == "client" && a.At <= connect.At {
			v := int32(binary.LittleEndian.Uint32(a.Optval))
			env = append(env, fmt.Sprintf("KASIM_%s=%d", a.OptName, v))
		}
	}
	return env
}

// programReport reads a line of a program's output: "error OP ERRNO"
// (e.g. "error recv ETIMEDOUT") says its application saw OP fail.
func programReport(line string) (op string, errno syscall.Errno, ok bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "error" {
		return "", 0, false
	}
	if e, ok := live.ErrnoByName(f[2]); ok {
		return f[1], e, true
	}
	return "", 0, false
}

// IsVectorFor reports whether the scenario file data (named file) is a
// vector for a stack of the given profile: the client of one of its
// connections runs that profile, as the file says (kasim conform
// --vectors). Whether the lab can play it is Compare's to say.
func IsVectorFor(file string, data []byte, profile string) (bool, error) {
	s, err := sim.ParseScenarioLayout(file, data)
	if err != nil {
		return false, err
	}
	for _, c := range s.Conns {
		if writtenProfile(s, c.Client) == profile {
			return true, nil
		}
	}
	if serverIsSubject(s) && writtenProfile(s, s.Conns[0].Server) == profile {
		return true, nil
	}
	return false, nil
}
