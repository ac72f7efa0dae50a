package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
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

// probeStore notes, for each probe's entry into the probe segment, when
// the page of pending changes holding it was read (and how many pages had
// been read before), when its save began and when it returned (its
// durability: the save commits it): where a probe's latency goes.
type probeStore struct {
	segments.Store
	mu    sync.Mutex
	pages int                  // pages of pending changes read so far
	read  map[string]pageRead  // profile → the last page read holding it
	saved map[string]probeSave // profile → its probe entry's save
	// pageSizes are the sizes of the pages read, saves how long each
	// SaveStates call took, and its size.
	pageSizes []int
	full      int // pages of limit changes: more were waiting
	saves     []time.Duration
}

type pageRead struct {
	at time.Time
	n  int // the page's number, from 1
}

type probeSave struct {
	start, end time.Time
	read       pageRead
}

func (p *probeStore) PendingChanges(ctx context.Context, after string, limit int) ([]segments.Pending, error) {
	ps, err := p.Store.PendingChanges(ctx, after, limit)
	now := time.Now()
	p.mu.Lock()
	if len(ps) > 0 {
		p.pages++
		p.pageSizes = append(p.pageSizes, len(ps))
	}
	if len(ps) == limit {
		p.full++
	}
	for _, c := range ps {
		p.read[c.Profile] = pageRead{at: now, n: p.pages}
	}
	p.mu.Unlock()
	return ps, err
}

func (p *probeStore) SaveStates(ctx context.Context, saves []segments.Save) ([]*segments.ChangeRecord, error) {
	start := time.Now()
	cs, err := p.Store.SaveStates(ctx, saves)
	now := time.Now()
	p.mu.Lock()
	p.saves = append(p.saves, now.Sub(start))
	for _, c := range cs {
		if c.Segment == "probe" && c.Direction == segments.Entered {
			p.saved[c.Profile] = probeSave{start: start, end: now, read: p.read[c.Profile]}
		}
	}
	p.mu.Unlock()
	return cs, err
}

// pagesRead is how many pages of pending changes have been read.
func (p *probeStore) pagesRead() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pages
}

// segmentsServer is a server whose engine maintains defs (none when nil)
// on a fresh store.
func segmentsServer(b *testing.B, store graph.Store, defs bool) (http.Handler, *probeStore, func()) {
	b.Helper()
	h, ps, _, stop := segmentsServerEngine(b, store, defs)
	return h, ps, stop
}

// segmentsServerEngine is segmentsServer that also returns its engine.
func segmentsServerEngine(b *testing.B, store graph.Store, defs bool) (http.Handler, *probeStore, *segments.Engine, func()) {
	b.Helper()
	ps := &probeStore{Store: store.(segments.Backend).Segments(), read: map[string]pageRead{}, saved: map[string]probeSave{}}
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
	return srv.Handler(), ps, eng, srv.Close
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
				h, _, stop := segmentsServer(b, bk.Open(b), defs)
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
			})
		}
	}
}

// backendsForBench is the embedded store, and Neo4j with
// IDGRAPH_BENCH_NEO4J=1 (its figures need a server of its own).
func backendsForBench() []backends.BenchBackend {
	all := backends.Bench()
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
			store := bk.Open(b)
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
			pagesAtAck := make([]int, batches)
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
					acked[i], pagesAtAck[i] = time.Now(), ps.pagesRead()
					<-inflight
				})
			}
			wg.Wait()
			sent := time.Since(start)
			var lat []time.Duration
			var probes []probeStages
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
						sv, ok := ps.saved[id.Profile]
						ps.mu.Unlock()
						if ok {
							lat = append(lat, sv.end.Sub(acked[i]))
							probes = append(probes, probeStages{
								total: sv.end.Sub(acked[i]), wait: max(sv.read.at.Sub(acked[i]), 0),
								plan: sv.start.Sub(sv.read.at), save: sv.end.Sub(sv.start),
								pagesBefore: max(sv.read.n-pagesAtAck[i]-1, 0)})
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
			reportStages(b, probes, ps)
		})
	}
}

// probeStages is where a probe's latency went: waiting for the page
// holding it to be read (behind pagesBefore pages read after its
// acknowledgement), evaluating the page (plan), saving it (save: the
// store's lock and the synced commit).
type probeStages struct {
	total, wait, plan, save time.Duration
	pagesBefore             int
}

// reportStages reports the stages of the median probe and the mean of the
// slowest 1% (those the p99 is made of), and how full the pages were.
func reportStages(b *testing.B, probes []probeStages, ps *probeStore) {
	slices.SortFunc(probes, func(x, y probeStages) int { return cmp.Compare(x.total, y.total) })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	mid := probes[len(probes)/2]
	b.ReportMetric(ms(mid.wait), "p50-wait-ms")
	b.ReportMetric(ms(mid.plan), "p50-plan-ms")
	b.ReportMetric(ms(mid.save), "p50-save-ms")
	tail := probes[len(probes)*99/100:]
	var wait, plan, save time.Duration
	var before int
	for _, p := range tail {
		wait, plan, save, before = wait+p.wait, plan+p.plan, save+p.save, before+p.pagesBefore
	}
	n := time.Duration(len(tail))
	b.ReportMetric(ms(wait/n), "tail-wait-ms")
	b.ReportMetric(ms(plan/n), "tail-plan-ms")
	b.ReportMetric(ms(save/n), "tail-save-ms")
	b.ReportMetric(float64(before)/float64(len(tail)), "tail-pages-before")
	ps.mu.Lock()
	defer ps.mu.Unlock()
	most := 0
	for _, n := range ps.pageSizes {
		most = max(most, n)
	}
	b.ReportMetric(float64(len(ps.pageSizes)), "pages")
	b.ReportMetric(float64(ps.full), "full-pages")
	b.ReportMetric(float64(most), "largest-page")
	saves := slices.Sorted(slices.Values(ps.saves))
	b.ReportMetric(ms(saves[len(saves)*99/100]), "save-p99-ms")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
