package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// BenchmarkAuditedReads: what the audit entry of a read costs. Two servers
// share one store of 200 people, one with the audit log and one without;
// each op is one GraphQL read over HTTP by a read key: a lookup of one
// person, or a page of 20 profiles (one entry naming all 20).
func BenchmarkAuditedReads(b *testing.B) {
	for _, be := range backends.Bench() {
		b.Run(be.Name, func(b *testing.B) {
			store := be.Open(b)
			kr, err := auth.NewKeyring(auth.KeyringOptions{Store: store.(auth.Backend).APIKeys(), Pepper: testPepper,
				Legacy: auth.Legacy(server.Keys{Write: []string{writeKey}, Read: []string{readKey}})})
			if err != nil {
				b.Fatal(err)
			}
			al, err := audit.Open(store, testPepper)
			if err != nil {
				b.Fatal(err)
			}
			urls := map[string]string{}
			for name, log := range map[string]*audit.Log{"audited": al, "unaudited": nil} {
				cfg := server.Config{Store: store, Stitcher: graph.NewStitcher(store, graph.DefaultConfig()), Normalizer: graph.NewNormalizer("US"),
					Keyring: kr, Audit: log, Rates: map[auth.Role]server.Rate{auth.RoleRead: {PerSecond: 1e6, Burst: 1e6}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
				srv := server.New(cfg)
				defer srv.Close()
				hs := httptest.NewServer(srv.Handler())
				defer hs.Close()
				urls[name] = hs.URL
			}
			msgs := make([]map[string]any, 200)
			for i := range msgs {
				msgs[i] = map[string]any{"type": "identify", "userId": fmt.Sprintf("u-%d", i), "anonymousId": fmt.Sprintf("a-%d", i),
					"traits": map[string]any{"email": fmt.Sprintf("p%d@corp.io", i)}, "messageId": fmt.Sprintf("m-%d", i)}
			}
			body, _ := json.Marshal(map[string]any{"batch": msgs})
			postOK(b, urls["unaudited"]+"/v1/batch", func(r *http.Request) { r.SetBasicAuth(writeKey, "") }, body)
			reads := map[string]string{
				"lookup":      `{"query":"{ lookup(type: \"email\", value: \"p7@corp.io\") { id } }"}`,
				"profiles=20": `{"query":"{ profiles(first: 20) { edges { node { id } } } }"}`,
			}
			for _, read := range []string{"lookup", "profiles=20"} {
				for _, name := range []string{"unaudited", "audited"} {
					b.Run(read+"/"+name, func(b *testing.B) {
						for b.Loop() {
							postOK(b, urls[name]+"/graphql", func(r *http.Request) {
								r.Header.Set("Authorization", "Bearer "+readKey)
								r.Header.Set("Content-Type", "application/json")
							}, []byte(reads[read]))
						}
					})
				}
			}
		})
	}
}

// postOK sends body and fails unless the answer is 200 without errors.
func postOK(b *testing.B, url string, auth func(*http.Request), body []byte) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || bytes.Contains(data, []byte(`"errors"`)) {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, data)
	}
}
