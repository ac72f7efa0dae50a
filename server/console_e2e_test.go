package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/match"
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
	Island  int                 `json:"island"`
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
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			// Room for a 5,000-identifier profile (the default keeps 1,000 anonymous IDs).
			f := newFixture(t, b.Open, func(st *graph.Stitcher) {
				st.Config.Limits[graph.TypeAnonymousID] = 10_000
				mergeProtectionOnly(st)
				// The built-in model with a strict threshold: a likely pair waits for review.
				st.Matcher, st.MatchConfig = match.NewGraphMatcher(match.SegmentModel(), true), graph.DefaultMatchConfig()
				st.MatchConfig.Accept = 0.99999999
			})
			consoleInChromium(t, f, chromium, node, dir)
		})
	}
}

func consoleInChromium(t *testing.T, f *fixture, chromium, node, dir string) {
	{
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"tablet","traits":{"name":"Ann Lee","phone":"(415) 555-0134"},"messageId":"e1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"bob","anonymousId":"tablet","traits":{"name":"Bob Lee"},"messageId":"e2","timestamp":"2026-01-01T10:01:00Z"}`)
		f.send(t, "/v1/identify", `{"anonymousId":"web-1","traits":{"firstName":"John","lastName":"Smith","birthday":"1980-05-17","address":{"street":"12 Acacia Avenue","city":"Springfield","postalCode":"4001"}},"messageId":"e3","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"crm-7","traits":{"firstName":"Jon","lastName":"Smith","birthday":"17/05/1980","address":{"street":"12 Acacia Ave","postalCode":"4001"}},"messageId":"e4","timestamp":"2026-01-01T10:01:00Z"}`)
		// Ann's web visit before she signed in: its profile is absorbed.
		f.send(t, "/v1/page", `{"anonymousId":"web-9","name":"Home","messageId":"e5","timestamp":"2026-01-01T09:00:00Z"}`)
		absorbed := get(f.must(t, `{ lookup(type: "anonymous_id", value: "web-9") { id } }`, nil), "lookup.id").(string)
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"web-9","messageId":"e6","timestamp":"2026-01-01T10:02:00Z"}`)
		ann := get(f.must(t, `{ lookup(type: "user_id", value: "ann") { id } }`, nil), "lookup.id").(string)
		big := seedProfile(t, f, "big", 1000)
		huge := seedProfile(t, f, "huge", 5000)
		var r e2eReport
		runE2E(t, node, dir, &r, "BASE_URL="+f.url, "READ_KEY="+readKey, "STEWARD_KEY="+stewKey, "WRITE_KEY="+writeKey, "CHROMIUM="+chromium,
			"BIG_PROFILE="+big, "HUGE_PROFILE="+huge, "ABSORBED_ID="+absorbed, "ANN_ID="+ann)
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
		if len(r.Axe) < 17 {
			t.Errorf("axe ran on %d page states, want 17", len(r.Axe))
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
			{"phone lookup", "notice", "normalised"},
			{"keyboard approve", "notice", "Approved"},
			{"keyboard approve", "focused", "H2"},
			{"keyboard undo", "notice", "Undone"},
			{"keyboard undo", "preview", "comes back under its own ID"},
			{"audit", "first", "split"},
		}
		for _, c := range checks {
			if got, _ := r.step(c.step)[c.field].(string); !strings.Contains(got, c.want) {
				t.Errorf("%s: %s = %q, want %q in it", c.step, c.field, got, c.want)
			}
		}
		if s := r.step("read-only queue"); s["approveButtons"] != float64(0) || s["items"] != float64(2) {
			t.Errorf("read-only queue: %v", s)
		}
		if s := r.step("keyboard approve"); s["items"] != float64(0) {
			t.Errorf("after the approval the review band still shows %v items", s["items"])
		}
		notices := fmt.Sprint(r.step("concurrent")["notices"])
		if !strings.Contains(notices, "Not done") || !strings.Contains(notices, "Rejected:") {
			t.Errorf("two stewards at once: %s", notices)
		}
		if s := r.step("rejection sticks"); s["sent"] != float64(200) || s["items"] != float64(0) {
			t.Errorf("after the same evidence again: %v", s)
		}
		if bob := get(f.must(t, `{ lookup(type: "user_id", value: "bob") { identifiers { value } } }`, nil), "lookup.identifiers"); len(bob.([]any)) != 1 {
			t.Errorf("Bob's profile after re-ingestion: %v", bob)
		}
		wf := r.step("waterfall")
		if sum, total := wf["sum"].(float64), wf["total"].(float64); wf["bars"].(float64) < 5 || math.Abs(sum-total) > 0.02 || wf["shownProb"] != wf["prob"] {
			t.Errorf("waterfall: %v", wf)
		}
		if s := r.step("graph 1000"); s["rows"] != float64(250) || !strings.Contains(fmt.Sprint(s["summary"]), "1000 identifiers") {
			t.Errorf("graph of 1,000: %v", s)
		}
		if s := r.step("graph aggregated"); !strings.Contains(fmt.Sprint(s["summary"]), "one node per identifier type") {
			t.Errorf("graph of 5,000: %v", s)
		}
		// Time budgets (first frame 1.5 s, tasks 200 ms, next item 300 ms)
		// are measured and logged here and recorded in docs/console.md; on
		// a shared 2-core machine they only fail the test at ten times the
		// budget, which catches a hang or a regression, not noise.
		if ms := r.Timings["graph 1000 first frame ms"]; ms == 0 || ms > 15000 {
			t.Errorf("first frame of the 1,000-identifier graph after %d ms (budget 1,500)", ms)
		}
		if ms := r.Timings["graph 1000 longest task ms"]; ms > 2000 {
			t.Errorf("a main-thread task of %d ms on the graph page (budget 200)", ms)
		}
		if s := r.step("merged redirect"); s["url"] != "/console/profiles/"+absorbed || !strings.HasSuffix(fmt.Sprint(s["h1"]), "Lee") || !strings.Contains(fmt.Sprint(s["banner"]), "was merged into this one") {
			t.Errorf("merged redirect after a deep-linked sign-in: %v", s)
		}
		if s := r.step("undo merge"); !strings.Contains(fmt.Sprint(s["preview"]), "comes back under its own ID") || !strings.Contains(fmt.Sprint(s["notice"]), "Undone") {
			t.Errorf("undo merge: %v", s)
		}
		// The undo restored web-9's profile under its own ID, with its page view
		// (e6, which saw web-9 with Ann, is on both timelines).
		if got := get(f.must(t, `{ lookup(type: "anonymous_id", value: "web-9") { id identifiers { type value } events { edges { node { messageId } } } } }`, nil), "lookup"); get(got, "id") != absorbed ||
			fmt.Sprint(get(got, "identifiers")) != "[map[type:anonymous_id value:web-9]]" || !strings.Contains(fmt.Sprint(get(got, "events")), "e5") {
			t.Errorf("after the undo web-9 is in %v", got)
		}
		if s := r.step("split"); !strings.Contains(fmt.Sprint(s["notice"]), "Split: 1 identifiers moved") || s["url"] == "/console/profiles/"+ann {
			t.Errorf("split: %v", s)
		}
		if s := r.step("headers"); !strings.Contains(fmt.Sprint(s["csp"]), "script-src 'self'") || s["frame"] != "DENY" {
			t.Errorf("security headers seen by the browser: %v", s)
		}
		if s := r.step("graph keyboard"); !strings.Contains(fmt.Sprint(s["announced"]), "Enter opens") || !strings.HasPrefix(fmt.Sprint(s["url"]), "/console/edges/") {
			t.Errorf("graph by keyboard: %v", s)
		}
		if s := r.step("edge page"); !strings.Contains(fmt.Sprint(s["h1"]), "~") {
			t.Errorf("edge page: %v", s)
		}
		since := fmt.Sprint(get(f.must(t, `{ lookup(type: "anonymous_id", value: "web-9") { events { edges { node { messageId } } } } }`, nil), "lookup.events"))
		annEvents := fmt.Sprint(get(f.must(t, `query($id: ID!) { profile(id: $id) { events { edges { node { messageId } } } } }`, map[string]any{"id": ann}), "profile.events"))
		if !strings.Contains(since, "since-1") || strings.Contains(annEvents, "since-1") {
			t.Errorf("an event sent since the merge: web-9 has %s, Ann %s", since, annEvents)
		}
		if all := fmt.Sprint(r.step("audit")["all"]); !strings.Contains(all, "approve") || !strings.Contains(all, "reject") {
			t.Errorf("the audit page lacks the approval or the rejection:\n%s", all)
		}
		if s := r.step("not found"); s["status"] != float64(404) || s["h1"] != "Not found" {
			t.Errorf("unknown console page: %v", s)
		}
		if s := r.step("history"); s["entries"].(float64) < 3 {
			t.Errorf("history: %v", s)
		}
		if s := r.step("missing asset"); s["status"] != float64(404) {
			t.Errorf("missing asset: %v", s)
		}
		if r.Island == 0 || r.Island > 60<<10 {
			t.Errorf("the graph island transferred %d bytes (budget 60 KB gzip)", r.Island)
		}
		if ms := r.Timings["nextItemMs"]; ms > 3000 {
			t.Errorf("the next review item came %d ms after the decision (budget 300)", ms)
		}
		t.Logf("page bytes %v; island %d; timings %v", r.Bytes, r.Island, r.Timings)
	}
}

// seedProfile sends one user with n-1 anonymous IDs through /v1/batch and
// returns the profile's ID.
func seedProfile(t *testing.T, f *fixture, user string, n int) string {
	t.Helper()
	for lo := 1; lo < n; lo += 200 {
		var b strings.Builder
		b.WriteString(`{"batch":[`)
		for i := lo; i < min(lo+200, n); i++ {
			if i > lo {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"type":"track","event":"Seen","userId":%q,"anonymousId":"%s-%d","messageId":"%s-%d","timestamp":"2026-01-01T10:00:00Z"}`, user, user, i, user, i)
		}
		b.WriteString("]}")
		f.send(t, "/v1/batch", b.String())
	}
	return get(f.must(t, `query($u: String!) { lookup(type: "user_id", value: $u) { id } }`, map[string]any{"u": user}), "lookup.id").(string)
}

// runE2E runs dir's e2e.mjs with node and the environment, and decodes
// the JSON report it prints into report.
func runE2E(t *testing.T, node, dir string, report any, env ...string) {
	t.Helper()
	runE2EScript(t, node, dir, "e2e.mjs", report, env...)
}

// runE2EScript runs a script of dir with node and decodes the JSON report
// it prints.
func runE2EScript(t *testing.T, node, dir, script string, report any, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s\n%s", script, err, out, stderr)
	}
	if err := json.Unmarshal(out, report); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
}
