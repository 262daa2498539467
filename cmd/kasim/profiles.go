package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"kasim/winprofile"
)

func profilesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintln(stdout, "Usage: kasim profiles\n\nLists the profiles kasim run --profile accepts.")
			return exitOK
		}
		fmt.Fprintf(stderr, "kasim profiles: unexpected argument %q\n", args[0])
		return exitUsage
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSYSTEM\tIDLE\tINTERVAL\tPROBES\tPROBE\tSO_KEEPALIVE DURING CONNECT\tTCP_KEEPCNT\tTCP_KEEPIDLE")
	fmt.Fprintln(tw, "gvisor\tgVisor netstack, as kasim runs it\t--idle\t--interval\t--count\t0 bytes\taccepted\t-\t-")
	yes := map[bool]string{true: "yes", false: "no"}
	during := map[bool]string{true: "WSAEINVAL", false: "accepted"}
	for _, p := range winprofile.All() {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%d\t%d byte\t%s\t%s\t%s\n", p.Name, p.Title, p.Idle(), p.Interval(), p.ProbeCount(),
			p.ProbeBytes, during[p.RejectsSetDuringConnect()], yes[p.HasKeepCnt()], yes[p.HasKeepIdle()])
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "kasim profiles: %v\n", err)
		return exitFail
	}
	fmt.Fprintln(stdout, "\nkasim profile NAME shows a profile value by value, with sources; --registry and --set adjust it.")
	return exitOK
}

func profileCmd(args []string, stdout, stderr io.Writer) int {
	var prof profileFlags
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
	w, err := prof.windows()
	if err != nil {
		fmt.Fprintf(stderr, "kasim profile: %s\n", err)
		return exitUsage
	}
	if w == nil {
		fmt.Fprint(stdout, gvisorProfile)
		return exitOK
	}
	if err := w.Describe(stdout); err != nil {
		fmt.Fprintf(stderr, "kasim profile: %v\n", err)
		return exitFail
	}
	return exitOK
}

func isFlag(s string) bool { return len(s) > 1 && s[0] == '-' }

const gvisorProfile = `gVisor netstack (gvisor)
  idle, interval, count          --idle, --interval, --count     set per connection (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT); gVisor's own defaults are 2h, 75s, 9
  probe payload                  none (SND.NXT-1, zero length)   gVisor's sendEmptySegment
  keep-alive before connect      armed at establishment          kasim's fix: gVisor alone never arms it on a quiet connection
  every keep-alive option set    restarts the idle time          gVisor's resetKeepaliveTimer
  error when keep-alive gives up ETIMEDOUT (110)                 gVisor's ErrTimeout, as Linux applications see it
  on the wire at abort           nothing                         gVisor sends no RST
`
