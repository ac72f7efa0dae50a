package segments

import (
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/segments/lang"
)

// TestBlankResults: a definition none of whose dependencies a profile holds
// takes its blank result, and every profile's entries are those of
// evaluating every definition.
func TestBlankResults(t *testing.T) {
	src := []struct {
		kind     lang.Kind
		key, src string
	}{
		{lang.KindSegment, "pro", `trait("plan") = "pro"`},
		{lang.KindSegment, "not_pro", `not in_segment("pro")`},
		{lang.KindSegment, "quiet", `not events("Order").within(7d).exists()`},
		{lang.KindComputed, "spend", `events("Order").sum(prop("revenue"))`},
		{lang.KindSegment, "spender", `computed("spend") > 10`},
		{lang.KindSegment, "known", `has_id("user_id")`},
	}
	var ds []*Definition
	for _, s := range src {
		ds = append(ds, &Definition{Kind: s.kind, Key: s.key, Source: s.src, Version: 1})
	}
	defs := compile(ds, lang.Limits{}, nil)
	if len(defs.order) != len(src) {
		t.Fatalf("compiled %d of %d: %v", len(defs.order), len(src), defs.failed)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	b := defs.blank(now)
	order := lang.Event{Name: "Order", Timestamp: now.Add(-time.Hour), Properties: map[string]any{"revenue": 50.0}}
	for _, c := range []struct {
		name      string
		snap      lang.Snapshot
		evaluated []string // the definitions not taken from b
	}{
		{"nothing", lang.Snapshot{}, nil},
		{"plan", lang.Snapshot{Traits: map[string]any{"plan": "pro"}}, []string{"pro", "not_pro"}},
		{"other plan", lang.Snapshot{Traits: map[string]any{"plan": "free"}}, []string{"pro"}},
		{"order", lang.Snapshot{Events: []lang.Event{order}}, []string{"quiet", "spend", "spender"}},
		{"user", lang.Snapshot{IDCounts: map[string]int{"user_id": 1}}, []string{"known"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The definitions b.result leaves to evaluate, each seeing the
			// evaluated results of those before it.
			snap := c.snap
			snap.Segments, snap.Computed = map[string]bool{}, map[string]any{}
			v := snap.View()
			var evaluated []string
			for _, cd := range defs.order {
				if _, ok := b.result(cd, v); !ok {
					evaluated = append(evaluated, cd.def.Key)
				}
				record(&snap, &ProfileState{Entries: map[string]Entry{}}, cd, lang.NewSession(v, now).Eval(cd.prog), now)
			}
			if !slices.Equal(evaluated, c.evaluated) {
				t.Errorf("evaluated %v, want %v", evaluated, c.evaluated)
			}
			entries := func(b *blank) *ProfileState {
				snap := c.snap
				snap.Segments, snap.Computed = map[string]bool{}, map[string]any{}
				next := &ProfileState{Entries: map[string]Entry{}}
				evalSession(&snap, defs.order, next, now, b)
				return next
			}
			if got, want := entries(b), entries(nil); !sameState(got, want) {
				t.Errorf("entries with blank results %v, evaluated %v", got.Entries, want.Entries)
			}
		})
	}
}
