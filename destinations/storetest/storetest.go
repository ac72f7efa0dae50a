// Package storetest is the contract suite of destinations.Store: every
// backend passes it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
)

// Run runs every contract test against the backend. open returns an empty
// graph store that also keeps destinations.
func Run(t *testing.T, open graphtest.Opener) {
	graphtest.RunCases(t, open, func(t *testing.T, g graph.Store) destinations.Store {
		return graphtest.As[destinations.Backend](t, g).Destinations()
	}, map[string]func(*testing.T, destinations.Store){
		"RoundTrip":                 testRoundTrip,
		"CreateClashIsConflict":     testCreateClash,
		"UnknownIDNotFound":         testUnknownID,
		"UpdateIsAtomic":            testUpdateAtomic,
		"UpdateErrorWritesNothing":  testUpdateError,
		"CursorRoundTrip":           testCursor,
		"RetryStateIsACursor":       testRetryState,
		"DeadLettersPageBySequence": testDeadLetters,
		"LeaseFencing":              testLeaseFencing,
		"LeaseRace":                 testLeaseRace,
		"JobsRoundTrip":             testJobs,
		"DeliveryLogBounded":        testDeliveryLog,
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func dest(id string) *destinations.Destination {
	return &destinations.Destination{ID: id, Name: "d " + id, URL: "https://example.com/hook/" + id, Enabled: true,
		Segments: map[string]time.Time{"vip": t0}, SealedSecret: []byte{0, 1, 2, 255}, CreatedAt: t0, UpdatedAt: t0}
}

func mustCreate(t *testing.T, s destinations.Store, d *destinations.Destination) {
	t.Helper()
	if err := s.CreateDestination(context.Background(), d); err != nil {
		t.Fatalf("create %s: %v", d.ID, err)
	}
}

func testRoundTrip(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	a, b := dest("dst_a"), dest("dst_b")
	b.CreatedAt = t0.Add(-time.Hour) // listed first
	b.Enabled, b.DisabledReason = false, "disabled by an admin"
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	got, err := s.Destination(ctx, "dst_a")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != a.ID || got.Name != a.Name || got.URL != a.URL || !got.Enabled || string(got.SealedSecret) != string(a.SealedSecret) ||
		!got.Segments["vip"].Equal(t0) || len(got.Segments) != 1 || !got.CreatedAt.Equal(t0) {
		t.Fatalf("round trip: got %+v, want %+v", got, a)
	}
	list, err := s.Destinations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "dst_b" || list[1].ID != "dst_a" || list[0].Enabled || list[0].DisabledReason == "" {
		t.Fatalf("list: got %d destinations %+v", len(list), list)
	}
}

func testCreateClash(t *testing.T, s destinations.Store) {
	mustCreate(t, s, dest("dst_c"))
	other := dest("dst_c")
	other.Name = "other"
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = s.CreateDestination(context.Background(), other) })
	}
	wg.Wait()
	for i, err := range errs {
		if graph.ErrorKind(err) != graph.KindConflict {
			t.Errorf("create %d with a taken id: got %v, want a conflict", i, err)
		}
	}
	got, err := s.Destination(context.Background(), "dst_c")
	if err != nil || got.Name != "d dst_c" {
		t.Fatalf("the first destination must stay: got %+v, %v", got, err)
	}
}

func testUnknownID(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	if _, err := s.Destination(ctx, "dst_none"); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("Destination of an unknown id: got %v, want not_found", err)
	}
	_, err := s.UpdateDestination(ctx, "dst_none", func(*destinations.Destination) error { return nil })
	if graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("UpdateDestination of an unknown id: got %v, want not_found", err)
	}
	if list, err := s.Destinations(ctx); err != nil || len(list) != 0 {
		t.Fatalf("an empty store lists %v, %v", list, err)
	}
	c, err := s.Cursor(ctx, "dst_none")
	if err != nil || c.After != 0 || c.Head != nil || c.Destination != "dst_none" {
		t.Fatalf("a cursor never written: got %+v, %v; want the zero cursor", c, err)
	}
	if dl, err := s.DeadLetters(ctx, "dst_none", 0, 10); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters of nothing: %v, %v", dl, err)
	}
}

// testUpdateAtomic: concurrent read-modify-write updates each adding a
// segment lose none.
func testUpdateAtomic(t *testing.T, s destinations.Store) {
	mustCreate(t, s, dest("dst_u"))
	var wg sync.WaitGroup
	keys := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	errs := make([]error, len(keys))
	for i, k := range keys {
		wg.Go(func() {
			_, errs[i] = s.UpdateDestination(context.Background(), "dst_u", func(d *destinations.Destination) error {
				d.Segments[k] = t0
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Destination(context.Background(), "dst_u")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Segments) != len(keys)+1 {
		t.Fatalf("after %d concurrent connects: segments %v (an update was lost)", len(keys), got.SegmentKeys())
	}
}

func testUpdateError(t *testing.T, s destinations.Store) {
	mustCreate(t, s, dest("dst_e"))
	boom := errors.New("boom")
	_, err := s.UpdateDestination(context.Background(), "dst_e", func(d *destinations.Destination) error {
		d.Name = "changed"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want fn's error", err)
	}
	got, _ := s.Destination(context.Background(), "dst_e")
	if got.Name != "d dst_e" {
		t.Fatalf("a failed update wrote %q", got.Name)
	}
	d, err := s.UpdateDestination(context.Background(), "dst_e", func(d *destinations.Destination) error {
		d.Enabled, d.DisabledReason = false, "gone"
		return nil
	})
	if err != nil || d.Enabled {
		t.Fatalf("update: %+v, %v", d, err)
	}
	if got, _ := s.Destination(context.Background(), "dst_e"); got.Enabled || got.DisabledReason != "gone" {
		t.Fatalf("update not stored: %+v", got)
	}
}

func testCursor(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	c := &destinations.Cursor{Destination: "dst_k", After: 41, Delivered: 40, FailedTries: 3, LastError: "HTTP 500",
		LastErrorAt: t0, Head: &destinations.Head{Sequence: 42, Attempts: 2, FirstTryAt: t0, NextAt: t0.Add(time.Minute), LastStatus: 503}}
	if err := s.PutCursor(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Cursor(ctx, "dst_k")
	if err != nil {
		t.Fatal(err)
	}
	if got.After != 41 || got.Delivered != 40 || got.FailedTries != 3 || got.Head == nil || got.Head.Sequence != 42 ||
		got.Head.Attempts != 2 || !got.Head.NextAt.Equal(t0.Add(time.Minute)) || got.Head.LastStatus != 503 {
		t.Fatalf("cursor round trip: got %+v (head %+v)", got, got.Head)
	}
	c.After, c.Head = 42, nil
	if err := s.PutCursor(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Cursor(ctx, "dst_k"); got.After != 42 || got.Head != nil {
		t.Fatalf("cursor replaced: got %+v", got)
	}
	if other, _ := s.Cursor(ctx, "dst_k2"); other.After != 0 {
		t.Fatalf("another destination's cursor moved: %+v", other)
	}
}

// testRetryState: PutRetryState is read back as the cursor, fenced as
// PutCursor is, and replaced by the next PutCursor (its durability is
// the backend's: pebble's TestRetryStateLostInACrash).
func testRetryState(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	const id = "dst_r"
	l, held := tryLease(t, s, id, "a", time.Minute)
	if !held {
		t.Fatalf("a free lease: %+v", l)
	}
	c := &destinations.Cursor{Destination: id, After: 41, Epoch: l.Epoch,
		Head: &destinations.Head{Sequence: 42, Attempts: 1, FirstTryAt: t0, NextAt: t0.Add(time.Second), LastStatus: 500}}
	if err := s.PutCursor(ctx, c); err != nil {
		t.Fatal(err)
	}
	for attempts := 2; attempts <= 4; attempts++ {
		c.Head.Attempts, c.FailedTries = attempts, int64(attempts)
		if err := s.PutRetryState(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Cursor(ctx, id)
		if err != nil || got.After != 41 || got.Head == nil || got.Head.Attempts != attempts || got.FailedTries != int64(attempts) {
			t.Fatalf("retry state %d: got %+v, %v", attempts, got, err)
		}
	}
	stale := *c
	stale.Epoch = l.Epoch + 1
	if err := s.PutRetryState(ctx, &stale); graph.ErrorKind(err) != graph.KindConflict {
		t.Fatalf("a retry state under another epoch: got %v, want a conflict", err)
	}
	c.After, c.Head = 42, nil
	if err := s.PutCursor(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Cursor(ctx, id); got.After != 42 || got.Head != nil || got.FailedTries != 4 {
		t.Fatalf("the cursor after the retry state: %+v", got)
	}
}

func testDeadLetters(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	// Sequences chosen to break a lexical order (9 < 10 < 256) and the
	// 0xff byte boundary.
	for _, seq := range []uint64{256, 9, 10, 1 << 40} {
		for _, id := range []string{"dst_x", "dst_xy"} {
			dl := &destinations.DeadLetter{Destination: id, Attempts: 10, LastStatus: 500, LastError: "HTTP 500", At: t0,
				Record: segments.ChangeRecord{Sequence: seq, Segment: "vip", Profile: "p1", Direction: segments.Entered, Version: 1, Time: t0}}
			if err := s.PutDeadLetter(ctx, dl); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Storing the same (destination, sequence) again replaces it.
	again := &destinations.DeadLetter{Destination: "dst_x", Attempts: 11, At: t0, Record: segments.ChangeRecord{Sequence: 10}}
	if err := s.PutDeadLetter(ctx, again); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 10, []uint64{9, 10, 256, 1 << 40}},
		{9, 2, []uint64{10, 256}},
		{256, 10, []uint64{1 << 40}},
		{1 << 40, 10, nil},
	}
	for _, tc := range tests {
		got, err := s.DeadLetters(ctx, "dst_x", tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, dl := range got {
			if dl.Destination != "dst_x" {
				t.Fatalf("another destination's dead letter: %+v", dl)
			}
			seqs = append(seqs, dl.Record.Sequence)
		}
		if len(seqs) != len(tc.want) {
			t.Fatalf("after %d limit %d: got %v, want %v", tc.after, tc.limit, seqs, tc.want)
		}
		for i := range seqs {
			if seqs[i] != tc.want[i] {
				t.Fatalf("after %d limit %d: got %v, want %v", tc.after, tc.limit, seqs, tc.want)
			}
		}
		if tc.after == 9 && got[0].Attempts != 11 {
			t.Fatalf("a dead letter stored twice was not replaced: %+v", got[0])
		}
	}
	// Deleting one leaves the others, and the other destination's.
	for range 2 {
		if err := s.DeleteDeadLetter(ctx, "dst_x", 10); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]int{"dst_x": 3, "dst_xy": 4} {
		if got, err := s.DeadLetters(ctx, id, 0, 10); err != nil || len(got) != want {
			t.Fatalf("%s after deleting dst_x's 10: %d dead letters (%v), want %d", id, len(got), err, want)
		}
	}
}

// testJobs: jobs round-trip per destination, oldest first, PutJob
// replaces a job by id, and DeleteJob removes one.
func testJobs(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	if js, err := s.Jobs(ctx, "dst_j"); err != nil || len(js) != 0 {
		t.Fatalf("jobs of nothing: %v, %v", js, err)
	}
	a := &destinations.Job{ID: "job_b", Destination: "dst_j", Kind: destinations.JobResync, Segments: []string{"vip"},
		State: destinations.JobQueued, CreatedAt: t0, AsOf: 7}
	b := &destinations.Job{ID: "job_a", Destination: "dst_j", Kind: destinations.JobReplay, State: destinations.JobQueued,
		CreatedAt: t0.Add(time.Minute), From: t0, To: t0.Add(time.Hour), FromSequence: 3, ToSequence: 9}
	other := &destinations.Job{ID: "job_c", Destination: "dst_k", Kind: destinations.JobResync, State: destinations.JobDone, CreatedAt: t0}
	for _, j := range []*destinations.Job{b, a, other} {
		if err := s.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	a.State, a.Done, a.Total, a.Phase, a.After = destinations.JobRunning, 1, 2, "exited", "p1"
	if err := s.PutJob(ctx, a); err != nil {
		t.Fatal(err)
	}
	js, err := s.Jobs(ctx, "dst_j")
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 2 || js[0].ID != "job_b" || js[1].ID != "job_a" {
		t.Fatalf("jobs: got %d %+v, want job_b then job_a (by creation)", len(js), js)
	}
	if g := js[0]; g.State != destinations.JobRunning || g.Done != 1 || g.After != "p1" || g.AsOf != 7 {
		t.Fatalf("a replaced job reads %+v", g)
	}
	if g := js[1]; !g.From.Equal(t0) || !g.To.Equal(t0.Add(time.Hour)) || g.FromSequence != 3 || g.ToSequence != 9 {
		t.Fatalf("a replay job reads %+v", g)
	}
	for range 2 { // the second time: not there, nothing to do
		if err := s.DeleteJob(ctx, "dst_j", "job_b"); err != nil {
			t.Fatal(err)
		}
	}
	if js, err := s.Jobs(ctx, "dst_j"); err != nil || len(js) != 1 || js[0].ID != "job_a" {
		t.Fatalf("after deleting job_b: %+v, %v", js, err)
	}
	if js, err := s.Jobs(ctx, "dst_k"); err != nil || len(js) != 1 {
		t.Fatalf("another destination's jobs: %+v, %v", js, err)
	}
}

// testDeliveryLog: concurrent appends take distinct numbers, the log
// keeps the newest keep entries, and pages newest first.
func testDeliveryLog(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	const keep, n = 7, 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.AppendDelivery(ctx, &destinations.Delivery{Destination: "dst_l", Sequence: uint64(i + 1),
				Type: destinations.TypeEntered, WebhookID: "msg", Status: 200, Attempt: 1, Duration: time.Millisecond, At: t0}, keep)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendDelivery(ctx, &destinations.Delivery{Destination: "dst_other", Type: destinations.TypeExited, At: t0}, keep); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for before := uint64(0); ; {
		page, err := s.Deliveries(ctx, "dst_l", before, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			if d.Destination != "dst_l" || d.Status != 200 || d.Duration != time.Millisecond || !d.At.Equal(t0) {
				t.Fatalf("entry %d reads %+v", d.N, d)
			}
			got = append(got, d.N)
		}
		if len(page) < 3 {
			break
		}
		before = page[len(page)-1].N
	}
	want := []uint64{20, 19, 18, 17, 16, 15, 14}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("log after %d concurrent appends keeping %d: got %v, want %v", n, keep, got, want)
	}
	if o, err := s.Deliveries(ctx, "dst_other", 0, 10); err != nil || len(o) != 1 || o[0].N != 1 {
		t.Fatalf("another destination's log: %+v, %v", o, err)
	}
}
