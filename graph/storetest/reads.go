package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

func testBatchReads(t *testing.T, s graph.Store) {
	Ingest(t, s, Obs("m1", t0, "user_id:u1", "email:a@corp.io"), Obs("m2", t0, "user_id:u2"))
	ctx := context.Background()
	ids, err := s.GetIdentifiers(ctx, []graph.Key{key("email:a@corp.io"), key("email:none@corp.io"), key("user_id:u2")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] == nil || ids[0].Value != "a@corp.io" || ids[1] != nil || ids[2] == nil || ids[2].Value != "u2" {
		t.Fatalf("GetIdentifiers = %v", ids)
	}
	p1, p2 := ProfileOf(t, s, "user_id:u1"), ProfileOf(t, s, "user_id:u2")
	ps, err := s.GetProfiles(ctx, []string{p2.ID, "p_missing", p1.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[0] == nil || ps[0].ID != p2.ID || ps[1] != nil || ps[2] == nil || ps[2].ID != p1.ID {
		t.Fatalf("GetProfiles = %v", ps)
	}
	lists, err := s.IdentifiersOf(ctx, []*graph.Profile{p1, p2})
	if err != nil {
		t.Fatal(err)
	}
	if len(lists) != 2 || len(lists[0]) != 2 || lists[0][0].Key != key("email:a@corp.io") || len(lists[1]) != 1 {
		t.Fatalf("IdentifiersOf = %v", lists)
	}
}

func testEdgesOf(t *testing.T, s graph.Store) {
	Ingest(t, s, Obs("m1", t0, "user_id:u1", "email:a@corp.io", "anonymous_id:x"), Obs("m2", t0, "anonymous_id:y", "anonymous_id:z"))
	es, err := s.EdgesOf(context.Background(), []graph.Key{key("user_id:u1"), key("email:a@corp.io")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.A.String()+"-"+e.B.String()+"/"+e.Status)
	}
	want := []string{"anonymous_id:x-email:a@corp.io/accepted", "anonymous_id:x-user_id:u1/accepted", "email:a@corp.io-user_id:u1/accepted"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("EdgesOf = %v\nwant %v", got, want)
	}
}

func testTimelinePaging(t *testing.T, s graph.Store) {
	var obs []*graph.Observation
	for i := range 7 {
		obs = append(obs, Obs(msg(i), t0.Add(time.Duration(i)*time.Minute), "anonymous_id:a"))
	}
	for i := 7; i < 12; i++ {
		obs = append(obs, Obs(msg(i), t0.Add(time.Duration(i)*time.Minute), "anonymous_id:b"))
	}
	// One event seen with both: it must appear once.
	obs = append(obs, Obs("both", t0.Add(30*time.Minute), "anonymous_id:a", "anonymous_id:b"))
	// Two events at the same instant: the ID breaks the tie.
	obs = append(obs, Obs("tie1", t0.Add(3*time.Minute), "anonymous_id:b"))
	Ingest(t, s, obs...)
	keys := []graph.Key{key("anonymous_id:a"), key("anonymous_id:b")}
	var seen []string
	var after *graph.EventCursor
	for page := 0; ; page++ {
		evs, err := graph.Timeline(context.Background(), s, keys, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		if page > 10 || len(evs) > 4 {
			t.Fatalf("paging does not end: page %d has %d events", page, len(evs))
		}
		for _, ev := range evs {
			if after != nil && !after.Before(ev) {
				t.Errorf("event %s at %v is not after the cursor %v", ev.MessageID, ev.Timestamp, after)
			}
			c := graph.EventCursor{Timestamp: ev.Timestamp, ID: ev.ID}
			after = &c
			seen = append(seen, ev.MessageID)
		}
	}
	if len(seen) != 14 || seen[0] != "both" || seen[13] != "m0" {
		t.Errorf("timeline = %v, want 14 events from both to m0, each once", seen)
	}
	dup := map[string]bool{}
	for _, id := range seen {
		if dup[id] {
			t.Errorf("event %s listed twice", id)
		}
		dup[id] = true
	}
}

func testSearch(t *testing.T, s graph.Store) {
	named := func(o *graph.Observation, name string) *graph.Observation {
		o.Traits = map[string]any{"name": name}
		return o
	}
	Ingest(t, s,
		named(Obs("m1", t0, "user_id:u1", "email:smith@corp.io", "phone:+14155550134"), "Ann Smith"),
		named(Obs("m2", t0, "user_id:u2", "email:smithers@corp.io"), "Bob Jones"),
		Obs("m3", t0, "email:smi@corp.io"),
	)
	ctx := context.Background()
	hits, err := s.Search(ctx, "smi", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hits {
		got = append(got, h.Field+":"+h.Value)
	}
	// Exact matches first ("smith" is a name word here: none is exact),
	// then shorter values.
	want := []string{"name:Ann Smith", "email:smi@corp.io", "email:smith@corp.io", "email:smithers@corp.io"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("search smi = %v\nwant %v", got, want)
	}
	if hits, _ := s.Search(ctx, "u1", 10); len(hits) != 1 || !hits[0].Exact || hits[0].Profile != ProfileOf(t, s, "user_id:u1").ID {
		t.Errorf("search u1 = %+v, want one exact hit on u1's profile", hits)
	}
	if hits, _ := s.Search(ctx, "+1415", 10); len(hits) != 1 || hits[0].Field != "phone" {
		t.Errorf("search +1415 = %+v, want the phone", hits)
	}
	if hits, _ := s.Search(ctx, "smi", 2); len(hits) != 2 {
		t.Errorf("limit 2 gave %d hits", len(hits))
	}
	// A renamed profile is found by its new name only.
	Ingest(t, s, named(Obs("m4", t0.Add(time.Hour), "user_id:u1"), "Ann Turner"))
	hits, _ = s.Search(ctx, "smith", 10)
	for _, h := range hits {
		if h.Field == "name" {
			t.Errorf("old name still found: %+v", h)
		}
	}
	if hits, _ := s.Search(ctx, "turn", 10); len(hits) != 1 || hits[0].Value != "Ann Turner" {
		t.Errorf("search turn = %+v, want the new name", hits)
	}
}

// CountProfiles counts live profiles only.
func testCountProfiles(t *testing.T, s graph.Store) {
	ctx := context.Background()
	if n, err := s.CountProfiles(ctx); err != nil || n != 0 {
		t.Fatalf("empty store: %d, %v", n, err)
	}
	Ingest(t, s, Obs("m1", t0, "anonymous_id:a"), Obs("m2", t0, "anonymous_id:b"), Obs("m3", t0, "anonymous_id:c"),
		Obs("m4", t0, "anonymous_id:a", "anonymous_id:b"))
	if n, err := s.CountProfiles(ctx); err != nil || n != 2 {
		t.Errorf("after one merge of three: %d profiles, %v; want 2", n, err)
	}
}
