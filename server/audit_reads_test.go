package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

// TestAuditPersonReads, on both backends: every read of one person through
// GraphQL (`lookup`, `profile`) is a chained entry with the key's id and
// role and its outcome, a miss included; a looked-up value is kept only
// as its keyed hash; the entry's subjects are every identifier of the
// person found, so the person's entries are found by any of them (what
// the access export lists); other root fields are not entries (lists are:
// TestAuditListReads); the chain still verifies.
func TestAuditPersonReads(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixture(t, b.Open, nil)
			kf.send(t, "/v1/identify", `{"userId":"u-read","anonymousId":"a-read","traits":{"email":"Reader.Person@corp.io"},"messageId":"r1"}`)
			kf.send(t, "/v1/identify", `{"userId":"u-other","traits":{"email":"other@corp.io"},"messageId":"r2"}`)
			pid := storetest.ProfileOf(t, kf.store, "user_id:u-read").ID
			support := kf.create(t, auth.RoleSupport)
			read := kf.create(t, auth.RoleRead)
			before := len(kf.chain(t))

			lookup := `query($t: String!, $v: String!) { lookup(type: $t, value: $v) { id } }`
			kf.mustAs(t, support, lookup, map[string]any{"t": "email", "v": "READER.person@corp.io"})
			if r := kf.gql(t, support, lookup, map[string]any{"t": "email", "v": "nobody@corp.io"}); r.code() != "NOT_FOUND" {
				t.Fatalf("a lookup of no one: %+v", r.Errors)
			}
			kf.mustAs(t, kf.admin, `query($id: ID!) { profile(id: $id) { id traits } }`, map[string]any{"id": pid})
			kf.mustAs(t, read, lookup, map[string]any{"t": "user_id", "v": "u-read"})
			// Not a read of anyone: no entry.
			kf.mustAs(t, support, `{ __typename }`, nil)

			es := kf.chain(t)[before:]
			type want struct{ action, role, outcome string }
			wants := []want{{"lookup", "support", "ok"}, {"lookup", "support", "not_found"}, {"profile", "admin", "ok"}, {"lookup", "read", "ok"}}
			if len(es) != len(wants) {
				for _, e := range es {
					t.Logf("entry %d: %s %s %s %s", e.Seq, e.Action, e.Role, e.Outcome, e.Target)
				}
				t.Fatalf("%d new entries, want %d", len(es), len(wants))
			}
			for i, w := range wants {
				e := es[i]
				if e.Action != w.action || e.Role != w.role || e.Outcome != w.outcome || e.KeyID == "" || e.RequestID == "" || e.Remote == "" {
					t.Errorf("entry %d = %s by %s %q (%s) from %q, request %q; want %+v", e.Seq, e.Action, e.Role, e.KeyID, e.Outcome, e.Remote, e.RequestID, w)
				}
				if s := strings.ToLower(e.Target); strings.Contains(s, "reader") || strings.Contains(s, "nobody") || strings.Contains(s, "u-read") {
					t.Errorf("entry %d keeps a looked-up value readable: %s", e.Seq, e.Target)
				}
				if w.outcome == "ok" && (!strings.Contains(e.Target, pid) || len(e.Subjects) != 3) {
					t.Errorf("entry %d: target %s, %d subjects; want the profile and its 3 identifiers", e.Seq, e.Target, len(e.Subjects))
				}
			}
			l, err := audit.Open(kf.store, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			// Found by any of the person's identifiers, the anonymous ID
			// included, which no read named.
			mine, err := l.EntriesFor(context.Background(), "anonymous_id:a-read")
			if err != nil {
				t.Fatal(err)
			}
			var reads []string
			for _, e := range mine {
				reads = append(reads, e.Action+"/"+e.Role)
			}
			if got := fmt.Sprint(reads); got != "[lookup/support profile/admin lookup/read]" {
				t.Errorf("entries naming the person: %s", got)
			}
			if others, _ := l.EntriesFor(context.Background(), "user_id:u-other"); len(others) != 0 {
				t.Errorf("%d entries name someone no one read", len(others))
			}
		})
	}
}
