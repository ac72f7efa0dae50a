package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	coderws "github.com/coder/websocket"
)

type gqlResponse struct {
	Status int
	Data   map[string]any
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a query with the read key (or another key).
func (f *fixture) gql(t *testing.T, key, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return f.gqlBody(t, key, string(body))
}

// gqlBody posts a raw /graphql body with the key ("" for none).
func (f *fixture) gqlBody(t *testing.T, key, body string) gqlResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("response is not JSON: %d %s", resp.StatusCode, data)
	}
	out.Status = resp.StatusCode
	return out
}

// must runs a query that must succeed and returns its data.
func (f *fixture) must(t *testing.T, query string, vars map[string]any) map[string]any {
	t.Helper()
	return f.mustAs(t, readKey, query, vars)
}

// mustAs runs a query or mutation with the key; it must succeed.
func (f *fixture) mustAs(t *testing.T, key, query string, vars map[string]any) map[string]any {
	t.Helper()
	r := f.gql(t, key, query, vars)
	if len(r.Errors) > 0 || r.Status != 200 {
		t.Fatalf("query failed: %d %+v", r.Status, r.Errors)
	}
	return r.Data
}

func (f *fixture) send(t *testing.T, path, body string) {
	t.Helper()
	if code, resp := f.post(t, path, writeKey, body); code != 200 {
		t.Fatalf("%s: %d %s", path, code, resp)
	}
}

// get walks decoded JSON by a dotted path ("profile.identifiers.0.value").
func get(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, _ := strconv.Atoi(p)
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func TestGraphQLProfile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/page", `{"anonymousId":"anon-1","name":"Home","messageId":"g1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/track", `{"anonymousId":"anon-1","event":"Viewed","messageId":"g2","timestamp":"2026-01-01T10:01:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"u-1","traits":{"firstName":"Ann","lastName":"Lee","phone":"(415) 555-0134","address":{"city":"Oslo"}},"messageId":"g3","timestamp":"2026-01-01T10:02:00Z"}`)
		older := f.must(t, `{lookup(type:"anonymous_id", value:"anon-1"){id}}`, nil)["lookup"].(map[string]any)["id"].(string)
		younger := f.must(t, `{lookup(type:"user_id", value:"u-1"){id}}`, nil)["lookup"].(map[string]any)["id"].(string)
		f.send(t, "/v1/identify", `{"userId":"u-1","anonymousId":"anon-1","traits":{"email":"ann@corp.io"},"messageId":"g4","timestamp":"2026-01-01T10:03:00Z"}`)

		q := `query($id: ID!) { profile(id: $id) {
			id redirectedFrom name email phone mergedIds traits
			identifiers { type value sources hub profile { id } }
			traitSources { path source }
			events(first: 2) { edges { cursor node { type name messageId } } pageInfo { hasNextPage endCursor } }
			graph { nodes { value } edges { a { value } b { value } kind status score evidence { count } } }
			history { kind survivor absorbed messageId edge { type value } }
		} }`
		d := f.must(t, q, map[string]any{"id": younger})["profile"]
		if get(d, "id") != older || get(d, "redirectedFrom") != younger {
			t.Errorf("absorbed ID: id %v redirectedFrom %v, want %s from %s", get(d, "id"), get(d, "redirectedFrom"), older, younger)
		}
		if get(d, "name") != "Ann Lee" || get(d, "email") != "ann@corp.io" || get(d, "phone") != "(415) 555-0134" || get(d, "traits.address.city") != "Oslo" {
			t.Errorf("name/email/phone/traits = %v %v %v %v", get(d, "name"), get(d, "email"), get(d, "phone"), get(d, "traits"))
		}
		if got := fmt.Sprint(get(d, "mergedIds")); got != "["+younger+"]" {
			t.Errorf("mergedIds = %s", got)
		}
		if n := len(get(d, "identifiers").([]any)); n != 4 || get(d, "identifiers.0.profile.id") != older {
			t.Errorf("identifiers = %v", get(d, "identifiers"))
		}
		if get(d, "events.edges.0.node.messageId") != "g4" || get(d, "events.edges.1.node.messageId") != "g3" || get(d, "events.pageInfo.hasNextPage") != true {
			t.Errorf("first events page = %v", get(d, "events"))
		}
		next := f.must(t, `query($id: ID!, $after: String) { profile(id: $id) { events(first: 5, after: $after) { edges { node { messageId } } pageInfo { hasNextPage } } } }`,
			map[string]any{"id": older, "after": get(d, "events.pageInfo.endCursor")})
		if got := fmt.Sprint(get(next, "profile.events.edges")); got != "[map[node:map[messageId:g2]] map[node:map[messageId:g1]]]" || get(next, "profile.events.pageInfo.hasNextPage") != false {
			t.Errorf("second events page = %s", got)
		}
		typed := f.must(t, `query($id: ID!) { profile(id: $id) { events(types: ["page"], until: "2026-01-01T10:02:30Z") { edges { node { messageId } } } } }`, map[string]any{"id": older})
		if got := fmt.Sprint(get(typed, "profile.events.edges")); got != "[map[node:map[messageId:g1]]]" {
			t.Errorf("events(types: page, until) = %s", got)
		}
		if n := len(get(d, "graph.edges").([]any)); n != 4 || get(d, "graph.edges.0.status") != "ACCEPTED" || get(d, "graph.edges.0.kind") != "EXACT" {
			t.Errorf("graph = %v", get(d, "graph"))
		}
		if get(d, "history.0.kind") != "MERGE" || get(d, "history.0.absorbed") != younger || get(d, "history.0.messageId") != "g4" {
			t.Errorf("history = %v", get(d, "history"))
		}
		// lookup normalises as ingestion does.
		l := f.must(t, `{lookup(type:"phone", value:"+1 415-555-0134"){id redirectedFrom}}`, nil)
		if get(l, "lookup.id") != older || get(l, "lookup.redirectedFrom") != nil {
			t.Errorf("lookup by phone = %v", l)
		}
		id := f.must(t, `{identifier(type:"email", value:" ANN@corp.io"){value edges{status} profile{id}}}`, nil)
		if get(id, "identifier.value") != "ann@corp.io" || get(id, "identifier.profile.id") != older || len(get(id, "identifier.edges").([]any)) != 2 {
			t.Errorf("identifier = %v", id)
		}
	})
}

func TestGraphQLProfilesAndSearch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		var batch []string
		for i := range 25 {
			batch = append(batch, fmt.Sprintf(`{"type":"identify","userId":"user-%02d","traits":{"name":"Person %02d","email":"p%02d@corp.io"},"messageId":"s%d"}`, i, i, i, i))
		}
		f.send(t, "/v1/batch", `{"batch":[`+strings.Join(batch, ",")+`]}`)
		seen := map[string]bool{}
		var after any
		for page := 0; page < 5; page++ {
			d := f.must(t, `query($after: String) { profiles(first: 10, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after})
			for _, e := range get(d, "profiles.edges").([]any) {
				id := get(e, "node.id").(string)
				if seen[id] {
					t.Fatalf("profile %s on two pages", id)
				}
				seen[id] = true
			}
			if get(d, "profiles.pageInfo.hasNextPage") != true {
				break
			}
			after = get(d, "profiles.pageInfo.endCursor")
		}
		if len(seen) != 25 {
			t.Errorf("paged through %d profiles, want 25", len(seen))
		}
		s := f.must(t, `{search(query:"P07", first: 5){field value exact profile{id email}}}`, nil)
		if get(s, "search.0.value") != "p07@corp.io" || get(s, "search.0.profile.email") != "p07@corp.io" {
			t.Errorf("search p07 = %v", s)
		}
		s = f.must(t, `{search(query:"person 1", first: 20){value}}`, nil)
		if n := len(get(s, "search").([]any)); n != 10 {
			t.Errorf("search 'person 1' found %d, want 10 (Person 10–19)", n)
		}
	})
}

func TestGraphQLBadInput(t *testing.T) {
	deep := `{profile(id:"x"){` + strings.Repeat("identifiers{profile{", 6) + "id" + strings.Repeat("}}", 6) + "}}"
	aliases := "{" + strings.Repeat("a: profiles(first: 100) { edges { node { id identifiers { value } } } } ", 1) + "}"
	manyAliases := "{"
	for i := range 200 {
		manyAliases += fmt.Sprintf("a%d: profiles(first: 100) { edges { node { id } } } ", i)
	}
	manyAliases += "}"
	cases := []struct {
		name, key, query string
		status           int
		code             string
	}{
		{"unknown ID", readKey, `{profile(id:"p_nope"){id}}`, 200, "NOT_FOUND"},
		{"unknown identifier", readKey, `{lookup(type:"email", value:"nobody@corp.io"){id}}`, 200, "NOT_FOUND"},
		{"invalid value", readKey, `{lookup(type:"phone", value:"call me"){id}}`, 200, "BAD_USER_INPUT"},
		{"bad type", readKey, `{lookup(type:"Bad Type", value:"x"){id}}`, 200, "BAD_USER_INPUT"},
		{"malformed cursor", readKey, `{profiles(after:"!!"){edges{cursor}}}`, 200, "BAD_USER_INPUT"},
		{"cursor of another connection", readKey, `{profiles(after:"ZTox"){edges{cursor}}}`, 200, "BAD_USER_INPUT"},
		{"negative first", readKey, `{profiles(first:-1){edges{cursor}}}`, 200, "BAD_USER_INPUT"},
		{"huge first", readKey, `{profiles(first:100000){edges{cursor}}}`, 200, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"first over the page size", readKey, `{profiles(first:101){edges{cursor}}}`, 200, "BAD_USER_INPUT"},
		{"short search", readKey, `{search(query:"a"){value}}`, 200, "BAD_USER_INPUT"},
		{"too deep", readKey, deep, 200, "DEPTH_LIMIT_EXCEEDED"},
		{"one costly alias is fine", readKey, aliases, 200, ""},
		{"absurd aliases", readKey, manyAliases, 200, "ALIAS_LIMIT_EXCEEDED"},
		{"syntax error", readKey, `{profile(id:`, 422, "GRAPHQL_PARSE_FAILED"},
		{"unknown field", readKey, `{profile(id:"x"){shoeSize}}`, 422, "GRAPHQL_VALIDATION_FAILED"},
		{"no key", "", `{profiles{edges{cursor}}}`, 401, "UNAUTHENTICATED"},
		{"wrong key", "nope", `{profiles{edges{cursor}}}`, 401, "UNAUTHENTICATED"},
		{"write key cannot read", writeKey, `{profiles{edges{cursor}}}`, 403, "FORBIDDEN"},
	}
	forEachBackend(t, func(t *testing.T, f *fixture) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := f.gql(t, c.key, c.query, nil)
				if r.Status != c.status || r.code() != c.code {
					t.Errorf("got %d %s %+v, want %d %s", r.Status, r.code(), r.Errors, c.status, c.code)
				}
				for _, e := range r.Errors {
					if strings.Contains(e.Message, "panic") || strings.Contains(e.Message, ".go:") {
						t.Errorf("error leaks internals: %s", e.Message)
					}
				}
			})
		}
		// Invalid JSON and an oversized body are refused before execution.
		for _, body := range []string{`{"query": `, `{"query":"{profiles{edges{cursor}}}","pad":"` + strings.Repeat("x", 300<<10) + `"}`} {
			if r := f.gqlBody(t, readKey, body); r.Status < 400 || r.Status >= 500 {
				t.Errorf("body of %d bytes: status %d, want a 4xx", len(body), r.Status)
			}
		}
	})
}

var storeCallsRE = regexp.MustCompile(`(?m)^idgraph_store_calls_total\{[^}]*\} (\d+)`)

func (f *fixture) storeCalls(t *testing.T) int {
	t.Helper()
	n := 0
	for _, m := range storeCallsRE.FindAllStringSubmatch(f.metrics(t), -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// quietStoreCalls waits until nothing in the background (the engines
// working through what the last ingest left them) calls the store, then
// returns the store calls so far: a count taken mid-flight would charge
// their calls to the query measured next.
func (f *fixture) quietStoreCalls(t *testing.T) int {
	t.Helper()
	n := f.storeCalls(t)
	for range 100 {
		time.Sleep(100 * time.Millisecond)
		m := f.storeCalls(t)
		if m == n {
			return n
		}
		n = m
	}
	t.Fatalf("the store is still called in the background after 10 s (%d calls)", n)
	return n
}

// TestGraphQLStoreCallsBounded: a page of profiles with their identifiers
// and events costs the same number of store calls whatever its size.
func TestGraphQLStoreCallsBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		var batch []string
		for i := range 120 {
			batch = append(batch, fmt.Sprintf(`{"type":"track","event":"E","anonymousId":"a%d","userId":"u%d","messageId":"c%d"}`, i, i, i))
		}
		f.send(t, "/v1/batch", `{"batch":[`+strings.Join(batch, ",")+`]}`)
		calls := map[int]int{}
		for _, n := range []int{5, 100} {
			before := f.quietStoreCalls(t)
			d := f.must(t, `query($n: Int) { profiles(first: $n) { edges { node { id identifiers { value } events(first: 5) { edges { node { id } } } } } } }`, map[string]any{"n": n})
			if got := len(get(d, "profiles.edges").([]any)); got != n {
				t.Fatalf("page of %d has %d profiles", n, got)
			}
			calls[n] = f.storeCalls(t) - before
		}
		if calls[100] != calls[5] || calls[100] > 5 {
			t.Errorf("store calls: %d for 5 profiles, %d for 100; want the same small number", calls[5], calls[100])
		}
	})
}

// TestGraphQLSubscription subscribes over graphql-transport-ws, sends a
// track call and an identify that merges the profile away, and receives both.
func TestGraphQLSubscription(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"anonymousId":"sub-anon","messageId":"w0"}`)
		f.send(t, "/v1/identify", `{"userId":"sub-1","messageId":"w1"}`)
		id := get(f.must(t, `{lookup(type:"user_id", value:"sub-1"){id}}`, nil), "lookup.id").(string)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/graphql", &coderws.DialOptions{Subprotocols: []string{"graphql-transport-ws"}}); err != nil {
			t.Fatal(err)
		}
		c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/graphql", &coderws.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		write := func(v any) {
			data, _ := json.Marshal(v)
			if err := c.Write(ctx, coderws.MessageText, data); err != nil {
				t.Fatal(err)
			}
		}
		read := func() map[string]any {
			_, data, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.Unmarshal(data, &m)
			return m
		}
		write(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + readKey}})
		if m := read(); m["type"] != "connection_ack" {
			t.Fatalf("connection_init answered %v", m)
		}
		write(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
			"query": `subscription($id: ID!) { profileChanged(id: $id) { profileId kind mergedInto profile { id identifiers { value } } } }`, "variables": map[string]any{"id": id}}})
		time.Sleep(200 * time.Millisecond) // let the subscription start
		f.send(t, "/v1/track", `{"userId":"sub-1","event":"Clicked","messageId":"w2"}`)
		next := func() map[string]any {
			for {
				m := read()
				if m["type"] == "next" {
					return get(m, "payload.data.profileChanged").(map[string]any)
				}
				if m["type"] == "error" || m["type"] == "complete" {
					t.Fatalf("subscription ended: %v", m)
				}
			}
		}
		if m := next(); m["kind"] != "UPDATED" || m["profileId"] != id {
			t.Errorf("after a track call: %v", m)
		}
		// The anonymous profile is older: this one is absorbed into it.
		f.send(t, "/v1/identify", `{"userId":"sub-1","anonymousId":"sub-anon","messageId":"w3"}`)
		m := next()
		if m["kind"] != "ABSORBED" || m["mergedInto"] == nil || get(m, "profile.id") != m["mergedInto"] {
			t.Errorf("after the merge: %v", m)
		}
		if m := read(); m["type"] != "complete" {
			t.Errorf("after absorption the subscription should complete: %v", m)
		}
	})
}

func TestGraphQLWebsocketNeedsKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/graphql", &coderws.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.Write(ctx, coderws.MessageText, []byte(`{"type":"connection_init","payload":{"Authorization":"Bearer `+writeKey+`"}}`))
		_, data, err := c.Read(ctx)
		if err == nil && strings.Contains(string(data), "connection_ack") {
			t.Errorf("a write key opened a subscription connection: %s", data)
		}
	})
}

func TestGraphQLTransportsAndPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"get-1","messageId":"t1"}`)
		do := func(method, url, body string, header map[string]string) (int, http.Header, string) {
			t.Helper()
			return f.do(t, method, strings.TrimPrefix(url, f.url), header, []byte(body))
		}
		auth := map[string]string{"Authorization": "Bearer " + readKey}
		// GET with the query in the URL.
		code, _, body := do("GET", f.url+`/graphql?query=`+urlQuery(`{lookup(type:"user_id",value:"get-1"){id}}`), "", auth)
		if code != 200 || !strings.Contains(body, `"lookup":{"id":"p_`) {
			t.Errorf("GET query: %d %s", code, body)
		}
		// GraphiQL only in dev mode (issue 14): TestGraphiQLInDevModeOnly.
		code, _, body = do("GET", f.url+"/graphql", "", map[string]string{"Accept": "text/html"})
		if code != 404 || strings.Contains(strings.ToLower(body), "<html") {
			t.Errorf("GraphiQL page in production mode: %d %s", code, body)
		}
		// Automatic persisted queries: the hash alone is refused until the
		// query has been sent once with it.
		q := `{lookup(type:"user_id",value:"get-1"){id}}`
		ext := `"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + sha256Hex(q) + `"}}`
		hdrs := map[string]string{"Authorization": "Bearer " + readKey, "Content-Type": "application/json"}
		if _, _, body := do("POST", f.url+"/graphql", `{`+ext+`}`, hdrs); !strings.Contains(body, "PERSISTED_QUERY_NOT_FOUND") {
			t.Errorf("unknown persisted query: %s", body)
		}
		if _, _, body := do("POST", f.url+"/graphql", `{"query":`+strconv.Quote(q)+`,`+ext+`}`, hdrs); !strings.Contains(body, `"id":"p_`) {
			t.Errorf("registering a persisted query: %s", body)
		}
		if _, _, body := do("POST", f.url+"/graphql", `{`+ext+`}`, hdrs); !strings.Contains(body, `"id":"p_`) {
			t.Errorf("persisted query by hash: %s", body)
		}
		// CORS: only listed origins get the header (none are listed here).
		code, hdr, _ := do("OPTIONS", f.url+"/graphql", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
		if hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("an unlisted origin was allowed: %d %v", code, hdr)
		}
		// Probes.
		for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
			if code, _, body := do("GET", f.url+path, "", nil); code != want {
				t.Errorf("%s: %d %s", path, code, body)
			}
		}
		_, _, metrics := do("GET", f.url+"/metrics", "", nil)
		for _, m := range []string{"idgraph_http_requests_total", "idgraph_http_request_duration_seconds", "idgraph_graphql_errors_total", "idgraph_profile_cache_hits_total", "idgraph_store_calls_total"} {
			if !strings.Contains(metrics, m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	})
}

func urlQuery(q string) string { return url.QueryEscape(q) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A websocket that never sends connection_init is dropped after the
// init timeout: it would otherwise hold a connection, and the server's
// Close, which waits for GraphQL requests, for ever.
func TestWebsocketWithoutInitDropped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		idle, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/graphql", &coderws.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		defer idle.CloseNow()
		start := time.Now()
		for {
			if _, _, err := idle.Read(ctx); err != nil {
				if ctx.Err() != nil {
					t.Fatal("a websocket with no connection_init was never dropped")
				}
				break
			}
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("dropped after %v", d)
		}
	})
}
