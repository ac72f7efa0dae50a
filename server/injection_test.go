package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// injections are payloads aimed at the layers below: Cypher (idgraph's
// Neo4j queries), OGNL, MVEL and Spring expressions (Apache Unomi's worst
// CVEs), GraphQL, header splitting (CRLF), NUL, and long Unicode.
var injections = []string{
	`x'}) MATCH (n) DETACH DELETE n //`,
	`" }) MATCH (n) SET n.pwned = true RETURN n //`,
	"`) CALL db.labels() YIELD label RETURN label //",
	`$value`,
	`${@java.lang.Runtime@getRuntime().exec("id")}`,
	`%{(#_memberAccess=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(@java.lang.Runtime@getRuntime().exec('id'))}`,
	`script::Runtime r = Runtime.getRuntime(); r.exec("touch /tmp/pwned");`,
	`#{T(java.lang.Runtime).getRuntime().exec('id')}`,
	`{{7*7}}`,
	`") { id } __schema { types { name } } q: lookup(type: "x", value: "`,
	"a\r\nSet-Cookie: session=stolen\r\n\r\n<script>alert(1)</script>",
	"nul\x00byte",
	"\u202eevil\u200b\ufeff" + strings.Repeat("é𝄞中", 1000), // 9 KB of Unicode, three times in an identify: under the 32 KB message limit
}

// TestInjectionCorpus sends every payload on every backend as an
// identifier value, a trait, an event name, an event property and a page
// URL through ingest, and as a GraphQL argument, both as a variable and
// written into the query; then 1 MB of Unicode. Each is stored verbatim or
// refused naming its field, never a 5xx (the fixture fails on any panic);
// GraphQL answers never an internal error; and the graph changes only as
// expected: one profile per accepted person, the sentinel untouched.
func TestInjectionCorpus(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		if code, body := f.post(t, "/v1/identify", writeKey, `{"userId":"sentinel","traits":{"name":"Sentinel"}}`); code != 200 {
			t.Fatalf("sentinel: %d %s", code, body)
		}
		accepted, refused := map[string]string{}, []string{}
		for i, p := range injections {
			v, _ := json.Marshal(p)
			user := fmt.Sprintf("inj-%d", i)
			for _, m := range []struct{ path, body string }{
				{"/v1/identify", fmt.Sprintf(`{"userId":%q,"anonymousId":%s,"traits":{"name":%s},"context":{"page":{"url":%s}}}`, user, v, v, v)},
				{"/v1/track", fmt.Sprintf(`{"userId":%q,"event":%s,"properties":{"p":%s}}`, user, v, v)},
			} {
				code, body := f.post(t, m.path, writeKey, m.body)
				switch {
				case code >= 500:
					t.Errorf("payload %d on %s: %d %s", i, m.path, code, body)
				case code == 200 && m.path == "/v1/identify":
					accepted[user] = p
					if strings.Contains(body, "rejected") {
						refused = append(refused, fmt.Sprintf("payload %d on %s: stored, %s", i, m.path, strings.TrimSpace(body)))
					}
				case code != 200:
					refused = append(refused, fmt.Sprintf("payload %d on %s: %d %s", i, m.path, code, strings.TrimSpace(body)))
				}
			}
			for _, q := range []struct {
				query string
				vars  map[string]any
			}{
				{`query($v: String!) { lookup(type: "anonymous_id", value: $v) { id } search(query: $v) { __typename } }`, map[string]any{"v": p}},
				{fmt.Sprintf(`{ lookup(type: "anonymous_id", value: %s) { id } identifier(type: %s, value: "x") { key } }`, v, v), nil},
			} {
				r := f.gql(t, readKey, q.query, q.vars)
				if r.Status >= 500 {
					t.Errorf("payload %d in GraphQL: %d", i, r.Status)
				}
				for _, e := range r.Errors {
					if e.Extensions["code"] == "INTERNAL" || e.Message == "internal error" {
						t.Errorf("payload %d in GraphQL: internal error", i)
					}
				}
				if r.Data["__schema"] != nil {
					t.Errorf("payload %d in GraphQL introspected", i)
				}
			}
		}
		huge, _ := json.Marshal(strings.Repeat("é𝄞中\u202e", 1<<20/11))
		for _, m := range []struct{ path, body string }{
			{"/v1/identify", `{"userId":"huge","traits":{"name":` + string(huge) + `}}`},
			{"/graphql", `{"query":"query($v: String!){ lookup(type: \"email\", value: $v) { id } }","variables":{"v":` + string(huge) + `}}`},
		} {
			var code int
			var body string
			if m.path == "/graphql" {
				code, body = f.postBearer(t, m.path, readKey, m.body)
			} else {
				code, body = f.post(t, m.path, writeKey, m.body)
			}
			if code != 413 {
				t.Errorf("1 MB of Unicode on %s: %d %.200s; want 413", m.path, code, body)
			}
		}

		got := f.export(t)
		byUser := map[string]map[string]any{}
		for _, p := range got {
			for _, k := range p.Identifiers {
				if k.Type == "user_id" {
					byUser[k.Value] = p.Traits
				}
			}
		}
		if tr := byUser["sentinel"]; tr == nil || tr["name"] != "Sentinel" {
			t.Errorf("the sentinel changed: %v", tr)
		}
		if len(got) != len(accepted)+1 {
			t.Errorf("%d profiles; want the sentinel and %d accepted people", len(got), len(accepted))
		}
		for user, p := range accepted {
			if tr := byUser[user]; tr == nil || tr["name"] != p {
				t.Errorf("%s's name is not stored verbatim: %q", user, tr["name"])
			}
		}
		t.Logf("%d payloads × 2 messages + 2 GraphQL queries each: %d identifies accepted and stored verbatim, %d messages refused or with a part refused %q, 0 5xx; 1 MB of Unicode refused with 413 on ingest and GraphQL",
			len(injections), len(accepted), len(refused), refused)
	})
}
