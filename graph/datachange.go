package graph

import (
	"maps"
	"slices"
)

// DataChange says what one transaction changed in a live profile's data:
// the names of the track events stored with its identifiers and the trait
// paths set. With Stitcher.RecordDataChanges, stitching writes them with
// the changes (Changes.DataChanges), so that what is derived from profile
// data (segments) can catch up after a crash between the commit and the
// derivation. A backend merges the changes of one profile until they are
// taken (segments.Store.PendingChanges).
type DataChange struct {
	Profile string   `json:"profile"`
	Events  []string `json:"events,omitempty"`
	Traits  []string `json:"traits,omitempty"`
	// All is set when the profile's data changed in ways no name lists:
	// a steward action (split, undo, link) moved identifiers, and their
	// events and traits, between profiles.
	All bool `json:"all,omitempty"`
}

// dataChanges lists, for every live profile the transaction wrote or
// stored an event for, what changed in its data, by profile ID.
func (st *stitch) dataChanges() []DataChange {
	byID := map[string]*DataChange{}
	of := func(p *Profile) *DataChange {
		p = st.live(p)
		c := byID[p.ID]
		if c == nil {
			c = &DataChange{Profile: p.ID}
			byID[p.ID] = c
		}
		return c
	}
	for id := range st.dirtyProfiles {
		of(st.profiles[id])
	}
	for _, ev := range st.changes.Events {
		for _, k := range ev.Identifiers {
			if n := st.ids[k]; n != nil && n.Profile != "" {
				c := of(st.profiles[n.Profile])
				if ev.Type == "track" && ev.Name != "" {
					c.Events = append(c.Events, ev.Name)
				}
			}
		}
	}
	for id, paths := range st.traitPaths {
		c := of(st.profiles[id])
		c.Traits = append(c.Traits, paths...)
	}
	out := make([]DataChange, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		c := byID[id]
		c.All = len(st.changes.Audit) > 0 // steward actions are audited
		c.Events = slices.Compact(slices.Sorted(slices.Values(c.Events)))
		c.Traits = slices.Compact(slices.Sorted(slices.Values(c.Traits)))
		out = append(out, *c)
	}
	return out
}

// MergeDataChange adds c's events and traits to d's, each once, sorted.
func MergeDataChange(d, c DataChange) DataChange {
	d.All = d.All || c.All
	d.Events = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(d.Events), c.Events...))))
	d.Traits = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(d.Traits), c.Traits...))))
	return d
}
