package server_test

import (
	"bufio"
	"bytes"
	"context"
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

// BenchmarkExportSubject: one person with 10,000 events (and 10,000
// from others beside), exported over HTTP by an admin key; each op is one
// whole export read to its end line. The target is 2 s an export.
func BenchmarkExportSubject(b *testing.B) {
	const events = 10_000
	for _, be := range backends.Bench() {
		b.Run(be.Name, func(b *testing.B) {
			store := be.Open(b)
			ctx := context.Background()
			kr, err := auth.NewKeyring(auth.KeyringOptions{Store: store.(auth.Backend).APIKeys(), Pepper: testPepper,
				Legacy: auth.Legacy(server.Keys{Write: []string{writeKey}})})
			if err != nil {
				b.Fatal(err)
			}
			admin, _, err := server.FirstAdminKey(ctx, store, kr)
			if err != nil {
				b.Fatal(err)
			}
			al, err := audit.Open(store, testPepper)
			if err != nil {
				b.Fatal(err)
			}
			srv := server.New(server.Config{Store: store, Stitcher: graph.NewStitcher(store, graph.DefaultConfig()), Normalizer: graph.NewNormalizer("US"),
				Keyring: kr, Audit: al, ExportsPerMinute: -1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer srv.Close()
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()
			for i := 0; i < events; i += 500 {
				msgs := make([]map[string]any, 0, 1000)
				for j := i; j < i+500; j++ {
					msgs = append(msgs, map[string]any{"type": "track", "userId": "u-bench", "event": "Viewed", "messageId": fmt.Sprintf("m-%d", j),
						"properties": map[string]any{"page": fmt.Sprintf("/p/%d", j), "price": j}},
						map[string]any{"type": "track", "userId": fmt.Sprintf("u-other-%d", j%50), "event": "Viewed", "messageId": fmt.Sprintf("o-%d", j)})
				}
				body, _ := json.Marshal(map[string]any{"batch": msgs})
				req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/batch", bytes.NewReader(body))
				req.SetBasicAuth(writeKey, "")
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("batch: %v %v", resp, err)
				}
				resp.Body.Close()
			}
			b.ResetTimer()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/export/subject?subject=user_id:u-bench", nil)
				req.Header.Set("Authorization", "Bearer "+admin.String())
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("export: %v %v", resp, err)
				}
				n := 0
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if bytes.HasPrefix(sc.Bytes(), []byte(`{"kind":"event"`)) {
						n++
					}
				}
				resp.Body.Close()
				if n != events {
					b.Fatalf("%d events exported, want %d", n, events)
				}
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
