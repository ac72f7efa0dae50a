package server_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// stackTrace matches what a Go stack trace or panic leaks.
var stackTrace = regexp.MustCompile(`goroutine \d+|\.go:\d+|runtime\.|panic|github\.com/|/usr/local/go`)

// TestProductionMode: a server in production mode (serve without --dev,
// its default origins) on every backend lets no reading key but admin
// introspect the schema (TestRoleMatrix checks admin's) and serves no
// GraphiQL; its errors carry no stack trace or file path; and no
// answer allows any origin (Access-Control-Allow-Origin: * never, nor an
// origin the configuration does not name, except the collection API,
// whose write keys are public by design and which names the origin it
// answers, without credentials).
func TestProductionMode(t *testing.T) {
	const evil = "https://evil.example"
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixtureWith(t, b.Open, func(c *server.Config) {
				c.Dev = false
				c.CollectOrigins = []string{"*"} // serve's default
			})

			// Introspection and GraphiQL.
			code, hdr, _ := f.do(t, "GET", "/graphql", map[string]string{"Accept": "text/html"}, nil)
			if code == 200 || strings.Contains(hdr.Get("Content-Type"), "text/html") {
				t.Errorf("GraphiQL in production: %d %s", code, hdr.Get("Content-Type"))
			}
			for _, key := range []string{readKey, stewKey} {
				for _, q := range []string{`{__schema{types{name}}}`, `{__type(name:"Profile"){fields{name}}}`} {
					r := f.gql(t, key, q, nil)
					if len(r.Errors) == 0 || r.Data["__schema"] != nil || r.Data["__type"] != nil {
						t.Errorf("%s introspected in production with %s: %+v", key, q, r.Data)
					}
				}
			}

			// Errors: bad input of every kind (panics: deploy/panics_test.go,
			// outside this test binary, which fails on any panic).
			leaks := 0
			check := func(what string, code int, body string) {
				t.Helper()
				if stackTrace.MatchString(body) {
					leaks++
					t.Errorf("%s: %d answer leaks internals: %.300s", what, code, body)
				}
			}
			for _, q := range []struct{ name, body string }{
				{"syntax error", `{"query":"{ lookup(type: "}`},
				{"unknown field", `{"query":"{ nope }"}`},
				{"bad variable", `{"query":"query($t: String!){ lookup(type: $t, value: \"x\") { id } }","variables":{"t":7}}`},
				{"not JSON", `{"query":`},
				{"bad identifier", `{"query":"{ lookup(type: \"email\", value: \"\u0000\") { id } }"}`},
			} {
				r := f.gqlBody(t, readKey, q.body)
				var msgs []string
				for _, e := range r.Errors {
					msgs = append(msgs, e.Message)
				}
				check("GraphQL "+q.name, r.Status, strings.Join(msgs, "; "))
				if len(r.Errors) == 0 {
					t.Errorf("GraphQL %s: no error", q.name)
				}
			}
			for _, r := range []struct{ name, path, key, body string }{
				{"batch not JSON", "/v1/batch", writeKey, `{"batch":[`},
				{"track bad types", "/v1/track", writeKey, `{"userId":{"a":1},"event":7}`},
				{"import bad", "/v1/import", writeKey, "{\"records\":\"\x00\"}"},
				{"no route", "/v1/nope", readKey, `{}`},
			} {
				code, body := f.post(t, r.path, r.key, r.body)
				check(r.name, code, body)
				if code < 400 {
					t.Errorf("%s: %d, want an error: %s", r.name, code, body)
				}
			}
			t.Logf("%s: %d of 9 error answers leak a stack trace, file path or panic message", b.Name, leaks)

			// CORS.
			for _, r := range []struct {
				method, path string
				collect      bool
			}{
				{"OPTIONS", "/graphql", false}, {"POST", "/graphql", false}, {"GET", "/v1/export/profiles", false},
				{"GET", "/v1/export/subject", false}, {"GET", "/console/", false}, {"GET", "/healthz", false},
				{"GET", "/metrics", false}, {"OPTIONS", "/v1/batch", true}, {"OPTIONS", "/v1/track", true},
			} {
				h := map[string]string{"Origin": evil, "Access-Control-Request-Method": "POST",
					"Access-Control-Request-Headers": "authorization, content-type", "Authorization": "Bearer " + readKey}
				_, hdr, _ := f.do(t, r.method, r.path, h, nil)
				acao := hdr.Get("Access-Control-Allow-Origin")
				switch {
				case acao == "*":
					t.Errorf("%s %s: Access-Control-Allow-Origin: *", r.method, r.path)
				case hdr.Get("Access-Control-Allow-Credentials") != "":
					t.Errorf("%s %s: Access-Control-Allow-Credentials: %s", r.method, r.path, hdr.Get("Access-Control-Allow-Credentials"))
				case !r.collect && acao != "":
					t.Errorf("%s %s: Access-Control-Allow-Origin: %s, an origin nobody allowed", r.method, r.path, acao)
				case r.collect && acao != evil:
					t.Errorf("%s %s: collection preflight from %s answered %q", r.method, r.path, evil, acao)
				}
			}
		})
	}
}
