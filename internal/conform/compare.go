package conform

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"kasim/sim"
	"kasim/stack"
)

// item is one event of the subject's keep-alive story.
type item struct {
	key   string // "keepalive-probe #2", "rst #1", "recv error"
	shape string
	// at is the time since the event it is timed from: the last segment
	// the kernel received (fromRecv), or its last probe.
	at       time.Duration
	fromRecv bool
	// untimed: only the shape counts (a failed option call: when the
	// live run made it is up to the machine, not the stack).
	untimed bool
	// timer: it happens when a timer armed at the item before fires (a
	// retransmission, the give-up after one), which a kernel's timer
	// wheel rounds by its phase.
	timer bool
	// abs is when it happened; since, if set, the key of the item it is
	// timed from instead of the one before: a give-up by TCP_USER_TIMEOUT
	// counts from the first retransmission by the timer, which the
	// simulation's give-up event names (sinceFirstRetransmission).
	abs   time.Duration
	since string
	// fromAbs is when the item it is timed from happened, unless it is
	// timed from a receive.
	fromAbs time.Duration
	// armed is how long before it the timer that made it was armed: at,
	// unless it is timed from since.
	armed time.Duration
}

// isAppError reports whether a story item's key is an error the
// application saw (as opposed to a segment).
func isAppError(key string) bool { return strings.HasSuffix(key, " error") }

// optionCalls are the calls whose failures are part of the story: the
// ones that set keep-alive up, in either API.
var optionCalls = []string{"setsockopt", "getsockopt", "WSAIoctl"}

// story picks out of a trace what the comparison holds the two sides to:
// the subject's (the stack under test's) keep-alive probes, retransmissions
// and resets (their shape) and the errors its application saw, each timed
// from what the rules time it from: the first probe after a receive from
// that receive, a later probe from the probe before, a retransmission
// from the one before (the first from the data it repeats), the reset and
// the error from the last probe or retransmission. So the comparison does not depend on when the
// live run managed to make its calls. subject and tester are the
// scenario's names for its two hosts (Roles).
//
// A trace times a segment when it is sent, and the subject receives the
// tester's latency later: the scenario's latency in the simulation, next
// to nothing live, where the lab's link is a veth pair or a TAP device and
// segments are timed at the tester's end of it.
func story(events []sim.Event, subject, tester string, latency time.Duration) []item {
	var out []item
	n := map[string]int{}
	var lastRecv, lastItem time.Duration
	var arrivals []time.Duration // of the tester's segments, not yet received by the subject
	afterTimer, received := false, false
	since := ""
	late := lateAckCopies(events, subject, tester)
	for i, e := range events {
		if late[i] {
			continue
		}
		h := e.Head()
		at := time.Duration(h.TNS)
		for len(arrivals) > 0 && arrivals[0] <= at {
			lastRecv, arrivals, received = arrivals[0], arrivals[1:], true
		}
		if s, ok := e.(*sim.SegmentEvent); ok && h.Host == tester && !s.Dropped {
			if latency == 0 {
				lastRecv, received = at, true
			} else {
				arrivals = append(arrivals, at+latency)
			}
			continue
		}
		if h.Host != subject {
			continue
		}
		var it item
		switch e := e.(type) {
		case *sim.SegmentEvent:
			if e.Class == sim.ClassData || e.Class == sim.ClassFIN || e.Class == sim.ClassSYN || e.Class == sim.ClassSYNACK {
				// What a retransmission repeats: the first is timed
				// from it.
				lastItem = at
				continue
			}
			if e.Class != sim.ClassKeepAliveProbe && e.Class != sim.ClassRST && e.Class != sim.ClassRetransmission && e.Class != sim.ClassWindowProbe {
				continue
			}
			n[e.Class]++
			it = item{key: fmt.Sprintf("%s #%d", e.Class, n[e.Class]),
				shape: fmt.Sprintf("%s seq=%d ack=%d len=%d", e.Flags, e.Seq, e.Ack, e.Len)}
			if e.Class == sim.ClassWindowProbe {
				// How much went before the window closed is the
				// tester's receive buffer and the path's MSS, not the
				// profile: the probe's place is SND.NXT-1 either way
				// (its class says so).
				it.shape = fmt.Sprintf("%s seq=SND.NXT-1 ack=%d len=%d", e.Flags, e.Ack, e.Len)
			}
		case *sim.SockOptEvent:
			if e.Error == "" || !slices.Contains(optionCalls, e.Call) {
				continue
			}
			n["option error"]++
			out = append(out, item{key: fmt.Sprintf("option error #%d", n["option error"]),
				shape: fmt.Sprintf("%s %s: %s", e.Call, e.Opt, e.Error), untimed: true})
			continue
		case *sim.AppErrorEvent:
			key := e.Op + " error"
			if n[key] > 0 {
				continue // the first error is the one keep-alive caused
			}
			n[key]++
			it = item{key: key, shape: e.Error, since: since}
		case *sim.GiveUpEvent:
			since = sinceFirstRetransmission(e, out)
			continue
		default:
			continue
		}
		windowProbe := strings.HasPrefix(it.key, sim.ClassWindowProbe)
		retransmission := strings.HasPrefix(it.key, sim.ClassRetransmission)
		// An error after a retransmission or a window probe comes when
		// the timer that would have sent the next one fires instead.
		it.timer = retransmission || windowProbe || (isAppError(it.key) && afterTimer)
		it.abs = at
		it.at, it.fromRecv = at-lastItem, true
		if received && lastRecv >= lastItem {
			it.at = at - lastRecv
		} else {
			it.fromRecv, it.fromAbs = false, lastItem
		}
		afterTimer = retransmission || windowProbe
		if strings.HasPrefix(it.key, sim.ClassKeepAliveProbe) || afterTimer {
			// The reset and the error come at the same instant, in either
			// order on a live run: both are timed from the last probe, or
			// the last retransmission; a retransmission from the one
			// before.
			lastItem = at
		}
		out = append(out, it)
	}
	return out
}

// lateAckCopies marks the subject's retransmissions that repeat a segment
// which reached the tester and which the tester acknowledged only after
// the copy went, at most loadSlack after the original: a tail loss probe
// (2 SRTT plus 2 jiffies: milliseconds on the lab's link) fired because a
// loaded machine ran the tester late, not because anything was lost. The
// simulated tester answers in a link's latency, so no model sends one;
// the story leaves them out on both sides, and numbers the
// retransmissions after them as if they had not happened (CI once saw a
// Linux kernel's copy 4 ms after data the tester acknowledged 5 ms late).
func lateAckCopies(events []sim.Event, subject, tester string) map[int]bool {
	late := map[int]bool{}
	for i, e := range events {
		c, ok := e.(*sim.SegmentEvent)
		if !ok || c.Host != subject || c.Class != sim.ClassRetransmission {
			continue
		}
		end := c.Seq + uint32(c.Len)
		if strings.ContainsAny(c.Flags, "SF") {
			end++
		}
		var original *sim.SegmentEvent
		for _, p := range events[:i] {
			if s, ok := p.(*sim.SegmentEvent); ok && s.Host == subject && s.Seq == c.Seq && s.Class != sim.ClassRetransmission && (s.Len > 0 || strings.ContainsAny(s.Flags, "SF")) {
				original = s
				break
			}
		}
		if original == nil || original.Dropped || ackedBy(events[:i], tester, end) != nil {
			continue
		}
		if a := ackedBy(events[i+1:], tester, end); a != nil && !a.Dropped && a.TNS-original.TNS <= int64(loadSlack) {
			late[i] = true
		}
	}
	return late
}

// ackedBy returns the first of the tester's segments in events that
// acknowledges everything before end, or nil.
func ackedBy(events []sim.Event, tester string, end uint32) *sim.SegmentEvent {
	for _, e := range events {
		if s, ok := e.(*sim.SegmentEvent); ok && s.Host == tester && strings.Contains(s.Flags, "A") && int32(s.Ack-end) >= 0 {
			return s
		}
	}
	return nil
}

// sinceFirstRetransmission returns the key of the retransmission a
// give-up by TCP_USER_TIMEOUT counted from (its first by the timer), if
// the give-up says and it is in the story so far; a give-up by the
// retransmission limit is judged at a timeout, and so timed from the send
// before, as any timer.
//
// A give-up by TCP_USER_TIMEOUT while the peer's window is closed counts
// from the first window probe in the same way.
func sinceFirstRetransmission(e *sim.GiveUpEvent, sofar []item) string {
	class, first := sim.ClassRetransmission, e.FirstRetransmissionNS
	if e.WindowProbes > 0 {
		class, first = sim.ClassWindowProbe, e.FirstWindowProbeNS
	}
	if e.Rule != string(stack.GaveUpUserTimeout) || first == 0 {
		return ""
	}
	for _, it := range sofar {
		if strings.HasPrefix(it.key, class) && it.abs == time.Duration(first) {
			return it.key
		}
	}
	return ""
}

// retimed returns it timed from the item named by its since, in the same
// story, if that item is there.
func retimed(it item, byKey map[string]item) item {
	it.armed = it.at
	if from, ok := byKey[it.since]; ok && it.since != "" {
		it.at, it.fromRecv = it.abs-from.abs, false
	}
	return it
}

// loadSlack is how much later than allowed a busy machine has been seen to
// make a live event: a timer softirq run late (an RST 5.3 ms after a
// punctual probe in CI), an application woken late (8 ms), with room to
// spare. A row off by more is a difference in the model, however busy the
// machine: it is not OffInTime, so neither a re-measurement nor the "only
// times differ" hint excuses it.
const loadSlack = 25 * time.Millisecond

// beyondLoad ends the explanation of a row whose times differ by more than
// loadSlack beyond what is allowed.
const beyondLoad = "and more than a busy machine explains"

// compare lines up the simulated story with each live run's, by key, and
// says where they agree: the same shape in every run, and the simulated
// time within the live runs' spread (or tol, if larger) of their median.
//
// who names the live side in explanations: "the kernel", or the stack a
// driver runs. A scenario in which neither side probes, resets or fails
// gets one row saying so, which agrees: the stack under test did nothing
// the profile does not.
//
// granule is how late the profile's timers may fire by their phase
// (profile.Profile.Granularity): a row timed by a timer armed at the row
// before is allowed that much.
//
// end, if set, is when the live runs ended (the scenario's duration): an
// event the profile has and no live run has agrees if, counted from the
// last event before it that the live run has, it would have come after
// that end, so a kernel whose timers ran late on a loaded machine fitting
// one probe fewer into the scenario is not a difference.
func compare(simStory []item, lives [][]sim.Event, subject, tester string, tol, phase, appTol time.Duration, granule func(time.Duration) time.Duration, who string, end time.Duration) []Row {
	liveStories := make([]map[string]item, len(lives))
	rtt := liveRTT(lives, subject, tester)
	var keys []string
	for _, it := range simStory {
		keys = append(keys, it.key)
	}
	for i, ev := range lives {
		liveStories[i] = map[string]item{}
		for _, it := range story(ev, subject, tester, 0) {
			liveStories[i][it.key] = it
			if !slices.Contains(keys, it.key) {
				keys = append(keys, it.key)
			}
		}
	}
	simByKey := map[string]item{}
	for _, it := range simStory {
		simByKey[it.key] = it
	}
	offGrid := offGridAfter(simStory, granule)
	var rows []Row
	for _, k := range keys {
		row := Row{What: k}
		s, inSim := simByKey[k]
		if inSim {
			s = retimed(s, simByKey)
			row.Sim, row.SimAt, row.From, row.Untimed = s.shape, s.at, s.from(), s.untimed
		}
		var times []time.Duration
		shapes := map[string]bool{}
		missing := 0
		for _, ls := range liveStories {
			it, ok := ls[k]
			if !ok {
				missing++
				continue
			}
			if inSim && s.since != "" {
				it.since = s.since // the live trace does not say; the simulation does
				it = retimed(it, ls)
			}
			times = append(times, it.at)
			shapes[it.shape] = true
			row.Live = it.shape
			if !inSim {
				row.From, row.Untimed = it.from(), it.untimed
			}
		}
		if len(times) > 0 {
			slices.Sort(times)
			row.LiveAt = median(times)
			row.Spread = times[len(times)-1] - times[0]
		}
		diff := row.SimAt - row.LiveAt
		if diff < 0 {
			diff = -diff
		}
		allowed := max(row.Spread, tol)
		if inSim {
			allowed = max(allowed, s.allowance(phase, granule, rtt), offGrid[k])
		}
		if isAppError(k) {
			// An application's error is timed when the helper or the
			// program got to run after the kernel woke it: user space,
			// milliseconds late on a busy machine (8 ms seen in CI).
			allowed = max(allowed, appTol)
		}
		switch {
		case !inSim:
			row.Explanation = who + " did this; the profile does not"
		case missing == len(liveStories) && pastLiveEnd(k, simStory, liveStories, end):
			row.Agree = true
			row.Explanation = "after the live run's end, counted from where " + who + " was"
		case missing == len(liveStories):
			row.Explanation = "the profile does this; " + who + " does not"
		case missing > 0:
			row.Explanation = fmt.Sprintf("in %d of %d live runs only", len(liveStories)-missing, len(liveStories))
		case len(shapes) > 1:
			row.Explanation = who + "'s own runs differ in shape"
		case row.Sim != row.Live:
			row.Explanation = "different shape"
		case row.Untimed:
			row.Agree = true
			row.Explanation = "the same"
		case diff > allowed+loadSlack:
			row.Explanation = fmt.Sprintf("%v apart, more than %v, %s", diff.Round(time.Microsecond), allowed.Round(time.Microsecond), beyondLoad)
		case diff > allowed:
			row.OffInTime = true
			row.Explanation = fmt.Sprintf("%v apart, more than %v", diff.Round(time.Microsecond), allowed.Round(time.Microsecond))
		default:
			row.Agree = true
			row.Explanation = fmt.Sprintf("%v apart, within %v", diff.Round(time.Microsecond), allowed.Round(time.Microsecond))
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 && len(lives) > 0 {
		rows = append(rows, Row{What: "keep-alive", Sim: "nothing", Live: "nothing", Untimed: true, Agree: true,
			Explanation: "neither side probes, resets or fails within the scenario"})
	}
	return rows
}

// allowance is how far a live stack's timing of the item may be off by
// its timers' phase alone: timed from a receive, the kernel's jiffy phase
// and wheel rounding move the timeout by up to a granule and a jiffy
// (Options.Phase); timed by a timer armed at the item before, by the
// granule of the level its timeout lands in, and by what the live round
// trip rtt adds to it: Linux's RTO is its smoothed RTT plus 200 ms,
// backed off from there, and the lab's round trip is what the tester
// makes it (milliseconds on a busy machine, where the scenario may say
// 100 µs), so a timeout armed d ahead moves by d x rtt / 200 ms.
func (it item) allowance(phase time.Duration, granule func(time.Duration) time.Duration, rtt time.Duration) time.Duration {
	var a time.Duration
	if it.fromRecv {
		a = phase
	}
	if it.timer && granule != nil {
		a = max(a, granule(it.armed)+time.Duration(float64(it.armed)*float64(rtt)/float64(rtoMin)))
	}
	return a
}

// offGrid is what a keep-alive item timed from the item before may be
// allowed by the live kernel's jiffy phase: a timer re-armed at a probe
// that fired off its wheel's grid (at once, after an option set) lands
// where that phase puts it, anywhere in a granule, where one re-armed at a
// probe on the grid lands on it again, on either side, and is held to the
// tolerance.
func (it item) offGrid(granule func(time.Duration) time.Duration) time.Duration {
	if it.fromRecv || it.timer || it.since != "" || granule == nil {
		return 0
	}
	jiffy := granule(0) / 2
	if g := granule(it.at) - jiffy; g > jiffy && it.fromAbs%g != 0 {
		return g + jiffy
	}
	return 0
}

// offGridAfter returns, by key, what offGrid allows the simulated story's
// items, each also allowed what the item it is timed from was: an item
// that came at a time the call before it set (a probe at once, the end
// when the count is already reached) is timed from a probe the live
// kernel sent where its own phase put it.
func offGridAfter(simStory []item, granule func(time.Duration) time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for i, it := range simStory {
		a := it.offGrid(granule)
		for j := i - 1; j >= 0 && !it.fromRecv && it.since == ""; j-- {
			if from := simStory[j]; from.abs == it.fromAbs {
				a = max(a, from.offGrid(granule))
				break
			}
		}
		if a > 0 {
			out[it.key] = a
		}
	}
	return out
}

// pastLiveEnd reports whether the simulated item key would have come
// after end in every live run, none of which ended its connection (a
// reset, an application's error): timed from the last item before it in the
// simulated story that the live run has too, as far after that one as in
// the simulation.
func pastLiveEnd(key string, simStory []item, liveStories []map[string]item, end time.Duration) bool {
	i := slices.IndexFunc(simStory, func(it item) bool { return it.key == key })
	if end <= 0 || i < 0 || len(liveStories) == 0 {
		return false
	}
	for _, ls := range liveStories {
		for k := range ls {
			if isAppError(k) || strings.HasPrefix(k, sim.ClassRST) {
				return false // the live connection ended: the scenario's end did not cut it off
			}
		}
		j := i - 1
		for j >= 0 && ls[simStory[j].key].key == "" {
			j--
		}
		if j < 0 || ls[simStory[j].key].abs+simStory[i].abs-simStory[j].abs <= end {
			return false
		}
	}
	return true
}

// rtoMin is Linux's TCP_RTO_MIN, which its RTO adds the smoothed RTT to.
const rtoMin = 200 * time.Millisecond

// liveRTT is the longest round trip of the live runs' handshakes, from
// the subject's last SYN that reached the tester to the tester's SYN-ACK,
// as the tester's end of the link saw them: the sample the stack under
// test's RTT estimate starts from. 0 without a handshake.
func liveRTT(lives [][]sim.Event, subject, tester string) time.Duration {
	var most time.Duration
	for _, events := range lives {
		syn := time.Duration(-1) // the SYN the SYN-ACK answers: the last before it
		for _, e := range events {
			seg, ok := e.(*sim.SegmentEvent)
			if !ok {
				continue
			}
			if seg.Host == subject && seg.Flags == "S" && !seg.Dropped {
				syn = time.Duration(seg.TNS)
			}
			if seg.Host == tester && seg.Class == sim.ClassSYNACK {
				if syn >= 0 && !seg.Dropped {
					most = max(most, time.Duration(seg.TNS)-syn)
				}
				break
			}
		}
	}
	return most
}

// from says what the item's time counts from; an untimed item's from
// nothing.
func (it item) from() string {
	if it.untimed {
		return ""
	}
	switch {
	case it.since != "":
		return it.since
	case it.fromRecv:
		return "last receive"
	case it.timer:
		return "last send"
	}
	return "last probe"
}

// median of sorted times; of an even number, the mean of the middle two,
// so that with two runs neither decides alone.
func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return sorted[n/2-1] + (sorted[n/2]-sorted[n/2-1])/2
}
