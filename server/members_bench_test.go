package server_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	"github.com/idgraph/idgraph/server"
)

// benchmarkMembersExport seeds IDGRAPH_BENCH_MEMBERS (default 20,000)
// profiles with a user ID and an email, all members of one segment, and
// streams members.csv with both identifier columns and a trait: the
// whole HTTP path, over loopback. Sub-benchmarks:
//
//   - baseline: a handler that only writes n rows of the same shape, the
//     floor of HTTP and CSV on this machine at this moment (the machine is
//     shared: compare export/baseline within one run);
//   - quiet: the export alone;
//   - quiet-lookahead1: the export alone, one page looked up at a time;
//   - quiet-lookup: the export alone, each page of IDs read and then
//     looked up (4 at once), not read with its members' data (the same
//     as quiet on a store that cannot);
//   - ingest: the export while a loop ingests new members (stitching and
//     saving their segment state, so change records are written under the
//     export); its rate is reported as ingest-msgs/s.
//
// Each reports the 1-minute load average when it ends (load1).
func benchmarkMembersExport(b *testing.B, store graph.Store) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("IDGRAPH_BENCH_MEMBERS")); err == nil {
		n = v
	}
	ctx := context.Background()
	st := graph.NewStitcher(store, graph.DefaultConfig())
	seg := store.(segments.Backend).Segments()
	// A store seeded before (IDGRAPH_BENCH_STORE) is not seeded again, so
	// that a quiet machine's minutes go to the export itself.
	seeded, _, err := store.Setting(ctx, "bench_members")
	if err != nil {
		b.Fatal(err)
	}
	if seeded != strconv.Itoa(n) {
		if _, err := seg.PutDefinition(ctx, &segments.Definition{Kind: lang.KindSegment, Key: "all", Source: "true",
			Status: segments.Status{State: segments.StateLive}, CreatedAt: time.Now(), UpdatedAt: time.Now()}, 0); err != nil {
			b.Fatal(err)
		}
		const chunk = 1000
		for i := 0; i < n; i += chunk {
			seedMembers(b, store, st, seg, "seed", i, min(i+chunk, n))
		}
		if err := store.PutSetting(ctx, "bench_members", strconv.Itoa(n)); err != nil {
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
	baseline := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cw := csv.NewWriter(w)
		cw.Write([]string{"profile_id", "user_id", "email", "plan"})
		for i := range n {
			cw.Write([]string{fmt.Sprintf("p_%026d", i), fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@corp.io", i), "pro"})
		}
		cw.Flush()
	}))
	defer baseline.Close()
	export := func(b *testing.B, url string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
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
	members := hs.URL + "/v1/segments/all/members.csv?identifiers=user_id,email&traits=plan"
	b.Run("baseline", func(b *testing.B) {
		for range b.N {
			export(b, baseline.URL)
		}
		reportRate(b, n)
	})
	b.Run("quiet", func(b *testing.B) {
		for range b.N {
			export(b, members)
		}
		reportRate(b, n)
	})
	// One page looked up at a time (the export before the look-ahead,
	// but for the member index's next page read meanwhile).
	b.Run("quiet-lookahead1", func(b *testing.B) {
		defer server.SetMembersPageData(false)()
		defer server.SetMembersLookAhead(1)()
		for range b.N {
			export(b, members)
		}
		reportRate(b, n)
	})
	b.Run("quiet-lookup", func(b *testing.B) {
		defer server.SetMembersPageData(false)()
		for range b.N {
			export(b, members)
		}
		reportRate(b, n)
	})
	b.Run("ingest", func(b *testing.B) {
		stop, ingested := make(chan struct{}), make(chan int)
		go func() {
			i := 0
			for {
				select {
				case <-stop:
					ingested <- i
					return
				default:
				}
				seedMembers(b, store, st, seg, fmt.Sprintf("live%d", b.N), i, i+100)
				i += 100
			}
		}()
		for range b.N {
			export(b, members)
		}
		close(stop)
		msgs := <-ingested
		reportRate(b, n)
		b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "ingest-msgs/s")
	})
}

// seedMembers ingests profiles lo to hi (each with a user ID, an email
// and a plan) and saves them as members of segment "all".
func seedMembers(b *testing.B, store graph.Store, st *graph.Stitcher, seg segments.Store, prefix string, lo, hi int) {
	ctx := context.Background()
	var obs []*graph.Observation
	var keys []graph.Key
	for j := lo; j < hi; j++ {
		k := graph.Key{Type: "user_id", Value: fmt.Sprintf("%s-u%d", prefix, j)}
		keys = append(keys, k)
		obs = append(obs, &graph.Observation{MessageID: fmt.Sprintf("%s-%d", prefix, j), Source: "bench", Time: time.Now(),
			Identifiers: []graph.Key{k, {Type: "email", Value: fmt.Sprintf("%s-u%d@corp.io", prefix, j)}},
			Traits:      map[string]any{"plan": "pro"}, Event: graph.Event{Type: "identify"}})
	}
	if _, err := st.Ingest(ctx, obs); err != nil {
		b.Error(err)
		return
	}
	ids, err := store.GetIdentifiers(ctx, keys)
	if err != nil {
		b.Error(err)
		return
	}
	var saves []segments.Save
	for _, id := range ids {
		saves = append(saves, segments.Save{State: &segments.ProfileState{Profile: id.Profile,
			Entries: map[string]segments.Entry{"segment:all": {Version: 1, Member: true, Since: time.Now()}}}, Reason: segments.ReasonData, At: time.Now()})
	}
	if _, err := seg.SaveStates(ctx, saves); err != nil {
		b.Error(err)
	}
}

// reportRate reports members/s and the load average now.
func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "members/s")
	backends.ReportLoad(b)
}

// BenchmarkMembersExportEmbedded runs on a new store, or on the store in
// IDGRAPH_BENCH_STORE (seeded there by an earlier run with the same
// IDGRAPH_BENCH_MEMBERS; the ingest sub-benchmark adds to it, so copy a
// seeded store for each run).
func BenchmarkMembersExportEmbedded(b *testing.B) {
	dir := os.Getenv("IDGRAPH_BENCH_STORE")
	if dir == "" {
		benchmarkMembersExport(b, backends.BenchPebble(b))
		return
	}
	store, err := pebble.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	benchmarkMembersExport(b, store)
}

func BenchmarkMembersExportNeo4j(b *testing.B) {
	if os.Getenv("NEO4J_URI") == "" {
		b.Skip("NEO4J_URI is not set")
	}
	benchmarkMembersExport(b, backends.BenchNeo4j(b))
}
