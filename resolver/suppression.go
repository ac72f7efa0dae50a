package resolver

import (
	"context"
	"fmt"
	"strings"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/schema"
	"github.com/idgraph/idgraph/suppression"
)

// suppressionLists returns the suppression lists for an admin caller.
func (r *Resolver) suppressionLists(ctx context.Context) (*suppression.Lists, error) {
	if c := CallerOf(ctx); c.Role != auth.RoleAdmin {
		return nil, graph.Errorf(graph.KindForbidden, "suppression lists need an admin key")
	}
	if r.Suppression == nil {
		return nil, graph.Errorf(graph.KindInvalid, "suppression lists are not available on this server")
	}
	return r.Suppression, nil
}

func scopeOf(in schema.SuppressionScopeInput) suppression.Scope {
	return suppression.Scope{Kind: strings.ToLower(string(in.Kind)), Target: deref(in.Target)}
}

// changeSuppressions runs an add or a remove (op) on checked input.
func (r *Resolver) changeSuppressions(ctx context.Context, scope schema.SuppressionScopeInput, entries []*schema.IdentifierInput,
	op func(*suppression.Lists, context.Context, suppression.Scope, []suppression.Input) (suppression.Result, error)) (*suppression.Result, error) {
	l, sc, in, err := r.suppressionInput(ctx, scope, entries)
	if err != nil {
		return nil, err
	}
	res, err := op(l, ctx, sc, in)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// suppressionInput checks an add's or remove's scope (a destination scope
// must name a destination) and converts its entries.
func (r *Resolver) suppressionInput(ctx context.Context, scope schema.SuppressionScopeInput, entries []*schema.IdentifierInput) (*suppression.Lists, suppression.Scope, []suppression.Input, error) {
	l, err := r.suppressionLists(ctx)
	if err != nil {
		return nil, suppression.Scope{}, nil, err
	}
	sc := scopeOf(scope)
	if err := sc.Check(); err != nil {
		return nil, sc, nil, err
	}
	if sc.Kind == suppression.Destination {
		if r.Destinations == nil {
			return nil, sc, nil, graph.FieldErrorf("scope", "destinations are off: run the server with --segments")
		}
		if _, err := r.Destinations.Get(ctx, sc.Target); graph.ErrorKind(err) == graph.KindNotFound {
			return nil, sc, nil, graph.FieldErrorf("scope", "no destination %q", sc.Target)
		} else if err != nil {
			return nil, sc, nil, err
		}
	}
	in := make([]suppression.Input, len(entries))
	for i, e := range entries {
		in[i] = suppression.Input{Type: e.Type, Value: e.Value}
	}
	return l, sc, in, nil
}

func pointers[T any](vs []T) []*T {
	out := make([]*T, len(vs))
	for i := range vs {
		out[i] = &vs[i]
	}
	return out
}

// withdrawSuppressed sends exits, before the add is acknowledged, from the
// destinations the scope covers that hold the people who now carry a
// suppressed identifier.
func (r *Resolver) withdrawSuppressed(ctx context.Context, scope suppression.Scope, keys []graph.Key) error {
	profiles, err := suppression.AffectedProfiles(ctx, r.Reader, keys)
	if err != nil {
		return err
	}
	if _, err := r.Destinations.WithdrawSuppressed(ctx, profiles, scope); err != nil {
		return fmt.Errorf("suppressions added, but withdrawing the people from destinations failed (add them again to retry): %w", err)
	}
	return nil
}
