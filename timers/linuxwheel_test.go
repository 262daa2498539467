package timers

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The spec's Linux section: with HZ=250, 1 s (250 jiffies) becomes 256
// jiffies = 1.024 s, and 2 s becomes 2.016 s.
func TestLinuxWheelRoundsAsTheKernelDoes(t *testing.T) {
	for _, tc := range []struct {
		hz   int
		d    time.Duration
		want time.Duration
	}{
		// 250 jiffies: level 1 (63 <= d < 504), ((250>>3)+1)<<3 = 256.
		{250, time.Second, 1024 * time.Millisecond},
		// 500 jiffies: level 1, ((500>>3)+1)<<3 = 504.
		{250, 2 * time.Second, 2016 * time.Millisecond},
		// 2.5 jiffies round up to 3: level 0, (3>>0)+1 = 4 jiffies.
		{250, 10 * time.Millisecond, 16 * time.Millisecond},
		// 1000 jiffies: level 2 (504 <= d < 4032), ((1000>>6)+1)<<6 = 1024.
		{1000, time.Second, 1024 * time.Millisecond},
		// 1,800,000 jiffies: level 5, ((1800000>>15)+1)<<15 = 1,802,240
		// jiffies: a 2 h keep-alive idle time fires 8.96 s late.
		{250, 2 * time.Hour, 2*time.Hour + 8960*time.Millisecond},
	} {
		w := NewLinuxWheel(tc.hz)
		w.Push(1, int64(tc.d))
		if got, _ := w.Peek(); time.Duration(got) != tc.want {
			t.Errorf("HZ=%d, %v: fires at %v, want %v", tc.hz, tc.d, time.Duration(got), tc.want)
		}
	}
}

// A timer re-armed from its own callback, as keep-alive's interval timer
// is, fires every 1.024 s at HZ=250: the spacing of a real kernel's probes.
func TestLinuxWheelRearmSpacing(t *testing.T) {
	c := NewClock(NewLinuxWheel(250), time.Time{})
	fires := rearmed(c, time.Second, time.Second, 5)
	if len(fires) != 5 {
		t.Fatalf("fired %d times", len(fires))
	}
	for i, f := range fires {
		if want := time.Duration(i+1) * 1024 * time.Millisecond; f != want {
			t.Errorf("fire %d at %v, want %v", i+1, f, want)
		}
	}
}

// Never early, and late by less than the level's granularity plus a jiffy.
func TestLinuxWheelNeverEarly(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	w := NewLinuxWheel(250)
	c := NewClock(w, time.Time{})
	type want struct{ at, d time.Duration }
	fired := 0
	for i := 0; i < 5000; i++ {
		d := time.Duration(r.Int64N(int64(10 * time.Minute)))
		start := c.Elapsed()
		c.AfterFunc(d, func() {
			fired++
			late := c.Elapsed() - (start + d)
			// Level granularity grows 8x per level; the bound is the
			// granularity of the level a delta this long lands on.
			if late < 0 || late > d/7+8*time.Millisecond {
				t.Errorf("timer for %v fired %v late", d, late)
			}
		})
		if i%100 == 0 {
			next, _ := c.NextDeadline()
			c.AdvanceTo(next)
			c.FireDue(1 << 20)
		}
	}
	for {
		next, ok := c.NextDeadline()
		if !ok {
			break
		}
		c.AdvanceTo(next)
		c.FireDue(1 << 20)
	}
	mean, most, n := w.Lateness()
	if n != 5000 || fired != 5000 || mean <= 0 || most <= mean {
		t.Errorf("fired %d (%d reported), lateness mean %v, max %v", fired, n, mean, most)
	}
}

// At one expiry the kernel runs higher levels first, and each bucket
// newest first.
func TestLinuxWheelExpiryOrder(t *testing.T) {
	w := NewLinuxWheel(1000)
	// 1, 2, 3 share a level-0 bucket (delta 10 jiffies -> expiry 11);
	// 4 asks for 8 ms, level 0 too, expiry 9 (fires first).
	w.Push(1, int64(10*time.Millisecond))
	w.Push(2, int64(10*time.Millisecond))
	w.Push(3, int64(10*time.Millisecond))
	w.Push(4, int64(8*time.Millisecond))
	var got []ID
	for {
		id, _, ok := w.PopDue(int64(time.Second))
		if !ok {
			break
		}
		got = append(got, id)
	}
	if len(got) != 4 || got[0] != 4 || got[1] != 3 || got[2] != 2 || got[3] != 1 {
		t.Errorf("order %v, want [4 3 2 1]", got)
	}
}

func TestLinuxWheelRemoveAndReschedule(t *testing.T) {
	w := NewLinuxWheel(250)
	w.Push(1, int64(time.Second))
	w.Push(2, int64(time.Second))
	w.Remove(1)
	w.Reschedule(2, int64(2*time.Second))
	if got, _ := w.Peek(); time.Duration(got) != 2016*time.Millisecond || w.Len() != 1 {
		t.Errorf("after remove/reschedule: next %v, len %d", time.Duration(got), w.Len())
	}
	// Removing a timer already collected for expiry must work too.
	w.Push(3, int64(2*time.Second))
	id, _, _ := w.PopDue(int64(3 * time.Second))
	other := ID(5 - id)
	w.Remove(other)
	if _, _, ok := w.PopDue(int64(3 * time.Second)); ok || w.Len() != 0 {
		t.Errorf("a removed ready timer still fired, or len %d", w.Len())
	}
}

// TestLinuxWheelGranularity: the granularity of the level a timeout lands
// in, as calc_wheel_index places it: at HZ=250 a 200 ms timeout is in
// level 0 (one jiffy), 400 ms in level 1 (8 jiffies), 3 s in level 2 (64).
func TestLinuxWheelGranularity(t *testing.T) {
	w := NewLinuxWheel(250)
	for _, c := range []struct{ d, want time.Duration }{
		{200 * time.Millisecond, 4 * time.Millisecond},
		{252 * time.Millisecond, 32 * time.Millisecond},
		{400 * time.Millisecond, 32 * time.Millisecond},
		{3 * time.Second, 256 * time.Millisecond},
		{2 * time.Hour, 8 * 8 * 8 * 8 * 8 * 4 * time.Millisecond},
	} {
		if got := w.Granularity(c.d); got != c.want {
			t.Errorf("Granularity(%v) at HZ=250 = %v, want %v", c.d, got, c.want)
		}
	}
}

// The cached next expiry is always what a scan of every bucket finds,
// whatever is armed, moved, cancelled and fired.
func TestLinuxWheelNextExpiryCache(t *testing.T) {
	w := NewLinuxWheel(250)
	r := rand.New(rand.NewPCG(21, 22))
	pending := map[ID]bool{}
	now := int64(0)
	for i := 0; i < 200_000; i++ {
		id := ID(r.IntN(500))
		when := now + r.Int64N(int64([]time.Duration{time.Second, time.Minute, 3 * time.Hour}[r.IntN(3)]))
		switch k := r.IntN(10); {
		case k < 4 && !pending[id]:
			w.Push(id, when)
			pending[id] = true
		case k < 6 && pending[id]:
			w.Reschedule(id, when)
		case k < 7 && pending[id]:
			w.Remove(id)
			delete(pending, id)
		default:
			now += r.Int64N(int64(50 * time.Millisecond))
			for {
				id, _, ok := w.PopDue(now)
				if !ok {
					break
				}
				delete(pending, id)
			}
		}
		got, gok := w.nextExpiry()
		want, wok := w.scanExpiry()
		if got != want || gok != wok {
			t.Fatalf("op %d: next expiry %d,%v; a scan finds %d,%v", i, got, gok, want, wok)
		}
	}
}
