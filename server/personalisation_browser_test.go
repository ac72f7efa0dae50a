package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
)

// shopPage is a frontend app's page: readMe fetches `me` from idgraph
// with a personalisation token, as an app would, and says what it got, or
// why the browser would not let it read the answer.
const shopPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body><h1>Shop</h1>
<script>
window.readMe = async (api, token) => {
  try {
    const r = await fetch(api + "/graphql", {method: "POST", credentials: "omit",
      headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
      body: JSON.stringify({query: "{ me { segments computedTraits { key value } } }"})});
    return {status: r.status, body: await r.json()};
  } catch (e) {
    return {error: String(e)};
  }
};
</script></body></html>`

type meResult struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
	Origin string `json:"origin"`
	// Console is what the page's console said (Chromium's CORS refusal).
	Console []string `json:"console"`
	Body    struct {
		Data   map[string]any `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	} `json:"body"`
}

// TestPersonalisationInChromium, on both backends: a page of a configured
// origin reads its own visitor's segments and computed traits with the
// visitor's token (after the preflight its Authorization header causes),
// another visitor's token reads that visitor only, tampered and expired
// tokens are refused, and a page of an origin not configured cannot read
// the answer at all (CORS).
func TestPersonalisationInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	node, dir := nodeDir(t, "console-e2e", "playwright-core")
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(shopPage))
	})
	shop, other := httptest.NewServer(page), httptest.NewServer(page)
	defer shop.Close()
	defer other.Close()
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			pf := newPersFixture(t, b.Open, nil, shop.URL)
			alice := pf.mintToken(t, pf.mint, `{"userId":"u-alice"}`)
			bob := pf.mintToken(t, pf.mint, `{"anonymousId":"a-bob"}`)
			old, err := auth.NewTokens(persTokenKey, func() time.Time { return time.Now().Add(-time.Hour) })
			if err != nil {
				t.Fatal(err)
			}
			expired, _, _ := old.Mint(graph.TypeUserID, "u-alice", time.Minute)
			payload, _, _ := strings.Cut(strings.TrimPrefix(bob, "idgp_"), ".")
			tampered := "idgp_" + payload + alice[strings.LastIndexByte(alice, '.'):]
			cases := []map[string]string{
				{"name": "alice", "page": shop.URL, "token": alice},
				{"name": "bob", "page": shop.URL, "token": bob},
				{"name": "tampered", "page": shop.URL, "token": tampered},
				{"name": "expired", "page": shop.URL, "token": expired},
				{"name": "other origin", "page": other.URL, "token": alice},
			}
			casesJSON, _ := json.Marshal(cases)
			var r struct {
				Results map[string]meResult `json:"results"`
				Errors  []string            `json:"errors"`
			}
			runE2EScript(t, node, dir, "personalisation.mjs", &r, "BASE_URL="+pf.url, "CHROMIUM="+chromium, "CASES="+string(casesJSON))
			if len(r.Errors) > 0 {
				t.Fatalf("browser errors: %v", r.Errors)
			}
			me := func(name string) string {
				res := r.Results[name]
				if res.Status != 200 || len(res.Body.Errors) > 0 {
					t.Errorf("%s: %d %s %+v", name, res.Status, res.Error, res.Body.Errors)
				}
				b, _ := json.Marshal(res.Body.Data["me"])
				return string(b)
			}
			if got, want := me("alice"), `{"computedTraits":[{"key":"orders","value":1},{"key":"tier","value":"gold"}],"segments":["buyer"]}`; got != want {
				t.Errorf("alice's page: me = %s, want %s", got, want)
			}
			if got, want := me("bob"), `{"computedTraits":[{"key":"orders","value":0}],"segments":[]}`; got != want {
				t.Errorf("bob's token: me = %s, want %s", got, want)
			}
			for _, name := range []string{"tampered", "expired"} {
				res := r.Results[name]
				if res.Status != 401 || res.Body.Data != nil || len(res.Body.Errors) == 0 || res.Body.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
					t.Errorf("%s token: %+v, want 401 UNAUTHENTICATED", name, res)
				}
			}
			if res := r.Results["expired"]; len(res.Body.Errors) == 0 || !strings.Contains(res.Body.Errors[0].Message, "expired") {
				t.Errorf("expired token: %+v", res.Body.Errors)
			}
			// The browser blocks the other origin: the page cannot read
			// the answer, nor even learn its status.
			if res := r.Results["other origin"]; res.Error == "" || res.Status != 0 || res.Body.Data != nil || !strings.Contains(strings.Join(res.Console, " "), "CORS") {
				t.Errorf("a page of an origin not configured: %+v", res)
			}
			if !strings.Contains(pf.metrics(t), `code="204",route="OPTIONS /graphql"`) {
				t.Error("no preflight reached idgraph")
			}
		})
	}
}
