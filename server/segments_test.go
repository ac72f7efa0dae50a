package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
	"github.com/idgraph/idgraph/server"
)

// An acknowledged message reaches the segments through the server's
// background engine, with no call but the ingest.
func TestIngestUpdatesSegments(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			var seg segments.Store
			f := newFixtureWith(t, b.Open, func(cfg *server.Config) {
				seg = cfg.Store.(segments.Backend).Segments()
				segtest.Define(t, seg, lang.KindSegment, "buyer", `events("Order Completed").within(30d).exists()`)
				cfg.Segments = segments.NewEngine(cfg.Store, seg, segments.EngineOptions{})
				if err := cfg.Segments.Load(context.Background()); err != nil {
					t.Fatal(err)
				}
			}, func(st *graph.Stitcher) { st.RecordDataChanges = true })
			now := time.Now().UTC().Format(time.RFC3339Nano)
			if code, body := f.post(t, "/v1/track", writeKey, `{"userId":"u-1","event":"Order Completed","messageId":"m1","timestamp":"`+now+`"}`); code != 200 {
				t.Fatalf("track: %d %s", code, body)
			}
			ann := storetest.ProfileOf(t, f.store, "user_id:u-1").ID
			// The engine runs in the background: wait for it (a bound on
			// failure, not a timed assertion).
			deadline := time.Now().Add(20 * time.Second)
			for {
				got, err := seg.Members(context.Background(), "buyer", "", 10)
				if err != nil {
					t.Fatal(err)
				}
				if slices.Equal(got, []string{ann}) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("buyer's members are %q, not ann's profile, 20 s after the ingest", got)
				}
				time.Sleep(20 * time.Millisecond)
			}
			cs, err := seg.Changes(context.Background(), 0, 10)
			if err != nil || len(cs) != 1 || cs[0].Direction != segments.Entered || cs[0].Profile != ann {
				t.Errorf("change records %+v (%v), want ann entering", cs, err)
			}
		})
	}
}
