package neo4j

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
)

// profileDataReturn is what ProfilesData and ScanProfilesData return for
// a live profile p: only the properties asked for, and its identifiers'
// keys (those that joined the profiles it absorbed included) in the same
// query, so that a page of an export is one round trip. Without keys the
// subquery is left out: it would still run once a profile.
func profileDataReturn(q graph.DataQuery) string {
	keys := "[] AS keys"
	if q.Keys {
		keys = "keys"
	}
	out := ""
	if q.Keys {
		out = `
	CALL {
		WITH p
		UNWIND [p.id] + coalesce(p.absorbed, []) AS pid
		MATCH (i:Identifier {profile: pid})
		RETURN collect(i.key) AS keys
	}`
	}
	return out + `
	RETURN p.id, CASE WHEN $traits THEN p.traits END, CASE WHEN $counts THEN p.counts END, ` + keys + `,
		CASE WHEN $absorbed THEN p.absorbed END`
}

// ProfilesData returns what q asks for of each ID's live profile, nil
// where there is none, in one query.
func (s *Store) ProfilesData(ctx context.Context, ids []string, q graph.DataQuery) ([]*graph.ProfileData, error) {
	out := make([]*graph.ProfileData, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	recs, err := s.read(ctx, `UNWIND $ids AS id
		MATCH (p:Profile {id: id}) WHERE p.mergedInto IS NULL`+profileDataReturn(q), dataParams(q, map[string]any{"ids": ids}))
	if err != nil {
		return nil, wrap("neo4j: profiles data", err)
	}
	found, err := s.profileDataRecords(ctx, recs, q)
	if err != nil {
		return nil, fmt.Errorf("neo4j: profiles data: %w", err)
	}
	byID := make(map[string]*graph.ProfileData, len(found))
	for _, p := range found {
		byID[p.ID] = p
	}
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}

// ScanProfilesData lists live profiles' data in ID order after the given
// ID, in one query.
func (s *Store) ScanProfilesData(ctx context.Context, after string, limit int, q graph.DataQuery) ([]*graph.ProfileData, error) {
	if limit <= 0 {
		return nil, nil
	}
	recs, err := s.read(ctx, `MATCH (p:Profile)
		WHERE p.id > $after AND p.mergedInto IS NULL
		WITH p ORDER BY p.id LIMIT $limit`+profileDataReturn(q)+` ORDER BY p.id`,
		dataParams(q, map[string]any{"after": after, "limit": limit}))
	if err != nil {
		return nil, wrap("neo4j: scan profiles data", err)
	}
	out, err := s.profileDataRecords(ctx, recs, q)
	if err != nil {
		return nil, fmt.Errorf("neo4j: scan profiles data: %w", err)
	}
	return out, nil
}

func dataParams(q graph.DataQuery, params map[string]any) map[string]any {
	params["traits"], params["counts"], params["absorbed"] = len(q.Traits) > 0, q.Counts, q.Absorbed
	return params
}

func (s *Store) profileDataRecords(ctx context.Context, recs []*neo4jdriver.Record, q graph.DataQuery) ([]*graph.ProfileData, error) {
	out := make([]*graph.ProfileData, len(recs))
	for i, r := range recs {
		id, _ := r.Values[0].(string)
		p := &graph.ProfileData{ID: id}
		traits, _ := r.Values[1].(string)
		m := map[string]any{"id": id, "traits": traits}
		if err := s.seal.openProfile(ctx, s.fetchKey, m); err != nil {
			return nil, err
		}
		traits = m["traits"].(string)
		var err error
		if p.Traits, err = graph.TraitValues([]byte(traits), q.Traits); err != nil {
			return nil, fmt.Errorf("profile %s: corrupt traits: %w", id, err)
		}
		if counts, _ := r.Values[2].(string); counts != "" {
			if err := json.Unmarshal([]byte(counts), &p.Counts); err != nil {
				return nil, fmt.Errorf("profile %s: corrupt counts: %w", id, err)
			}
		}
		keys, _ := r.Values[3].([]any)
		for _, k := range keys {
			if ks, ok := k.(string); ok {
				p.Keys = append(p.Keys, parseKey(ks))
			}
		}
		slices.SortFunc(p.Keys, graph.Key.Compare)
		absorbed, _ := r.Values[4].([]any)
		for _, a := range absorbed {
			if id, ok := a.(string); ok {
				p.Absorbed = append(p.Absorbed, id)
			}
		}
		out[i] = p
	}
	return out, nil
}
