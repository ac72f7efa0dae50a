package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/internal/backends"
)

// chain reads the whole audit chain of a key fixture's store, and checks
// it verifies.
func (kf *keyFixture) chain(t *testing.T) []*audit.Entry {
	t.Helper()
	l, err := audit.Open(kf.store, testPepper)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(context.Background(), l.Store(), testPepper)
	if err != nil || rep.Broken != nil {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	es, err := l.Store().Entries(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestAuditRecordsActions: admin and steward mutations, and refused and
// failed ones, are each one chained entry with the key's id and role, the
// request id, the remote address, the target and the outcome; a steward's
// note never reaches the chain; the link's identifiers are its subjects.
func TestAuditRecordsActions(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixture(t, b.Open, nil)
			steward, read := kf.create(t, auth.RoleSteward), kf.create(t, auth.RoleRead)
			stewardID, readID := strings.Split(steward, "_")[2], strings.Split(read, "_")[2]
			for _, body := range []string{`{"userId":"u-audit","traits":{"email":"Ann@Corp.io"}}`, `{"userId":"u-other"}`} {
				if code, out := kf.post(t, "/v1/identify", writeKey, body); code != 200 {
					t.Fatalf("identify: %d %s", code, out)
				}
			}
			link := `mutation { link(a: {type: "user_id", value: "u-audit"}, b: {type: "user_id", value: "u-other"}, note: "NOTE-MARKER-7Q") { audit { id } } }`
			// With the client's request id.
			req, _ := http.NewRequest(http.MethodPost, kf.url+"/graphql", strings.NewReader(`{"query":`+quote(link)+`}`))
			req.Header.Set("Authorization", "Bearer "+steward)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Request-Id", "req-audit-42")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("X-Request-Id") != "req-audit-42" {
				t.Fatalf("X-Request-Id answered %q", resp.Header.Get("X-Request-Id"))
			}
			if r := kf.gql(t, read, link, nil); r.code() != "FORBIDDEN" {
				t.Fatalf("read key link: %+v", r)
			}
			if r := kf.gql(t, steward, `mutation { undoSplit(auditId: "audit_nope") { profiles { id } } }`, nil); r.code() == "" {
				t.Fatalf("undo of nothing succeeded: %+v", r)
			}
			if r := kf.gql(t, kf.admin, `mutation { revokeApiKey(id: "`+readID+`") { id } }`, nil); len(r.Errors) > 0 {
				t.Fatalf("revoke: %+v", r)
			}
			es := kf.chain(t)
			want := []struct{ action, keyID, role, outcome string }{
				{"createApiKey", "", "admin", "ok"},
				{"createApiKey", "", "admin", "ok"},
				{"link", stewardID, "steward", "ok"},
				{"link", readID, "read", "forbidden"},
				{"undoSplit", stewardID, "steward", "not_found"},
				{"revokeApiKey", "", "admin", "ok"},
			}
			if len(es) != len(want) {
				for _, e := range es {
					t.Logf("%+v", e)
				}
				t.Fatalf("%d entries, want %d", len(es), len(want))
			}
			for i, w := range want {
				e := es[i]
				if e.Action != w.action || e.Role != w.role || e.Outcome != w.outcome || (w.keyID != "" && e.KeyID != w.keyID) ||
					e.KeyID == "" || e.RequestID == "" || e.Remote != "127.0.0.1" {
					t.Errorf("entry %d: %+v, want %+v", i+1, e, w)
				}
				if strings.Contains(e.Target, "NOTE-MARKER") {
					t.Errorf("entry %d holds the steward's note: %s", i+1, e.Target)
				}
			}
			l, _ := audit.Open(kf.store, testPepper)
			// link's identifiers are @subject arguments: kept as keyed hashes.
			if es[2].RequestID != "req-audit-42" || strings.Contains(es[2].Target, "u-audit") ||
				!strings.Contains(es[2].Target, "hmac:"+l.SubjectHash("user_id:u-audit")) {
				t.Errorf("link entry: %+v", es[2])
			}
			if es[5].Target != `{"id":"`+readID+`"}` {
				t.Errorf("revoke target %q", es[5].Target)
			}
			if got, err := l.EntriesFor(context.Background(), "user_id:u-audit"); err != nil || len(got) != 2 {
				t.Fatalf("entries naming u-audit: %d, %v; want the link and the refused link", len(got), err)
			}
		})
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
