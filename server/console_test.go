package server_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// browser is an HTTP client with cookies that does not follow redirects,
// so each step's status and Location can be checked.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// follow GETs path and follows redirects, returning the final page.
func (b *browser) follow(path string) (int, string) {
	b.t.Helper()
	for range 5 {
		resp, body := b.do(http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusSeeOther {
			return resp.StatusCode, body
		}
		path = resp.Header.Get("Location")
	}
	b.t.Fatal("too many redirects")
	return 0, ""
}

func (b *browser) signIn(key string) {
	b.t.Helper()
	resp, body := b.do(http.MethodPost, "/console/login", b.loginForm(key, "/console/review"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/review" {
		b.t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	c := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(c, want) {
			b.t.Errorf("session cookie %q lacks %s", c, want)
		}
	}
}

// loginForm is the sign-in form's fields for key, going to next, with the
// token of the sign-in page (which sets its cookie).
func (b *browser) loginForm(key, next string) url.Values {
	b.t.Helper()
	_, page := b.do(http.MethodGet, "/console/login", nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("the sign-in page has no token:\n%s", page)
	}
	return url.Values{"key": {key}, "next": {next}, "csrf": {m[1]}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
var itemRE = regexp.MustCompile(`name="id" value="(edge_[^"]+)"`)

func TestConsole(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"tablet","traits":{"name":"Ann Lee","phone":"(415) 555-0134"},"messageId":"c1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"bob","anonymousId":"tablet","traits":{"name":"Bob Lee"},"messageId":"c2","timestamp":"2026-01-01T10:01:00Z"}`)
		f.send(t, "/v1/page", `{"anonymousId":"web-9","name":"Home","messageId":"c3","timestamp":"2026-01-01T09:00:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"web-9","messageId":"c4","timestamp":"2026-01-01T10:02:00Z"}`)

		anon := newBrowser(t, f.url)
		resp, _ := anon.do(http.MethodGet, "/console/review", nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login?next=") {
			t.Errorf("signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		for key, want := range map[string]string{writeKey: "write key cannot sign in", "nope": "not a valid"} {
			resp, body := anon.do(http.MethodPost, "/console/login", anon.loginForm(key, ""))
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, want) {
				t.Errorf("sign in with %s: %d", key, resp.StatusCode)
			}
		}
		for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("no %s header", h)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("CSP = %q", csp)
		}
		for path, code := range map[string]int{"/console/assets/console.css": 200, "/console/assets/console.js": 200,
			"/console/assets/missing.js": 404, "/console/no/such/page": 404} {
			if resp, _ := anon.do(http.MethodGet, path, nil); resp.StatusCode != code {
				t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, code)
			}
		}

		// Support agent: read key.
		agent := newBrowser(t, f.url)
		agent.signIn(readKey)
		code, page := agent.follow("/console/search?q=" + url.QueryEscape("415.555.0134"))
		if code != 200 || !strings.Contains(page, "Ann Lee") || !strings.Contains(page, "14155550134") || !strings.Contains(page, "normalised") {
			t.Errorf("phone lookup in another format: %d\n%s", code, page)
		}
		if !strings.Contains(page, `<tr class="identity">`) || !strings.Contains(page, "merged into") {
			t.Errorf("the timeline does not show the merge among the events")
		}
		if !strings.Contains(page, "How it joined") || !strings.Contains(page, "seen together (") {
			t.Errorf("identifiers do not say how they joined")
		}
		annPage := regexp.MustCompile(`<dt>ID</dt><dd>(p_[0-9a-f]+)</dd>`).FindStringSubmatch(page)[1]
		code, page = agent.follow("/console/profiles/" + annPage + "?type=page")
		if code != 200 || !strings.Contains(page, "<td>page</td>") || strings.Contains(page, "<td>identify</td>") {
			t.Errorf("timeline filtered by type: %d", code)
		}
		code, page = agent.follow("/console/profiles/" + annPage + "?until=2025-12-31")
		if code != 200 || !strings.Contains(page, "No events") {
			t.Errorf("timeline until a date before every event: %d", code)
		}
		if code, _ = agent.follow("/console/profiles/" + annPage + "?since=yesterday"); code != 400 {
			t.Errorf("a malformed date: %d", code)
		}
		code, page = agent.follow("/console/search?q=lee")
		if code != 200 || !strings.Contains(page, "Bob Lee") {
			t.Errorf("name search: %d", code)
		}
		// web-9's profile was absorbed into Ann's: its ID redirects with a banner.
		annID := f.must(t, `{ lookup(type: "user_id", value: "ann") { id } }`, nil)["lookup"].(map[string]any)["id"].(string)
		merges := f.must(t, `query($id: ID!) { profile(id: $id) { history { absorbed } } }`, map[string]any{"id": annID})
		absorbed := get(merges, "profile.history.0.absorbed").(string)
		code, page = agent.follow("/console/profiles/" + absorbed)
		if code != 200 || !strings.Contains(page, "was merged into this one on") || !strings.Contains(page, annID) {
			t.Errorf("merged ID: %d", code)
		}
		code, page = agent.follow("/console/review")
		if code != 200 || !strings.Contains(page, "merge_protection") || strings.Contains(page, `value="approve"`) {
			t.Errorf("read-only review page: %d", code)
		}
		for query, items := range map[string]int{"type=user_id&minScore=0.5": 1, "type=email": 0, "maxScore=0.5": 0, "source=http": 1} {
			if _, p := agent.follow("/console/review?" + query); strings.Count(p, `<section class="item"`) != items {
				t.Errorf("review filtered by %s: %d items, want %d", query, strings.Count(p, `<section class="item"`), items)
			}
		}
		if code, _ := agent.follow("/console/review?minScore=high"); code != 400 {
			t.Errorf("a malformed score filter: %d", code)
		}
		// A forged decision with the read session (and its own token) is refused by the API.
		csrf := csrfRE.FindStringSubmatch(page)[1]
		item := f.must(t, `{ reviewQueue { edges { node { id } } } }`, nil)
		id := get(item, "reviewQueue.edges.0.node.id").(string)
		resp, _ = agent.do(http.MethodPost, "/console/review/decide", url.Values{"csrf": {csrf}, "id": {id}, "decision": {"approve"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("forged decision: %d", resp.StatusCode)
		}

		// Steward.
		st := newBrowser(t, f.url)
		st.signIn(stewKey)
		code, page = st.follow("/console/review")
		if code != 200 || !strings.Contains(page, `value="approve"`) || itemRE.FindStringSubmatch(page)[1] != id {
			t.Fatalf("steward review page: %d", code)
		}
		scsrf := csrfRE.FindStringSubmatch(page)[1]
		if resp, _ := st.do(http.MethodPost, "/console/review/decide", url.Values{"id": {id}, "decision": {"reject"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("decision without a CSRF token: %d", resp.StatusCode)
		}
		resp, _ = st.do(http.MethodPost, "/console/review/decide", url.Values{"csrf": {scsrf}, "id": {id}, "decision": {"reject"}, "note": {"siblings"}})
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "notice=rejected") {
			t.Errorf("reject: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		// Someone else decided meanwhile: said so, nothing done twice.
		resp, _ = st.do(http.MethodPost, "/console/review/decide", url.Values{"csrf": {scsrf}, "id": {id}, "decision": {"approve"}})
		if _, page := st.follow(resp.Header.Get("Location")); !strings.Contains(page, "Not done: the item was decided meanwhile") {
			t.Errorf("second decision: %s", resp.Header.Get("Location"))
		}
		code, page = st.follow("/console/audit")
		if code != 200 || !strings.Contains(page, "siblings") || !strings.Contains(page, "steward-key:") {
			t.Errorf("audit page: %d", code)
		}
		resp, csv := st.do(http.MethodGet, "/console/audit?format=csv", nil)
		if !strings.HasPrefix(csv, "id,at,actor,action") || !strings.Contains(csv, ",reject,siblings,") || !strings.Contains(resp.Header.Get("Content-Type"), "csv") {
			t.Errorf("audit CSV:\n%s", csv)
		}
		// Signing out ends the session.
		resp, _ = st.do(http.MethodPost, "/console/logout", url.Values{"csrf": {scsrf}})
		if resp, _ := st.do(http.MethodGet, "/console/review", nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after sign-out: %d", resp.StatusCode)
		}
	}, mergeProtectionOnly)
}

// Split, link and undo from the profile page, each through a preview.
func TestConsoleStewardActions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"u1","anonymousId":"a1","traits":{"name":"Ann"},"messageId":"s1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/track", `{"anonymousId":"a2","event":"Viewed","messageId":"s2","timestamp":"2026-01-01T10:01:00Z"}`)
		p := f.must(t, `{ lookup(type: "user_id", value: "u1") { id } }`, nil)["lookup"].(map[string]any)["id"].(string)
		st := newBrowser(t, f.url)
		st.signIn(stewKey)
		_, page := st.follow("/console/profiles/" + p)
		csrf := csrfRE.FindStringSubmatch(page)[1]
		if !strings.Contains(page, `value="anonymous_id:a1"`) || !strings.Contains(page, "Link…") {
			t.Fatalf("steward profile page lacks the split and link forms")
		}
		post := func(path string, form url.Values) (*http.Response, string) {
			form.Set("csrf", csrf)
			return st.do(http.MethodPost, path, form)
		}
		// Link: preview names the other profile; confirming merges.
		form := url.Values{"from": {"user_id:u1"}, "type": {"anonymous_id"}, "value": {"a2"}, "note": {"phoned in"}}
		resp, body := post("/console/profiles/"+p+"/link", form)
		if resp.StatusCode != 200 || !strings.Contains(body, "preview") || !strings.Contains(body, "merge") {
			t.Fatalf("link preview: %d", resp.StatusCode)
		}
		form.Set("confirm", "yes")
		resp, _ = post("/console/profiles/"+p+"/link", form)
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/console/profiles/"+p) {
			t.Fatalf("link: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if n := len(f.export(t)); n != 1 {
			t.Fatalf("after the link there are %d profiles", n)
		}
		// Split a2 back out.
		resp, body = post("/console/profiles/"+p+"/split", url.Values{"key": {"anonymous_id:a2"}})
		if resp.StatusCode != 200 || !strings.Contains(body, "anonymous_id:a2") || strings.Count(body, "Result: profile") != 2 ||
			!strings.Contains(body, "with 1 identifiers (1 anonymous_id)") {
			t.Fatalf("split preview (a dry run of the split): %d\n%s", resp.StatusCode, body)
		}
		if n := len(f.export(t)); n != 1 {
			t.Fatalf("the split preview changed the graph: %d profiles", n)
		}
		resp, _ = post("/console/profiles/"+p+"/split", url.Values{"key": {"anonymous_id:a2"}, "confirm": {"yes"}, "note": {"not hers"}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || strings.Contains(loc, "/console/profiles/"+p+"?") {
			t.Fatalf("split: %d %s", resp.StatusCode, loc)
		}
		if n := len(f.export(t)); n != 2 {
			t.Fatalf("after the split there are %d profiles", n)
		}
		// Undo the split from the history.
		_, page = st.follow("/console/profiles/" + p)
		m := regexp.MustCompile(`name="kind" value="split"><input type="hidden" name="target" value="(audit_[^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no Undo for the split in the history")
		}
		resp, _ = post("/console/undo", url.Values{"kind": {"split"}, "target": {m[1]}, "confirm": {"yes"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("undo split: %d", resp.StatusCode)
		}
		if n := len(f.export(t)); n != 1 {
			t.Fatalf("after undoing the split there are %d profiles", n)
		}
		// Undo the link's merge.
		_, page = st.follow("/console/profiles/" + p)
		m = regexp.MustCompile(`name="kind" value="merge"><input type="hidden" name="target" value="(merge_[^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no Undo for the merge in the history")
		}
		resp, body = post("/console/undo", url.Values{"kind": {"merge"}, "target": {m[1]}})
		if resp.StatusCode != 200 || !strings.Contains(body, "comes back under its own ID") || strings.Count(body, "Result: profile") != 2 {
			t.Fatalf("undo merge preview: %d", resp.StatusCode)
		}
		resp, _ = post("/console/undo", url.Values{"kind": {"merge"}, "target": {m[1]}, "confirm": {"yes"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("undo merge: %d", resp.StatusCode)
		}
		if n := len(f.export(t)); n != 2 {
			t.Errorf("after undoing the merge there are %d profiles", n)
		}
		// The history page: every action on the profile, before and after, with Undo.
		_, page = st.follow("/console/profiles/" + p + "/history")
		for _, want := range []string{"undo_merge", "undo_split", "split", "link", "Before", "After", "phoned in"} {
			if !strings.Contains(page, want) {
				t.Errorf("history page lacks %q", want)
			}
		}
		// A read key sees no action forms.
		agent := newBrowser(t, f.url)
		agent.signIn(readKey)
		if _, page := agent.follow("/console/profiles/" + p); strings.Contains(page, "Link…") || strings.Contains(page, "Undo…") {
			t.Error("a read key sees steward actions")
		}
	})
}

// Approve one item and undo it from the notice; decide the rest in bulk.
func TestConsoleBulkAndUndo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		for i, u := range []string{"ann", "bob", "cat"} {
			f.send(t, "/v1/identify", `{"userId":"`+u+`","anonymousId":"tablet","messageId":"b`+string(rune('0'+i))+`","timestamp":"2026-01-01T10:0`+string(rune('0'+i))+`:00Z"}`)
		}
		st := newBrowser(t, f.url)
		st.signIn(stewKey)
		_, page := st.follow("/console/review")
		ids := itemRE.FindAllStringSubmatch(page, -1)
		if len(ids) != 2 {
			t.Fatalf("%d items, want 2", len(ids))
		}
		csrf := csrfRE.FindStringSubmatch(page)[1]
		resp, _ := st.do(http.MethodPost, "/console/review/decide", url.Values{"csrf": {csrf}, "id": {ids[0][1]}, "decision": {"approve"}})
		_, page = st.follow(resp.Header.Get("Location"))
		if !strings.Contains(page, "Undo your last approval") {
			t.Fatal("no undo button after an approval")
		}
		undo := regexp.MustCompile(`name="target" value="(merge_[^"]+)"`).FindStringSubmatch(page)[1]
		before := len(f.export(t))
		resp, _ = st.do(http.MethodPost, "/console/undo", url.Values{"csrf": {csrf}, "kind": {"merge"}, "target": {undo}, "confirm": {"yes"}})
		if resp.StatusCode != http.StatusSeeOther || len(f.export(t)) != before+1 {
			t.Fatalf("undo of the approval: %d, profiles %d → %d", resp.StatusCode, before, len(f.export(t)))
		}
		// Bulk: the undone item is rejected now (the undo rejected its edge), the other is pending.
		resp, _ = st.do(http.MethodPost, "/console/review/bulk", url.Values{"csrf": {csrf}, "ids": {ids[0][1], ids[1][1]}, "decision": {"reject"}, "note": {"household"}})
		_, notice := st.follow(resp.Header.Get("Location"))
		if !strings.Contains(notice, "Rejected 1 of 2. Not done: 1 already decided") {
			t.Errorf("bulk notice: %s", notice)
		}
	}, mergeProtectionOnly)
}

// The graph page: the island's data, the table twin, and each edge's page.
func TestConsoleGraph(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"g1","anonymousId":"ga","traits":{"name":"Gus"},"messageId":"g1","timestamp":"2026-01-01T10:00:00Z"}`)
		p := f.must(t, `{ lookup(type: "user_id", value: "g1") { id } }`, nil)["lookup"].(map[string]any)["id"].(string)
		agent := newBrowser(t, f.url)
		agent.signIn(readKey)
		code, page := agent.follow("/console/profiles/" + p + "/graph")
		if code != 200 || !strings.Contains(page, `id="graph-data"`) || !strings.Contains(page, `"user_id:g1"`) ||
			!strings.Contains(page, "/console/assets/graph.js") || !strings.Contains(page, ">Why</a>") {
			t.Fatalf("graph page: %d\n%s", code, page)
		}
		edge := regexp.MustCompile(`href="(/console/edges/[^"]+)"`).FindStringSubmatch(page)[1]
		code, page = agent.follow(edge)
		if code != 200 || !strings.Contains(page, "seen together in the same message") {
			t.Errorf("edge page: %d\n%s", code, page)
		}
		// The island is served gzip-compressed within its budget, and only the graph page loads it.
		req, _ := http.NewRequest(http.MethodGet, f.url+"/console/assets/graph.js", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" || len(body) > 60<<10 || len(body) < 10<<10 {
			t.Errorf("graph.js: %s, %d bytes gzip", resp.Header.Get("Content-Encoding"), len(body))
		}
		if _, page := agent.follow("/console/profiles/" + p); strings.Contains(page, "graph.js") {
			t.Error("the profile page loads the graph island")
		}
	})
}
