package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

const (
	writeKey = "wk_test"
	readKey  = "rk_test"
	stewKey  = "sk_test"
)

type fixture struct {
	url   string
	store graph.Store
}

func newFixture(t *testing.T, open storetest.Opener, options ...func(*graph.Stitcher)) *fixture {
	t.Helper()
	return newFixtureWith(t, open, nil, options...)
}

// newFixtureWith also adjusts the server's configuration (nil for none).
func newFixtureWith(t *testing.T, open storetest.Opener, configure func(*server.Config), options ...func(*graph.Stitcher)) *fixture {
	t.Helper()
	store := open(t)
	broker := graph.NewBroker()
	st := graph.NewStitcher(store, graph.DefaultConfig())
	st.Broker = broker
	for _, o := range options {
		o(st)
	}
	cfg := server.Config{Store: store, Stitcher: st, Normalizer: graph.NewNormalizer("US"), Broker: broker,
		Keys: server.Keys{Write: []string{writeKey}, Read: []string{readKey}, Steward: []string{stewKey}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Every test client shares one address and a few keys, and many
		// fail to authenticate on purpose: the throttle and the rate limits
		// are off but where a test turns them on (limits_test.go).
		AuthFailures: -1, Rates: map[auth.Role]server.Rate{}}
	if configure != nil {
		configure(&cfg)
	}
	srv := server.New(cfg)
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = srv.HTTPServer() // serve's server, with its timeouts
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if n := srv.Panics(); n > 0 {
			t.Errorf("%d requests panicked (a panic is a bug, even answered as a 500)", n)
		}
	})
	return &fixture{url: hs.URL, store: store}
}

// post sends body with the write key (Basic auth) unless key is "-".
func (f *fixture) post(t *testing.T, path, key, body string) (int, string) {
	t.Helper()
	return f.postWith(t, path, body, func(r *http.Request) {
		if key != "-" {
			r.SetBasicAuth(key, "")
		}
	})
}

func (f *fixture) export(t *testing.T) []server.ExportedProfile {
	t.Helper()
	var buf bytes.Buffer
	if err := client.New(f.url, readKey).ExportProfiles(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	var out []server.ExportedProfile
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var p server.ExportedProfile
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func forEachBackend(t *testing.T, fn func(t *testing.T, f *fixture), options ...func(*graph.Stitcher)) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) { fn(t, newFixture(t, b.Open, options...)) })
	}
}

// mergeProtectionOnly turns the shared-device repair off: the stewardship
// tests use the family tablet to put a merge-protection item in the review
// queue (the repair has tests of its own).
func mergeProtectionOnly(st *graph.Stitcher) { st.Config.SharedLimits = nil }

func TestSegmentFlowStitchesAndExports(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		calls := []struct{ path, body string }{
			{"/v1/page", `{"anonymousId":"anon-1","name":"Home","messageId":"m1"}`},
			{"/v1/track", `{"anonymousId":"anon-1","event":"Signed Up","messageId":"m2","context":{"device":{"id":"dev-1"}}}`},
			{"/v1/identify", `{"anonymousId":"anon-1","userId":"u-1","traits":{"email":" Ann@Corp.IO ","phone":"(415) 555-0134","name":"Ann","address":{"city":"Oslo"}},"messageId":"m3"}`},
			{"/v1/alias", `{"userId":"u-1","previousId":"old-visitor","messageId":"m4"}`},
			{"/v1/group", `{"userId":"u-1","groupId":"acme","traits":{"email":"billing@acme.io"},"messageId":"m5"}`},
			{"/v1/screen", `{"anonymousId":"anon-2","name":"Settings","messageId":"m6","context":{"externalIds":[{"id":"C-9","type":"crm_id"}]}}`},
		}
		for _, c := range calls {
			if code, body := f.post(t, c.path, writeKey, c.body); code != 200 || !strings.Contains(body, `"success":true`) {
				t.Fatalf("%s: %d %s", c.path, code, body)
			}
		}
		got := f.export(t)
		if len(got) != 2 {
			t.Fatalf("exported %d profiles, want 2: %+v", len(got), got)
		}
		var ann server.ExportedProfile
		for _, p := range got {
			if len(p.Identifiers) > len(ann.Identifiers) {
				ann = p
			}
		}
		var ids []string
		for _, k := range ann.Identifiers {
			ids = append(ids, k.String())
		}
		want := "anonymous_id:anon-1 anonymous_id:old-visitor device_id:dev-1 email:ann@corp.io phone:+14155550134 user_id:u-1"
		if strings.Join(ids, " ") != want {
			t.Errorf("identifiers = %s\nwant %s", strings.Join(ids, " "), want)
		}
		if ann.Traits["name"] != "Ann" || ann.Traits["address"].(map[string]any)["city"] != "Oslo" {
			t.Errorf("traits = %v", ann.Traits)
		}
	})
}

func TestBadInput(t *testing.T) {
	big := `{"anonymousId":"a","event":"x","properties":{"pad":"` + strings.Repeat("x", server.MaxMessageBytes) + `"}}`
	bigBatch := `{"batch":[` + strings.Repeat(`{"type":"track","anonymousId":"a","event":"e","properties":{"pad":"`+strings.Repeat("y", 1000)+`"}},`, 600) + `{"type":"page","anonymousId":"a"}]}`
	cases := []struct {
		name, path, key, body string
		code                  int
		msg                   string
	}{
		{"broken JSON", "/v1/track", writeKey, `{"anonymousId":`, 400, "invalid JSON"},
		{"not an object", "/v1/track", writeKey, `[1,2]`, 400, "must be an object"},
		{"no ids", "/v1/track", writeKey, `{"event":"x"}`, 400, "userId or anonymousId is required"},
		{"track without event", "/v1/track", writeKey, `{"userId":"u"}`, 400, "event: is required"},
		{"alias without previousId", "/v1/alias", writeKey, `{"userId":"u"}`, 400, "previousId: is required"},
		{"event of wrong type", "/v1/track", writeKey, `{"userId":"u","event":42}`, 400, "event: must be a string"},
		{"userId of wrong type", "/v1/track", writeKey, `{"userId":{"a":1},"event":"x"}`, 400, "userId: must be a string or a number"},
		{"properties not an object", "/v1/track", writeKey, `{"userId":"u","event":"x","properties":"p"}`, 400, "properties: must be an object"},
		{"bad timestamp", "/v1/track", writeKey, `{"userId":"u","event":"x","timestamp":"yesterday"}`, 400, "timestamp"},
		{"placeholder only", "/v1/identify", writeKey, `{"userId":"undefined"}`, 400, `userId: user_id \"undefined\" is a placeholder value`},
		{"huge identifier", "/v1/identify", writeKey, `{"userId":"` + strings.Repeat("u", 600) + `"}`, 400, "userId: user_id is longer than 512 bytes"},
		{"invalid UTF-8", "/v1/identify", writeKey, "{\"userId\":\"\xff\xfe\"}", 400, "not valid UTF-8"},
		{"message too large", "/v1/track", writeKey, big, 413, "larger than 32 KB"},
		{"batch too large", "/v1/batch", writeKey, bigBatch, 413, "larger than 500 KB"},
		{"unknown type in batch", "/v1/batch", writeKey, `{"batch":[{"type":"page","anonymousId":"a"},{"type":"launch","userId":"u"}]}`, 400, `batch[1].type: unknown message type \"launch\"`},
		{"bad item in batch", "/v1/batch", writeKey, `{"batch":[{"type":"track","anonymousId":"a"}]}`, 400, "batch[0].event: is required"},
		{"batch missing", "/v1/batch", writeKey, `{}`, 400, "batch: is required"},
		{"message too large in a batch", "/v1/batch", writeKey, `{"batch":[{"type":"page","anonymousId":"a"},{"type":"page","anonymousId":"a","properties":{"pad":"` + strings.Repeat("x", server.MaxMessageBytes) + `"}}]}`,
			413, "batch[1]: message is larger than 32 KB"},
		{"too many messages in a batch", "/v1/batch", writeKey, `{"batch":[` + strings.Repeat(`{"type":"page","anonymousId":"a"},`, server.MaxBatchMessages) + `{"type":"page","anonymousId":"a"}]}`,
			413, "batch: has 2501 messages, more than 2500"},
		// As many as allowed: decoded to the last, whose fault is named.
		{"a batch of the most messages", "/v1/batch", writeKey, `{"batch":[` + strings.Repeat(`{"type":"page","anonymousId":"a"},`, server.MaxBatchMessages-1) + `{"type":"track","anonymousId":"a"}]}`,
			400, "batch[2499].event: is required"},
		{"no key", "/v1/track", "-", `{"userId":"u","event":"x"}`, 401, "write key is required"},
		{"wrong key", "/v1/track", "nope", `{"userId":"u","event":"x"}`, 401, "not valid"},
		{"read key cannot write", "/v1/track", readKey, `{"userId":"u","event":"x"}`, 403, "needs a write or admin key; this is a read key"},
		{"cypher-looking value", "/v1/identify", writeKey, `{"userId":"x'}) MATCH (n) DETACH DELETE n //","traits":{"name":"'; DROP"}}`, 200, "success"},
		{"import without source", "/v1/import", writeKey, `{"records":[]}`, 400, "source: is required"},
		{"import bad type", "/v1/import", writeKey, `{"source":"crm","records":[{"line":2,"identifiers":{"Bad Type":"x"}}]}`, 200, "must match"},
	}
	forEachBackend(t, func(t *testing.T, f *fixture) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code, body := f.post(t, c.path, c.key, c.body)
				if code != c.code || !strings.Contains(body, c.msg) {
					t.Errorf("got %d %s\nwant %d containing %q", code, body, c.code, c.msg)
				}
			})
		}
		// Nothing from a refused request may reach the graph: only the
		// Cypher-looking identify was stored.
		got := f.export(t)
		if len(got) != 1 || got[0].Identifiers[0].Value != "x'}) MATCH (n) DETACH DELETE n //" {
			t.Errorf("profiles after bad input = %+v, want only the Cypher-looking user", got)
		}
	})
}

func TestWriteKeyInBodyAndReadAuth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		if code, body := f.post(t, "/v1/identify", "-", `{"userId":"u","writeKey":"`+writeKey+`"}`); code != 200 {
			t.Fatalf("writeKey in body: %d %s", code, body)
		}
		for key, want := range map[string]int{writeKey: 403, "": 401, "bad": 401, readKey: 200} {
			req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/export/profiles", nil)
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("export with key %q: %d, want %d", key, resp.StatusCode, want)
			}
		}
	})
}

func TestBatchIsAtomicAndDeduplicated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		batch := `{"batch":[
			{"type":"identify","userId":"u1","traits":{"email":"a@corp.io"},"messageId":"b1"},
			{"type":"track","userId":"u1","event":"Bought","messageId":"b2"},
			{"type":"page","anonymousId":"anon","messageId":"b3"}]}`
		for range 2 {
			if code, body := f.post(t, "/v1/batch", writeKey, batch); code != 200 {
				t.Fatalf("batch: %d %s", code, body)
			}
		}
		evs, err := graph.Timeline(context.Background(), f.store, []graph.Key{{Type: "user_id", Value: "u1"}}, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 {
			t.Errorf("u1 has %d events after a redelivered batch, want 2", len(evs))
		}
		if got := f.export(t); len(got) != 2 {
			t.Errorf("profiles = %d, want 2", len(got))
		}
	})
}

func TestTimestampCorrectedFromSentAt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		// The client's clock is a day fast: the event happened a minute
		// before it was sent, so it is stored a minute before arrival.
		body := `{"userId":"u","event":"x","messageId":"ts1","timestamp":"2030-01-02T00:00:00Z","sentAt":"2030-01-02T00:01:00Z"}`
		if code, resp := f.post(t, "/v1/track", writeKey, body); code != 200 {
			t.Fatalf("%d %s", code, resp)
		}
		evs, err := graph.Timeline(context.Background(), f.store, []graph.Key{{Type: "user_id", Value: "u"}}, nil, 1)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events: %v %v", evs, err)
		}
		if d := evs[0].ReceivedAt.Sub(evs[0].Timestamp); d.Seconds() < 59 || d.Seconds() > 61 {
			t.Errorf("timestamp %v is %v before receivedAt %v, want a minute", evs[0].Timestamp, d, evs[0].ReceivedAt)
		}
	})
}

func TestImportCSVAndJSONL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		csv := "crm_id,email,phone,firstName,address.city\n" +
			"C1,ann@corp.io,+1 415 555 0134,Ann,Oslo\n" +
			"C2,not-an-email,,Bob,Rome\n" +
			"C3,extra,field,x,y,z\n" +
			",,,Nobody,Nowhere\n" +
			"C1,ann@corp.io,+1 415 555 0134,Ann,Oslo\n"
		c := client.New(f.url, writeKey)
		sum, err := c.Import(context.Background(), strings.NewReader(csv), client.ImportOptions{Source: "crm", Identifiers: []string{"crm_id", "email", "phone"}})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Read != 5 || sum.Stored != 2 || sum.Duplicates != 1 || len(sum.Rejected) != 2 || len(sum.Skipped) != 1 {
			t.Fatalf("summary = %+v", sum)
		}
		if sum.Rejected[0].Line != 4 || sum.Rejected[1].Line != 5 || sum.Skipped[0].Line != 3 || sum.Skipped[0].Field != "email" {
			t.Errorf("problems = %+v %+v, want line 4 (fields) and 5 (no identifier) rejected, line 3's email skipped", sum.Rejected, sum.Skipped)
		}
		jsonl := `{"crm_id":"C1","user_id":"u-ann","plan":"gold"}` + "\n" + `{"crm_id":` + "\n" + `{"crm_id":["x"]}` + "\n"
		sum, err = c.Import(context.Background(), strings.NewReader(jsonl), client.ImportOptions{Source: "app", Identifiers: []string{"crm_id", "user_id"}, JSONL: true})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Stored != 1 || len(sum.Rejected) != 2 || sum.Rejected[0].Line != 2 || sum.Rejected[1].Line != 3 {
			t.Fatalf("jsonl summary = %+v", sum)
		}
		var ann *server.ExportedProfile
		for _, p := range f.export(t) {
			if len(p.Identifiers) == 4 {
				ann = &p
			}
		}
		if ann == nil || ann.Traits["plan"] != "gold" || ann.Traits["firstName"] != "Ann" || ann.Traits["address"].(map[string]any)["city"] != "Oslo" {
			t.Errorf("Ann's profile = %+v, want crm_id, email, phone and user_id with traits from both files", ann)
		}
	})
}
