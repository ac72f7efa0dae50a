package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
)

// awaitTrait waits for a computed trait's status.
func (f *fixture) awaitTrait(t *testing.T, key, state string) {
	t.Helper()
	f.await(t, fmt.Sprintf(`{ computedTrait(key: %q) { status { state } } }`, key), "computedTrait.status.state", state)
}

// The console's computed trait pages, on both backends: the editor (an
// example, the check as you type for a computed trait, preview of values,
// save, edit from a version), the trait's page with disable and enable, a
// profile's "why" for each computed trait, and the refusals: bad input
// named by its field, a stale version, a read key, a missing CSRF token.
func TestConsoleComputedTraits(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			u1, u2 := seedConsoleSegments(t, f) // computed trait orders: u-1 1, u-2 0
			steward := newBrowser(t, f.url)
			steward.signIn(stewKey)
			_, page := steward.follow("/console/traits/new?example=monetary")
			if !strings.Contains(page, "New computed trait") || !strings.Contains(page, `action="/console/traits/save"`) ||
				!strings.Contains(page, `data-kind="COMPUTED_TRAIT"`) || !strings.Contains(page, `within(90d).sum(prop(&#34;revenue&#34;))</textarea>`) {
				t.Errorf("a worked example in the computed trait editor:\n%s", page)
			}
			csrf := csrfRE.FindStringSubmatch(page)[1]

			// The check as typed: a computed trait must have a scalar type.
			validate := func(kind, def string) (int, string) {
				resp, body := steward.do(http.MethodGet, "/console/segments/validate?"+url.Values{"kind": {kind}, "definition": {def}}.Encode(), nil)
				return resp.StatusCode, body
			}
			for _, c := range []struct {
				kind, def string
				code      int
				want      []string
			}{
				{"COMPUTED_TRAIT", `events("Order Completed").count()`, 200, []string{`"valid":true`, `"type":"number"`}},
				{"COMPUTED_TRAIT", `events("Order Completed")`, 200, []string{`"valid":false`, `"code":"TYPE"`, `"line":1`, `"column":1`}},
				{"COMPUTED_TRAIT", "trait(\"a\") +\n  lenght(1)", 200, []string{`"code":"UNKNOWN_FUNCTION"`, `"line":2`, `"column":3`}},
				{"SEGMENT", `events("Order Completed").count()`, 200, []string{`"valid":false`, `"code":"TYPE"`}},
				{"TRAIT", `1`, 400, []string{`kind: must be SEGMENT or COMPUTED_TRAIT`}},
			} {
				code, body := validate(c.kind, c.def)
				if code != c.code {
					t.Errorf("validate %s %q: %d, want %d", c.kind, c.def, code, c.code)
				}
				for _, w := range c.want {
					if !strings.Contains(body, w) {
						t.Errorf("validate %s %q: %s does not say %s", c.kind, c.def, body, w)
					}
				}
			}

			post := func(b *browser, path string, form url.Values) (*http.Response, string) {
				t.Helper()
				form.Set("csrf", csrf)
				return b.do(http.MethodPost, path, form)
			}
			save := func(b *browser, form url.Values) (*http.Response, string) {
				t.Helper()
				return post(b, "/console/traits/save", form)
			}
			// Preview: the values of a sample of profiles, nothing saved.
			_, body := save(steward, url.Values{"key": {"top_order"}, "definition": {`events("Order Completed").max(prop("revenue"))`}, "version": {"0"}, "action": {"preview"}})
			for _, w := range []string{"Valid (number).", "1 of 2 sample profiles have a value (number).", "<code>40</code>", "no value"} {
				if !strings.Contains(body, w) {
					t.Errorf("preview does not say %s:\n%s", w, body)
				}
			}
			_, body = save(steward, url.Values{"key": {"top_order"}, "definition": {`events("Order Completed").exists() and`}, "version": {"0"}, "action": {"preview"}})
			if !strings.Contains(body, "Line 1, column ") || !strings.Contains(body, "SYNTAX") || strings.Contains(body, "sample profiles") {
				t.Errorf("preview of a definition that does not parse:\n%s", body)
			}

			// Bad input: each refusal names its field; nothing is saved.
			for _, c := range []struct {
				name string
				form url.Values
				code int
				want string
			}{
				{"not a scalar", url.Values{"key": {"top_order"}, "definition": {`events("Order Completed")`}, "version": {"0"}}, 400, "definition: 1:1: TYPE"},
				{"a window of 0d", url.Values{"key": {"top_order"}, "definition": {`events("x").within(0d).count()`}, "version": {"0"}}, 400, "definition: 1:20: BAD_WINDOW"},
				{"no key", url.Values{"key": {""}, "definition": {`1`}, "version": {"0"}}, 400, "key: "},
				{"a bad key", url.Values{"key": {"a/b"}, "definition": {`1`}, "version": {"0"}}, 400, "key: "},
				{"a version that is no number", url.Values{"key": {"top_order"}, "definition": {`1`}, "version": {"two"}}, 400, "version: must be the whole number"},
				{"a taken key", url.Values{"key": {"orders"}, "definition": {`1`}, "version": {"0"}}, 409, "orders"},
				{"an unknown key", url.Values{"key": {"nope"}, "definition": {`1`}, "version": {"1"}}, 404, "nope"},
			} {
				c.form.Set("action", "save")
				resp, body := save(steward, c.form)
				if resp.StatusCode != c.code || !strings.Contains(body, c.want) {
					t.Errorf("%s: %d, want %d saying %q:\n%s", c.name, resp.StatusCode, c.code, c.want, body)
				}
			}
			if d := f.must(t, `{ computedTrait(key: "top_order") { key } }`, nil); get(d, "computedTrait") != nil {
				t.Errorf("a refused save saved: %v", d)
			}

			// Save, then edit from version 1; a stale edit is refused.
			resp, _ := save(steward, url.Values{"key": {"top_order"}, "definition": {`events("Order Completed").max(prop("revenue"))`}, "version": {"0"}, "action": {"save"}})
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/traits/top_order?n=1&notice=saved") {
				t.Errorf("save: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			f.awaitTrait(t, "top_order", segments.StateLive)
			_, page = steward.follow("/console/traits/top_order/edit")
			if !strings.Contains(page, `name="version" value="1"`) || !strings.Contains(page, "Edit computed trait top_order") {
				t.Errorf("the edit page:\n%s", page)
			}
			resp, _ = save(steward, url.Values{"key": {"top_order"}, "definition": {`events("Order Completed").within(30d).max(prop("revenue"))`}, "version": {"1"}, "action": {"save"}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Errorf("edit: %d", resp.StatusCode)
			}
			resp, body = save(steward, url.Values{"key": {"top_order"}, "definition": {`1`}, "version": {"1"}, "action": {"save"}})
			if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "version 2, not 1") {
				t.Errorf("a stale edit: %d", resp.StatusCode)
			}
			f.awaitTrait(t, "top_order", segments.StateLive)

			// The trait's page: status, version, definition; disable, enable.
			code, page := steward.follow("/console/traits/top_order")
			for _, w := range []string{"<h1>Computed trait top_order</h1>", "<dd>LIVE</dd>", "<dd>2</dd>", "within(30d).max(prop(&#34;revenue&#34;))", `<button type="submit">Disable</button>`,
				"<td>2 (current)</td><td>EDITED</td>", "<td>1</td><td>CREATED</td>"} {
				if code != 200 || !strings.Contains(page, w) {
					t.Errorf("the trait's page (%d) does not say %s:\n%s", code, w, page)
				}
			}
			for _, c := range []struct {
				name string
				form url.Values
				code int
				want string
			}{
				{"enabled is no boolean", url.Values{"enabled": {"maybe"}, "version": {"2"}}, 400, "enabled: must be true or false"},
				{"a version that is no number", url.Values{"enabled": {"false"}, "version": {"x"}}, 400, "version: must be the whole number"},
				{"a stale version", url.Values{"enabled": {"false"}, "version": {"1"}}, 409, "version 2, not 1"},
			} {
				resp, body := post(steward, "/console/traits/top_order/enabled", c.form)
				if resp.StatusCode != c.code || !strings.Contains(body, c.want) {
					t.Errorf("%s: %d, want %d saying %q", c.name, resp.StatusCode, c.code, c.want)
				}
			}
			resp, _ = post(steward, "/console/traits/top_order/enabled", url.Values{"enabled": {"false"}, "version": {"2"}})
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/traits/top_order?n=3&notice=disabled" {
				t.Errorf("disable: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			if _, page = steward.follow("/console/traits/top_order?n=3&notice=disabled"); !strings.Contains(page, "<dd>DISABLED</dd>") ||
				!strings.Contains(page, "Disabled: version 3 is no longer evaluated") || !strings.Contains(page, `<button type="submit">Enable</button>`) {
				t.Errorf("after disabling:\n%s", page)
			}
			resp, _ = post(steward, "/console/traits/top_order/enabled", url.Values{"enabled": {"true"}, "version": {"3"}})
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/traits/top_order?n=4&notice=enabled" {
				t.Errorf("enable: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			f.awaitTrait(t, "top_order", segments.StateLive)
			if code, _ := steward.follow("/console/traits/nope"); code != 404 {
				t.Errorf("an unknown trait's page: %d", code)
			}

			// A profile's computed traits, each with why.
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { computedTraits { key } } }`, u1), "profile.computedTraits.1.key", "top_order")
			for _, c := range []struct {
				path string
				code int
				want []string
			}{
				{"/console/profiles/" + u1 + "/segments", 200, []string{`<td><a href="/console/traits/orders">orders</a></td><td><code>1</code></td><td>number</td>`,
					`href="/console/profiles/` + u1 + `/traits/top_order">why<span class="visually-hidden"> (top_order)</span></a>`}},
				{"/console/profiles/" + u2 + "/segments", 200, []string{`<td><a href="/console/traits/top_order">top_order</a></td><td><span class="muted">no value</span></td>`}},
				{"/console/profiles/" + u1 + "/traits/top_order", 200, []string{"<h1>Why top_order is 40</h1>", "version 4 (number)", "= <strong>40</strong> · 1 events: m1", "With no new data, this can change at"}},
				{"/console/profiles/" + u2 + "/traits/top_order", 200, []string{"<h1>Why top_order has no value</h1>", "= <strong>null</strong>"}},
				{"/console/profiles/" + u2 + "/traits/orders", 200, []string{"<h1>Why orders is 0</h1>"}},
				{"/console/profiles/" + u1 + "/traits/nope", 404, []string{"nope"}},
				{"/console/profiles/p_nope/traits/top_order", 404, []string{"p_nope"}},
				{"/console/segments", 200, []string{`<a href="/console/traits/top_order">top_order</a>`, `href="/console/traits/new"`}},
			} {
				code, page := steward.follow(c.path)
				if code != c.code {
					t.Errorf("%s: %d, want %d", c.path, code, c.code)
				}
				for _, w := range c.want {
					if !strings.Contains(page, w) {
						t.Errorf("%s does not say %s:\n%s", c.path, w, page)
					}
				}
			}

			// A read key sees the pages, with no Save, Disable or Enable,
			// and its posts are refused; so is a post without the token.
			agent := newBrowser(t, f.url)
			agent.signIn(readKey)
			_, page = agent.follow("/console/traits/new")
			if strings.Contains(page, `value="save"`) || !strings.Contains(page, "Saving needs a steward key.") {
				t.Errorf("a read key sees a Save button")
			}
			csrf = csrfRE.FindStringSubmatch(page)[1]
			if _, page = agent.follow("/console/traits/top_order"); strings.Contains(page, "Disable</button>") || !strings.Contains(page, "needs a steward key") {
				t.Errorf("a read key sees Disable:\n%s", page)
			}
			if resp, _ := save(agent, url.Values{"key": {"other"}, "definition": {`1`}, "version": {"0"}, "action": {"save"}}); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a read key saved: %d", resp.StatusCode)
			}
			if resp, _ := save(agent, url.Values{"key": {"other"}, "definition": {`1`}, "version": {"0"}, "action": {"preview"}}); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a read key previewed (a steward's query): %d", resp.StatusCode)
			}
			if resp, _ := post(agent, "/console/traits/top_order/enabled", url.Values{"enabled": {"false"}, "version": {"4"}}); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a read key disabled: %d", resp.StatusCode)
			}
			if resp, body := steward.do(http.MethodPost, "/console/traits/top_order/enabled", url.Values{"enabled": {"false"}, "version": {"4"}}); resp.StatusCode != http.StatusForbidden ||
				!strings.Contains(body, "security token") {
				t.Errorf("a post without the CSRF token: %d", resp.StatusCode)
			}
			if d := f.must(t, `{ computedTrait(key: "top_order") { version status { state } } }`, nil); line(get(d, "computedTrait.version"), get(d, "computedTrait.status.state")) != "4 LIVE" {
				t.Errorf("after the refusals: %v", d)
			}
		})
	}
}

// previewComputedTrait over GraphQL: the values of a sample of profiles,
// a steward's query; bad input named by its field.
func TestPreviewComputedTrait(t *testing.T) {
	f := withSegments(t, backends.OpenPebble)
	f.send(t, "/v1/track", orderMsg("u-1", "m1", time.Now().Add(-time.Hour)))
	f.send(t, "/v1/track", `{"userId":"u-2","event":"Page Viewed","messageId":"m2"}`)
	const q = `query($def: String!, $n: Int) { previewComputedTrait(definition: $def, sample: $n) { type profiles withValue values { profile { id } value } } }`
	d := f.mustAs(t, stewKey, q, map[string]any{"def": `events("Order Completed").max(prop("revenue"))`, "n": 10})
	if got := line(get(d, "previewComputedTrait.type"), get(d, "previewComputedTrait.profiles"), get(d, "previewComputedTrait.withValue")); got != "number 2 1" {
		t.Errorf("preview: %v", d)
	}
	if d := f.mustAs(t, stewKey, q, map[string]any{"def": `1`, "n": 1}); get(d, "previewComputedTrait.profiles") != float64(1) {
		t.Errorf("a sample of 1: %v", d)
	}
	f.refused(t, stewKey, q, map[string]any{"def": `1`, "n": 0}, "BAD_USER_INPUT", "sample")
	f.refused(t, stewKey, q, map[string]any{"def": `1`, "n": 101}, "BAD_USER_INPUT", "sample")
	f.refused(t, stewKey, q, map[string]any{"def": `events("x")`}, "BAD_USER_INPUT", "definition", "TYPE")
	f.refused(t, readKey, q, map[string]any{"def": `1`}, "FORBIDDEN")
}

// TestConsoleTraitsInChromium edits a computed trait in a real browser: a
// type error announced at its position as it is typed, a preview of
// values, save, disable by keyboard and enable, and a profile's "why" for
// a computed trait reached by keyboard. axe finds nothing (WCAG 2.2 AA)
// and every request stays on the server's origin within the page-weight
// budget.
func TestConsoleTraitsInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	node, dir := nodeDir(t, "console-e2e", "playwright-core")
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			u1, u2 := seedConsoleSegments(t, f)
			var r e2eReport
			runE2EScript(t, node, dir, "traits.mjs", &r, "BASE_URL="+f.url, "STEWARD_KEY="+stewKey, "CHROMIUM="+chromium, "PROFILE_ID="+u1, "OTHER_ID="+u2)
			r.checkPages(t, 8)
			t.Logf("bytes transferred per page state: %v", r.Bytes)
			for _, c := range []struct{ step, field, want string }{
				{"trait editor", "h1", "New computed trait"},
				{"trait editor with an error", "text", "Line 1, column 1: TYPE: "},
				{"trait preview", "text", "1 of 2 sample profiles have a value (number)."},
				{"trait saved", "url", "/console/traits/top_order"},
				{"trait saved", "notice", "Saved version 1: backfilling."},
				{"trait disabled", "state", "DISABLED"},
				{"trait why", "h1", "Why orders is 1"},
				{"trait why no value", "h1", "Why top_order has no value"},
			} {
				if got := fmt.Sprint(r.step(c.step)[c.field]); !strings.HasPrefix(got, c.want) {
					t.Errorf("%s: %s is %q, want %q", c.step, c.field, got, c.want)
				}
			}
			if got := fmt.Sprint(r.step("trait enabled")["state"]); !strings.HasPrefix(got, "BACKFILLING") && got != "LIVE" {
				t.Errorf("after enabling: %q", got)
			}
		})
	}
}

// checkPages fails on what every console browser test refuses: browser
// errors, requests to other origins, axe violations, a page over the 100 KB
// budget, and axe run on other than the states page states.
func (r e2eReport) checkPages(t *testing.T, states int) {
	t.Helper()
	if len(r.Errors) > 0 || len(r.Foreign) > 0 {
		t.Errorf("browser errors %v, requests to other origins %v", r.Errors, r.Foreign)
	}
	if len(r.Axe) != states {
		t.Errorf("axe ran on %d page states, want %d", len(r.Axe), states)
	}
	for state, v := range r.Axe {
		if len(v) > 0 {
			t.Errorf("axe on %q: %v", state, v)
		}
	}
	for state, n := range r.Bytes {
		if n > 100<<10 {
			t.Errorf("%q transferred %d bytes, budget 100 KB", state, n)
		}
	}
}
