package segments

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/idgraph/idgraph/graph"
)

// backfillPage is how many profiles a backfill evaluates and saves at
// once, between progress reports: a page is one synced commit, so the
// commits, not the evaluations, bound a backfill of small pages.
const backfillPage = 1000

// Backfill evaluates a definition for every live profile, reporting its
// progress in the definition's status, and makes it LIVE (or FAILED).
// Events keep flowing meanwhile: each profile's evaluation is exact when
// it is saved, and a save from a stale state is evaluated again, so a
// profile changed during the backfill is neither missed nor counted
// twice. A newer version of the definition stops this backfill (its own
// replaces it).
//
// A DISABLED definition (or a deleted one, passed as DISABLED) is swept
// instead: every profile is evaluated with the loaded definitions, which
// drops its entries (its members exit, reason definition), and its status
// is left alone.
func (e *Engine) Backfill(ctx context.Context, d *Definition) error {
	sweep := d.Status.State == StateDisabled
	total, err := e.graph.CountProfiles(ctx)
	if err != nil {
		return fmt.Errorf("segments: backfill %s: %w", d.Key, err)
	}
	done := 0
	for after := ""; ; {
		// Only the IDs: each profile is read again when it is evaluated.
		ps, err := e.graph.ScanProfilesData(ctx, after, backfillPage, graph.DataQuery{})
		if err != nil {
			return e.failBackfill(ctx, d, err)
		}
		if len(ps) == 0 {
			break
		}
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		if err := e.backfillProfiles(ctx, ids, d.Ref()); err != nil {
			return e.failBackfill(ctx, d, err)
		}
		done += len(ps)
		after = ps[len(ps)-1].ID
		if sweep {
			continue
		}
		progress := float64(done) / float64(max(total, done))
		if err := e.store.SetStatus(ctx, d.Ref(), d.Version, Status{State: StateBackfilling, Progress: progress}); err != nil {
			return fmt.Errorf("segments: backfill %s: %w", d.Key, err) // a newer version, most likely
		}
	}
	if sweep {
		return nil
	}
	if err := e.store.SetStatus(ctx, d.Ref(), d.Version, Status{State: StateLive}); err != nil {
		return fmt.Errorf("segments: backfill %s: %w", d.Key, err)
	}
	return nil
}

// backfillProfiles evaluates a definition for a page of live profiles, on
// every CPU, and saves the results in one transaction. When the
// transaction is refused (a profile's state was saved meanwhile by the
// live path: stale) nothing is written and the page is updated profile by
// profile instead, each evaluated again until its save is current; a
// profile whose saves overlap another's (a merge between the page's read
// and its evaluation) is too.
func (e *Engine) backfillProfiles(ctx context.Context, ids []string, r Ref) error {
	ch := Change{Refs: []Ref{r}}
	plans := make([][]Save, len(ids))
	errs := make([]error, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ids)) {
		wg.Go(func() {
			for j := int(next.Add(1) - 1); j < len(ids); j = int(next.Add(1) - 1) {
				_, plans[j], errs[j] = e.plan(ctx, ids[j], ch, ReasonDefinition)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var saves []Save
	var alone []string
	saved := map[string]bool{}
	for j, ss := range plans {
		if slices.ContainsFunc(ss, func(sv Save) bool { return saved[sv.State.Profile] }) {
			alone = append(alone, ids[j])
			continue
		}
		for _, sv := range ss {
			saved[sv.State.Profile] = true
		}
		saves = append(saves, ss...)
	}
	if len(saves) > 0 {
		if _, err := e.store.SaveStates(ctx, saves); errors.Is(err, ErrStale) {
			alone = ids
		} else if err != nil {
			return err
		}
	}
	for _, id := range alone {
		if _, err := e.update(ctx, id, ch, ReasonDefinition); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) failBackfill(ctx context.Context, d *Definition, cause error) error {
	if d.Status.State == StateDisabled {
		return fmt.Errorf("segments: sweep %s: %w", d.Key, cause) // a sweep has no status to fail
	}
	st := Status{State: StateFailed, Code: string(graph.ErrorKind(cause)), Message: graph.ErrorMessage(cause)}
	if err := e.store.SetStatus(ctx, d.Ref(), d.Version, st); err != nil {
		return fmt.Errorf("segments: backfill %s: %w (and recording the failure: %w)", d.Key, cause, err)
	}
	return fmt.Errorf("segments: backfill %s: %w", d.Key, cause)
}
