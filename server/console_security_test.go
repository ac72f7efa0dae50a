package server_test

import (
	"encoding/csv"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
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

// Signing in needs the sign-in page's token, from the cookie that page
// set: a form on another site cannot sign a victim in to the attacker's
// session (login CSRF).
func TestConsoleLoginCSRF(t *testing.T) {
	f := newFixture(t, backends.OpenPebble)
	attacker := newBrowser(t, f.url)
	stolen := attacker.loginForm(stewKey, "/console/review") // a valid token, of the attacker's browser
	victim := newBrowser(t, f.url)
	own := victim.loginForm(readKey, "/console/review") // the victim's browser has its own token
	for name, form := range map[string]url.Values{
		"no token":               {"key": {stewKey}},
		"empty token":            {"key": {stewKey}, "csrf": {""}},
		"the attacker's token":   stolen,
		"a token of other bytes": {"key": {stewKey}, "csrf": {strings.Repeat("0", 64)}},
	} {
		resp, body := victim.do(http.MethodPost, "/console/login", form)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(resp.Header.Get("Set-Cookie"), "idgraph_console=") ||
			!strings.Contains(body, "security token") {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
	}
	// Without the cookie (a cross-site post sends none: SameSite=Strict) a right token is refused too.
	if resp, _ := newBrowser(t, f.url).do(http.MethodPost, "/console/login", own); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a token without its cookie: %d", resp.StatusCode)
	}
	if resp, _ := victim.do(http.MethodPost, "/console/login", own); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the victim's own sign-in: %d", resp.StatusCode)
	}
}

// The console's cookies are Secure when the browser is on HTTPS: by the
// public URL, or by X-Forwarded-Proto from a trusted proxy only.
func TestConsoleSecureCookies(t *testing.T) {
	for _, c := range []struct {
		name      string
		publicURL string
		proxies   []string
		proto     []string
		secure    bool
	}{
		{"plain HTTP", "", nil, nil, false},
		{"header from anyone", "", nil, []string{"https"}, false},
		{"https public URL", "https://idgraph.example.com", nil, nil, true},
		{"http public URL", "http://idgraph.example.com", nil, []string{"https"}, false},
		{"trusted proxy", "", []string{"127.0.0.0/8"}, []string{"https"}, true},
		{"trusted proxy, IPv6 range too", "", []string{"::1/128", "127.0.0.1/32"}, []string{"HTTPS"}, true},
		{"untrusted proxy", "", []string{"10.0.0.0/8"}, []string{"https"}, false},
		{"trusted proxy saw http", "", []string{"127.0.0.0/8"}, []string{"https, http"}, false},
		{"trusted proxy, two headers", "", []string{"127.0.0.0/8"}, []string{"http", "https"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) {
				cfg.PublicURL = c.publicURL
				for _, p := range c.proxies {
					cfg.TrustedProxies = append(cfg.TrustedProxies, netip.MustParsePrefix(p))
				}
			})
			send := func(method, cookie string, form url.Values) *http.Response {
				req, _ := http.NewRequest(method, f.url+"/console/login", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header["X-Forwarded-Proto"] = c.proto
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				resp, err := http.DefaultTransport.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				return resp
			}
			login := send(http.MethodGet, "", nil).Cookies()
			if len(login) != 1 || login[0].Secure != c.secure || !login[0].HttpOnly {
				t.Fatalf("sign-in cookie %+v, want Secure %v", login, c.secure)
			}
			resp := send(http.MethodPost, login[0].Name+"="+login[0].Value, url.Values{"key": {readKey}, "csrf": {login[0].Value}})
			var session *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == "idgraph_console" {
					session = ck
				}
			}
			if resp.StatusCode != http.StatusSeeOther || session == nil || session.Secure != c.secure {
				t.Fatalf("sign in: %d, session cookie %+v, want Secure %v", resp.StatusCode, session, c.secure)
			}
		})
	}
}

// At the session cap the oldest session is signed out; the others stay.
func TestConsoleSessionCap(t *testing.T) {
	f := newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) { cfg.ConsoleSessions = 3 })
	var bs []*browser
	for range 5 {
		b := newBrowser(t, f.url)
		b.signIn(readKey)
		bs = append(bs, b)
	}
	for i, b := range bs {
		resp, _ := b.do(http.MethodGet, "/console/search", nil)
		if signedIn := resp.StatusCode == http.StatusOK; signedIn != (i >= 2) {
			t.Errorf("session %d: %d", i, resp.StatusCode)
		}
	}
}
