package pebble

import (
	"bytes"
	"context"
	"fmt"
	"sort"

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

// ProfileIdentifiers returns the identifiers of p and of the profiles it absorbed.
func (s *Store) ProfileIdentifiers(_ context.Context, p *graph.Profile) ([]*graph.Identifier, error) {
	var out []*graph.Identifier
	for _, id := range append([]string{p.ID}, p.Absorbed...) {
		err := s.scan(key(pMember, []byte(id+"/")), func(_, h []byte) error {
			n := &graph.Identifier{}
			if _, err := s.getJSON(n, pIdentifier, h); err != nil {
				return err
			}
			out = append(out, n)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("pebble: profile identifiers: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.Less(out[j].Key) })
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

// IdentifierEvents returns the events seen with k, newest first.
func (s *Store) IdentifierEvents(_ context.Context, k graph.Key, limit int) ([]*graph.Event, error) {
	prefix := key(pTimeline, s.hash(k))
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble: events: %w", err)
	}
	defer it.Close()
	var out []*graph.Event
	for it.Last(); it.Valid() && len(out) < limit; it.Prev() {
		ev := &graph.Event{}
		if _, err := s.getJSON(ev, pEvent, it.Value()); err != nil {
			return nil, fmt.Errorf("pebble: events: %w", err)
		}
		out = append(out, ev)
	}
	return out, it.Error()
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
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(bytes.Clone(it.Key()), bytes.Clone(it.Value())); err != nil {
			return err
		}
	}
	return it.Error()
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
