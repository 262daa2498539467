package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgDoc is what the tests read back from a diagram.
type svgDoc struct {
	width, height float64
	groups        map[string]int // <g class="..."> counts
	segments      []string       // each segment arrow's data-class, in order
	texts         []string       // each <text>'s characters, tspans joined
	titles        []string
}

// parseSVG checks that b is well-formed XML with an <svg> root, and
// collects what the tests count.
func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	doc := svgDoc{groups: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var stack []string
	var text, title *strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attr := func(name string) string {
				for _, a := range tok.Attr {
					if a.Name.Local == name {
						return a.Value
					}
				}
				return ""
			}
			if len(stack) == 0 {
				if tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root element %v, want svg in the SVG namespace", tok.Name)
				}
				doc.width, _ = strconv.ParseFloat(attr("width"), 64)
				doc.height, _ = strconv.ParseFloat(attr("height"), 64)
			}
			stack = append(stack, tok.Name.Local)
			switch tok.Name.Local {
			case "g":
				doc.groups[attr("class")]++
				if attr("class") == "segment" {
					doc.segments = append(doc.segments, attr("data-class"))
				}
			case "text":
				text = &strings.Builder{}
			case "title":
				title = &strings.Builder{}
			}
		case xml.CharData:
			if text != nil {
				text.Write(tok)
			}
			if title != nil {
				title.Write(tok)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			switch tok.Name.Local {
			case "text":
				doc.texts = append(doc.texts, text.String())
				text = nil
			case "title":
				doc.titles = append(doc.titles, title.String())
				title = nil
			}
		}
	}
	if doc.width <= 0 || doc.height <= 0 {
		t.Fatalf("canvas %vx%v", doc.width, doc.height)
	}
	return doc
}

func (d svgDoc) hasText(s string) bool {
	for _, t := range d.texts {
		if t == s {
			return true
		}
	}
	return false
}

func renderSVG(t *testing.T, events []Event) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSVG(&b, events); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func runEvents(t *testing.T, b Builtin) []Event {
	t.Helper()
	res, err := RunBuiltin(b)
	if err != nil {
		t.Fatal(err)
	}
	return res.Events
}

func TestWriteSVGBuiltin(t *testing.T) {
	events := runEvents(t, DefaultBuiltin())
	doc := parseSVG(t, renderSVG(t, events))

	// One arrow per segment, in trace order, with its class.
	var want []string
	for _, e := range events {
		if s, ok := e.(*SegmentEvent); ok {
			want = append(want, s.Class)
		}
	}
	if fmt.Sprint(doc.segments) != fmt.Sprint(want) {
		t.Errorf("segment arrows %v\nwant one per segment %v", doc.segments, want)
	}
	if doc.groups["gap"] != 1 || !doc.hasText("1h59m50.01s idle") {
		t.Errorf("%d gap markers (texts %q); want one, labelled 1h59m50.01s idle", doc.groups["gap"], doc.texts)
	}
	for _, s := range []string{
		"client", "server",
		"SYN  S seq=0 ack=0 len=0",
		"keep-alive probe 1  A seq=18 ack=19 len=0",
		"keep-alive probe 10  A seq=18 ack=19 len=0",
		"DROPPED: silenced: server receives nothing",
		"network: server falls silent, neither sends nor receives: a dead peer",
		"sock2 keep-alive gives up: 10 probes unanswered",
		"sock2 recv() fails: ETIMEDOUT (110)",
		"00:00:00.010", "02:00:10.040",
	} {
		if !doc.hasText(s) {
			t.Errorf("no text %q", s)
		}
	}
	// Every event's time is on its row.
	times := 0
	for _, s := range doc.texts {
		if len(s) == len("00:00:00.000") && s[2] == ':' && s[8] == '.' {
			times++
		}
	}
	if times != len(events) {
		t.Errorf("%d row times for %d events", times, len(events))
	}
}

func TestWriteSVGLivePeerGaps(t *testing.T) {
	b := DefaultBuiltin()
	b.PeerAlive, b.Idle = true, time.Minute
	events := runEvents(t, b)
	doc := parseSVG(t, renderSVG(t, events))
	// Three idle minutes before the three probes; each probe answered.
	if doc.groups["gap"] != 3 || !doc.hasText("1m0s idle") {
		t.Errorf("%d gap markers, want 3 of 1m0s", doc.groups["gap"])
	}
	n := 0
	for _, c := range doc.segments {
		if c == ClassKeepAliveACK {
			n++
		}
	}
	if n != 3 || !doc.hasText("keep-alive ACK  A seq=19 ack=19 len=0") {
		t.Errorf("%d keep-alive ACK arrows, want 3", n)
	}
}

func TestWriteSVGDeterministic(t *testing.T) {
	// Several connections, so that any map-order dependence would show.
	b := DefaultBuiltin()
	b.Conns, b.Loss = 5, 0.05
	first := renderSVG(t, runEvents(t, b))
	second := renderSVG(t, runEvents(t, b))
	if !bytes.Equal(first, second) {
		t.Error("two runs of the same scenario give different SVG")
	}
	parseSVG(t, first)
}

func TestWriteSVGEscapesHostNames(t *testing.T) {
	const evil = `<script>alert("x")</script> & 'co' ]]>`
	const evil2 = "tab\there\x01"
	at := func(ns int64, host, kind string) Header { return newHeader(time.Duration(ns), host, kind) }
	events := []Event{
		&NoteEvent{Header: at(0, evil, KindNote), Text: "</text><svg onload=alert(1)>"},
		&SegmentEvent{Header: at(1, evil, KindSegment), Dir: "out", Src: "192.0.2.1:1", Dst: "192.0.2.2:80", To: evil2, Flags: "S", Class: ClassSYN},
		&StateEvent{Header: at(2, evil2, KindState), Conn: 1, From: "CLOSED", To: "<LISTEN>"},
		&SegmentEvent{Header: at(3, evil2, KindSegment), Dir: "out", Src: "192.0.2.2:80", Dst: "192.0.2.1:1", To: evil, Flags: "SA", Class: "<odd class>", Dropped: true, DropReason: `"&<>'`},
	}
	out := renderSVG(t, events)
	doc := parseSVG(t, out)
	if strings.Contains(string(out), "<script>") || strings.Contains(string(out), "<LISTEN>") || strings.Contains(string(out), "<svg onload") {
		t.Error("markup from the trace reached the SVG unescaped")
	}
	if !doc.hasText(evil) {
		t.Errorf("host name not shown as written; texts %q", doc.texts)
	}
	if !doc.hasText("tab\there\uFFFD") {
		t.Errorf("a control character should become U+FFFD; texts %q", doc.texts)
	}
	if !doc.hasText(`DROPPED: "&<>'`) || !doc.hasText("sock1 CLOSED -> <LISTEN>") {
		t.Errorf("escaped labels lost; texts %q", doc.texts)
	}
	if len(doc.segments) != 2 || doc.segments[1] != "<odd class>" {
		t.Errorf("segments %q", doc.segments)
	}
}

func TestWriteSVGElidesHugeRuns(t *testing.T) {
	// 40,000 segments between 20 hosts: more than the diagram draws.
	var events []Event
	for i := range 40000 {
		from, to := fmt.Sprintf("h%d", i%20), fmt.Sprintf("h%d", (i+1)%20)
		events = append(events, &SegmentEvent{Header: newHeader(time.Duration(i)*time.Millisecond, from, KindSegment),
			Dir: "out", Src: "192.0.2.1:1", Dst: "192.0.2.2:2", To: to, Flags: "A", Class: ClassACK})
	}
	out := renderSVG(t, events)
	if len(out) > 1<<20 {
		t.Errorf("%d bytes of SVG for a huge run; want it capped under 1 MiB", len(out))
	}
	doc := parseSVG(t, out)
	if doc.groups["host"] != 2*svgMaxHosts {
		t.Errorf("%d host boxes, want %d (top and bottom of %d lifelines)", doc.groups["host"], 2*svgMaxHosts, svgMaxHosts)
	}
	if doc.groups["elided"] != 1 || !doc.hasText("… 39000 events left out, from 00:00:00.750 to 00:00:39.749 …") {
		t.Errorf("no elision marker naming 39000 events; %d markers", doc.groups["elided"])
	}
	// Of the 1000 kept, those touching h12 to h19 are counted, not drawn.
	skipped := 0
	for _, i := range append(seq(0, 750), seq(39750, 40000)...) {
		if i%20 >= 11 { // h11 sends to h12
			skipped++
		}
	}
	if len(doc.segments) != 1000-skipped {
		t.Errorf("%d arrows, want %d", len(doc.segments), 1000-skipped)
	}
	note := fmt.Sprintf("%d events on 8 further hosts are left out: the diagram draws at most 12 lifelines", skipped)
	if !doc.hasText(note) {
		t.Errorf("no %q", note)
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func TestWriteSVGEmpty(t *testing.T) {
	doc := parseSVG(t, renderSVG(t, nil))
	if len(doc.segments) != 0 || doc.groups["host"] != 0 {
		t.Errorf("empty trace drew %v", doc.groups)
	}
}
