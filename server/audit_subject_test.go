package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/internal/backends"
)

// TestAuditRecordConsentSubject: recordConsent's subject, an identifier
// input the schema marks @subject, is kept in its entry only as its keyed
// hash and names the person as the entry's subject, so that their access
// export finds the entry and their erasure redacts it.
func TestAuditRecordConsentSubject(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, consentPurposes)
			if code, out := kf.post(t, "/v1/identify", writeKey, `{"userId":"u-ann","traits":{"email":"Ann@Corp.io"}}`); code != 200 {
				t.Fatalf("identify: %d %s", code, out)
			}
			rec := `mutation($s: IdentifierInput) { recordConsent(subject: $s, purpose: "analytics", status: GRANTED) { profileId } }`
			if r := kf.gql(t, kf.admin, rec, map[string]any{"s": map[string]any{"type": "email", "value": "Ann@Corp.io"}}); len(r.Errors) > 0 {
				t.Fatalf("recordConsent: %+v", r)
			}
			es := kf.chain(t)
			e := es[len(es)-1]
			l, err := audit.Open(kf.store, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"purpose":"analytics","status":"GRANTED","subject":"hmac:` + l.SubjectHash("email:ann@corp.io") + `"}`
			if e.Action != "recordConsent" || e.Outcome != "ok" || e.Target != want {
				t.Fatalf("entry %+v, want target %s", e, want)
			}
			if strings.Contains(strings.ToLower(e.Target), "ann@") {
				t.Errorf("the entry holds the email: %s", e.Target)
			}
			got, err := l.EntriesFor(context.Background(), "email:ann@corp.io")
			if err != nil || !slices.ContainsFunc(got, func(g *audit.Entry) bool { return g.Seq == e.Seq }) {
				t.Errorf("the person's entries %v (%v) miss the consent's", got, err)
			}
		})
	}
}
