package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/internal/backends"
)

// TestIdentifierPolicyOverGraphQL, on every backend: only admins set a
// destination's identifier policy; bad input is refused naming the
// field; entries then carry the profile's identifiers under the policy,
// and the exit carries those the destination was sent, not the profile's
// identifiers at the exit.
func TestIdentifierPolicyOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			admin := f.admin
			f.mustAs(t, admin, `mutation { createSegment(key: "pro", definition: "trait(\"plan\") = \"pro\"") { key } }`, nil)
			h := newHookReceiver(t)
			d := f.mustAs(t, admin, `mutation($url: String!) { createDestination(name: "crm", url: $url, segments: ["pro"]) {
				secret destination { id identifierPolicy { types } } } }`, map[string]any{"url": h.srv.URL})
			h.mu.Lock()
			h.secret = get(d, "createDestination.secret").(string)
			h.mu.Unlock()
			id := get(d, "createDestination.destination.id").(string)
			if p := get(d, "createDestination.destination.identifierPolicy"); p != nil {
				t.Fatalf("a new destination has policy %v, want none", p)
			}
			const set = `mutation($id: ID!, $p: IdentifierPolicyInput) {
				setDestinationIdentifierPolicy(destination: $id, policy: $p) { identifierPolicy { types mode } } }`
			policy := func(mode string, types ...string) map[string]any {
				return map[string]any{"id": id, "p": map[string]any{"types": append([]string{}, types...), "mode": mode}}
			}
			for _, key := range []string{readKey, stewKey} {
				if r := f.gql(t, key, set, policy("ALL", "email")); r.code() != "FORBIDDEN" {
					t.Fatalf("a non-admin key set a policy: %+v", r)
				}
			}
			for _, bad := range []struct {
				vars  map[string]any
				field string
			}{
				{policy("ALL"), "types"},
				{policy("ALL", "email", "Not A Type!"), "types"},
				{policy("FIRST", "email", "email"), "types"},
				{policy("ALL", strings.Split(strings.Repeat("t,", 21), ",")[:21]...), "types"},
				{policy("SOMETIMES", "email"), "IdentifierMode"},
			} {
				r := f.gql(t, admin, set, bad.vars)
				if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, bad.field) {
					t.Errorf("setDestinationIdentifierPolicy(%v): %+v, want an error naming %s", bad.vars["p"], r, bad.field)
				}
			}
			if r := f.gql(t, admin, set, map[string]any{"id": "dst_nosuch", "p": policy("ALL", "email")["p"]}); r.code() != "NOT_FOUND" {
				t.Errorf("an unknown destination: %+v", r)
			}
			got := f.mustAs(t, admin, set, policy("FIRST", "email", "user_id"))
			if p := get(got, "setDestinationIdentifierPolicy.identifierPolicy"); fmt.Sprint(p) != "map[mode:FIRST types:[email user_id]]" {
				t.Fatalf("policy set: %v", p)
			}

			f.send(t, "/v1/identify", `{"userId":"ann","traits":{"plan":"pro","email":"ann@corp.io"}}`)
			h.await(t, 1)
			// A second email joins; the mode becomes ALL: the exit still
			// carries what was sent.
			f.send(t, "/v1/identify", `{"userId":"ann","traits":{"email":"ann2@corp.io"}}`)
			f.mustAs(t, admin, set, policy("ALL", "email", "user_id"))
			f.send(t, "/v1/identify", `{"userId":"ann","traits":{"plan":"free"}}`)
			h.await(t, 2)
			h.mu.Lock()
			bodies := h.bodies
			h.mu.Unlock()
			sent := []destinations.Identifier{{Type: "email", Value: "ann@corp.io"}, {Type: "user_id", Value: "ann"}}
			for i, typ := range []string{destinations.TypeEntered, destinations.TypeExited} {
				var m struct {
					Type string
					Data destinations.SegmentChange
				}
				if err := json.Unmarshal(bodies[i], &m); err != nil {
					t.Fatal(err)
				}
				if m.Type != typ || fmt.Sprint(m.Data.Identifiers) != fmt.Sprint(sent) {
					t.Errorf("message %d: %s, want %s with %v", i, bodies[i], typ, sent)
				}
			}
			if r := f.mustAs(t, admin, `mutation($id: ID!) { setDestinationIdentifierPolicy(destination: $id, policy: null) { identifierPolicy { mode } } }`,
				map[string]any{"id": id}); get(r, "setDestinationIdentifierPolicy.identifierPolicy") != nil {
				t.Errorf("policy after clearing: %v", r)
			}
		})
	}
}

// TestRevocationWithdrawsOverHTTP, on every backend: a consent denial
// recorded over GraphQL withdraws the person from the destination with
// that purpose: it is sent an exit, reason consent_revoked, carrying the
// identifiers its entry carried.
func TestRevocationWithdrawsOverHTTP(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			admin := f.admin
			h := analyticsDestination(t, f)
			f.send(t, "/v1/identify", `{"userId":"ann","traits":{"plan":"free"}}`)
			const record = `mutation($st: ConsentStatus!) { recordConsent(subject: {type: "user_id", value: "ann"}, purpose: "analytics", status: $st) { profileId } }`
			f.mustAs(t, admin, record, map[string]any{"st": "GRANTED"})
			f.send(t, "/v1/identify", `{"userId":"ann","traits":{"plan":"pro"}}`)
			h.await(t, 1)
			f.mustAs(t, admin, record, map[string]any{"st": "DENIED"})
			got := h.await(t, 2)
			h.mu.Lock()
			exit := string(h.bodies[1])
			h.mu.Unlock()
			if got[0] != "segment.entered pro" || got[1] != "segment.exited pro" ||
				!strings.Contains(exit, `"reason":"consent_revoked"`) || !strings.Contains(exit, `"identifiers":[{"type":"user_id","value":"ann"}]`) {
				t.Fatalf("messages %v, exit %s", got, exit)
			}
		})
	}
}

// TestGrantCatchesUpOverHTTP, on every backend: an entry withheld from a
// destination for want of consent is sent once the person's next message
// grants it (Segment's categoryPreferences), reason consent_granted,
// carrying the identifiers of the destination's policy.
func TestGrantCatchesUpOverHTTP(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			admin := f.admin
			h := analyticsDestination(t, f)
			f.send(t, "/v1/identify", `{"userId":"ann","traits":{"plan":"pro"}}`)
			waitFor(t, "entry withheld", func() bool {
				r := f.mustAs(t, admin, `{ destinations { withheld { reason count } } }`, nil)
				return strings.Contains(fmt.Sprint(get(r, "destinations.0.withheld")), "map[count:1 reason:not_granted]")
			})
			f.send(t, "/v1/track", `{"userId":"ann","event":"Opted in","context":{"consent":{"categoryPreferences":{"analytics":true}}}}`)
			got := h.await(t, 1)
			h.mu.Lock()
			entry := string(h.bodies[0])
			h.mu.Unlock()
			if got[0] != "segment.entered pro" || !strings.Contains(entry, `"reason":"consent_granted"`) || !strings.Contains(entry, `"identifiers":[{"type":"user_id","value":"ann"}]`) {
				t.Fatalf("messages %v, entry %s", got, entry)
			}
		})
	}
}

// analyticsDestination creates the segment "pro" and a destination
// receiving it with purpose analytics and the user_id policy.
func analyticsDestination(t *testing.T, f *keyFixture) *hookReceiver {
	t.Helper()
	admin := f.admin
	f.mustAs(t, admin, `mutation { createSegment(key: "pro", definition: "trait(\"plan\") = \"pro\"") { key } }`, nil)
	h := newHookReceiver(t)
	d := f.mustAs(t, admin, `mutation($url: String!) { createDestination(name: "crm", url: $url, segments: ["pro"]) { secret destination { id } } }`,
		map[string]any{"url": h.srv.URL})
	h.mu.Lock()
	h.secret = get(d, "createDestination.secret").(string)
	h.mu.Unlock()
	id := get(d, "createDestination.destination.id").(string)
	f.mustAs(t, admin, `mutation($id: ID!) { setDestinationPurpose(destination: $id, purpose: "analytics") { id } }`, map[string]any{"id": id})
	f.mustAs(t, admin, `mutation($id: ID!) { setDestinationIdentifierPolicy(destination: $id, policy: {types: ["user_id"], mode: ALL}) { id } }`,
		map[string]any{"id": id})
	return h
}

// TestMergeBringsConsentOverHTTP: consent can arrive through the identity
// graph with no new choice of the person's own: an anonymous visitor who
// granted it turns out, by a later identify, to be ann, whose entry was
// withheld. The server follows the merge and sends the entry.
func TestMergeBringsConsentOverHTTP(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			h := analyticsDestination(t, f)
			f.send(t, "/v1/identify", `{"userId":"ann","traits":{"plan":"pro"}}`)
			waitFor(t, "entry withheld", func() bool {
				r := f.mustAs(t, f.admin, `{ destinations { withheld { reason count } } }`, nil)
				return strings.Contains(fmt.Sprint(get(r, "destinations.0.withheld")), "map[count:1 reason:not_granted]")
			})
			f.send(t, "/v1/track", `{"anonymousId":"tablet-7","event":"Opted in","context":{"consent":{"categoryPreferences":{"analytics":true}}}}`)
			f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"tablet-7"}`)
			got := h.await(t, 1)
			h.mu.Lock()
			entry := string(h.bodies[0])
			h.mu.Unlock()
			if got[0] != "segment.entered pro" || !strings.Contains(entry, `"reason":"consent_granted"`) {
				t.Fatalf("messages %v, entry %s", got, entry)
			}
		})
	}
}
