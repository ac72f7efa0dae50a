package destinations_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// readCounter is a segments store that counts the change records read
// through it.
type readCounter struct {
	segments.Store
	records atomic.Int64
}

func (r *readCounter) Changes(ctx context.Context, after uint64, limit int) ([]*segments.ChangeRecord, error) {
	recs, err := r.Store.Changes(ctx, after, limit)
	r.records.Add(int64(len(recs)))
	return recs, err
}

// TestHealthReadsOneRecord: on both backends, a destination's health
// counts the records after its cursor, those of segments it does not want
// too, and dates the oldest by the first of them, reading that record
// alone however many wait; nothing waits once the cursor is at the newest.
func TestHealthReadsOneRecord(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			g := b.Open(t)
			seg := graphtest.As[segments.Backend](t, g).Segments()
			store := graphtest.As[destinations.Backend](t, g).Destinations()
			for _, k := range []string{"vip", "other"} {
				segtest.Define(t, seg, lang.KindSegment, k, "traits.plan = 'pro'")
			}
			reads := &readCounter{Store: seg}
			sealer, err := destinations.NewSealer([]byte("test-pepper-0123456789abcdef"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := destinations.NewManager(destinations.Options{Store: store, Segments: reads, Sealer: sealer,
				Client: destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}})})
			if err != nil {
				t.Fatal(err)
			}
			d, _, err := m.Create(ctx, "health", "http://127.0.0.1:9/hook", []string{"vip"})
			if err != nil {
				t.Fatal(err)
			}
			health := func(wantPending int, wantOldest time.Time) {
				t.Helper()
				reads.records.Store(0)
				h, err := m.Health(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				if h.Pending != wantPending || h.PendingCapped || !h.OldestPending.Equal(wantOldest) {
					t.Errorf("health: pending %d (capped %v), oldest %v; want %d, %v", h.Pending, h.PendingCapped, h.OldestPending, wantPending, wantOldest)
				}
				if n := reads.records.Load(); n > 1 {
					t.Errorf("health read %d change records, want one at most", n)
				}
			}
			health(0, time.Time{})

			// Every profile enters both segments: two records each.
			var saves []segments.Save
			start := time.Now().UTC().Truncate(time.Millisecond)
			for i, p := range segtest.Profiles(t, g, 40) {
				entry := segments.Entry{Version: 1, Member: true, Since: start}
				st := &segments.ProfileState{Profile: p, Entries: map[string]segments.Entry{"segment:vip": entry, "segment:other": entry}}
				saves = append(saves, segments.Save{State: st, Reason: segments.ReasonData, At: start.Add(time.Duration(i) * time.Second)})
			}
			recs, err := seg.SaveStates(ctx, saves)
			if err != nil || len(recs) != 80 {
				t.Fatalf("saved %d records, %v", len(recs), err)
			}
			health(80, recs[0].Time)

			moveCursor := func(after uint64) {
				t.Helper()
				c, err := store.Cursor(ctx, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				c.After = after
				if err := store.PutCursor(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			moveCursor(recs[31].Sequence)
			health(48, recs[32].Time)
			moveCursor(recs[79].Sequence)
			health(0, time.Time{})
		})
	}
}
