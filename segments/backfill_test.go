package segments_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// racingStore is a segment store whose first SaveStates runs race first:
// the live path saving a profile's state while a backfill evaluates the
// page that holds it.
type racingStore struct {
	segments.Store
	race func()
	once sync.Once
}

func (r *racingStore) SaveStates(ctx context.Context, saves []segments.Save) ([]*segments.ChangeRecord, error) {
	r.once.Do(r.race)
	return r.Store.SaveStates(ctx, saves)
}

// A backfill saves a page of profiles in one transaction; when the live
// path saved one of them meanwhile, the page is refused whole and saved
// profile by profile from the current states: every member enters once
// (the raced one with the live path's reason), and the definition ends
// LIVE.
func TestBackfillStalePage(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		for i := range 5 {
			o := track(fmt.Sprint("m", i), "Order", t0, "", fmt.Sprint("user_id:u", i))
			o.Traits = map[string]any{"plan": []string{"pro", "free"}[i%2]}
			f.ingest(o)
		}
		raced := f.profile("user_id:u2")
		rs := &racingStore{Store: f.s}
		e := segments.NewEngine(f.g, rs, segments.EngineOptions{Now: f.clock.Now})
		d, err := e.Define(ctx, lang.KindSegment, "pro", `trait("plan") = "pro"`, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.e.Load(ctx); err != nil {
			t.Fatal(err)
		}
		rs.race = func() {
			if _, err := f.e.Update(ctx, raced, segments.Change{Traits: []string{"plan"}}); err != nil {
				t.Error(err)
			}
		}
		if err := e.Backfill(ctx, d); err != nil {
			t.Fatal(err)
		}
		cs, err := f.s.Changes(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := describe(cs)
		slices.Sort(got)
		want(t, "records", got, "pro entered v1 data", "pro entered v1 definition", "pro entered v1 definition")
		if n, err := f.s.MemberCount(ctx, "pro"); n != 3 || err != nil {
			t.Errorf("%d members, %v; want 3", n, err)
		}
		if d, err := f.s.Definition(ctx, d.Ref()); err != nil || d.Status.State != segments.StateLive {
			t.Errorf("after the backfill: %+v, %v", d, err)
		}
	})
}

// racingReader is a graph reader whose first bulk read of profile data
// runs race once it has read: a merge landing while a backfill's page is
// being evaluated, after its data was read.
type racingReader struct {
	graph.Reader
	race func()
	once sync.Once
}

func (r *racingReader) ProfilesData(ctx context.Context, ids []string, q graph.DataQuery) ([]*graph.ProfileData, error) {
	ds, err := r.Reader.ProfilesData(ctx, ids, q)
	r.once.Do(r.race)
	return ds, err
}

// A profile absorbed by a merge while its page is backfilled (its data
// read live, saved after the merge) never becomes a member: the page's
// save is refused as stale and its profiles are evaluated again, the
// absorbed one as its survivor. Whether or not the live path evaluated
// the survivor in between, no one enters twice, the absorbed profile has
// no entries and no records, and every live profile's membership equals
// a from-scratch evaluation.
func TestBackfillMergedMidPage(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(fmt.Sprintf("live=%v", live), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, f *fixture) {
				ctx := context.Background()
				plans := []string{"pro", "free", "pro", "pro"}
				for i, plan := range plans {
					o := track(fmt.Sprint("m", i), "Order", t0.Add(time.Duration(i)*time.Second), "", fmt.Sprint("user_id:u", i))
					o.Traits = map[string]any{"plan": plan}
					f.ingest(o)
				}
				a := track("ma", "Order", t0.Add(time.Minute), "", "anonymous_id:a1")
				a.Traits = map[string]any{"plan": "pro"}
				f.ingest(a)
				survivor, absorbed := f.profile("user_id:u1"), f.profile("anonymous_id:a1")
				const src = `trait("plan") = "pro"`
				rr := &racingReader{Reader: f.g, race: func() {
					// u1 (free, older) absorbs a1 (pro): its plan is
					// the newer value, pro.
					f.ingest(graphtest.Obs("join", t0.Add(time.Hour), "user_id:u1", "anonymous_id:a1"))
					if !live {
						return
					}
					if err := f.e.Load(ctx); err != nil {
						t.Error(err)
					}
					if _, err := f.e.Update(ctx, survivor, segments.Change{All: true}); err != nil {
						t.Error(err)
					}
				}}
				e := segments.NewEngine(rr, f.s, segments.EngineOptions{Now: f.clock.Now})
				d, err := e.Define(ctx, lang.KindSegment, "pro", src, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.Backfill(ctx, d); err != nil {
					t.Fatal(err)
				}
				if f.profile("anonymous_id:a1") != survivor {
					t.Fatalf("a1 was not merged into u1's profile")
				}
				// Right after the backfill, before any other evaluation.
				if st := f.stateOf(absorbed); len(st.Entries) > 0 {
					t.Errorf("absorbed profile %s has entries %v", absorbed, st.Entries)
				}
				entered := map[string]int{}
				cs, err := f.s.Changes(ctx, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					if c.Profile == absorbed {
						t.Errorf("absorbed profile %s has a record: %+v", absorbed, *c)
					}
					if c.Direction == segments.Entered {
						entered[c.Profile]++
					} else {
						entered[c.Profile]--
					}
					if entered[c.Profile] < 0 || entered[c.Profile] > 1 {
						t.Errorf("records of %s do not alternate: %s", c.Profile, describe(cs))
					}
				}
				checkFromScratch(t, f, lang.KindSegment, "pro", src)
			})
		})
	}
}

// checkFromScratch compares every live profile's stored entry for a
// definition with the definition evaluated from scratch over the profile
// (traits and identifiers only), and checks that no absorbed profile has
// entries.
func checkFromScratch(t *testing.T, f *fixture, kind lang.Kind, key, src string) {
	t.Helper()
	ctx := context.Background()
	prog, err := lang.Compile(src, lang.Options{Kind: kind, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := f.g.Profiles(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	ref := segments.RefString(segments.Ref{Kind: kind, Key: key})
	for _, p := range ps {
		snap, err := lang.SnapshotOf(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := lang.Eval(prog, snap.View(), f.clock.Now()).Value
		if got, want := f.stateOf(p.ID).Entries[ref].Member, v.Type == lang.TypeBool && v.Bool; got != want {
			t.Errorf("profile %s: member %v, from scratch %v", p.ID, got, want)
		}
		for _, a := range p.Absorbed {
			if st := f.stateOf(a); len(st.Entries) > 0 {
				t.Errorf("absorbed profile %s has entries %v", a, st.Entries)
			}
		}
	}
}

// stateOf is a profile's stored state, by profile ID.
func (f *fixture) stateOf(profile string) *segments.ProfileState {
	f.t.Helper()
	sts, err := f.s.States(context.Background(), []string{profile})
	if err != nil {
		f.t.Fatal(err)
	}
	return sts[0]
}

// A backfill of a definition that reads events reads a page's profiles,
// states, identifiers and timelines with one call each, as the live path
// does, not one per profile.
func TestBackfillReadsEventsPerPage(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const n = 30
		for i := range n {
			f.ingest(track(fmt.Sprint("m", i), "Order", t0, "", fmt.Sprint("user_id:u", i)))
		}
		reads := &readCounts{}
		e := segments.NewEngine(reads.of(f.g), f.s, segments.EngineOptions{Now: f.clock.Now})
		d, err := e.Define(ctx, lang.KindSegment, "buyer", `events("Order").exists()`, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Backfill(ctx, d); err != nil {
			t.Fatal(err)
		}
		if m, err := f.s.MemberCount(ctx, "buyer"); m != n || err != nil {
			t.Errorf("%d members, %v; want %d", m, err, n)
		}
		calls := reads.take()
		for _, m := range []string{"Profile", "Timeline", "Timelines", "IdentifiersOf", "GetProfiles"} {
			if calls[m] > 1 {
				t.Errorf("%d calls of %s for one page of %d profiles (all calls: %v)", calls[m], m, n, calls)
			}
		}
	})
}

// A backfill of a new or edited definition evaluates only it and what
// reads it: a trait-only segment created beside a segment that reads
// events reads no timelines, and the other segment's members stay; an
// edit re-evaluates the definitions reading the edited one; an engine
// that never loaded the definitions the states were saved with (another
// process's newer ones) evaluates everything, as before.
func TestBackfillEvaluatesOnlyWhatChanged(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const n = 30
		for i := range n {
			o := track(fmt.Sprint("m", i), "Order", t0, "", fmt.Sprint("user_id:u", i))
			if i%3 == 0 {
				o.Event.Name = "Visit"
			}
			o.Traits = map[string]any{"plan": []string{"pro", "free"}[i%2], "tier": []string{"gold", "tin", "lead"}[i%3]}
			f.ingest(o)
		}
		reads := &readCounts{}
		r := reads.of(f.g)
		e := segments.NewEngine(r, f.s, segments.EngineOptions{Now: f.clock.Now})
		backfill := func(e *segments.Engine, key, src string, version int) map[string]int {
			t.Helper()
			d, err := e.Define(ctx, lang.KindSegment, key, src, version)
			if err != nil {
				t.Fatal(err)
			}
			reads.take()
			if err := e.Backfill(ctx, d); err != nil {
				t.Fatal(err)
			}
			return reads.take()
		}
		members := func(want map[string]int) {
			t.Helper()
			for key, w := range want {
				if m, err := f.s.MemberCount(ctx, key); m != w || err != nil {
					t.Errorf("%s: %d members, %v; want %d", key, m, err, w)
				}
			}
		}
		timelines := func(c map[string]int) int { return c["Timeline"] + c["Timelines"] }
		if c := backfill(e, "buyer", `events("Order").exists()`, 0); timelines(c) == 0 {
			t.Fatalf("the backfill of an event segment read no timelines: %v", c)
		}
		if c := backfill(e, "pro", `trait("plan") = "pro"`, 0); timelines(c) != 0 {
			t.Errorf("the backfill of a trait-only segment beside an event segment read timelines: %v", c)
		}
		members(map[string]int{"buyer": 20, "pro": 15})
		// vip reads pro: an edit of pro re-evaluates vip, and buyer stays.
		backfill(e, "vip", `in_segment("pro") and trait("tier") = "gold"`, 0)
		members(map[string]int{"buyer": 20, "pro": 15, "vip": 5})
		if c := backfill(e, "pro", `trait("plan") = "free"`, 1); timelines(c) != 0 {
			t.Errorf("the backfill of an edited trait-only segment read timelines: %v", c)
		}
		members(map[string]int{"buyer": 20, "pro": 15, "vip": 5})
		if pro := f.stateOf(f.profile("user_id:u1")).Entries; pro["segment:vip"].Member || !pro["segment:buyer"].Member {
			t.Errorf("u1 (free, gold) after the edit: %+v; want in pro and vip, and still a buyer", pro)
		}
		// An engine that loaded the definitions before gold was created
		// by another never knew the states' definitions: it evaluates
		// everything (timelines read), with the same results.
		other := segments.NewEngine(r, f.s, segments.EngineOptions{Now: f.clock.Now})
		if err := other.Load(ctx); err != nil {
			t.Fatal(err)
		}
		backfill(e, "gold", `trait("tier") = "gold"`, 0)
		if c := backfill(other, "lead", `trait("tier") = "lead"`, 0); timelines(c) == 0 {
			t.Errorf("an engine that did not know the states' definitions read no timelines: %v", c)
		}
		members(map[string]int{"buyer": 20, "pro": 15, "vip": 5, "gold": 10, "lead": 10})
	})
}

// readCounts counts the calls of a graph reader, by method.
type readCounts struct {
	mu    sync.Mutex
	calls map[string]int
}

// of returns g counting its calls.
func (c *readCounts) of(g graph.Reader) graph.Reader {
	return graph.CountingReader{R: g, Count: func(m string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.calls == nil {
			c.calls = map[string]int{}
		}
		c.calls[m]++
	}}
}

// take returns the counts so far and starts again from none.
func (c *readCounts) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = nil
	return calls
}
