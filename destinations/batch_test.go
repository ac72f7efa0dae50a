package destinations_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
)

// TestBatches: a destination with a batch size sends up to that many
// records per request, the whole body signed once (the receiver verifies
// every request with the reference library); a failed batch is retried
// whole with the same webhook-id and body; order holds; records of
// segments not connected are left out.
func TestBatches(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	})
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	if _, err := f.m.SetBatchSize(ctx, d.ID, 4); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := range 14 {
		seg := "vip"
		if i%5 == 2 {
			seg = "other" // not connected: left out
		}
		dir := segments.Entered
		if i >= 7 {
			dir = segments.Exited
		}
		if seq := f.feed.add(seg, "p"+string(rune('a'+i%7)), dir); seg == "vip" {
			want = append(want, seq)
		}
	}
	f.m.Wake()
	eventually(t, "the cursor at the end", func() bool {
		c, _ := f.store.Cursor(ctx, d.ID)
		return c.After == 14
	})
	got := r.requests()
	var delivered []uint64
	for i, g := range got {
		if g.msg.Type != destinations.TypeBatch || len(g.batch) == 0 || len(g.batch) > 4 {
			t.Fatalf("request %d: type %q with %d messages, want a batch of 1 to 4", i, g.msg.Type, len(g.batch))
		}
		first, last := g.batch[0].Data.Sequence, g.batch[len(g.batch)-1].Data.Sequence
		if g.id != destinations.BatchID(d.ID, first, last) {
			t.Errorf("request %d: webhook-id %q, want %q", i, g.id, destinations.BatchID(d.ID, first, last))
		}
		for _, m := range g.batch {
			wantType := destinations.TypeEntered
			if m.Data.Sequence > 7 {
				wantType = destinations.TypeExited
			}
			if m.Data.Segment != "vip" || m.Type != wantType {
				t.Errorf("request %d: message %+v", i, m)
			}
		}
		if i == 1 { // answered 503: retried whole
			if got[2].id != g.id || string(got[2].body) != string(g.body) {
				t.Fatalf("the retry of a failed batch: id %q body %s, want %q %s", got[2].id, got[2].body, g.id, g.body)
			}
			continue
		}
		for _, m := range g.batch {
			delivered = append(delivered, m.Data.Sequence)
		}
	}
	if len(delivered) != len(want) {
		t.Fatalf("delivered %v, want %v", delivered, want)
	}
	for i := range want {
		if delivered[i] != want[i] {
			t.Fatalf("delivered %v, want %v (in order, each once)", delivered, want)
		}
	}
	c, _ := f.store.Cursor(ctx, d.ID)
	if c.Delivered != int64(len(want)) || c.FailedTries != 1 || c.Head != nil {
		t.Fatalf("cursor %+v", c)
	}
}

// TestBatchDeadLetters: a batch failing the whole schedule leaves a dead
// letter for each of its records, and the next batch goes on.
func TestBatchDeadLetters(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n < 4 { // the first batch: an attempt and 3 retries
			http.Error(w, "no", http.StatusInternalServerError)
		}
	})
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	if _, err := f.m.SetBatchSize(ctx, d.ID, 3); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		f.feed.add("vip", "p"+string(rune('a'+i)), segments.Entered)
	}
	f.m.Wake()
	eventually(t, "the cursor at the end", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 5 })
	dls, err := f.store.DeadLetters(ctx, d.ID, 0, 10)
	if err != nil || len(dls) != 3 {
		t.Fatalf("dead letters %v, %v; want the first batch's 3", dls, err)
	}
	for i, dl := range dls {
		if dl.Record.Sequence != uint64(i+1) || dl.Attempts != 4 || dl.LastStatus != 500 {
			t.Errorf("dead letter %d: %+v", i, dl)
		}
	}
	got := r.requests()
	if n := len(got); n != 5 || len(got[4].batch) != 2 || got[4].batch[0].Data.Sequence != 4 {
		t.Fatalf("%d requests, the last %+v; want 4 attempts of the first batch, then [4 5]", n, got[n-1].batch)
	}
}

func TestBatchSizeRefused(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	for _, size := range []int{0, -1, destinations.MaxBatchSize + 1} {
		if _, err := f.m.SetBatchSize(ctx, d.ID, size); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("batch size %d: got %v, want an invalid-input error", size, err)
		}
	}
	if _, err := f.m.SetBatchSize(ctx, "dst_none", 5); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("an unknown destination: got %v", err)
	}
}

// TestBatchKeepsItsIDAcrossRestart: a batch refused before a restart is
// sent again after it with the same records and webhook-id, though more
// records came meanwhile (its bounds are stored before the first try).
func TestBatchKeepsItsIDAcrossRestart(t *testing.T) {
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fd := &feed{}
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 0 {
			http.Error(w, "down", http.StatusInternalServerError)
		}
	})
	wait := 200 * time.Millisecond
	m1, stop := startManager(t, s.Destinations(), fd, func(*destinations.Options) {}, wait)
	d, secret, err := m1.Create(context.Background(), "b", r.srv.URL+"/hook", []string{"vip"})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
	if _, err := m1.SetBatchSize(context.Background(), d.ID, 4); err != nil {
		t.Fatal(err)
	}
	fd.add("vip", "pa", segments.Entered)
	fd.add("vip", "pb", segments.Entered)
	m1.Wake()
	eventually(t, "the first attempt", func() bool { return len(r.requests()) == 1 })
	stop()
	for _, p := range []string{"pc", "pd", "pe"} {
		fd.add("vip", p, segments.Entered)
	}
	startManager(t, s.Destinations(), fd, func(*destinations.Options) {}, wait)
	eventually(t, "the cursor at the end", func() bool { c, _ := s.Destinations().Cursor(context.Background(), d.ID); return c.After == 5 })
	got := r.requests()
	if len(got) != 3 || got[1].id != got[0].id || string(got[1].body) != string(got[0].body) || len(got[2].batch) != 3 {
		t.Fatalf("%d requests (ids %q %q): want the first batch twice, the same, then the 3 others", len(got), got[0].id, got[1].id)
	}
}

// TestResyncBatches: a destination with a batch size is sent a resync in
// batches of up to that size, each signed once (the receiver verifies it
// with the reference library), in profile order across the job's pages;
// a refused batch is sent again with the same messages under the same
// webhook-id (JobBatchID of their resync ids).
func TestResyncBatches(t *testing.T) {
	const n = 120
	f := newFixture(t, time.Millisecond)
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	})
	d := f.connect(t, r)
	ctx := context.Background()
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("p%03d", i))
		f.feed.add("vip", want[i], segments.Entered) // recorded before vip is connected: sent by the resync only
	}
	if _, err := f.m.Connect(ctx, d.ID, "vip"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.SetBatchSize(ctx, d.ID, 50); err != nil {
		t.Fatal(err)
	}
	j, err := f.m.Resync(ctx, d.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	j = waitJob(t, f, d.ID, j.ID)
	if j.State != destinations.JobDone || j.Done != n || j.Total != n {
		t.Fatalf("job %+v, want done with %d of %d", j, n, n)
	}
	var sizes []int
	var got []string
	reqs := r.requests()
	for i, req := range reqs {
		var profiles, ids []string
		for _, m := range req.batch {
			if m.Type != destinations.TypeEntered || m.Data.Reason != destinations.ReasonResync || m.Data.Sequence != j.AsOf {
				t.Errorf("request %d: message %+v", i, m)
			}
			profiles = append(profiles, m.Data.Profile)
			ids = append(ids, destinations.ResyncMessageID(d.ID, j.ID, "vip", m.Data.Profile))
		}
		if req.msg.Type != destinations.TypeBatch || req.id != destinations.JobBatchID(d.ID, j.ID, ids) {
			t.Errorf("request %d: type %q, webhook-id %q, want a batch under %q", i, req.msg.Type, req.id, destinations.JobBatchID(d.ID, j.ID, ids))
		}
		sizes = append(sizes, len(profiles))
		if i != 1 { // answered 503
			got = append(got, profiles...)
		}
	}
	if !slices.Equal(sizes, []int{50, 50, 50, 20}) || reqs[1].id != reqs[2].id {
		t.Errorf("batches of %v, the refused one's id %q and its retry's %q; want 50, 50 refused and sent again under its id, 50, 20", sizes, reqs[1].id, reqs[2].id)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the receiver took %d profiles %v…, want %d in order", len(got), got[:min(len(got), 5)], n)
	}
}
