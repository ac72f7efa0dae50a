package server_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// A client that keeps sending requests refused for their size or cost is
// answered 429 unread once past its burst; honest mistakes, other clients
// and health checks are not affected.
func TestCostlyRefusalsLimited(t *testing.T) {
	f := newFixtureWith(t, backends.OpenPebble, func(c *server.Config) { c.RefusalBurst = 3 })
	deep := `{"userId":"u","traits":{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`

	// Ordinary mistakes (bad JSON, a missing field) never count.
	for range 20 {
		if code, body := f.post(t, "/v1/track", writeKey, `{"userId":"u"`); code != 400 {
			t.Fatalf("bad JSON: %d %s", code, body)
		}
		if code, body := f.post(t, "/v1/track", writeKey, `{"userId":"u"}`); code != 400 {
			t.Fatalf("track without event: %d %s", code, body)
		}
	}
	for i := range 3 {
		if code, body := f.post(t, "/v1/track", writeKey, deep); code != 400 || !strings.Contains(body, "nested more than") {
			t.Fatalf("deep body %d: %d %s, want 400", i, code, body)
		}
	}
	// Past the burst: 429 on every route, in each route's format.
	req, _ := http.NewRequest("POST", f.url+"/v1/track", strings.NewReader(`{"userId":"u","event":"fine"}`))
	req.SetBasicAuth(writeKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(data), `"code":"rate_limited"`) {
		t.Fatalf("after the burst: %d %q %s, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	if r := f.gql(t, readKey, `{ __typename }`, nil); r.Status != 429 || r.code() != "RATE_LIMITED" {
		t.Fatalf("GraphQL after the burst: %d %s, want 429 RATE_LIMITED", r.Status, r.code())
	}
	if r, err := http.Get(f.url + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz of a limited client: %v %v", r, err)
	}

	// Another address is served as before.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	req, _ = http.NewRequest("POST", f.url+"/v1/track", strings.NewReader(`{"userId":"u","event":"fine"}`))
	req.SetBasicAuth(writeKey, "")
	r, err := other.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("another client: %d %s, want 200", r.StatusCode, data)
	}
}

// With the limit off (behind a proxy), refusals are answered as before.
func TestCostlyRefusalsUnlimited(t *testing.T) {
	f := newFixtureWith(t, backends.OpenPebble, func(c *server.Config) { c.RefusalBurst = -1 })
	deep := `{"userId":"u","traits":{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`
	for i := range 30 {
		if code, body := f.post(t, "/v1/track", writeKey, deep); code != 400 {
			t.Fatalf("deep body %d: %d %s, want 400", i, code, body)
		}
	}
}
