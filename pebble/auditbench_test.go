package pebble_test

import (
	"context"
	"testing"
	"time"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/pebble"
)

// BenchmarkAuditedLookup compares a lookup of one person (identifier,
// then profile) with the same lookup plus its audit entry, as GraphQL's
// `lookup` writes one, from concurrent clients on a store on disk: the
// entries' synced writes are shared (group commit).
func BenchmarkAuditedLookup(b *testing.B) {
	s, err := pebble.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	if _, err := st.Ingest(ctx, []*graph.Observation{graphtest.Obs("m1", time.Now(), "user_id:u1", "email:u1@example.com")}); err != nil {
		b.Fatal(err)
	}
	l := audit.New(s.AuditChain(), []byte("0123456789abcdef0123456789abcdef"))
	k := graph.Key{Type: "email", Value: "u1@example.com"}
	for _, audited := range []bool{false, true} {
		name := "unaudited"
		if audited {
			name = "audited"
		}
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n, err := s.Identifier(ctx, k)
					if err != nil {
						b.Fatal(err)
					}
					p, err := s.Profile(ctx, n.Profile)
					if err != nil {
						b.Fatal(err)
					}
					if audited {
						if _, err := l.Append(ctx, audit.Record{Action: "lookup", Target: p.ID, Subjects: []string{k.String()}}); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		})
	}
}
