package segments

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments/lang"
)

// This file is what the GraphQL API and the CLI need of the engine beyond
// maintenance: checking without saving, enabling and disabling, previews
// and explanations.

// Check compiles a definition against the loaded ones (for in_segment and
// computed references) without saving anything. Its errors are
// *lang.Error, with a code and a position.
func (e *Engine) Check(kind lang.Kind, key, src string) (*lang.Program, error) {
	e.mu.RLock()
	env := lang.MapEnv{}
	for _, c := range e.defs.order {
		env[c.def.Ref()] = c.prog.Definition()
	}
	e.mu.RUnlock()
	return lang.Compile(src, lang.Options{Kind: kind, Key: key, Limits: e.opt.Limits, Env: env})
}

// inUse refuses (conflict, naming them) to take away a definition that
// loaded definitions read through in_segment or computed.
func (e *Engine) inUse(r Ref, action string) error {
	e.mu.RLock()
	var dependents []string
	if c := e.defs.byRef[RefString(r)]; c != nil {
		dependents = slices.Clone(c.dependents)
	}
	e.mu.RUnlock()
	if len(dependents) == 0 {
		return nil
	}
	slices.Sort(dependents)
	return &graph.Error{Kind: graph.KindConflict, Field: "key",
		Msg: fmt.Sprintf("cannot %s %s %q: %s use it; change or delete them first", action, KindName(r.Kind), r.Key, strings.Join(dependents, ", "))}
}

// SetEnabled disables a definition (status DISABLED: no longer evaluated,
// its members exit as profiles are swept) or enables it again (status
// BACKFILLING: the caller runs Backfill). Either makes a new version, so
// that a backfill of the old one stops. expectedVersion is the version
// the caller saw (0: whatever is stored). Disabling a definition that
// others read is refused, naming them, as Delete is; enabling one that no
// longer compiles against the others is refused with the language's
// error. Asking for the state it is in changes nothing (changed is
// false: there is nothing to backfill or sweep).
func (e *Engine) SetEnabled(ctx context.Context, r Ref, enabled bool, expectedVersion int) (d *Definition, changed bool, err error) {
	cur, err := e.store.Definition(ctx, r)
	if err != nil {
		return nil, false, err
	}
	if expectedVersion != 0 {
		if err := CheckStored(r, cur, expectedVersion); err != nil {
			return nil, false, err
		}
	}
	if (cur.Status.State != StateDisabled) == enabled {
		return cur, false, nil
	}
	next := *cur
	next.Status, next.Author, next.Change = Status{State: StateDisabled}, AuthorOf(ctx), ChangeDisabled
	if enabled {
		next.Change = ChangeEnabled
		if _, err := e.Check(r.Kind, r.Key, cur.Source); err != nil {
			return nil, false, err
		}
		next.Status = Status{State: StateBackfilling}
	} else if err := e.inUse(r, "disable"); err != nil {
		return nil, false, err
	}
	next.UpdatedAt = e.opt.Now().UTC()
	if d, err = e.store.PutDefinition(ctx, &next, cur.Version); err != nil {
		return nil, false, err
	}
	return d, true, e.Load(ctx)
}

// liveEntries returns a profile's stored entries of the loaded
// definitions: a deleted or disabled definition's entries stay until the
// profile is next evaluated, and are not shown meanwhile.
func (e *Engine) liveEntries(ctx context.Context, profile string) (map[string]Entry, error) {
	sts, err := e.store.States(ctx, []string{profile})
	if err != nil {
		return nil, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := map[string]Entry{}
	for rs, en := range sts[0].Entries {
		if e.defs.byRef[rs] != nil {
			out[rs] = en
		}
	}
	return out, nil
}

// ComputedValues returns a profile's computed trait values, by key; a
// trait whose value is missing is absent.
func (e *Engine) ComputedValues(ctx context.Context, profile string) (map[string]*Value, error) {
	entries, err := e.liveEntries(ctx, profile)
	if err != nil {
		return nil, fmt.Errorf("segments: computed traits of %s: %w", profile, err)
	}
	out := map[string]*Value{}
	for rs, en := range entries {
		if ref, err := ParseRef(rs); err == nil && ref.Kind == lang.KindComputed && en.Value != nil {
			out[ref.Key] = en.Value
		}
	}
	return out, nil
}

// Preview is an unsaved segment's membership now.
type Preview struct {
	Count    int      // members
	Profiles int      // live profiles evaluated
	Sample   []string // the first members, in profile ID order
	At       time.Time
}

// MaxPreviewSample bounds Preview's sample.
const MaxPreviewSample = 100

// Preview evaluates an unsaved segment definition over every live profile
// and returns the exact number of members and the first sample of them.
// It reads what a backfill reads (every profile, and the events of each
// when the definition reads events) and writes nothing.
func (e *Engine) Preview(ctx context.Context, src string, sample int) (*Preview, error) {
	if sample < 0 || sample > MaxPreviewSample {
		return nil, graph.FieldErrorf("sample", "must be between 0 and %d, not %d", MaxPreviewSample, sample)
	}
	prog, err := e.Check(lang.KindSegment, "", src)
	if err != nil {
		return nil, err
	}
	out := &Preview{At: e.opt.Now().UTC(), Sample: []string{}}
	needEvents, needStates := len(prog.Deps.Events) > 0, len(prog.Refs) > 0
	if !needEvents && !needStates {
		return e.previewData(ctx, prog, sample, out)
	}
	for after := ""; ; {
		ps, err := e.graph.Profiles(ctx, after, backfillPage)
		if err != nil {
			return nil, fmt.Errorf("segments: preview: %w", err)
		}
		if len(ps) == 0 {
			return out, nil
		}
		entries, err := e.entriesOf(ctx, ps, needStates)
		if err != nil {
			return nil, fmt.Errorf("segments: preview: %w", err)
		}
		for i, p := range ps {
			snap, err := e.snapshot(ctx, p, needEvents, entries[i])
			if err != nil {
				return nil, fmt.Errorf("segments: preview: %w", err)
			}
			out.Profiles++
			if v := lang.Eval(prog, snap.View(), out.At).Value; v.Type == lang.TypeBool && v.Bool {
				out.Count++
				if len(out.Sample) < sample {
					out.Sample = append(out.Sample, p.ID)
				}
			}
		}
		after = ps[len(ps)-1].ID
	}
}

// previewPage is how many profiles a preview of profile data reads at once.
const previewPage = 2000

// previewData is Preview of a definition that reads only profile data
// (traits and identifier counts): it scans only the trait values and
// counts the definition reads (graph.Reader.ScanProfilesData, which
// decodes in parallel where the store can), reading the next page while
// this one is evaluated.
func (e *Engine) previewData(ctx context.Context, prog *lang.Program, sample int, out *Preview) (*Preview, error) {
	q := graph.DataQuery{Traits: prog.Deps.Traits, Counts: len(prog.Deps.IDTypes) > 0}
	type page struct {
		ps  []*graph.ProfileData
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan page, 1)
	go func() {
		defer close(pages)
		for after := ""; ; {
			ps, err := e.graph.ScanProfilesData(ctx, after, previewPage, q)
			select {
			case pages <- page{ps, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(ps) == 0 {
				return
			}
			after = ps[len(ps)-1].ID
		}
	}()
	// One view for every profile: it reads snap's traits and counts as
	// they are set below (only events are grouped when it is made, and
	// there are none).
	snap := &lang.Snapshot{}
	view := snap.View()
	for pg := range pages {
		if pg.err != nil {
			return nil, fmt.Errorf("segments: preview: %w", pg.err)
		}
		for _, p := range pg.ps {
			snap.Traits, snap.IDCounts = p.Traits, p.Counts
			out.Profiles++
			if v := lang.Eval(prog, view, out.At).Value; v.Type == lang.TypeBool && v.Bool {
				out.Count++
				if len(out.Sample) < sample {
					out.Sample = append(out.Sample, p.ID)
				}
			}
		}
	}
	return out, nil
}

// Explanation is why a profile is or is not a member of a segment (or has
// a computed value): the definition evaluated from scratch now over the
// profile's data, with its tree, beside what the engine has stored.
type Explanation struct {
	// Profile is the live profile evaluated (the survivor, when the one
	// asked for was merged into another).
	Profile    string
	Definition *Definition
	At         time.Time
	Value      lang.Value
	// Type is the definition's type (Value's, unless Value is missing).
	Type  lang.Type
	Trace *lang.Trace
	// Stored is the engine's entry for the profile (zero when none is
	// stored: not a member, no value, no deadline).
	Stored Entry
}

// Explain evaluates a definition for one profile, with its tree. A
// disabled definition is explained too (as it would evaluate), if it
// still compiles.
func (e *Engine) Explain(ctx context.Context, profile string, r Ref) (*Explanation, error) {
	p, err := e.graph.Profile(ctx, profile)
	if err == nil && p.MergedInto != "" {
		p, err = e.graph.Profile(ctx, p.MergedInto)
	}
	if err != nil {
		return nil, fmt.Errorf("segments: explain %s: %w", profile, err)
	}
	e.mu.RLock()
	c := e.defs.byRef[RefString(r)]
	e.mu.RUnlock()
	var prog *lang.Program
	var def *Definition
	if c != nil {
		prog, def = c.prog, c.def
	} else {
		if def, err = e.store.Definition(ctx, r); err != nil {
			return nil, err
		}
		if prog, err = e.Check(r.Kind, r.Key, def.Source); err != nil {
			return nil, err
		}
	}
	sts, err := e.store.States(ctx, []string{p.ID})
	if err != nil {
		return nil, fmt.Errorf("segments: explain %s: %w", p.ID, err)
	}
	snap, err := e.snapshot(ctx, p, len(prog.Deps.Events) > 0, sts[0].Entries)
	if err != nil {
		return nil, err
	}
	out := &Explanation{Profile: p.ID, Definition: def, At: e.opt.Now().UTC(), Stored: sts[0].Entries[RefString(r)], Type: prog.Type}
	out.Value, out.Trace = lang.Evaluate(prog, snap.View(), out.At)
	return out, nil
}
