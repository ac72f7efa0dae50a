package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/server"
)

// withSegments serves with the segments engine on, as serve --segments.
func withSegments(t *testing.T, open storetest.Opener) *fixture {
	t.Helper()
	return newFixtureWith(t, open, func(cfg *server.Config) {
		loadSegments(t, cfg)
	}, func(st *graph.Stitcher) { st.RecordDataChanges = true })
}

// await runs the query until the value at path prints as want: the engine
// works in the background. The bound is for failing, not a timed assertion.
func (f *fixture) await(t *testing.T, query, path, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := fmt.Sprint(get(f.must(t, query, nil), path))
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s, not %s, 30 s on", path, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const buyerSrc = `events("Order Completed").within(30d).exists()`

// A segment created over GraphQL is backfilled over the profiles already
// there, then kept up to date by ingestion alone; Profile.segments and
// segment(key) show it.
func TestSegmentsOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			order := func(user, msg string) string {
				return fmt.Sprintf(`{"userId":%q,"event":"Order Completed","messageId":%q,"timestamp":%q}`, user, msg, time.Now().UTC().Format(time.RFC3339Nano))
			}
			f.send(t, "/v1/track", order("u-1", "m1"))
			f.send(t, "/v1/track", `{"userId":"u-2","event":"Page Viewed","messageId":"m2"}`)
			const create = `mutation($key: String!, $def: String!) { createSegment(key: $key, definition: $def) { key version definition status { state } } }`
			if r := f.gql(t, readKey, create, map[string]any{"key": "buyer", "def": buyerSrc}); r.code() != "FORBIDDEN" {
				t.Errorf("createSegment with a read key: %+v", r.Errors)
			}
			r := f.gql(t, stewKey, create, map[string]any{"key": "bad", "def": `events("Order Completed").within(0d).exists()`})
			if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "1:") {
				t.Errorf("an invalid definition: %+v", r.Errors)
			}
			got := f.mustAs(t, stewKey, create, map[string]any{"key": "buyer", "def": buyerSrc})
			if v := fmt.Sprint(get(got, "createSegment.version"), " ", get(got, "createSegment.status.state")); v != "1 BACKFILLING" {
				t.Errorf("created: %v", got)
			}
			const seg = `{ segment(key: "buyer") { status { state } size } }`
			f.await(t, seg, "segment.status.state", segments.StateLive)
			f.await(t, seg, "segment.size", "1")
			u1 := storetest.ProfileOf(t, f.store, "user_id:u-1").ID
			u2 := storetest.ProfileOf(t, f.store, "user_id:u-2").ID
			profileSegs := func(id string) string { return fmt.Sprintf(`{ profile(id: %q) { segments } }`, id) }
			f.await(t, profileSegs(u1), "profile.segments", "[buyer]")
			// Live: u-2 orders, and joins with no call but the ingest.
			f.send(t, "/v1/track", order("u-2", "m3"))
			f.await(t, profileSegs(u2), "profile.segments", "[buyer]")
			f.await(t, seg, "segment.size", "2")
			if d := f.must(t, `{ segment(key: "nope") { key } }`, nil); get(d, "segment") != nil {
				t.Errorf("a missing segment: %v", d)
			}
		})
	}
}

// loadSegments gives the server under test a segments engine over its
// store, with the stored definitions loaded.
func loadSegments(t *testing.T, cfg *server.Config) {
	t.Helper()
	cfg.Segments = segments.NewEngine(cfg.Store, cfg.Store.(segments.Backend).Segments(), segments.EngineOptions{})
	if err := cfg.Segments.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
}
