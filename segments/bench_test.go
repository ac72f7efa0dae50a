package segments_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// BenchmarkUpdate is the cost of one event through the engine: a profile
// holding n events (orders, pages and carts over 30 days), the oracle's 16
// definitions loaded, one Update naming an Order (which 11 of them read,
// directly or through in_segment/computed), after each new order is
// stored. The figures are in docs/benchmarks.md.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, be := range backends.Bench() {
			b.Run(fmt.Sprintf("%s/events=%d", be.Name, n), func(b *testing.B) {
				g := be.Open(b)
				c := &clock{now: t0.Add(30 * 24 * time.Hour)}
				e := segments.NewEngine(g, g.(segments.Backend).Segments(), segments.EngineOptions{Now: c.Now})
				for _, d := range oracleDefs {
					if _, err := e.Define(context.Background(), d.kind, d.key, d.src, 0); err != nil {
						b.Fatal(err)
					}
				}
				var obs []*graph.Observation
				names := []string{"Order", "Page", "Cart"}
				for i := range n {
					at := t0.Add(time.Duration(i) * 30 * 24 * time.Hour / time.Duration(n))
					obs = append(obs, track(fmt.Sprint("m", i), names[i%3], at, fmt.Sprintf(`{"revenue": %d, "sku": "s%d"}`, i%100, i%7), "user_id:ann"))
				}
				if _, err := graph.NewStitcher(g, graph.DefaultConfig()).Ingest(context.Background(), obs); err != nil {
					b.Fatal(err)
				}
				ann, err := g.Identifier(context.Background(), graph.Key{Type: "user_id", Value: "ann"})
				if err != nil {
					b.Fatal(err)
				}
				ch := segments.Change{Events: []string{"Order"}}
				if _, err := e.Update(context.Background(), ann.Profile, segments.Change{All: true}); err != nil {
					b.Fatal(err)
				}
				st := graph.NewStitcher(g, graph.DefaultConfig())
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					// A new order each time, so that results change and
					// are saved; the ingest is not timed.
					b.StopTimer()
					i++
					o := track(fmt.Sprint("new", i), "Order", c.Now().Add(-time.Hour), `{"revenue": 60, "sku": "s1"}`, "user_id:ann")
					if _, err := st.Ingest(context.Background(), []*graph.Observation{o}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, err := e.Update(context.Background(), ann.Profile, ch); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkTimerExit measures, on the real clock, how late a profile
// leaves a windowed segment with no new event: one event, a within(1s)
// segment, Engine.Run in the background; the metric is the exit record's
// time minus the instant the event left the window (the figure is in
// docs/benchmarks.md).
func BenchmarkTimerExit(b *testing.B) {
	for _, be := range backends.Bench() {
		b.Run(be.Name, func(b *testing.B) {
			g := be.Open(b)
			s := g.(segments.Backend).Segments()
			e := segments.NewEngine(g, s, segments.EngineOptions{})
			if _, err := e.Define(context.Background(), lang.KindSegment, "pinged", `events("Ping").within(1s).exists()`, 0); err != nil {
				b.Fatal(err)
			}
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				e.Run(ctx, nil, time.Second, func(err error) { b.Error(err) })
			}()
			defer func() { stop(); <-done }()
			var worst, total time.Duration
			var after uint64
			i := 0
			for b.Loop() {
				at := time.Now().UTC()
				id := fmt.Sprintf("user_id:u%d", i)
				if _, err := graph.NewStitcher(g, graph.DefaultConfig()).Ingest(ctx, []*graph.Observation{track(fmt.Sprint("m", i), "Ping", at, "", id)}); err != nil {
					b.Fatal(err)
				}
				ident, err := g.Identifier(ctx, graph.Key{Type: "user_id", Value: fmt.Sprintf("u%d", i)})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Update(ctx, ident.Profile, segments.Change{Events: []string{"Ping"}}); err != nil {
					b.Fatal(err)
				}
				exit := waitExit(b, s, ident.Profile, &after)
				late := exit.Sub(at.Add(time.Second))
				worst, total = max(worst, late), total+late
				i++
			}
			b.ReportMetric(float64(worst.Milliseconds()), "worst-ms-late")
			b.ReportMetric(float64(total.Milliseconds())/float64(i), "mean-ms-late")
		})
	}
}

// waitExit waits for the profile's exit record and returns its time.
func waitExit(b *testing.B, s segments.Store, profile string, after *uint64) time.Time {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cs, err := s.Changes(context.Background(), *after, 100)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range cs {
			*after = c.Sequence
			if c.Profile == profile && c.Direction == segments.Exited {
				return c.Time
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("%s did not exit within 30 s", profile)
	return time.Time{}
}

// BenchmarkPreview is previewSegment's cost: an unsaved trait-only
// segment evaluated over n profiles (one in four on the "pro" plan), and a
// windowed one that reads each profile's events (one order each). The
// figures are in docs/benchmarks.md.
//
// IDGRAPH_BENCH_PROFILES=n runs only n profiles, on both backends (for
// the 1,000,000-profile figure).
func BenchmarkPreview(b *testing.B) {
	sizes := benchSizes(10000, 100000)
	for _, n := range sizes {
		for _, be := range backends.Bench() {
			if be.Name == "neo4j" && n > 10000 && len(sizes) > 1 {
				continue // seeding takes minutes: the smaller figure says enough
			}
			b.Run(fmt.Sprintf("%s/profiles=%d", be.Name, n), func(b *testing.B) {
				g := be.Open(b)
				e := segments.NewEngine(g, g.(segments.Backend).Segments(), segments.EngineOptions{Now: func() time.Time { return t0 }})
				seedProfiles(b, g, n)
				for _, c := range []struct{ name, src string }{
					{"trait", `trait("plan") = "pro"`},
					{"events", `events("Order").within(30d).exists()`},
				} {
					b.Run(c.name, func(b *testing.B) {
						cpu := backends.CPUTime()
						for b.Loop() {
							p, err := e.Preview(context.Background(), c.src, 10)
							if err != nil {
								b.Fatal(err)
							}
							if p.Profiles != n {
								b.Fatalf("%d profiles evaluated, not %d", p.Profiles, n)
							}
						}
						b.ReportMetric((backends.CPUTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
						backends.ReportLoad(b)
					})
				}
			})
		}
	}
}

// seedProfiles stitches n profiles, one in four on the "pro" plan, each
// with one Order event i%60 days before t0 (half of them within 30 days).
func seedProfiles(b *testing.B, g graph.Store, n int) {
	b.Helper()
	st := graph.NewStitcher(g, graph.DefaultConfig())
	plans := []string{"pro", "free", "free", "team"}
	for lo := 0; lo < n; lo += 1000 {
		var obs []*graph.Observation
		for i := lo; i < min(lo+1000, n); i++ {
			o := track(fmt.Sprint("m", i), "Order", t0.Add(-time.Duration(i%60)*24*time.Hour), `{"revenue": 10}`, fmt.Sprint("user_id:u", i))
			o.Traits = map[string]any{"plan": plans[i%4]}
			obs = append(obs, o)
		}
		if _, err := st.Ingest(context.Background(), obs); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSizes is the profile counts of a benchmark: its defaults, or
// IDGRAPH_BENCH_PROFILES alone.
func benchSizes(defaults ...int) []int {
	if v, err := strconv.Atoi(os.Getenv("IDGRAPH_BENCH_PROFILES")); err == nil {
		return []int{v}
	}
	return defaults
}

// BenchmarkBackfill is a new segment's backfill over n profiles (seeded
// as BenchmarkPreview's), trait-only and windowed (reading each profile's
// events), with no other definition loaded. Each round edits the
// definition (a new version, not timed), so that every profile is
// evaluated and its state saved again, as for a new segment. The figures
// are in docs/benchmarks.md.
//
// IDGRAPH_BENCH_PROFILES=n runs only n profiles, on both backends.
func BenchmarkBackfill(b *testing.B) {
	for _, n := range benchSizes(10000) {
		for _, be := range backends.Bench() {
			b.Run(fmt.Sprintf("%s/profiles=%d", be.Name, n), func(b *testing.B) {
				g := be.Open(b)
				s := g.(segments.Backend).Segments()
				e := segments.NewEngine(g, s, segments.EngineOptions{Now: func() time.Time { return t0 }})
				seedProfiles(b, g, n)
				for _, c := range []struct {
					name, src string
					members   int // -1: not checked
				}{
					{"trait", `trait("plan") = "pro"`, (n + 3) / 4},
					{"events", `events("Order").within(30d).exists()`, -1}, // not checked
				} {
					b.Run(c.name, func(b *testing.B) {
						ctx := context.Background()
						version := 0
						var cpu time.Duration
						for b.Loop() {
							b.StopTimer()
							d, err := e.Define(ctx, lang.KindSegment, c.name, c.src, version)
							if err != nil {
								b.Fatal(err)
							}
							version = d.Version
							start := backends.CPUTime()
							b.StartTimer()
							if err := e.Backfill(ctx, d); err != nil {
								b.Fatal(err)
							}
							cpu += backends.CPUTime() - start
						}
						if got, err := s.MemberCount(ctx, c.name); err != nil || c.members >= 0 && got != c.members {
							b.Fatalf("%d members, %v; want %d", got, err, c.members)
						}
						b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
						backends.ReportLoad(b)
					})
				}
			})
		}
	}
}
