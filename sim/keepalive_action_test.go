package sim

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKeepaliveActionSpeaksEachAPI: keepalive: {idle, interval, count}
// becomes the calls the host's API makes for it, with the values in that
// API's units, and says so where the API cannot set the count.
func TestKeepaliveActionSpeaksEachAPI(t *testing.T) {
	src := func(profile, keepalive string) string {
		return fmt.Sprintf("duration: 1m\nhosts: {a: {profile: %s}, b: {}}\nconnections: {c: {client: a, server: b}}\nactions:\n  - {at: 1s, conn: c, keepalive: %s}\n", profile, keepalive)
	}
	type call struct{ Do, Opt, Val, Note string }
	calls := func(s *Scenario) []call {
		var out []call
		for _, a := range s.Actions {
			var vals []string
			for i := 0; i+4 <= len(a.Optval); i += 4 {
				vals = append(vals, fmt.Sprint(binary.LittleEndian.Uint32(a.Optval[i:])))
			}
			if a.At.String() != "1s" || a.Conn != "c" || a.End != "client" || a.Pos.Line != 5 {
				t.Errorf("%s %s: at %v, %s/%s, line %d: want the keepalive action's", a.Do, a.OptName, a.At, a.Conn, a.End, a.Pos.Line)
			}
			out = append(out, call{a.Do, a.OptName, strings.Join(vals, ","), a.Note})
		}
		return out
	}
	for _, tc := range []struct {
		profile, keepalive string
		want               []call
	}{
		{"linux", "{idle: 2s, interval: 1s, count: 3}", []call{
			{"setsockopt", "TCP_KEEPIDLE", "2", ""}, {"setsockopt", "TCP_KEEPINTVL", "1", ""},
			{"setsockopt", "TCP_KEEPCNT", "3", ""}, {"setsockopt", "SO_KEEPALIVE", "1", ""}}},
		{"gvisor", "{count: 5}", []call{{"setsockopt", "TCP_KEEPCNT", "5", ""}, {"setsockopt", "SO_KEEPALIVE", "1", ""}}},
		{"win10-1703", "{idle: 2s, interval: 1500ms, count: 3}", []call{
			{"setsockopt", "SO_KEEPALIVE", "1", ""}, {"ioctl", "SIO_KEEPALIVE_VALS", "1,2000,1500", ""}, {"setsockopt", "TCP_KEEPCNT", "3", ""}}},
		// SIO_KEEPALIVE_VALS sets both times: the one not given is the
		// profile's own (here the registry's).
		{"xp, registry: {KeepAliveInterval: 3000}", "{idle: 30s}", []call{
			{"setsockopt", "SO_KEEPALIVE", "1", ""}, {"ioctl", "SIO_KEEPALIVE_VALS", "1,30000,3000", ""}}},
		{"vista", "{idle: 2s, interval: 1s, count: 3}", []call{
			{"setsockopt", "SO_KEEPALIVE", "1", "keepalive count 3: Windows Vista has no per-socket probe count (TCP_KEEPCNT came with Windows 10 1703); its own 10 probes apply"},
			{"ioctl", "SIO_KEEPALIVE_VALS", "1,2000,1000", ""}}},
	} {
		s, err := ParseScenario("k.yaml", []byte(src(tc.profile, tc.keepalive)))
		if err != nil {
			t.Errorf("%s: %v", tc.profile, err)
			continue
		}
		if diff := cmp.Diff(tc.want, calls(s)); diff != "" {
			t.Errorf("%s keepalive: %s (-want +got):\n%s", tc.profile, tc.keepalive, diff)
		}
	}
}

// TestKeepaliveActionRuns: the expanded calls run, and the note about the
// count Vista cannot set reaches the trace before them.
func TestKeepaliveActionRuns(t *testing.T) {
	_, run := mustRun(t, "k.yaml", `duration: 2m
hosts: {a: {profile: vista}, b: {}}
connections: {c: {client: a, server: b}}
actions:
  - {at: 0s, conn: c, keepalive: {idle: 10s, interval: 1s, count: 3}}
  - {at: 0s, conn: c, connect: true}
  - {at: 1s, silence: b}
# idle 10 s after the handshake's 20 ms (the default latency is 10 ms);
# Vista's 10 probes, 1 s apart, then the abort.
expect:
  - {probes: 10, conn: c}
  - {segment: keepalive-probe, conn: c, nth: 1, at: 10.02s, len: 1}
  - {error: WSAENETRESET, conn: c, at: 20.02s}
`)
	for _, f := range run.Check() {
		t.Error(f)
	}
	var seq []string
	for _, e := range run.Events {
		switch e := e.(type) {
		case *NoteEvent:
			if strings.HasPrefix(e.Text, "keepalive count") {
				seq = append(seq, "note")
			}
		case *SockOptEvent:
			if e.Call == "setsockopt" || e.Call == "WSAIoctl" || e.Call == "ConnectEx" {
				seq = append(seq, e.Call+" "+e.Opt)
			}
		}
	}
	want := []string{"note", "setsockopt SO_KEEPALIVE", "WSAIoctl SIO_KEEPALIVE_VALS", "ConnectEx "}
	if diff := cmp.Diff(want, seq); diff != "" {
		t.Errorf("calls in the trace (-want +got):\n%s", diff)
	}
}
