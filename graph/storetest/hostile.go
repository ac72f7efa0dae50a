package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// testOutOfRangeTimesRefused: a time no encoding can hold is refused by
// Apply with an invalid-input error, nothing of its transaction is stored,
// and the records around it stay readable.
func testOutOfRangeTimesRefused(t *testing.T, s graph.Store) {
	ctx := context.Background()
	Ingest(t, s, Obs("m1", t0, "user_id:victim", "anonymous_id:a"))
	st := graph.NewStitcher(s, graph.DefaultConfig())
	for _, at := range []time.Time{
		time.UnixMilli(1<<63 - 1),
		time.UnixMilli(-1 << 63),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		graph.MaxStoredTime,
		graph.MinStoredTime.Add(-time.Nanosecond),
	} {
		o := Obs("bad-"+at.String(), at, "user_id:victim", "anonymous_id:b")
		_, err := st.Ingest(ctx, []*graph.Observation{o})
		wantKind(t, err, graph.KindInvalid)
	}
	// A time that an event carries apart from the observation's.
	o := Obs("bad-event", t0, "user_id:victim")
	o.Event.ReceivedAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	_, err := st.Ingest(ctx, []*graph.Observation{o})
	wantKind(t, err, graph.KindInvalid)

	// The edges of the window are stored and read back.
	Ingest(t, s,
		Obs("m2", graph.MinStoredTime, "user_id:victim"),
		Obs("m3", graph.MaxStoredTime.Add(-time.Nanosecond), "user_id:victim"),
		Obs("m4", t0, "user_id:victim"),
	)
	if _, err := s.Identifier(ctx, key("anonymous_id:b")); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("identifier of a refused transaction: err = %v, want not found", err)
	}
	p := ProfileOf(t, s, "user_id:victim")
	ids, err := graph.ProfileIdentifiers(ctx, s, p)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]graph.Key, len(ids))
	for i, n := range ids {
		keys[i] = n.Key
	}
	evs, err := graph.Timeline(ctx, s, keys, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.MessageID)
	}
	if want := []string{"m3", "m4", "m1", "m2"}; !slices.Equal(got, want) {
		t.Errorf("timeline = %v, want %v (newest first)", got, want)
	}
}
