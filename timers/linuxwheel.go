package timers

import (
	"math/bits"
	"time"
)

// Linux's timer wheel constants (kernel/time/timer.c since 4.8).
const (
	nilNode       = -1 // end of a bucket's list
	locNone       = -1 // not pending
	lxLvlClkShift = 3  // each level is 8 times coarser than the one below
	lxLvlBits     = 6  // 64 buckets per level
	lxLvlSize     = 1 << lxLvlBits
	lxDepth       = 9 // LVL_DEPTH for HZ > 100 (8 for HZ <= 100)
	lxReady       = -2
)

// lxLvlStart is LVL_START(n): the smallest delta (jiffies) that goes to
// level n.
func lxLvlStart(n int) int64 { return (lxLvlSize - 1) << ((n - 1) * lxLvlClkShift) }

// LinuxWheel is a Queue that fires timers when Linux's timer wheel would:
// deadlines become jiffies (HZ per second), each timer goes to the level its
// distance calls for, 64 buckets per level, each level 8 times coarser, and
// fires when its bucket expires: rounded UP to the level's granularity, never
// early, often late. It does not cascade. With HZ=250 a 1 s timeout fires
// after 1.024 s and a 2 s one after 2.016 s, as on a real kernel.
//
// Timers expiring at the same jiffy fire as the kernel runs them: higher
// levels first, and within a bucket the most recently added first.
//
// LinuxWheel needs the current time to place a timer, as the kernel's timer
// base does: the Clock passes it through Advance.
type LinuxWheel struct {
	hz     int64
	now    int64 // ns
	clk    int64 // the timer base's clock, in jiffies
	occ    [lxDepth]uint64
	head   [lxDepth][lxLvlSize]int32
	expiry [lxDepth][lxLvlSize]int64 // jiffies, for occupied buckets
	nodes  []lxNode
	// ready holds the timers of the bucket(s) being expired, in the order
	// they fire; readyAt is their expiry (jiffies).
	ready   []ID
	readyAt int64
	count   int
	// next caches nextExpiry's answer while nextOK, as the kernel's
	// timer base caches next_expiry: scanning every occupied bucket at
	// each PopDue would cost a real wheel's tick nothing like it.
	next   int64
	nextOK bool

	fired           int
	lateSum, lateMx time.Duration
}

type lxNode struct {
	when       int64 // requested deadline, ns
	next, prev int32
	bucket     int16 // level*64+index, locNone, or lxReady
}

// NewLinuxWheel returns a Linux-style wheel ticking hz times a second (the
// kernel's CONFIG_HZ: 100, 250, 300 or 1000).
func NewLinuxWheel(hz int) *LinuxWheel {
	w := &LinuxWheel{hz: int64(hz)}
	for l := range w.head {
		for b := range w.head[l] {
			w.head[l][b] = nilNode
		}
	}
	return w
}

// jiffiesAt converts virtual nanoseconds to jiffies, rounding down: the
// jiffy counter at that time.
func (w *LinuxWheel) jiffiesAt(ns int64) int64 {
	hi, lo := bits.Mul64(uint64(ns), uint64(w.hz))
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	return int64(q)
}

// nsAt converts jiffies to virtual nanoseconds, rounding up: the first
// nanosecond of that jiffy.
func (w *LinuxWheel) nsAt(j int64) int64 {
	hi, lo := bits.Mul64(uint64(j), uint64(time.Second))
	q, r := bits.Div64(hi, lo, uint64(w.hz))
	if r != 0 {
		q++
	}
	return int64(q)
}

// Advance tells the wheel the current virtual time.
func (w *LinuxWheel) Advance(now int64) {
	if now > w.now {
		w.now = now
	}
}

func (w *LinuxWheel) node(id ID) *lxNode {
	for int(id) >= len(w.nodes) {
		w.nodes = append(w.nodes, lxNode{bucket: locNone, next: nilNode, prev: nilNode})
	}
	return &w.nodes[id]
}

// Push implements Queue.
func (w *LinuxWheel) Push(id ID, when int64) {
	n := w.node(id)
	n.when = when
	w.enqueue(id)
	w.count++
}

// Reschedule implements Queue.
func (w *LinuxWheel) Reschedule(id ID, when int64) {
	w.unlink(id)
	w.nodes[id].when = when
	w.enqueue(id)
}

// Remove implements Queue.
func (w *LinuxWheel) Remove(id ID) {
	w.unlink(id)
	w.count--
}

// Len implements Queue.
func (w *LinuxWheel) Len() int { return w.count }

// enqueue places a timer as the kernel's enqueue_timer does.
func (w *LinuxWheel) enqueue(id ID) {
	n := &w.nodes[id]
	w.forward()
	// The kernel's expiry: jiffies now, plus the timeout rounded up to
	// whole jiffies (msecs_to_jiffies rounds up).
	d := n.when - w.now
	if d < 0 {
		d = 0
	}
	expires := w.jiffiesAt(w.now) + w.jiffiesAt(d)
	if w.nsAt(w.jiffiesAt(d)) < d {
		expires++
	}
	level, idx, bucketExpiry := w.index(expires)
	b := level*lxLvlSize + idx
	// hlist_add_head: the newest timer first.
	n.bucket, n.prev, n.next = int16(b), nilNode, w.head[level][idx]
	if n.next != nilNode {
		w.nodes[n.next].prev = int32(id)
	}
	w.head[level][idx] = int32(id)
	if w.occ[level]&(1<<idx) != 0 && w.expiry[level][idx] != bucketExpiry {
		w.nextOK = false // a bucket's expiry changes: the earliest may be gone
	}
	w.occ[level] |= 1 << idx
	w.expiry[level][idx] = bucketExpiry
	if w.nextOK && bucketExpiry < w.next {
		w.next = bucketExpiry
	}
}

// Granularity returns the granularity of the level a timer armed d ahead
// lands in: how much later than d it may fire, by the jiffy phase it was
// armed at (4 ms for 200 ms at HZ=250, 32 ms for 400 ms, 256 ms for 3 s).
// A timer also waits for the next jiffy, one more 1/HZ.
func (w *LinuxWheel) Granularity(d time.Duration) time.Duration {
	delta := (int64(d)*w.hz + int64(time.Second) - 1) / int64(time.Second)
	return time.Duration(int64(1)<<(lxLevel(delta)*lxLvlClkShift)) * time.Second / time.Duration(w.hz)
}

// lxLevel is the level a timer delta jiffies ahead goes to: the first
// whose range holds it, the last for anything further.
func lxLevel(delta int64) int {
	for n := 1; n < lxDepth; n++ {
		if delta < lxLvlStart(n) {
			return n - 1
		}
	}
	return lxDepth - 1
}

// index is calc_wheel_index: the level and bucket for an expiry, and the
// bucket's own expiry, rounded up to the level's granularity.
func (w *LinuxWheel) index(expires int64) (level, idx int, bucketExpiry int64) {
	delta := expires - w.clk
	if delta < 0 {
		// Already due: the current bucket of level 0.
		return 0, int(w.clk & (lxLvlSize - 1)), w.clk
	}
	cutoff := lxLvlStart(lxDepth)
	if delta >= cutoff {
		expires = w.clk + cutoff - 1<<((lxDepth-1)*lxLvlClkShift) // WHEEL_TIMEOUT_MAX
	}
	level = lxLevel(delta)
	shift := uint(level * lxLvlClkShift)
	e := expires>>shift + 1
	return level, int(e & (lxLvlSize - 1)), e << shift
}

// nextExpiry is the earliest bucket expiry, in jiffies.
func (w *LinuxWheel) nextExpiry() (int64, bool) {
	if w.nextOK {
		return w.next, true
	}
	next, ok := w.scanExpiry()
	w.next, w.nextOK = next, ok
	return next, ok
}

// scanExpiry finds the earliest bucket expiry by looking at every
// occupied bucket.
func (w *LinuxWheel) scanExpiry() (int64, bool) {
	next, ok := int64(0), false
	for l := range w.occ {
		for m := w.occ[l]; m != 0; m &= m - 1 {
			if e := w.expiry[l][bits.TrailingZeros64(m)]; !ok || e < next {
				next, ok = e, true
			}
		}
	}
	return next, ok
}

// forward is forward_timer_base: move the base clock up to now, but never
// past a pending bucket.
func (w *LinuxWheel) forward() {
	jnow := w.jiffiesAt(w.now)
	if jnow <= w.clk {
		return
	}
	if next, ok := w.nextExpiry(); ok && next < jnow {
		if next > w.clk {
			w.clk = next
		}
		return
	}
	w.clk = jnow
}

func (w *LinuxWheel) unlink(id ID) {
	n := &w.nodes[id]
	if n.bucket == lxReady {
		for i, r := range w.ready {
			if r == id {
				w.ready = append(w.ready[:i], w.ready[i+1:]...)
				break
			}
		}
	} else if n.bucket >= 0 {
		level, idx := int(n.bucket)/lxLvlSize, int(n.bucket)%lxLvlSize
		if n.prev == nilNode {
			w.head[level][idx] = n.next
		} else {
			w.nodes[n.prev].next = n.next
		}
		if n.next != nilNode {
			w.nodes[n.next].prev = n.prev
		}
		if w.head[level][idx] == nilNode {
			w.occ[level] &^= 1 << idx
			if w.expiry[level][idx] == w.next {
				w.nextOK = false // perhaps the earliest bucket
			}
		}
	}
	n.bucket, n.next, n.prev = locNone, nilNode, nilNode
}

// Peek implements Queue: the time the next bucket expires.
func (w *LinuxWheel) Peek() (int64, bool) {
	if len(w.ready) > 0 {
		return w.nsAt(w.readyAt), true
	}
	next, ok := w.nextExpiry()
	if !ok {
		return 0, false
	}
	return w.nsAt(next), true
}

// PopDue implements Queue. The deadline it returns is the bucket's expiry,
// when the timer fires, not the one it asked for.
func (w *LinuxWheel) PopDue(now int64) (ID, int64, bool) {
	w.Advance(now)
	if len(w.ready) == 0 {
		next, ok := w.nextExpiry()
		if !ok || w.nsAt(next) > now {
			return 0, 0, false
		}
		w.collect(next)
	}
	id := w.ready[0]
	w.ready = w.ready[1:]
	n := &w.nodes[id]
	n.bucket = locNone
	w.count--
	at := w.nsAt(w.readyAt)
	late := time.Duration(at - n.when)
	w.fired++
	w.lateSum += late
	w.lateMx = max(w.lateMx, late)
	return id, at, true
}

// collect moves every bucket expiring at e to the ready list, in the order
// __run_timers expires them: higher levels first, each bucket newest first.
// The base clock then stands one past e, as it does while timers run.
func (w *LinuxWheel) collect(e int64) {
	w.readyAt = e
	for l := lxDepth - 1; l >= 0; l-- {
		for m := w.occ[l]; m != 0; m &= m - 1 {
			idx := bits.TrailingZeros64(m)
			if w.expiry[l][idx] != e {
				continue
			}
			for id := w.head[l][idx]; id != nilNode; {
				next := w.nodes[id].next
				w.nodes[id].bucket, w.nodes[id].next, w.nodes[id].prev = lxReady, nilNode, nilNode
				w.ready = append(w.ready, ID(id))
				id = next
			}
			w.head[l][idx] = nilNode
			w.occ[l] &^= 1 << idx
		}
	}
	w.nextOK = false
	w.clk = e + 1
}

// Lateness reports how late timers fired, on average and at most, against
// the deadlines they asked for.
func (w *LinuxWheel) Lateness() (mean, most time.Duration, fired int) {
	if w.fired > 0 {
		mean = w.lateSum / time.Duration(w.fired)
	}
	return mean, w.lateMx, w.fired
}
