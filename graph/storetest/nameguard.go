package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// testNameGuardHousehold: Ann is signed in on the family tablet; Bob types
// his email and phone into a form on it, so the identify carries Ann's
// user ID with Bob's contact details and first name. The guard keeps
// them out of Ann's profile, waiting for review with reason name_conflict,
// with the form's traits; Bob's own identify later joins them to him.
func testNameGuardHousehold(t *testing.T, s graph.Store) {
	Ingest(t, s, identify("m1", t0, map[string]any{"firstName": "Ann", "lastName": "Lee"}, "user_id:ann", "anonymous_id:tablet", "email:ann@x.io"))
	r := Ingest(t, s, identify("m2", t0.Add(time.Minute), map[string]any{"firstName": "Bob", "email": "bob@x.io"},
		"user_id:ann", "anonymous_id:tablet", "email:bob@x.io", "phone:+14155550100"))
	// The form also shows that a second person uses the tablet: it is
	// shared, and leaves Ann's profile as if Bob had signed in on it.
	if r.Repaired != 1 || len(r.RepairErrors) > 0 {
		t.Errorf("repaired %d profiles (errors %v), want 1: the tablet", r.Repaired, r.RepairErrors)
	}
	wantPartition(t, s, "email:ann@x.io user_id:ann", "anonymous_id:tablet", "email:bob@x.io phone:+14155550100")
	ann := ProfileOf(t, s, "user_id:ann")
	// The repair rebuilt Ann's traits from her identify calls, replaying
	// the guard: the form's name and email stay off her profile.
	if got := ann.Traits["firstName"].Value; got != "Ann" {
		t.Errorf("Ann's profile is named %v after Bob's form, want Ann", got)
	}
	if _, ok := ann.Traits["email"]; ok {
		t.Errorf("the form's email trait was written onto Ann's profile: %v", ann.Traits["email"])
	}
	if got := ProfileOf(t, s, "email:bob@x.io").Traits["firstName"].Value; got != "Bob" {
		t.Errorf("the held profile is named %v, want the form's Bob", got)
	}
	for _, pair := range [][2]string{{"user_id:ann", "email:bob@x.io"}, {"user_id:ann", "phone:+14155550100"}} {
		if e := edge(t, s, pair[0], pair[1]); e.Status != graph.StatusPending || e.Reason != graph.ReasonNameConflict || e.Impact < 2 {
			t.Errorf("edge %s–%s = %s/%s impact %d, want pending/%s", pair[0], pair[1], e.Status, e.Reason, e.Impact, graph.ReasonNameConflict)
		}
	}
	if e := edge(t, s, "email:bob@x.io", "phone:+14155550100"); e.Status != graph.StatusAccepted {
		t.Errorf("the form's email and phone are %s, want accepted (they were typed together)", e.Status)
	}
	if !slices.ContainsFunc(queue(t, s), func(e *graph.Edge) bool {
		return e.Reason == graph.ReasonNameConflict && graph.Pair(key("user_id:ann"), key("email:bob@x.io")) == [2]graph.Key{e.A, e.B}
	}) {
		t.Errorf("the review queue does not show the held email: %v", queue(t, s))
	}
	// The same form again: still held, and the edge is counted, not re-proposed.
	Ingest(t, s, identify("m3", t0.Add(2*time.Minute), map[string]any{"firstName": "Bob"}, "user_id:ann", "anonymous_id:tablet", "email:bob@x.io"))
	if e := edge(t, s, "user_id:ann", "email:bob@x.io"); e.Status != graph.StatusPending || e.Count != 2 {
		t.Errorf("the form seen again: edge %s, count %d; want pending, 2", e.Status, e.Count)
	}
	// Bob signs in on his own phone with the same email: it joins him,
	// and the item stays in the queue for a steward.
	Ingest(t, s, identify("m4", t0.Add(time.Hour), map[string]any{"firstName": "Bob", "lastName": "Lee"}, "user_id:bob", "anonymous_id:bobphone", "email:bob@x.io"))
	wantPartition(t, s, "email:ann@x.io user_id:ann", "anonymous_id:tablet",
		"anonymous_id:bobphone email:bob@x.io phone:+14155550100 user_id:bob")
	if e := edge(t, s, "user_id:ann", "email:bob@x.io"); e.Status != graph.StatusPending || e.Reason != graph.ReasonNameConflict {
		t.Errorf("after Bob's own identify the held edge is %s/%s, want still pending", e.Status, e.Reason)
	}
}

// testNameGuardApprove: a steward who knows the email is Ann's after all
// approves the item, and it joins her profile as a link would.
func testNameGuardApprove(t *testing.T, s graph.Store) {
	ctx := context.Background()
	Ingest(t, s,
		identify("m1", t0, map[string]any{"firstName": "Ann"}, "user_id:ann", "anonymous_id:tablet"),
		identify("m2", t0.Add(time.Minute), map[string]any{"firstName": "Bob"}, "user_id:ann", "anonymous_id:tablet", "email:shared@x.io"),
	)
	wantPartition(t, s, "anonymous_id:tablet", "user_id:ann", "email:shared@x.io")
	a, err := steward(s).Approve(ctx, "steward-1", graph.Pair(key("user_id:ann"), key("email:shared@x.io")), "the family's address")
	if err != nil {
		t.Fatal(err)
	}
	if a.Merge == "" || a.Action != graph.ActionApprove {
		t.Errorf("approval audited as %+v, want an approve with its merge", a)
	}
	wantPartition(t, s, "anonymous_id:tablet", "email:shared@x.io user_id:ann")
	// Accepted by a steward: the same form again stitches as usual.
	Ingest(t, s, identify("m3", t0.Add(2*time.Minute), map[string]any{"firstName": "Bob"}, "user_id:ann", "anonymous_id:tablet", "email:shared@x.io"))
	wantPartition(t, s, "anonymous_id:tablet", "email:shared@x.io user_id:ann")
}

// testNameGuardCases: what "clearly disagrees" means; each case has
// identifiers of its own.
func testNameGuardCases(t *testing.T, s graph.Store) {
	type obs struct {
		traits map[string]any
		ids    []string
	}
	ann := obs{map[string]any{"firstName": "Ann"}, []string{"user_id:u", "anonymous_id:a", "email:u@x.io"}}
	off := graph.DefaultConfig()
	off.NameGuard = 0
	for i, tc := range []struct {
		name   string
		cfg    *graph.Config
		before []obs
		form   obs
		held   bool
	}{
		{"different person", nil, []obs{ann}, obs{map[string]any{"firstName": "Bob"}, []string{"user_id:u", "email:b@x.io"}}, true},
		{"nickname", nil, []obs{{map[string]any{"firstName": "Robert"}, []string{"user_id:u"}}},
			obs{map[string]any{"firstName": "Bob"}, []string{"user_id:u", "email:b@x.io"}}, false},
		{"typo", nil, []obs{{map[string]any{"firstName": "John"}, []string{"user_id:u"}}},
			obs{map[string]any{"firstName": "Jhon"}, []string{"user_id:u", "email:b@x.io"}}, false},
		{"initial", nil, []obs{{map[string]any{"firstName": "Samantha"}, []string{"user_id:u"}}},
			obs{map[string]any{"firstName": "S."}, []string{"user_id:u", "email:b@x.io"}}, false},
		{"no name in the form", nil, []obs{ann}, obs{map[string]any{"plan": "pro"}, []string{"user_id:u", "email:b@x.io"}}, false},
		{"no name on the profile", nil, []obs{{map[string]any{"plan": "pro"}, []string{"user_id:u"}}},
			obs{map[string]any{"firstName": "Bob"}, []string{"user_id:u", "email:b@x.io"}}, false},
		{"name trait", nil, []obs{{map[string]any{"name": "Ann Lee"}, []string{"user_id:u"}}},
			obs{map[string]any{"name": "Bob Lee"}, []string{"user_id:u", "phone:+14155550100"}}, true},
		{"anonymous form on a signed-in tablet", nil, []obs{ann},
			obs{map[string]any{"firstName": "Bob"}, []string{"anonymous_id:a", "email:b@x.io"}}, true},
		{"a new user signs up on the tablet", nil, []obs{ann},
			obs{map[string]any{"firstName": "Bob"}, []string{"user_id:bob", "anonymous_id:a", "email:b@x.io"}}, false},
		{"guard off", &off, []obs{ann}, obs{map[string]any{"firstName": "Bob"}, []string{"user_id:u", "email:b@x.io"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own := func(ids []string) []string { // this case's own values
				out := make([]string, len(ids))
				for j, id := range ids {
					out[j] = fmt.Sprintf("%s.%d", id, i)
				}
				return out
			}
			tc.form.ids = own(tc.form.ids)
			cfg := graph.DefaultConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			for j, o := range tc.before {
				IngestWith(t, s, cfg, identify(fmt.Sprintf("c%d-%d", i, j), t0.Add(time.Duration(j)*time.Minute), o.traits, own(o.ids)...))
			}
			IngestWith(t, s, cfg, identify(fmt.Sprintf("c%d-form", i), t0.Add(time.Hour), tc.form.traits, tc.form.ids...))
			contact := tc.form.ids[len(tc.form.ids)-1]
			lead := ProfileOf(t, s, tc.form.ids[0])
			if held := ProfileOf(t, s, contact).ID != lead.ID; held != tc.held {
				t.Errorf("%s held: %v, want %v (profiles %q)", contact, held, tc.held, Partition(t, s))
			}
			if tc.held {
				// A device's edge waits as the shared device's, which the form revealed.
				if e := edge(t, s, tc.form.ids[0], contact); e.Reason != graph.ReasonNameConflict && e.Reason != graph.ReasonShared {
					t.Errorf("edge %s–%s reason %q, want %s", tc.form.ids[0], contact, e.Reason, graph.ReasonNameConflict)
				}
			}
			CheckInvariants(t, s)
		})
	}
}

// testNameGuardNameChange: a person changing their first name, with the
// email the profile already holds, is no conflict: nothing new is held,
// and the new name is taken.
func testNameGuardNameChange(t *testing.T, s graph.Store) {
	Ingest(t, s,
		identify("m1", t0, map[string]any{"firstName": "Pat"}, "user_id:u", "email:pat@x.io"),
		identify("m2", t0.Add(time.Hour), map[string]any{"firstName": "Jordan"}, "user_id:u", "email:pat@x.io"),
	)
	wantPartition(t, s, "email:pat@x.io user_id:u")
	if got := ProfileOf(t, s, "user_id:u").Traits["firstName"].Value; got != "Jordan" {
		t.Errorf("after a name change the profile is named %v, want Jordan", got)
	}
	// A hub (a junk value typed by many) is not held: it joins no profile
	// anyway, and its edges are rejected as a hub's.
	cfg := graph.DefaultConfig()
	cfg.HubLimit = 1
	IngestWith(t, s, cfg,
		identify("m3", t0.Add(2*time.Hour), nil, "user_id:x", "email:junk@x.io"),
		identify("m4", t0.Add(3*time.Hour), nil, "user_id:y", "email:junk@x.io"),
		identify("m5", t0.Add(4*time.Hour), map[string]any{"firstName": "Bob"}, "user_id:u", "email:junk@x.io"),
	)
	if e := edge(t, s, "user_id:u", "email:junk@x.io"); e.Reason != graph.ReasonHub {
		t.Errorf("a hub's edge from a conflicting form: %s/%s, want rejected/hub", e.Status, e.Reason)
	}
}
