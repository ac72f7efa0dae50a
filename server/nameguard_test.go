package server_test

import (
	"testing"
)

// The household over HTTP: Ann is signed in on the family tablet, Bob
// types his email into a newsletter form on it (the SDK sends Ann's user
// ID with it). The email does not join Ann: it waits in the review queue
// with reason name_conflict, Ann keeps her name, and a steward's approval
// links it as a link would.
func TestNameGuardHousehold(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"tablet","traits":{"firstName":"Ann","email":"ann@x.io"},"messageId":"h1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"tablet","traits":{"firstName":"Bob","email":"Bob@X.io","phone":"(415) 555-0100"},"messageId":"h2","timestamp":"2026-01-01T10:05:00Z"}`)
		ann := f.must(t, `{lookup(type:"user_id", value:"ann"){id name email identifiers { value }}}`, nil)
		if get(ann, "lookup.name") != "Ann" || get(ann, "lookup.email") != "ann@x.io" {
			t.Errorf("Ann's profile after Bob's form: %v", ann)
		}
		for _, id := range get(ann, "lookup.identifiers").([]any) {
			if v := get(id, "value"); v == "bob@x.io" || v == "+14155550100" {
				t.Errorf("Ann's profile holds the form's %v", v)
			}
		}
		bob := f.must(t, `{lookup(type:"email", value:"bob@x.io"){id name phone}}`, nil)
		if get(bob, "lookup.name") != "Bob" || get(bob, "lookup.id") == get(ann, "lookup.id") {
			t.Errorf("the form's profile: %v", bob)
		}
		q := f.must(t, reviewQuery, map[string]any{"f": map[string]any{"reason": "name_conflict"}})
		items := get(q, "reviewQueue.edges").([]any)
		var item any
		for _, it := range items {
			if get(it, "node.edge.a.value") == "bob@x.io" && get(it, "node.edge.b.value") == "ann" {
				item = it
			}
		}
		if item == nil || get(item, "node.joined") != false {
			t.Fatalf("no name_conflict item for ann and bob@x.io in %v", items)
		}
		d := f.act(t, `mutation($id: ID!) { approveMatch(id: $id, note: "Bob's address, Ann's account") { audit { action merge } profiles { id } } }`,
			map[string]any{"id": get(item, "node.id")})
		if get(d, "approveMatch.audit.action") != "approve" || get(d, "approveMatch.audit.merge") == nil {
			t.Errorf("approve = %v", d)
		}
		after := f.must(t, `{lookup(type:"email", value:"bob@x.io"){id}}`, nil)
		if get(after, "lookup.id") != get(ann, "lookup.id") {
			t.Errorf("after the approval bob@x.io is in %v, not Ann's %v", get(after, "lookup.id"), get(ann, "lookup.id"))
		}
	})
}
