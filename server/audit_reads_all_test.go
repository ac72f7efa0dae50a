package server_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// TestAuditEveryPersonRead, on both backends: every root field that shows
// one person's data writes one chained entry naming the person by every
// identifier, keeping a looked-up value only as its keyed hash; the audit
// log unfiltered is no read of one person.
func TestAuditEveryPersonRead(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, func(cfg *server.Config) {
				consentPurposes(cfg)
				loadSegments(t, cfg)
			})
			kf.send(t, "/v1/identify", `{"userId":"u-seen","anonymousId":"a-seen","traits":{"email":"Seen.Person@corp.io","plan":"pro"},"messageId":"s1"}`)
			kf.mustAs(t, kf.admin, `mutation { createSegment(key: "pro", definition: "trait(\"plan\") = \"pro\"") { key } }`, nil)
			kf.mustAs(t, kf.admin, `mutation { createComputedTrait(key: "tier", definition: "trait(\"plan\")") { key } }`, nil)
			pid := storetest.ProfileOf(t, kf.store, "user_id:u-seen").ID
			l, err := audit.Open(kf.store, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			email := map[string]any{"type": "email", "value": "SEEN.person@corp.io"}
			reads := []struct {
				field, query string
				vars         map[string]any
			}{
				{"profile", `query($id: ID!) { profile(id: $id) { id } }`, map[string]any{"id": pid}},
				{"lookup", `query($t: String!, $v: String!) { lookup(type: $t, value: $v) { id } }`, map[string]any{"t": "email", "v": "SEEN.person@corp.io"}},
				{"identifier", `query($t: String!, $v: String!) { identifier(type: $t, value: $v) { type } }`, map[string]any{"t": "email", "v": "SEEN.person@corp.io"}},
				{"consent", `query($id: ID) { consent(profileId: $id) { profileId } }`, map[string]any{"id": pid}},
				{"consent", `query($s: IdentifierInput) { consent(subject: $s) { profileId } }`, map[string]any{"s": email}},
				{"explainMembership", `query($id: ID!) { explainMembership(profileId: $id, segment: "pro") { member } }`, map[string]any{"id": pid}},
				{"explainComputedTrait", `query($id: ID!) { explainComputedTrait(profileId: $id, key: "tier") { profileId } }`, map[string]any{"id": pid}},
				{"auditLog", `query($id: ID) { auditLog(filter: {profileId: $id}) { edges { node { id } } } }`, map[string]any{"id": pid}},
			}
			for _, r := range reads {
				before := len(kf.chain(t))
				kf.mustAs(t, kf.admin, r.query, r.vars)
				es := kf.chain(t)[before:]
				if len(es) != 1 {
					t.Errorf("%s: %d entries, want 1", r.field, len(es))
					continue
				}
				e := es[0]
				if e.Action != r.field || e.Outcome != "ok" || e.Role != "admin" || !strings.Contains(e.Target, pid) {
					t.Errorf("%s: entry %s %s by %s, target %s", r.field, e.Action, e.Outcome, e.Role, e.Target)
				}
				if strings.Contains(strings.ToLower(e.Target), "seen.person") {
					t.Errorf("%s: the entry keeps the email readable: %s", r.field, e.Target)
				}
				if !slices.Contains(e.Subjects, l.SubjectHash("anonymous_id:a-seen")) || len(e.Subjects) != 3 {
					t.Errorf("%s: subjects %v, want the person's 3 identifiers", r.field, e.Subjects)
				}
			}
			before := len(kf.chain(t))
			kf.mustAs(t, kf.admin, `{ auditLog { edges { node { id } } } }`, nil)
			if n := len(kf.chain(t)) - before; n != 0 {
				t.Errorf("the unfiltered audit log wrote %d entries", n)
			}
		})
	}
}
