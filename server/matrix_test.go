package server_test

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/schema"
	"github.com/idgraph/idgraph/server"
)

// rootFields lists every root field of the schema as "Type.field".
func rootFields(t *testing.T) (*ast.Schema, []string) {
	t.Helper()
	s := schema.NewExecutableSchema(schema.Config{}).Schema()
	var out []string
	for _, def := range []*ast.Definition{s.Query, s.Mutation, s.Subscription} {
		for _, f := range def.Fields {
			out = append(out, def.Name+"."+f.Name)
		}
	}
	return s, out
}

// checkPolicies fails for a name without an entry in the table (it would
// be denied to everyone) and for an entry naming nothing (a stale policy).
func checkPolicies(t *testing.T, what, table string, names []string, policies map[string]auth.Policy) {
	t.Helper()
	unpoliced := 0
	for _, n := range names {
		if _, ok := policies[n]; !ok {
			t.Errorf("%s %q has no access policy: add it to %s in server/policy.go", what, n, table)
			unpoliced++
		}
	}
	for n := range policies {
		if !slices.Contains(names, n) {
			t.Errorf("%s names %q, which is no %s", table, n, what)
		}
	}
	t.Logf("%d %ss, %d without a policy", len(names), what, unpoliced)
}

// TestEveryRootFieldHasAPolicy enumerates the schema's query, mutation and
// subscription fields.
func TestEveryRootFieldHasAPolicy(t *testing.T) {
	_, fields := rootFields(t)
	checkPolicies(t, "root field", "graphqlPolicies", fields, server.GraphQLPolicies)
}

// TestEveryRouteHasAPolicy enumerates the routes Handler registers.
func TestEveryRouteHasAPolicy(t *testing.T) {
	store := backends.OpenPebble(t)
	srv := server.New(server.Config{Store: store, Stitcher: graph.NewStitcher(store, graph.DefaultConfig()), Normalizer: graph.NewNormalizer("US")})
	defer srv.Close()
	srv.Handler()
	checkPolicies(t, "route", "routePolicies", srv.Routes(), server.RoutePolicies)
}

// keyKind is one credential of the matrix: a role's key, a legacy key, or
// one that must be refused whatever the route (revoked, expired, bad
// checksum, none).
type keyKind struct {
	name string
	key  string
	role auth.Role // "" for a key that must get 401
}

func matrixKeys(t *testing.T, kf *keyFixture) []keyKind {
	t.Helper()
	var kinds []keyKind
	for _, r := range auth.Roles {
		k := kf.admin
		if r != auth.RoleAdmin {
			k = kf.create(t, r)
		}
		kinds = append(kinds, keyKind{string(r), k, r})
	}
	admin := client.New(kf.url, kf.admin)
	revoked := kf.create(t, auth.RoleAdmin)
	if _, err := admin.RevokeKey(context.Background(), strings.Split(revoked, "_")[2]); err != nil {
		t.Fatal(err)
	}
	expired := kf.create(t, auth.RoleAdmin)
	if _, _, err := admin.RotateKey(context.Background(), strings.Split(expired, "_")[2], 0); err != nil {
		t.Fatal(err)
	}
	bad := kf.admin[:len(kf.admin)-1] + string(kf.admin[len(kf.admin)-1]^1)
	return append(kinds,
		keyKind{"legacy write", writeKey, auth.RoleWrite}, keyKind{"legacy read", readKey, auth.RoleRead},
		keyKind{"legacy steward", stewKey, auth.RoleSteward},
		keyKind{"revoked admin", revoked, ""}, keyKind{"expired admin", expired, ""},
		keyKind{"bad checksum", bad, ""}, keyKind{"none", "", ""})
}

// dummy writes a literal of the type: enough to pass validation, never
// meaningful data (a mutation given it fails harmlessly: not found,
// invalid).
func dummy(s *ast.Schema, typ *ast.Type) string {
	if typ.Elem != nil {
		return "[" + dummy(s, typ.Elem) + "]"
	}
	def := s.Types[typ.NamedType]
	switch def.Kind {
	case ast.Enum:
		return def.EnumValues[0].Name
	case ast.InputObject:
		var parts []string
		for _, f := range def.Fields {
			if f.Type.NonNull && f.DefaultValue == nil {
				parts = append(parts, f.Name+": "+dummy(s, f.Type))
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	switch def.Name {
	case "Int":
		return "1"
	case "Float":
		return "0.5"
	case "Boolean":
		return "true"
	case "Time":
		return `"2026-01-01T00:00:00Z"`
	}
	return `"matrix-x"`
}

// operation builds the smallest operation calling the root field.
func operation(s *ast.Schema, object string, f *ast.FieldDefinition) string {
	var args []string
	for _, a := range f.Arguments {
		if a.Type.NonNull && a.DefaultValue == nil {
			args = append(args, a.Name+": "+dummy(s, a.Type))
		}
		if a.Name == "dryRun" {
			args = append(args, "dryRun: true")
		}
	}
	call := f.Name
	if len(args) > 0 {
		call += "(" + strings.Join(args, ", ") + ")"
	}
	if k := s.Types[f.Type.Name()].Kind; k == ast.Object || k == ast.Interface || k == ast.Union {
		call += " { __typename }"
	}
	return strings.ToLower(object) + " { " + call + " }"
}

// TestRoleMatrix calls every query and mutation root field and every
// route with every key kind, on every backend, and compares the answer
// with the matrix: a key the matrix allows is never refused (401/403), one
// it does not is refused with 403 (a role) or 401 (a bad key).
func TestRoleMatrix(t *testing.T) {
	s, _ := rootFields(t)
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixture(t, b.Open, nil)
			kinds := matrixKeys(t, kf)
			checked, mismatches := 0, 0
			mismatch := func(format string, args ...any) {
				mismatches++
				t.Errorf(format, args...)
			}
			for _, def := range []*ast.Definition{s.Query, s.Mutation} {
				for _, f := range def.Fields {
					op := operation(s, def.Name, f)
					field := def.Name + "." + f.Name
					for _, k := range kinds {
						r := kf.gql(t, k.key, op, nil)
						checked++
						refused := r.Status == 401 || r.Status == 403 || r.code() == "FORBIDDEN" || r.code() == "UNAUTHENTICATED"
						switch {
						case k.role == "":
							if r.Status != 401 {
								mismatch("%s with a %s key: %d %+v, want 401", field, k.name, r.Status, r.Errors)
							}
						case k.role == auth.RoleWrite:
							if r.Status != 403 {
								mismatch("%s with a %s key: %d %+v, want 403", field, k.name, r.Status, r.Errors)
							}
						case server.Allowed(field, k.role) == refused:
							mismatch("%s with a %s key: %d %+v; the matrix allows it: %v", field, k.name, r.Status, r.Errors, server.Allowed(field, k.role))
						}
					}
				}
			}
			for _, pattern := range sortedRoutes() {
				method, path, ok := strings.Cut(pattern, " ")
				pol := server.RoutePolicies[pattern]
				if !ok || pol.Public || method == "OPTIONS" {
					continue
				}
				for _, k := range kinds {
					code := routeCall(t, kf, method, path, k.key)
					checked++
					refused := code == 401 || code == 403
					switch {
					case k.role == "":
						if code != 401 {
							mismatch("%s with a %s key: %d, want 401", pattern, k.name, code)
						}
					case pol.Allows(k.role) == refused:
						mismatch("%s with a %s key: %d; the matrix allows it: %v", pattern, k.name, code, pol.Allows(k.role))
					case refused && code != 403:
						mismatch("%s with a %s key: %d, want 403", pattern, k.name, code)
					}
				}
			}
			t.Logf("role matrix: %d checks (%d key kinds), %d mismatches", checked, len(kinds), mismatches)
		})
	}
}

func sortedRoutes() []string {
	var out []string
	for p := range server.RoutePolicies {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// routeCall sends a small request to the route with the key where that
// route's clients put it: Basic auth on ingest routes, a bearer token on
// the others.
func routeCall(t *testing.T, kf *keyFixture, method, path, key string) int {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/json"}
	body := `{"userId":"matrix","event":"x","limit":1}`
	switch {
	case path == "/graphql":
		body = `{"query":"{__typename}"}`
		if method == "GET" {
			path += "?query=" + url.QueryEscape("{__typename}")
		}
	case path == "/v1/import":
		body = `{"source":"m","records":[]}`
	}
	if key != "" {
		// Collection takes Segment's Basic auth; reads and /v1/match a bearer.
		if method == "POST" && strings.HasPrefix(path, "/v1/") && path != "/v1/match" || strings.HasPrefix(path, "/beacon") {
			hdr["Authorization"] = basic(key)
		} else {
			hdr["Authorization"] = "Bearer " + key
		}
	}
	var b []byte
	if method != "GET" {
		b = []byte(body)
	}
	code, _, _ := kf.do(t, method, path, hdr, b)
	return code
}

func basic(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
}

// TestGraphiQLInDevModeOnly: GraphiQL and introspection by reading keys
// are for dev mode; in production only admin keys introspect.
func TestGraphiQLInDevModeOnly(t *testing.T) {
	for _, dev := range []bool{false, true} {
		f := newFixtureWith(t, backends.OpenPebble, func(c *server.Config) { c.Dev = dev })
		code, hdr, body := f.do(t, "GET", "/graphql", map[string]string{"Accept": "text/html"}, nil)
		page := code == 200 && strings.Contains(hdr.Get("Content-Type"), "text/html") && strings.Contains(strings.ToLower(body), "graphiql")
		if page != dev {
			t.Errorf("dev=%v: GraphiQL page %d %s", dev, code, hdr.Get("Content-Type"))
		}
		r := f.gql(t, readKey, `{__schema{queryType{name}}}`, nil)
		if introspects := len(r.Errors) == 0; introspects != dev {
			t.Errorf("dev=%v: a read key's introspection: %+v", dev, r.Errors)
		}
		if r := f.gql(t, readKey, `{__typename}`, nil); len(r.Errors) > 0 {
			t.Errorf("dev=%v: __typename: %+v", dev, r.Errors)
		}
	}
}
