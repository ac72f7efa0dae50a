package match

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/idgraph/idgraph/graph"
)

// MaxLinkRecords bounds the stored records one bulk linking run reads
// (about 1 GB of memory per million records); past it `idgraph match`
// re-scores profile by profile instead.
const MaxLinkRecords = 1_000_000

// LinkReport says what a bulk linking run compared and found.
type LinkReport struct {
	Records    int `json:"records"`
	Candidates int `json:"candidates"`
	// Joins are pairs the run clustered together; Held are pairs at or
	// above review it kept apart.
	Joins int `json:"joins"`
	Held  int `json:"held"`
}

// Links runs the automatic model over every stored imported record in
// bulk, as `idgraph eval` does over a file, and returns the pairs to
// record in the graph: pairs within one of the run's clusters join their
// profiles, pairs between clusters scored at or above review wait for a
// steward. Incremental matching compares one profile with what is filed
// before it and merges as it goes, so a chain of pairs can join people a
// whole-set clustering keeps apart; this gives the graph the bulk run's
// clusters. It returns nil links when no model trained with no set-up
// step is in use, or when the records exceed MaxLinkRecords: the caller
// then re-scores profile by profile. Unless dryRun, the term
// frequencies incremental matching uses are counted afresh over the
// records.
func (t *Trainer) Links(ctx context.Context, accept, review float64, dryRun bool) ([]graph.Link, *LinkReport, error) {
	t.mu.Lock() // one training or bulk pass at a time
	defer t.mu.Unlock()
	a := t.auto.Load()
	if a == nil {
		return nil, nil, nil
	}
	stored, more, err := t.storedRecords(ctx, MaxLinkRecords)
	if err != nil || more {
		return nil, nil, err
	}
	// In key order: the run does not depend on how merges have grouped
	// the records into profiles, so a second run finds the same clusters.
	slices.SortStableFunc(stored, func(x, y storedRecord) int { return x.key.Compare(y.key) })
	// The records are compared as incremental matching compares profiles:
	// columns renamed to the model's fields.
	gm := NewGraphMatcher(a.Model, t.Hold).WithRename(a.Rename())
	var recs []Record
	var keys []graph.Key
	have := map[graph.Key]bool{}
	for _, r := range stored {
		if have[r.key] {
			continue // one record per identifier
		}
		have[r.key] = true
		recs = append(recs, Record{ID: r.key.String(), Fields: gm.fields(r.fields)})
		keys = append(keys, r.key)
	}
	rep := &LinkReport{Records: len(recs)}
	if len(recs) < 2 {
		return []graph.Link{}, rep, nil
	}
	ds, err := NewDataset(&a.Model.Config, recs)
	if err != nil {
		return nil, nil, fmt.Errorf("matching: links: %w", err)
	}
	// Incremental matching weighs names by the counts of every stored
	// record from now on, not only those the model was trained on.
	if !dryRun {
		fresh := *a
		fresh.Frequencies = ds.Frequencies()
		if err := t.save(ctx, &fresh); err != nil {
			return nil, nil, err
		}
	}
	var mu sync.Mutex
	var kept []ScoredPair
	res, err := Run(ds, Options{Context: ctx, Model: a.Model, NoHold: !t.Hold, Cluster: ClusterOptions{Threshold: accept},
		Observe: func(ps []ScoredPair) {
			mu.Lock()
			defer mu.Unlock()
			rep.Candidates += len(ps)
			for _, p := range ps {
				if p.Prob >= review {
					kept = append(kept, p)
				}
			}
		}})
	if err != nil {
		return nil, nil, fmt.Errorf("matching: links: %w", err)
	}
	// Joins first, strongest first: a held pair between records a join
	// has put in one profile is then no longer proposed.
	slices.SortFunc(kept, func(x, y ScoredPair) int {
		jx, jy := res.Labels[x.I] == res.Labels[x.J], res.Labels[y.I] == res.Labels[y.J]
		if jx != jy {
			if jx {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(y.Weight, x.Weight), cmp.Compare(x.I, y.I), cmp.Compare(x.J, y.J))
	})
	links := make([]graph.Link, len(kept))
	for n, p := range kept {
		l := graph.Link{A: keys[p.I], B: keys[p.J], Model: a.Model.Version, Join: res.Labels[p.I] == res.Labels[p.J]}
		switch {
		case l.Join:
			rep.Joins++
		case p.Held:
			l.Hold = graph.ReasonHeld
		case p.Prob >= accept:
			l.Hold = graph.ReasonClusterGuard
		}
		if !l.Join {
			rep.Held++
		}
		i, j := int(p.I), int(p.J)
		l.Score = graph.MatchScore{Probability: p.Prob, Hold: p.Held, Explain: func() json.RawMessage {
			b, _ := json.Marshal(res.Scorer.Explain(i, j))
			return b
		}}
		links[n] = l
	}
	return links, rep, nil
}
