package segments

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/idgraph/idgraph/graph"
)

// changesPage is how many change records a snapshot reads at a time.
const changesPage = 1000

// MembersAt streams a segment's members as they were at one point in
// time, the newest change record when it starts (returned), while the
// engine goes on changing them. The member index is read in pages, so it
// moves under the reader; the change records written since say how:
//
//   - a profile with no change of the segment since the start has the
//     membership it had then, so a page read before its first change is
//     right about it;
//   - one that changed since was a member at the start exactly when its
//     first change since is an exit. It is left out of pages read after
//     that change was seen, and emitted at the end if that first change
//     was an exit and its page did not already emit it.
//
// Each profile is emitted at most once, in pages of up to page IDs (the
// last ones out of order), with the point in time. Memory holds only the profiles that changed
// during the read and one boundary per page.
func MembersAt(ctx context.Context, s Store, segment string, page int, emit func(at uint64, ids []string) error) (uint64, error) {
	return MembersDataAt(ctx, s, segment, page, nil, func(at uint64, ids []string, _ []*graph.ProfileData) error { return emit(at, ids) })
}

// MembersDataAt is MembersAt that, given a query q and a store that is a
// MembersDataStore, reads q of the members with each page: emit gets
// data[i] for ids[i] (nil where the profile is merged away or erased).
// data is nil for the pages read without it (q nil, a store that is not
// a MembersDataStore, the members emitted at the end): the caller looks those up. The data are
// as they were when the page was read, not at the point in time: only
// membership is.
func MembersDataAt(ctx context.Context, s Store, segment string, page int, q *graph.DataQuery,
	emit func(at uint64, ids []string, data []*graph.ProfileData) error) (uint64, error) {
	read := func(after string) ([]string, []*graph.ProfileData, error) {
		if q == nil {
			ids, err := s.Members(ctx, segment, after, page)
			return ids, nil, err
		}
		return MembersData(ctx, s, segment, after, page, *q)
	}
	at, err := s.LastChange(ctx)
	if err != nil {
		return 0, fmt.Errorf("segments: members at: %w", err)
	}
	type firstChange struct {
		direction string
		round     int // the page after which it was seen
	}
	first := map[string]firstChange{}
	seen := at
	catchUp := func(round int) error {
		for {
			cs, err := s.Changes(ctx, seen, changesPage)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if _, ok := first[c.Profile]; !ok && c.Segment == segment {
					first[c.Profile] = firstChange{c.Direction, round}
				}
				seen = c.Sequence
			}
			if len(cs) < changesPage {
				return nil
			}
		}
	}
	var bounds []string // the last ID of each page, in order
	for after := ""; ; {
		ids, data, err := read(after)
		if err != nil {
			return 0, fmt.Errorf("segments: members at: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		// Read after the page: a change the page already reflects is seen.
		if err := catchUp(len(bounds)); err != nil {
			return 0, fmt.Errorf("segments: members at: %w", err)
		}
		var keep []string
		var keepData []*graph.ProfileData
		for i, id := range ids {
			if _, changed := first[id]; changed {
				continue
			}
			keep = append(keep, id)
			if data != nil {
				keepData = append(keepData, data[i])
			}
		}
		if len(keep) > 0 {
			if err := emit(at, keep, keepData); err != nil {
				return 0, err
			}
		}
		bounds = append(bounds, ids[len(ids)-1])
		after = ids[len(ids)-1]
	}
	if err := catchUp(len(bounds)); err != nil {
		return 0, fmt.Errorf("segments: members at: %w", err)
	}
	var late []string
	for id, fc := range first {
		if fc.direction != Exited {
			continue // not a member at the start
		}
		// Its page was read before its first change was seen: that page
		// emitted it, as a member unchanged since the start.
		if round := sort.SearchStrings(bounds, id); round < len(bounds) && fc.round > round {
			continue
		}
		late = append(late, id)
	}
	slices.Sort(late)
	for chunk := range slices.Chunk(late, max(page, 1)) {
		if err := emit(at, chunk, nil); err != nil {
			return 0, err
		}
	}
	return at, nil
}
