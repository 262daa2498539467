package timers

// A Wheel's due run: the reached ticks' entries, a sorted run and a late heap.

// dueRun holds the entries of the ticks already reached: a run sorted when
// its slot drained, and a binary heap for the few that arrive afterwards
// (timers filed at or before the current tick), so that neither a slot of a
// million timers nor a stream of late arrivals costs more than O(log n).
// Both are ordered by (deadline, tag).
type dueRun struct {
	run  []wheelEntry
	next int // index of the run's first entry
	late []wheelEntry
}

func (d *dueRun) len() int { return len(d.run) - d.next + len(d.late) }

func (d *dueRun) popRun() {
	d.next++
	if d.next == len(d.run) {
		d.run, d.next = d.run[:0], 0
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
		p := (i - 1) / 2
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
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && entryBefore(d.late[c+1], d.late[c]) {
			c++
		}
		if !entryBefore(d.late[c], e) {
			break
		}
		d.late[i] = d.late[c]
		i = c
	}
	d.late[i] = e
}
