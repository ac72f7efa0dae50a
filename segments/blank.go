package segments

import (
	"time"

	"github.com/idgraph/idgraph/segments/lang"
)

// blank is what every loaded definition evaluates to, at one instant, for
// a profile with no data: no events, traits or identifiers, memberships
// and computed values as the definitions give them in order.
//
// An evaluation reads nothing but its definition's dependencies (lang's
// Deps) and the instant, so a definition none of whose dependencies a
// profile holds (and whose in_segment and computed references have their
// blank results) has its blank result there too: it is not evaluated.
// That is most definitions of a profile new to the engine, which
// evaluates everything once, and of one whose stored state was saved with
// other definitions: ingest beside many definitions evaluated all of them
// for each new visitor, whose one event a few of them read.
type blank struct {
	defs     *definitions
	now      time.Time
	results  []lang.Result   // by rank
	segments map[string]bool // memberships, by segment key
	computed map[string]any  // computed values, by key (absent: missing)
}

// blank evaluates the definitions for a profile with no data at now.
func (d *definitions) blank(now time.Time) *blank {
	snap := &lang.Snapshot{Segments: map[string]bool{}, Computed: map[string]any{}}
	sess := lang.NewSession(snap.View(), now)
	next := &ProfileState{Entries: map[string]Entry{}}
	b := &blank{defs: d, now: now, results: make([]lang.Result, len(d.order)), segments: snap.Segments, computed: snap.Computed}
	for _, c := range d.order {
		b.results[c.rank] = sess.Eval(c.prog)
		record(snap, next, c, b.results[c.rank], now)
	}
	return b
}

// result returns c's blank result if the view (at b's instant) reads the
// same as a blank profile's for c: none of c's events, traits or
// identifier types, and its references' blank results.
func (b *blank) result(c *compiled, v lang.ProfileView) (lang.Result, bool) {
	deps := &c.prog.Deps
	for _, n := range deps.Events {
		if len(v.Events(n)) > 0 {
			return lang.Result{}, false
		}
	}
	for _, t := range deps.Traits {
		if _, ok := v.Trait(t); ok {
			return lang.Result{}, false
		}
	}
	for _, t := range deps.IDTypes {
		if v.IDCount(t) != 0 {
			return lang.Result{}, false
		}
	}
	for _, k := range deps.Segments {
		if v.InSegment(k) != b.segments[k] {
			return lang.Result{}, false
		}
	}
	for _, k := range deps.Computed {
		// Values are bool, float64, string or time.Time (Value.Interface):
		// comparable; a time that == misses is evaluated, which is exact.
		x, ok := v.Computed(k)
		y, blankOK := b.computed[k]
		if ok != blankOK || ok && x != y {
			return lang.Result{}, false
		}
	}
	return b.results[c.rank], true
}
