package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// BenchmarkBackfillBesideIngest is issue 13's backfill figure: a new
// trait-only segment backfilled over IDGRAPH_BENCH_PROFILES profiles
// (default 100,000) with issue 13's 150 definitions live, alone and while
// /v1/batch ingest runs flat out beside it; and the ingest rate alone and
// during that backfill (the issue asks ≥ 0.5 of it). Compare the figures
// of one run:
//
//	IDGRAPH_BENCH_PROFILES=1000000 go test ./server -run '^$' -bench BenchmarkBackfillBesideIngest -benchtime 1x
func BenchmarkBackfillBesideIngest(b *testing.B) {
	n := envInt("IDGRAPH_BENCH_PROFILES", 100_000)
	for _, bk := range backendsForBench() {
		for _, defs := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/definitions=%v", bk.Name, map[bool]string{false: "none", true: "150"}[defs]), func(b *testing.B) {
				benchmarkBackfillBesideIngest(b, bk.Open(b), defs, n)
			})
		}
	}
}

// benchmarkBackfillBesideIngest runs one case of BenchmarkBackfillBesideIngest.
func benchmarkBackfillBesideIngest(b *testing.B, store graph.Store, defs bool, n int) {
	h, _, eng, stop := segmentsServerEngine(b, store, defs)
	defer stop()
	ctx := context.Background()
	seedPlans(b, h, eng, n)
	now, batch := time.Now(), 0
	// Warm up: the first pass over the traffic's visitors creates their
	// profiles, slower than the updates that follow.
	for ; batch < 80; batch++ {
		postBatch(b, h, segmentsBody(batch, 500, 0, now))
	}
	settle(b, eng)
	// ingest posts batches of 500 until ctx ends and returns the
	// rate reached.
	ingest := func(ctx context.Context) float64 {
		start, msgs := time.Now(), 0
		for ctx.Err() == nil {
			postBatch(b, h, segmentsBody(batch, 500, 0, now))
			batch++
			msgs += 500
		}
		return float64(msgs) / time.Since(start).Seconds()
	}
	version := 0
	backfill := func() time.Duration {
		d, err := eng.Define(ctx, lang.KindSegment, "pro", `trait("plan") = "pro"`, version)
		if err != nil {
			b.Fatal(err)
		}
		version = d.Version
		start := time.Now()
		if err := eng.Backfill(ctx, d); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var alone, beside time.Duration
	var rateAlone, rateBeside float64
	for b.Loop() {
		alone = backfill()
		c, cancel := context.WithTimeout(ctx, max(alone, 5*time.Second))
		rateAlone = ingest(c)
		cancel()
		settle(b, eng)
		c, cancel = context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { rateBeside = ingest(c) })
		beside = backfill()
		cancel()
		wg.Wait()
	}
	if got, err := eng.Store().MemberCount(ctx, "pro"); err != nil || got < (n+3)/4 {
		b.Fatalf("%d members, %v; want at least %d", got, err, (n+3)/4)
	}
	b.ReportMetric(alone.Seconds(), "backfill-alone-s")
	b.ReportMetric(beside.Seconds(), "backfill-beside-s")
	b.ReportMetric(rateAlone, "ingest-alone-msgs/s")
	b.ReportMetric(rateBeside, "ingest-beside-msgs/s")
	b.ReportMetric(rateBeside/rateAlone, "ingest-ratio")
	backends.ReportLoad(b)
}

// seedPlans identifies n profiles through the server, one in four on
// the "pro" plan, and waits until the engine has evaluated them all
// (seeding is not measured).
func seedPlans(b *testing.B, h http.Handler, eng *segments.Engine, n int) {
	b.Helper()
	plans := []string{"pro", "free", "free", "team"}
	for lo := 0; lo < n; lo += 500 {
		msgs := make([]map[string]any, 0, 500)
		for i := lo; i < min(lo+500, n); i++ {
			msgs = append(msgs, map[string]any{"type": "identify", "messageId": fmt.Sprint("seed-", i),
				"userId": fmt.Sprint("seed-", i), "traits": map[string]any{"plan": plans[i%4]}})
		}
		body, _ := json.Marshal(map[string]any{"batch": msgs})
		postBatch(b, h, body)
	}
	settle(b, eng)
}

// settle waits until the engine has evaluated every pending change.
func settle(b *testing.B, eng *segments.Engine) {
	b.Helper()
	for {
		taken, err := eng.CatchUp(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if taken == 0 {
			return
		}
	}
}
