package segments

import (
	"context"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments/lang"
)

// ValuesPreview is an unsaved computed trait's values over a sample of
// profiles.
type ValuesPreview struct {
	Type    lang.Type
	Samples []ValueSample // in profile ID order
	At      time.Time
}

// ValueSample is one profile's value in a ValuesPreview: nil when missing.
type ValueSample struct {
	Profile string
	Value   *Value
}

// PreviewValues evaluates an unsaved computed trait definition over the
// first sample live profiles, in ID order (IDs are random, so this is an
// arbitrary sample, and a cheap one: a computed trait has no count to
// report, so an editor needs values, not a scan). It writes nothing.
func (e *Engine) PreviewValues(ctx context.Context, src string, sample int) (*ValuesPreview, error) {
	if sample < 1 || sample > MaxPreviewSample {
		return nil, graph.FieldErrorf("sample", "must be between 1 and %d, not %d", MaxPreviewSample, sample)
	}
	prog, err := e.Check(lang.KindComputed, "", src)
	if err != nil {
		return nil, err
	}
	ps, err := e.graph.Profiles(ctx, "", sample)
	if err != nil {
		return nil, fmt.Errorf("segments: preview values: %w", err)
	}
	out := &ValuesPreview{Type: prog.Type, At: e.opt.Now().UTC(), Samples: make([]ValueSample, len(ps))}
	entries, err := e.entriesOf(ctx, ps, len(prog.Refs) > 0)
	if err != nil {
		return nil, fmt.Errorf("segments: preview values: %w", err)
	}
	for i, p := range ps {
		snap, err := e.snapshot(ctx, p, len(prog.Deps.Events) > 0, entries[i])
		if err != nil {
			return nil, fmt.Errorf("segments: preview values: %w", err)
		}
		out.Samples[i] = ValueSample{Profile: p.ID, Value: ValueOf(lang.Eval(prog, snap.View(), out.At).Value)}
	}
	return out, nil
}

// entriesOf returns the stored entries of each profile (nil where it has
// none), read only when need is set: a definition that reads no other
// definition's result needs none.
func (e *Engine) entriesOf(ctx context.Context, ps []*graph.Profile, need bool) ([]map[string]Entry, error) {
	out := make([]map[string]Entry, len(ps))
	if !need || len(ps) == 0 {
		return out, nil
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	states, err := e.store.States(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, st := range states {
		if st != nil {
			out[i] = st.Entries
		}
	}
	return out, nil
}
