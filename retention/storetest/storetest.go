// Package storetest is the contract suite of retention.Store: every
// backend passes it, with the Sweeper on top.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/retention"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// Run runs every contract test against the backend. open returns an empty
// graph store that also stores segments, erasures and retention.
func Run(t *testing.T, open graphtest.Opener) {
	graphtest.RunCases(t, open, func(t *testing.T, g graph.Store) stores {
		return stores{g, graphtest.As[retention.Backend](t, g).Retention(),
			graphtest.As[erase.Backend](t, g).Erasure(), graphtest.As[segments.Backend](t, g).Segments()}
	}, map[string]func(*testing.T, stores){
		"CutoffIsHalfOpenPerType":      testCutoffs,
		"SegmentsForgetExpiredEvents":  testSegments,
		"TenThousandEventsInBatches":   testManyEvents,
		"ResumableAndIdempotent":       testResumable,
		"TwoSweepersAtOnce":            testTwoSweepers,
		"ConcurrentIngestLosesNothing": testConcurrentIngest,
		"LateAndDuplicateEvents":       testLateEvents,
		"ExpiresInactiveProfiles":      testExpiry,
		"ExpiryKeepsTouchedProfile":    testExpiryRace,
		"BadRequests":                  testBadRequests,
		"ScanBoundedBatches":           testScanBound,
		"ReadsOnlyPastTheLatestCutoff": testReadsPastCutoff,
		"RandomAgainstOracle":          testRandom,
	})
}

// stores is what a contract test gets.
type stores struct {
	g graph.Store
	r retention.Store
	e erase.Store
	s segments.Store
}

// now is the sweeps' clock in every test.
var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// ev is an observation of one event: typ "page", "identify"… or a track
// event's name.
func ev(msg string, at time.Time, typ string, ids ...string) *graph.Observation {
	o := graphtest.Obs(msg, at, ids...)
	switch typ {
	case "page", "screen", "identify", "group", "alias":
		o.Event = graph.Event{Type: typ}
	default:
		o.Event = graph.Event{Type: "track", Name: typ}
	}
	return o
}

// ingest stores the observations in one transaction, recording data
// changes, with the stitcher's clock at at.
func ingest(t *testing.T, g graph.Store, at time.Time, obs ...*graph.Observation) {
	t.Helper()
	st := graph.NewStitcher(g, graph.DefaultConfig())
	st.RecordDataChanges = true
	st.Now = func() time.Time { return at }
	if _, err := st.Ingest(context.Background(), obs); err != nil {
		t.Fatalf("ingest: %v", err)
	}
}

func sweeper(x stores, p retention.Policy, batch int) *retention.Sweeper {
	return &retention.Sweeper{Store: x.r, Erasure: x.e, Policy: p, Batch: batch, Now: func() time.Time { return now }}
}

func sweep(t *testing.T, sw *retention.Sweeper) *retention.Run {
	t.Helper()
	run, err := sw.Sweep(context.Background())
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return run
}

// messages returns the message IDs of the events stored with the
// identifier's profile, sorted.
func messages(t *testing.T, g graph.Store, id string) []string {
	t.Helper()
	evs, err := segments.ProfileEvents(context.Background(), g, graphtest.ProfileOf(t, g, id))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.MessageID)
	}
	slices.Sort(out)
	return out
}

func wantMessages(t *testing.T, g graph.Store, id string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := messages(t, g, id); !slices.Equal(got, want) {
		t.Errorf("events of %s: got %q, want %q", id, got, want)
	}
}

// testCutoffs: each type expires at its own cutoff; an event exactly at
// the cutoff is kept, one a nanosecond older goes; a type with TTL 0 is
// kept forever; page and identify calls are types of their own.
func testCutoffs(t *testing.T, x stores) {
	pol := retention.Policy{Default: 395 * day, ByType: map[string]time.Duration{"Page Viewed": 30 * day, "page": 7 * day, "Kept": 0}}
	u := "user_id:u1"
	at30, at7, at395 := now.Add(-30*day), now.Add(-7*day), now.Add(-395*day)
	ingest(t, x.g, now.Add(-400*day),
		ev("pv-at", at30, "Page Viewed", u), ev("pv-old", at30.Add(-time.Nanosecond), "Page Viewed", u),
		ev("pv-new", now, "Page Viewed", u),
		ev("pg-at", at7, "page", u), ev("pg-old", at7.Add(-time.Nanosecond), "page", u),
		ev("oc-at", at395, "Order Completed", u), ev("oc-old", at395.Add(-time.Nanosecond), "Order Completed", u),
		ev("oc-20", now.Add(-20*day), "Order Completed", u),
		ev("id-old", at395.Add(-day), "identify", u), ev("kept", now.Add(-3000*day), "Kept", u))
	run := sweep(t, sweeper(x, pol, 2))
	wantMessages(t, x.g, u, "pv-at", "pv-new", "pg-at", "oc-at", "oc-20", "kept")
	want := map[string]int{"Page Viewed": 1, "page": 1, "Order Completed": 1, "identify": 1}
	if !mapsEqual(run.Events, want) {
		t.Errorf("deleted by type %v, want %v", run.Events, want)
	}
	if run.Batches < 2 {
		t.Errorf("%d batches of 2 for 4 events, want at least 2", run.Batches)
	}
	// The profile is marked as changed, naming the deleted track events.
	ps, err := x.s.PendingChanges(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	p := graphtest.ProfileOf(t, x.g, u)
	found := false
	for _, c := range ps {
		if c.Profile == p.ID {
			found = true
			for _, n := range []string{"Page Viewed", "Order Completed"} {
				if !slices.Contains(c.Events, n) {
					t.Errorf("pending change %v does not name %q", c.Events, n)
				}
			}
		}
	}
	if !found {
		t.Errorf("no pending change for %s after the sweep: %v", p.ID, ps)
	}
	if again := sweep(t, sweeper(x, pol, 2)); again.EventTotal() != 0 {
		t.Errorf("a second sweep deleted %v", again.Events)
	}
}

func mapsEqual(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// catchUp evaluates every pending data change.
func catchUp(t *testing.T, e *segments.Engine) {
	t.Helper()
	for {
		n, err := e.CatchUp(context.Background())
		if err != nil {
			t.Fatalf("catch up: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// entry returns a profile's entry of a definition.
func entry(t *testing.T, s segments.Store, profile, ref string) segments.Entry {
	t.Helper()
	st, err := s.States(context.Background(), []string{profile})
	if err != nil {
		t.Fatal(err)
	}
	return st[0].Entries[ref]
}

// testSegments: a count-based segment and computed trait are evaluated
// again after a sweep, as if the expired events had never been stored.
func testSegments(t *testing.T, x stores) {
	ctx := context.Background()
	a, b := "user_id:a", "user_id:b"
	ingest(t, x.g, now.Add(-day),
		ev("a1", now.Add(-40*day), "Page Viewed", a), ev("a2", now.Add(-35*day), "Page Viewed", a),
		ev("a3", now.Add(-day), "Page Viewed", a), ev("a4", now.Add(-40*day), "Order Completed", a),
		ev("b1", now.Add(-3*day), "Page Viewed", b), ev("b2", now.Add(-2*day), "Page Viewed", b))
	eng := segments.NewEngine(x.g, x.s, segments.EngineOptions{Now: func() time.Time { return now }})
	for _, d := range []struct {
		kind lang.Kind
		key  string
		src  string
	}{
		{lang.KindSegment, "viewers", `events("Page Viewed").count() >= 2`},
		{lang.KindComputed, "views", `events("Page Viewed").count()`},
		{lang.KindComputed, "orders", `events("Order Completed").count()`},
	} {
		def, err := eng.Define(ctx, d.kind, d.key, d.src, 0)
		if err != nil {
			t.Fatalf("define %s: %v", d.key, err)
		}
		if err := eng.Backfill(ctx, def); err != nil {
			t.Fatalf("backfill %s: %v", d.key, err)
		}
	}
	catchUp(t, eng)
	pa, pb := graphtest.ProfileOf(t, x.g, a).ID, graphtest.ProfileOf(t, x.g, b).ID
	seg := segments.RefString(segments.Ref{Kind: lang.KindSegment, Key: "viewers"})
	views := segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: "views"})
	orders := segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: "orders"})
	number := func(p, ref string) float64 {
		v := entry(t, x.s, p, ref).Value
		if v == nil {
			return 0
		}
		return v.Number
	}
	if !entry(t, x.s, pa, seg).Member || number(pa, views) != 3 || number(pa, orders) != 1 {
		t.Fatalf("before the sweep: a member %v, views %v, orders %v; want true, 3, 1",
			entry(t, x.s, pa, seg).Member, number(pa, views), number(pa, orders))
	}
	last, err := x.s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := sweep(t, sweeper(x, retention.Policy{Default: 395 * day, ByType: map[string]time.Duration{"Page Viewed": 30 * day}}, 10))
	if run.Events["Page Viewed"] != 2 || run.EventTotal() != 2 {
		t.Fatalf("deleted %v, want 2 Page Viewed", run.Events)
	}
	catchUp(t, eng)
	if entry(t, x.s, pa, seg).Member || number(pa, views) != 1 || number(pa, orders) != 1 {
		t.Errorf("after the sweep: a member %v, views %v, orders %v; want false, 1, 1",
			entry(t, x.s, pa, seg).Member, number(pa, views), number(pa, orders))
	}
	if !entry(t, x.s, pb, seg).Member || number(pb, views) != 2 {
		t.Errorf("b lost its membership or views: %v, %v", entry(t, x.s, pb, seg).Member, number(pb, views))
	}
	cs, err := x.s.Changes(ctx, last, 100)
	if err != nil {
		t.Fatal(err)
	}
	var exits []string
	for _, c := range cs {
		if c.Direction == segments.Exited {
			exits = append(exits, c.Profile+" "+c.Reason)
		}
	}
	if want := []string{pa + " " + segments.ReasonData}; !slices.Equal(exits, want) {
		t.Errorf("exit records %q, want %q", exits, want)
	}
}

// testManyEvents: one profile with 10,000 events, half expired, is swept
// in batches of 500; the other half is kept exactly, and a count over the
// remaining events is exact.
func testManyEvents(t *testing.T, x stores) {
	const n = 10000
	u := "user_id:big"
	var want []string
	for i := 0; i < n; i += 2500 {
		var obs []*graph.Observation
		for j := i; j < i+2500; j++ {
			msg := fmt.Sprintf("big-%05d", j)
			at := now.Add(-time.Duration(j) * time.Hour / 100) // up to ~4 days old
			if j%2 == 0 {
				at = now.Add(-40*day - time.Duration(j)*time.Second)
			} else {
				want = append(want, msg)
			}
			obs = append(obs, ev(msg, at, "Page Viewed", u))
		}
		ingest(t, x.g, now, obs...)
	}
	run := sweep(t, sweeper(x, retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * day}}, 500))
	if run.Events["Page Viewed"] != n/2 {
		t.Errorf("deleted %d, want %d", run.Events["Page Viewed"], n/2)
	}
	if run.Batches < n/2/500 {
		t.Errorf("%d batches, want at least %d", run.Batches, n/2/500)
	}
	wantMessages(t, x.g, u, want...)
}

// testResumable: a sweep stopped between batches (its cursor lost) loses
// nothing: a new sweep deletes the rest, each event counted once.
func testResumable(t *testing.T, x stores) {
	var obs []*graph.Observation
	for i := range 50 {
		obs = append(obs, ev(fmt.Sprintf("r%02d", i), now.Add(-time.Duration(i%3)*20*day), "Page Viewed", "user_id:r"))
	}
	ingest(t, x.g, now, obs...)
	cut := retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * day}}.Cutoffs(now)
	res, err := x.r.DeleteExpiredEvents(context.Background(), retention.EventsRequest{Cutoffs: cut, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total() != 5 || res.Next == "" {
		t.Fatalf("first batch deleted %d (next %q), want 5 and a cursor", res.Total(), res.Next)
	}
	run := sweep(t, sweeper(x, retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * day}}, 7))
	if total := res.Total() + run.EventTotal(); total != 16 { // i%3 == 2: 40 days old
		t.Errorf("deleted %d in all, want 16", total)
	}
	var want []string
	for i := range 50 {
		if i%3 != 2 {
			want = append(want, fmt.Sprintf("r%02d", i))
		}
	}
	wantMessages(t, x.g, "user_id:r", want...)
}

// testTwoSweepers: two processes sweeping one store at once delete every
// expired event once between them.
func testTwoSweepers(t *testing.T, x stores) {
	var obs []*graph.Observation
	for i := range 300 {
		at := now.Add(-40 * day)
		if i%4 == 0 {
			at = now
		}
		obs = append(obs, ev(fmt.Sprintf("s%03d", i), at, "Page Viewed", fmt.Sprintf("user_id:s%d", i%10)))
	}
	ingest(t, x.g, now, obs...)
	pol := retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * day}}
	var wg sync.WaitGroup
	runs := make([]*retention.Run, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { runs[i], errs[i] = sweeper(x, pol, 20).Sweep(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
	}
	if total := runs[0].EventTotal() + runs[1].EventTotal(); total != 225 {
		t.Errorf("deleted %d + %d events, want 225 in all", runs[0].EventTotal(), runs[1].EventTotal())
	}
	for i := range 10 {
		var want []string
		for j := i; j < 300; j += 10 {
			if j%4 == 0 {
				want = append(want, fmt.Sprintf("s%03d", j))
			}
		}
		wantMessages(t, x.g, fmt.Sprintf("user_id:s%d", i), want...)
	}
}

// testConcurrentIngest: messages ingested while a sweep runs (recent ones,
// and late ones with expired timestamps) are never lost when recent; late
// ones are deleted by this sweep or the next.
func testConcurrentIngest(t *testing.T, x stores) {
	var old []*graph.Observation
	for i := range 400 {
		old = append(old, ev(fmt.Sprintf("o%03d", i), now.Add(-40*day), "Page Viewed", fmt.Sprintf("user_id:c%d", i%8)))
	}
	ingest(t, x.g, now, old...)
	pol := retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * day}}
	done := make(chan error, 1)
	go func() {
		_, err := sweeper(x, pol, 10).Sweep(context.Background())
		done <- err
	}()
	st := graph.NewStitcher(x.g, graph.DefaultConfig())
	st.RecordDataChanges = true
	for i := range 40 {
		obs := []*graph.Observation{
			ev(fmt.Sprintf("n%03d", i), now.Add(-time.Hour), "Page Viewed", fmt.Sprintf("user_id:c%d", i%8)),
			ev(fmt.Sprintf("l%03d", i), now.Add(-50*day), "Page Viewed", fmt.Sprintf("user_id:c%d", i%8)),
		}
		if _, err := st.Ingest(context.Background(), obs); err != nil {
			t.Fatalf("ingest during the sweep: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("sweep: %v", err)
	}
	sweep(t, sweeper(x, pol, 10))
	for c := range 8 {
		var want []string
		for i := c; i < 40; i += 8 {
			want = append(want, fmt.Sprintf("n%03d", i))
		}
		wantMessages(t, x.g, fmt.Sprintf("user_id:c%d", c), want...)
	}
}

// testLateEvents: an event whose timestamp is already past its cutoff
// when it arrives after a sweep is stored (ingest does not know the
// policy) and deleted by the next sweep; a duplicate of a message a sweep
// deleted is no longer a duplicate: it is stored again, and swept again.
func testLateEvents(t *testing.T, x stores) {
	pol := retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * day}}
	u := "user_id:late"
	ingest(t, x.g, now, ev("dup", now.Add(-40*day), "Page Viewed", u), ev("keep", now, "Page Viewed", u))
	sweep(t, sweeper(x, pol, 10))
	wantMessages(t, x.g, u, "keep")
	ingest(t, x.g, now, ev("dup", now.Add(-40*day), "Page Viewed", u), ev("late", now.Add(-31*day), "Page Viewed", u),
		ev("keep", now, "Page Viewed", u))
	wantMessages(t, x.g, u, "dup", "keep", "late")
	run := sweep(t, sweeper(x, pol, 10))
	if run.EventTotal() != 2 {
		t.Errorf("second sweep deleted %v, want dup and late", run.Events)
	}
	wantMessages(t, x.g, u, "keep")
}

// testExpiry: a profile not updated within InactiveProfiles goes whole
// (identifiers, events, segment state, with exit records of reason
// expired), without suppression: the person may come back as someone new.
// A recent profile and an absorbed one's survivor are judged by the live
// profile's last update.
func testExpiry(t *testing.T, x stores) {
	ctx := context.Background()
	oldAt, newAt := now.Add(-100*day), now.Add(-day)
	ingest(t, x.g, oldAt, ev("x1", oldAt, "Page Viewed", "user_id:gone", "email:gone@example.com"))
	ingest(t, x.g, oldAt, ev("x2", oldAt, "Page Viewed", "anonymous_id:merged-old"))
	ingest(t, x.g, newAt, ev("x3", newAt, "Page Viewed", "anonymous_id:merged-old", "user_id:stays"))
	ingest(t, x.g, newAt, ev("x4", newAt, "Page Viewed", "user_id:fresh"))
	gone := graphtest.ProfileOf(t, x.g, "user_id:gone")
	segtest.Define(t, x.s, lang.KindSegment, "any", "true")
	if _, err := x.s.SaveStates(ctx, []segments.Save{{State: &segments.ProfileState{Profile: gone.ID, Entries: map[string]segments.Entry{
		"segment:any": {Version: 1, Member: true, Since: oldAt}}}, Reason: segments.ReasonData, At: oldAt}}); err != nil {
		t.Fatal(err)
	}
	last, err := x.s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := sweep(t, sweeper(x, retention.Policy{InactiveProfiles: 90 * day}, 1))
	if run.Profiles != 1 || run.Records[erase.CountEvents] != 1 || run.Records[erase.CountIdentifiers] != 2 {
		t.Errorf("expired %d profiles, records %v; want 1 with 1 event and 2 identifiers", run.Profiles, run.Records)
	}
	if _, err := x.g.Identifier(ctx, graph.Key{Type: "user_id", Value: "gone"}); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("expired identifier still read: %v", err)
	}
	if _, err := x.g.Profile(ctx, gone.ID); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("expired profile still read: %v", err)
	}
	wantMessages(t, x.g, "user_id:stays", "x2", "x3")
	wantMessages(t, x.g, "user_id:fresh", "x4")
	cs, err := x.s.Changes(ctx, last, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Profile != gone.ID || cs[0].Direction != segments.Exited || cs[0].Reason != segments.ReasonExpired {
		t.Errorf("change records after the expiry: %+v, want one exit of %s with reason expired", cs, gone.ID)
	}
	if sup, err := x.e.Suppressions(ctx); err != nil || len(sup) != 0 {
		t.Errorf("suppressions after an expiry: %v, %v; want none", sup, err)
	}
	ingest(t, x.g, now, ev("x5", now, "Page Viewed", "user_id:gone"))
	if back := graphtest.ProfileOf(t, x.g, "user_id:gone"); back.ID == gone.ID {
		t.Errorf("the returning person has the expired profile's ID %s", back.ID)
	}
	wantMessages(t, x.g, "user_id:gone", "x5")
}

// testExpiryRace: a profile listed as inactive and updated before its
// erasure runs is kept (the check is in the erasure's transaction).
func testExpiryRace(t *testing.T, x stores) {
	ctx := context.Background()
	oldAt := now.Add(-100 * day)
	ingest(t, x.g, oldAt, ev("y1", oldAt, "Page Viewed", "user_id:back"))
	before := now.Add(-90 * day)
	ids, err := x.r.InactiveProfiles(ctx, before, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	p := graphtest.ProfileOf(t, x.g, "user_id:back")
	if !slices.Equal(ids, []string{p.ID}) {
		t.Fatalf("inactive profiles %q, want %s", ids, p.ID)
	}
	ingest(t, x.g, now, ev("y2", now, "Page Viewed", "user_id:back"))
	done, err := x.e.ErasePerson(ctx, erase.Request{ID: "r", Profile: p.ID, At: now, Reason: segments.ReasonExpired, InactiveBefore: before})
	if err != nil {
		t.Fatal(err)
	}
	if len(done.Profiles) != 0 {
		t.Errorf("erased %v, a profile updated since it was listed", done.Profiles)
	}
	wantMessages(t, x.g, "user_id:back", "y1", "y2")
	if ids, err := x.r.InactiveProfiles(ctx, before, "", 10); err != nil || len(ids) != 0 {
		t.Errorf("inactive profiles after an update: %q, %v", ids, err)
	}
}

// testBadRequests: a batch without a limit or with a cursor the backend
// did not make is refused, naming the field.
func testBadRequests(t *testing.T, x stores) {
	cut := retention.Policy{Default: day}.Cutoffs(now)
	for _, tc := range []struct {
		name  string
		req   retention.EventsRequest
		field string
	}{
		{"no limit", retention.EventsRequest{Cutoffs: cut}, "limit"},
		{"bad cursor", retention.EventsRequest{Cutoffs: cut, Limit: 5, After: "zz|||not a cursor"}, "after"},
	} {
		_, err := x.r.DeleteExpiredEvents(context.Background(), tc.req)
		var ge *graph.Error
		if !errors.As(err, &ge) || ge.Kind != graph.KindInvalid || ge.Field != tc.field {
			t.Errorf("%s: got %v, want a field error on %s", tc.name, err, tc.field)
		}
	}
}

// testScanBound: a batch reads at most Scan events, expired or not, and
// its cursor moves past those it read, so that a sweep through many events
// of a long-lived type (between its cutoff and a shorter type's) still
// ends, and deletes every expired event once.
func testScanBound(t *testing.T, x stores) {
	var obs []*graph.Observation
	var want []string
	for i := range 60 {
		msg := fmt.Sprintf("sb%02d", i)
		typ := "Order Completed" // 2000 days: kept
		if i%6 == 0 {
			typ = "Page Viewed"
		} else {
			want = append(want, msg)
		}
		obs = append(obs, ev(msg, now.Add(-40*day-time.Duration(i)*time.Minute), typ, "user_id:sb"))
	}
	ingest(t, x.g, now, obs...)
	cut := retention.Policy{Default: 2000 * day, ByType: map[string]time.Duration{"Page Viewed": 30 * day}}.Cutoffs(now)
	deleted, batches := runBatches(t, x.r, retention.EventsRequest{Cutoffs: cut, Limit: 5, Scan: 5}, 60)
	if deleted != 10 || batches < 12 {
		t.Errorf("deleted %d in %d batches reading 5 each, want 10 in at least 12", deleted, batches)
	}
	wantMessages(t, x.g, "user_id:sb", want...)
}

// testReadsPastCutoff: a sweep reads only the events older than the
// latest cutoff (through an index by time), not the recent ones beside
// them: 10 expired events among 1,000 recent ones go in batches reading
// 10 events each in at most 2 batches (reading every event would take
// 101).
func testReadsPastCutoff(t *testing.T, x stores) {
	var obs []*graph.Observation
	for i := range 1010 {
		at := now.Add(-time.Duration(i) * time.Minute)
		if i%101 == 0 {
			at = now.Add(-40*day - time.Duration(i)*time.Minute)
		}
		obs = append(obs, ev(fmt.Sprintf("pc%04d", i), at, "Page Viewed", fmt.Sprintf("user_id:pc%d", i%7)))
	}
	ingest(t, x.g, now, obs...)
	cut := retention.Policy{ByType: map[string]time.Duration{"Page Viewed": 30 * day}}.Cutoffs(now)
	deleted, batches := runBatches(t, x.r, retention.EventsRequest{Cutoffs: cut, Limit: 10, Scan: 10}, 200)
	if deleted != 10 || batches > 2 {
		t.Errorf("deleted %d in %d batches reading 10 each, want 10 in at most 2", deleted, batches)
	}
}

// runBatches deletes expired events batch by batch from req until the
// cursor ends, failing after most batches or on a batch that deletes more
// than its limit, and returns the events deleted and the batches run.
func runBatches(t *testing.T, r retention.Store, req retention.EventsRequest, most int) (deleted, batches int) {
	t.Helper()
	for {
		res, err := r.DeleteExpiredEvents(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		batches++
		deleted += res.Total()
		if res.Total() > req.Limit {
			t.Errorf("a batch of limit %d deleted %d", req.Limit, res.Total())
		}
		if res.Next == "" {
			return deleted, batches
		}
		if batches > most {
			t.Fatalf("no end after %d batches (cursor %q)", batches, res.Next)
		}
		req.After = res.Next
	}
}

// testRandom: random events of random types, many right at their cutoff,
// over users some of whom are merged, swept in random batch sizes: what
// remains of each profile is exactly what it held before less the events
// the policy expires.
func testRandom(t *testing.T, x stores) {
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(seed, 14))
		pol := retention.Policy{Default: 90 * day, ByType: map[string]time.Duration{
			"Page Viewed": 30 * day, "page": 7 * day, "Kept": 0, "Order Completed": 400 * day}}
		cut := pol.Cutoffs(now)
		types := []string{"Page Viewed", "page", "Kept", "Order Completed", "identify", "Other"}
		events := map[string]*graph.Event{}
		var obs []*graph.Observation
		for i := range 300 {
			typ := types[r.IntN(len(types))]
			at := now.Add(-time.Duration(r.IntN(500*24)) * time.Hour)
			if c := cut.Of(retention.EventType(&graph.Event{Type: "track", Name: typ})); !c.IsZero() && r.IntN(3) == 0 {
				at = c.Add(time.Duration(r.IntN(3)-1) * time.Nanosecond) // at, just before or just after the cutoff
			}
			ids := []string{fmt.Sprintf("user_id:r%d-%d", seed, r.IntN(20))}
			if r.IntN(10) == 0 { // anonymous IDs shared by users: merges, or review items under merge protection
				ids = append(ids, fmt.Sprintf("anonymous_id:r%d-%d", seed, r.IntN(5)))
			}
			o := ev(fmt.Sprintf("rnd%d-%03d", seed, i), at, typ, ids...)
			obs = append(obs, o)
			events[o.MessageID] = &graph.Event{Type: o.Event.Type, Name: o.Event.Name, Timestamp: at}
		}
		ingest(t, x.g, now, obs...)
		before := map[string][]string{}
		for u := range 20 {
			id := fmt.Sprintf("user_id:r%d-%d", seed, u)
			if _, err := x.g.Identifier(context.Background(), key(id)); err == nil {
				before[id] = messages(t, x.g, id)
			}
		}
		sweep(t, sweeper(x, pol, 1+r.IntN(17)))
		for id, msgs := range before {
			var want []string
			for _, m := range msgs {
				if !cut.Expired(events[m]) {
					want = append(want, m)
				}
			}
			wantMessages(t, x.g, id, want...)
		}
	}
}

func key(s string) graph.Key {
	typ, v, _ := strings.Cut(s, ":")
	return graph.Key{Type: typ, Value: v}
}
