package neo4j

import (
	"context"
	"fmt"
	"slices"

	"github.com/idgraph/idgraph/graph"
)

// Identifier returns the identifier stored under k. Stubs that a running
// stitching transaction holds are not committed, so they are never seen.
func (s *Store) Identifier(ctx context.Context, k graph.Key) (*graph.Identifier, error) {
	recs, err := s.read(ctx, "MATCH (i:Identifier {key: $key}) RETURN i", map[string]any{"key": k.String()})
	if err != nil {
		return nil, wrap("neo4j: identifier", err)
	}
	if len(recs) == 0 {
		return nil, graph.Errorf(graph.KindNotFound, "identifier %s not found", k)
	}
	return identifierFrom(props(recs[0].Values[0])), nil
}

// Profile returns the profile stored under id, live or absorbed.
func (s *Store) Profile(ctx context.Context, id string) (*graph.Profile, error) {
	recs, err := s.read(ctx, "MATCH (p:Profile {id: $id}) RETURN p", map[string]any{"id": id})
	if err != nil {
		return nil, wrap("neo4j: profile", err)
	}
	if len(recs) == 0 {
		return nil, graph.Errorf(graph.KindNotFound, "profile %q not found", id)
	}
	p, err := profileFrom(props(recs[0].Values[0]))
	if err != nil {
		return nil, fmt.Errorf("neo4j: profile: %w", err)
	}
	return p, nil
}

// ProfileIdentifiers returns the identifiers that joined p or a profile it
// absorbed, in key order.
func (s *Store) ProfileIdentifiers(ctx context.Context, p *graph.Profile) ([]*graph.Identifier, error) {
	ids := append([]string{p.ID}, p.Absorbed...)
	recs, err := s.read(ctx, `UNWIND $ids AS id
		MATCH (i:Identifier {profile: id})
		RETURN i`, map[string]any{"ids": ids})
	if err != nil {
		return nil, wrap("neo4j: profile identifiers", err)
	}
	out := make([]*graph.Identifier, 0, len(recs))
	for _, r := range recs {
		out = append(out, identifierFrom(props(r.Values[0])))
	}
	// Sorted here: Cypher's string order need not be Go's byte order.
	slices.SortFunc(out, func(a, b *graph.Identifier) int { return cmpKey(a.Key, b.Key) })
	return out, nil
}

func cmpKey(a, b graph.Key) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// Profiles lists live profiles in ID order after the given ID.
func (s *Store) Profiles(ctx context.Context, after string, limit int) ([]*graph.Profile, error) {
	if limit <= 0 {
		return nil, nil
	}
	recs, err := s.read(ctx, `MATCH (p:Profile)
		WHERE p.id > $after AND p.mergedInto IS NULL
		RETURN p ORDER BY p.id LIMIT $limit`, map[string]any{"after": after, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: profiles", err)
	}
	out := make([]*graph.Profile, 0, len(recs))
	for _, r := range recs {
		p, err := profileFrom(props(r.Values[0]))
		if err != nil {
			return nil, fmt.Errorf("neo4j: profiles: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// IdentifierEvents returns the events seen with k, newest first (ties by
// event ID, newest first too). An unknown key has no events.
func (s *Store) IdentifierEvents(ctx context.Context, k graph.Key, limit int) ([]*graph.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	recs, err := s.read(ctx, `MATCH (:Identifier {key: $key})<-[:SEEN_WITH]-(e:Event)
		RETURN e ORDER BY e.timestamp DESC, e.id DESC LIMIT $limit`,
		map[string]any{"key": k.String(), "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: identifier events", err)
	}
	out := make([]*graph.Event, 0, len(recs))
	for _, r := range recs {
		out = append(out, eventFrom(props(r.Values[0])))
	}
	return out, nil
}

// Merges returns the merges the profile took part in, oldest first.
func (s *Store) Merges(ctx context.Context, profileID string) ([]*graph.MergeEvent, error) {
	recs, err := s.read(ctx, `MATCH (m:Merge)
		WHERE m.survivor = $id OR m.absorbed = $id
		RETURN m ORDER BY m.at, m.id`, map[string]any{"id": profileID})
	if err != nil {
		return nil, wrap("neo4j: merges", err)
	}
	out := make([]*graph.MergeEvent, 0, len(recs))
	for _, r := range recs {
		out = append(out, mergeFrom(props(r.Values[0])))
	}
	return out, nil
}

// Hubs lists the hub markings, oldest first.
func (s *Store) Hubs(ctx context.Context) ([]*graph.HubMarking, error) {
	recs, err := s.read(ctx, "MATCH (h:Hub) RETURN h ORDER BY h.at, h.id", nil)
	if err != nil {
		return nil, wrap("neo4j: hubs", err)
	}
	out := make([]*graph.HubMarking, 0, len(recs))
	for _, r := range recs {
		out = append(out, hubFrom(props(r.Values[0])))
	}
	return out, nil
}
