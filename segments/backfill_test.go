package segments_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

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
