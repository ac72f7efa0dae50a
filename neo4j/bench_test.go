package neo4j

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// BenchmarkIngest stitches batches of 500 observations, as the HTTP batch
// endpoint would: each person sends four messages from two anonymous IDs,
// half of them with user_id and email, and every tenth message comes from
// a returning person stored earlier. Run with -benchtime=Nx (N batches).
func BenchmarkIngest(b *testing.B) {
	s := openTest(b)
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 500
	n := 0
	for b.Loop() {
		obs := make([]*graph.Observation, batch)
		for i := range obs {
			p := n / 4
			if n%10 == 9 {
				p = rng.IntN(p + 1)
			}
			o := &graph.Observation{MessageID: fmt.Sprint("bench-", n), Source: "web",
				Time:        t0.Add(time.Duration(n) * time.Millisecond),
				Identifiers: []graph.Key{{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%d-%d", p, n%2)}}}
			if n%2 == 0 {
				o.Identifiers = append(o.Identifiers,
					graph.Key{Type: graph.TypeUserID, Value: fmt.Sprint("user-", p)},
					graph.Key{Type: graph.TypeEmail, Value: fmt.Sprintf("p%d@example.org", p)})
			}
			obs[i] = o
			n++
		}
		if _, err := st.Ingest(ctx, obs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
