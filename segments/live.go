package segments

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/idgraph/idgraph/graph"
)

// planPage is plan for a page of profiles, each with its change, all
// evaluated for the same reason (pending data changes, or a backfill's
// definition): it reads what the page's evaluations need with one call
// per kind of data (profiles, survivors, states, absorbed states,
// identifiers, timelines) instead of one per profile, and evaluates the
// profiles on every CPU. It returns each profile's saves, or why it could
// not be evaluated; a read that fails fails the whole page.
func (e *Engine) planPage(ctx context.Context, ids []string, changes []Change, reason string) ([][]Save, []error) {
	plans, errs := make([][]Save, len(ids)), make([]error, len(ids))
	fail := func(i int, err error) {
		errs[i] = fmt.Errorf("segments: update %s: %w", ids[i], err)
	}
	failAll := func(err error) ([][]Save, []error) {
		for i := range ids {
			fail(i, err)
		}
		return plans, errs
	}
	e.mu.RLock()
	defs := e.defs
	e.mu.RUnlock()
	now := e.opt.Now().UTC()

	ps, err := e.graph.GetProfiles(ctx, ids)
	if err != nil {
		return failAll(err)
	}
	var survivors []string
	for _, p := range ps {
		if p != nil && p.MergedInto != "" {
			survivors = append(survivors, p.MergedInto)
		}
	}
	if len(survivors) > 0 {
		ss, err := e.graph.GetProfiles(ctx, survivors)
		if err != nil {
			return failAll(err)
		}
		for i, k := 0, 0; i < len(ps); i++ {
			if ps[i] != nil && ps[i].MergedInto != "" {
				ps[i], k = ss[k], k+1
			}
		}
	}
	var jobs []*planJob
	var at []int // the page index of each job
	for i, p := range ps {
		if p == nil {
			fail(i, graph.Errorf(graph.KindNotFound, "profile %q not found", ids[i]))
			continue
		}
		jobs, at = append(jobs, &planJob{p: p, ch: changes[i], reason: reason}), append(at, i)
	}
	live := make([]string, len(jobs))
	for k, j := range jobs {
		live[k] = j.p.ID
	}
	states, err := e.store.States(ctx, live)
	if err != nil {
		return failAll(err)
	}
	var absorbedIDs []string
	for k, j := range jobs {
		j.st = states[k]
		if j.merged() {
			absorbedIDs = append(absorbedIDs, j.p.Absorbed...)
		}
	}
	absorbed, err := e.store.States(ctx, absorbedIDs)
	if err != nil {
		return failAll(err)
	}
	var reading []*planJob
	for k, j := range jobs {
		var as []*ProfileState
		if j.merged() {
			as, absorbed = absorbed[:len(j.p.Absorbed)], absorbed[len(j.p.Absorbed):]
		}
		if err := e.decide(ctx, j, defs, as, now); err != nil {
			fail(at[k], err)
			jobs[k] = nil
			continue
		}
		if j.needsEvents() {
			reading = append(reading, j)
		}
	}
	rs := make([]*graph.Profile, len(reading))
	for k, j := range reading {
		rs[k] = j.p
	}
	evs, err := profilesEvents(ctx, e.graph, rs)
	if err != nil {
		return failAll(err)
	}
	for k, j := range reading {
		j.events = evs[k]
	}
	// Blank results, for the definitions a profile holds nothing of: once
	// a page, as they depend on the instant.
	if len(jobs) > 1 {
		b := defs.blank(now)
		for _, j := range jobs {
			if j != nil {
				j.blank = b
			}
		}
	}
	inParallel(len(jobs), func(k int) {
		if j := jobs[k]; j != nil {
			if err := j.eval(); err != nil {
				fail(at[k], err)
				return
			}
			plans[at[k]] = j.result()
		}
	})
	return plans, errs
}

// inParallel calls fn(0) to fn(n-1) on up to GOMAXPROCS goroutines and
// returns when all have returned.
func inParallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}
