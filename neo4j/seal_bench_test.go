package neo4j_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/neo4j"
)

// BenchmarkIngestSealed compares ingest with and without payload
// encryption in one process: each iteration stitches a batch of 500
// observations (BenchmarkIngest's people, with a Segment-sized properties
// and context, and traits on identified messages) into a plain store and
// one into a sealed store on the same database, alternating which goes
// first, so that both see the same load. It reports each side's wall and client CPU time per batch and
// their ratios (sealed/plain).
func BenchmarkIngestSealed(b *testing.B) {
	ctx := context.Background()
	sealed := backends.BenchNeo4jSealed(b).(*neo4j.Store)
	uri, user, pass := backends.Neo4jURI(b)
	plain, err := neo4j.Open(ctx, uri, user, pass)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { plain.Close() })
	sides := []struct {
		name string
		st   *graph.Stitcher
		wall time.Duration
		cpu  time.Duration
	}{{name: "plain", st: graph.NewStitcher(plain, graph.DefaultConfig())}, {name: "sealed", st: graph.NewStitcher(sealed, graph.DefaultConfig())}}
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 500
	n, batches := 0, 0
	for b.Loop() {
		first := n
		for j := range sides {
			// Alternate which side goes first, so that neither always
			// meets the server's caches warmed by the other.
			side := &sides[(j+batches)%len(sides)]
			obs := sealedBatch(rng, side.name, first, batch)
			w, c := time.Now(), backends.CPUTime()
			if _, err := side.st.Ingest(ctx, obs); err != nil {
				b.Fatal(err)
			}
			side.wall += time.Since(w)
			side.cpu += backends.CPUTime() - c
		}
		n += batch
		batches++
	}
	for _, s := range sides {
		b.ReportMetric(float64(s.wall.Milliseconds())/float64(batches), s.name+"-ms/batch")
		b.ReportMetric(float64(s.cpu.Milliseconds())/float64(batches), s.name+"-cpu-ms/batch")
	}
	b.ReportMetric(float64(sealed.Queries())/float64(plain.Queries()), "sealed/plain-queries")
	b.ReportMetric(float64(sides[1].wall)/float64(sides[0].wall), "sealed/plain-wall")
	b.ReportMetric(float64(sides[1].cpu)/float64(sides[0].cpu), "sealed/plain-cpu")
	backends.ReportLoad(b)
}

// sealedBatch is BenchmarkIngest's batch from message first, under a
// prefix, with payloads.
func sealedBatch(rng *rand.Rand, prefix string, first, size int) []*graph.Observation {
	obs := make([]*graph.Observation, size)
	for i := range obs {
		n := first + i
		p := n / 4
		if n%10 == 9 {
			p = rng.IntN(p + 1)
		}
		o := &graph.Observation{MessageID: fmt.Sprint(prefix, "-", n), Source: "web",
			Time:        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond),
			Identifiers: []graph.Key{{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("%s-anon-%d-%d", prefix, p, n%2)}},
			Event: graph.Event{Type: "track", Name: "Product Viewed",
				Properties: json.RawMessage(fmt.Sprintf(`{"product_id":"sku-%d","name":"Walking shoes","price":89.5,"currency":"EUR","category":"shoes/outdoor","url":"https://shop.example/p/%d"}`, n%97, n%97)),
				Context:    json.RawMessage(fmt.Sprintf(`{"ip":"203.0.113.%d","locale":"en-GB","page":{"path":"/p/%d","referrer":"https://www.google.com/","title":"Walking shoes","url":"https://shop.example/p/%d"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}`, n%250, n%97, n%97))}}
		if n%2 == 0 {
			o.Identifiers = append(o.Identifiers,
				graph.Key{Type: graph.TypeUserID, Value: fmt.Sprint(prefix, "-user-", p)},
				graph.Key{Type: graph.TypeEmail, Value: fmt.Sprintf("%s-p%d@example.org", prefix, p)})
			o.Traits = map[string]any{"name": fmt.Sprintf("Person %d", p), "plan": "pro", "city": "Leeds"}
		}
		obs[i] = o
	}
	return obs
}
