package server_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/internal/diskscan"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/server"
)

// A GraphQL body that does not decode is refused without its text
// reaching the server's log (slog, and the standard logger gqlgen's
// transports write to) or the answer: bodies carry keys and personal data.
func TestGraphQLDecodeErrorsLogNoBody(t *testing.T) {
	var logs syncBuffer
	prev := log.Writer()
	log.SetOutput(&logs)
	t.Cleanup(func() { log.SetOutput(prev) })
	f := newFixtureWith(t, backends.OpenPebble, func(cfg *server.Config) {
		cfg.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const marker = "ann.secret.marker@example.com"
	bodies := []string{
		`{"query":"{ lookup(type: \"email\", value: \"` + marker + `\") { id } }"`,
		`{"query":"{ __typename }","variables":"` + marker + `"}`,
		`{"query":{"q":"` + marker + `"}}`,
		marker + ` {"query":"{ __typename }"}`,
		`{"query":"{ __typename }","extensions":["` + marker + `"]}`,
		`{"query":"{ __typename }","operationName":7,"x":"` + marker + `"}`,
		"{\"query\":\"" + marker + "\x00\"}",
	}
	for _, b := range bodies {
		r := f.gqlBody(t, readKey, b)
		if len(r.Errors) == 0 || strings.Contains(r.Errors[0].Message, marker) {
			t.Errorf("body %q: answered %+v", b, r.Errors)
		}
	}
	for _, ct := range []string{"application/graphql", "text/plain", "multipart/mixed; boundary=x", "application/x-www-form-urlencoded"} {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/graphql", strings.NewReader(bodies[0]))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+readKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/graphql?query="+url.QueryEscape("{ __typename }")+"&variables="+url.QueryEscape(`{"a":"`+marker), nil)
	req.Header.Set("Authorization", "Bearer "+readKey)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if strings.Contains(logs.String(), marker) || strings.Contains(logs.String(), "ann.secret") {
		t.Errorf("a request body reached the log:\n%s", logs.String())
	}
}

// A subscription outlives the server's write and read timeouts (its
// connection is exempt once upgraded), and a streamed export goes on past
// the write timeout while its client reads.
func TestStreamsOutliveTimeouts(t *testing.T) {
	const timeout = 500 * time.Millisecond
	// Bulk data goes in through a server with the default timeouts, which
	// a loaded machine could exceed at this test's; the server under test
	// shares its store.
	ingest := newFixture(t, backends.OpenPebble)
	f := newFixtureWith(t, func(*testing.T) graph.Store { return ingest.store }, func(cfg *server.Config) {
		cfg.Timeouts = server.Timeouts{Write: timeout, Read: timeout}
	})
	ingest.send(t, "/v1/identify", `{"userId":"slow-1","messageId":"t1"}`)
	id := get(f.must(t, `{lookup(type:"user_id", value:"slow-1"){id}}`, nil), "lookup.id").(string)
	event := subscribeNext(t, f, readKey, `subscription($id: ID!) { profileChanged(id: $id) { profileId kind } }`, map[string]any{"id": id}, func() {
		time.Sleep(3 * timeout) // past both timeouts, counted from the upgrade request
		f.send(t, "/v1/track", `{"userId":"slow-1","event":"Late","messageId":"t2"}`)
	})
	if !strings.Contains(event, id) {
		t.Errorf("event %s", event)
	}

	// The export: a client that keeps reading, pausing less than the
	// write timeout each time, gets every line though the whole takes
	// longer than it; one that stops reading for longer is cut off. Enough
	// profiles that the answer does not fit in the sockets' buffers.
	var batch strings.Builder
	const n = 3000
	pad := strings.Repeat("x", 4000)
	for i := range n {
		if i%100 == 0 {
			if batch.Len() > 0 {
				ingest.send(t, "/v1/batch", `{"batch":[`+strings.TrimSuffix(batch.String(), ",")+`]}`)
			}
			batch.Reset()
		}
		fmt.Fprintf(&batch, `{"type":"identify","userId":"exp-%d","traits":{"pad":"%s"},"messageId":"e%d"},`, i, pad, i)
	}
	ingest.send(t, "/v1/batch", `{"batch":[`+strings.TrimSuffix(batch.String(), ",")+`]}`)
	// The client's receive buffer is kept small: the kernel may grow a
	// loopback socket's to 32 MB (tcp_rmem), and an export that fits in
	// the buffers never blocks the server, however long the client waits.
	small := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(64 << 10)
		}
		return c, err
	}}}
	export := func(pause func(line int)) int {
		req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/export/profiles", nil)
		req.Header.Set("Authorization", "Bearer "+readKey)
		resp, err := small.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		lines := 0
		for {
			if _, err := br.ReadString('\n'); err != nil {
				return lines
			}
			lines++
			pause(lines)
		}
	}
	began := time.Now()
	steady := export(func(line int) {
		if line%300 == 0 {
			time.Sleep(timeout / 3) // ten pauses: the export lasts over three timeouts
		}
	})
	if steady != n+1 { // and slow-1
		t.Errorf("a steady reader's export stopped after %d of %d lines", steady, n+1)
	}
	// The stalled reader waits as long as the whole steady export took,
	// and more: the server has then written all it could into the
	// sockets' buffers, which cannot hold the export, and its blocked write
	// has passed the timeout. A fixed pause failed when the server, slowed
	// by the race detector on a loaded machine, had not yet filled the
	// buffers when the pause ended (so no write ever waited).
	stall := time.Since(began) + 4*timeout
	stalled := export(func(line int) {
		if line == 1 {
			time.Sleep(stall)
		}
	})
	if stalled == n+1 {
		t.Errorf("a client that stopped reading for %v got the whole export", stall.Round(time.Millisecond))
	}
}

// The GraphiQL page the server serves (dev mode) keeps pasted headers, an
// API key among them, out of the browser's localStorage.
func TestGraphiQLKeepsHeadersOutOfStorage(t *testing.T) {
	f := newFixtureWith(t, backends.OpenPebble, func(c *server.Config) { c.Dev = true })
	code, _, page := f.do(t, "GET", "/graphql", map[string]string{"Accept": "text/html"}, nil)
	if code != 200 || !strings.Contains(page, "GraphiQL") {
		t.Fatalf("GraphiQL page: %d", code)
	}
	for _, want := range []string{"shouldPersistHeaders: false", "showPersistHeadersSettings: false", "graphiql:headers", "t.headers = null"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"shouldPersistHeaders: true", "PersistStateInURL", "onEditHeaders"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
}

// Retiring the legacy keys removes them from the embedded store's files:
// older versions stored them in plain text, and a blanked setting stays in
// the write-ahead log and tables until they are rewritten.
func TestRetiredLegacyKeysLeaveTheDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const stored = "sk_stored_in_plain_3e8a1f"
	store, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.InitSetting(ctx, "steward_key", stored); err != nil {
		t.Fatal(err)
	}
	if keys, err := server.LoadKeys(ctx, store, "", "", "", true); err != nil || !keys.Empty() {
		t.Fatalf("retire: %+v, %v", keys, err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	holding, files, _ := diskscan.Holding(t, dir, []byte(stored))
	if len(holding) > 0 || files == 0 {
		t.Errorf("%d files scanned; the retired key is still in %v", files, holding)
	}
}
