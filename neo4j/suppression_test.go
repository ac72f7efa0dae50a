package neo4j_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/neo4j"
	"github.com/idgraph/idgraph/suppression"
	suppressiontest "github.com/idgraph/idgraph/suppression/storetest"
)

func TestSuppressionListsContract(t *testing.T) { suppressiontest.Run(t, backends.OpenNeo4j) }

// reopenNeo4j opens another store on the test database, as another
// process would, closed when the test ends.
func reopenNeo4j(t *testing.T) *neo4j.Store {
	t.Helper()
	uri, user, pass := backends.Neo4jURI(t)
	s, err := neo4j.Open(context.Background(), uri, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSuppressionCountsReopen: the counts are stored, so a process opening
// the database reads those the others kept.
func TestSuppressionCountsReopen(t *testing.T) {
	suppressiontest.RunReopen(t, func(t *testing.T) (graph.Store, func() graph.Store) {
		return backends.OpenNeo4j(t), func() graph.Store { return reopenNeo4j(t) }
	})
}

// TestSuppressionCountsBuiltOnce: a database written before the count
// nodes (entries, no counts, no marker) is counted when a process opens
// it, once however many open it at the same time, and the counts are kept
// from then on.
func TestSuppressionCountsBuiltOnce(t *testing.T) {
	ctx := context.Background()
	s := backends.OpenNeo4j(t).(*neo4j.Store)
	global := suppression.Scope{Kind: suppression.Global}
	email := suppression.Scope{Kind: suppression.Channel, Target: "email"}
	var es []suppression.Entry
	for i := range 30 {
		sc, typ := global, "email"
		if i%3 == 0 {
			sc = email
		}
		if i%2 == 0 {
			typ = "phone"
		}
		es = append(es, suppression.Entry{Scope: sc, Hash: fmt.Sprintf("%064x", i), Type: typ, CreatedAt: time.Unix(0, 0).UTC()})
	}
	if n, err := s.SuppressionLists().AddSuppressionEntries(ctx, es); err != nil || n != len(es) {
		t.Fatalf("add: %d, %v", n, err)
	}
	want, err := s.SuppressionLists().SuppressionCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := neo4j.RawWrite(ctx, s, "MATCH (c:SuppressionListCount|SuppressionListCounts) DELETE c", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SuppressionLists().SuppressionCounts(ctx); err != nil || len(got) != 0 {
		t.Fatalf("counts with the count nodes deleted = %+v, %v; want none", got, err)
	}
	var wg sync.WaitGroup
	stores := make([]*neo4j.Store, 3)
	for i := range stores {
		wg.Go(func() { stores[i] = reopenNeo4j(t) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, o := range stores {
		if got, err := o.SuppressionLists().SuppressionCounts(ctx); err != nil || !slices.Equal(got, want) {
			t.Fatalf("store %d: counts after opening = %+v, %v; want %+v", i, got, err, want)
		}
	}
	rows, err := neo4j.RawRows(ctx, s, "MATCH (m:SuppressionListCounts) RETURN count(m)", nil)
	if err != nil || len(rows) != 1 || rows[0][0] != int64(1) {
		t.Fatalf("marker nodes = %v, %v; want 1", rows, err)
	}
	// Kept from then on, and not counted again by a later opening.
	if n, err := stores[0].SuppressionLists().RemoveSuppressionEntries(ctx, global, []string{es[1].Hash, es[2].Hash}); err != nil || n != 2 {
		t.Fatalf("remove: %d, %v", n, err)
	}
	if err := neo4j.RawWrite(ctx, s, "MATCH (c:SuppressionListCount) SET c.n = c.n + 1000", nil); err != nil {
		t.Fatal(err)
	}
	got, err := reopenNeo4j(t).SuppressionLists().SuppressionCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if c.N < 1000 {
			t.Fatalf("counts %+v: a later opening counted again", got)
		}
	}
}
