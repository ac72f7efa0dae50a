package server_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// do sends a request with the given headers and returns the status,
// response headers and body.
func (f *fixture) do(t *testing.T, method, path string, header map[string]string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var basicWK = map[string]string{"Authorization": "Basic d2tfdGVzdDo="} // wk_test:

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestCollectAsSDKsSend: the short paths analytics-next posts to, with the
// bodies and headers each SDK uses, are stored as the long paths would be.
func TestCollectAsSDKsSend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		calls := []struct {
			name, path string
			header     map[string]string
			body       []byte
		}{
			{"page, short path, text/plain (analytics-next)", "/v1/p", with(basicWK, "Content-Type", "text/plain"),
				[]byte(`{"type":"page","anonymousId":"sdk-a1","name":"Home","messageId":"s-p","writeKey":"wk_test","_metadata":{"bundled":["Segment.io"]}}`)},
			{"track, short path, charset", "/v1/t", with(basicWK, "Content-Type", "text/plain;charset=UTF-8"),
				[]byte(`{"type":"track","anonymousId":"sdk-a1","event":"Viewed","messageId":"s-t"}`)},
			{"identify, short path, gzip as form-urlencoded (RudderStack Node)", "/v1/i",
				with(basicWK, "Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip"),
				gz(t, `{"anonymousId":"sdk-a1","userId":"sdk-u1","traits":{"email":"sdk@corp-mail.io"},"messageId":"s-i"}`)},
			{"screen, short path", "/v1/s", basicWK, []byte(`{"anonymousId":"sdk-app","name":"Settings","messageId":"s-s"}`)},
			{"group, short path", "/v1/g", basicWK, []byte(`{"userId":"sdk-u1","groupId":"acme","messageId":"s-g"}`)},
			{"alias, short path", "/v1/a", basicWK, []byte(`{"userId":"sdk-u1","previousId":"sdk-app","messageId":"s-a"}`)},
			{"sendBeacon: text/plain, write key in the body, no Authorization", "/v1/t", map[string]string{"Content-Type": "text/plain;charset=UTF-8"},
				[]byte(`{"anonymousId":"sdk-a1","event":"Left","messageId":"s-beacon","writeKey":"wk_test"}`)},
			{"batch, short path, gzip (analytics-next batching, RudderStack)", "/v1/b",
				with(basicWK, "Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip"),
				gz(t, `{"batch":[{"type":"track","userId":"sdk-u1","event":"Paid","messageId":"s-b1"},{"type":"identify","userId":"sdk-u1","anonymousId":"sdk-a2","messageId":"s-b2"}],"sentAt":"2026-01-01T10:00:00Z"}`)},
			{"RudderStack beacon: write key in the query", "/beacon/v1/batch?writeKey=wk_test", map[string]string{"Content-Type": "text/plain"},
				[]byte(`{"batch":[{"type":"track","anonymousId":"sdk-a2","event":"Left","messageId":"s-b4"}],"sentAt":"2026-01-01T10:00:00Z"}`)},
			{"batch, long path, x-gzip", "/v1/batch", with(basicWK, "Content-Encoding", "x-gzip"),
				gz(t, `{"batch":[{"type":"page","anonymousId":"sdk-a2","messageId":"s-b3"}]}`)},
		}
		for _, c := range calls {
			if code, _, body := f.do(t, "POST", c.path, c.header, c.body); code != 200 || !strings.Contains(body, `"success":true`) {
				t.Fatalf("%s: %d %s", c.name, code, body)
			}
		}
		got := f.export(t)
		if len(got) != 1 {
			t.Fatalf("exported %d profiles, want 1: %+v", len(got), got)
		}
		var ids []string
		for _, k := range got[0].Identifiers {
			ids = append(ids, k.String())
		}
		want := "anonymous_id:sdk-a1 anonymous_id:sdk-a2 anonymous_id:sdk-app email:sdk@corp-mail.io user_id:sdk-u1"
		if strings.Join(ids, " ") != want {
			t.Errorf("identifiers = %s\nwant %s", strings.Join(ids, " "), want)
		}
		events := get(f.must(t, `{ lookup(type: "user_id", value: "sdk-u1") { events(first: 50) { edges { node { messageId type } } } } }`, nil), "lookup.events.edges").([]any)
		types := map[string]string{}
		for _, e := range events {
			types[get(e, "node.messageId").(string)] = get(e, "node.type").(string)
		}
		wantTypes := map[string]string{"s-p": "page", "s-t": "track", "s-i": "identify", "s-s": "screen", "s-g": "group", "s-a": "alias",
			"s-beacon": "track", "s-b1": "track", "s-b2": "identify", "s-b3": "page", "s-b4": "track"}
		for id, typ := range wantTypes {
			if types[id] != typ {
				t.Errorf("message %s stored as %q, want %q (all: %v)", id, types[id], typ, types)
			}
		}
	})
}

// TestCollectCORS: browsers on the collection origins get their preflight
// answered and may read the answer; other origins are refused before
// anything is stored; GraphQL keeps its own origins.
func TestCollectCORS(t *testing.T) {
	open := backends.OpenPebble // CORS is decided before any store is touched
	shop, evil := "https://shop.example", "https://evil.example"
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization,content-type,x-retry-count"}
	}
	track := []byte(`{"anonymousId":"cors-a","event":"x"}`)
	cases := []struct {
		name       string
		restricted bool // collection origins limited to shop
		method     string
		path       string
		header     map[string]string
		body       []byte
		code       int
		want       map[string]string // response headers (substring); "" means absent
	}{
		{"preflight, short path", false, "OPTIONS", "/v1/t", preflight(evil), nil, 204, map[string]string{
			"Access-Control-Allow-Origin": evil, "Access-Control-Allow-Methods": "POST",
			"Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, authorization,content-type,x-retry-count",
			"Access-Control-Max-Age":       "7200", "Vary": "Origin"}},
		{"preflight, batch", false, "OPTIONS", "/v1/b", preflight(shop), nil, 204, map[string]string{"Access-Control-Allow-Origin": shop}},
		{"preflight, long path", false, "OPTIONS", "/v1/identify", preflight(shop), nil, 204, map[string]string{"Access-Control-Allow-Origin": shop}},
		{"post from any origin", false, "POST", "/v1/t", with(basicWK, "Origin", evil), track, 200, map[string]string{"Access-Control-Allow-Origin": evil}},
		{"analytics-next's own metrics, dropped", false, "POST", "/v1/m", map[string]string{"Origin": shop, "Content-Type": "text/plain"},
			[]byte(`{"series":[{"type":"Counter","metric":"analytics_js.invoke.page","value":1,"tags":{}}]}`), 204, map[string]string{"Access-Control-Allow-Origin": shop}},
		{"no Origin: not a browser", false, "POST", "/v1/track", basicWK, track, 200, map[string]string{"Access-Control-Allow-Origin": ""}},
		{"GraphQL keeps --cors-origins", false, "OPTIONS", "/graphql", preflight(shop), nil, 204, map[string]string{"Access-Control-Allow-Origin": ""}},
		{"import is not a collection route", false, "OPTIONS", "/v1/import", preflight(shop), nil, 404, map[string]string{"Access-Control-Allow-Origin": ""}},
		{"restricted: preflight from the shop", true, "OPTIONS", "/v1/p", preflight(shop), nil, 204, map[string]string{"Access-Control-Allow-Origin": shop}},
		{"restricted: post from the shop", true, "POST", "/v1/p", with(basicWK, "Origin", shop), []byte(`{"anonymousId":"cors-a"}`), 200,
			map[string]string{"Access-Control-Allow-Origin": shop}},
		{"restricted: preflight from elsewhere", true, "OPTIONS", "/v1/t", preflight(evil), nil, 403, map[string]string{"Access-Control-Allow-Origin": ""}},
		{"restricted: beacon from elsewhere", true, "POST", "/v1/t", map[string]string{"Origin": evil, "Content-Type": "text/plain"},
			[]byte(`{"anonymousId":"cors-evil","event":"x","writeKey":"wk_test"}`), 403, map[string]string{"Access-Control-Allow-Origin": ""}},
		{"restricted: no Origin", true, "POST", "/v1/t", basicWK, track, 200, nil},
	}
	for _, restricted := range []bool{false, true} {
		f := newFixtureWith(t, open, func(c *server.Config) {
			if restricted {
				c.CollectOrigins = []string{shop}
			}
		})
		for _, c := range cases {
			if c.restricted != restricted {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				code, h, body := f.do(t, c.method, c.path, c.header, c.body)
				if code != c.code {
					t.Errorf("status %d, want %d: %s", code, c.code, body)
				}
				for k, v := range c.want {
					if got := h.Get(k); v == "" && got != "" || !strings.Contains(got, v) {
						t.Errorf("%s: %q, want %q", k, got, v)
					}
				}
				if code == 403 && !strings.Contains(body, "origin https://evil.example may not send to the collection API (serve --collect-origins)") {
					t.Errorf("refusal: %s", body)
				}
			})
		}
		if restricted {
			same, _, body := f.do(t, "POST", "/v1/t", with(basicWK, "Origin", f.url), track)
			if same != 200 {
				t.Errorf("the server's own origin: %d %s", same, body)
			}
			for _, p := range f.export(t) {
				for _, k := range p.Identifiers {
					if k.Value == "cors-evil" {
						t.Errorf("a refused origin's message was stored: %v", p.Identifiers)
					}
				}
			}
		}
	}
}
