package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestDestinationsThroughServe: serve --segments with a segment and a
// webhook destination created over GraphQL; identify calls that move
// profiles in and out of the segment reach a loopback receiver as signed
// segment.entered / segment.exited messages, verified with the reference
// Standard Webhooks library, each profile's in order.
func TestDestinationsThroughServe(t *testing.T) {
	var mu sync.Mutex
	var secret string
	type msg struct {
		Type string `json:"type"`
		Data struct {
			Segment  string `json:"segment"`
			Profile  string `json:"profile"`
			Sequence uint64 `json:"sequence"`
		} `json:"data"`
	}
	var got []msg
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		if err != nil {
			t.Errorf("the reference library refuses a message: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var m msg
		json.Unmarshal(body, &m)
		got = append(got, m)
	}))
	defer recv.Close()

	p, url, admin := serveDestinations(t)
	gql := serveGraphQL(t, url, admin)
	createLiveSegment(t, gql, "pro", `trait("plan") = "pro"`)
	d := gql(`mutation($url: String!) { createDestination(name: "crm", url: $url, segments: ["pro"]) { secret destination { id segments enabled } } }`,
		map[string]any{"url": recv.URL + "/hooks"})["createDestination"].(map[string]any)
	mu.Lock()
	secret = d["secret"].(string)
	mu.Unlock()
	id := d["destination"].(map[string]any)["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	if strings.Contains(p.log.String(), secret) {
		t.Fatal("the signing secret reached the log")
	}

	identify := func(user, plan string) { t.Helper(); identifyPlan(t, url, admin, user, plan) }
	start := time.Now()
	identify("u1", "pro")
	identify("u2", "pro")
	waitFor := func(n int) []msg {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			out := append([]msg(nil), got...)
			mu.Unlock()
			if len(out) >= n {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d messages after 30 s, want %d:\n%s", len(out), n, p.log)
			}
		}
	}
	waitFor(2)
	t.Logf("two identifies to two signed deliveries: %v", time.Since(start))
	identify("u1", "free")
	identify("u3", "basic") // never in the segment: nothing sent
	msgs := waitFor(3)
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	msgs = append([]msg(nil), got...)
	mu.Unlock()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3: %+v", len(msgs), msgs)
	}
	var last uint64
	types := map[string][]string{}
	for _, m := range msgs {
		if m.Data.Sequence <= last || m.Data.Segment != "pro" {
			t.Fatalf("messages out of sequence order or of another segment: %+v", msgs)
		}
		last = m.Data.Sequence
		types[m.Data.Profile] = append(types[m.Data.Profile], m.Type)
	}
	var seq []string
	for _, ts := range types {
		seq = append(seq, strings.Join(ts, ","))
	}
	if j := strings.Join(seq, " "); j != "segment.entered,segment.exited segment.entered" && j != "segment.entered segment.entered,segment.exited" {
		t.Fatalf("per-profile messages: %v", types)
	}

	h := gql(`{ destinations { id health { delivered pending failedAttempts successRate } } }`, nil)["destinations"].([]any)
	health := h[0].(map[string]any)["health"].(map[string]any)
	if health["delivered"] != 3.0 || health["pending"] != 0.0 || health["successRate"] != 1.0 {
		t.Fatalf("health %v", health)
	}
	ping := gql(`mutation($id: ID!) { testDestination(destination: $id) { ok status } }`, map[string]any{"id": id})["testDestination"].(map[string]any)
	if ping["ok"] != true || ping["status"] != 200.0 {
		t.Fatalf("testDestination: %v", ping)
	}
	if m := waitFor(4); m[3].Type != "destination.ping" {
		t.Fatalf("the ping: %+v", m[3])
	}
}

// createLiveSegment creates a segment and waits for it to go LIVE.
func createLiveSegment(t *testing.T, gql func(string, map[string]any) map[string]any, key, def string) {
	t.Helper()
	gql(`mutation($k: String!, $d: String!) { createSegment(key: $k, definition: $d) { key } }`, map[string]any{"k": key, "d": def})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		d := gql(`query($k: String!) { segment(key: $k) { status { state } } }`, map[string]any{"k": key})
		if d["segment"].(map[string]any)["status"].(map[string]any)["state"] == "LIVE" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s never went LIVE", key)
		}
	}
}

// identifyPlan sends an identify setting the user's plan trait.
func identifyPlan(t *testing.T, url, key, user, plan string) {
	t.Helper()
	body := `{"userId":"` + user + `","traits":{"plan":"` + plan + `"}}`
	if code := postAPI(t, url+"/v1/identify", key, body); code != 200 {
		t.Fatalf("identify: %d", code)
	}
}

// serveDestinations initialises a store and runs serve --segments on it,
// loopback and http destinations allowed, retries 50 ms apart; it returns
// the process, its URL and the first admin key.
func serveDestinations(t *testing.T) (p *proc, url, admin string) {
	t.Helper()
	store := filepath.Join(t.TempDir(), "data")
	out, _ := idgraph(t, true, "init", "--store", store)
	admin = keyPattern.FindString(out)
	addr := freeAddr(t)
	p = startServeArgs(t, addr, "--store", store, "--segments", "--model", "off",
		"--destinations-allow-private", "--destinations-allow-http", "--destinations-retry-schedule", "50ms,50ms")
	t.Cleanup(func() { p.stop(t) })
	return p, "http://" + addr, admin
}
