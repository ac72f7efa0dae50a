package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// chromiumPath is Debian's Chromium, which .ci/run installs; tests never
// download a browser.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is missing at %s: .ci/run installs it (apt-get install chromium)", p)
		}
		t.Skipf("no Chromium at %s (apt-get install chromium, or set CHROMIUM)", p)
	}
	return p
}

type e2eReport struct {
	Steps   []map[string]any    `json:"steps"`
	Axe     map[string][]string `json:"axe"`
	Bytes   map[string]int      `json:"bytes"`
	Foreign []string            `json:"foreign"`
	Errors  []string            `json:"errors"`
	Timings map[string]int      `json:"timings"`
}

func (r e2eReport) step(name string) map[string]any {
	for _, s := range r.Steps {
		if s["step"] == name {
			return s
		}
	}
	return map[string]any{}
}

// TestConsoleInChromium signs in, looks a customer up by a phone typed
// another way, reviews read-only, rejects keyboard-only as a steward and
// reads the audit, in a real browser; axe checks every page state for
// WCAG 2.2 AA, and every request must stay on the server's origin within
// the page-weight budget.
func TestConsoleInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	node, dir := nodeDir(t, "console-e2e", "playwright-core")
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"tablet","traits":{"name":"Ann Lee","phone":"(415) 555-0134"},"messageId":"e1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"bob","anonymousId":"tablet","traits":{"name":"Bob Lee"},"messageId":"e2","timestamp":"2026-01-01T10:01:00Z"}`)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "e2e.mjs")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "BASE_URL="+f.url, "READ_KEY="+readKey, "STEWARD_KEY="+stewKey, "WRITE_KEY="+writeKey, "CHROMIUM="+chromium)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("e2e.mjs: %v\n%s", err, out)
		}
		var r e2eReport
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("report: %v\n%s", err, out)
		}
		if len(r.Errors) > 0 {
			t.Errorf("browser errors: %v", r.Errors)
		}
		if len(r.Foreign) > 0 {
			t.Errorf("requests to other origins: %v", r.Foreign)
		}
		for state, v := range r.Axe {
			if len(v) > 0 {
				t.Errorf("axe on %q: %v", state, v)
			}
		}
		if len(r.Axe) < 8 {
			t.Errorf("axe ran on %d page states, want 8", len(r.Axe))
		}
		for state, n := range r.Bytes {
			if n > 100<<10 {
				t.Errorf("%q transferred %d bytes, budget 100 KB", state, n)
			}
		}
		checks := []struct {
			step, field, want string
		}{
			{"signed-out redirect", "url", "/console/login"},
			{"write key", "text", "write key cannot sign in"},
			{"phone lookup", "h1", "Ann Lee"},
			{"phone lookup", "notice", "14155550134"},
			{"keyboard reject", "notice", "Rejected"},
			{"keyboard reject", "focused", "H2"},
			{"audit", "first", "reject"},
		}
		for _, c := range checks {
			if got, _ := r.step(c.step)[c.field].(string); !strings.Contains(got, c.want) {
				t.Errorf("%s: %s = %q, want %q in it", c.step, c.field, got, c.want)
			}
		}
		if s := r.step("read-only queue"); s["approveButtons"] != float64(0) || s["items"] != float64(1) {
			t.Errorf("read-only queue: %v", s)
		}
		if s := r.step("keyboard reject"); s["items"] != float64(0) {
			t.Errorf("after the rejection the queue still shows %v items", s["items"])
		}
		if s := r.step("missing asset"); s["status"] != float64(404) {
			t.Errorf("missing asset: %v", s)
		}
		t.Logf("page bytes %v; next item after a decision %d ms", r.Bytes, r.Timings["nextItemMs"])
	})
}
