package server_test

import (
	"slices"
	"testing"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/match"
)

// TestReturningUserOnNewDevice is issue 11's reproducer: with the default
// model on, a returning user identifying on a new device made matching use
// their profile's anchor (the laptop, not in the message) before the
// transaction had loaded it: a nil pointer and a 500.
func TestReturningUserOnNewDevice(t *testing.T) {
	withModel := func(st *graph.Stitcher) {
		st.Matcher, st.MatchConfig = match.NewGraphMatcher(match.SegmentModel(), true), graph.DefaultMatchConfig()
	}
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open, withModel)
			calls := []struct{ path, body string }{
				{"/v1/identify", `{"userId":"maria","anonymousId":"a-maria","traits":{"firstName":"Maria","lastName":"Allen","email":"none@none.com"}}`},
				{"/v1/page", `{"anonymousId":"a-laptop","name":"Home"}`},
				{"/v1/identify", `{"userId":"steven","anonymousId":"a-laptop","traits":{"firstName":"Steven","lastName":"Williams","email":"none@none.com","phone":"312.260.4347"}}`},
				{"/v1/identify", `{"userId":"steven","anonymousId":"a-phone","traits":{"firstName":"Steven","lastName":"Williams","email":"none@none.com","phone":"3122604347"}}`},
			}
			for i, c := range calls {
				if code, body := f.post(t, c.path, writeKey, c.body); code != 200 {
					t.Fatalf("call %d %s: %d %s", i+1, c.path, code, body)
				}
			}
			var steven []string
			for _, p := range f.export(t) {
				for _, n := range p.Identifiers {
					if n.Type == graph.TypeUserID && n.Value == "steven" {
						for _, m := range p.Identifiers {
							steven = append(steven, m.Type+":"+m.Value)
						}
					}
				}
			}
			for _, want := range []string{"anonymous_id:a-laptop", "anonymous_id:a-phone", "user_id:steven"} {
				if !slices.Contains(steven, want) {
					t.Errorf("steven's profile %v lacks %s", steven, want)
				}
			}
		})
	}
}
