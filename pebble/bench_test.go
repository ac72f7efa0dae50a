package pebble_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

// BenchmarkIngest stitches batches of 500 observations shaped like web
// traffic: every message has an anonymous ID, one visitor in three is
// identified by a user ID, and identified visitors' identify calls carry an
// email.
func BenchmarkIngest(b *testing.B) {
	s := backends.BenchPebble(b)
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ctx := context.Background()
	now := time.Now()
	b.ResetTimer()
	msg := 0
	for b.Loop() {
		batch := make([]*graph.Observation, 500)
		for i := range batch {
			v := (msg * 7919) % 20000
			o := &graph.Observation{MessageID: fmt.Sprintf("m%d", msg), Source: "bench", Time: now,
				Identifiers: []graph.Key{{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%d", v)}},
				Event:       graph.Event{Type: "page", Name: "Home"}}
			if v%3 == 0 {
				o.Identifiers = append(o.Identifiers, graph.Key{Type: graph.TypeUserID, Value: fmt.Sprintf("user-%d", v)})
				if msg%10 == 0 {
					o.Identifiers = append(o.Identifiers, graph.Key{Type: graph.TypeEmail, Value: fmt.Sprintf("u%d@corp.io", v)})
					o.Traits = map[string]any{"plan": "pro"}
				}
			}
			batch[i] = o
			msg++
		}
		if _, err := st.Ingest(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(msg)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkTimelinePage reads the newest page of 20 events of a profile
// with 100 and with 100,000 events: the cost must not grow with the total.
func BenchmarkTimelinePage(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := backends.BenchPebble(b)
			st := graph.NewStitcher(s, graph.DefaultConfig())
			now := time.Now()
			k := graph.Key{Type: graph.TypeAnonymousID, Value: "busy"}
			for i := 0; i < n; i += 500 {
				batch := make([]*graph.Observation, 0, 500)
				for j := i; j < min(i+500, n); j++ {
					batch = append(batch, &graph.Observation{MessageID: fmt.Sprintf("t%d", j), Time: now.Add(time.Duration(j) * time.Second),
						Identifiers: []graph.Key{k}, Event: graph.Event{Type: "track", Name: "Tick"}})
				}
				if _, err := st.Ingest(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			// A page from the middle of the timeline, as a client paging.
			mid := &graph.EventCursor{Timestamp: now.Add(time.Duration(n/2) * time.Second), ID: "~"}
			b.ResetTimer()
			for b.Loop() {
				evs, err := graph.Timeline(context.Background(), s, []graph.Key{k}, mid, 21)
				if err != nil || len(evs) != 21 {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
		})
	}
}

// BenchmarkSteward times approve, reject, link, split and their undos on a
// profile of 1,000 identifiers (p50/p99 in ms as custom metrics).
func BenchmarkSteward(b *testing.B) {
	storetest.BenchStewardOps(b, backends.BenchPebble(b), 1000)
}

// BenchmarkReviewQueue times one page at the head, middle and tail of a
// queue of 100,000 pending edges.
func BenchmarkReviewQueue(b *testing.B) {
	storetest.BenchReviewQueue(b, backends.BenchPebble(b), 100_000)
}
