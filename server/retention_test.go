package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/retention"
	"github.com/idgraph/idgraph/server"
)

// Served with segments and retention (as serve --segments): page views
// ingested with old timestamps make a member, an admin's sweepRetention
// deletes them and reports it, and the segment loses the member as if
// they had never been sent; the retention query shows the policy and the
// sweep, /metrics shows the sweep, and a steward may not sweep.
func TestRetentionOverHTTP(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			var sw *retention.Sweeper
			f := newKeyFixtureWith(t, b.Open, nil, func(cfg *server.Config) {
				loadSegments(t, cfg)
				// Every is long: the test sweeps through GraphQL.
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
			const sweep = `mutation { sweepRetention { eventsDeleted events { eventType count } profilesTouched profilesExpired error } }`
			if r := f.gql(t, stewKey, sweep, nil); r.code() != "FORBIDDEN" {
				t.Fatalf("a steward's sweep: %+v, want FORBIDDEN", r)
			}
			got := f.mustAs(t, f.admin, sweep, nil)
			if n, _ := get(got, "sweepRetention.eventsDeleted").(float64); n != 2 ||
				fmt.Sprint(get(got, "sweepRetention.events")) != "[map[count:2 eventType:Page Viewed]]" ||
				get(got, "sweepRetention.profilesTouched").(float64) < 1 || get(got, "sweepRetention.error") != nil {
				t.Fatalf("sweepRetention = %v; want 2 page views deleted", got)
			}
			f.await(t, q, "profile.segments", "[]")
			state := f.mustAs(t, f.admin, `{ retention { defaultTtlSeconds rules { eventType ttlSeconds } inactiveProfilesSeconds sweepEverySeconds lastSweep { eventsDeleted } } }`, nil)
			if want := "map[retention:map[defaultTtlSeconds:3.4128e+07 inactiveProfilesSeconds:<nil> lastSweep:map[eventsDeleted:2] rules:[map[eventType:Page Viewed ttlSeconds:2.592e+06]] sweepEverySeconds:3600]]"; fmt.Sprint(state) != want {
				t.Errorf("retention = %v\nwant        %s", state, want)
			}
			if run, err := sw.Last(); run == nil || err != nil || run.EventTotal() != 2 {
				t.Errorf("the sweeper's last run: %+v, %v", run, err)
			}
			body := f.metrics(t)
			for _, line := range []string{`idgraph_retention_events_deleted_total{type="Page Viewed"} 2`, `idgraph_retention_sweeps_total{outcome="ok"} 1`} {
				if !strings.Contains(body, line) {
					t.Errorf("/metrics has no line %q", line)
				}
			}
		})
	}
}
