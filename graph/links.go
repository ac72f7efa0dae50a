package graph

import (
	"context"
	"fmt"
	"slices"
)

// ReasonClusterGuard: a bulk run scored the pair at or above accept but
// its clustering kept the two records apart (a chain through them would
// join people its other pairs say are different).
const ReasonClusterGuard = "cluster_guard"

// Link is a scored pair of records found by a bulk run over the stored
// records (`idgraph match` with a model trained with no set-up step),
// between the identifiers that name the records.
type Link struct {
	A, B  Key
	Score MatchScore
	// Model is the version of the model that scored the pair.
	Model string
	// Join says the bulk run put the two records in one cluster: the pair
	// is accepted, unless a steward's decision or a guard of the graph's
	// (merge protection, cannot-link, the chaining guard) says otherwise.
	Join bool
	// Hold sends a pair that is not joined to review with this reason
	// (default ReasonReview).
	Hold string
}

// ApplyLinks records a bulk run's links in one transaction: joined pairs
// merge their profiles through the same guards as incremental matching,
// the others wait for review. A link naming an identifier that is no
// longer stored (erased since the run read it) is skipped.
func (s *Stitcher) ApplyLinks(ctx context.Context, links []Link) (Result, error) {
	res, err := s.update(ctx, func(ctx context.Context, st *stitch) (Result, error) {
		if err := st.applyLinks(ctx, links); err != nil {
			return Result{}, err
		}
		return st.res, st.apply(ctx)
	})
	if err != nil {
		return Result{}, fmt.Errorf("apply links: %w", err)
	}
	return res, nil
}

// FileBlocks files the live profiles among ids under the current model's
// blocking keys, as matching them would, without scoring them. A bulk
// pass joins profiles without comparing each with its block, so the
// profiles it leaves must be filed for later observations to find them
// as candidates. Absorbed IDs and profiles without traits are skipped.
func (s *Stitcher) FileBlocks(ctx context.Context, ids []string) error {
	if s.CurrentMatcher() == nil {
		return Errorf(KindInvalid, "no matching model is loaded (serve --model)")
	}
	_, err := s.update(ctx, func(ctx context.Context, st *stitch) (Result, error) {
		ids = slices.Sorted(slices.Values(ids))
		if err := st.lockProfiles(ctx, ids); err != nil {
			return Result{}, err
		}
		keys := map[string][]string{}
		var all []string
		for _, id := range ids {
			if p := st.profiles[id]; p.MergedInto == "" && len(p.Traits) > 0 {
				t := p.StringTraits()
				keys[id] = st.blockingKeys(fingerprint(t), t)
				all = append(all, keys[id]...)
			}
		}
		if err := st.loadBlocks(ctx, all); err != nil { // one read for the batch
			return Result{}, err
		}
		for _, id := range ids {
			if ks := keys[id]; len(ks) > 0 {
				if _, err := st.file(ctx, st.profiles[id], ks); err != nil {
					return Result{}, err
				}
			}
		}
		return st.res, st.apply(ctx)
	})
	if err != nil {
		return fmt.Errorf("file blocks: %w", err)
	}
	return nil
}

// PlanLinks is ApplyLinks without writing: what it would merge and send
// to review, with the thresholds given (nil: the configured ones).
func (s *Stitcher) PlanLinks(ctx context.Context, links []Link, cfg *MatchConfig) (Result, []Planned, error) {
	var res Result
	var plan []Planned
	err := s.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		st := s.newStitch(tx)
		st.dryRun = true
		if cfg != nil {
			st.matchCfg = *cfg
		}
		err := st.applyLinks(ctx, links)
		res, plan = st.res, st.plan()
		return err
	})
	if err != nil {
		return Result{}, nil, fmt.Errorf("plan links: %w", err)
	}
	return res, plan, nil
}

func (st *stitch) applyLinks(ctx context.Context, links []Link) error {
	keys := make([]Key, 0, 2*len(links))
	for _, l := range links {
		keys = append(keys, l.A, l.B)
	}
	missing, err := st.loadStored(ctx, keys)
	if err != nil {
		return err
	}
	// A backend that made placeholders for them while locking drops them.
	st.changes.Unused = append(st.changes.Unused, missing...)
	var pairs [][2]Key
	for _, l := range links {
		if st.ids[l.A] != nil && st.ids[l.B] != nil {
			pairs = append(pairs, Pair(l.A, l.B))
		}
	}
	if err := st.loadEdges(ctx, pairs); err != nil {
		return err
	}
	o := &Observation{MessageID: "match:bulk", Source: "match", Time: st.now}
	for _, l := range links {
		a, b := st.ids[l.A], st.ids[l.B]
		if a == nil || b == nil || l.A == l.B {
			continue
		}
		g, q := st.root(a), st.root(b)
		if g == nil || q == nil || g == q {
			continue // one profile already: nothing to propose
		}
		hold := l.Hold
		if !l.Join && hold == "" {
			hold = ReasonReview
		}
		if err := st.propose(ctx, o, Pair(l.A, l.B), g, q, l.Score, l.Model, hold); err != nil {
			return err
		}
	}
	return nil
}

// loadStored locks the stored identifiers among keys that the
// transaction has not loaded yet, with their profiles, and returns the
// keys that are not stored.
func (st *stitch) loadStored(ctx context.Context, keys []Key) ([]Key, error) {
	var want []Key
	seen := map[Key]bool{}
	for _, k := range keys {
		if _, ok := st.ids[k]; !ok && k != (Key{}) && !seen[k] {
			seen[k] = true
			want = append(want, k)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	slices.SortFunc(want, Key.Compare)
	got, err := st.tx.LockIdentifiers(ctx, want)
	if err != nil {
		return nil, err
	}
	var pids []string
	var missing []Key
	for _, k := range want {
		n, ok := got[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		st.ids[k] = n
		pids = append(pids, n.Profile)
	}
	return missing, st.lockProfiles(ctx, pids)
}
