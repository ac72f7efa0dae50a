package segments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
)

// BenchmarkCatchUp is the live path's cost per change: n profiles holding
// 20 events each (orders, pages and carts over 30 days), the oracle's 16
// definitions loaded; each round stores one new Order for every profile
// (not timed) and CatchUp evaluates the pending changes. cpu-s/change is
// the process CPU time per pending change evaluated and saved, the figure
// in docs/benchmarks.md (a ratio of two builds, as wall clock means
// nothing on a loaded machine).
func BenchmarkCatchUp(b *testing.B) {
	const n, events = 500, 20
	for _, be := range backends.Bench() {
		b.Run(fmt.Sprintf("%s/profiles=%d", be.Name, n), func(b *testing.B) {
			ctx := context.Background()
			g := be.Open(b)
			c := &clock{now: t0.Add(30 * 24 * time.Hour)}
			e := segments.NewEngine(g, g.(segments.Backend).Segments(), segments.EngineOptions{Now: c.Now})
			for _, d := range oracleDefs {
				if _, err := e.Define(ctx, d.kind, d.key, d.src, 0); err != nil {
					b.Fatal(err)
				}
			}
			st := graph.NewStitcher(g, graph.DefaultConfig())
			st.RecordDataChanges = true
			names := []string{"Order", "Page", "Cart"}
			var obs []*graph.Observation
			for p := range n {
				for i := range events {
					at := t0.Add(time.Duration(i) * 30 * 24 * time.Hour / events)
					obs = append(obs, track(fmt.Sprint("m", p, "-", i), names[(p+i)%3], at,
						fmt.Sprintf(`{"revenue": %d, "sku": "s%d"}`, (p+i)%100, i%7), fmt.Sprint("user_id:u", p)))
				}
			}
			if _, err := st.Ingest(ctx, obs); err != nil {
				b.Fatal(err)
			}
			catchUp := func() int {
				total := 0
				for {
					k, err := e.CatchUp(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if k == 0 {
						return total
					}
					total += k
				}
			}
			catchUp()
			var cpu time.Duration
			changes, round := 0, 0
			for b.Loop() {
				b.StopTimer()
				round++
				obs = obs[:0]
				for p := range n {
					obs = append(obs, track(fmt.Sprint("new", round, "-", p), "Order", c.Now().Add(-time.Hour),
						`{"revenue": 60, "sku": "s1"}`, fmt.Sprint("user_id:u", p)))
				}
				if _, err := st.Ingest(ctx, obs); err != nil {
					b.Fatal(err)
				}
				start := backends.CPUTime()
				b.StartTimer()
				k := catchUp()
				cpu += backends.CPUTime() - start
				if k != n {
					b.Fatalf("%d changes caught up, not %d", k, n)
				}
				changes += k
			}
			b.ReportMetric(cpu.Seconds()/float64(changes), "cpu-s/change")
			backends.ReportLoad(b)
		})
	}
}
