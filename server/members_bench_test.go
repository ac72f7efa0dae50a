package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	"github.com/idgraph/idgraph/server"
)

// benchmarkMembersExport seeds IDGRAPH_BENCH_MEMBERS (default 20,000)
// profiles with a user ID and an email, all members of one segment, and
// streams members.csv with both identifier columns and a trait: the
// whole HTTP path, over loopback.
func benchmarkMembersExport(b *testing.B, store graph.Store) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("IDGRAPH_BENCH_MEMBERS")); err == nil {
		n = v
	}
	ctx := context.Background()
	st := graph.NewStitcher(store, graph.DefaultConfig())
	seg := store.(segments.Backend).Segments()
	if _, err := seg.PutDefinition(ctx, &segments.Definition{Kind: lang.KindSegment, Key: "all", Source: "true",
		Status: segments.Status{State: segments.StateLive}, CreatedAt: time.Now(), UpdatedAt: time.Now()}, 0); err != nil {
		b.Fatal(err)
	}
	const chunk = 1000
	for i := 0; i < n; i += chunk {
		var obs []*graph.Observation
		var keys []graph.Key
		for j := i; j < min(i+chunk, n); j++ {
			k := graph.Key{Type: "user_id", Value: fmt.Sprintf("u%d", j)}
			keys = append(keys, k)
			obs = append(obs, &graph.Observation{MessageID: fmt.Sprintf("seed-%d", j), Source: "bench", Time: time.Now(),
				Identifiers: []graph.Key{k, {Type: "email", Value: fmt.Sprintf("u%d@corp.io", j)}},
				Traits:      map[string]any{"plan": "pro"}, Event: graph.Event{Type: "identify"}})
		}
		if _, err := st.Ingest(ctx, obs); err != nil {
			b.Fatal(err)
		}
		ids, err := store.GetIdentifiers(ctx, keys)
		if err != nil {
			b.Fatal(err)
		}
		var saves []segments.Save
		for _, id := range ids {
			saves = append(saves, segments.Save{State: &segments.ProfileState{Profile: id.Profile,
				Entries: map[string]segments.Entry{"segment:all": {Version: 1, Member: true, Since: time.Now()}}}, Reason: segments.ReasonData, At: time.Now()})
		}
		if _, err := seg.SaveStates(ctx, saves); err != nil {
			b.Fatal(err)
		}
	}
	eng := segments.NewEngine(store, seg, segments.EngineOptions{})
	if err := eng.Load(ctx); err != nil {
		b.Fatal(err)
	}
	srv := server.New(server.Config{Store: store, Stitcher: st, Normalizer: graph.NewNormalizer("US"), Segments: eng,
		Keys: server.Keys{Write: []string{writeKey}, Read: []string{readKey}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/segments/all/members.csv?identifiers=user_id,email&traits=plan", nil)
		req.Header.Set("Authorization", "Bearer "+readKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		size, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || size < int64(n)*20 {
			b.Fatalf("%d, %d bytes for %d members", resp.StatusCode, size, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "members/s")
}

func BenchmarkMembersExportEmbedded(b *testing.B) {
	benchmarkMembersExport(b, backends.OpenPebble(&testing.T{}))
}

func BenchmarkMembersExportNeo4j(b *testing.B) {
	t := &testing.T{}
	if os.Getenv("NEO4J_URI") == "" {
		b.Skip("NEO4J_URI is not set")
	}
	benchmarkMembersExport(b, backends.OpenNeo4j(t))
	// t holds the lock on the shared test database: collected, its file
	// would be closed and the lock dropped while the benchmark runs.
	runtime.KeepAlive(t)
}
