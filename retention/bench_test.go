package retention_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/retention"
)

// BenchmarkSweep measures the sweep rate: each iteration stores 20,000
// track events of 1,000 users (half past their 30-day TTL, half recent;
// both backends read only the expired half, through an index by time:
// pebble's BenchmarkSweepRead measures that read among few expired) and
// times one sweep in batches of 1,000, which deletes 10,000 events and
// marks 1,000 profiles as changed. docs/benchmarks.md records the
// figures.
func BenchmarkSweep(b *testing.B) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const events, users = 20000, 1000
	for _, bk := range backends.Bench() {
		b.Run(bk.Name, func(b *testing.B) {
			g := bk.Open(b)
			st := graph.NewStitcher(g, graph.DefaultConfig())
			st.RecordDataChanges = true
			sw := &retention.Sweeper{Store: g.(retention.Backend).Retention(),
				Policy: retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * 24 * time.Hour}},
				Now:    func() time.Time { return now }}
			deleted := 0
			round := 0
			for b.Loop() {
				b.StopTimer()
				round++
				for i := 0; i < events; i += 1000 {
					obs := make([]*graph.Observation, 1000)
					for j := range obs {
						n := i + j
						at := now.Add(-time.Duration(n) * time.Second)
						if n%2 == 0 {
							at = at.Add(-40 * 24 * time.Hour)
						}
						obs[j] = graphtest.Obs(fmt.Sprintf("r%d-%d", round, n), at, fmt.Sprintf("user_id:u%d", n%users))
						obs[j].Event = graph.Event{Type: "track", Name: "Page Viewed"}
					}
					if _, err := st.Ingest(context.Background(), obs); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				run, err := sw.Sweep(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				deleted += run.EventTotal()
			}
			b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
