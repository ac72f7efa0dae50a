package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// BenchStewardOps times each steward action on a profile of size
// identifiers and reports p50 and p99 per action (ms). Each iteration
// proposes a fresh pending edge (untimed) and then approves it, undoes the
// merge, rejects another, links, splits and undoes the split.
func BenchStewardOps(b *testing.B, s graph.Store, size int) {
	ctx := context.Background()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ingest := func(obs ...*graph.Observation) {
		if _, err := st.Ingest(ctx, obs); err != nil {
			b.Fatal(err)
		}
	}
	// A star of size identifiers around one user, seen over many messages,
	// some with traits.
	var batch []*graph.Observation
	for i := 1; i < size; i++ {
		o := Obs(fmt.Sprintf("big-%d", i), t0.Add(time.Duration(i)*time.Second), "user_id:big", fmt.Sprintf("anonymous_id:big-%d", i))
		if i%10 == 0 {
			o = identify(o.MessageID, o.Time, map[string]any{"plan": fmt.Sprint(i)}, "user_id:big", fmt.Sprintf("anonymous_id:big-%d", i))
		}
		batch = append(batch, o)
		if len(batch) == 200 {
			ingest(batch...)
			batch = nil
		}
	}
	if len(batch) > 0 {
		ingest(batch...)
	}
	big, err := s.Identifier(ctx, key("user_id:big"))
	if err != nil {
		b.Fatal(err)
	}
	times := map[string][]time.Duration{}
	timed := func(name string, fn func() (*graph.AuditEntry, error)) *graph.AuditEntry {
		start := time.Now()
		a, err := fn()
		times[name] = append(times[name], time.Since(start))
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return a
	}
	root := func() string {
		p, err := s.Profile(ctx, big.Profile)
		if err != nil {
			b.Fatal(err)
		}
		if p.MergedInto != "" {
			return p.MergedInto
		}
		return p.ID
	}
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		// Another user on one of the big profile's devices: merge
		// protection leaves a pending edge between them.
		other, device := fmt.Sprintf("user_id:other-%d", i), fmt.Sprintf("anonymous_id:big-%d", 1+i%(size-1))
		ingest(Obs(fmt.Sprintf("o-%d", i), t0, other, "anonymous_id:own-"+fmt.Sprint(i)))
		ingest(Obs(fmt.Sprintf("p-%d", i), t0, device, other))
		pair := graph.Pair(key(device), key(other))
		a := timed("approve", func() (*graph.AuditEntry, error) { return st.Approve(ctx, "bench", pair, "") })
		timed("undo_merge", func() (*graph.AuditEntry, error) { return st.UndoMerge(ctx, "bench", a.Merge, "") })
		second := fmt.Sprintf("user_id:second-%d", i)
		ingest(Obs(fmt.Sprintf("q-%d", i), t0, device, second))
		timed("reject", func() (*graph.AuditEntry, error) {
			return st.Reject(ctx, "bench", graph.Pair(key(device), key(second)), "")
		})
		loner := fmt.Sprintf("email:loner-%d@example.com", i)
		ingest(Obs(fmt.Sprintf("r-%d", i), t0, loner))
		timed("link", func() (*graph.AuditEntry, error) {
			return st.Link(ctx, "bench", key("user_id:big"), key(loner), "")
		})
		sp := timed("split", func() (*graph.AuditEntry, error) {
			return st.Split(ctx, "bench", root(), []graph.Key{key(loner)}, "")
		})
		timed("undo_split", func() (*graph.AuditEntry, error) { return st.UndoSplit(ctx, "bench", sp.ID, "") })
	}
	b.StopTimer()
	for name, ds := range times {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(ds[(len(ds)*99)/100].Microseconds())/1000, name+"-p99-ms")
	}
}

// BenchReviewQueue files n pending edges and times one page of 20 at the
// head, the middle and the tail of the queue (µs per page).
func BenchReviewQueue(b *testing.B, s graph.Store, n int) {
	ctx := context.Background()
	const chunk = 5000
	for lo := 0; lo < n; lo += chunk {
		c := &graph.Changes{}
		for i := lo; i < min(lo+chunk, n); i++ {
			a, bb := graph.Key{Type: "crm_id", Value: fmt.Sprintf("A%07d", i)}, graph.Key{Type: "crm_id", Value: fmt.Sprintf("B%07d", i)}
			c.Identifiers = append(c.Identifiers, &graph.Identifier{Key: a, Profile: "pa" + a.Value}, &graph.Identifier{Key: bb, Profile: "pb" + bb.Value})
			c.Edges = append(c.Edges, &graph.Edge{A: a, B: bb, Kind: graph.KindProbabilistic, Status: graph.StatusPending,
				Reason: graph.ReasonReview, Score: 0.6 + float64(i%400)/1000, Impact: 2 + i%50})
		}
		err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
			keys := make([]graph.Key, 0, len(c.Identifiers))
			for _, id := range c.Identifiers {
				keys = append(keys, id.Key)
			}
			if _, err := tx.LockIdentifiers(ctx, keys); err != nil {
				return err
			}
			return tx.Apply(ctx, c)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// Cursors at the head, the middle and the tail.
	cursors := map[string]string{"head": ""}
	after := ""
	for seen := 0; seen < n-20; {
		items, err := s.ReviewQueue(ctx, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			seen++
			switch seen {
			case n / 2:
				cursors["middle"] = it.Cursor
			case n - 21:
				cursors["tail"] = it.Cursor
			}
		}
		after = items[len(items)-1].Cursor
	}
	if len(cursors) != 3 {
		b.Fatalf("queue holds fewer than %d items", n)
	}
	times := map[string][]time.Duration{}
	b.ResetTimer()
	for b.Loop() {
		for name, c := range cursors {
			start := time.Now()
			items, err := s.ReviewQueue(ctx, c, 20)
			times[name] = append(times[name], time.Since(start))
			if err != nil || len(items) != 20 {
				b.Fatalf("page at %s: %d items, %v", name, len(items), err)
			}
		}
	}
	b.StopTimer()
	for name, ds := range times {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), name+"-p50-µs")
	}
}
