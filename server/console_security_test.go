package server_test

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/idgraph/idgraph/internal/backends"
)

// A crafted link cannot act or speak for the console: `?undo=` offers no
// undo (the offer is the session's own last approval), no form a URL
// reaches is pre-confirmed, and `?notice=` shows only the console's own
// texts, chosen by code.
func TestConsoleCraftedLinks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		for i, u := range []string{"ann", "bob"} {
			f.send(t, "/v1/identify", `{"userId":"`+u+`","anonymousId":"tablet","messageId":"x`+string(rune('0'+i))+`","timestamp":"2026-01-01T10:0`+string(rune('0'+i))+`:00Z"}`)
		}
		st := newBrowser(t, f.url)
		st.signIn(stewKey)
		confirmRE := regexp.MustCompile(`name="confirm"`)
		for _, link := range []string{
			"/console/review?undo=merge_crafted1&notice=Call+support+on+555-0100",
			"/console/review?notice=%3Cb%3Ehi%3C%2Fb%3E",
			"/console/review?notice=split&n=Call+us",
			"/console/review?notice=split&n=-1",
			"/console/review?notice=approved-many&n=1",
		} {
			code, page := st.follow(link)
			if code != 200 || strings.Contains(page, "merge_crafted1") || strings.Contains(page, "Undo your last approval") ||
				confirmRE.MatchString(page) || strings.Contains(page, "Call") || strings.Contains(page, "hi</b>") || strings.Contains(page, `class="notice"`) {
				t.Errorf("%s: %d, the page acts or speaks for the link:\n%s", link, code, page)
			}
		}
		// A known code shows its fixed text.
		if _, page := st.follow("/console/review?notice=split&n=3"); !strings.Contains(page, "Split: 3 identifiers moved here") {
			t.Error("a known notice code is not shown")
		}

		// The steward's own approval is offered for undo, through the preview.
		_, page := st.follow("/console/review")
		ids := itemRE.FindAllStringSubmatch(page, -1)
		if len(ids) == 0 {
			t.Fatal("no review item")
		}
		csrf := csrfRE.FindStringSubmatch(page)[1]
		resp, _ := st.do(http.MethodPost, "/console/review/decide", url.Values{"csrf": {csrf}, "id": {ids[0][1]}, "decision": {"approve"}})
		loc := resp.Header.Get("Location")
		if strings.Contains(loc, "undo=") || !strings.Contains(loc, "notice=approved") {
			t.Fatalf("approve redirect %s", loc)
		}
		_, page = st.follow(loc + "&undo=merge_crafted1")
		form := regexp.MustCompile(`(?s)<form method="post" action="/console/undo".*?</form>`).FindString(page)
		if !strings.Contains(form, "Undo your last approval") || strings.Contains(form, "merge_crafted1") || confirmRE.MatchString(form) {
			t.Fatalf("undo offer after an approval:\n%s", form)
		}
		before := len(f.export(t))
		target := regexp.MustCompile(`name="target" value="(merge_[^"]+)"`).FindStringSubmatch(form)[1]
		resp, body := st.do(http.MethodPost, "/console/undo", url.Values{"csrf": {csrf}, "kind": {"merge"}, "target": {target}})
		if resp.StatusCode != 200 || !strings.Contains(body, "comes back under its own ID") || len(f.export(t)) != before {
			t.Fatalf("the undo offer did not stop at its preview: %d, profiles %d → %d", resp.StatusCode, before, len(f.export(t)))
		}
	}, mergeProtectionOnly)
}

// After sign-in the console goes only to one of its own pages, and never
// into an action.
func TestConsoleSignInNext(t *testing.T) {
	f := newFixture(t, backends.OpenPebble)
	for next, want := range map[string]string{
		"/console/profiles/p_1":                                                  "/console/profiles/p_1",
		"/console/review?reason=review&after=x1":                                 "/console/review?after=x1&reason=review",
		"/console/review?undo=merge_1&confirm=yes&notice=approved&reason=review": "/console/review?reason=review",
		"https://evil.example/console/":                                          "/console/search",
		"//evil.example/console/":                                                "/console/search",
		"/\\evil.example/console/":                                               "/console/search",
		"/console/\\..\\..\\evil":                                                "/console/search",
		"/console/../graphql":                                                    "/console/search",
		"/console/%2e%2e/graphql":                                                "/console/search",
		"/console//evil.example":                                                 "/console/search",
		"javascript:alert(1)":                                                    "/console/search",
		"/console/search\r\nSet-Cookie: a=b":                                     "/console/search",
		"/console/search\x00":                                                    "/console/search",
		"/console/login?next=https://evil.example":                               "/console/search",
		"/graphql": "/console/search",
		"":         "/console/search",
	} {
		b := newBrowser(t, f.url)
		resp, _ := b.do(http.MethodPost, "/console/login", b.loginForm(stewKey, next))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("next %q: %d → %q, want %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

// The audit export's cells never start what a spreadsheet runs as a
// formula: a steward's note of =HYPERLINK(…) opens as text.
func TestAuditCSVNeutralisesFormulas(t *testing.T) {
	f := newFixture(t, backends.OpenPebble)
	notes := []string{`=HYPERLINK("http://evil.example","x")`, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)",
		"\t=1+1", "\r=1+1", "\x01=1", "\u00a0ok", "plain note", "a=1"}
	f.send(t, "/v1/identify", `{"userId":"csv0","messageId":"m-csv0"}`)
	for i, note := range notes {
		u := "csv" + string(rune('a'+i))
		f.send(t, "/v1/identify", `{"userId":"`+u+`","messageId":"m-`+u+`"}`)
		f.act(t, `mutation($u: String!, $n: String) { link(a: {type: "user_id", value: "csv0"}, b: {type: "user_id", value: $u}, note: $n) { audit { id } } }`,
			map[string]any{"u": u, "n": note})
	}
	st := newBrowser(t, f.url)
	st.signIn(stewKey)
	_, body := st.do(http.MethodGet, "/console/audit?format=csv", nil)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, body)
	}
	got := map[string]bool{}
	for _, row := range rows {
		for _, cell := range row {
			if r, _ := utf8.DecodeRuneInString(cell); cell != "" && (strings.ContainsRune("=+-@\t\r", r) || unicode.IsControl(r)) {
				t.Errorf("cell %q would run as a formula", cell)
			}
		}
		got[row[4]] = true
	}
	for _, want := range []string{`'=HYPERLINK("http://evil.example","x")`, "'+1+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1:A2)",
		"'\t=1+1", "'\r=1+1", "'\x01=1", "\u00a0ok", "plain note", "a=1"} {
		if !got[want] {
			t.Errorf("no note %q in the export (notes %v)", want, got)
		}
	}
}
