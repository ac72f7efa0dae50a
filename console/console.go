// Package console is the web console for support agents and data stewards,
// served under /console/. Pages are rendered on the server from Go
// templates; every page and every action is one GraphQL operation of the
// public API, run through the API's own handler with the signed-in key, so
// roles, limits and errors are enforced in one place. The browser gets
// HTML, one stylesheet and one small script: no framework, no build step,
// nothing from other origins.
package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode"
)

//go:embed all:assets
var assets embed.FS

//go:embed templates/*.html
var templates embed.FS

// Role is what a signed-in key may do.
type Role string

const (
	RoleRead    Role = "read"
	RoleSteward Role = "steward"
	// RoleSupport looks customers up by a whole identifier only, and sees
	// personal data masked (the API masks it: docs/security.md, Masking).
	RoleSupport Role = "support"
)

// Config wires the console to the API.
type Config struct {
	// GraphQL is the API's /graphql handler; the console sends it each
	// operation with the signed-in key.
	GraphQL http.Handler
	// Authorize tells which role a key has, or why it cannot sign in.
	Authorize func(ctx context.Context, key string) (Role, error)
	Log       *slog.Logger
	// SessionTTL bounds a session (default 8 hours).
	SessionTTL time.Duration
	// MaxSessions caps the sessions kept in memory (default
	// DefaultMaxSessions): at the cap, expired sessions are dropped and
	// then the oldest one, whose user signs in again.
	MaxSessions int
	// PublicURL is the address users reach the console at; when it is
	// https, the cookies are Secure even though idgraph itself serves
	// plain HTTP behind a proxy that terminates TLS.
	PublicURL string
	// TrustedProxies are the addresses whose X-Forwarded-Proto is
	// believed (none by default: anyone can send the header).
	TrustedProxies []netip.Prefix
}

// DefaultMaxSessions is the default cap on signed-in sessions.
const DefaultMaxSessions = 10_000

// Console serves the pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	mu    sync.Mutex
	// sessions maps a session cookie to its key; the key never reaches
	// the browser after sign-in.
	sessions map[string]*session
}

type session struct {
	key     string
	role    Role
	csrf    string
	created time.Time
	expires time.Time
	// undo is the merge this session's last approval made, which the
	// review page offers to undo (through its preview).
	undo string
}

// lastApproval is the merge the session's last approval made, if not undone.
func (c *Console) lastApproval(r *http.Request) string {
	s := sessionOf(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.undo
}

// forgetApproval drops the review page's undo offer once merge is undone.
func (c *Console) forgetApproval(r *http.Request, merge string) {
	s := sessionOf(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.undo == merge {
		s.undo = ""
	}
}

// New returns a console over the API.
func New(cfg Config) (*Console, error) {
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}, sessions: map[string]*session{}}
	names, err := fs.Glob(templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if page == "layout" || page == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templates, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", page, err)
		}
		c.pages[page] = t
	}
	return c, nil
}

// Handler serves /console/.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /console/assets/{file}", assetHandler())
	mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/search", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("POST /console/logout", c.signedIn(c.logout))
	mux.HandleFunc("GET /console/search", c.signedIn(c.search))
	mux.HandleFunc("GET /console/profiles/{id}", c.signedIn(c.profile))
	mux.HandleFunc("GET /console/profiles/{id}/graph", c.signedIn(c.graphPage))
	mux.HandleFunc("GET /console/profiles/{id}/history", c.signedIn(c.history))
	mux.HandleFunc("GET /console/edges/{id}", c.signedIn(c.edgePage))
	mux.HandleFunc("POST /console/profiles/{id}/split", c.signedIn(c.split))
	mux.HandleFunc("POST /console/profiles/{id}/link", c.signedIn(c.link))
	mux.HandleFunc("POST /console/undo", c.signedIn(c.undo))
	mux.HandleFunc("GET /console/review", c.signedIn(c.review))
	mux.HandleFunc("POST /console/review/decide", c.signedIn(c.decide))
	mux.HandleFunc("POST /console/review/bulk", c.signedIn(c.decideMany))
	mux.HandleFunc("GET /console/audit", c.signedIn(c.audit))
	mux.HandleFunc("GET /console/segments", c.signedIn(c.segments))
	mux.HandleFunc("GET /console/segments/{key}", c.signedIn(c.segment))
	mux.HandleFunc("GET /console/segments/new", c.signedIn(c.editor))
	mux.HandleFunc("GET /console/segments/{key}/edit", c.signedIn(c.editor))
	mux.HandleFunc("POST /console/segments/save", c.signedIn(c.saveSegment))
	mux.HandleFunc("GET /console/segments/validate", c.signedIn(c.validate))
	mux.HandleFunc("GET /console/profiles/{id}/segments", c.signedIn(c.profileSegments))
	mux.HandleFunc("GET /console/profiles/{id}/segments/{key}", c.signedIn(c.explain))
	mux.HandleFunc("GET /console/traits/new", c.signedIn(c.traitEditor))
	mux.HandleFunc("GET /console/traits/{key}", c.signedIn(c.trait))
	mux.HandleFunc("GET /console/traits/{key}/edit", c.signedIn(c.traitEditor))
	mux.HandleFunc("POST /console/traits/save", c.signedIn(c.saveTrait))
	mux.HandleFunc("POST /console/traits/{key}/enabled", c.signedIn(c.setTraitEnabled))
	mux.HandleFunc("GET /console/profiles/{id}/traits/{key}", c.signedIn(c.explainTrait))
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no page at " + r.URL.Path + "."})
	})
	return securityHeaders(mux)
}

// securityHeaders: a CSP with no inline script or style and nothing from
// other origins, no framing, no sniffing, no referrer, no caching of pages.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/console/assets/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

const cookieName = "idgraph_console"

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// current returns the request's session, or nil.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil || time.Now().After(s.expires) {
		delete(c.sessions, ck.Value)
		return nil
	}
	return s
}

type sessionKey struct{}

// signedIn sends visitors without a session to the sign-in page and checks
// the CSRF token on every state change.
func (c *Console) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.current(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.render(w, r, http.StatusUnauthorized, "error", nil, pageData{Title: "Signed out", Error: "Your session has ended: sign in again."})
			return
		}
		if r.Method != http.MethodGet {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
				c.render(w, r, http.StatusForbidden, "error", s, pageData{Title: "Refused", Error: "The form's security token is missing or stale: reload the page and try again."})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	}
}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// loginCookie carries the sign-in form's CSRF token (a double-submit
// token): a page elsewhere cannot read it, so it cannot post the form
// with a key of its own and sign the victim in to the attacker's session.
const loginCookie = "idgraph_console_login"

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", nil, pageData{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next")), CSRF: c.loginToken(w, r)})
}

// loginToken returns the browser's sign-in token, setting a new one when
// it has none.
func (c *Console) loginToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(loginCookie); err == nil && len(ck.Value) == 64 {
		return ck.Value
	}
	t := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: t, Path: "/console/login", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return t
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	next := safeNext(r.PostFormValue("next"))
	ck, err := r.Cookie(loginCookie)
	if err != nil || len(ck.Value) != 64 || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) != 1 {
		c.render(w, r, http.StatusForbidden, "login", nil, pageData{Title: "Sign in", Next: next, CSRF: c.loginToken(w, r),
			Error: "The sign-in form's security token is missing or stale: sign in from this page."})
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	role, err := c.cfg.Authorize(r.Context(), key)
	if key == "" {
		err = errors.New("paste a read, support, steward or admin key")
	}
	if err != nil {
		c.render(w, r, http.StatusUnauthorized, "login", nil, pageData{Title: "Sign in", Error: err.Error(), Next: next, CSRF: ck.Value})
		return
	}
	id := randomToken()
	now := time.Now()
	c.mu.Lock()
	c.makeRoom(now)
	c.sessions[id] = &session{key: key, role: role, csrf: randomToken(), created: now, expires: now.Add(c.cfg.SessionTTL)}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/console/login", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/console/", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// makeRoom keeps the session store under its cap (c.mu held): at the cap
// it drops the expired sessions, then the oldest ones.
func (c *Console) makeRoom(now time.Time) {
	if len(c.sessions) < c.cfg.MaxSessions {
		return
	}
	for id, s := range c.sessions {
		if now.After(s.expires) {
			delete(c.sessions, id)
		}
	}
	for len(c.sessions) >= c.cfg.MaxSessions {
		oldest := ""
		for id, s := range c.sessions {
			if oldest == "" || s.created.Before(c.sessions[oldest].created) {
				oldest = id
			}
		}
		delete(c.sessions, oldest)
	}
}

// secure says whether the browser reached the console over HTTPS, so its
// cookies must be Secure: idgraph terminates TLS itself, the public URL is
// https, or a trusted proxy says so in X-Forwarded-Proto (its last value,
// the one the proxy nearest idgraph set).
func (c *Console) secure(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(strings.ToLower(c.cfg.PublicURL), "https://") {
		return true
	}
	proto := r.Header.Values("X-Forwarded-Proto")
	if len(proto) == 0 || !c.fromTrustedProxy(r) {
		return false
	}
	last := proto[len(proto)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

func (c *Console) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	for _, p := range c.cfg.TrustedProxies {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(cookieName); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on the console: a relative path
// under /console/ with no scheme, host, backslash, control character or
// dot segment (so neither "//evil.example" nor "/console/../x" leaves it),
// never the sign-in page itself, and with the query parameters that could
// act or speak for the console (undo, confirm, notice) dropped: a link
// signs a user in to a page, never into an action.
func safeNext(next string) string {
	const home = "/console/search"
	if len(next) > 2000 || strings.ContainsAny(next, "\\") || strings.IndexFunc(next, unicode.IsControl) >= 0 {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" ||
		!strings.HasPrefix(u.Path, "/console/") || strings.HasPrefix(u.Path, "/console/login") || strings.HasPrefix(u.Path, "/console/logout") ||
		strings.HasPrefix(next, "//") || path.Clean(u.Path) != strings.TrimSuffix(u.Path, "/") && path.Clean(u.Path) != u.Path {
		return home
	}
	q := u.Query()
	for _, p := range []string{"undo", "confirm", "notice", "csrf"} {
		q.Del(p)
	}
	out := u.EscapedPath()
	if len(q) > 0 {
		out += "?" + q.Encode()
	}
	return out
}

// gqlError is an error the API answered, with its code.
type gqlError struct {
	Code    string
	Message string
}

func (e *gqlError) Error() string { return e.Message }

// Query runs one GraphQL operation through the API with the session's key
// and decodes its data into out.
func (c *Console) query(r *http.Request, op Operation, vars map[string]any, out any) error {
	s := sessionOf(r)
	body, err := json.Marshal(map[string]any{"query": op.Query, "operationName": op.Name, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.key)
	rec := &buffer{header: http.Header{}, code: http.StatusOK}
	c.cfg.GraphQL.ServeHTTP(rec, req)
	var resp struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &resp); err != nil {
		return fmt.Errorf("console: %s: the API answered %d: %s", op.Name, rec.code, rec.body.String())
	}
	if len(resp.Errors) > 0 {
		code, _ := resp.Errors[0].Extensions["code"].(string)
		return &gqlError{Code: code, Message: resp.Errors[0].Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(resp.Data, out)
}

// buffer is an in-memory ResponseWriter for the API's answer.
type buffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *buffer) Header() http.Header         { return b.header }
func (b *buffer) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *buffer) WriteHeader(code int)        { b.code = code }

// pageData is what every template gets.
type pageData struct {
	Title   string
	Error   string
	Notice  string
	Next    string
	Steward bool
	Support bool
	CSRF    string
	Signed  bool
	Data    any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, s *session, d pageData) {
	if s == nil {
		s = sessionOf(r)
	}
	if s != nil {
		d.Signed, d.Steward, d.Support, d.CSRF = true, s.role == RoleSteward, s.role == RoleSupport, s.csrf
	}
	if d.Notice == "" {
		d.Notice = noticeText(r.URL.Query())
	}
	t := c.pages[page]
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		c.cfg.Log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Vary", "Accept-Encoding")
	body := buf.Bytes()
	if len(body) > 4<<10 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = gz.Bytes()
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// fail renders an API error as a page, with the status its code means.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, title string, err error) {
	code := http.StatusInternalServerError
	msg := "Something went wrong; the server log has the details."
	var ge *gqlError
	if errors.As(err, &ge) {
		msg = ge.Message
		code = map[string]int{"BAD_USER_INPUT": 400, "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404,
			"CONFLICT": 409, "TOO_LARGE": 413, "UNAVAILABLE": 503}[ge.Code]
		if code == 0 {
			code = http.StatusInternalServerError
		}
	} else {
		c.cfg.Log.Error("console", "page", title, "err", err)
	}
	c.render(w, r, code, "error", nil, pageData{Title: title, Error: msg})
}
