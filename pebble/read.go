package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

// Identifier returns the identifier stored under k.
func (s *Store) Identifier(_ context.Context, k graph.Key) (*graph.Identifier, error) {
	n := &graph.Identifier{}
	ok, err := s.getJSON(n, pIdentifier, s.hash(k))
	if err != nil {
		return nil, fmt.Errorf("pebble: identifier: %w", err)
	}
	if !ok {
		return nil, graph.Errorf(graph.KindNotFound, "identifier %s:%s not found", k.Type, k.Value)
	}
	return n, nil
}

// Profile returns the profile stored under id, live or absorbed.
func (s *Store) Profile(_ context.Context, id string) (*graph.Profile, error) {
	p := &graph.Profile{}
	ok, err := s.getJSON(p, pProfile, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("pebble: profile: %w", err)
	}
	if !ok {
		return nil, graph.Errorf(graph.KindNotFound, "profile %q not found", id)
	}
	return p, nil
}

// GetIdentifiers returns the identifiers stored under keys, nil where none is.
func (s *Store) GetIdentifiers(_ context.Context, keys []graph.Key) ([]*graph.Identifier, error) {
	ks := make([][]byte, len(keys))
	for i, k := range keys {
		ks[i] = key(pIdentifier, s.hash(k))
	}
	out, err := getManyJSON[graph.Identifier](s, ks)
	if err != nil {
		return nil, fmt.Errorf("pebble: get identifiers: %w", err)
	}
	return out, nil
}

// GetProfiles returns the profiles stored under ids, nil where none is.
func (s *Store) GetProfiles(_ context.Context, ids []string) ([]*graph.Profile, error) {
	out, err := getManyJSON[graph.Profile](s, profileKeys(ids))
	if err != nil {
		return nil, fmt.Errorf("pebble: get profiles: %w", err)
	}
	return out, nil
}

func profileKeys(ids []string) [][]byte {
	ks := make([][]byte, len(ids))
	for i, id := range ids {
		ks[i] = key(pProfile, []byte(id))
	}
	return ks
}

// getManyJSON decodes the records under ks (getMany), nil where absent.
func getManyJSON[T any](s *Store, ks [][]byte) ([]*T, error) {
	vs, err := s.getMany(ks)
	if err != nil {
		return nil, err
	}
	out := make([]*T, len(ks))
	for i, v := range vs {
		if v == nil {
			continue
		}
		out[i] = new(T)
		if err := jsonUnmarshal(v, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// IdentifiersOf returns the identifiers of each profile and of the
// profiles it absorbed.
func (s *Store) IdentifiersOf(_ context.Context, ps []*graph.Profile) ([][]*graph.Identifier, error) {
	groups := make([][]string, len(ps))
	for i, p := range ps {
		groups[i] = append([]string{p.ID}, p.Absorbed...)
	}
	vs, owner, err := s.memberIdentifiers(groups)
	if err != nil {
		return nil, fmt.Errorf("pebble: identifiers of: %w", err)
	}
	out := make([][]*graph.Identifier, len(ps))
	for j, v := range vs {
		n := &graph.Identifier{}
		if err := jsonUnmarshal(v, n); err != nil {
			return nil, fmt.Errorf("pebble: identifiers of: %w", err)
		}
		out[owner[j]] = append(out[owner[j]], n)
	}
	for _, ids := range out {
		slices.SortFunc(ids, func(a, b *graph.Identifier) int { return a.Key.Compare(b.Key) })
	}
	return out, nil
}

// EdgesOf returns every edge touching the keys, each once, ordered by (A, B).
func (s *Store) EdgesOf(_ context.Context, keys []graph.Key) ([]*graph.Edge, error) {
	seen := map[[2]graph.Key]bool{}
	var out []*graph.Edge
	for _, k := range keys {
		hk := s.hash(k)
		prefix := key(pNeighbour, hk)
		err := s.scan(prefix, func(nk, _ []byte) error {
			other := nk[len(prefix):]
			// The edge is stored under its ordered pair's hashes; which of
			// the two comes first is not known from the hashes alone.
			for _, ek := range [][]byte{key(pEdge, hk, other), key(pEdge, other, hk)} {
				e := &graph.Edge{}
				ok, err := s.getJSON(e, ek)
				if err != nil {
					return err
				}
				if ok {
					if p := graph.Pair(e.A, e.B); !seen[p] {
						seen[p] = true
						out = append(out, e)
					}
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("pebble: edges of: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b *graph.Edge) int {
		if c := a.A.Compare(b.A); c != 0 {
			return c
		}
		return a.B.Compare(b.B)
	})
	return out, nil
}

// Profiles lists live profiles in ID order after the given ID.
func (s *Store) Profiles(_ context.Context, after string, limit int) ([]*graph.Profile, error) {
	var out []*graph.Profile
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: key(pProfile, []byte(after), []byte{0}), UpperBound: prefixEnd(pProfile)})
	if err != nil {
		return nil, fmt.Errorf("pebble: profiles: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		p := &graph.Profile{}
		if err := jsonUnmarshal(it.Value(), p); err != nil {
			return nil, fmt.Errorf("pebble: profiles: %w", err)
		}
		if p.MergedInto == "" {
			out = append(out, p)
		}
	}
	return out, it.Error()
}

// CountProfiles counts the keys of the data column, which only live
// profiles have: no profile record is read or decoded (a backfill counts
// before it starts, and decoding every record cost a second of a
// million-profile backfill).
func (s *Store) CountProfiles(context.Context) (int, error) {
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: pProfData, UpperBound: prefixEnd(pProfData)})
	if err != nil {
		return 0, fmt.Errorf("pebble: count profiles: %w", err)
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("pebble: count profiles: %w", err)
	}
	return n, nil
}

// Timelines answers the queries with one iterator over the timeline index
// (a seek per identifier, not an iterator each), then one ordered read of
// the events the answers name.
func (s *Store) Timelines(_ context.Context, qs []graph.TimelineQuery) ([][]*graph.Event, error) {
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: pTimeline, UpperBound: prefixEnd(pTimeline)})
	if err != nil {
		return nil, fmt.Errorf("pebble: timeline: %w", err)
	}
	picks := make([][]timelineEntry, len(qs))
	for i, q := range qs {
		picks[i] = s.timeline(it, q.Keys, q.After, q.Limit)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("pebble: timeline: %w", err)
	}
	var ks [][]byte
	at := map[string]int{} // an event's place in ks, by message hash
	for _, es := range picks {
		for _, e := range es {
			if _, ok := at[string(e.event)]; !ok {
				at[string(e.event)] = len(ks)
				ks = append(ks, key(pEvent, e.event))
			}
		}
	}
	evs, err := getManyJSON[graph.Event](s, ks)
	if err != nil {
		return nil, fmt.Errorf("pebble: timeline: %w", err)
	}
	out := make([][]*graph.Event, len(qs))
	for i, es := range picks {
		for _, e := range es {
			// An entry whose event is gone names nothing.
			if ev := evs[at[string(e.event)]]; ev != nil {
				out[i] = append(out[i], ev)
			}
		}
	}
	return out, nil
}

// timelineEntry is an event of a timeline: its place (timestamp, then ID,
// as the index orders them) and its message hash.
type timelineEntry struct{ pos, event []byte }

// timeline reads each identifier's timeline backwards from the cursor for
// at most limit entries, then merges the lists, so a page costs the same
// however long the timelines are. It returns the entries newest first.
func (s *Store) timeline(it *cpebble.Iterator, keys []graph.Key, after *graph.EventCursor, limit int) []timelineEntry {
	if limit <= 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []timelineEntry
	for _, k := range keys {
		prefix := key(pTimeline, s.hash(k))
		end := prefixEnd(prefix)
		if after != nil {
			end = key(prefix, timestampBytes(after.Timestamp), []byte(after.ID))
		}
		valid := it.SeekLT(end)
		for n := 0; valid && n < limit && bytes.HasPrefix(it.Key(), prefix); valid, n = it.Prev(), n+1 {
			pos := it.Key()[len(prefix):]
			if id := string(pos[8:]); !seen[id] {
				seen[id] = true
				out = append(out, timelineEntry{bytes.Clone(pos), bytes.Clone(it.Value())})
			}
		}
	}
	slices.SortFunc(out, func(a, b timelineEntry) int { return bytes.Compare(b.pos, a.pos) })
	return out[:min(limit, len(out))]
}

// Merges returns the merge events the profile took part in, oldest first.
func (s *Store) Merges(_ context.Context, profileID string) ([]*graph.MergeEvent, error) {
	var out []*graph.MergeEvent
	err := s.scan(key(pProfMerge, []byte(profileID+"/")), func(_, id []byte) error {
		m := &graph.MergeEvent{}
		if _, err := s.getJSON(m, pMerge, id); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: merges: %w", err)
	}
	return out, nil
}

// Hubs lists hub markings, oldest first.
func (s *Store) Hubs(context.Context) ([]*graph.HubMarking, error) {
	var out []*graph.HubMarking
	err := s.scan(pHub, func(_, v []byte) error {
		h := &graph.HubMarking{}
		out = append(out, h)
		return jsonUnmarshal(v, h)
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: hubs: %w", err)
	}
	return out, nil
}

func (s *Store) scan(prefix []byte, fn func(k, v []byte) error) error {
	return scanDB(s.db, prefix, func(k, v []byte) error { return fn(bytes.Clone(k), bytes.Clone(v)) })
}

func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
