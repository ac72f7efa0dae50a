package resolver

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/schema"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// The segments API serves segments and computed traits alike: both are
// definitions, told apart by their kind.

func langKind(k *schema.DefinitionKind) lang.Kind {
	if k != nil && *k == schema.DefinitionKindComputedTrait {
		return lang.KindComputed
	}
	return lang.KindSegment
}

// stewardSegments is the engine, for a steward: definitions are written
// with the steward key.
func (r *Resolver) stewardSegments(ctx context.Context) (*segments.Engine, error) {
	if _, err := steward(ctx); err != nil {
		return nil, err
	}
	return r.segments()
}

// authored names the caller as the author of the definition versions
// written with the context.
func authored(ctx context.Context) context.Context {
	return segments.WithAuthor(ctx, CallerOf(ctx).Actor)
}

// define creates (expectedVersion 0) or edits a definition and starts its
// backfill.
func (r *Resolver) define(ctx context.Context, kind lang.Kind, key, src string, expectedVersion int) (*segments.Definition, error) {
	e, err := r.stewardSegments(ctx)
	if err != nil {
		return nil, err
	}
	d, err := e.Define(authored(ctx), kind, key, src, expectedVersion)
	if err != nil {
		return nil, err
	}
	r.Backfill(d)
	return d, nil
}

// update is define for an edit: a version to replace is required.
func (r *Resolver) update(ctx context.Context, kind lang.Kind, key, src string, expectedVersion int) (*segments.Definition, error) {
	if expectedVersion < 1 {
		return nil, graph.FieldErrorf("expectedVersion", "is the version being edited, 1 or more, not %d", expectedVersion)
	}
	return r.define(ctx, kind, key, src, expectedVersion)
}

func (r *Resolver) setEnabled(ctx context.Context, kind lang.Kind, key string, enabled bool, expectedVersion *int) (*segments.Definition, error) {
	e, expected, err := r.stewardWrite(ctx, expectedVersion)
	if err != nil {
		return nil, err
	}
	d, changed, err := e.SetEnabled(authored(ctx), segments.Ref{Kind: kind, Key: key}, enabled, expected)
	if err != nil || !changed {
		return d, err
	}
	// Enabled: backfilled. Disabled: swept, so that its members exit
	// without waiting for each profile's next event.
	r.Backfill(d)
	return d, nil
}

func (r *Resolver) deleteDefinition(ctx context.Context, kind lang.Kind, key string, expectedVersion *int) (bool, error) {
	e, expected, err := r.stewardWrite(ctx, expectedVersion)
	if err != nil {
		return false, err
	}
	ref := segments.Ref{Kind: kind, Key: key}
	d, err := e.Store().Definition(ctx, ref)
	if err != nil {
		return false, err
	}
	if expected == 0 {
		expected = d.Version
	}
	if err := e.Delete(ctx, ref, expected); err != nil {
		return false, err
	}
	// Swept as a disabled definition is: every profile drops its entries.
	gone := *d
	gone.Status = segments.Status{State: segments.StateDisabled}
	r.Backfill(&gone)
	return true, nil
}

// stewardWrite is stewardSegments with an optional expectedVersion (0
// when not given).
func (r *Resolver) stewardWrite(ctx context.Context, expectedVersion *int) (*segments.Engine, int, error) {
	e, err := r.stewardSegments(ctx)
	if err != nil {
		return nil, 0, err
	}
	if expectedVersion == nil {
		return e, 0, nil
	}
	if *expectedVersion < 1 {
		return nil, 0, graph.FieldErrorf("expectedVersion", "is 1 or more, not %d", *expectedVersion)
	}
	return e, *expectedVersion, nil
}

// definition returns a saved definition, or nil when there is none.
func (r *Resolver) definition(ctx context.Context, kind lang.Kind, key string) (*segments.Definition, error) {
	e, err := r.segments()
	if err != nil {
		return nil, err
	}
	d, err := e.Store().Definition(ctx, segments.Ref{Kind: kind, Key: key})
	if graph.ErrorKind(err) == graph.KindNotFound {
		return nil, nil
	}
	return d, err
}

// definitionEdges pages through the definitions of a kind by key, as the
// edges edge makes. The store lists them all: definitions are few (each
// is evaluated for every profile).
func definitionEdges[E any](ctx context.Context, r *Resolver, kind lang.Kind, first *int, after *string,
	edge func(cursor string, d *segments.Definition) E) ([]E, *schema.PageInfo, error) {
	n, err := r.pageSize(first, 20)
	if err != nil {
		return nil, nil, err
	}
	prefix := segments.KindName(kind) + ":"
	from, err := decodeCursor(after, prefix)
	if err != nil {
		return nil, nil, err
	}
	e, err := r.segments()
	if err != nil {
		return nil, nil, err
	}
	all, err := e.Store().Definitions(ctx)
	if err != nil {
		return nil, nil, err
	}
	edges, info := []E{}, &schema.PageInfo{}
	for _, d := range all {
		if d.Kind != kind || (from != "" && d.Key <= from) {
			continue
		}
		if len(edges) == n {
			info.HasNextPage = true
			break
		}
		edges = append(edges, edge(cursor(prefix, d.Key), d))
		info.EndCursor = ptr(cursor(prefix, d.Key))
	}
	return edges, info, nil
}

// endCursor is the cursor of a page's last edge, if any.
func endCursor(cursors []string) *string {
	if len(cursors) == 0 {
		return nil
	}
	return &cursors[len(cursors)-1]
}

func statusOf(d *segments.Definition) *schema.SegmentStatus {
	st := &schema.SegmentStatus{State: d.Status.State}
	if d.Status.State == segments.StateBackfilling {
		st.Progress = &d.Status.Progress
	}
	if d.Status.State == segments.StateFailed {
		st.Code, st.Message = &d.Status.Code, &d.Status.Message
	}
	return st
}

// checkOf turns a compilation's outcome into validateDefinition's answer:
// a language error is data, anything else an error.
func checkOf(prog *lang.Program, err error) (*schema.DefinitionCheck, error) {
	var le *lang.Error
	switch {
	case err == nil:
		return &schema.DefinitionCheck{Valid: true, Type: ptr(prog.Type.String()), Errors: []*schema.DefinitionError{}}, nil
	case errors.As(err, &le):
		return &schema.DefinitionCheck{Errors: []*schema.DefinitionError{{
			Code: string(le.Code), Line: le.Line, Column: le.Column, Message: le.Msg, Hint: optional(le.Hint)}}}, nil
	}
	return nil, err
}

// explainNodes flattens a trace depth first, the root first, each node
// naming its parent: GraphQL cannot select a tree of unknown depth.
func explainNodes(t *lang.Trace) ([]*schema.ExplainNode, error) {
	var out []*schema.ExplainNode
	var walk func(t *lang.Trace, parent *int) error
	walk = func(t *lang.Trace, parent *int) error {
		value, err := jsonOf(t.Value)
		if err != nil {
			return err
		}
		n := &schema.ExplainNode{Index: len(out), Parent: parent, Text: t.Text, Line: t.Pos.Line, Column: t.Pos.Col,
			Value: value, EventCount: t.EventCount, Skipped: t.Skipped, Events: []*schema.ExplainEvent{}}
		if !t.Deadline.IsZero() {
			n.Deadline = ptr(t.Deadline)
		}
		for _, ev := range t.Events {
			n.Events = append(n.Events, &schema.ExplainEvent{Name: ev.Name, MessageID: ev.MessageID, Timestamp: ev.Timestamp})
		}
		out = append(out, n)
		for _, c := range t.Children {
			if err := walk(c, &n.Index); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(t, nil)
}

// computedTraitValues lists a profile's computed values by key.
func computedTraitValues(values map[string]*segments.Value) ([]*schema.ComputedTraitValue, error) {
	out := []*schema.ComputedTraitValue{}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		v := values[key]
		data, err := jsonOf(v.Interface())
		if err != nil {
			return nil, err
		}
		out = append(out, &schema.ComputedTraitValue{Key: key, Value: data, Type: v.Type})
	}
	return out, nil
}

// profilePager pages through all profiles, or through a segment's
// members when the filter names one (both in profile ID order, so one
// cursor serves).
func (r *Resolver) profilePager(ctx context.Context, filter *schema.ProfileFilter) (func(context.Context, string, int) ([]*graph.Profile, error), error) {
	if filter == nil || filter.Segment == nil {
		return r.Reader.Profiles, nil
	}
	d, err := r.definition(ctx, lang.KindSegment, *filter.Segment)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, graph.FieldErrorf("filter.segment", "no segment %q", *filter.Segment)
	}
	members := r.Segments.Store()
	return func(ctx context.Context, after string, limit int) ([]*graph.Profile, error) {
		ids, err := members.Members(ctx, d.Key, after, limit)
		if err != nil {
			return nil, err
		}
		// A member is a stored live profile (saves refuse others), so
		// none is missing and a short page is the last.
		ps, err := r.Reader.GetProfiles(ctx, ids)
		return slices.DeleteFunc(ps, func(p *graph.Profile) bool { return p == nil }), err
	}, nil
}

// A membership subscription reads the change records a page at a time,
// and polls for more when it has read them all: the records are written
// by the engine in the background, in this process or another sharing
// the store, so the store is where they are seen.
const (
	changePage = 500
	changePoll = 200 * time.Millisecond
)

// membershipChange is a change record as the subscription sends it, with
// the profile as it is now.
func (r *Resolver) membershipChange(ctx context.Context, c *segments.ChangeRecord) *schema.SegmentMembershipChange {
	return &schema.SegmentMembershipChange{Sequence: strconv.FormatUint(c.Sequence, 10), Segment: c.Segment, Version: c.Version,
		ProfileID: c.Profile, Direction: strings.ToUpper(c.Direction), Reason: c.Reason, At: c.Time, Profile: r.changeProfile(ctx, c.Profile)}
}

// traitChange is a computed trait's change record as the subscription
// sends it, with the profile as it is now.
func (r *Resolver) traitChange(ctx context.Context, c *segments.ChangeRecord) *schema.ComputedTraitChange {
	msg := &schema.ComputedTraitChange{Sequence: strconv.FormatUint(c.Sequence, 10), Trait: c.Trait, Version: c.Version,
		ProfileID: c.Profile, Reason: c.Reason, At: c.Time, Profile: r.changeProfile(ctx, c.Profile)}
	if c.Previous != nil {
		msg.Previous, _ = jsonOf(c.Previous.Interface())
	}
	if c.Value != nil {
		msg.Value, _ = jsonOf(c.Value.Interface())
	}
	return msg
}

// changeProfile is a change record's profile as it is now: the survivor
// when it was merged away; nil when it cannot be read.
func (r *Resolver) changeProfile(ctx context.Context, id string) *schema.Profile {
	for range 2 { // the profile, then its survivor if it was merged away
		ps, err := r.Reader.GetProfiles(ctx, []string{id})
		if err != nil || ps[0] == nil {
			return nil
		}
		if ps[0].MergedInto == "" {
			return &schema.Profile{Profile: ps[0]}
		}
		id = ps[0].MergedInto
	}
	return nil
}

// maxSizePoints bounds a size history's points (about a chart's width in
// pixels).
const maxSizePoints = 1000
