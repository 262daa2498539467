package timers

// SetSeqLimit makes wheels renumber their timers after limit schedulings,
// so that tests outside the package can run the renumbering often; it
// returns a function that restores the limit. It applies to wheels made
// after the call.
func SetSeqLimit(limit uint32) (restore func()) {
	old := seqLimit
	seqLimit = limit
	return func() { seqLimit = old }
}
