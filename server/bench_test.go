package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// batchBody builds /v1/batch bodies of 500 messages like the load
// generator's: anonymous visitors, a third of them identified.
func batchBody(b, size int) []byte {
	msgs := make([]map[string]any, size)
	for i := range msgs {
		n := b*size + i
		v := (n * 7919) % 20000
		m := map[string]any{"type": "page", "name": "Home", "messageId": fmt.Sprintf("m-%d", n), "anonymousId": fmt.Sprintf("anon-%d", v),
			"timestamp": "2026-01-01T00:00:00Z", "properties": map[string]any{"path": "/"}, "context": map[string]any{"ip": "127.0.0.1"}}
		if v%3 == 0 {
			m["userId"] = fmt.Sprintf("user-%d", v)
			if n%10 == 0 {
				m["type"], m["traits"] = "identify", map[string]any{"email": fmt.Sprintf("u%d@corp.io", v)}
			}
		}
		msgs[i] = m
	}
	body, _ := json.Marshal(map[string]any{"batch": msgs, "sentAt": time.Now().UTC().Format(time.RFC3339)})
	return body
}

func benchmarkBatch(b *testing.B, store graph.Store) {
	srv := server.New(server.Config{Store: store, Stitcher: graph.NewStitcher(store, graph.DefaultConfig()), Normalizer: graph.NewNormalizer("US"),
		Keys: server.Keys{Write: []string{writeKey}, Read: []string{readKey}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer srv.Close()
	h := srv.Handler()
	bodies := make([][]byte, 0, b.N)
	for i := range b.N {
		bodies = append(bodies, batchBody(i, 500))
	}
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/batch", bytes.NewReader(bodies[i]))
		req.SetBasicAuth(writeKey, "")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkBatchEmbedded is the whole /v1/batch path on the embedded store,
// without the network: decode, normalise, stitch, commit.
func BenchmarkBatchEmbedded(b *testing.B) {
	benchmarkBatch(b, backends.BenchPebble(b))
}

// BenchmarkTrackRateLimits measures what the per-key rate limit and the
// failed-authentication throttle add to one /v1/track on the embedded
// store: "off" has neither, "on" both, with a bucket no request empties.
// "stored" messages are stitched and committed (fsync); "refused" ones
// (no event) stop after authentication and decoding, so that the
// limiter's share of the request is visible. docs/benchmarks.md gives the
// ratios.
func BenchmarkTrackRateLimits(b *testing.B) {
	for _, path := range []struct {
		name string
		body string
		code int
	}{{"stored", `{"anonymousId":"anon-%d","event":"Viewed","messageId":"m-%d"}`, 200}, {"refused", `{"anonymousId":"anon-%d","messageId":"m-%d"}`, 400}} {
		for _, c := range []struct {
			name     string
			rates    map[auth.Role]server.Rate
			failures int
		}{
			{"off", map[auth.Role]server.Rate{}, -1},
			{"on", map[auth.Role]server.Rate{auth.RoleWrite: {PerSecond: 1e9, Burst: 1e9}}, 0},
		} {
			b.Run(path.name+"/"+c.name, func(b *testing.B) {
				store := backends.BenchPebble(b)
				srv := server.New(server.Config{Store: store, Stitcher: graph.NewStitcher(store, graph.DefaultConfig()), Normalizer: graph.NewNormalizer("US"),
					Keys: server.Keys{Write: []string{writeKey}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Rates: c.rates, AuthFailures: c.failures})
				defer srv.Close()
				h := srv.Handler()
				b.ResetTimer()
				for i := range b.N {
					req := httptest.NewRequest(http.MethodPost, "/v1/track", strings.NewReader(fmt.Sprintf(path.body, i%5000, i)))
					req.SetBasicAuth(writeKey, "")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != path.code {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}
