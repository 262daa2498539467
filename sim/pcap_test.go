package sim

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tshark returns tshark's path, skipping the test where it is missing
// unless KASIM_REQUIRE_TSHARK is set (CI sets it: there a missing tshark is
// a broken setup, not a reason to skip).
func tshark(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("KASIM_REQUIRE_TSHARK") != "" {
			t.Fatal("tshark not found, and KASIM_REQUIRE_TSHARK is set")
		}
		t.Skip("tshark not installed (apt-get install tshark); set KASIM_REQUIRE_TSHARK=1 to make this a failure")
	}
	return p
}

func capture(t *testing.T, b Builtin) (string, *Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPcapWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunBuiltin(b, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(p.Err(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path, res
}

// frameTimes runs tshark with a display filter and returns the matching
// frames' timestamps as virtual time.
func frameTimes(t *testing.T, bin, path, filter string) []time.Duration {
	t.Helper()
	out, err := exec.Command(bin, "-n", "-r", path, "-Y", filter, "-T", "fields", "-e", "frame.time_epoch").Output()
	if err != nil {
		t.Fatalf("tshark -Y %q: %v", filter, err)
	}
	var times []time.Duration
	for _, line := range strings.Fields(string(out)) {
		sec, frac, _ := strings.Cut(line, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("tshark time %q", line)
		}
		times = append(times, time.Duration(s)*time.Second+time.Duration(ns))
	}
	return times
}

func segmentTimes(res *Result, class string) []time.Duration {
	var times []time.Duration
	for _, e := range res.Events {
		if s, ok := e.(*SegmentEvent); ok && s.Class == class {
			times = append(times, time.Duration(s.TNS))
		}
	}
	return times
}

// equalTimes compares at pcap's resolution: classic pcap records carry
// microseconds, the trace nanoseconds.
func equalTimes(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Truncate(time.Microsecond) != b[i].Truncate(time.Microsecond) {
			return false
		}
	}
	return true
}

func TestPcapWiresharkLabelsProbes(t *testing.T) {
	bin := tshark(t)
	t.Run("dead peer", func(t *testing.T) {
		path, res := capture(t, DefaultBuiltin())
		want := segmentTimes(res, ClassKeepAliveProbe)
		got := frameTimes(t, bin, path, "tcp.analysis.keep_alive")
		if len(want) != 10 || !equalTimes(got, want) {
			t.Errorf("tshark keep-alives at %v; the trace's probes at %v", got, want)
		}
	})
	t.Run("live peer", func(t *testing.T) {
		b := DefaultBuiltin()
		b.PeerAlive, b.Idle, b.Duration = true, time.Minute, 5*time.Minute+time.Second
		path, res := capture(t, b)
		probes, acks := segmentTimes(res, ClassKeepAliveProbe), segmentTimes(res, ClassKeepAliveACK)
		if len(probes) != 5 || len(acks) != 5 {
			t.Fatalf("trace has %d probes and %d keep-alive ACKs, want 5 each", len(probes), len(acks))
		}
		if got := frameTimes(t, bin, path, "tcp.analysis.keep_alive"); !equalTimes(got, probes) {
			t.Errorf("tshark keep-alives at %v; trace %v", got, probes)
		}
		if got := frameTimes(t, bin, path, "tcp.analysis.keep_alive_ack"); !equalTimes(got, acks) {
			t.Errorf("tshark keep-alive ACKs at %v; trace %v", got, acks)
		}
	})
	t.Run("no false keep-alives", func(t *testing.T) {
		b := DefaultBuiltin()
		b.Conns, b.Loss, b.PeerAlive, b.Idle, b.Duration = 20, 0.1, true, time.Minute, 3*time.Minute
		path, res := capture(t, b)
		// With loss, retransmissions and duplicate ACKs appear; tshark
		// and the trace must still agree on what a probe is.
		want := segmentTimes(res, ClassKeepAliveProbe)
		if got := frameTimes(t, bin, path, "tcp.analysis.keep_alive"); !equalTimes(got, want) {
			t.Errorf("tshark keep-alives at %v; trace %v", got, want)
		}
	})
}

func TestPcapDeterministic(t *testing.T) {
	b := DefaultBuiltin()
	b.Conns = 5
	p1, _ := capture(t, b)
	p2, _ := capture(t, b)
	a, err1 := os.ReadFile(p1)
	c, err2 := os.ReadFile(p2)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Error("two captures of the same run differ")
	}
	// The header's thiszone field (bytes 8-11) is zero wherever kasim runs.
	if len(a) < 24 || !bytes.Equal(a[8:12], []byte{0, 0, 0, 0}) {
		t.Errorf("pcap header % x", a[:min(24, len(a))])
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(b), nil
}

func TestPcapWriteErrorIsReportedNotPanicked(t *testing.T) {
	p, err := NewPcapWriter(&failingWriter{after: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunBuiltin(DefaultBuiltin(), p); err != nil {
		t.Fatal(err)
	}
	if p.Err() == nil || p.Err().Error() != "disk full" {
		t.Errorf("Err() = %v, want the writer's error", p.Err())
	}
	if _, err := NewPcapWriter(&failingWriter{}); err == nil {
		t.Error("NewPcapWriter hid a failing header write")
	}
}

func TestPcapWiresharkLabelsWindowsOneOctetProbes(t *testing.T) {
	bin := tshark(t)
	b := DefaultBuiltin()
	b.Idle, b.Interval, b.Count = 0, 0, 0
	b.Profile = windows(t, "win10-1709")
	path, res := capture(t, b)
	want := segmentTimes(res, ClassKeepAliveProbe)
	if got := frameTimes(t, bin, path, "tcp.analysis.keep_alive && tcp.len == 1"); len(want) != 10 || !equalTimes(got, want) {
		t.Errorf("tshark one-octet keep-alives at %v; the trace's probes at %v", got, want)
	}
	b.PeerAlive, b.Duration = true, 5*time.Hour
	path, res = capture(t, b)
	if got, want := frameTimes(t, bin, path, "tcp.analysis.keep_alive_ack"), segmentTimes(res, ClassKeepAliveACK); len(want) != 2 || !equalTimes(got, want) {
		t.Errorf("tshark keep-alive ACKs at %v; the trace's at %v", got, want)
	}
}
