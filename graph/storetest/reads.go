package storetest

import (
	"context"
	"fmt"
	"slices"
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

// testProfilesData checks the bulk reads of part of a profile against
// GetProfiles and IdentifiersOf: a merged-away profile and a missing one
// give nil, the survivor carries the absorbed profile's identifiers (and
// its ID, when asked for), and only the trait paths asked for come back.
func testProfilesData(t *testing.T, s graph.Store) {
	withTraits := func(o *graph.Observation, traits map[string]any) *graph.Observation {
		o.Traits = traits
		return o
	}
	Ingest(t, s,
		withTraits(Obs("m1", t0, "anonymous_id:a1"), map[string]any{"plan": "pro", "score": 3}),
		withTraits(Obs("m2", t0.Add(time.Second), "user_id:u1", "email:bo@corp.io"), map[string]any{"name": "Bo"}),
		Obs("m3", t0.Add(2*time.Second), "user_id:u1", "anonymous_id:a1"),
		withTraits(Obs("m4", t0.Add(3*time.Second), "user_id:u2"), map[string]any{"address": map[string]any{"city": "Oslo"}}),
	)
	ctx := context.Background()
	survivor, other := ProfileOf(t, s, "user_id:u1"), ProfileOf(t, s, "user_id:u2")
	if len(survivor.Absorbed) != 1 {
		t.Fatalf("absorbed %v, want one profile", survivor.Absorbed)
	}
	paths := []string{"plan", "score", "name", "address.city", "missing"}
	full := graph.DataQuery{Traits: paths, Keys: true, Counts: true, Absorbed: true}
	// want is the expected data of the live profiles, built from the
	// whole records.
	want := func(q graph.DataQuery, ps ...*graph.Profile) []string {
		lists, err := s.IdentifiersOf(ctx, ps)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i, p := range ps {
			d := graph.ProfileData{ID: p.ID}
			for _, path := range q.Traits {
				if tr, ok := p.Traits[path]; ok {
					if d.Traits == nil {
						d.Traits = map[string]any{}
					}
					d.Traits[path] = tr.Value
				}
			}
			if q.Keys {
				for _, n := range lists[i] {
					d.Keys = append(d.Keys, n.Key)
				}
			}
			if q.Counts {
				d.Counts = p.Counts
			}
			if q.Absorbed {
				d.Absorbed = slices.Sorted(slices.Values(p.Absorbed))
			}
			out = append(out, fmt.Sprint(d.ID, d.Keys, d.Traits, d.Counts, d.Absorbed))
		}
		return out
	}
	show := func(ds []*graph.ProfileData) []string {
		var out []string
		for _, d := range ds {
			if d == nil {
				out = append(out, "nil")
			} else {
				out = append(out, fmt.Sprint(d.ID, d.Keys, d.Traits, d.Counts, slices.Sorted(slices.Values(d.Absorbed))))
			}
		}
		return out
	}
	for _, q := range []graph.DataQuery{full, {}, {Traits: []string{"plan"}}, {Keys: true}, {Absorbed: true}} {
		got, err := s.ProfilesData(ctx, []string{other.ID, survivor.Absorbed[0], "p_missing", survivor.ID}, q)
		if err != nil {
			t.Fatal(err)
		}
		w := want(q, other, survivor)
		if w = []string{w[0], "nil", "nil", w[1]}; fmt.Sprint(show(got)) != fmt.Sprint(w) {
			t.Errorf("ProfilesData(%+v) =\n%q\nwant\n%q", q, show(got), w)
		}
		// Scanned one at a time, the live profiles in ID order.
		var scanned []*graph.ProfileData
		for after := ""; ; {
			page, err := s.ScanProfilesData(ctx, after, 1, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > 1 {
				t.Fatalf("a page of %d, asked for 1", len(page))
			}
			scanned, after = append(scanned, page...), page[0].ID
		}
		live := []*graph.Profile{survivor, other}
		if other.ID < survivor.ID {
			live = []*graph.Profile{other, survivor}
		}
		if w := want(q, live...); fmt.Sprint(show(scanned)) != fmt.Sprint(w) {
			t.Errorf("ScanProfilesData(%+v) =\n%q\nwant\n%q", q, show(scanned), w)
		}
	}
	if got, err := s.ProfilesData(ctx, nil, full); err != nil || len(got) != 0 {
		t.Errorf("ProfilesData(none) = %v, %v", got, err)
	}
}
