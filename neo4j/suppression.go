package neo4j

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/idgraph/idgraph/suppression"
	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// suppressionSchema: a suppression list entry is (:SuppressionListEntry
// {scope, hash, type, data, addedBy}), data the entry's JSON, unique per
// (scope, hash) and indexed by hash for the delivery-time lookup. (Erasure's
// own suppression is the separate :Suppression label.)
var suppressionSchema = []string{
	"CREATE CONSTRAINT suppression_list_entry IF NOT EXISTS FOR (s:SuppressionListEntry) REQUIRE (s.scope, s.hash) IS UNIQUE",
	"CREATE INDEX suppression_list_hash IF NOT EXISTS FOR (s:SuppressionListEntry) ON (s.hash)",
}

var _ suppression.Backend = (*Store)(nil)

// SuppressionLists returns the store of suppression list entries.
func (s *Store) SuppressionLists() suppression.Store { return suppStore{s} }

type suppStore struct{ s *Store }

func decodeEntries(op string, recs []*neo4jdriver.Record) ([]suppression.Entry, error) {
	entries, err := decodeRows[suppression.Entry](op, recs, 0)
	if err != nil {
		return nil, err
	}
	out := make([]suppression.Entry, len(entries))
	for i, e := range entries {
		out[i] = *e
	}
	return out, nil
}

// AddSuppressionEntries merges one node per (scope, hash) in one
// transaction. Each call marks the nodes it creates with a token of its
// own, so that it counts exactly those, however adds interleave (the
// unique constraint makes a concurrent add of the same entry match the
// node rather than create another).
func (g suppStore) AddSuppressionEntries(ctx context.Context, es []suppression.Entry) (int, error) {
	seen := map[[2]string]bool{}
	rows := make([]map[string]any, 0, len(es))
	for _, e := range es {
		k := [2]string{e.Scope.String(), e.Hash}
		if seen[k] {
			continue
		}
		seen[k] = true
		data, err := encode(e)
		if err != nil {
			return 0, fmt.Errorf("neo4j: add suppression entries: %w", err)
		}
		rows = append(rows, map[string]any{"scope": k[0], "hash": e.Hash, "type": e.Type, "data": data})
	}
	if len(rows) == 0 {
		return 0, nil
	}
	b := make([]byte, 16)
	rand.Read(b)
	recs, err := g.s.write(ctx, `UNWIND $rows AS row
		MERGE (s:SuppressionListEntry {scope: row.scope, hash: row.hash})
		ON CREATE SET s.type = row.type, s.data = row.data, s.addedBy = $token
		RETURN count(CASE WHEN s.addedBy = $token THEN 1 END)`,
		map[string]any{"rows": rows, "token": hex.EncodeToString(b)})
	if err != nil {
		return 0, wrap("neo4j: add suppression entries", err)
	}
	n, _ := recs[0].Values[0].(int64)
	return int(n), nil
}

// RemoveSuppressionEntries deletes the scope's nodes with the hashes.
func (g suppStore) RemoveSuppressionEntries(ctx context.Context, sc suppression.Scope, hashes []string) (int, error) {
	hs := slices.Compact(slices.Sorted(slices.Values(hashes)))
	if len(hs) == 0 {
		return 0, nil
	}
	// One index seek for all the hashes: unwound and matched one by one,
	// the planner scanned the label for each (minutes for 10,000).
	recs, err := g.s.write(ctx, `MATCH (s:SuppressionListEntry) WHERE s.hash IN $hashes AND s.scope = $scope
		DELETE s
		RETURN count(*)`, map[string]any{"scope": sc.String(), "hashes": hs})
	if err != nil {
		return 0, wrap("neo4j: remove suppression entries", err)
	}
	n, _ := recs[0].Values[0].(int64)
	return int(n), nil
}

// SuppressionEntries pages through a scope's entries by hash.
func (g suppStore) SuppressionEntries(ctx context.Context, sc suppression.Scope, after string, limit int) ([]suppression.Entry, error) {
	recs, err := g.s.read(ctx, `MATCH (s:SuppressionListEntry {scope: $scope}) WHERE s.hash > $after
		RETURN s.data ORDER BY s.hash LIMIT $limit`,
		map[string]any{"scope": sc.String(), "after": after, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: suppression entries", err)
	}
	return decodeEntries("neo4j: suppression entries", recs)
}

// SuppressionCounts counts the nodes by scope and type.
func (g suppStore) SuppressionCounts(ctx context.Context) ([]suppression.Count, error) {
	recs, err := g.s.read(ctx, "MATCH (s:SuppressionListEntry) RETURN s.scope, s.type, count(*)", nil)
	if err != nil {
		return nil, wrap("neo4j: suppression counts", err)
	}
	out := make([]suppression.Count, 0, len(recs))
	for _, r := range recs {
		raw, _ := r.Values[0].(string)
		sc, err := suppression.ParseScope(raw)
		if err != nil {
			return nil, fmt.Errorf("neo4j: suppression counts: corrupt scope: %w", err)
		}
		typ, _ := r.Values[1].(string)
		n, _ := r.Values[2].(int64)
		out = append(out, suppression.Count{Scope: sc, Type: typ, N: int(n)})
	}
	suppression.SortCounts(out)
	return out, nil
}

// SuppressionsOf reads the entries of the hashes through the hash index,
// in one query.
func (g suppStore) SuppressionsOf(ctx context.Context, hashes []string) ([]suppression.Entry, error) {
	hs := slices.Compact(slices.Sorted(slices.Values(hashes)))
	if len(hs) == 0 {
		return nil, nil
	}
	recs, err := g.s.read(ctx, "MATCH (s:SuppressionListEntry) WHERE s.hash IN $hashes RETURN s.data",
		map[string]any{"hashes": hs})
	if err != nil {
		return nil, wrap("neo4j: suppressions of", err)
	}
	out, err := decodeEntries("neo4j: suppressions of", recs)
	if err != nil {
		return nil, err
	}
	suppression.SortEntries(out)
	return out, nil
}
