package sim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The diagram's colours, one per kind of segment, so that a glance (or a
// screenshot test) tells the handshake, the data and the probes apart.
// Each is used for nothing else in a long horizontal run, which is what
// the screenshot test counts.
const (
	SVGColourHandshake = "#1f6fd1" // SYN, SYN-ACK and the ACK that completes the handshake
	SVGColourData      = "#2e9e3e" // segments carrying data
	SVGColourACK       = "#6b6b6b" // pure ACKs
	SVGColourProbe     = "#f07d00" // keep-alive probes
	SVGColourProbeACK  = "#0fa3a3" // the answers to keep-alive probes
	SVGColourRetrans   = "#a0522d" // retransmissions
	SVGColourClose     = "#8e44ad" // FIN and RST
	SVGColourDropped   = "#e01b24" // the X where the link dropped a segment, and its reason
	SVGColourGap       = "#ece4f7" // the band of a compressed idle gap
	SVGColourLink      = "#fff0c2" // the band of a network change, and a silenced host's lifeline
)

// Limits that keep the diagram readable and its file small however large
// the run: past them WriteSVG leaves events out and says so in the image.
const (
	svgMaxEvents  = 1000 // rows drawn: the first svgMaxEvents-svgTailEvents and the last svgTailEvents
	svgTailEvents = 250  // the end of a run (the aborts) matters as much as its start
	svgMaxHosts   = 12   // lifelines; events on further hosts are counted, not drawn
	svgMaxText    = 140  // runes of one label; the full text is in its tooltip
)

// Layout, in user units (pixels at 100%).
const (
	svgMargin    = 16.0
	svgTimeW     = 92.0  // the time column
	svgMinGap    = 260.0 // between two lifelines
	svgMaxSide   = 640.0 // the widest label area beside a lifeline
	svgBoxH      = 24.0  // a host's name box
	svgGapH      = 54.0  // a compressed idle gap, whatever its length
	svgSwatchW   = 24.0  // a legend swatch: shorter than any arrow (see the screenshot test)
	svgFont      = 12.0
	svgSmallFont = 10.5
)

// WriteSVG writes events as a sequence diagram for people, a self-contained
// SVG image (no scripts, fonts or files) to open in a browser.
//
// Each host is a vertical lifeline, in order of first appearance (a segment
// to an address no host owns gets a lifeline named by that address). Time
// runs down and every event has a row of its own, its virtual time on the
// left edge; time is not to scale: a quiet stretch of GapThreshold or more
// becomes a fixed-height zig-zag break labelled with its length, so that a
// two-hour idle time and probes a second apart are both legible. A segment
// is an arrow from its sender's lifeline to its receiver's, labelled with
// its class, flags, seq, ack and length, in its class's colour (the
// SVGColour constants, also shown in a legend); a dropped segment's arrow
// stops halfway at a red X with the drop reason. Socket calls, state
// changes, keep-alive decisions and application errors are labels beside
// their host's lifeline (the first host's on its left, the others' on
// their right), worded as the text timeline words them; network changes
// are bands across the diagram, and a silenced host's lifeline is shaded
// until it is heard again. Hovering over an element shows its full
// description.
//
// Runs of more than 1000 events keep their first 750 and last 250, with a
// marker saying how many events, over which time, were left out; past 12
// hosts the further hosts' events are left out and counted in the header.
//
// The output is a deterministic function of events: equal traces give
// byte-identical SVG.
func WriteSVG(w io.Writer, events []Event) error {
	var c SVGCollector
	for _, e := range events {
		c.Add(e)
	}
	return c.Write(w)
}

// svgRowKind says what a row of the diagram holds.
type svgRowKind int

const (
	svgRowSegment svgRowKind = iota
	svgRowSide               // a label beside a lifeline
	svgRowLink               // a band across
	svgRowNote               // free text across
	svgRowGap                // a compressed idle gap
	svgRowElided             // events left out of a huge run
)

type svgRow struct {
	kind svgRowKind
	y, h float64
	host int // the lifeline (sender for a segment)
	t    string

	// Segments.
	to        int
	colour    string
	class     string // the class's short name, numbered for a probe
	detail    string // flags, seq, ack, len
	dropped   string // the drop reason, or "" when delivered
	dataClass string

	text, why string     // side labels, links, notes, gaps, elision
	fill      string     // a side label's colour
	boxed     bool       // a side label that stands out: an application error
	link      *LinkEvent // a link row's event
	lines     []string   // notes, wrapped
	title     string     // the tooltip: the timeline's full line
}

type svgDiagram struct {
	hosts     []string
	rows      []svgRow
	silences  []svgSpan // shaded stretches of lifelines
	leftOut   string    // what the header says was left out, if anything
	x         []float64 // each lifeline's x
	width     float64
	height    float64
	legendY   float64
	legendH   float64
	headerBox float64 // top of the host name boxes
	footerBox float64
}

type svgSpan struct {
	host     int
	from, to float64 // y
	open     bool    // not yet healed
}

// svgShortClass names a segment class as the timeline's explanation
// starts: "SYN", "keep-alive probe", "data".
func svgShortClass(class string) string {
	why, ok := classWhy[class]
	if !ok {
		return class
	}
	short, _, _ := strings.Cut(why, ":")
	return short
}

func svgSegmentColour(class string, handshake bool) string {
	switch class {
	case ClassSYN, ClassSYNACK:
		return SVGColourHandshake
	case ClassData:
		return SVGColourData
	case ClassKeepAliveProbe, ClassWindowProbe:
		return SVGColourProbe
	case ClassKeepAliveACK:
		return SVGColourProbeACK
	case ClassRetransmission:
		return SVGColourRetrans
	case ClassFIN, ClassRST:
		return SVGColourClose
	}
	if handshake {
		return SVGColourHandshake
	}
	return SVGColourACK
}

// textW estimates the width of s at a font size: generous for DejaVu and
// Liberation Sans, the fonts a headless browser here falls back on.
func textW(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * size * 0.6
}

// clip shortens s to n runes, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// wrap breaks s into lines of at most n runes, at spaces where it can.
func wrap(s string, n int) []string {
	var lines []string
	for utf8.RuneCountInString(s) > n {
		r := []rune(s)
		cut := n
		for i := n; i > n/2; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		lines = append(lines, strings.TrimRight(string(r[:cut]), " "))
		s = strings.TrimLeft(string(r[cut:]), " ")
	}
	return append(lines, s)
}

func newSVGDiagram(win svgWindow) *svgDiagram {
	events, head, elided := win.events, win.head, win.total-len(win.events)
	bd := &svgBuilder{d: &svgDiagram{}, hostIdx: map[string]int{}, probeNo: map[svgHostConn]int{},
		synAcked: map[string]bool{}, manyConns: svgManyConns(events)}
	d := bd.d
	var prev time.Duration
	for i, e := range events {
		h := e.Head()
		at := time.Duration(h.TNS)
		if i == head && elided > 0 {
			first, last := win.firstElided.Head(), win.lastElided.Head()
			d.rows = append(d.rows, svgRow{kind: svgRowElided, h: 62,
				text: fmt.Sprintf("… %d events left out, from %s to %s …", elided, first.T, last.T),
				why:  fmt.Sprintf("this diagram shows the first %d and the last %d of the run's %d events; --format jsonl has them all", head, svgTailEvents, win.total)})
		} else if i > 0 && at-prev >= GapThreshold {
			d.rows = append(d.rows, svgRow{kind: svgRowGap, h: svgGapH,
				text: fmt.Sprintf("%v idle", (at - prev).Round(time.Millisecond)),
				why:  fmt.Sprintf("nothing happens from %s to %s", FormatTime(prev), h.T)})
		}
		prev = at
		if r, ok := bd.row(e); ok {
			d.rows = append(d.rows, r)
		}
	}
	if bd.overflow > 0 {
		d.leftOut = fmt.Sprintf("%d events on %d further hosts are left out: the diagram draws at most %d lifelines", bd.overflow, bd.overflowHosts, svgMaxHosts)
	}
	d.layout()
	return d
}

// svgHostConn names one connection of one host.
type svgHostConn struct {
	host string
	conn int
}

// svgBuilder turns events into a diagram's rows, one at a time.
type svgBuilder struct {
	d                       *svgDiagram
	hostIdx                 map[string]int // lifelines by host; -1 for one past svgMaxHosts
	overflow, overflowHosts int            // events and hosts left out
	probeNo                 map[svgHostConn]int
	synAcked                map[string]bool // "dst>src" of each SYN-ACK: the next segment back may complete the handshake
	manyConns               bool
}

// lifeline returns the host's lifeline, in order of first appearance; a
// segment's receiver appears with it, so a server that only listens still
// has one. -1: past the most the diagram draws.
func (b *svgBuilder) lifeline(name string) int {
	if i, ok := b.hostIdx[name]; ok {
		return i
	}
	if len(b.d.hosts) == svgMaxHosts {
		b.overflowHosts++
		b.hostIdx[name] = -1
		return -1
	}
	b.hostIdx[name] = len(b.d.hosts)
	b.d.hosts = append(b.d.hosts, name)
	return len(b.d.hosts) - 1
}

// svgReceiver names the host a segment goes to: its To, or its address.
func svgReceiver(s *SegmentEvent) string {
	if s.To != "" {
		return s.To
	}
	addr := s.Dst
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = strings.Trim(addr[:i], "[]")
	}
	return addr
}

// row returns e's row; false for an event on a host past the lifelines
// drawn.
func (b *svgBuilder) row(e Event) (svgRow, bool) {
	h := e.Head()
	from := b.lifeline(h.Host)
	text, why := describe(e)
	r := svgRow{host: from, t: h.T, title: strings.TrimSpace(h.T + "  " + h.Host + "  " + text + "  " + why)}
	switch e := e.(type) {
	case *SegmentEvent:
		return b.segmentRow(e, r)
	case *LinkEvent:
		r.kind, r.h, r.text, r.link = svgRowLink, 26, text, e
		if from < 0 {
			b.overflow++
			return r, false
		}
	case *NoteEvent:
		r.kind, r.text = svgRowNote, text
	default:
		if from < 0 {
			b.overflow++
			return r, false
		}
		r.kind, r.text, r.why = svgRowSide, clip(text, svgMaxText), clip(why, svgMaxText)
		r.h, r.fill = 20, "#333333"
		switch e := e.(type) {
		case *KeepAliveEvent:
			r.fill = "#a34f00" // a darker probe orange: readable as text
			if e.Action == ActionProbe {
				b.probeNo[svgHostConn{h.Host, e.Conn}] = e.Probe
			}
		case *AppErrorEvent:
			r.fill, r.boxed = SVGColourDropped, true
			r.h += 4 // room for the box
		}
		if r.why != "" {
			r.h += 13
		}
	}
	return r, true
}

// segmentRow draws a segment as an arrow from its sender's lifeline to
// its receiver's.
func (b *svgBuilder) segmentRow(e *SegmentEvent, r svgRow) (svgRow, bool) {
	to := b.lifeline(svgReceiver(e))
	if r.host < 0 || to < 0 {
		b.overflow++
		return r, false
	}
	key := e.Src + ">" + e.Dst
	handshake := b.synAcked[key] && e.Class == ClassACK
	delete(b.synAcked, key)
	if e.Class == ClassSYNACK {
		b.synAcked[e.Dst+">"+e.Src] = true
	}
	r.kind, r.to, r.h = svgRowSegment, to, 32
	r.colour = svgSegmentColour(e.Class, handshake)
	r.class = svgShortClass(e.Class)
	if e.Class == ClassKeepAliveProbe {
		if n := b.probeNo[svgHostConn{e.Host, e.Conn}]; n > 0 {
			r.class += " " + strconv.Itoa(n)
		}
	}
	r.detail = fmt.Sprintf("%s seq=%d ack=%d len=%d", e.Flags, e.Seq, e.Ack, e.Len)
	if b.manyConns {
		// Ports tell the connections apart, as in a capture.
		r.detail += fmt.Sprintf("  %s → %s", svgPort(e.Src), svgPort(e.Dst))
	}
	r.dataClass = e.Class
	if e.Dropped {
		r.dropped = "DROPPED: " + e.DropReason
		r.h += 14
	}
	return r, true
}

// svgManyConns reports whether events hold segments of more than one
// connection.
func svgManyConns(events []Event) bool {
	var first [2]string
	for _, e := range events {
		if s, ok := e.(*SegmentEvent); ok {
			pair := [2]string{min(s.Src, s.Dst), max(s.Src, s.Dst)}
			if first[0] == "" {
				first = pair
			} else if pair != first {
				return true
			}
		}
	}
	return false
}

// svgPort returns the port of an ip:port address, or the address.
func svgPort(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// layout places lifelines and rows: widths from the labels, heights from
// the rows.
func (d *svgDiagram) layout() {
	n := len(d.hosts)
	side := make([]float64, n) // label area each lifeline needs
	arrow := 0.0               // the widest arrow label
	for _, r := range d.rows {
		switch r.kind {
		case svgRowSegment:
			arrow = max(arrow, textW(r.class+"  "+r.detail, svgFont), textW(r.dropped, svgSmallFont))
		case svgRowSide:
			side[r.host] = max(side[r.host], min(svgMaxSide, max(textW(r.text, svgFont), textW(r.why, svgSmallFont))+16))
		}
	}
	box := make([]float64, n)
	for i, h := range d.hosts {
		box[i] = textW(clip(h, 40), 13) + 20
	}
	gap := max(svgMinGap, arrow+48)
	d.x = make([]float64, n)
	x := svgMargin + svgTimeW
	for i := range n {
		if i == 0 {
			x += max(side[0], box[0]/2, 30)
		} else {
			g := gap
			if i-1 > 0 {
				g = max(g, side[i-1]+24) // the previous lifeline's labels sit in this gap
			}
			x += max(g, box[i-1]/2+box[i]/2+24)
		}
		d.x[i] = float64(int(x)) // whole pixels: crisp lines
	}
	right := x
	if n > 1 {
		right += max(side[n-1], box[n-1]/2)
	} else if n == 1 {
		right += box[0] / 2
	}
	d.width = max(right+svgMargin, 640)
	if n == 0 {
		d.width = 640
	}

	// Notes wrap to the width the lifelines give them.
	noteChars := max(40, int((d.width-2*svgMargin-svgTimeW)/(svgSmallFont*0.6+0.5)))
	for i := range d.rows {
		if r := &d.rows[i]; r.kind == svgRowNote {
			r.lines = wrap(r.text, noteChars)
			r.h = 8 + 14*float64(len(r.lines))
		}
	}

	// Header: title, subtitle, legend, host boxes.
	y := svgMargin + 40
	if d.leftOut != "" {
		y += 16
	}
	d.legendY = y
	d.legendH = 20 * float64(d.legendRows())
	y += d.legendH + 10
	d.headerBox = y
	y += svgBoxH + 10
	for i := range d.rows {
		d.rows[i].y = y
		y += d.rows[i].h
	}
	y += 10
	d.footerBox = y
	d.height = y + svgBoxH + svgMargin

	// Silenced hosts: shaded from the silence to a heal or the end.
	for _, r := range d.rows {
		if r.kind != svgRowLink {
			continue
		}
		switch {
		case r.link.Action == "silence":
			d.silences = append(d.silences, svgSpan{host: r.host, from: r.y + r.h/2, open: true})
		case r.link.Action == "heal" && r.link.Peer == "":
			for j := range d.silences {
				if s := &d.silences[j]; s.open && s.host == r.host {
					s.to, s.open = r.y+r.h/2, false
				}
			}
		}
	}
	for j := range d.silences {
		if s := &d.silences[j]; s.open {
			s.to = d.footerBox
		}
	}
}

// svgLegend is the key, in drawing order.
var svgLegend = []struct{ colour, label, kind string }{
	{SVGColourHandshake, "handshake (SYN, SYN-ACK, ACK)", "line"},
	{SVGColourData, "data", "line"},
	{SVGColourACK, "ACK", "line"},
	{SVGColourProbe, "keep-alive probe", "line"},
	{SVGColourProbeACK, "keep-alive ACK", "line"},
	{SVGColourRetrans, "retransmission", "line"},
	{SVGColourClose, "FIN / RST", "line"},
	{SVGColourDropped, "dropped by the link", "x"},
	{SVGColourGap, "idle gap, compressed", "band"},
	{SVGColourLink, "network change; a silent host", "band"},
}

// legendItemW is the room one legend entry takes.
func legendItemW(label string) float64 { return svgSwatchW + 8 + textW(label, svgSmallFont) + 18 }

func (d *svgDiagram) legendRows() int {
	rows, x := 1, 0.0
	for _, l := range svgLegend {
		w := legendItemW(l.label)
		if x > 0 && x+w > d.width-2*svgMargin {
			rows, x = rows+1, 0
		}
		x += w
	}
	return rows
}

type svgOut struct{ b *bytes.Buffer }

func (o svgOut) f(format string, args ...any) { fmt.Fprintf(o.b, format, args...) }

// svgNum formats a coordinate: one decimal is finer than a pixel.
func svgNum(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		s = "0"
	}
	return s
}

// svgEsc escapes text for XML content and attribute values (quotes and
// newlines included); characters XML cannot hold become U+FFFD.
func svgEsc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

func (d *svgDiagram) render(b *bytes.Buffer) {
	o := svgOut{b}
	W, H := svgNum(d.width), svgNum(d.height)
	o.f(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	o.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="%s">`+"\n", W, H, W, H, svgNum(svgFont))
	o.f("<title>kasim: sequence diagram of a run</title>\n")
	o.f(`<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", W, H)
	o.f(`<text x="%s" y="%s" font-size="16" font-weight="bold">kasim: sequence diagram</text>`+"\n", svgNum(svgMargin), svgNum(svgMargin+12))
	o.f(`<text x="%s" y="%s" font-size="%s" fill="#555555">virtual time runs down, one row per event; not to scale: quiet stretches of %v or more are cut short</text>`+"\n",
		svgNum(svgMargin), svgNum(svgMargin+30), svgNum(svgSmallFont), GapThreshold)
	if d.leftOut != "" {
		o.f(`<text x="%s" y="%s" font-size="%s" fill="%s">%s</text>`+"\n", svgNum(svgMargin), svgNum(svgMargin+46), svgNum(svgSmallFont), SVGColourDropped, svgEsc(d.leftOut))
	}
	d.renderLegend(o)

	left, right := svgMargin+svgTimeW-4, d.width-svgMargin
	// Bands first, lifelines over them, then everything else on top.
	o.f(`<g class="bands">` + "\n")
	for _, r := range d.rows {
		switch r.kind {
		case svgRowGap:
			o.f(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`+"\n", svgNum(left), svgNum(r.y+8), svgNum(right-left), svgNum(r.h-16), SVGColourGap)
		case svgRowLink:
			o.f(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`+"\n", svgNum(left), svgNum(r.y+3), svgNum(right-left), svgNum(r.h-6), SVGColourLink)
		case svgRowElided:
			o.f(`<rect x="%s" y="%s" width="%s" height="%s" fill="#eeeeee"/>`+"\n", svgNum(left), svgNum(r.y+6), svgNum(right-left), svgNum(r.h-12))
		}
	}
	for _, s := range d.silences {
		o.f(`<rect x="%s" y="%s" width="12" height="%s" fill="%s"/>`+"\n", svgNum(d.x[s.host]-6), svgNum(s.from), svgNum(s.to-s.from), SVGColourLink)
	}
	o.f("</g>\n")

	d.renderLifelines(o)
	for _, top := range []float64{d.headerBox, d.footerBox} {
		for i, h := range d.hosts {
			name := clip(h, 40)
			w := textW(name, 13) + 20
			o.f(`<g class="host"><title>%s</title><rect x="%s" y="%s" width="%s" height="%s" rx="4" fill="#f4f4f4" stroke="#333333"/>`,
				svgEsc(h), svgNum(d.x[i]-w/2), svgNum(top), svgNum(w), svgNum(svgBoxH))
			o.f(`<text x="%s" y="%s" text-anchor="middle" font-size="13" font-weight="bold">%s</text></g>`+"\n", svgNum(d.x[i]), svgNum(top+16.5), svgEsc(name))
		}
	}

	prevT := ""
	for _, r := range d.rows {
		d.renderRow(o, r, prevT)
		if r.t != "" {
			prevT = r.t
		}
	}
	o.f("</svg>\n")
}

func (d *svgDiagram) renderLegend(o svgOut) {
	o.f(`<g class="legend" font-size="%s">`+"\n", svgNum(svgSmallFont))
	x, y := svgMargin, d.legendY
	for _, l := range svgLegend {
		w := legendItemW(l.label)
		if x > svgMargin && x+w > d.width-svgMargin {
			x, y = svgMargin, y+20
		}
		my := y + 10
		switch l.kind {
		case "line":
			o.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"/>`, svgNum(x), svgNum(my), svgNum(x+svgSwatchW), svgNum(my), l.colour)
		case "x":
			cx := x + svgSwatchW/2
			o.f(`<path d="M%s %s l8 8 M%s %s l8 -8" stroke="%s" stroke-width="2.5"/>`, svgNum(cx-4), svgNum(my-4), svgNum(cx-4), svgNum(my+4), l.colour)
		case "band":
			o.f(`<rect x="%s" y="%s" width="%s" height="12" fill="%s" stroke="#cccccc"/>`, svgNum(x), svgNum(my-6), svgNum(svgSwatchW), l.colour)
		}
		o.f(`<text x="%s" y="%s">%s</text>`+"\n", svgNum(x+svgSwatchW+8), svgNum(my+4), svgEsc(l.label))
		x += w
	}
	o.f("</g>\n")
}

// renderLifelines draws each host's dashed vertical line, broken where an
// idle gap or an elision marker cuts the diagram.
func (d *svgDiagram) renderLifelines(o svgOut) {
	o.f(`<g class="lifelines" stroke="#9a9a9a" stroke-width="1" stroke-dasharray="4 3">` + "\n")
	top := d.headerBox + svgBoxH
	var breaks [][2]float64
	for _, r := range d.rows {
		if r.kind == svgRowGap || r.kind == svgRowElided {
			breaks = append(breaks, [2]float64{r.y + 14, r.y + r.h - 14})
		}
	}
	breaks = append(breaks, [2]float64{d.footerBox, d.footerBox})
	for _, x := range d.x {
		y := top
		for _, b := range breaks {
			o.f(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`, svgNum(x+0.5), svgNum(y), svgNum(x+0.5), svgNum(b[0]))
			y = b[1]
		}
		o.f("\n")
	}
	o.f("</g>\n")
}

func (d *svgDiagram) renderRow(o svgOut, r svgRow, prevT string) {
	left, right := svgMargin+svgTimeW-4, d.width-svgMargin
	timeAt := func(baseline float64) {
		if r.t == "" {
			return
		}
		fill := "#333333"
		if r.t == prevT {
			fill = "#b4b4b4" // the same instant as the row above
		}
		o.f(`<text x="%s" y="%s" font-family="DejaVu Sans Mono, Liberation Mono, monospace" font-size="11" fill="%s">%s</text>`,
			svgNum(svgMargin), svgNum(baseline), fill, svgEsc(r.t))
	}
	switch r.kind {
	case svgRowSegment:
		d.renderSegment(o, r, timeAt)
	case svgRowSide:
		d.renderSide(o, r, timeAt)
	case svgRowLink:
		o.f(`<g class="link"><title>%s</title>`, svgEsc(r.title))
		timeAt(r.y + 17)
		o.f(`<text x="%s" y="%s" text-anchor="middle" fill="#7a5600" font-weight="bold">%s</text></g>`+"\n", svgNum((left+right)/2), svgNum(r.y+17), svgEsc(r.text))
	case svgRowNote:
		o.f(`<g class="note"><title>%s</title>`, svgEsc(r.title))
		timeAt(r.y + 15)
		for i, l := range r.lines {
			o.f(`<text x="%s" y="%s" font-size="%s" font-style="italic" fill="#555555">%s</text>`, svgNum(left+4), svgNum(r.y+15+14*float64(i)), svgNum(svgSmallFont), svgEsc(l))
		}
		o.f("</g>\n")
	case svgRowGap, svgRowElided:
		class, stroke := "gap", "#6c4fa0"
		if r.kind == svgRowElided {
			class, stroke = "elided", "#888888"
		}
		o.f(`<g class="%s"><title>%s</title>`, class, svgEsc(r.why))
		for _, zy := range []float64{r.y + 10, r.y + r.h - 10} {
			var p strings.Builder
			fmt.Fprintf(&p, "M%s %s", svgNum(left), svgNum(zy))
			for x, up := left, true; x < right; x, up = x+8, !up {
				dy := 4.0
				if up {
					dy = -4
				}
				fmt.Fprintf(&p, " L%s %s", svgNum(min(x+8, right)), svgNum(zy+dy))
			}
			o.f(`<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, p.String(), stroke)
		}
		mid := r.y + r.h/2
		if r.kind == svgRowGap {
			o.f(`<text x="%s" y="%s" text-anchor="middle" font-weight="bold" fill="#4b3275">%s</text>`, svgNum((left+right)/2), svgNum(mid+4), svgEsc(r.text))
		} else {
			o.f(`<text x="%s" y="%s" text-anchor="middle" font-weight="bold" fill="#444444">%s</text>`, svgNum((left+right)/2), svgNum(mid-3), svgEsc(r.text))
			o.f(`<text x="%s" y="%s" text-anchor="middle" font-size="%s" fill="#555555">%s</text>`, svgNum((left+right)/2), svgNum(mid+12), svgNum(svgSmallFont), svgEsc(r.why))
		}
		o.f("</g>\n")
	}
}

// renderSegment draws a segment row: an arrow between two lifelines (a
// loop for a host talking to itself), cut short and crossed out when the
// segment was dropped.
func (d *svgDiagram) renderSegment(o svgOut, r svgRow, timeAt func(baseline float64)) {
	ay := r.y + 21 // whole pixels: a 2-wide stroke fills two pixel rows exactly
	x1, x2 := d.x[r.host], d.x[r.to]
	o.f(`<g class="segment" data-class="%s"><title>%s</title>`, svgEsc(r.dataClass), svgEsc(r.title))
	timeAt(ay + 4)
	dir := 1.0
	if x2 < x1 {
		dir = -1
	}
	mid := (x1 + x2) / 2
	if x1 == x2 {
		// A host talking to itself: a short loop to the right.
		o.f(`<path d="M%s %s h30 v8 h-24" fill="none" stroke="%s" stroke-width="2"/>`, svgNum(x1), svgNum(ay-4), r.colour)
		o.f(`<path d="M%s %s l7 -4 v8 z" fill="%s"/>`, svgNum(x1+1), svgNum(ay+4), r.colour)
		mid, x2 = x1+60, x1+120
	} else if r.dropped != "" {
		o.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"/>`, svgNum(x1), svgNum(ay), svgNum(mid), svgNum(ay), r.colour)
		o.f(`<path d="M%s %s l10 10 M%s %s l10 -10" stroke="%s" stroke-width="2.5"/>`, svgNum(mid-5), svgNum(ay-5), svgNum(mid-5), svgNum(ay+5), SVGColourDropped)
	} else {
		tip := x2 - dir
		o.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"/>`, svgNum(x1), svgNum(ay), svgNum(tip-dir*8), svgNum(ay), r.colour)
		o.f(`<path d="M%s %s l%s -5 v10 z" fill="%s"/>`, svgNum(tip), svgNum(ay), svgNum(-dir*10), r.colour)
	}
	o.f(`<text x="%s" y="%s" text-anchor="middle"><tspan fill="%s" font-weight="bold">%s</tspan><tspan fill="#333333">  %s</tspan></text>`,
		svgNum((x1+x2)/2), svgNum(ay-8), r.colour, svgEsc(r.class), svgEsc(r.detail))
	if r.dropped != "" {
		o.f(`<text x="%s" y="%s" text-anchor="middle" font-size="%s" fill="%s">%s</text>`, svgNum(mid), svgNum(ay+18), svgNum(svgSmallFont), SVGColourDropped, svgEsc(r.dropped))
	}
	o.f("</g>\n")
}

// renderSide draws a side row: a label beside one lifeline (an
// application's error boxed).
func (d *svgDiagram) renderSide(o svgOut, r svgRow, timeAt func(baseline float64)) {
	x := d.x[r.host]
	base := r.y + 14
	o.f(`<g class="label"><title>%s</title>`, svgEsc(r.title))
	timeAt(base)
	anchor, tx, tick := "start", x+10, x+7
	if r.host == 0 && len(d.hosts) > 1 || len(d.hosts) == 1 {
		anchor, tx, tick = "end", x-10, x-7
	}
	fill := r.fill
	o.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5"/>`, svgNum(x), svgNum(base-4), svgNum(tick), svgNum(base-4), fill)
	if r.boxed {
		w := max(textW(r.text, svgFont), textW(r.why, svgSmallFont)) + 8
		bx := tx - 4
		if anchor == "end" {
			bx = tx + 4 - w
		}
		o.f(`<rect x="%s" y="%s" width="%s" height="%s" rx="3" fill="#fdecec" stroke="%s"/>`, svgNum(bx), svgNum(r.y+1), svgNum(w), svgNum(r.h-3), SVGColourDropped)
	}
	o.f(`<text x="%s" y="%s" text-anchor="%s" fill="%s">%s</text>`, svgNum(tx), svgNum(base), anchor, fill, svgEsc(r.text))
	if r.why != "" {
		o.f(`<text x="%s" y="%s" text-anchor="%s" font-size="%s" fill="#6f6f6f">%s</text>`, svgNum(tx), svgNum(base+13), anchor, svgNum(svgSmallFont), svgEsc(r.why))
	}
	o.f("</g>\n")
}
