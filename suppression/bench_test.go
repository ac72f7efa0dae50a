package suppression_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/suppression"
)

// benchEntries is the list size the counts are read at.
const benchEntries = 100_000

// benchEntry is entry i: four scopes, two types, hashes apart by i.
func benchEntry(i int) suppression.Entry {
	scopes := []suppression.Scope{{Kind: suppression.Global}, {Kind: suppression.Channel, Target: "email"},
		{Kind: suppression.Channel, Target: "sms"}, {Kind: suppression.Destination, Target: "dst_0123456789abcdef"}}
	return suppression.Entry{Scope: scopes[i%len(scopes)], Hash: fmt.Sprintf("%064x", i), Type: []string{"email", "phone"}[i/4%2],
		CreatedAt: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}
}

// BenchmarkSuppressionLists reads the counts of a store of 100,000
// entries (eight scope and type groups), then adds 100 new entries a
// call and removes 100 listed ones a call, on each backend:
// docs/benchmarks.md, "Suppression list counts without scans".
func BenchmarkSuppressionLists(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends.Bench() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.Open(b).(suppression.Backend).SuppressionLists()
			for i := 0; i < benchEntries; i += suppression.MaxEntries {
				es := make([]suppression.Entry, suppression.MaxEntries)
				for j := range es {
					es[j] = benchEntry(i + j)
				}
				if n, err := s.AddSuppressionEntries(ctx, es); err != nil || n != len(es) {
					b.Fatalf("load: %d, %v", n, err)
				}
			}
			b.Run("counts", func(b *testing.B) {
				for b.Loop() {
					cs, err := s.SuppressionCounts(ctx)
					if err != nil || len(cs) != 8 {
						b.Fatalf("counts: %+v, %v", cs, err)
					}
				}
				backends.ReportLoad(b)
			})
			// Kept across runs (-count): each add is of new entries, each
			// remove of listed ones.
			const batch = 100
			next, k := benchEntries, 0
			b.Run("add100", func(b *testing.B) {
				for b.Loop() {
					es := make([]suppression.Entry, batch)
					for j := range es {
						es[j] = benchEntry(next)
						next++
					}
					if n, err := s.AddSuppressionEntries(ctx, es); err != nil || n != batch {
						b.Fatalf("add: %d, %v", n, err)
					}
				}
				backends.ReportLoad(b)
			})
			b.Run("remove100", func(b *testing.B) {
				// Call k removes 100 entries of scope k%4 (entries r, r+4,
				// r+8, … share scope r), each listed and none removed before.
				for b.Loop() {
					r, first := k%4, k/4*batch
					if 4*(first+batch) > benchEntries {
						b.Fatal("removed every loaded entry: use a smaller -benchtime")
					}
					sc := benchEntry(r).Scope
					hs := make([]string, batch)
					for j := range hs {
						hs[j] = benchEntry(r + 4*(first+j)).Hash
					}
					k++
					if n, err := s.RemoveSuppressionEntries(ctx, sc, hs); err != nil || n != batch {
						b.Fatalf("remove: %d, %v", n, err)
					}
				}
				backends.ReportLoad(b)
			})
		})
	}
}
