package neo4j_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/erase"
	erasetest "github.com/idgraph/idgraph/erase/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/neo4j"
)

func TestEraseContract(t *testing.T) { erasetest.Run(t, backends.OpenNeo4j) }

// TestEraseContractSealed runs the erasure contract with payload encryption
// on.
func TestEraseContractSealed(t *testing.T) { erasetest.Run(t, backends.OpenNeo4jSealed) }

// TestEraseUsesIndexes: every query an erasure runs finds its nodes
// through an index (or a relationship from them), so that erasing one
// person reads only that person's entries: no plan scans a label or all
// nodes. So do the reads of suppression changes servers poll, and an
// unsuppression.
func TestEraseUsesIndexes(t *testing.T) {
	ctx := context.Background()
	s := backends.OpenNeo4j(t).(*neo4j.Store)
	people := erasetest.Generate(t, s, 3, 41)
	var recs []consent.Record
	for _, k := range people[1].Keys {
		recs = append(recs, consent.Record{ID: "c1", Key: k, Purpose: "marketing", Status: consent.Granted, Time: time.Now(), Source: "test"})
	}
	if err := s.Consent().AppendConsent(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := s.Identifier(ctx, people[1].Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	type query struct {
		cypher string
		params map[string]any
	}
	var queries []query
	restore := neo4j.SetTrace(s, func(c string, p map[string]any) { queries = append(queries, query{c, p}) })
	out, err := s.Erasure().ErasePerson(ctx, erase.Request{ID: "req-plans", Profile: n.Profile, At: time.Now(),
		Suppress: erase.NewHasher([]byte("pepper")).Hash})
	if err != nil || len(out.Profiles) == 0 {
		t.Fatalf("erase: %+v, %v", out, err)
	}
	// And what other servers poll to hear of it, and an unsuppression.
	if _, err := s.Erasure().SuppressionChanges(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Erasure().RemoveSuppressions(ctx, out.Suppressed[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erasure().SuppressionChanges(ctx, 0); err != nil {
		t.Fatal(err)
	}
	restore()
	if len(queries) < 10 {
		t.Fatalf("traced %d queries, want every query of the erasure", len(queries))
	}
	for _, q := range queries {
		ops, err := neo4j.PlanOperators(ctx, s, q.cypher, q.params)
		if err != nil {
			t.Fatalf("explain %s: %v", q.cypher, err)
		}
		for _, op := range ops {
			if strings.Contains(op, "LabelScan") || strings.Contains(op, "AllNodesScan") ||
				strings.Contains(op, "RelationshipTypeScan") || strings.Contains(op, "AllRelationshipsScan") {
				t.Errorf("erasure query scans (%s):\n%s", op, q.cypher)
			}
		}
	}
}
