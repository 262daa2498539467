package timers

// A Wheel's due run: the reached ticks' entries, a sorted run and a late heap.

import "math/bits"

// dueRun holds the entries of the ticks already reached: a run sorted when
// its slot drained, and a binary heap for the few that arrive afterwards
// (timers filed at or before the current tick), so that neither a slot of a
// million timers nor a stream of late arrivals costs more than O(log n).
// Both are ordered by (deadline, tag). The heap is 4-ary, as Heap4: half
// as deep as a binary one, a node's children in one or two cache lines,
// which matters when every timer ends up in it (all in one tick).
//
// A large run is sorted lazily: an in-place radix pass splits it into
// buckets, each wholly before the next, and a bucket is sorted when the
// run's head reaches it; a run of over a million has its front sixteenth
// gathered and split, the rest left one bucket. Draining a herd of ten
// million then costs a few passes, not a sort of entries the clock may
// not reach for a long time (heap4 pays for its order as the timers are
// scheduled).
type dueRun struct {
	run    []wheelEntry
	next   int   // index of the run's first entry
	sorted int   // run[next:sorted] is sorted
	ends   []int // a stack of the unsorted buckets' ends, the next on top
	late   []wheelEntry
}

const (
	lateArity = 4
	lazyMin   = 1 << 14 // a bucket this small is sorted outright
	peelMin   = 1 << 20 // a bucket this large is split at its front only
)

func (d *dueRun) len() int { return len(d.run) - d.next + len(d.late) }

// popRun drops the run's head. A used-up run (next == len) is left as it
// is: the next drain replaces it.
func (d *dueRun) popRun() {
	d.next++
	if d.next == d.sorted && len(d.ends) > 0 {
		d.reachSorted()
	}
}

// reachSorted sorts the next bucket.
func (d *dueRun) reachSorted() {
	for d.next == d.sorted {
		end := d.ends[len(d.ends)-1]
		d.ends = d.ends[:len(d.ends)-1]
		bucket := d.run[d.sorted:end]
		if len(bucket) <= lazyMin {
			sortRun(bucket)
			d.sorted = end
			return
		}
		diff, ok := keyDiff(bucket)
		if ok {
			d.sorted = end
			return
		}
		shift := topShift(diff)
		if len(bucket) > peelMin {
			// Peel off the front sixteenth (by whole digits) and leave
			// the rest one bucket: a run of ten million is mostly
			// never reached before it is drained anew, and ordering
			// all of it by digit costs three times the two passes
			// that find and gather its front.
			if n := peel(bucket, shift); n < len(bucket) {
				d.ends = append(d.ends, end)
				end = d.sorted + n
				bucket = bucket[:n]
			}
		}
		// Split it on its highest varying digit; its first part is
		// taken on the next turn.
		count := flagPass(bucket, shift)
		for i := len(count) - 1; i >= 0; i-- {
			if count[i] > 0 {
				d.ends = append(d.ends, end)
				end -= count[i]
			}
		}
	}
}

// peel gathers the entries of run whose digit at shift is among the
// lowest, as few whole digits as hold a sixteenth of run, at its front, and
// returns how many they are.
func peel(run []wheelEntry, shift int) int {
	count := countDigits(run, shift)
	cut, front := 0, 0
	for cut < len(count) && front < len(run)/16 {
		front += count[cut]
		cut++
	}
	k := 0
	for i, e := range run {
		if digitAt(e, shift) < cut {
			run[k], run[i] = e, run[k]
			k++
		}
	}
	return k
}

// setRun makes run, one tick's entries, the due run, which was empty.
func (d *dueRun) setRun(run []wheelEntry) {
	d.run, d.next, d.sorted = run, 0, len(run)
	d.ends = d.ends[:0]
	if len(run) <= lazyMin {
		sortRun(run)
		return
	}
	d.ends = append(d.ends, len(run))
	d.sorted = 0
	d.reachSorted()
}

// sortAll finishes sorting the run.
func (d *dueRun) sortAll() {
	for ; len(d.ends) > 0; d.ends = d.ends[:len(d.ends)-1] {
		end := d.ends[len(d.ends)-1]
		sortRun(d.run[d.sorted:end])
		d.sorted = end
	}
}

func (d *dueRun) popLate() {
	last := len(d.late) - 1
	d.late[0] = d.late[last]
	d.late = d.late[:last]
	if last > 0 {
		d.down(0)
	}
}

func (d *dueRun) push(e wheelEntry) {
	d.late = append(d.late, e)
	i := len(d.late) - 1
	for i > 0 {
		p := (i - 1) / lateArity
		if !entryBefore(e, d.late[p]) {
			break
		}
		d.late[i] = d.late[p]
		i = p
	}
	d.late[i] = e
}

func (d *dueRun) down(i int) {
	n := len(d.late)
	e := d.late[i]
	for {
		c := lateArity*i + 1
		if c >= n {
			break
		}
		for j := c + 1; j < min(c+lateArity, n); j++ {
			if entryBefore(d.late[j], d.late[c]) {
				c = j
			}
		}
		if !entryBefore(d.late[c], e) {
			break
		}
		d.late[i] = d.late[c]
		i = c
	}
	d.late[i] = e
}

// runKey orders the entries of one tick as entryBefore does: they share a
// tick, so their deadlines differ only in the low tickBits bits, and the
// tag fills the 32 below.
func runKey(e wheelEntry) uint64 {
	return uint64(e.when)&(1<<tickBits-1)<<32 | uint64(e.tag)
}

// sortRun sorts a tick's entries by runKey, radix-sorted in place, which
// costs a few passes over the run instead of n log n compares through a
// function, and no buffer (fresh memory costs more than the sort itself).
func sortRun(run []wheelEntry) {
	if diff, ok := keyDiff(run); !ok {
		radixSort(run, topShift(diff))
	}
}

// keyDiff returns the bits in which run's keys differ, and whether they
// are sorted already.
func keyDiff(run []wheelEntry) (diff uint64, sorted bool) {
	if len(run) < 2 {
		return 0, true
	}
	k0 := runKey(run[0])
	prev, sorted := k0, true
	for _, e := range run[1:] {
		k := runKey(e)
		diff |= k ^ k0
		sorted = sorted && prev < k
		prev = k
	}
	return diff, sorted || diff == 0 // equal keys are in order
}

// topShift is the shift of the radix digit holding the highest bit of
// diff.
func topShift(diff uint64) int { return max(bits.Len64(diff), radixBits) - radixBits }

const (
	radixBits  = 8
	radixSmall = 48 // runs this short are insertion-sorted
)

// radixSort sorts run by runKey, whose bits above shift+radixBits are
// equal: an American flag sort on the digit at shift, then each bucket on
// the digit below.
func radixSort(run []wheelEntry, shift int) {
	if len(run) <= radixSmall {
		insertionSort(run)
		return
	}
	count := flagPass(run, shift)
	if shift == 0 {
		return
	}
	lo := 0
	for _, c := range count {
		if c > 1 {
			radixSort(run[lo:lo+c], max(shift-radixBits, 0))
		}
		lo += c
	}
}

// digitAt is e's radix digit at shift.
func digitAt(e wheelEntry, shift int) int {
	return int(runKey(e) >> shift & (1<<radixBits - 1))
}

// countDigits counts run's entries by their digit at shift.
func countDigits(run []wheelEntry, shift int) (count [1 << radixBits]int) {
	for _, e := range run {
		count[digitAt(e, shift)]++
	}
	return count
}

// flagPass orders run by the digit at shift of its keys, in place, and
// returns how many entries have each digit.
func flagPass(run []wheelEntry, shift int) (count [1 << radixBits]int) {
	count = countDigits(run, shift)
	var start, end [1 << radixBits]int
	sum := 0
	for i, c := range count {
		start[i] = sum
		sum += c
		end[i] = sum
	}
	// Cycle each misplaced entry to its bucket's next free place.
	for i := range count {
		for start[i] < end[i] {
			e := run[start[i]]
			for {
				digit := digitAt(e, shift)
				if digit == i {
					break
				}
				e, run[start[digit]] = run[start[digit]], e
				start[digit]++
			}
			run[start[i]] = e
			start[i]++
		}
	}
	return count
}

func insertionSort(run []wheelEntry) {
	for i := 1; i < len(run); i++ {
		e, k := run[i], runKey(run[i])
		j := i
		for ; j > 0 && runKey(run[j-1]) > k; j-- {
			run[j] = run[j-1]
		}
		run[j] = e
	}
}
