package segments

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments/lang"
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
//
// Pages are read one ahead of the page being evaluated and saved. When
// no loaded definition reads events (a trait-only segment), a page is
// read in bulk (its states, then its data column) while the one before
// is saved; otherwise its profiles, states, identifiers and timelines
// are read with one call each when it is evaluated (planPage).
func (e *Engine) Backfill(ctx context.Context, d *Definition) error {
	sweep := d.Status.State == StateDisabled
	total, err := e.graph.CountProfiles(ctx)
	if err != nil {
		return fmt.Errorf("segments: backfill %s: %w", d.Key, err)
	}
	e.mu.RLock()
	defs := e.defs
	e.mu.RUnlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := 0
	for pg := range e.backfillPages(ctx, defs, d.Ref()) {
		if pg.err != nil {
			return e.failBackfill(ctx, d, pg.err)
		}
		if err := e.backfillPage(ctx, pg, d.Ref()); err != nil {
			return e.failBackfill(ctx, d, err)
		}
		done += len(pg.ids)
		if sweep {
			continue
		}
		progress := float64(done) / float64(max(total, done))
		if err := e.store.SetStatus(ctx, d.Ref(), d.Version, Status{State: StateBackfilling, Progress: progress}); err != nil {
			return fmt.Errorf("segments: backfill %s: %w", d.Key, err) // a newer version, most likely
		}
	}
	if err := ctx.Err(); err != nil {
		return e.failBackfill(ctx, d, err)
	}
	if sweep {
		return nil
	}
	if err := e.store.SetStatus(ctx, d.Ref(), d.Version, Status{State: StateLive}); err != nil {
		return fmt.Errorf("segments: backfill %s: %w", d.Key, err)
	}
	return nil
}

// pageRead is one page of a backfill as read: the IDs of live profiles
// and, when read in bulk (data set), their states, then their data as
// query q asks for it (nil where a profile is no longer live).
type pageRead struct {
	ids    []string
	defs   *definitions
	q      graph.DataQuery
	states []*ProfileState
	data   []*graph.ProfileData
	err    error
}

// backfillPages reads the pages of a backfill of r in ID order, each while
// the one before is evaluated and saved, until the end, an error (the last
// page sent) or ctx's end. Pages are read in bulk when r and what reads it
// read no events: a state saved with the definitions before needs only
// those evaluated (definitions.start).
func (e *Engine) backfillPages(ctx context.Context, defs *definitions, r Ref) <-chan pageRead {
	q, bulk := dataQuery(defs.affected(Change{Refs: []Ref{r}}, nil))
	pages := make(chan pageRead)
	go func() {
		defer close(pages)
		for after := ""; ; {
			pg := e.readPage(ctx, after, defs, q, bulk)
			if pg.err == nil && len(pg.ids) == 0 {
				return
			}
			select {
			case pages <- pg:
			case <-ctx.Done():
				return
			}
			if pg.err != nil {
				return
			}
			after = pg.ids[len(pg.ids)-1]
		}
	}()
	return pages
}

// readPage reads the page after the given ID. The states are read before
// the data: a profile saved after its data was read is then a stale save,
// evaluated again, never one that overwrites newer results with results
// of older data.
func (e *Engine) readPage(ctx context.Context, after string, defs *definitions, q graph.DataQuery, bulk bool) pageRead {
	ps, err := e.graph.ScanProfilesData(ctx, after, backfillPage, graph.DataQuery{})
	if err != nil || len(ps) == 0 {
		return pageRead{err: err}
	}
	pg := pageRead{ids: make([]string, len(ps))}
	for i, p := range ps {
		pg.ids[i] = p.ID
	}
	if !bulk {
		return pg
	}
	pg.defs, pg.q = defs, q
	if pg.states, err = e.store.States(ctx, pg.ids); err != nil {
		return pageRead{err: err}
	}
	if pg.data, err = e.graph.ProfilesData(ctx, pg.ids, q); err != nil {
		return pageRead{err: err}
	}
	return pg
}

// dataQuery is what a bulk read of a page asks of each profile for the
// definitions cs to be evaluated: the traits they read, the identifier
// counts and the absorbed profiles (the profile's Identity). bulk is
// false when one of them reads events: those pages are read by planPage.
func dataQuery(cs []*compiled) (q graph.DataQuery, bulk bool) {
	q = graph.DataQuery{Counts: true, Absorbed: true}
	for _, c := range cs {
		if len(c.prog.Deps.Events) > 0 {
			return graph.DataQuery{}, false
		}
		for _, t := range c.prog.Deps.Traits {
			if !slices.Contains(q.Traits, t) {
				q.Traits = append(q.Traits, t)
			}
		}
	}
	return q, true
}

// backfillPage evaluates a definition for a page of live profiles, on
// every CPU, and saves the results in one transaction. When the
// transaction is refused (a profile's state was saved meanwhile by the
// live path, or it was merged away: stale) nothing is written and the
// page is updated profile by profile instead, each evaluated again until
// its save is current; a profile whose saves overlap another's (a merge
// between the page's read and its evaluation) is too, and so is one
// whose merge or split the engine has not evaluated yet (update exits
// the absorbed profiles).
func (e *Engine) backfillPage(ctx context.Context, pg pageRead, r Ref) error {
	ch := Change{Refs: []Ref{r}}
	if pg.defs != nil {
		// Evaluated with the definitions the page was read for, unless a
		// state was saved with others (plan's check, once a page).
		defs := pg.defs
		if slices.ContainsFunc(pg.states, func(st *ProfileState) bool { return st.Rev > 0 && st.Definitions != defs.print }) {
			fresh, err := e.refresh(ctx)
			if err != nil {
				return err
			}
			if fresh.print != defs.print {
				pg.defs = nil // read for other definitions: one by one
			}
		}
	}
	var plans [][]Save
	var errs []error
	merged, full := make([]bool, len(pg.ids)), make([]bool, len(pg.ids))
	if pg.defs == nil {
		// Read page by page too (profiles, states, identifiers and
		// timelines: one call each), as the live path does.
		changes := make([]Change, len(pg.ids))
		for j := range changes {
			changes[j] = ch
		}
		plans, errs = e.planPage(ctx, pg.ids, changes, ReasonDefinition)
	} else {
		plans, errs = make([][]Save, len(pg.ids)), make([]error, len(pg.ids))
		now := e.opt.Now().UTC()
		b := pg.defs.blank(now)
		inParallel(len(pg.ids), func(j int) {
			plans[j], merged[j], full[j], errs[j] = e.planData(pg.defs, pg.q, pg.ids[j], pg.data[j], pg.states[j], ch, now, b)
		})
		e.planFull(ctx, pg.ids, full, ch, plans, errs)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var alone, ids []string
	var together [][]Save
	saved := map[string]bool{}
	for j, ss := range plans {
		if merged[j] || slices.ContainsFunc(ss, func(sv Save) bool { return saved[sv.State.Profile] }) {
			alone = append(alone, pg.ids[j])
			continue
		}
		if len(ss) == 0 {
			continue
		}
		for _, sv := range ss {
			saved[sv.State.Profile] = true
		}
		ids, together = append(ids, pg.ids[j]), append(together, ss)
	}
	stale, err := e.saveBackfillPage(ctx, ids, together)
	if err != nil {
		return err
	}
	for _, id := range append(alone, stale...) {
		if _, err := e.update(ctx, id, ch, ReasonDefinition); err != nil {
			return err
		}
	}
	return nil
}

// planFull plans, as the live path does (planPage: one read of each kind
// for all of them), the profiles of a bulk page whose evaluation needs
// more than the bulk read (full).
func (e *Engine) planFull(ctx context.Context, ids []string, full []bool, ch Change, plans [][]Save, errs []error) {
	var which []int
	var some []string
	for j, f := range full {
		if f {
			which, some = append(which, j), append(some, ids[j])
		}
	}
	if len(some) == 0 {
		return
	}
	changes := make([]Change, len(some))
	for k := range changes {
		changes[k] = ch
	}
	ps, es := e.planPage(ctx, some, changes, ReasonDefinition)
	for k, j := range which {
		plans[j], errs[j] = ps[k], es[k]
	}
}

// saveBackfillPage saves the plans of a page's profiles (ids) in one transaction.
// When the live path saved some of those profiles meanwhile (ErrStale),
// it reads their states again and saves the plans still current without
// the others, up to three times, and returns the profiles left to update
// one by one: with ingest touching a few profiles of every page, giving
// up the whole page made a backfill beside ingest a commit per profile.
func (e *Engine) saveBackfillPage(ctx context.Context, ids []string, plans [][]Save) (stale []string, err error) {
	for range 3 {
		var saves []Save
		for _, ss := range plans {
			saves = append(saves, ss...)
		}
		if len(saves) == 0 {
			return stale, nil
		}
		if _, err := e.store.SaveStates(ctx, saves); !errors.Is(err, ErrStale) {
			return stale, err
		}
		profiles := make([]string, len(saves))
		for i, sv := range saves {
			profiles[i] = sv.State.Profile
		}
		states, err := e.store.States(ctx, profiles)
		if err != nil {
			return nil, err
		}
		revs := make(map[string]int64, len(states))
		for i, st := range states {
			revs[profiles[i]] = st.Rev
		}
		var keptIDs []string
		var kept [][]Save
		for j, ss := range plans {
			if slices.ContainsFunc(ss, func(sv Save) bool { return revs[sv.State.Profile] != sv.State.Rev }) {
				stale = append(stale, ids[j])
				continue
			}
			keptIDs, kept = append(keptIDs, ids[j]), append(kept, ss)
		}
		if len(kept) == len(plans) {
			break // no revision moved: a profile merged away meanwhile
		}
		ids, plans = keptIDs, kept
	}
	return append(stale, ids...), nil
}

// planData is plan for a profile read in bulk: the definitions the
// change affects, evaluated over its traits and identifier counts (b's
// blank results for those reading nothing it holds), and
// the one save that results, if it changes anything. A profile no longer
// live (p nil: absorbed since the page's IDs were read) has nothing to
// save: its survivor's evaluation exits it. One merged or split since its
// state was saved is left to update (merged), which exits the absorbed
// profiles, whose states a bulk read does not read. One whose state needs
// definitions evaluated that read more than q read (saved with definitions
// this process does not know) is left to planFull (full). A save that
// would write only the definitions' fingerprint is not made
// (onlyPrintMoved).
func (e *Engine) planData(defs *definitions, q graph.DataQuery, id string, p *graph.ProfileData, st *ProfileState, ch Change, now time.Time, b *blank) (saves []Save, merged, full bool, err error) {
	if p == nil {
		return nil, false, false, nil
	}
	if AbsorbedPrint(&graph.Profile{Absorbed: p.Absorbed}) != st.Identity.Absorbed {
		return nil, true, false, nil
	}
	identity := Identity{Absorbed: st.Identity.Absorbed, Counts: p.Counts}
	todo, reasons := defs.plan(st, identity, ch)
	if !covers(q, todo) {
		return nil, false, true, nil
	}
	snap := &lang.Snapshot{Traits: p.Traits, IDCounts: p.Counts}
	var next *ProfileState
	if defs.carriesOver(st, identity) {
		// Most profiles of a backfill keep their entries: evaluate into
		// those todo writes and compare them, and copy the state's other
		// entries (150 beside one new definition) only when one changed.
		evaluated := &ProfileState{Entries: make(map[string]Entry, len(todo))}
		for _, c := range todo {
			if en, ok := st.Entries[c.ref]; ok {
				evaluated.Entries[c.ref] = en
			}
		}
		snap.Segments, snap.Computed = readResults(st.Entries, todo)
		evalSession(snap, todo, evaluated, now, b)
		if sameEntries(st.Entries, evaluated.Entries, todo) && (st.Definitions == defs.print || defs.printOnlyMoved(st)) {
			return nil, false, false, nil
		}
		next = defs.carry(id, st, identity, len(todo), reasons)
		for _, c := range todo {
			if en, ok := evaluated.Entries[c.ref]; ok {
				next.Entries[c.ref] = en
			} else {
				delete(next.Entries, c.ref)
			}
		}
	} else {
		next = defs.carry(id, st, identity, len(todo), reasons)
		snap.Segments, snap.Computed = entryResults(next.Entries, len(todo))
		evalSession(snap, todo, next, now, b)
	}
	if sameState(st, next) || defs.onlyPrintMoved(st, next) {
		return nil, false, false, nil
	}
	return []Save{{State: next, Reason: ReasonDefinition, Reasons: reasons, At: now, Read: st}}, false, false, nil
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

// covers reports whether data read by q is all that evaluating cs reads.
func covers(q graph.DataQuery, cs []*compiled) bool {
	for _, c := range cs {
		if len(c.prog.Deps.Events) > 0 {
			return false
		}
		for _, t := range c.prog.Deps.Traits {
			if !slices.Contains(q.Traits, t) {
				return false
			}
		}
	}
	return true
}
