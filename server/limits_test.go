package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// aliased returns a query of n aliases of lookup's id, spread through a
// fragment so that aliases are counted where fragments are spread.
func aliased(n int) string {
	var b strings.Builder
	b.WriteString(`{ ...f } fragment f on Query {`)
	for i := range n {
		fmt.Fprintf(&b, ` a%d: lookup(type: "user_id", value: "u") { id }`, i)
	}
	b.WriteString(" }")
	return b.String()
}

// nested returns a query depth fields deep (depth ≥ 2): lookup, then
// identifiers and profile in turn, then a leaf.
func nested(depth int) string {
	open, leaf := []string{`lookup(type: "user_id", value: "u")`}, "id"
	for d := 1; d < depth-1; d++ {
		if d%2 == 1 {
			open, leaf = append(open, "identifiers"), "value"
		} else {
			open, leaf = append(open, "profile"), "id"
		}
	}
	return "{ " + strings.Join(open, " { ") + " { " + leaf + strings.Repeat(" }", len(open)) + " }"
}

// TestGraphQLLimits: each of issue 14's GraphQL limits refuses the first
// document past it, with its code, and lets the one at it through.
func TestGraphQLLimits(t *testing.T) {
	// Lists nested 10 deep cost more than the default: depth alone here.
	f := newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) { cfg.MaxComplexity = 1 << 30 })
	f.send(t, "/v1/identify", `{"userId":"u"}`)
	if q := nested(3); q != `{ lookup(type: "user_id", value: "u") { identifiers { value } } }` {
		t.Fatalf("nested(3) = %s", q)
	}
	for _, c := range []struct {
		name, query string
		code        string
	}{
		{"30 aliases", aliased(server.DefaultMaxAliases), ""},
		{"31 aliases", aliased(server.DefaultMaxAliases + 1), "ALIAS_LIMIT_EXCEEDED"},
		{"10 deep", nested(server.DefaultMaxDepth), ""},
		{"11 deep", nested(server.DefaultMaxDepth + 1), "DEPTH_LIMIT_EXCEEDED"},
	} {
		r := f.gql(t, readKey, c.query, nil)
		if r.code() != c.code {
			t.Errorf("%s: %d %s %+v, want %q", c.name, r.Status, r.code(), r.Errors, c.code)
		}
	}
	// The body: 64 KB, and one operation per request.
	pad := func(n int) string { return `{"query":"{ __typename }","pad":"` + strings.Repeat("x", n) + `"}` }
	small := len(pad(0))
	for _, c := range []struct {
		name, body string
		status     int
		msg        string
	}{
		{"64 KB body", pad(server.MaxGraphQLBytes - small), 200, ""},
		{"64 KB and a byte", pad(server.MaxGraphQLBytes - small + 1), 413, "request body is larger than 64 KB"},
		{"batched operations", `[{"query":"{ __typename }"},{"query":"{ __typename }"}]`, 400, "batched operations (a JSON array) are not accepted"},
		{"batched, spaced", " \n\t[{\"query\":\"{ __typename }\"}]", 400, "batched operations"},
	} {
		r := f.gqlBody(t, readKey, c.body)
		msg := ""
		if len(r.Errors) > 0 {
			msg = r.Errors[0].Message
		}
		if r.Status != c.status || !strings.Contains(msg, c.msg) || (c.msg == "") != (len(r.Errors) == 0) {
			t.Errorf("%s: %d %+v, want %d %q", c.name, r.Status, r.Errors, c.status, c.msg)
		}
	}
}

// TestGraphQLComplexityPerRole: a support key's operations may cost less
// than a read key's (DefaultRoleComplexity), and a configured role limit
// replaces the default.
func TestGraphQLComplexityPerRole(t *testing.T) {
	kf := newKeyFixtureWith(t, backends.OpenPebble, nil, func(cfg *server.Config) {
		cfg.RoleComplexity = map[auth.Role]int{auth.RoleSupport: 1000, auth.RoleSteward: 100}
	})
	kf.send(t, "/v1/identify", `{"userId":"u"}`)
	// lookup costs 1 + 1 + its events: 1 + 100 × (1 + 1 + 4) = 602 each.
	q := `{ a: lookup(type: "user_id", value: "u") { id events(first: 100) { edges { node { type name messageId timestamp } } } }
	        b: lookup(type: "user_id", value: "u") { id events(first: 100) { edges { node { type name messageId timestamp } } } } }`
	for _, c := range []struct {
		role auth.Role
		code string
	}{
		{auth.RoleRead, ""},
		{auth.RoleAdmin, ""},
		{auth.RoleSupport, "COMPLEXITY_LIMIT_EXCEEDED"},
		{auth.RoleSteward, "COMPLEXITY_LIMIT_EXCEEDED"},
	} {
		key := kf.admin
		if c.role != auth.RoleAdmin {
			key = kf.create(t, c.role)
		}
		if r := kf.gql(t, key, q, nil); r.code() != c.code {
			t.Errorf("%s: %s %+v, want %q", c.role, r.code(), r.Errors, c.code)
		}
	}
	if r := kf.gql(t, kf.create(t, auth.RoleSupport), `{ lookup(type: "user_id", value: "u") { id events(first: 100) { edges { node { type } } } } }`, nil); len(r.Errors) > 0 {
		t.Errorf("support, a cheap lookup: %+v", r.Errors)
	}
}

// TestGraphQLExecutionTimeout: a query whose time runs out stops with
// EXECUTION_TIMEOUT (a limit of a nanosecond runs out before any field).
func TestGraphQLExecutionTimeout(t *testing.T) {
	f := newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) { cfg.GraphQLTimeout = time.Nanosecond })
	f.send(t, "/v1/identify", `{"userId":"u"}`)
	r := f.gql(t, readKey, `{ lookup(type: "user_id", value: "u") { id } }`, nil)
	if r.code() != "EXECUTION_TIMEOUT" || !strings.Contains(r.Errors[0].Message, "ran longer than its limit of 1ns") {
		t.Errorf("got %d %s %+v, want EXECUTION_TIMEOUT", r.Status, r.code(), r.Errors)
	}
	// Off, the same query answers.
	f = newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) { cfg.GraphQLTimeout = -1 })
	f.send(t, "/v1/identify", `{"userId":"u"}`)
	if r := f.gql(t, readKey, `{ lookup(type: "user_id", value: "u") { id } }`, nil); len(r.Errors) > 0 {
		t.Errorf("no timeout: %+v", r.Errors)
	}
}

// from sends a request from a local address (127.0.0.x) and returns the
// status, Retry-After and body.
func (f *fixture) from(t *testing.T, ip byte, method, path, body string, auth func(*http.Request)) (int, string, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}}).DialContext}}
	req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	auth(req)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(data)
}

func withBasic(key string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(key, "") }
}

func withBearer(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
}

// TestKeyRateLimits: each key has its own token bucket, by role; past it a
// request is answered 429 with Retry-After, on ingest and on GraphQL, and
// other keys are served. (The refill is one token in 1,000 s: nothing
// refills while the test runs.)
func TestKeyRateLimits(t *testing.T) {
	kf := newKeyFixtureWith(t, backends.OpenPebble, nil, func(cfg *server.Config) {
		cfg.Rates = map[auth.Role]server.Rate{auth.RoleWrite: {PerSecond: 0.001, Burst: 3}, auth.RoleRead: {PerSecond: 0.001, Burst: 2}}
	})
	other := kf.create(t, auth.RoleWrite)
	track := `{"userId":"u","event":"e"}`
	for i := range 3 {
		if code, _, body := kf.from(t, 1, "POST", "/v1/track", track, withBasic(writeKey)); code != 200 {
			t.Fatalf("write %d: %d %s", i, code, body)
		}
	}
	code, retry, body := kf.from(t, 1, "POST", "/v1/track", track, withBasic(writeKey))
	if code != 429 || retry == "" || !regexp.MustCompile(`key legacy-write-[0-9a-f]{12} has passed its rate limit \(0\.001/3 requests a second\)`).MatchString(body) {
		t.Errorf("4th write: %d Retry-After %q %s, want 429 naming the key", code, retry, body)
	}
	// The batch route shares the key's bucket; another write key has its own.
	if code, _, body := kf.from(t, 1, "POST", "/v1/batch", `{"batch":[]}`, withBasic(writeKey)); code != 429 {
		t.Errorf("batch with the limited key: %d %s", code, body)
	}
	if code, _, body := kf.from(t, 1, "POST", "/v1/track", track, withBasic(other)); code != 200 {
		t.Errorf("another write key: %d %s", code, body)
	}
	q := `{"query":"{ __typename }"}`
	for i := range 2 {
		if code, _, body := kf.from(t, 1, "POST", "/graphql", q, withBearer(readKey)); code != 200 {
			t.Fatalf("read %d: %d %s", i, code, body)
		}
	}
	code, retry, body = kf.from(t, 1, "POST", "/graphql", q, withBearer(readKey))
	if code != 429 || retry == "" || !strings.Contains(body, "RATE_LIMITED") {
		t.Errorf("3rd read: %d Retry-After %q %s, want 429 RATE_LIMITED", code, retry, body)
	}
	// Roles the rates do not name (admin here) are not limited.
	for i := range 10 {
		if code, _, body := kf.from(t, 1, "POST", "/graphql", q, withBearer(kf.admin)); code != 200 {
			t.Fatalf("admin %d: %d %s", i, code, body)
		}
	}
}

// TestAuthFailuresThrottled: an address that failed to authenticate
// DefaultAuthFailures times is answered 429 before its key is checked,
// even a good one; successes neither count nor reset; other addresses are
// served.
func TestAuthFailuresThrottled(t *testing.T) {
	kf := newKeyFixtureWith(t, backends.OpenPebble, nil, func(cfg *server.Config) { cfg.AuthFailures = 0 })
	q := `{"query":"{ __typename }"}`
	forged := "idg_read_AAAAAAAA_" + strings.Repeat("x", 38) // a bad checksum
	guesses := []func(*http.Request){withBearer("rk_guess"), withBearer(forged), withBearer(kf.admin + "x"), withBasic("wk_guess")}
	for i := range server.DefaultAuthFailures - 1 {
		path := "/graphql"
		if i%4 == 3 {
			path = "/v1/track"
		}
		if code, _, body := kf.from(t, 1, "POST", path, q, guesses[i%4]); code != 401 {
			t.Fatalf("guess %d: %d %s, want 401", i, code, body)
		}
	}
	for i := range 50 {
		if code, _, body := kf.from(t, 1, "POST", "/graphql", q, withBearer(readKey)); code != 200 {
			t.Fatalf("good key %d: %d %s", i, code, body)
		}
	}
	if code, _, body := kf.from(t, 1, "POST", "/graphql", q, withBearer("rk_guess")); code != 401 {
		t.Fatalf("guess %d: %d %s, want 401", server.DefaultAuthFailures, code, body)
	}
	for _, c := range []struct {
		name string
		path string
		auth func(*http.Request)
	}{{"a guess", "/graphql", withBearer("rk_guess")}, {"a good read key", "/graphql", withBearer(readKey)}, {"a good write key", "/v1/track", withBasic(writeKey)}} {
		code, retry, body := kf.from(t, 1, "POST", c.path, `{"userId":"u","event":"e"}`, c.auth)
		if code != 429 || retry == "" || !strings.Contains(body, "too many failed authentications from 127.0.0.1") {
			t.Errorf("%s after %d failures: %d Retry-After %q %s, want 429", c.name, server.DefaultAuthFailures, code, retry, body)
		}
	}
	// The console's sign-in is throttled the same way.
	browser := newBrowser(t, kf.url)
	resp, body := browser.do(http.MethodPost, "/console/login", browser.loginForm(readKey, "/console/review"))
	if resp.StatusCode == http.StatusSeeOther || !strings.Contains(body, "too many failed authentications from 127.0.0.1") {
		t.Errorf("console sign-in after %d failures: %d %.300s", server.DefaultAuthFailures, resp.StatusCode, body)
	}
	if code, _, body := kf.from(t, 2, "POST", "/graphql", q, withBearer(readKey)); code != 200 {
		t.Errorf("another address: %d %s", code, body)
	}
}

// TestParseRates reads serve's --rate-limits.
func TestParseRates(t *testing.T) {
	got, err := server.ParseRates("write=5/10, read=off")
	if err != nil || got[auth.RoleWrite] != (server.Rate{PerSecond: 5, Burst: 10}) || got[auth.RoleRead] != (server.Rate{}) ||
		got[auth.RoleAdmin] != server.DefaultRates[auth.RoleAdmin] {
		t.Errorf("got %v, %v", got, err)
	}
	if got, err := server.ParseRates("off"); err != nil || len(got) != 0 {
		t.Errorf("off: %v, %v", got, err)
	}
	for _, bad := range []string{"write=5", "write=0/1", "write=5/0", "boss=5/10", "write", "write=x/y"} {
		if _, err := server.ParseRates(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
