package erase_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/pebble"
)

// BenchmarkIngestSuppression measures stitching throughput with an empty
// suppression set and with one of 1,000,000 entries (none of which the
// messages carry, so every identifier is hashed and looked up). The
// in-memory store keeps fsync out of the figure, which makes the check's
// share as large as it can be. docs/benchmarks.md records the ratio.
func BenchmarkIngestSuppression(b *testing.B) {
	h := erase.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	full := erase.NewSet(h)
	var buf [32]byte
	hashes := make([]string, 0, 1_000_000)
	for i := range 1_000_000 {
		sum := h.Sum(graph.Key{Type: "email", Value: fmt.Sprintf("erased-%d@mail.org", i)})
		copy(buf[:], sum[:])
		hashes = append(hashes, hex.EncodeToString(buf[:]))
	}
	full.Add(hashes...)
	for _, tc := range []struct {
		name string
		set  *erase.Set
	}{{"empty", erase.NewSet(h)}, {"1M", full}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := pebble.OpenMem()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			st := graph.NewStitcher(s, graph.DefaultConfig())
			st.Suppressor = tc.set
			const batch = 100
			n := 0
			b.ResetTimer()
			for b.Loop() {
				obs := make([]*graph.Observation, batch)
				for j := range obs {
					n++
					obs[j] = graphtest.Obs(fmt.Sprintf("m%d", n), t0, fmt.Sprintf("anonymous_id:a%d", n),
						fmt.Sprintf("user_id:u%d", n/3), fmt.Sprintf("email:p%d@mail.org", n/3))
				}
				res, err := st.Ingest(context.Background(), obs)
				if err != nil || res.Suppressed != 0 {
					b.Fatalf("ingest: %+v, %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSuppressedLookup is one identifier's check against 1M entries.
func BenchmarkSuppressedLookup(b *testing.B) {
	h := erase.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	set := erase.NewSet(h)
	for i := range 1_000_000 {
		set.Add(h.Hash(graph.Key{Type: "email", Value: fmt.Sprintf("erased-%d@mail.org", i)}))
	}
	k := graph.Key{Type: "email", Value: "someone@mail.org"}
	for b.Loop() {
		if set.Suppressed(k) {
			b.Fatal("suppressed")
		}
	}
}
