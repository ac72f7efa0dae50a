package server_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// One message with an absurd time used to be stored unreadable: every
// later message for the identifier answered 500 and export broke off.
// Now the time is replaced by receivedAt and reported, and everything
// around it stays readable.
func TestHostileTimestampsDoNotPoison(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		stamps := []string{`"timestamp":"9223372036854775807"`, `"timestamp":"-1"`, `"timestamp":"-9223372036854775808"`,
			`"timestamp":"0001-01-01T00:00:00Z"`, `"originalTimestamp":"9999-12-31T23:59:59Z"`,
			`"timestamp":"2020-01-01T00:00:00Z","sentAt":"9223372036854775807"`}
		for i, ts := range stamps {
			u := fmt.Sprintf("victim%d", i)
			code, body := f.post(t, "/v1/identify", writeKey, `{"userId":"`+u+`",`+ts+`}`)
			if code != 200 || !strings.Contains(body, `"rejected":[{"field":"`) || !strings.Contains(body, "receivedAt used instead") {
				t.Errorf("identify with %s: %d %s, want 200 naming the field in rejected", ts, code, body)
			}
			f.send(t, "/v1/track", `{"userId":"`+u+`","event":"x"}`)
			data := f.must(t, `query($u: String!) { lookup(type: "user_id", value: $u) { id events(first: 5) { edges { node { type timestamp } } } } }`, map[string]any{"u": u})
			if n := len(get(data, "lookup.events.edges").([]any)); n != 2 {
				t.Errorf("%s: %d events, want 2", u, n)
			}
		}
		// The batch envelope's sentAt applies to its messages.
		code, body := f.post(t, "/v1/batch", writeKey, `{"sentAt":"-9223372036854775808","batch":[{"type":"track","userId":"victim0","event":"y","timestamp":"2026-01-01T00:00:00Z"}]}`)
		if code != 200 || !strings.Contains(body, `"field":"timestamp"`) {
			t.Errorf("batch with an absurd sentAt: %d %s", code, body)
		}
		if got := len(f.export(t)); got != len(stamps) {
			t.Errorf("exported %d profiles, want %d", got, len(stamps))
		}
		data := f.must(t, `{ search(query: "victim") { value } }`, nil)
		if n := len(data["search"].([]any)); n != len(stamps) {
			t.Errorf("search found %d, want %d", n, len(stamps))
		}
	})
}

// Deep JSON is refused by a byte scan before any decoder runs, on every
// JSON body path.
func TestDeepJSONRefused(t *testing.T) {
	f := newFixture(t, backends.OpenPebble)
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	record := func(traits string) string {
		return `{"source":"crm","records":[{"line":2,"identifiers":{"email":"a@corp.io"},"traits":{"x":` + traits + `}}]}`
	}
	// As large as the import limit allows: 4 MB of nesting.
	huge := deep((server.MaxImportBytes - len(record(""))) / 2)
	for _, c := range []struct{ name, path, body string }{
		{"message", "/v1/track", `{"userId":"u","event":"e","properties":{"x":` + deep(10000) + `}}`},
		{"batch", "/v1/batch", `{"batch":[{"type":"track","userId":"u","event":"e","properties":` + deep(200000) + `}]}`},
		{"import 20,000 deep", "/v1/import", record(deep(20000))},
		{"import 4 MB", "/v1/import", record(huge)},
		{"match", "/v1/match", `{"limit":1,"after":` + deep(10000) + `}`},
	} {
		code, body := f.post(t, c.path, writeKey, c.body)
		if c.path == "/v1/match" {
			code, body = f.postBearer(t, c.path, stewKey, c.body)
		}
		if code != 400 || !strings.Contains(body, "nested more than 64 levels deep") {
			t.Errorf("%s (%d bytes): %d %.200s, want 400 naming the limit", c.name, len(c.body), code, body)
		}
	}
	// A payload as deep as the limit is stored.
	f.send(t, "/v1/track", `{"userId":"u","event":"e","properties":{"x":`+deep(62)+`}}`)

	r := f.gqlBody(t, readKey, `{"query":"query($v: JSON) { profiles(first: 1) { edges { cursor } } }","variables":{"v":`+deep(20000)+`}}`)
	if r.Status != 400 || r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "64") {
		t.Errorf("GraphQL POST with deep variables: %d %s %+v", r.Status, r.code(), r.Errors)
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/graphql?query="+urlQuery(`{profiles{edges{cursor}}}`)+"&variables="+urlQuery(`{"v":`+deep(5000)+`}`), nil)
	req.Header.Set("Authorization", "Bearer "+readKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(data), "variables: is nested more than 64") {
		t.Errorf("GraphQL GET with deep variables: %d %.200s", resp.StatusCode, data)
	}
}

// A body nested too deep is refused as it arrives, on every JSON body path:
// the answer comes while the client is still sending (the body stalls
// after its first bytes of a declared 4 MB until the answer is in), names
// the limit, and closes the connection rather than draining it. Gzip
// bodies are scanned as they inflate.
func TestDeepJSONRefusedWhileStreaming(t *testing.T) {
	f := newFixture(t, backends.OpenPebble)
	opening := strings.Repeat("[", 100)
	write := func(r *http.Request) { r.SetBasicAuth(writeKey, "") }
	read := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+readKey) }
	for _, c := range []struct {
		name, path, prefix string
		gzip               bool
		auth               func(*http.Request)
	}{
		{"message", "/v1/track", `{"userId":"u","event":"e","properties":{"x":`, false, write},
		{"short path", "/v1/t", `{"userId":"u","event":"e","properties":{"x":`, false, write},
		{"batch", "/v1/batch", `{"batch":[{"type":"track","userId":"u","event":"e","properties":`, false, write},
		{"short batch path, gzip", "/v1/b", `{"batch":[{"type":"track","userId":"u","event":"e","properties":`, true, write},
		{"import", "/v1/import", `{"source":"crm","records":[{"line":2,"identifiers":{"email":"a@corp.io"},"traits":{"x":`, false, write},
		{"import, gzip", "/v1/import", `{"source":"crm","records":[{"line":2,"identifiers":{"email":"a@corp.io"},"traits":{"x":`, true, write},
		{"GraphQL variables", "/graphql", `{"query":"query($v: JSON) { profiles(first: 1) { edges { cursor } } }","variables":{"v":`, false, read},
		{"GraphQL query string then variables", "/graphql", `{"query":"{ profiles(first: 1) { edges { cursor } } } # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","variables":{"v":`, false, read},
	} {
		t.Run(c.name, func(t *testing.T) {
			var first bytes.Buffer
			var zw *gzip.Writer
			if c.gzip {
				zw = gzip.NewWriter(&first)
			}
			w := io.Writer(&first)
			if zw != nil {
				w = zw
			}
			io.WriteString(w, c.prefix+opening)
			if zw != nil {
				zw.Flush() // the server can inflate what it has so far
			}
			body := &stalledBody{first: first.Bytes(), answered: make(chan struct{})}
			defer close(body.answered)
			req, err := http.NewRequest(http.MethodPost, f.url+c.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 4 << 20
			if c.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			c.auth(req)
			client := &http.Client{Timeout: 20 * time.Second} // fails, rather than hangs, if the server waits for the rest
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("no answer before the body's end: %v", err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(data), "JSON is nested more than 64 levels deep") {
				t.Errorf("%d %.200s, want 400 naming the limit", resp.StatusCode, data)
			}
			if !resp.Close {
				t.Errorf("the connection is kept open (headers %v): the server would drain the rest", resp.Header)
			}
			if n := body.sent.Load(); n != int64(len(first.Bytes())) {
				t.Errorf("sent %d bytes, want only the first %d", n, len(first.Bytes()))
			}
		})
	}
	// Brackets and escaped quotes inside strings do not count, plain or gzip.
	props := `{"note":"` + strings.Repeat(`[{\"`, 500) + `","tags":["]]]}}}"]}`
	f.send(t, "/v1/track", `{"userId":"brackets","event":"e","properties":`+props+`}`)
	req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/track", bytes.NewReader(gz(t, `{"userId":"brackets","event":"gz","properties":`+props+`}`)))
	req.Header.Set("Content-Encoding", "gzip")
	write(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("gzip body with brackets in strings: %d %s", resp.StatusCode, data)
	}
	got := f.must(t, `{ lookup(type: "user_id", value: "brackets") { events(first: 5) { edges { node { properties } } } } }`, nil)
	if edges := get(got, "lookup.events.edges").([]any); len(edges) != 2 {
		t.Errorf("%d events stored, want 2", len(edges))
	}
}

// stalledBody sends its first bytes, then nothing until the answer is in.
type stalledBody struct {
	first    []byte
	sent     atomic.Int64
	answered chan struct{}
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if int(b.sent.Load()) < len(b.first) {
		n := copy(p, b.first[b.sent.Load():])
		b.sent.Add(int64(n))
		return n, nil
	}
	<-b.answered
	return 0, io.ErrUnexpectedEOF
}

// postBearer posts body with the key as a bearer token.
func (f *fixture) postBearer(t *testing.T, path, key, body string) (int, string) {
	t.Helper()
	return f.postWith(t, path, body, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) })
}

// postWith posts body after auth has set the request's credentials.
func (f *fixture) postWith(t *testing.T, path, body string, auth func(*http.Request)) (int, string) {
	t.Helper()
	code, data, _ := f.postHeaders(t, path, body, auth)
	return code, data
}

// postHeaders is postWith that also returns the answer's headers.
func (f *fixture) postHeaders(t *testing.T, path, body string, auth func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

// TestGraphQLListsCostTheirSize: a list costs what it may hold, so the
// alias bomb of issue 11 (hundreds of aliases of one large profile's
// graph) is refused before it runs, and one alias still answers whole.
func TestGraphQLListsCostTheirSize(t *testing.T) {
	// Aliases past DefaultMaxAliases, to reach the cost.
	f := newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) { cfg.MaxAliases = 1000 })
	var batch strings.Builder
	batch.WriteString(`{"batch":[`)
	for i := range 1000 {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"type":"page","userId":"big","anonymousId":"a-%d"}`, i)
	}
	batch.WriteString(`]}`)
	f.send(t, "/v1/batch", batch.String())
	one := f.must(t, `{ lookup(type: "user_id", value: "big") { graph { edges { id } } } }`, nil)
	if n := len(get(one, "lookup.graph.edges").([]any)); n != 1000 {
		t.Fatalf("one alias: %d edges, want 1000", n)
	}
	var bomb strings.Builder
	bomb.WriteString("{")
	for i := range 200 {
		fmt.Fprintf(&bomb, `a%d: lookup(type: "user_id", value: "big") { graph { edges { id } } } `, i)
	}
	bomb.WriteString("}")
	if r := f.gql(t, readKey, bomb.String(), nil); r.code() != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("200 aliases of a 1,000-identifier graph: %s %+v, want COMPLEXITY_LIMIT_EXCEEDED", r.code(), r.Errors)
	}
}

// TestGraphQLQuerySizeBounded: repeated fields are refused before
// validation, whose overlapping-fields check is quadratic in them.
func TestGraphQLQuerySizeBounded(t *testing.T) {
	f := newFixture(t, backends.OpenPebble)
	f.send(t, "/v1/identify", `{"userId":"u"}`)
	for _, n := range []int{1001, 20000} {
		q := `{ lookup(type: "user_id", value: "u") { ` + strings.Repeat("id ", n) + `} }`
		r := f.gql(t, readKey, q, nil)
		if c := r.code(); c != "SELECTION_LIMIT_EXCEEDED" && c != "TOKEN_LIMIT_EXCEEDED" {
			t.Errorf("%d repeated fields: %s %+v, want a size limit", n, c, r.Errors)
		}
	}
	if r := f.gql(t, readKey, `{ lookup(type: "user_id", value: "u") { `+strings.Repeat("id ", 100)+`} }`, nil); len(r.Errors) > 0 {
		t.Errorf("100 repeated fields: %+v", r.Errors)
	}
}

// TestMatchNeedsStewardKey: the write key ships in web pages, so it must
// not read (a dry run lists emails) or merge through /v1/match.
func TestMatchNeedsStewardKey(t *testing.T) {
	f := newFixture(t, backends.OpenPebble) // matching off
	body := `{"limit":10}`
	for _, c := range []struct {
		name string
		code int
		send func() (int, string)
	}{
		{"no key", 401, func() (int, string) { return f.post(t, "/v1/match", "-", body) }},
		{"write key", 401, func() (int, string) { return f.post(t, "/v1/match", writeKey, body) }},
		{"write key as bearer", 403, func() (int, string) { return f.postBearer(t, "/v1/match", writeKey, body) }},
		{"read key", 403, func() (int, string) { return f.postBearer(t, "/v1/match", readKey, body) }},
		{"steward key, matching off", 409, func() (int, string) { return f.postBearer(t, "/v1/match", stewKey, body) }},
	} {
		if code, resp := c.send(); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, resp, c.code)
		}
	}
}
