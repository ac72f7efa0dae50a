package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

func testStitch(t *testing.T, s graph.Store) {
	Ingest(t, s,
		Obs("m1", t0, "anonymous_id:a1"),
		Obs("m2", t0.Add(time.Minute), "anonymous_id:a1", "user_id:u1", "email:ann@corp.io"),
		Obs("m3", t0, "anonymous_id:a2"),
	)
	wantPartition(t, s, "anonymous_id:a1 email:ann@corp.io user_id:u1", "anonymous_id:a2")
	n, err := s.Identifier(context.Background(), key("anonymous_id:a1"))
	if err != nil {
		t.Fatal(err)
	}
	if !n.FirstSeen.Equal(t0) || !n.LastSeen.Equal(t0.Add(time.Minute)) || len(n.Sources) != 1 {
		t.Errorf("anonymous_id:a1 = %+v, want first seen %v, last seen a minute later, one source", n, t0)
	}
	e := edge(t, s, "user_id:u1", "email:ann@corp.io")
	if e.Status != graph.StatusAccepted || e.Kind != graph.KindExact || e.Score != 1 || e.Count != 1 {
		t.Errorf("edge = %+v, want accepted exact score 1 count 1", e)
	}
}

func testMergeSurvivor(t *testing.T, s graph.Store) {
	Ingest(t, s, Obs("m1", t0, "anonymous_id:a1"), Obs("m2", t0, "user_id:u1", "email:bo@corp.io"))
	older := ProfileOf(t, s, "anonymous_id:a1").ID
	younger := ProfileOf(t, s, "user_id:u1").ID
	r := Ingest(t, s, Obs("m3", t0, "user_id:u1", "anonymous_id:a1"))
	if r.Merges != 1 {
		t.Fatalf("merges = %d, want 1", r.Merges)
	}
	if got := ProfileOf(t, s, "user_id:u1").ID; got != older {
		t.Errorf("merged profile is %s, want the older %s", got, older)
	}
	absorbed, err := s.Profile(context.Background(), younger)
	if err != nil {
		t.Fatal(err)
	}
	if absorbed.MergedInto != older {
		t.Errorf("absorbed profile %s merged into %q, want %s", younger, absorbed.MergedInto, older)
	}
	ms, err := s.Merges(context.Background(), older)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Survivor != older || ms[0].Absorbed != younger || ms[0].MessageID != "m3" || ms[0].AbsorbedSize != 2 {
		t.Errorf("merge events = %+v, want one of %s into %s by m3", ms, younger, older)
	}
}

func testChainedMerges(t *testing.T, s graph.Store) {
	Ingest(t, s, Obs("m1", t0, "anonymous_id:a1"), Obs("m2", t0, "anonymous_id:a2"), Obs("m3", t0, "anonymous_id:a3"))
	p1 := ProfileOf(t, s, "anonymous_id:a1").ID
	p3 := ProfileOf(t, s, "anonymous_id:a3").ID
	// m5 reaches the twice-absorbed profile only through a2's profile, so
	// a3's profile is not loaded when it is re-pointed.
	Ingest(t, s, Obs("m4", t0, "anonymous_id:a2", "anonymous_id:a3"), Obs("m5", t0, "anonymous_id:a1", "anonymous_id:a2"))
	wantPartition(t, s, "anonymous_id:a1 anonymous_id:a2 anonymous_id:a3")
	got, err := s.Profile(context.Background(), p3)
	if err != nil {
		t.Fatal(err)
	}
	if got.MergedInto != p1 {
		t.Errorf("profile absorbed twice points at %s, want root %s", got.MergedInto, p1)
	}
}

func testFamilyTablet(t *testing.T, s graph.Store) {
	Ingest(t, s,
		Obs("m1", t0, "user_id:mum", "device_id:tablet"),
		Obs("m2", t0.Add(time.Hour), "user_id:kid", "device_id:tablet"),
	)
	// The tablet is shared: it joins neither, and both edges wait for a
	// steward (see SharedDeviceRepaired).
	wantPartition(t, s, "device_id:tablet", "user_id:mum", "user_id:kid")
	for _, who := range []string{"user_id:mum", "user_id:kid"} {
		if e := edge(t, s, who, "device_id:tablet"); e.Status != graph.StatusPending || e.Reason != graph.ReasonShared {
			t.Errorf("edge %s–tablet = %s/%s, want pending/%s", who, e.Status, e.Reason, graph.ReasonShared)
		}
	}
	// Without shared limits, merge protection alone keeps the two apart.
	s2cfg := graph.DefaultConfig()
	s2cfg.SharedLimits = nil
	IngestWith(t, s, s2cfg,
		Obs("m3", t0, "user_id:dad", "device_id:tv"),
		Obs("m4", t0.Add(time.Hour), "user_id:teen", "device_id:tv"),
	)
	if e := edge(t, s, "user_id:teen", "device_id:tv"); e.Status != graph.StatusPending || e.Reason != graph.ReasonMergeProtection {
		t.Errorf("edge teen–tv = %s/%s, want pending/%s", e.Status, e.Reason, graph.ReasonMergeProtection)
	}
}

func testEmailLimit(t *testing.T, s graph.Store) {
	var obs []*graph.Observation
	for i := range 6 {
		obs = append(obs, Obs(msg(i), t0, "user_id:u", fmt.Sprintf("email:e%d@corp.io", i)))
	}
	Ingest(t, s, obs...)
	wantPartition(t, s, "email:e0@corp.io email:e1@corp.io email:e2@corp.io email:e3@corp.io email:e4@corp.io user_id:u", "email:e5@corp.io")
	if e := edge(t, s, "user_id:u", "email:e5@corp.io"); e.Status != graph.StatusPending {
		t.Errorf("sixth email's edge is %s, want pending", e.Status)
	}
}

func testHub(t *testing.T, s graph.Store) {
	cfg := graph.DefaultConfig()
	cfg.HubLimit = 3
	cfg.SharedLimits = nil
	var obs []*graph.Observation
	for i := range 5 {
		obs = append(obs, Obs(msg(i), t0, fmt.Sprintf("user_id:u%d", i), "anonymous_id:kiosk"))
	}
	r := IngestWith(t, s, cfg, obs...)
	if r.Hubs != 1 {
		t.Fatalf("hubs marked = %d, want 1", r.Hubs)
	}
	hubs, err := s.Hubs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(hubs) != 1 || hubs[0].Key != key("anonymous_id:kiosk") || hubs[0].Strong != 4 || hubs[0].MessageID != "m3" {
		t.Fatalf("hub markings = %+v, want anonymous_id:kiosk at m3 with 4 strong identifiers", hubs)
	}
	IngestWith(t, s, cfg, Obs("m9", t0, "anonymous_id:kiosk", "email:new@corp.io"))
	if e := edge(t, s, "anonymous_id:kiosk", "email:new@corp.io"); e.Status != graph.StatusRejected || e.Reason != graph.ReasonHub {
		t.Errorf("edge from hub = %s/%s, want rejected/hub", e.Status, e.Reason)
	}
	if ProfileOf(t, s, "email:new@corp.io").ID == ProfileOf(t, s, "anonymous_id:kiosk").ID {
		t.Errorf("a new identifier joined the hub's profile")
	}
}

func testDedupe(t *testing.T, s graph.Store) {
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ctx := context.Background()
	r, err := st.Ingest(ctx, []*graph.Observation{Obs("m1", t0, "anonymous_id:a"), Obs("m1", t0, "anonymous_id:a")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stored != 1 || r.Duplicates != 1 {
		t.Errorf("same batch: stored %d duplicates %d, want 1 and 1", r.Stored, r.Duplicates)
	}
	r, err = st.Ingest(ctx, []*graph.Observation{Obs("m1", t0, "anonymous_id:a", "user_id:x")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stored != 0 || r.Duplicates != 1 {
		t.Errorf("redelivery: stored %d duplicates %d, want 0 and 1", r.Stored, r.Duplicates)
	}
	evs, err := graph.Timeline(ctx, s, []graph.Key{key("anonymous_id:a")}, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Errorf("events = %d, want 1", len(evs))
	}
	if _, err := s.Identifier(ctx, key("user_id:x")); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("a redelivered message's identifier was stored (err %v)", err)
	}
}

// maxAge is a retention policy of one time to live for every event.
type maxAge time.Duration

func (a maxAge) Expired(ev *graph.Event, now time.Time) bool {
	return ev.Timestamp.Before(now.Add(-time.Duration(a)))
}

// testExpiredAtIngest: an event already past its time to live when it
// arrives (a late upload) links its identifiers and sets its traits, as
// the sweeper would leave them, but its event is not kept, nor taken for
// a duplicate when the message comes again.
func testExpiredAtIngest(t *testing.T, s graph.Store) {
	ctx := context.Background()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	st.Now = func() time.Time { return t0.Add(100 * 24 * time.Hour) }
	st.Retention = maxAge(30 * 24 * time.Hour)
	late := Obs("m-late", t0, "anonymous_id:a", "user_id:u")
	late.Traits = map[string]any{"plan": "pro"}
	recent := Obs("m-recent", t0.Add(99*24*time.Hour), "anonymous_id:b")
	for round := range 2 {
		r, err := st.Ingest(ctx, []*graph.Observation{late, recent})
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 && (r.Stored != 1 || r.Expired != 1 || r.Duplicates != 0) {
			t.Errorf("first delivery: stored %d, expired %d, duplicates %d; want 1, 1, 0", r.Stored, r.Expired, r.Duplicates)
		}
		if round == 1 && (r.Stored != 0 || r.Expired != 1 || r.Duplicates != 1) {
			t.Errorf("redelivery: stored %d, expired %d, duplicates %d; want 0, 1 (never kept, so not a duplicate), 1", r.Stored, r.Expired, r.Duplicates)
		}
		wantPartition(t, s, "anonymous_id:a user_id:u", "anonymous_id:b")
		if p := ProfileOf(t, s, "user_id:u"); p.Traits["plan"].Value != "pro" {
			t.Errorf("round %d: the late identify's trait plan = %v, want pro", round, p.Traits["plan"].Value)
		}
		for id, want := range map[string]int{"anonymous_id:a": 0, "user_id:u": 0, "anonymous_id:b": 1} {
			evs, err := graph.Timeline(ctx, s, []graph.Key{key(id)}, nil, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != want {
				t.Errorf("round %d: %s has %d events, want %d", round, id, len(evs), want)
			}
		}
	}
}

func testTraits(t *testing.T, s graph.Store) {
	withTraits := func(o *graph.Observation, traits map[string]any) *graph.Observation {
		o.Traits = traits
		return o
	}
	Ingest(t, s,
		withTraits(Obs("m1", t0.Add(2*time.Hour), "user_id:u"), map[string]any{"plan": "pro", "address": map[string]any{"city": "Oslo"}}),
		withTraits(Obs("m2", t0.Add(time.Hour), "user_id:u"), map[string]any{"plan": "free", "name": "Una"}),
		withTraits(Obs("m3", t0.Add(3*time.Hour), "anonymous_id:a"), map[string]any{"address": map[string]any{"street": "Main 1"}, "name": "Una Smith"}),
		Obs("m4", t0.Add(4*time.Hour), "user_id:u", "anonymous_id:a"),
	)
	p := ProfileOf(t, s, "user_id:u")
	want := map[string]any{"plan": "pro", "name": "Una Smith", "address.city": "Oslo", "address.street": "Main 1"}
	for k, v := range want {
		if p.Traits[k].Value != v {
			t.Errorf("trait %s = %v, want %v", k, p.Traits[k].Value, v)
		}
	}
	if tr := p.Traits["plan"]; !tr.Time.Equal(t0.Add(2*time.Hour)) || tr.Source != "test" {
		t.Errorf("trait plan provenance = %v from %q, want %v from test", tr.Time, tr.Source, t0.Add(2*time.Hour))
	}
}

func testAlias(t *testing.T, s graph.Store) {
	alias := func(id, prev, user string) *graph.Observation {
		o := Obs(id, t0, "user_id:"+user)
		o.PreviousID = prev
		return o
	}
	Ingest(t, s, Obs("m1", t0, "user_id:old"), alias("m2", "old", "new"), alias("m3", "visitor", "third"))
	wantPartition(t, s, "user_id:new", "user_id:old", "anonymous_id:visitor user_id:third")
	if _, err := s.Identifier(context.Background(), key("user_id:visitor")); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("the unused alias candidate user_id:visitor was stored (err %v)", err)
	}
}

func testTimeline(t *testing.T, s graph.Store) {
	Ingest(t, s,
		Obs("m1", t0, "anonymous_id:a"),
		Obs("m2", t0.Add(time.Minute), "anonymous_id:b"),
		Obs("m3", t0.Add(2*time.Minute), "anonymous_id:a", "anonymous_id:b"),
	)
	ctx := context.Background()
	p := ProfileOf(t, s, "anonymous_id:a")
	ids, err := graph.ProfileIdentifiers(ctx, s, p)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range ids {
		evs, err := graph.Timeline(ctx, s, []graph.Key{n.Key}, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range evs {
			seen[ev.MessageID] = true
			if i > 0 && ev.Timestamp.After(evs[i-1].Timestamp) {
				t.Errorf("events of %s are not newest first", n.Key)
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("timeline holds %v, want m1, m2, m3", seen)
	}
}

func testSettings(t *testing.T, s graph.Store) {
	ctx := context.Background()
	if _, ok, err := s.Setting(ctx, "k"); err != nil || ok {
		t.Fatalf("unset setting: ok %v err %v", ok, err)
	}
	if v, err := s.InitSetting(ctx, "k", "first"); err != nil || v != "first" {
		t.Fatalf("init: %q %v", v, err)
	}
	if v, err := s.InitSetting(ctx, "k", "second"); err != nil || v != "first" {
		t.Fatalf("second init: %q %v, want first", v, err)
	}
	// PutSetting overwrites, with a value as large as a trained model.
	big := strings.Repeat("m", 200_000)
	for _, v := range []string{"third", big} {
		if err := s.PutSetting(ctx, "k", v); err != nil {
			t.Fatalf("put: %v", err)
		}
		if got, ok, err := s.Setting(ctx, "k"); err != nil || !ok || got != v {
			t.Fatalf("after put: %d chars ok %v err %v, want %d chars", len(got), ok, err, len(v))
		}
	}
	if err := s.PutSetting(ctx, "fresh", "v"); err != nil {
		t.Fatalf("put new: %v", err)
	}
	if got, ok, _ := s.Setting(ctx, "fresh"); !ok || got != "v" {
		t.Fatalf("put new: got %q ok %v", got, ok)
	}
}
