package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/resolver"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/server"
)

// persTokenKey signs the fixture's tokens, so that tests can sign expired
// ones with a clock of their own.
var persTokenKey = []byte("personalisation-test-token-key-0123456789")

var persAssertionSecret = []byte("shop-backend-shared-secret-0123456789abc")

const meQuery = `{ me { segments computedTraits { key value type } traits } }`

// persFixture is a key fixture with segments on, the CORS origins given,
// a mint key, and two people who granted the personalisation purpose:
// alice (user u-alice, anonymous a-alice; a buyer, with an email, a name
// and a plan) and bob (anonymous a-bob, no orders), with the segment
// "buyer" and the computed traits "orders" and "tier" live.
type persFixture struct {
	*keyFixture
	mint string
}

func newPersFixture(t *testing.T, open storetest.Opener, pers *resolver.Personalisation, origins ...string) *persFixture {
	t.Helper()
	kf := newKeyFixtureWith(t, open, nil, func(cfg *server.Config) {
		loadSegments(t, cfg)
		cfg.CORSOrigins, cfg.Personalisation, cfg.TokenKey, cfg.AssertionSecret = origins, pers, persTokenKey, persAssertionSecret
	}, func(st *graph.Stitcher) { st.RecordDataChanges = true })
	pf := &persFixture{keyFixture: kf, mint: kf.create(t, auth.RoleMint)}
	now := time.Now()
	pf.send(t, "/v1/identify", `{"userId":"u-alice","anonymousId":"a-alice","traits":{"email":"alice@example-mail.io","name":"Alice Lee","plan":"gold","address":{"city":"Oslo"}},"messageId":"p1",`+grantsPersonalisation+`}`)
	pf.send(t, "/v1/track", orderMsg("u-alice", "p2", now.Add(-time.Hour)))
	pf.send(t, "/v1/page", `{"anonymousId":"a-bob","name":"Home","messageId":"p3",`+grantsPersonalisation+`}`)
	pf.mustAs(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc})
	pf.mustAs(t, stewKey, `mutation { createComputedTrait(key: "orders", definition: "events(\"Order Completed\").count()") { key } }`, nil)
	pf.mustAs(t, stewKey, `mutation { createComputedTrait(key: "tier", definition: "trait(\"plan\")") { key } }`, nil)
	for _, k := range []string{"buyer"} {
		pf.awaitLive(t, k)
	}
	for _, k := range []string{"orders", "tier"} {
		pf.await(t, fmt.Sprintf(`{ computedTrait(key: %q) { status { state } } }`, k), "computedTrait.status.state", segments.StateLive)
	}
	alice := storetest.ProfileOf(t, pf.store, "user_id:u-alice").ID
	pf.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, alice), "profile.segments", "[buyer]")
	return pf
}

// grantsPersonalisation is a message's consent context granting the
// personalisation purpose (Segment's consent wrapper).
const grantsPersonalisation = `"context":{"consent":{"categoryPreferences":{"personalisation":true}}}`

// mintToken mints with the key; it must succeed.
func (pf *persFixture) mintToken(t *testing.T, key, body string) string {
	t.Helper()
	code, resp := pf.postBearer(t, "/v1/personalisation/tokens", key, body)
	if code != 200 {
		t.Fatalf("mint %s: %d %s", body, code, resp)
	}
	var m server.MintResponse
	if err := json.Unmarshal([]byte(resp), &m); err != nil || !auth.IsToken(m.Token) || m.Purpose != "personalisation" {
		t.Fatalf("mint %s: %s (%v)", body, resp, err)
	}
	return m.Token
}

// me reads me with the token and returns it as compact JSON.
func (pf *persFixture) me(t *testing.T, token string) string {
	t.Helper()
	d := pf.mustAs(t, token, meQuery, nil)
	b, _ := json.Marshal(d["me"])
	return string(b)
}

const emptyMe = `{"computedTraits":[],"segments":[],"traits":{}}`

// TestPersonalisationTokens, on both backends: a mint key mints tokens
// (and nothing else); a token reads its own visitor's allowed data with
// `me` (by userId or anonymousId, the same person), another visitor's
// token that visitor only, an unknown visitor's an empty `me`; every
// other root field and route refuses a token; tampered and expired
// tokens are refused.
func TestPersonalisationTokens(t *testing.T) {
	s, _ := rootFields(t)
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			pf := newPersFixture(t, b.Open, nil)
			alice := pf.mintToken(t, pf.mint, `{"userId":"u-alice"}`)
			aliceAnon := pf.mintToken(t, pf.mint, `{"anonymousId":"a-alice","ttl":60}`)
			bob := pf.mintToken(t, pf.mint, `{"anonymousId":"a-bob","ttl":"1h"}`)
			nobody := pf.mintToken(t, pf.mint, `{"userId":"u-nobody"}`)
			byAdmin := pf.mintToken(t, pf.admin, `{"userId":"u-alice"}`)

			const aliceMe = `{"computedTraits":[{"key":"orders","type":"number","value":1},{"key":"tier","type":"string","value":"gold"}],"segments":["buyer"],"traits":{}}`
			for name, tok := range map[string]string{"userId": alice, "anonymousId": aliceAnon, "admin-minted": byAdmin} {
				if got := pf.me(t, tok); got != aliceMe {
					t.Errorf("alice by %s: me = %s, want %s", name, got, aliceMe)
				}
			}
			const bobMe = `{"computedTraits":[{"key":"orders","type":"number","value":0}],"segments":[],"traits":{}}`
			if got := pf.me(t, bob); got != bobMe {
				t.Errorf("bob: me = %s, want %s", got, bobMe)
			}
			if got := pf.me(t, nobody); got != emptyMe {
				t.Errorf("an unknown visitor: me = %s, want %s", got, emptyMe)
			}

			// Every other root field refuses a token, whatever it asks.
			for _, def := range []*ast.Definition{s.Query, s.Mutation} {
				for _, f := range def.Fields {
					if def.Name+"."+f.Name == "Query.me" {
						continue
					}
					r := pf.gql(t, alice, operation(s, def.Name, f), nil)
					if r.code() != "FORBIDDEN" {
						t.Errorf("%s.%s with a token: %d %+v, want FORBIDDEN", def.Name, f.Name, r.Status, r.Errors)
					}
				}
			}
			if r := pf.gql(t, alice, `{ me { segments } lookup(type: "user_id", value: "u-alice") { traits } }`, nil); r.code() != "FORBIDDEN" || get(r.Data, "lookup") != nil {
				t.Errorf("lookup beside me: %+v %v", r.Errors, r.Data)
			}
			// me is the tokens' alone: no key has a visitor.
			for _, key := range []string{readKey, stewKey, pf.admin} {
				if r := pf.gql(t, key, meQuery, nil); r.code() != "FORBIDDEN" {
					t.Errorf("me with a key: %d %+v", r.Status, r.Errors)
				}
			}
			// The mint key mints, and does nothing else.
			if r := pf.gql(t, pf.mint, `{ me { segments } }`, nil); r.Status != 403 {
				t.Errorf("/graphql with the mint key: %d %+v", r.Status, r.Errors)
			}
			for _, c := range []struct {
				method, path, auth string
				want               int
			}{
				{"POST", "/v1/track", basic(pf.mint), 403},
				{"GET", "/v1/export/profiles", "Bearer " + pf.mint, 403},
				{"POST", "/v1/match", "Bearer " + pf.mint, 403},
				// A token opens no route but /graphql, and mints nothing.
				{"POST", "/v1/personalisation/tokens", "Bearer " + alice, 401},
				{"GET", "/v1/export/profiles", "Bearer " + alice, 401},
				{"POST", "/v1/track", basic(alice), 401},
				{"POST", "/v1/import", "Bearer " + alice, 401},
			} {
				body := []byte(`{"userId":"u-alice","event":"x"}`)
				if code, _, resp := pf.do(t, c.method, c.path, map[string]string{"Authorization": c.auth}, body); code != c.want {
					t.Errorf("%s %s with %.12s…: %d %s, want %d", c.method, c.path, c.auth, code, resp, c.want)
				}
			}
			// Only mint and admin keys mint.
			for _, c := range []struct {
				key  string
				want int
			}{{readKey, 403}, {writeKey, 403}, {stewKey, 403}, {pf.create(t, auth.RoleSupport), 403}, {"", 401}, {alice, 401}} {
				if code, resp := pf.postBearer(t, "/v1/personalisation/tokens", c.key, `{"userId":"u-alice"}`); code != c.want {
					t.Errorf("mint with %.10s…: %d %s, want %d", c.key, code, resp, c.want)
				}
			}
			// Bad requests name the field.
			for body, field := range map[string]string{
				`{}`:                                            "userId",
				`{"userId":"u","anonymousId":"a"}`:              "anonymousId",
				`{"userId":"u","ttl":90000}`:                    "ttl",
				`{"userId":"u","ttl":"25h"}`:                    "ttl",
				`{"userId":"u","ttl":-5}`:                       "ttl",
				`{"userId":"u","ttl":"soon"}`:                   "ttl",
				`{"userId":"u","ttl":true}`:                     "ttl",
				`{"userId":"u","purpose":"export"}`:             "purpose",
				`{"userId":"` + strings.Repeat("x", 600) + `"}`: "userId",
				`[]`: "JSON object",
			} {
				code, resp := pf.postBearer(t, "/v1/personalisation/tokens", pf.mint, body)
				if code != 400 || !strings.Contains(resp, field) {
					t.Errorf("mint %.40s: %d %s, want 400 naming %s", body, code, resp, field)
				}
			}

			// Tampered, forged and expired tokens are refused.
			payload, sig, _ := strings.Cut(strings.TrimPrefix(bob, "idgp_"), ".")
			aliceSig := alice[strings.LastIndexByte(alice, '.')+1:]
			past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
			old, err := auth.NewTokens(persTokenKey, past)
			if err != nil {
				t.Fatal(err)
			}
			expired, _, _ := old.Mint(graph.TypeUserID, "u-alice", time.Hour)
			other, _ := auth.NewTokens([]byte("some-other-servers-token-key-0123456789"), nil)
			foreign, _, _ := other.Mint(graph.TypeUserID, "u-alice", time.Hour)
			for name, tok := range map[string]string{
				"bob's payload, alice's signature": "idgp_" + payload + "." + aliceSig,
				"cut":                              bob[:len(bob)-3],
				"signature changed":                "idgp_" + payload + "." + sig[1:] + sig[:1],
				"expired":                          expired,
				"another server's":                 foreign,
				"prefix only":                      "idgp_",
			} {
				r := pf.gql(t, tok, meQuery, nil)
				if r.Status != 401 || r.code() != "UNAUTHENTICATED" || r.Data != nil {
					t.Errorf("%s: %d %+v %v, want 401", name, r.Status, r.Errors, r.Data)
				}
			}
			if r := pf.gql(t, expired, meQuery, nil); len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "expired") {
				t.Errorf("an expired token: %+v", r.Errors)
			}
		})
	}
}

// TestPersonalisationAllowList: the purpose's allow-list decides what me
// shows, on both backends: configured segments, computed traits and trait
// keys (nested keys under an allowed one), nothing else.
func TestPersonalisationAllowList(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			pf := newPersFixture(t, b.Open, &resolver.Personalisation{Segments: []string{"vip"}, ComputedTraits: []string{"orders"},
				Traits: []string{"plan", "address"}})
			alice := pf.mintToken(t, pf.mint, `{"userId":"u-alice"}`)
			const want = `{"computedTraits":[{"key":"orders","type":"number","value":1}],"segments":[],"traits":{"address":{"city":"Oslo"},"plan":"gold"}}`
			if got := pf.me(t, alice); got != want {
				t.Errorf("me = %s, want %s", got, want)
			}
			nobody := pf.mintToken(t, pf.mint, `{"anonymousId":"a-nobody"}`)
			if got := pf.me(t, nobody); got != emptyMe {
				t.Errorf("an unknown visitor: me = %s", got)
			}
		})
	}
}

// TestPersonalisationCORS: /graphql answers the preflight of a configured
// origin (Authorization allowed, no credentials), and gives an origin not
// configured no CORS header at all.
func TestPersonalisationCORS(t *testing.T) {
	f := newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) { cfg.CORSOrigins = []string{"https://shop.example"} })
	for _, c := range []struct {
		origin string
		allow  bool
	}{{"https://shop.example", true}, {"https://evil.example", false}, {"http://shop.example", false}, {"https://shop.example.evil", false}} {
		for _, method := range []string{"OPTIONS", "POST"} {
			hdr := map[string]string{"Origin": c.origin, "Access-Control-Request-Method": "POST",
				"Access-Control-Request-Headers": "authorization,content-type", "Content-Type": "application/json"}
			var body []byte
			if method == "POST" {
				body = []byte(`{"query":"{ me { segments } }"}`)
			}
			code, h, _ := f.do(t, method, "/graphql", hdr, body)
			got := h.Get("Access-Control-Allow-Origin")
			if c.allow != (got == c.origin) || !c.allow && got != "" {
				t.Errorf("%s from %s: Access-Control-Allow-Origin %q", method, c.origin, got)
			}
			if c.allow && !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
				t.Errorf("%s from %s: Authorization not allowed: %q", method, c.origin, h.Get("Access-Control-Allow-Headers"))
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s from %s: credentials allowed", method, c.origin)
			}
			if method == "OPTIONS" && code != http.StatusNoContent {
				t.Errorf("preflight from %s: %d", c.origin, code)
			}
		}
	}
}

// TestPersonalisationAssertionExchange, on both backends: a browser
// exchanges its backend's signed assertion for a token (no key), which
// reads the visitor the assertion names and expires no later than it;
// forged, expired and malformed assertions are refused; the preflight of
// a configured origin is answered.
func TestPersonalisationAssertionExchange(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			pf := newPersFixture(t, b.Open, nil, "https://shop.example")
			exp := time.Now().Add(5 * time.Minute).Unix()
			assertion := func(secret []byte, claims map[string]any) string {
				return auth.SignAssertion(secret, claims)
			}
			good := assertion(persAssertionSecret, map[string]any{"userId": "u-alice", "aud": auth.AssertionAudience, "exp": exp})
			code, resp := pf.postBearer(t, "/v1/personalisation/exchange", "", `{"assertion":"`+good+`","ttl":"1h"}`)
			var m server.MintResponse
			if err := json.Unmarshal([]byte(resp), &m); code != 200 || err != nil {
				t.Fatalf("exchange: %d %s", code, resp)
			}
			if m.ExpiresAt.Unix() > exp {
				t.Errorf("the token expires at %v, after its assertion (%v)", m.ExpiresAt, time.Unix(exp, 0))
			}
			const aliceMe = `{"computedTraits":[{"key":"orders","type":"number","value":1},{"key":"tier","type":"string","value":"gold"}],"segments":["buyer"],"traits":{}}`
			if got := pf.me(t, m.Token); got != aliceMe {
				t.Errorf("me with the exchanged token = %s, want %s", got, aliceMe)
			}
			bob := assertion(persAssertionSecret, map[string]any{"anonymousId": "a-bob", "aud": auth.AssertionAudience, "exp": exp})
			if code, resp := pf.postBearer(t, "/v1/personalisation/exchange", "", `{"assertion":"`+bob+`"}`); code != 200 || !strings.Contains(resp, "idgp_") {
				t.Errorf("bob's exchange: %d %s", code, resp)
			}
			for name, c := range map[string]struct {
				body string
				want int
			}{
				"other secret": {`{"assertion":"` + assertion([]byte("not-the-shared-secret-0123456789abcdef"), map[string]any{"userId": "u-alice", "aud": auth.AssertionAudience, "exp": exp}) + `"}`, 401},
				"expired":      {`{"assertion":"` + assertion(persAssertionSecret, map[string]any{"userId": "u-alice", "aud": auth.AssertionAudience, "exp": time.Now().Add(-time.Minute).Unix()}) + `"}`, 401},
				"no audience":  {`{"assertion":"` + assertion(persAssertionSecret, map[string]any{"userId": "u-alice", "exp": exp}) + `"}`, 401},
				"a token":      {`{"assertion":"` + pf.mintToken(t, pf.mint, `{"userId":"u-alice"}`) + `"}`, 401},
				"the mint key": {`{"assertion":"` + pf.mint + `"}`, 401},
				"no assertion": {`{"ttl":60}`, 400},
				"bad ttl":      {`{"assertion":"` + good + `","ttl":"never"}`, 400},
				"unknown":      {`{"assertion":"` + good + `","userId":"u-bob"}`, 400},
			} {
				if code, resp := pf.postBearer(t, "/v1/personalisation/exchange", "", c.body); code != c.want || strings.Contains(resp, "idgp_") {
					t.Errorf("%s: %d %s, want %d", name, code, resp, c.want)
				}
			}
			hdr := map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
			if code, h, _ := pf.do(t, "OPTIONS", "/v1/personalisation/exchange", hdr, nil); code != 204 || h.Get("Access-Control-Allow-Origin") != "https://shop.example" {
				t.Errorf("preflight: %d %v", code, h)
			}
			hdr["Origin"] = "https://evil.example"
			if _, h, _ := pf.do(t, "OPTIONS", "/v1/personalisation/exchange", hdr, nil); h.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("preflight from another origin: %v", h)
			}
		})
	}
	// Off unless a secret is configured.
	f := newFixture(t, backends.OpenPebble)
	good := auth.SignAssertion(persAssertionSecret, map[string]any{"userId": "u-alice", "aud": auth.AssertionAudience, "exp": time.Now().Add(time.Minute).Unix()})
	if code, resp := f.postBearer(t, "/v1/personalisation/exchange", "", `{"assertion":"`+good+`"}`); code != 404 || strings.Contains(resp, "idgp_") {
		t.Errorf("exchange with no secret configured: %d %s", code, resp)
	}
}
