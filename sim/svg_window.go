package sim

// What a diagram draws of a trace, gathered as the run goes.

import (
	"bytes"
	"io"
	"slices"
)

// SVGCollector gathers a diagram's events as a run goes (Builtin.Events),
// keeping only what the diagram draws: the first svgMaxEvents-svgTailEvents
// events, the last svgTailEvents (and the one before them), and a count.
// Write gives what WriteSVG gives for the whole trace.
type SVGCollector struct {
	head        []Event
	firstElided Event   // the event after the head, once there is one
	tail        []Event // a ring of the last svgTailEvents+1 events after the head
	next        int     // the ring's oldest slot, once full
	n           int     // events added
}

// Add adds the run's next event.
func (c *SVGCollector) Add(e Event) {
	c.n++
	if len(c.head) < svgMaxEvents-svgTailEvents {
		c.head = append(c.head, e)
		return
	}
	if c.firstElided == nil {
		c.firstElided = e
	}
	if len(c.tail) < svgTailEvents+1 {
		c.tail = append(c.tail, e)
		return
	}
	c.tail[c.next] = e
	c.next = (c.next + 1) % len(c.tail)
}

// Write writes the diagram of the events added.
func (c *SVGCollector) Write(w io.Writer) error {
	d := newSVGDiagram(c.window())
	var b bytes.Buffer
	d.render(&b)
	_, err := w.Write(b.Bytes())
	return err
}

// svgWindow is what a diagram draws of a trace: its events (all of them,
// or the first and last of a long one), and for a long one how many are
// left out and the first and last of those.
type svgWindow struct {
	events                  []Event
	total, head             int // events in the trace; drawn before the cut
	firstElided, lastElided Event
}

func (c *SVGCollector) window() svgWindow {
	tail := append(slices.Clone(c.tail[c.next:]), c.tail[:c.next]...) // oldest first
	w := svgWindow{total: c.n, head: c.n}
	if c.n <= svgMaxEvents {
		w.events = append(slices.Clone(c.head), tail...)
		return w
	}
	w.head = svgMaxEvents - svgTailEvents
	w.events = append(slices.Clone(c.head), tail[1:]...)
	w.firstElided, w.lastElided = c.firstElided, tail[0]
	return w
}
