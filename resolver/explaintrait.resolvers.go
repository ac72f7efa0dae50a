package resolver

import (
	"context"

	"github.com/idgraph/idgraph/schema"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

func (r *queryResolver) ExplainComputedTrait(ctx context.Context, profileID string, key string) (*schema.ComputedTraitExplanation, error) {
	e, err := r.segments()
	if err != nil {
		return nil, err
	}
	x, err := e.Explain(ctx, profileID, segments.Ref{Kind: lang.KindComputed, Key: key})
	if err != nil {
		return nil, err
	}
	nodes, err := explainNodes(x.Trace)
	if err != nil {
		return nil, err
	}
	out := &schema.ComputedTraitExplanation{ProfileID: x.Profile, ComputedTrait: x.Definition, At: x.At, Nodes: nodes, Type: x.Type.String()}
	if v := segments.ValueOf(x.Value); v != nil {
		if out.Value, err = jsonOf(v.Interface()); err != nil {
			return nil, err
		}
	}
	if x.Stored.Value != nil {
		if out.StoredValue, err = jsonOf(x.Stored.Value.Interface()); err != nil {
			return nil, err
		}
	}
	if !x.Trace.Deadline.IsZero() {
		out.NextDeadline = ptr(x.Trace.Deadline)
	}
	return out, nil
}
