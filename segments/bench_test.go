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

// BenchmarkUpdate is the cost of one event through the engine: a profile
// holding n events (orders, pages and carts over 30 days), the oracle's 16
// definitions loaded, one Update naming an Order (which 11 of them read,
// directly or through in_segment/computed). The figures are in
// docs/benchmarks.md.
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
				b.ReportAllocs()
				for b.Loop() {
					if _, err := e.Update(context.Background(), ann.Profile, ch); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
