package graph

// SetPrefetch turns the batch prefetch of matching on or off (on by
// default) and returns a function that restores it.
func SetPrefetch(on bool) (restore func()) {
	old := !noPrefetch.Load()
	noPrefetch.Store(!on)
	return func() { noPrefetch.Store(!old) }
}
