package graph_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
)

// flatMatcher files every profile under one key and gives every pair the
// same score.
type flatMatcher struct{ p float64 }

func (m flatMatcher) Version() string                         { return "flat" }
func (m flatMatcher) BlockingKeys(map[string]string) []string { return []string{"all"} }
func (m flatMatcher) Score(a, b map[string]string) graph.MatchScore {
	return graph.MatchScore{Probability: m.p}
}

// lockCounting counts the keys stitching transactions lock.
type lockCounting struct {
	graph.Store
	keys int
}

func (s *lockCounting) Update(ctx context.Context, fn func(context.Context, graph.Tx) error) error {
	return s.Store.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		return fn(ctx, lockCountingTx{tx, s})
	})
}

type lockCountingTx struct {
	graph.Tx
	s *lockCounting
}

func (t lockCountingTx) LockIdentifiers(ctx context.Context, keys []graph.Key) (map[graph.Key]*graph.Identifier, error) {
	t.s.keys += len(keys)
	return t.Tx.LockIdentifiers(ctx, keys)
}

// TestAnchorsLockedOnlyForScoredPairs: a batch locks the anchor identifiers
// of the candidates whose pair scores at or above review (it reads and
// writes their edge), and not those of candidates scored below, on every
// backend and with the batch prefetch on or off.
func TestAnchorsLockedOnlyForScoredPairs(t *testing.T) {
	batch := func(from, n int) []*graph.Observation {
		var obs []*graph.Observation
		for i := from; i < from+n; i++ {
			obs = append(obs, &graph.Observation{MessageID: fmt.Sprintf("m%d", i), Source: "test",
				Identifiers: []graph.Key{{Type: "rec_id", Value: fmt.Sprint(i)}},
				Traits:      map[string]any{"name": fmt.Sprintf("name %d", i)}})
		}
		return obs
	}
	for _, b := range backends.All() {
		for _, prefetch := range []bool{true, false} {
			for _, tc := range []struct {
				score float64
				want  int // keys locked by the second batch
			}{
				{0.1, 5},      // its own identifiers only
				{0.7, 5 + 10}, // and the ten candidates' anchors (pairs to review)
			} {
				t.Run(fmt.Sprintf("%s/prefetch=%v/score=%v", b.Name, prefetch, tc.score), func(t *testing.T) {
					defer graph.SetPrefetch(prefetch)()
					s := &lockCounting{Store: b.Open(t)}
					cfg := graph.DefaultConfig()
					cfg.Limits["rec_id"] = 100
					st := graph.NewStitcher(s, cfg)
					st.Matcher, st.MatchConfig = flatMatcher{tc.score}, graph.DefaultMatchConfig()
					ctx := context.Background()
					if _, err := st.Ingest(ctx, batch(0, 10)); err != nil {
						t.Fatal(err)
					}
					s.keys = 0
					if _, err := st.Ingest(ctx, batch(10, 5)); err != nil {
						t.Fatal(err)
					}
					if s.keys != tc.want {
						t.Errorf("the second batch locked %d identifiers, want %d", s.keys, tc.want)
					}
				})
			}
		}
	}
}
