package traffic

import (
	"fmt"

	"github.com/idgraph/idgraph/graph"
)

// EventDiagnosis sorts the false pairs of an event score by cause, and
// bounds what any identifier-based graph can score on the stream.
type EventDiagnosis struct {
	// False counts pairs of two people's events in one profile, as
	// Forced + Shared + Merged.
	False int64
	// Forced: both events were placed by one identifier that several
	// people used (a family tablet's anonymous ID before anyone signed in,
	// a library computer's): every graph puts them together.
	Forced int64
	// Shared: an event placed by a shared identifier (one with no single
	// owner) in the profile of another identifier's events.
	Shared int64
	// Merged: events placed by identifiers of two different people that
	// the graph put in one profile.
	Merged int64
	// Ceiling bounds the precision of any graph: each person's events all
	// in one profile (every true pair found) and only the forced pairs
	// false. No graph can pass it.
	Ceiling float64
	// Separate is the precision of the graph that knows every owner and
	// gives each shared identifier a profile of its own: a graph that
	// reaches the ceiling's false pairs without finding every true pair.
	Separate float64
}

func (d EventDiagnosis) String() string {
	share := func(n int64) float64 {
		if d.False == 0 {
			return 0
		}
		return float64(n) / float64(d.False)
	}
	return fmt.Sprintf("%d false pairs: %d forced (%.0f%%: one identifier several people used), %d shared (%.0f%%: a shared identifier's events with another's), %d merged (%.0f%%: two people's identifiers in one profile); ceiling: precision ≤ %.4f for any graph (%.4f with owners known, shared identifiers apart)",
		d.False, d.Forced, 100*share(d.Forced), d.Shared, 100*share(d.Shared), d.Merged, 100*share(d.Merged), d.Ceiling, d.Separate)
}

// Diagnose sorts the false pairs of the events added so far by cause.
// owner is the truth (Stream.Owner, or ReadOwner): identifiers it leaves
// out belong to several people.
func (e *EventScorer) Diagnose(owner map[graph.Key]int) EventDiagnosis {
	pairs := func(n int64) int64 { return n * (n - 1) / 2 }
	// falsePairs counts the pairs of a group of events that two people sent.
	falsePairs := func(byPerson map[int]int64) int64 {
		var all, same int64
		for _, n := range byPerson {
			all += n
			same += pairs(n)
		}
		return pairs(all) - same
	}
	type cell struct {
		profile string
		key     graph.Key
	}
	byProfile := map[string]map[int]int64{}
	ownedByProfile := map[string]map[int]int64{}
	byCell := map[cell]map[int]int64{}
	byKey := map[graph.Key]map[int]int64{}
	byPerson := map[int]int64{}
	separate := make([]Assignment, len(e.as))
	add := func(m map[int]int64, person int) map[int]int64 {
		if m == nil {
			m = map[int]int64{}
		}
		m[person]++
		return m
	}
	for i, a := range e.as {
		k := e.placed[i]
		byProfile[a.Profile] = add(byProfile[a.Profile], a.Person)
		c := cell{a.Profile, k}
		byCell[c] = add(byCell[c], a.Person)
		byKey[k] = add(byKey[k], a.Person)
		byPerson[a.Person]++
		if o, ok := owner[k]; ok {
			ownedByProfile[a.Profile] = add(ownedByProfile[a.Profile], a.Person)
			separate[i] = Assignment{Profile: fmt.Sprint("person:", o), Person: a.Person}
		} else {
			separate[i] = Assignment{Profile: "shared:" + k.String(), Person: a.Person}
		}
	}
	var d EventDiagnosis
	for _, m := range byProfile {
		d.False += falsePairs(m)
	}
	var forcedOwned int64
	for c, m := range byCell {
		n := falsePairs(m)
		d.Forced += n
		if _, ok := owner[c.key]; ok {
			forcedOwned += n
		}
	}
	for _, m := range ownedByProfile {
		d.Merged += falsePairs(m)
	}
	d.Merged -= forcedOwned
	d.Shared = d.False - d.Forced - d.Merged
	var most, forced int64
	for _, n := range byPerson {
		most += pairs(n)
	}
	for _, m := range byKey {
		forced += falsePairs(m)
	}
	d.Ceiling = ratio(most, most+forced)
	d.Separate = ScoreAssignments(separate).Precision
	return d
}
