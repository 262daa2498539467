package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"kasim/profile"
)

func profilesCmd(args []string, stdout, stderr io.Writer) int {
	if code, done := noArgs("profiles", "Usage: kasim profiles\n\nLists the profiles kasim run --profile accepts.", args, stdout, stderr); done {
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSYSTEM\tIDLE\tINTERVAL\tPROBES\tPROBE\tSO_KEEPALIVE DURING CONNECT\tTCP_KEEPCNT\tTCP_KEEPIDLE")
	for _, p := range profile.All() {
		r := p.Row()
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%d\t%s\t%s\t%s\t%s\n", p.Name, p.Title, p.Idle, p.Interval, p.Count,
			r.Probe, r.DuringConnect, r.KeepCnt, r.KeepIdle)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "kasim profiles: %v\n", err)
		return exitFail
	}
	var modelled []string
	for _, p := range profile.All() {
		if p.FromSource {
			modelled = append(modelled, p.Name)
		}
	}
	fmt.Fprintf(stdout, "\nMeasured with kasim conform: linux against this machine's kernel, gvisor against gVisor itself in\nreal time (--dut gvisor), lwip against lwIP 2.1.3, Debian's build (--dut lwip).\n%s: modelled from source, not measured.\n", strings.Join(modelled, ", "))
	fmt.Fprintln(stdout, "kasim profile NAME shows a profile value by value, with sources; --registry and --set adjust it.")
	return exitOK
}

func profileCmd(args []string, stdout, stderr io.Writer) int {
	prof := profileFlags{command: "kasim profile"}
	fs := flag.NewFlagSet("kasim profile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	prof.register(fs)
	// The profile name comes first: kasim profile xp --registry ...
	if len(args) > 0 && !isFlag(args[0]) {
		prof.name, args = args[0], args[1:]
	} else if len(args) == 0 {
		fmt.Fprintln(stderr, "kasim profile: name a profile (kasim profiles lists them)")
		return exitUsage
	}
	const help = "Usage: kasim profile NAME [--registry NAME=VALUE ...] [--set KEY=VALUE ...]\n\nShows a profile value by value, with where each value comes from."
	if code, done := parseFlags(fs, args, help, "", stdout, stderr); done {
		return code
	}
	p, err := prof.resolve()
	if err != nil {
		fmt.Fprintf(stderr, "kasim profile: %s\n", err)
		return exitUsage
	}
	if err := p.Describe(stdout); err != nil {
		fmt.Fprintf(stderr, "kasim profile: %v\n", err)
		return exitFail
	}
	return exitOK
}

func isFlag(s string) bool { return len(s) > 1 && s[0] == '-' }
