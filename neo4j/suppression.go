package neo4j

import (
	"context"
	"fmt"
	"slices"

	"github.com/idgraph/idgraph/suppression"
	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// suppressionSchema: a suppression list entry is (:SuppressionListEntry
// {scope, hash, type, data, addedBy}), data the entry's JSON, unique per
// (scope, hash) and indexed by hash for the delivery-time lookup. (Erasure's
// own suppression is the separate :Suppression label.)
//
// The entries of each (scope, type) are counted in a
// (:SuppressionListCount {scope, type, n}) node, changed in the same
// transaction as the entries, so that suppressionCounts reads a few count
// nodes instead of every entry. The (:SuppressionListCounts {id}) node
// says the counts are complete: a database from before them is counted
// once, at Open (buildSuppressionCounts).
var suppressionSchema = []string{
	"CREATE CONSTRAINT suppression_list_entry IF NOT EXISTS FOR (s:SuppressionListEntry) REQUIRE (s.scope, s.hash) IS UNIQUE",
	"CREATE INDEX suppression_list_hash IF NOT EXISTS FOR (s:SuppressionListEntry) ON (s.hash)",
	"CREATE CONSTRAINT suppression_list_count IF NOT EXISTS FOR (c:SuppressionListCount) REQUIRE (c.scope, c.type) IS UNIQUE",
	"CREATE CONSTRAINT suppression_list_counts IF NOT EXISTS FOR (m:SuppressionListCounts) REQUIRE m.id IS UNIQUE",
}

// addToCounts ends a statement whose rows are the entries it created (or
// deleted) as (scope, type): it adds each group's number of rows, times
// $sign, to the group's count node and returns the number of rows. The
// count nodes are locked in (scope, type) order, after every entry, so
// that two calls wait for each other rather than deadlock; SET with the
// node's own property on the right takes the node's write lock before it
// reads, so concurrent calls never lose an update.
const addToCounts = `
	WITH scope, type, count(*) AS n
	ORDER BY scope, type
	MERGE (c:SuppressionListCount {scope: scope, type: type})
	ON CREATE SET c.n = 0
	SET c.n = c.n + $sign * n
	RETURN sum(n)`

// buildSuppressionCounts counts the entries of a database from before the
// count nodes, once: the first process to open it creates the marker
// node, and the unique constraint makes any other opening at the same
// time wait for that transaction and then find the marker. It runs at
// Open, not at the first call, so that no add or remove of this process
// runs before the counts exist and none has to check for them. (A process
// of an older idgraph still running keeps adding entries without
// counting them: stop them all before starting this version.)
func (s *Store) buildSuppressionCounts(ctx context.Context) error {
	_, err := s.write(ctx, `MERGE (m:SuppressionListCounts {id: 'suppression-list-counts'})
		ON CREATE SET m.builtBy = $token
		WITH m WHERE m.builtBy = $token
		CALL {
			MATCH (s:SuppressionListEntry)
			RETURN s.scope AS scope, s.type AS type, count(*) AS n
		}
		MERGE (c:SuppressionListCount {scope: scope, type: type})
		SET c.n = n`, map[string]any{"token": newToken()})
	return wrap("neo4j: open: count suppression list entries", err)
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

// AddSuppressionEntries merges one node per (scope, hash) and adds the
// ones it created to the counts, in one transaction. Each call marks the
// nodes it creates with a token of its own, so that it counts exactly
// those, however adds interleave (the unique constraint makes a
// concurrent add of the same entry match the node rather than create
// another).
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
	recs, err := g.s.write(ctx, `UNWIND $rows AS row
		MERGE (s:SuppressionListEntry {scope: row.scope, hash: row.hash})
		ON CREATE SET s.type = row.type, s.data = row.data, s.addedBy = $token
		WITH s WHERE s.addedBy = $token
		WITH s.scope AS scope, s.type AS type`+addToCounts,
		map[string]any{"rows": rows, "token": newToken(), "sign": 1})
	if err != nil {
		return 0, wrap("neo4j: add suppression entries", err)
	}
	n, _ := recs[0].Values[0].(int64)
	return int(n), nil
}

// RemoveSuppressionEntries deletes the scope's nodes with the hashes and
// takes them off the counts, in one transaction.
func (g suppStore) RemoveSuppressionEntries(ctx context.Context, sc suppression.Scope, hashes []string) (int, error) {
	hs := slices.Compact(slices.Sorted(slices.Values(hashes)))
	if len(hs) == 0 {
		return 0, nil
	}
	// One index seek for all the hashes: unwound and matched one by one,
	// the planner scanned the label for each (minutes for 10,000). Each
	// node is locked, then matched again: a node that a concurrent remove
	// deleted while this one waited for its lock is gone from the second
	// match, so only one of the two counts it.
	recs, err := g.s.write(ctx, `MATCH (s:SuppressionListEntry) WHERE s.hash IN $hashes AND s.scope = $scope
		SET s.lock = true REMOVE s.lock
		WITH collect(s.hash) AS locked
		MATCH (s:SuppressionListEntry) WHERE s.hash IN locked AND s.scope = $scope
		WITH s, s.scope AS scope, s.type AS type
		DELETE s
		WITH scope, type`+addToCounts,
		map[string]any{"scope": sc.String(), "hashes": hs, "sign": -1})
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

// SuppressionCounts reads the count nodes (those of groups emptied since
// stay, at zero).
func (g suppStore) SuppressionCounts(ctx context.Context) ([]suppression.Count, error) {
	recs, err := g.s.read(ctx, "MATCH (c:SuppressionListCount) WHERE c.n <> 0 RETURN c.scope, c.type, c.n", nil)
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
