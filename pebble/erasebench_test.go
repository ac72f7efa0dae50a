package pebble_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/pebble"
)

// BenchmarkEraseAmong10000 erases one person at a time from a store of
// 10,000 (each seen on two devices, identified with a user ID, email,
// phone and name, and tracked), all in memory so that fsync stays out of
// the figure: what grows with the store is what an erasure reads besides
// the person's own entries. docs/benchmarks.md records it against the
// erasure that scanned every hub marking, blocking and search entry.
func BenchmarkEraseAmong10000(b *testing.B) {
	const people = 10_000
	s, err := pebble.OpenMem()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	t0 := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	for i := range people {
		at := t0.Add(time.Duration(i) * time.Minute)
		m := fmt.Sprintf("%05d", i)
		id := graphtest.Obs("m3-"+m, at.Add(2*time.Second), "anonymous_id:a1-"+m, "user_id:u-"+m, "email:m"+m+"@example.com",
			fmt.Sprintf("phone:+1415%07d", i))
		id.Traits = map[string]any{"name": "Ada" + m + " Lovelace"}
		for _, o := range []*graph.Observation{graphtest.Obs("m1-"+m, at, "anonymous_id:a1-"+m),
			graphtest.Obs("m2-"+m, at.Add(time.Second), "anonymous_id:a2-"+m), id,
			graphtest.Obs("m4-"+m, at.Add(3*time.Second), "anonymous_id:a2-"+m, "user_id:u-"+m),
			graphtest.Obs("m5-"+m, at.Add(4*time.Second), "email:m"+m+"@example.com")} {
			if _, err := st.Ingest(ctx, []*graph.Observation{o}); err != nil {
				b.Fatal(err)
			}
		}
	}
	hash := erase.NewHasher([]byte("bench pepper")).Hash
	i := 0
	for b.Loop() {
		if i == people {
			b.Fatal("every person is erased")
		}
		n, err := s.Identifier(ctx, graph.Key{Type: "user_id", Value: fmt.Sprintf("u-%05d", i)})
		if err != nil {
			b.Fatal(err)
		}
		out, err := s.Erasure().ErasePerson(ctx, erase.Request{ID: fmt.Sprint("req-", i), Profile: n.Profile, At: t0, Suppress: hash})
		if err != nil || len(out.Identifiers) != 5 {
			b.Fatalf("erase person %d: %+v, %v", i, out, err)
		}
		i++
	}
}
