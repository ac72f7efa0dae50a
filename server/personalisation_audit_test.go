package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// TestPersonalisationMintLimitsAndAudit, on both backends: each minted or
// exchanged token is an audit entry naming the visitor only by keyed hash
// (found under the visitor's identifier); a mint key past its rate limit
// and an address past its exchanges are answered 429 with Retry-After.
func TestPersonalisationMintLimitsAndAudit(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, func(cfg *server.Config) {
				cfg.TokenKey, cfg.AssertionSecret = persTokenKey, persAssertionSecret
				cfg.Rates = map[auth.Role]server.Rate{auth.RoleMint: {PerSecond: 0.01, Burst: 2}}
				cfg.ExchangesPerMinute = 2
			})
			mint := kf.create(t, auth.RoleMint)
			before := len(kf.chain(t))
			post := func(path, key, body string) (int, http.Header) {
				t.Helper()
				code, _, h := kf.postHeaders(t, path, body, func(r *http.Request) {
					if key != "" {
						r.Header.Set("Authorization", "Bearer "+key)
					}
				})
				return code, h
			}
			for i, body := range []string{`{"userId":"u-Visitor"}`, `{"anonymousId":"a-visitor","ttl":"1m"}`, `{"userId":"u-Visitor"}`} {
				code, h := post("/v1/personalisation/tokens", mint, body)
				if want := map[bool]int{true: 200, false: 429}[i < 2]; code != want || want == 429 && h.Get("Retry-After") == "" {
					t.Errorf("mint %d: %d (Retry-After %q), want %d", i+1, code, h.Get("Retry-After"), want)
				}
			}
			assertion := auth.SignAssertion(persAssertionSecret, map[string]any{"userId": "u-Visitor", "aud": auth.AssertionAudience, "exp": time.Now().Add(time.Minute).Unix()})
			for i, body := range []string{`{"assertion":"` + assertion + `"}`, `{"assertion":"forged"}`, `{"assertion":"` + assertion + `"}`} {
				code, h := post("/v1/personalisation/exchange", "", body)
				if want := []int{200, 401, 429}[i]; code != want || want == 429 && h.Get("Retry-After") == "" {
					t.Errorf("exchange %d: %d (Retry-After %q), want %d", i+1, code, h.Get("Retry-After"), want)
				}
			}
			es := kf.chain(t)[before:]
			var got []string
			for _, e := range es {
				got = append(got, e.Action+"/"+e.Role+"/"+e.Outcome)
				if strings.Contains(strings.ToLower(e.Target), "visitor") {
					t.Errorf("entry %d keeps the visitor readable: %s", e.Seq, e.Target)
				}
			}
			if g := strings.Join(got, " "); g != "mintToken/mint/ok mintToken/mint/ok exchangeToken/assertion/ok" {
				t.Errorf("entries %s, want two mints and one exchange", g)
			}
			l, err := audit.Open(kf.store, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			if mine, err := l.EntriesFor(context.Background(), "user_id:u-Visitor"); err != nil || len(mine) != 2 {
				t.Errorf("the visitor's entries: %d (%v), want the mint and the exchange", len(mine), err)
			}
		})
	}
}
