package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
)

// The reads the live path makes for a page of pending changes (profiles,
// states, identifiers, timelines: one call each for the whole page) return
// exactly what one read per profile returns: a merged profile, one with
// events under two identifiers, one with no state, timelines cut by limit
// and cursor, ties on timestamp.
func testPageReadsEqualOneByOne(t *testing.T, g graph.Store, s segments.Store) {
	ctx := context.Background()
	var obs []*graph.Observation
	for i := range 4 {
		for k := range 5 {
			// Two events per instant: their order is their ID's.
			at := t0.Add(time.Duration(k/2) * time.Hour)
			obs = append(obs, graphtest.Obs(fmt.Sprintf("u%d-%d", i, k), at, fmt.Sprintf("user_id:u%d", i)))
		}
	}
	obs = append(obs,
		graphtest.Obs("e0", t0.Add(30*time.Minute), "email:e0"),
		graphtest.Obs("e1", t0.Add(30*time.Minute), "email:e0"),
		graphtest.Obs("link", t0.Add(2*time.Hour), "user_id:u0", "email:e0"))
	graphtest.Ingest(t, g, obs...)
	var ps []*graph.Profile
	var ids []string
	for i := range 4 {
		ps = append(ps, graphtest.ProfileOf(t, g, fmt.Sprintf("user_id:u%d", i)))
		ids = append(ids, ps[i].ID)
	}
	if len(ps[0].Absorbed) == 0 {
		t.Fatalf("u0 and e0 were not merged: %+v", ps[0])
	}
	// The absorbed profile, one not stored, and one twice.
	ids = append(ids, ps[0].Absorbed[0], "p_nope", ids[1])
	save(t, s, segments.Save{State: &segments.ProfileState{Profile: ids[0], Entries: map[string]segments.Entry{"computed:n": {Version: 1, Value: &segments.Value{Type: "number", Number: 3}}}}, Reason: segments.ReasonData, At: t0},
		segments.Save{State: &segments.ProfileState{Profile: ids[2], Identity: segments.Identity{Counts: map[string]int{"user_id": 1}}}, Reason: segments.ReasonData, At: t0})

	t.Run("states", func(t *testing.T) {
		page, err := s.States(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			if one := state(t, s, id); !reflect.DeepEqual(page[i], one) {
				t.Errorf("state of %s: page read %+v, one by one %+v", id, page[i], one)
			}
		}
	})
	t.Run("profiles", func(t *testing.T) {
		page, err := g.GetProfiles(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			one, err := g.GetProfiles(ctx, []string{id})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(page[i], one[0]) {
				t.Errorf("profile %s: page read %+v, one by one %+v", id, page[i], one[0])
			}
		}
	})
	t.Run("identifiers and timelines", func(t *testing.T) {
		page, err := g.IdentifiersOf(ctx, ps)
		if err != nil {
			t.Fatal(err)
		}
		var qs []graph.TimelineQuery
		for i, p := range ps {
			one, err := g.IdentifiersOf(ctx, ps[i:i+1])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(page[i], one[0]) {
				t.Errorf("identifiers of %s: page read %v, one by one %v", p.ID, page[i], one[0])
			}
			var keys []graph.Key
			for _, n := range page[i] {
				keys = append(keys, n.Key)
			}
			all, err := graph.Timeline(ctx, g, keys, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			// Every timeline whole, cut by a limit, and from a cursor.
			qs = append(qs, graph.TimelineQuery{Keys: keys, Limit: 100}, graph.TimelineQuery{Keys: keys, Limit: 3},
				graph.TimelineQuery{Keys: keys, Limit: 2, After: &graph.EventCursor{Timestamp: all[2].Timestamp, ID: all[2].ID}})
		}
		qs = append(qs, graph.TimelineQuery{Limit: 5}, graph.TimelineQuery{Keys: qs[0].Keys})
		tls, err := g.Timelines(ctx, qs)
		if err != nil {
			t.Fatal(err)
		}
		for i, q := range qs {
			one, err := g.Timelines(ctx, qs[i:i+1])
			if err != nil {
				t.Fatal(err)
			}
			if len(tls[i]) != len(one[0]) {
				t.Errorf("timeline %d: page read %d events, one by one %d", i, len(tls[i]), len(one[0]))
				continue
			}
			for k := range tls[i] {
				if !reflect.DeepEqual(tls[i][k], one[0][k]) {
					t.Errorf("timeline %d (limit %d), event %d: page read %+v, one by one %+v", i, q.Limit, k, tls[i][k], one[0][k])
				}
			}
		}
		if n := len(tls[0]); n != 5+2+1 {
			t.Errorf("u0 and e0 have %d events, want 8", n)
		}
	})
}
