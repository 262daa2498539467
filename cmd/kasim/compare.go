package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"kasim/sim"
)

const compareHelp = `Usage: kasim compare --profiles A,B,... [--host NAME] FILE.yaml

Runs a scenario once per profile, with one host's profile replaced, and prints
side by side when that host's connection sends each keep-alive probe, when it
gives up, what goes on the wire then and what the application sees. The host
is, by default, the client of the file's first connection.

Example:
  kasim compare --profiles vista,xp,gvisor testdata/examples/win7-server-nat.yaml --host server`

// compareColumn is what one profile did, for the table.
type compareColumn struct {
	profile string
	failed  string // why the scenario could not run with this profile
	probes  []time.Duration
	abort   time.Duration // -1: kept the connection
	rst     bool
	errors  []string
	final   string
}

func compareCmd(args []string, stdout, stderr io.Writer) int {
	defer simulateOnOneProcessor(sim.MaxScenarioConns)()
	var profiles, host string
	fs := flag.NewFlagSet("kasim compare", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&profiles, "profiles", "", "comma-separated `profiles` to compare (kasim profiles lists them)")
	fs.StringVar(&host, "host", "", "the `host` whose profile changes (default: the first connection's client)")
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stdout, compareHelp)
				return exitOK
			}
			fmt.Fprintf(stderr, "kasim compare: %s\n", flagError(err))
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		files, rest = append(files, fs.Arg(0)), fs.Args()[1:]
	}
	switch {
	case len(files) != 1:
		fmt.Fprintln(stderr, "kasim compare: name one scenario file (kasim compare --profiles vista,xp FILE.yaml)")
		return exitUsage
	case len(strings.FieldsFunc(profiles, func(r rune) bool { return r == ',' || r == ' ' })) < 2:
		fmt.Fprintln(stderr, "kasim compare: --profiles: name two or more profiles, e.g. --profiles vista,xp,gvisor")
		return exitUsage
	}
	file := files[0]
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "kasim compare: %v\n", err)
		return exitUsage
	}
	base, err := sim.ParseScenario(file, data)
	if err != nil {
		return loadError("kasim compare", err, stderr)
	}
	if len(base.Conns) == 0 {
		fmt.Fprintf(stderr, "kasim compare: %s has no connections to compare\n", file)
		return exitUsage
	}
	conn := base.Conns[0]
	if host == "" {
		host = conn.Client
	}
	end := ""
	for _, c := range base.Conns {
		if c.Client == host || c.Server == host {
			conn, end = c, map[bool]string{true: "client", false: "server"}[c.Client == host]
			break
		}
	}
	if end == "" {
		fmt.Fprintf(stderr, "kasim compare: --host %s: no connection of %s has that host\n", host, file)
		return exitUsage
	}
	var cols []compareColumn
	for _, p := range strings.Split(profiles, ",") {
		p = strings.TrimSpace(p)
		col := compareColumn{profile: p, abort: -1}
		s, err := base.WithProfiles(map[string]string{host: p})
		if err != nil {
			var se *sim.ScenarioError
			if !errors.As(err, &se) {
				fmt.Fprintf(stderr, "kasim compare: %v\n", err)
				return exitFail
			}
			if strings.Contains(se.Problems[0].Msg, "unknown profile") {
				fmt.Fprintf(stderr, "kasim compare: --profiles: %s\n", se.Problems[0].Msg)
				return exitUsage
			}
			col.failed = fmt.Sprintf("cannot run: %s:%d:%d: %s", file, se.Problems[0].Pos.Line, se.Problems[0].Pos.Col, se.Problems[0].Msg)
			cols = append(cols, col)
			continue
		}
		run, err := sim.RunScenario(s)
		if err != nil {
			fmt.Fprintf(stderr, "kasim compare: %s with %s: %v\n", file, p, err)
			return exitFail
		}
		col.fill(run, host, run.Sockets[sim.SocketKey(conn.Name, end)])
		cols = append(cols, col)
	}
	fmt.Fprintf(stdout, "%s: %s's end of %s (%s -> %s:%d), profile by profile\n\n", file, host, conn.Name, conn.Client, conn.Server, conn.Port)
	return writeComparison(stdout, stderr, cols)
}

func (c *compareColumn) fill(run *sim.ScenarioRun, host string, sock int) {
	c.final = "CLOSED"
	for _, o := range sim.Outcomes(run.Events, host) {
		if o.Conn != sock {
			continue
		}
		c.probes, c.abort = o.Probes, o.AbortAt
		for _, e := range []struct {
			name, op string
			at       time.Duration
		}{{o.Error, o.ErrorOp, o.ErrorAt}, {o.LaterError, o.LaterErrorOp, o.LaterErrorAt}} {
			if e.name != "" {
				c.errors = append(c.errors, fmt.Sprintf("%s %s() %s", sim.FormatTime(e.at), e.op, e.name))
			}
		}
		if o.Final != "" {
			c.final = o.Final
		}
	}
	// Whether an RST went out as keep-alive gave up is the wire's to say.
	for _, ev := range run.Events {
		if e, ok := ev.(*sim.SegmentEvent); ok && e.Host == host && e.Conn == sock && e.Class == sim.ClassRST && c.abort >= 0 && time.Duration(e.TNS) == c.abort {
			c.rst = true
		}
	}
}

// maxProbeRows bounds the probe rows; the count row tells the rest.
const maxProbeRows = 12

func writeComparison(stdout, stderr io.Writer, cols []compareColumn) int {
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	row := func(label string, cell func(c compareColumn) string) {
		cells := []string{label}
		for _, c := range cols {
			if c.failed != "" && label != "" {
				cells = append(cells, "-")
				continue
			}
			cells = append(cells, cell(c))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("", func(c compareColumn) string { return c.profile })
	probes := 0
	for _, c := range cols {
		probes = max(probes, len(c.probes))
	}
	row("keep-alive probes", func(c compareColumn) string { return fmt.Sprint(len(c.probes)) })
	for i := 0; i < min(probes, maxProbeRows); i++ {
		row(fmt.Sprintf("  probe %d", i+1), func(c compareColumn) string {
			if i < len(c.probes) {
				return sim.FormatTime(c.probes[i])
			}
			return ""
		})
	}
	if probes > maxProbeRows {
		row("  ...", func(compareColumn) string { return "" })
	}
	row("gives up", func(c compareColumn) string {
		if c.abort < 0 {
			return "no"
		}
		return sim.FormatTime(c.abort)
	})
	row("RST at give-up", func(c compareColumn) string {
		if c.abort < 0 {
			return ""
		}
		return map[bool]string{true: "yes", false: "no"}[c.rst]
	})
	errRows := 0
	for _, c := range cols {
		errRows = max(errRows, len(c.errors))
	}
	if errRows == 0 {
		row("application sees", func(compareColumn) string { return "no error" })
	}
	for i := 0; i < errRows; i++ {
		label := ""
		if i == 0 {
			label = "application sees"
		}
		row(label, func(c compareColumn) string {
			if i < len(c.errors) {
				return c.errors[i]
			}
			return ""
		})
	}
	row("final state", func(c compareColumn) string { return c.final })
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "kasim compare: %v\n", err)
		return exitFail
	}
	for _, c := range cols {
		if c.failed != "" {
			fmt.Fprintf(stdout, "\n%s: %s\n", c.profile, c.failed)
		}
	}
	return exitOK
}
