package pebble_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/suppression"
)

// BenchmarkSuppressionCountsAtOpen opens a store of 100,000 suppression
// list entries and adds one entry, as the first call after a restart:
// open-ms is what Open took, first-add-ms what that first add took (when
// the counts were taken at the first use, it held the write lock through a
// scan of every entry).
func BenchmarkSuppressionCountsAtOpen(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s, err := pebble.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	entry := func(i int) suppression.Entry {
		return suppression.Entry{Scope: suppression.Scope{Kind: suppression.Global}, Hash: fmt.Sprintf("%064x", i),
			Type: "email", CreatedAt: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}
	}
	const entries = 100_000
	for i := 0; i < entries; i += suppression.MaxEntries {
		es := make([]suppression.Entry, suppression.MaxEntries)
		for j := range es {
			es[j] = entry(i + j)
		}
		if _, err := s.SuppressionLists().AddSuppressionEntries(ctx, es); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	var opening, first time.Duration
	next := entries
	for b.Loop() {
		start := time.Now()
		s, err := pebble.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		opened := time.Now()
		if n, err := s.SuppressionLists().AddSuppressionEntries(ctx, []suppression.Entry{entry(next)}); err != nil || n != 1 {
			b.Fatalf("add: %d, %v", n, err)
		}
		first += time.Since(opened)
		opening += opened.Sub(start)
		next++
		s.Close()
	}
	b.ReportMetric(float64(opening.Microseconds())/1000/float64(b.N), "open-ms")
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first-add-ms")
	backends.ReportLoad(b)
}
