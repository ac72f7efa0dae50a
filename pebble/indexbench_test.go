package pebble

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/retention"
)

// BenchmarkSweepRead compares what a retention sweep reads to find the
// expired events among 100,000, 1% of them expired: every event's head in
// key order (format version 6's sweep, kept here as the reference)
// against the event time index up to the latest cutoff (version 7).
// Reads only: the deletes that follow are the same. docs/benchmarks.md
// records the figures.
func BenchmarkSweepRead(b *testing.B) {
	const events, every = 100_000, 100
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s := openBench(b)
	for i := 0; i < events; i += 5000 {
		c := &graph.Changes{}
		for j := i; j < i+5000; j++ {
			at := now.Add(-time.Duration(j) * time.Second)
			if j%every == 0 {
				at = now.Add(-40*24*time.Hour - time.Duration(j)*time.Second)
			}
			c.Events = append(c.Events, &graph.Event{ID: fmt.Sprintf("ev_%d", j), MessageID: fmt.Sprintf("m%d", j), Type: "track", Name: "Page Viewed",
				Timestamp: at, Identifiers: []graph.Key{{Type: graph.TypeUserID, Value: fmt.Sprintf("u%d", j%1000)}},
				Properties: json.RawMessage(`{"path":"/pricing","referrer":"https://example.com/","title":"Pricing"}`)})
		}
		check(b, s.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error { return tx.Apply(ctx, c) }))
	}
	cut := retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * 24 * time.Hour}}.Cutoffs(now)
	all := retention.EventsRequest{Cutoffs: cut, Limit: math.MaxInt32, Scan: math.MaxInt32}
	indexRead := 0 // the entries findExpired's iterator visits
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: pEventTime, UpperBound: key(pEventTime, eventTimeBytes(cut.Latest()))})
	check(b, err)
	for ok := it.First(); ok; ok = it.Next() {
		indexRead++
	}
	check(b, it.Close())
	for _, m := range []struct {
		name string
		scan func() (read, expired int)
	}{
		{"every-event-v6", func() (read, expired int) {
			check(b, scanDB(s.db, pEvent, func(_, v []byte) error {
				var h eventHead
				read++
				if err := jsonUnmarshal(v, &h); err != nil {
					return err
				}
				if cut.Expired(h.event()) {
					expired++
				}
				return nil
			}))
			return read, expired
		}},
		{"time-index-v7", func() (read, expired int) {
			found, next, err := s.findExpired(pEventTime, all)
			check(b, err)
			if next != "" {
				b.Fatalf("the sweep's read did not end (cursor %q)", next)
			}
			return indexRead, len(found)
		}},
	} {
		b.Run(m.name, func(b *testing.B) {
			read, expired := 0, 0
			for b.Loop() {
				read, expired = m.scan()
			}
			if expired != events/every {
				b.Fatalf("found %d expired events, want %d", expired, events/every)
			}
			b.ReportMetric(float64(read), "events-read")
		})
	}
}

// BenchmarkSentPage compares paging one destination's sent state (a
// resync's exits, the consent sweep) among 100 destinations of 1,000 rows
// each: every destination's rows in profile order (version 6's SentPage,
// kept here as the reference) against the destination's index entries
// (version 7); and reads one destination's pending rows (1% of them,
// through dsentq/, indexed since version 6's sent state).
func BenchmarkSentPage(b *testing.B) {
	const dests, profiles, page = 100, 1000, 100
	s := openBench(b)
	w := &batchWriter{b: s.db.NewBatch()}
	for d := range dests {
		for p := range profiles {
			r := &destinations.Sent{Destination: fmt.Sprintf("dst_%03d", d), Profile: fmt.Sprintf("p_%05d", p),
				Segments:    map[string]destinations.Held{"vip": {In: true, Sequence: uint64(p), Version: 1}},
				Identifiers: []destinations.Identifier{{Type: graph.TypeUserID, Value: fmt.Sprintf("u%d", p)}}}
			if p%100 == 0 {
				r.Pending = &destinations.Pending{Kind: destinations.PendingWithdraw, ID: "w"}
			}
			putSent(w, r, true)
		}
	}
	check(b, w.err)
	check(b, w.b.Commit(cpebble.Sync))
	w.b.Close()
	ctx := context.Background()
	dst := "dst_050"
	pageAll := func(next func(after string) ([]*destinations.Sent, int)) (rows, read int) {
		after := ""
		for {
			got, n := next(after)
			rows, read = rows+len(got), read+n
			if len(got) < page {
				return rows, read
			}
			after = got[len(got)-1].Profile
		}
	}
	for _, m := range []struct {
		name string
		read func() (rows, read int)
	}{
		{"every-row-v6", func() (int, int) {
			return pageAll(func(after string) ([]*destinations.Sent, int) {
				lower := pSent
				if after != "" {
					lower = key(pSent, []byte(after), []byte{1})
				}
				var out []*destinations.Sent
				read := 0
				it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(pSent)})
				check(b, err)
				defer it.Close()
				for it.First(); it.Valid() && len(out) < page; it.Next() {
					read++
					rest := it.Key()[len(pSent):]
					if i := bytes.IndexByte(rest, 0); i < 0 || string(rest[i+1:]) != dst {
						continue
					}
					r := &destinations.Sent{}
					check(b, json.Unmarshal(it.Value(), r))
					out = append(out, r)
				}
				return out, read
			})
		}},
		{"destination-index-v7", func() (int, int) {
			return pageAll(func(after string) ([]*destinations.Sent, int) {
				out, err := s.SentState().SentPage(ctx, dst, after, page)
				check(b, err)
				return out, len(out)
			})
		}},
		{"pending", func() (int, int) {
			out, err := s.SentState().PendingSent(ctx, dst, page)
			check(b, err)
			return len(out), len(out)
		}},
	} {
		b.Run(m.name, func(b *testing.B) {
			rows, read := 0, 0
			for b.Loop() {
				rows, read = m.read()
			}
			if want := map[bool]int{true: profiles / 100, false: profiles}[m.name == "pending"]; rows != want {
				b.Fatalf("read %d rows, want %d", rows, want)
			}
			b.ReportMetric(float64(read), "rows-read")
		})
	}
}

func openBench(b *testing.B) *Store {
	s, err := Open(b.TempDir())
	check(b, err)
	b.Cleanup(func() { s.Close() })
	return s
}

func check(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
