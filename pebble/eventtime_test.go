package pebble

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
)

// TestMigrationToVersion7: a version 6 store (events and sent state
// without the event time and destination index entries) gets exactly the
// entries this version writes, and pages a destination's rows through
// them.
func TestMigrationToVersion7(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, goldenChanges())
	}); err != nil {
		t.Fatal(err)
	}
	for d := range 3 {
		for p := range 4 {
			err := s.SentState().UpdateSent(ctx, fmt.Sprintf("dst_%d", d), fmt.Sprintf("p_%d", p), func(r *destinations.Sent) (bool, error) {
				if p == d {
					r.Pending = &destinations.Pending{Kind: destinations.PendingWithdraw, ID: "w"}
				}
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close()
	db := rawDB(t, dir)
	removed := 0
	for _, p := range [][]byte{pEventTime, pSentDest} {
		if err := scanDB(db, p, func(k, _ []byte) error { removed++; return db.Delete(k, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Set(formatKey, []byte("6"), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if removed != 2+12 {
		t.Fatalf("removed %d index entries, want 14 (2 events, 12 rows)", removed)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkIndexes(t, s)
	rows, err := s.SentState().SentPage(ctx, "dst_1", "p_0", 10)
	var got []string
	for _, r := range rows {
		got = append(got, r.Destination+"/"+r.Profile)
	}
	if want := []string{"dst_1/p_1", "dst_1/p_2", "dst_1/p_3"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("SentPage(dst_1, after p_0) = %v, %v; want %v", got, err, want)
	}
}

// TestEventTimeBytes: the index orders times as time does, and times
// UnixNano cannot hold sort at the ends instead of wrapping around.
func TestEventTimeBytes(t *testing.T) {
	times := []time.Time{
		{}, // year 1
		time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 1, time.UTC),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := eventTimeBytes(times[i-1]), eventTimeBytes(times[i])
		if string(a) > string(b) {
			t.Errorf("%v sorts after %v", times[i-1], times[i])
		}
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 7, time.UTC)
	if got := eventTimeOf(eventTimeKey(at, []byte("h"))); !got.Equal(at) {
		t.Errorf("eventTimeOf = %v, want %v", got, at)
	}
}
