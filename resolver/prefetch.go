package resolver

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/loaders"
)

// prefetch loads, one batch per loader, what the fields selected on a page
// of profiles will ask for, so that the page costs the same number of
// store calls whatever its size: batching by a timer alone would split a
// large page into several batches when goroutines start late.
func prefetch(ctx context.Context, ps []*graph.Profile, path ...string) {
	oc := graphql.GetOperationContext(ctx)
	fields := graphql.CollectFieldsCtx(ctx, nil)
	for _, name := range path {
		var next []graphql.CollectedField
		for _, f := range fields {
			if f.Name == name {
				next = append(next, graphql.CollectFields(oc, f.Selections, nil)...)
			}
		}
		fields = next
	}
	l := loaders.For(ctx)
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
		l.Profile.Prime(p.ID, p)
	}
	var needIdentifiers bool
	var events []loaders.EventsKey
	for _, f := range fields {
		switch f.Name {
		case "identifiers", "email", "phone", "graph":
			needIdentifiers = true
		case "events":
			args := f.ArgumentMap(oc.Variables)
			first, _ := args["first"].(int64)
			if _, set := args["first"]; !set {
				first = 20
			}
			after, _ := args["after"].(string)
			if _, hasUntil := args["until"]; hasUntil {
				continue // rare: such pages load through the batching timer
			}
			cursor, err := decodeEventCursor(&after)
			if err != nil {
				continue
			}
			for _, id := range ids {
				events = append(events, eventsKey(id, int(first), cursor))
			}
		}
	}
	if needIdentifiers || len(events) > 0 {
		_, _ = l.Identifiers.LoadAll(ctx, ids)
	}
	if len(events) > 0 {
		_, _ = l.Events.LoadAll(ctx, events)
	}
}

// eventsKey is the loader key of one page of a profile's events: the
// Events resolver and prefetch must agree on it.
func eventsKey(profile string, first int, after *graph.EventCursor) loaders.EventsKey {
	k := loaders.EventsKey{Profile: profile, Limit: first + 1}
	if after != nil {
		k.After = *after
	}
	return k
}
