package server_test

import (
	"fmt"
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
