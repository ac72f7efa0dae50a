package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	"github.com/idgraph/idgraph/server"
)

// issue13Definitions are issue 13's benchmark set: 100 segments (trait
// only, windowed, nested and funnels) and 50 computed traits, over the
// events and traits segmentsBody sends, plus the probe segment the
// latency is measured with.
func issue13Definitions() (segs, computed map[string]string) {
	segs, computed = map[string]string{"probe": `events("Probe").exists()`}, map[string]string{}
	for i := range 100 {
		var src string
		switch i % 4 {
		case 0:
			src = fmt.Sprintf(`trait("plan") = "p%d" or trait("tier") >= %d`, i%7, i%10)
		case 1:
			src = fmt.Sprintf(`events("Order Completed").within(%dd).where(prop("revenue") >= %d).count() >= %d`, 7+i%30, i%50, 1+i%3)
		case 2:
			src = fmt.Sprintf(`events("Product Viewed").within(7d).where(
  events("Product Added").after_parent(1h).where(prop("sku") = parent.prop("sku")).exists()
).exists() and id_count("anonymous_id") >= %d`, 1+i%2)
		case 3:
			src = fmt.Sprintf(`in_segment("s%d") and not events("Order Completed").within(%dd).exists()`, i-3, 1+i%14)
		}
		segs[fmt.Sprintf("s%d", i)] = src
	}
	for i := range 50 {
		var src string
		switch i % 3 {
		case 0:
			src = fmt.Sprintf(`events("Order Completed").within(%dd).sum(prop("revenue"))`, 30+i)
		case 1:
			src = `events("Order Completed").latest(10).mode(prop("category"))`
		case 2:
			src = fmt.Sprintf(`days_since(events("Page Viewed").within(%dd).last_at())`, 60+i)
		}
		computed[fmt.Sprintf("c%d", i)] = src
	}
	return segs, computed
}

// segmentsBody is a /v1/batch body: each message one of 20,000 visitors,
// viewing, adding and buying products, some identified with a plan; every
// probeEvery-th message is a Probe from a visitor of its own, whose entry
// into the probe segment times the path from ack to change record.
func segmentsBody(batch, size, probeEvery int, now time.Time) []byte {
	msgs := make([]map[string]any, size)
	for i := range msgs {
		n := batch*size + i
		v := (n * 7919) % 20000
		m := map[string]any{"messageId": fmt.Sprintf("m-%d", n), "anonymousId": fmt.Sprintf("anon-%d", v),
			"timestamp": now.Add(-time.Duration(n%1000) * time.Minute).UTC().Format(time.RFC3339Nano)}
		sku := fmt.Sprintf("sku-%d", n%50)
		switch {
		case probeEvery > 0 && n%probeEvery == 0:
			m["type"], m["event"], m["anonymousId"] = "track", "Probe", fmt.Sprintf("probe-%d", n)
		case n%5 == 0:
			m["type"], m["event"], m["properties"] = "track", "Order Completed", map[string]any{"revenue": n % 200, "sku": sku, "category": fmt.Sprintf("cat-%d", n%6)}
		case n%5 == 1:
			m["type"], m["event"], m["properties"] = "track", "Product Added", map[string]any{"sku": sku}
		case n%5 == 2:
			m["type"], m["event"], m["properties"] = "track", "Product Viewed", map[string]any{"sku": sku}
		case n%5 == 3 && v%3 == 0:
			m["type"], m["userId"], m["traits"] = "identify", fmt.Sprintf("user-%d", v), map[string]any{"plan": fmt.Sprintf("p%d", n%7), "tier": n % 10}
		default:
			m["type"], m["event"] = "track", "Page Viewed"
		}
		msgs[i] = m
	}
	body, _ := json.Marshal(map[string]any{"batch": msgs})
	return body
}

// probeStore notes when each change record of the probe segment is
// saved (its durability: the save commits it).
type probeStore struct {
	segments.Store
	mu    sync.Mutex
	saved map[string]time.Time // profile → when its probe entry was saved
}

func (p *probeStore) SaveStates(ctx context.Context, saves []segments.Save) ([]*segments.ChangeRecord, error) {
	cs, err := p.Store.SaveStates(ctx, saves)
	now := time.Now()
	p.mu.Lock()
	for _, c := range cs {
		if c.Segment == "probe" && c.Direction == segments.Entered {
			p.saved[c.Profile] = now
		}
	}
	p.mu.Unlock()
	return cs, err
}

// segmentsServer is a server whose engine maintains defs (none when nil)
// on a fresh store.
func segmentsServer(b *testing.B, store graph.Store, defs bool) (http.Handler, *probeStore, func()) {
	b.Helper()
	ps := &probeStore{Store: store.(segments.Backend).Segments(), saved: map[string]time.Time{}}
	st := graph.NewStitcher(store, graph.DefaultConfig())
	st.RecordDataChanges = true
	eng := segments.NewEngine(store, ps, segments.EngineOptions{})
	ctx := context.Background()
	if defs {
		segs, computed := issue13Definitions()
		for _, kind := range []struct {
			k    lang.Kind
			defs map[string]string
		}{{lang.KindComputed, computed}, {lang.KindSegment, segs}} {
			// s3 reads s0, s7 reads s4, ...: define in the order of their
			// numbers (by length, then text).
			keys := slices.Sorted(maps.Keys(kind.defs))
			slices.SortStableFunc(keys, func(a, c string) int { return len(a) - len(c) })
			for _, k := range keys {
				d, err := eng.Define(ctx, kind.k, k, kind.defs[k], 0)
				if err != nil {
					b.Fatalf("define %s: %v", k, err)
				}
				if err := eng.Backfill(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	srv := server.New(server.Config{Store: store, Stitcher: st, Normalizer: graph.NewNormalizer("US"), Segments: eng,
		Keys: server.Keys{Write: []string{writeKey}, Read: []string{readKey}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AuthFailures: -1, Rates: map[auth.Role]server.Rate{}})
	return srv.Handler(), ps, srv.Close
}

// post sends one batch through the handler (no network) and fails on
// anything but 200.
func postBatch(b *testing.B, h http.Handler, body []byte) {
	req := httptest.NewRequest(http.MethodPost, "/v1/batch", bytes.NewReader(body))
	req.SetBasicAuth(writeKey, "")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Errorf("batch: %d %s", w.Code, w.Body)
	}
}

// BenchmarkIngestSegments is issue 13's throughput figure: /v1/batch of
// 500 messages with the segments engine maintaining no definitions, then
// issue 13's 150 (100 segments, 50 computed traits) in the background of
// the same build. Compare the msgs/s of the two in one run.
//
//	go test ./server -run '^$' -bench BenchmarkIngestSegments -benchtime 40x
func BenchmarkIngestSegments(b *testing.B) {
	for _, bk := range backendsForBench() {
		for _, defs := range []bool{false, true} {
			name := bk.Name + "/none"
			if defs {
				name = bk.Name + "/150-definitions"
			}
			b.Run(name, func(b *testing.B) {
				t := &testing.T{}
				h, _, stop := segmentsServer(b, bk.Open(t), defs)
				defer stop()
				now := time.Now()
				bodies := make([][]byte, b.N)
				for i := range b.N {
					bodies[i] = segmentsBody(i, 500, 0, now)
				}
				b.ResetTimer()
				for i := range b.N {
					postBatch(b, h, bodies[i])
				}
				b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "msgs/s")
				b.StopTimer()
				runtime.KeepAlive(t)
			})
		}
	}
}

// backendsForBench is the embedded store, and Neo4j with
// IDGRAPH_BENCH_NEO4J=1 (its figures need a server of its own).
func backendsForBench() []backends.Backend {
	all := backends.All()
	if os.Getenv("IDGRAPH_BENCH_NEO4J") == "" {
		return all[:1]
	}
	return all
}

// BenchmarkSegmentsLatency is issue 13's latency figure: messages sent
// open-loop at IDGRAPH_BENCH_RATE a second (default 5,000, in batches of
// 50) for IDGRAPH_BENCH_SECONDS (default 10) with the 150 definitions
// live; every 100th message is a Probe from a new visitor, and its
// latency is from the batch's acknowledgement to the save (commit) of the
// visitor's entry into the probe segment: what Profile.segments shows and
// what destinations read.
//
//	go test ./server -run '^$' -bench BenchmarkSegmentsLatency -benchtime 1x
func BenchmarkSegmentsLatency(b *testing.B) {
	rate, seconds := envInt("IDGRAPH_BENCH_RATE", 5000), envInt("IDGRAPH_BENCH_SECONDS", 10)
	for _, bk := range backendsForBench() {
		b.Run(bk.Name, func(b *testing.B) {
			t := &testing.T{}
			store := bk.Open(t)
			h, ps, stop := segmentsServer(b, store, true)
			defer stop()
			const size, probeEvery = 50, 100
			batches := rate * seconds / size
			now := time.Now()
			bodies := make([][]byte, batches)
			for i := range batches {
				bodies[i] = segmentsBody(i, size, probeEvery, now)
			}
			acked := make([]time.Time, batches)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			inflight := make(chan struct{}, 16)
			for i := range batches {
				// Open loop: batch i is due at start + i/rate·size.
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second * size / time.Duration(rate))))
				inflight <- struct{}{}
				wg.Go(func() {
					postBatch(b, h, bodies[i])
					acked[i] = time.Now()
					<-inflight
				})
			}
			wg.Wait()
			sent := time.Since(start)
			var lat []time.Duration
			deadline := time.Now().Add(60 * time.Second)
			for i := range batches {
				for j := range size {
					n := i*size + j
					if n%probeEvery != 0 {
						continue
					}
					id, err := store.Identifier(context.Background(), graph.Key{Type: "anonymous_id", Value: fmt.Sprintf("probe-%d", n)})
					if err != nil || id == nil {
						b.Fatalf("probe %d: %v", n, err)
					}
					for {
						ps.mu.Lock()
						at, ok := ps.saved[id.Profile]
						ps.mu.Unlock()
						if ok {
							lat = append(lat, at.Sub(acked[i]))
							break
						}
						if time.Now().After(deadline) {
							b.Fatalf("probe %d never entered the probe segment", n)
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
			b.ReportMetric(float64(batches*size)/sent.Seconds(), "msgs/s")
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(pct(1), "max-ms")
			b.ReportMetric(float64(len(lat)), "probes")
			runtime.KeepAlive(t)
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
