package graph_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/internal/matchtest"
	"github.com/idgraph/idgraph/match"
)

// TestPrefetchSameResults ingests FEBRL1 with a model trained on it, in
// batches of 250 (candidates, their profiles and anchors read for the whole
// batch), then re-scores every profile (Rematch), and again with the batch
// prefetch off (each record reads its own): the profiles and the edges,
// with their kinds, statuses, scores and explanations, must be the same,
// on every backend.
func TestPrefetchSameResults(t *testing.T) {
	table := matchtest.FEBRL(t, "dataset1.csv")
	model := matchtest.Train(t, table)
	obs := matchtest.Observations(table.Records("rec_id"))
	var keys []graph.Key
	for _, o := range obs {
		keys = append(keys, o.Identifiers...)
	}
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := b.Open(t)
			run := func(prefetch bool) (ingested, rematched snapshot) {
				defer graph.SetPrefetch(prefetch)()
				gcfg := graph.DefaultConfig()
				gcfg.Limits["rec_id"] = 20
				st := graph.NewStitcher(s, gcfg)
				// Rematch reviews at a lower threshold, so that it finds
				// pairs ingest did not store.
				st.Matcher, st.MatchConfig = match.NewGraphMatcher(model, true), graph.DefaultMatchConfig()
				matchtest.Ingest(t, st, obs, 250)
				ingested = takeSnapshot(t, s, keys)
				st.MatchConfig.Review = 0.3
				matchtest.RematchAll(t, st, s)
				return ingested, takeSnapshot(t, s, keys)
			}
			batched, batchedRematch := run(true)
			if r, ok := s.(interface{ Reset(context.Context) error }); ok {
				if err := r.Reset(ctx); err != nil { // Neo4j's one test database
					t.Fatal(err)
				}
			} else {
				s = b.Open(t)
			}
			single, singleRematch := run(false)
			if len(batched.edges) < 400 || batched.merged < 400 {
				t.Fatalf("FEBRL1 in the graph: %d edges, %d records merged; want hundreds", len(batched.edges), batched.merged)
			}
			batched.diff(t, "ingest", single)
			batchedRematch.diff(t, "rematch", singleRematch)
			t.Logf("%d edges, %d records in profiles of two or more; after rematch %d edges",
				len(batched.edges), batched.merged, len(batchedRematch.edges))
		})
	}
}

// snapshot is what matching decided, without the random profile IDs.
type snapshot struct {
	profiles []string // each profile's record IDs, sorted
	edges    []string
	merged   int
}

func takeSnapshot(t *testing.T, s graph.Store, keys []graph.Key) snapshot {
	t.Helper()
	ctx := context.Background()
	ns, err := s.GetIdentifiers(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	byProfile := map[string][]string{}
	ps := make([]string, len(ns))
	for i, n := range ns {
		ps[i] = n.Profile
	}
	live, err := s.GetProfiles(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range live {
		id := p.ID
		for p.MergedInto != "" { // an identifier names the profile it joined
			q, err := s.Profile(ctx, p.MergedInto)
			if err != nil {
				t.Fatal(err)
			}
			p, id = q, q.ID
		}
		byProfile[id] = append(byProfile[id], ns[i].Value)
	}
	var snap snapshot
	for _, ids := range byProfile {
		slices.Sort(ids)
		snap.profiles = append(snap.profiles, strings.Join(ids, " "))
		if len(ids) > 1 {
			snap.merged += len(ids)
		}
	}
	slices.Sort(snap.profiles)
	es, err := s.EdgesOf(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		snap.edges = append(snap.edges, fmt.Sprintf("%s %s %s %s %s score=%.6f model=%s count=%d %s",
			e.A, e.B, e.Kind, e.Status, e.Reason, e.Score, e.Model, e.Count, e.Explanation))
	}
	slices.Sort(snap.edges)
	return snap
}

func (a snapshot) diff(t *testing.T, stage string, b snapshot) {
	t.Helper()
	for _, d := range []struct {
		what string
		x, y []string
	}{{"profiles", a.profiles, b.profiles}, {"edges", a.edges, b.edges}} {
		if slices.Equal(d.x, d.y) {
			continue
		}
		t.Errorf("%s: %s differ with the batch prefetch (%d) and without (%d)", stage, d.what, len(d.x), len(d.y))
		for i := range max(len(d.x), len(d.y)) {
			var x, y string
			if i < len(d.x) {
				x = d.x[i]
			}
			if i < len(d.y) {
				y = d.y[i]
			}
			if x != y {
				t.Errorf("first difference:\n  batched: %.300s\n  single:  %.300s", x, y)
				break
			}
		}
	}
}
