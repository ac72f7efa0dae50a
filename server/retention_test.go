package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/retention"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/server"
)

// Served with segments and retention (as serve --segments): page views
// ingested with old timestamps make a member, a sweep deletes them, and
// the segment loses the member as if they had never been sent; /metrics
// shows the sweep.
func TestRetentionOverHTTP(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			var sw *retention.Sweeper
			f := newFixtureWith(t, b.Open, func(cfg *server.Config) {
				cfg.Segments = segments.NewEngine(cfg.Store, cfg.Store.(segments.Backend).Segments(), segments.EngineOptions{})
				if err := cfg.Segments.Load(context.Background()); err != nil {
					t.Fatal(err)
				}
				// Every is long: the test sweeps by hand.
				sw = &retention.Sweeper{Store: cfg.Store.(retention.Backend).Retention(), Erasure: cfg.Store.(erase.Backend).Erasure(),
					Policy: retention.Policy{Default: retention.DefaultTTL, ByType: map[string]time.Duration{"Page Viewed": 30 * 24 * time.Hour}},
					Every:  time.Hour, Broker: cfg.Broker}
				cfg.Retention = sw
			}, func(st *graph.Stitcher) { st.RecordDataChanges = true })
			view := func(msg string, age time.Duration) string {
				return fmt.Sprintf(`{"userId":"u-1","event":"Page Viewed","messageId":%q,"timestamp":%q}`, msg, time.Now().UTC().Add(-age).Format(time.RFC3339Nano))
			}
			f.send(t, "/v1/track", view("old-1", 40*24*time.Hour))
			f.send(t, "/v1/track", view("old-2", 35*24*time.Hour))
			f.send(t, "/v1/track", view("new-1", time.Hour))
			const create = `mutation($key: String!, $def: String!) { createSegment(key: $key, definition: $def) { key } }`
			f.mustAs(t, stewKey, create, map[string]any{"key": "viewers", "def": `events("Page Viewed").count() >= 2`})
			id := storetest.ProfileOf(t, f.store, "user_id:u-1").ID
			q := fmt.Sprintf(`{ profile(id: %q) { segments } }`, id)
			f.await(t, q, "profile.segments", "[viewers]")
			run, err := sw.Sweep(context.Background())
			if err != nil || run.EventTotal() != 2 {
				t.Fatalf("sweep: %v, %v; want 2 events", run, err)
			}
			f.await(t, q, "profile.segments", "[]")
			body := f.metrics(t)
			for _, line := range []string{`idgraph_retention_events_deleted_total{type="Page Viewed"} 2`, `idgraph_retention_sweeps_total{outcome="ok"} 1`} {
				if !strings.Contains(body, line) {
					t.Errorf("/metrics has no line %q", line)
				}
			}
		})
	}
}
