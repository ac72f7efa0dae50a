package server_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

type browserSDKReport struct {
	AnonymousIDs map[string]string `json:"anonymousIds"`
	Requests     []struct {
		Device, Method, Path, Type, ContentType string
		Status                                  any // a status code, or the browser's reason for failing
	} `json:"requests"`
	Foreign []string `json:"foreign"`
	Errors  []string `json:"errors"`
}

// TestBrowserSDKsInChromium loads Segment's analytics-next and RudderStack's
// JS SDK, unchanged, in Chromium on a page of another origin, as five
// devices of three people: each call a keepalive fetch, a beacon, a batch
// sent as the page is left, RudderStack's XHR and beacon queues. Every
// request must be answered 200 (after the preflight its Authorization header
// causes), none may leave the two origins, and the people end stitched.
func TestBrowserSDKsInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	node, dir := nodeDir(t, "browser-sdks", "playwright-core")
	forEachBackend(t, func(t *testing.T, f *fixture) {
		var r browserSDKReport
		runE2E(t, node, dir, &r, "BASE_URL="+f.url, "WRITE_KEY="+writeKey, "READ_KEY="+readKey, "CHROMIUM="+chromium)
		if len(r.Errors) > 0 {
			t.Errorf("browser errors: %q", r.Errors)
		}
		if len(r.Foreign) > 0 {
			t.Errorf("requests to other origins: %v", r.Foreign)
		}
		seen := map[string]bool{}
		for _, q := range r.Requests {
			if q.Status != float64(200) {
				t.Errorf("%s: %s %s answered %v", q.Device, q.Method, q.Path, q.Status)
			}
			seen[fmt.Sprintf("%s %s %s %s", q.Device, q.Type, q.Path, q.ContentType)] = true
		}
		for _, want := range []string{
			"alice-laptop fetch /v1/p text/plain", "alice-laptop fetch /v1/t text/plain", "alice-laptop fetch /v1/i text/plain",
			"alice-laptop ping /v1/t text/plain;charset=UTF-8",
			"carol-laptop xhr /v1/identify application/json;charset=UTF-8",
		} {
			if !seen[want] {
				t.Errorf("no request %q among %v", want, seen)
			}
		}
		// The preflights, the batch sent on pagehide (after which the page
		// is gone, so only the server saw them) and RudderStack's beacons
		// (Playwright may report a ping only after the page has closed).
		metrics := f.metrics(t)
		for _, want := range []string{
			`code="204",route="OPTIONS /v1/i"`, `code="204",route="OPTIONS /v1/b"`, `code="204",route="OPTIONS /v1/identify"`,
			`code="200",route="POST /v1/b"`, `code="200",route="POST /beacon/v1/batch"`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		a := r.AnonymousIDs
		want := []string{
			sortedIDs("anonymous_id:"+a["alice-laptop"], "anonymous_id:"+a["alice-phone"], "email:alice.as@example-mail.io", "user_id:as-alice"),
			sortedIDs("anonymous_id:"+a["bob"], "email:bob.as@example-mail.io", "user_id:as-bob"),
			sortedIDs("anonymous_id:"+a["carol-laptop"], "anonymous_id:"+a["carol-phone"], "email:carol.rj@example-mail.io", "user_id:rj-carol"),
		}
		slices.Sort(want)
		if got := stitched(t, f); !slices.Equal(got, want) {
			t.Errorf("profiles:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func sortedIDs(ids ...string) string {
	slices.Sort(ids)
	return strings.Join(ids, " ")
}

// metrics returns the server's Prometheus metrics as text.
func (f *fixture) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
