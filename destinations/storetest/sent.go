package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/erase"
	erasetest "github.com/idgraph/idgraph/erase/storetest"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// RunSent runs the contract tests of destinations.SentStore. open returns
// an empty graph store that also keeps segments, erasures and sent state.
func RunSent(t *testing.T, open graphtest.Opener) {
	graphtest.RunCases(t, open, func(t *testing.T, g graph.Store) graph.Store { return g },
		map[string]func(*testing.T, graph.Store){
			"SentRoundTrip":           testSentRoundTrip,
			"SentApplyIsIdempotent":   testSentIdempotent,
			"SentUpdateIsAtomic":      testSentAtomic,
			"SentUpdateErrorNoWrite":  testSentUpdateError,
			"SentPendingIndex":        testSentPending,
			"PendingWhileCleared":     testPendingWhileCleared,
			"ErasureMarksSentState":   testErasureMarksSent,
			"ErasureWithoutSentState": testErasureWithoutSent,
			"SentPage":                testSentPage,
			"ErasureRacesDeliveries":  testErasureRacesDeliveries,
		})
}

func sentStore(t *testing.T, g graph.Store) destinations.SentStore {
	t.Helper()
	return graphtest.As[destinations.SentBackend](t, g).SentState()
}

func rec(seq uint64, seg, profile, dir string) *segments.ChangeRecord {
	return &segments.ChangeRecord{Sequence: seq, Segment: seg, Version: 1, Profile: profile, Direction: dir, Reason: segments.ReasonData, Time: t0}
}

// apply delivers a record into the row, as the worker does.
func apply(t *testing.T, s destinations.SentStore, dst string, r *segments.ChangeRecord, ids ...destinations.Identifier) {
	t.Helper()
	err := s.UpdateSent(context.Background(), dst, r.Profile, func(x *destinations.Sent) (bool, error) {
		x.Apply(r, ids, t0)
		return true, nil
	})
	if err != nil {
		t.Fatalf("update sent %s/%s: %v", dst, r.Profile, err)
	}
}

func sentOf(t *testing.T, s destinations.SentStore, dst, profile string) *destinations.Sent {
	t.Helper()
	got, err := s.SentOf(context.Background(), dst, []string{profile})
	if err != nil {
		t.Fatal(err)
	}
	return got[profile]
}

func testSentRoundTrip(t *testing.T, g graph.Store) {
	ctx := context.Background()
	s := sentStore(t, g)
	email := destinations.Identifier{Type: "email", Value: "a@example.com"}
	apply(t, s, "dst_a", rec(1, "vip", "p_1", segments.Entered), email)
	apply(t, s, "dst_b", rec(2, "vip", "p_1", segments.Entered))
	apply(t, s, "dst_a", rec(3, "vip", "p_2", segments.Entered))
	got, err := s.SentOf(ctx, "dst_a", []string{"p_1", "p_2", "p_none"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["p_1"].Destination != "dst_a" || got["p_1"].Profile != "p_1" ||
		!slices.Equal(got["p_1"].Identifiers, []destinations.Identifier{email}) || !slices.Equal(got["p_1"].HeldSegments(), []string{"vip"}) {
		t.Fatalf("SentOf: got %+v", got)
	}
	all, err := s.SentTo(ctx, []string{"p_1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Profile != "p_1" || all[1].Profile != "p_1" || all[0].Destination == all[1].Destination {
		t.Fatalf("SentTo: got %+v", all)
	}
	if err := s.UpdateSent(ctx, "dst_a", "p_1", func(*destinations.Sent) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if x := sentOf(t, s, "dst_a", "p_1"); x != nil {
		t.Fatalf("deleted row still there: %+v", x)
	}
	if x := sentOf(t, s, "dst_b", "p_1"); x == nil {
		t.Fatal("deleting one destination's row deleted another's")
	}
	// Deleting a row that is not there does nothing.
	if err := s.UpdateSent(ctx, "dst_z", "p_9", func(*destinations.Sent) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.SentTo(ctx, []string{"p_9"}); len(all) != 0 {
		t.Fatalf("a deleted new row was written: %+v", all)
	}
}

func testSentIdempotent(t *testing.T, g graph.Store) {
	s := sentStore(t, g)
	a := destinations.Identifier{Type: "email", Value: "a@example.com"}
	b := destinations.Identifier{Type: "email", Value: "b@example.com"}
	apply(t, s, "dst_a", rec(5, "vip", "p_1", segments.Entered), a)
	apply(t, s, "dst_a", rec(5, "vip", "p_1", segments.Entered), a) // a retry
	apply(t, s, "dst_a", rec(9, "vip", "p_1", segments.Exited))
	apply(t, s, "dst_a", rec(5, "vip", "p_1", segments.Entered), b) // a replay, older than the exit
	x := sentOf(t, s, "dst_a", "p_1")
	if len(x.HeldSegments()) != 0 || x.Segments["vip"].Sequence != 9 || !slices.Equal(x.Identifiers, []destinations.Identifier{a}) {
		t.Fatalf("after a retry and an older replay: %+v", x)
	}
	apply(t, s, "dst_a", rec(12, "vip", "p_1", segments.Entered), b, a)
	x = sentOf(t, s, "dst_a", "p_1")
	if !slices.Equal(x.HeldSegments(), []string{"vip"}) || !slices.Equal(x.Identifiers, []destinations.Identifier{a, b}) {
		t.Fatalf("after entering again: %+v", x)
	}
}

func testSentAtomic(t *testing.T, g graph.Store) {
	s := sentStore(t, g)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			apply(t, s, "dst_a", rec(uint64(i+1), fmt.Sprintf("s%d", i), "p_1", segments.Entered),
				destinations.Identifier{Type: "email", Value: fmt.Sprintf("%d@example.com", i)})
		})
	}
	wg.Wait()
	x := sentOf(t, s, "dst_a", "p_1")
	if len(x.HeldSegments()) != 8 || len(x.Identifiers) != 8 {
		t.Fatalf("concurrent updates lost some: %+v", x)
	}
}

func testSentUpdateError(t *testing.T, g graph.Store) {
	s := sentStore(t, g)
	boom := errors.New("boom")
	err := s.UpdateSent(context.Background(), "dst_a", "p_1", func(x *destinations.Sent) (bool, error) {
		x.Apply(rec(1, "vip", "p_1", segments.Entered), nil, t0)
		return true, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want fn's error", err)
	}
	if x := sentOf(t, s, "dst_a", "p_1"); x != nil {
		t.Fatalf("a failed update wrote %+v", x)
	}
}

// testPendingWhileCleared reads a destination's first pending row while
// the rows before the last one are sent and cleared: with one row still
// pending, a page of one is never empty (a caller waiting for "nothing
// pending" would stop early). A store reading its pending index apart from
// the rows and counting an entry cleared meanwhile failed this.
func testPendingWhileCleared(t *testing.T, g graph.Store) {
	ctx := context.Background()
	s := sentStore(t, g)
	const n = 150
	pend := func(x *destinations.Sent) (bool, error) {
		x.Pending = &destinations.Pending{Kind: destinations.PendingErase, ID: "e1", Reason: segments.ReasonErased, After: 1, At: t0}
		return true, nil
	}
	for i := range n {
		if err := s.UpdateSent(ctx, "dst_a", fmt.Sprintf("p_%03d", i), pend); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UpdateSent(ctx, "dst_a", "p_zzz", pend); err != nil { // stays pending
		t.Fatal(err)
	}
	done := make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait() // a failure stops the writer before the store closes
	defer close(stop)
	wg.Go(func() {
		for i := range n {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.UpdateSent(ctx, "dst_a", fmt.Sprintf("p_%03d", i), func(*destinations.Sent) (bool, error) { return i%2 == 0, nil }); err != nil {
				done <- err
				return
			}
			if i%2 == 0 { // kept, its request cleared
				if err := s.UpdateSent(ctx, "dst_a", fmt.Sprintf("p_%03d", i), func(x *destinations.Sent) (bool, error) { x.Pending = nil; return true, nil }); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	})
	reads := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if rows, err := s.PendingSent(ctx, "dst_a", 10); err != nil || len(rows) != 1 || rows[0].Profile != "p_zzz" {
				t.Fatalf("after clearing: %d rows, %v; want p_zzz alone", len(rows), err)
			}
			t.Logf("%d reads while clearing", reads)
			return
		default:
		}
		rows, err := s.PendingSent(ctx, "dst_a", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Pending == nil {
			t.Fatalf("read %d: a page of one held %d pending rows while p_zzz was pending", reads, len(rows))
		}
		reads++
	}
}

func testSentPending(t *testing.T, g graph.Store) {
	ctx := context.Background()
	s := sentStore(t, g)
	for i := range 5 {
		p := fmt.Sprintf("p_%d", i)
		apply(t, s, "dst_a", rec(uint64(i+1), "vip", p, segments.Entered))
		apply(t, s, "dst_b", rec(uint64(i+1), "vip", p, segments.Entered))
	}
	for _, p := range []string{"p_1", "p_3", "p_4"} {
		if err := s.UpdateSent(ctx, "dst_a", p, func(x *destinations.Sent) (bool, error) {
			x.Pending = &destinations.Pending{Kind: destinations.PendingWithdraw, ID: "w1", Reason: "consent_revoked", After: 5, At: t0}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	profiles := func(dst string, limit int) []string {
		rows, err := s.PendingSent(ctx, dst, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			if r.Pending == nil || r.Destination != dst {
				t.Fatalf("PendingSent returned %+v", r)
			}
			out = append(out, r.Profile)
		}
		return out
	}
	if got := profiles("dst_a", 10); !slices.Equal(got, []string{"p_1", "p_3", "p_4"}) {
		t.Fatalf("pending of dst_a: %v", got)
	}
	if got := profiles("dst_a", 2); len(got) != 2 {
		t.Fatalf("limit 2 gave %v", got)
	}
	if got := profiles("dst_b", 10); len(got) != 0 {
		t.Fatalf("dst_b has nothing pending, got %v", got)
	}
	// Cleared, a row leaves the index; deleted, too.
	if err := s.UpdateSent(ctx, "dst_a", "p_3", func(x *destinations.Sent) (bool, error) { x.Pending = nil; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateSent(ctx, "dst_a", "p_4", func(*destinations.Sent) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if got := profiles("dst_a", 10); !slices.Equal(got, []string{"p_1"}) {
		t.Fatalf("after clearing and deleting: %v", got)
	}
}

// testErasureMarksSent: the erasure's transaction marks the rows of every
// profile it removes (absorbed ones too), after its own exit records, and
// leaves another person's rows alone.
func testErasureMarksSent(t *testing.T, g graph.Store) {
	ctx := context.Background()
	s := sentStore(t, g)
	people := erasetest.Generate(t, g, 2, 11)
	seg := graphtest.As[segments.Backend](t, g).Segments()
	segtest.Define(t, seg, lang.KindSegment, "vip", "traits.plan = 'pro'")
	gone := graphtest.ProfileOf(t, g, people[0].Keys[0].String())
	kept := graphtest.ProfileOf(t, g, people[1].Keys[0].String())
	if _, err := seg.SaveStates(ctx, []segments.Save{{State: &segments.ProfileState{Profile: gone.ID, Entries: map[string]segments.Entry{
		"segment:vip": {Version: 1, Member: true, Since: t0}}}, Reason: segments.ReasonData, At: t0}}); err != nil {
		t.Fatal(err)
	}
	email := destinations.Identifier{Type: "email", Value: "gone@example.com"}
	apply(t, s, "dst_a", rec(1, "vip", gone.ID, segments.Entered), email)
	apply(t, s, "dst_b", rec(1, "vip", gone.ID, segments.Exited))
	if len(gone.Absorbed) == 0 {
		t.Fatal("the generated person has no absorbed profile")
	}
	apply(t, s, "dst_c", rec(1, "old", gone.Absorbed[0], segments.Entered))
	apply(t, s, "dst_a", rec(1, "vip", kept.ID, segments.Entered))
	done, err := graphtest.As[erase.Backend](t, g).Erasure().ErasePerson(ctx, erase.Request{ID: "erasure_1", Profile: gone.ID, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	last, err := seg.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if done.Exits != 1 {
		t.Fatalf("exits: %d", done.Exits)
	}
	rows, err := s.SentTo(ctx, append([]string{gone.ID}, gone.Absorbed...))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows of the erased person: %+v", rows)
	}
	for _, r := range rows {
		if r.Pending == nil || r.Pending.Kind != destinations.PendingErase || r.Pending.ID != "erasure_1" || r.Pending.After != last {
			t.Fatalf("row %s/%s: pending %+v, want an erasure after %d", r.Destination, r.Profile, r.Pending, last)
		}
	}
	for _, dst := range []string{"dst_a", "dst_b", "dst_c"} {
		if p, err := s.PendingSent(ctx, dst, 10); err != nil || len(p) != 1 {
			t.Fatalf("pending of %s: %v %v", dst, p, err)
		}
	}
	if x := sentOf(t, s, "dst_a", kept.ID); x == nil || x.Pending != nil {
		t.Fatalf("another person's row: %+v", x)
	}
}

// testErasureWithoutSent: an erasure of a person no destination was sent
// writes no sent state.
func testErasureWithoutSent(t *testing.T, g graph.Store) {
	ctx := context.Background()
	people := erasetest.Generate(t, g, 1, 12)
	p := graphtest.ProfileOf(t, g, people[0].Keys[0].String())
	if _, err := graphtest.As[erase.Backend](t, g).Erasure().ErasePerson(ctx, erase.Request{ID: "erasure_2", Profile: p.ID, At: t0}); err != nil {
		t.Fatal(err)
	}
	if rows, err := sentStore(t, g).SentTo(ctx, append([]string{p.ID}, p.Absorbed...)); err != nil || len(rows) != 0 {
		t.Fatalf("rows after erasing an unsent person: %v %v", rows, err)
	}
}

// testSentPage: a destination's rows page by profile, without the other
// destinations' rows, from the first or after a profile (one with no
// row of the destination too).
func testSentPage(t *testing.T, g graph.Store) {
	ctx := context.Background()
	s := sentStore(t, g)
	for _, p := range []string{"p_3", "p_1", "p_5", "p_2"} {
		apply(t, s, "dst_a", rec(1, "vip", p, segments.Entered))
	}
	apply(t, s, "dst_b", rec(1, "vip", "p_4", segments.Entered))
	apply(t, s, "dst_b", rec(1, "vip", "p_2", segments.Entered))
	apply(t, s, "dst_ab", rec(1, "vip", "p_1", segments.Entered))
	page := func(dst, after string, limit int) []string {
		t.Helper()
		rows, err := s.SentPage(ctx, dst, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			if r.Destination != dst || !r.Segments["vip"].In {
				t.Fatalf("SentPage(%s) returned %+v", dst, r)
			}
			out = append(out, r.Profile)
		}
		return out
	}
	for _, c := range []struct {
		dst, after string
		limit      int
		want       []string
	}{
		{"dst_a", "", 2, []string{"p_1", "p_2"}},
		{"dst_a", "p_2", 2, []string{"p_3", "p_5"}},
		{"dst_a", "p_4", 10, []string{"p_5"}},
		{"dst_a", "p_5", 10, nil},
		{"dst_b", "", 10, []string{"p_2", "p_4"}},
		{"dst_ab", "", 10, []string{"p_1"}},
		{"dst_none", "", 10, nil},
	} {
		if got := page(c.dst, c.after, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("SentPage(%s, %q, %d) = %v, want %v", c.dst, c.after, c.limit, got, c.want)
		}
	}
}

// testErasureRacesDeliveries: deliveries recording sent state while the
// person is erased never leave a row of theirs without the erasure to
// send: a row written before the erasure is marked by it, one written
// after sees the profile gone (UpdateSent holds the profile's lock, as
// the erasure does) and is marked by its writer, as the worker does.
func testErasureRacesDeliveries(t *testing.T, g graph.Store) {
	ctx := context.Background()
	s := sentStore(t, g)
	people := erasetest.Generate(t, g, 1, 13)
	p := graphtest.ProfileOf(t, g, people[0].Keys[0].String())
	group := append([]string{p.ID}, p.Absorbed...)
	email := destinations.Identifier{Type: "email", Value: "racer@example.com"}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Go(func() {
			dst := fmt.Sprintf("dst_%d", w%2)
			for i := 0; ; i++ {
				profile := group[i%len(group)]
				seq := uint64(i + 1)
				err := s.UpdateSent(ctx, dst, profile, func(x *destinations.Sent) (bool, error) {
					x.Apply(rec(seq, fmt.Sprintf("seg_%d", w), profile, segments.Entered), []destinations.Identifier{email}, t0)
					if x.ProfileGone && (x.Pending == nil || x.Pending.Kind != destinations.PendingErase) {
						x.MarkErased(fmt.Sprintf("late_%d", w), seq, t0)
					}
					return true, nil
				})
				if err != nil {
					errs <- err
					return
				}
				select {
				case <-done: // a few writes after the erasure, then stop
					if i%len(group) == len(group)-1 {
						return
					}
				default:
				}
			}
		})
	}
	if _, err := graphtest.As[erase.Backend](t, g).Erasure().ErasePerson(ctx, erase.Request{ID: "erasure_3", Profile: p.ID, At: t0}); err != nil {
		t.Fatal(err)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("delivery: %v", err)
	}
	rows, err := s.SentTo(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("no row written")
	}
	for _, r := range rows {
		if r.Pending == nil || r.Pending.Kind != destinations.PendingErase {
			t.Errorf("row %s/%s holds the erased person without the erasure to send: %+v", r.Destination, r.Profile, r)
		}
	}
}
