package neo4j

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

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
	p, err := s.profileFrom(ctx, props(recs[0].Values[0]))
	if err != nil {
		return nil, fmt.Errorf("neo4j: profile: %w", err)
	}
	return p, nil
}

// GetIdentifiers returns the identifiers stored under keys, in order, nil
// where none is.
func (s *Store) GetIdentifiers(ctx context.Context, keys []graph.Key) ([]*graph.Identifier, error) {
	out := make([]*graph.Identifier, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	recs, err := s.read(ctx, `UNWIND $keys AS k
		MATCH (i:Identifier {key: k})
		RETURN i`, map[string]any{"keys": keyList(keys)})
	if err != nil {
		return nil, wrap("neo4j: get identifiers", err)
	}
	found := make(map[graph.Key]*graph.Identifier, len(recs))
	for _, r := range recs {
		n := identifierFrom(props(r.Values[0]))
		found[n.Key] = n
	}
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, nil
}

// GetProfiles returns the profiles stored under ids (live or absorbed), in
// order, nil where none is.
func (s *Store) GetProfiles(ctx context.Context, ids []string) ([]*graph.Profile, error) {
	out := make([]*graph.Profile, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	recs, err := s.read(ctx, `UNWIND $ids AS id
		MATCH (p:Profile {id: id})
		RETURN p`, map[string]any{"ids": ids})
	if err != nil {
		return nil, wrap("neo4j: get profiles", err)
	}
	found := make(map[string]*graph.Profile, len(recs))
	for _, r := range recs {
		p, err := s.profileFrom(ctx, props(r.Values[0]))
		if err != nil {
			return nil, fmt.Errorf("neo4j: get profiles: %w", err)
		}
		found[p.ID] = p
	}
	for i, id := range ids {
		out[i] = found[id]
	}
	return out, nil
}

// IdentifiersOf returns, for each profile, the identifiers that joined it
// or a profile it absorbed, in key order, all in one query.
func (s *Store) IdentifiersOf(ctx context.Context, ps []*graph.Profile) ([][]*graph.Identifier, error) {
	out := make([][]*graph.Identifier, len(ps))
	if len(ps) == 0 {
		return out, nil
	}
	var rows []any
	for n, p := range ps {
		for _, id := range append([]string{p.ID}, p.Absorbed...) {
			rows = append(rows, map[string]any{"n": n, "id": id})
		}
	}
	recs, err := s.read(ctx, `UNWIND $rows AS r
		MATCH (i:Identifier {profile: r.id})
		RETURN r.n, i`, map[string]any{"rows": rows})
	if err != nil {
		return nil, wrap("neo4j: identifiers of", err)
	}
	for _, r := range recs {
		n, _ := r.Values[0].(int64)
		out[n] = append(out[n], identifierFrom(props(r.Values[1])))
	}
	// Sorted here: Cypher's string order need not be Go's byte order.
	for _, ids := range out {
		slices.SortFunc(ids, func(a, b *graph.Identifier) int { return a.Key.Compare(b.Key) })
	}
	return out, nil
}

// EdgesOf returns every edge touching any of the keys, each once, ordered
// by (A, B).
func (s *Store) EdgesOf(ctx context.Context, keys []graph.Key) ([]*graph.Edge, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	recs, err := s.read(ctx, `UNWIND $keys AS k
		MATCH (:Identifier {key: k})-[r:LINKED]-()
		WITH DISTINCT r
		WITH r, startNode(r) AS a, endNode(r) AS b
		RETURN a.type, a.value, b.type, b.value, r`, map[string]any{"keys": keyList(keys)})
	if err != nil {
		return nil, wrap("neo4j: edges of", err)
	}
	out := make([]*graph.Edge, 0, len(recs))
	for _, r := range recs {
		out = append(out, edgeRecord(r.Values))
	}
	slices.SortFunc(out, func(x, y *graph.Edge) int {
		if c := x.A.Compare(y.A); c != 0 {
			return c
		}
		return x.B.Compare(y.B)
	})
	return out, nil
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
	return s.profileRecords(ctx, "neo4j: profiles", recs)
}

// CountProfiles counts the live profiles.
func (s *Store) CountProfiles(ctx context.Context) (int, error) {
	recs, err := s.read(ctx, "MATCH (p:Profile) WHERE p.mergedInto IS NULL RETURN count(p)", nil)
	if err != nil {
		return 0, wrap("neo4j: count profiles", err)
	}
	n, _ := recs[0].Values[0].(int64)
	return int(n), nil
}

// profileRecords reads the profiles in the first column.
func (s *Store) profileRecords(ctx context.Context, op string, recs []*neo4jdriver.Record) ([]*graph.Profile, error) {
	out := make([]*graph.Profile, 0, len(recs))
	for _, r := range recs {
		p, err := s.profileFrom(ctx, props(r.Values[0]))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// timelinesQuery reads, for each row q, the newest events before q.before
// seen with any of q.keys. Each SEEN_WITH relationship holds its
// identifier's key and its event's timelinePos, under one index, so each
// key's page is one index seek read backwards for at most $limit entries,
// however many events the key has; the pages of a query's keys are then
// merged. Ordering by the key too lets the index provide the order.
// The index hints keep the planner from a plan it cached while the graph
// was small (a scan is cheapest then and stays cached).
const timelinesQuery = `UNWIND $rows AS q
	CALL {
		WITH q
		UNWIND q.keys AS k
		CALL {
			WITH q, k
			MATCH ()-[r:SEEN_WITH]->()
			USING INDEX r:SEEN_WITH(key, pos)
			WHERE r.key = k AND r.pos < q.before
			RETURN r ORDER BY r.key DESC, r.pos DESC LIMIT $limit
		}
		WITH DISTINCT startNode(r) AS e, r.pos AS pos
		ORDER BY pos DESC LIMIT $limit
		RETURN e
	}
	RETURN q.n, e`

// Timelines answers the timeline queries in one round trip. LIMIT cannot
// vary by row, so every query reads up to the largest limit.
func (s *Store) Timelines(ctx context.Context, qs []graph.TimelineQuery) ([][]*graph.Event, error) {
	out := make([][]*graph.Event, len(qs))
	params := timelinesParams(qs)
	if params == nil {
		return out, nil
	}
	recs, err := s.read(ctx, timelinesQuery, params)
	if err != nil {
		return nil, wrap("neo4j: timelines", err)
	}
	for _, r := range recs {
		n, _ := r.Values[0].(int64)
		e, err := s.eventFrom(ctx, props(r.Values[1]))
		if err != nil {
			return nil, fmt.Errorf("neo4j: timelines: %w", err)
		}
		out[n] = append(out[n], e)
	}
	for n, evs := range out {
		slices.SortFunc(evs, newestFirst)
		out[n] = evs[:min(len(evs), qs[n].Limit)]
	}
	return out, nil
}

// timelinesParams returns the parameters of timelinesQuery, or nil if no
// query asks for any event.
func timelinesParams(qs []graph.TimelineQuery) map[string]any {
	var rows []any
	limit := 0
	for n, q := range qs {
		if q.Limit <= 0 || len(q.Keys) == 0 {
			continue
		}
		before := timelineEnd
		if q.After != nil {
			before = timelinePos(q.After.Timestamp, q.After.ID)
		}
		rows = append(rows, map[string]any{"n": n, "keys": keyList(q.Keys), "before": before})
		limit = max(limit, q.Limit)
	}
	if rows == nil {
		return nil
	}
	return map[string]any{"rows": rows, "limit": limit}
}

func newestFirst(a, b *graph.Event) int {
	if c := b.Timestamp.Compare(a.Timestamp); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// ChangedSince lists profiles, live or absorbed, updated at since with an
// ID after afterID, or later, in (updatedAt, id) order: a keyset page, so
// that any number of profiles stamped at one instant can be paged through.
func (s *Store) ChangedSince(ctx context.Context, since time.Time, afterID string, limit int) ([]*graph.Profile, error) {
	if limit <= 0 {
		return nil, nil
	}
	recs, err := s.read(ctx, `MATCH (p:Profile)
		WHERE p.updatedAt > $since OR (p.updatedAt = $since AND p.id > $after)
		RETURN p ORDER BY p.updatedAt, p.id LIMIT $limit`, map[string]any{"since": since.UTC(), "after": afterID, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: changed since", err)
	}
	return s.profileRecords(ctx, "neo4j: changed since", recs)
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
