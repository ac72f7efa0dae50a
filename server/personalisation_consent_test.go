package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

// TestPersonalisationConsent, on both backends: `me` shows a visitor's
// data only while their consent for the personalisation purpose is
// granted. Denied, missing, expired and conflicting consent (a merge of a
// granting device and a denying account) each answer exactly what an
// unknown visitor gets, and are counted as withheld by reason; once a
// steward records a grant for the profile, the same tokens read the data,
// which proves that there was data to withhold.
func TestPersonalisationConsent(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			pf := newPersFixture(t, b.Open, nil)
			now := time.Now()
			denies := `"context":{"consent":{"categoryPreferences":{"personalisation":false}}}`
			pf.send(t, "/v1/identify", `{"userId":"u-deny","traits":{"plan":"gold"},"messageId":"c1",`+denies+`}`)
			pf.send(t, "/v1/identify", `{"userId":"u-none","traits":{"plan":"gold"},"messageId":"c2"}`)
			pf.send(t, "/v1/identify", `{"userId":"u-exp","traits":{"plan":"gold"},"messageId":"c3"}`)
			// The conflict: a device that granted, an account that denied,
			// then one message joining them.
			pf.send(t, "/v1/page", `{"anonymousId":"c-anon","name":"Home","messageId":"c4",`+grantsPersonalisation+`}`)
			pf.send(t, "/v1/identify", `{"userId":"u-conflict","traits":{"plan":"gold"},"messageId":"c5",`+denies+`}`)
			pf.send(t, "/v1/track", `{"userId":"u-conflict","anonymousId":"c-anon","event":"Signed In","messageId":"c6"}`)
			// An expired grant, written as a consent manager's record with
			// an expiry would be once it passed.
			k := graph.Key{Type: graph.TypeUserID, Value: "u-exp"}
			if err := pf.store.(consent.Backend).Consent().AppendConsent(context.Background(), []consent.Record{{ID: "c3-exp", Key: k,
				Purpose: "personalisation", Status: consent.Granted, Time: now.Add(-48 * time.Hour), Expires: now.Add(-24 * time.Hour),
				Source: consent.SourceAPI}}); err != nil {
				t.Fatal(err)
			}
			cases := []struct{ name, mint, user, reason string }{
				{"denied", `{"userId":"u-deny"}`, "user_id:u-deny", consent.ReasonDenied},
				{"missing", `{"userId":"u-none"}`, "user_id:u-none", consent.ReasonNotGranted},
				{"expired", `{"userId":"u-exp"}`, "user_id:u-exp", consent.ReasonExpired},
				{"conflict (by the granting device)", `{"anonymousId":"c-anon"}`, "user_id:u-conflict", consent.ReasonConflict},
			}
			alice := pf.mintToken(t, pf.mint, `{"userId":"u-alice"}`)
			if got := pf.me(t, alice); got == emptyMe {
				t.Fatalf("alice granted consent and reads nothing")
			}
			tokens := make([]string, len(cases))
			for i, c := range cases {
				tokens[i] = pf.mintToken(t, pf.mint, c.mint)
				if got := pf.me(t, tokens[i]); got != emptyMe {
					t.Errorf("%s consent: me = %s, want %s (what an unknown visitor reads)", c.name, got, emptyMe)
				}
			}
			m := pf.metrics(t)
			for _, c := range cases {
				if !strings.Contains(m, `idgraph_consent_withheld_total{path="me",purpose="personalisation",reason="`+c.reason+`"}`) {
					t.Errorf("%s consent is not counted as withheld (%s)", c.name, c.reason)
				}
			}
			// A grant for the whole profile: each reads its data now.
			rec := `mutation($p: ID!) { recordConsent(profileId: $p, purpose: "personalisation", status: GRANTED) { profileId } }`
			for i, c := range cases {
				pf.mustAs(t, stewKey, rec, map[string]any{"p": storetest.ProfileOf(t, pf.store, c.user).ID})
				if got := pf.awaitMe(t, tokens[i]); got == emptyMe || !strings.Contains(got, `"tier"`) {
					t.Errorf("%s, then granted: me = %s, want its computed traits", c.name, got)
				}
			}
		})
	}
}

// awaitMe reads me until it is not empty (computed traits of a new
// profile are evaluated in the background), or gives up after 10 s and
// returns what it read last.
func (pf *persFixture) awaitMe(t *testing.T, token string) string {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = pf.me(t, token); got != emptyMe && strings.Contains(got, `"tier"`) {
			break
		}
	}
	return got
}
