package destinations_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
)

// The feed's membership is what its records say: a profile is a member of
// a segment when its last record of it is an entry.

func (f *feed) members(segment string) map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := map[string]bool{}
	for _, r := range f.recs {
		if r.Segment == segment {
			in[r.Profile] = r.Direction == segments.Entered
		}
	}
	return in
}

func (f *feed) Members(_ context.Context, segment, after string, limit int) ([]string, error) {
	var out []string
	for p, in := range f.members(segment) {
		if in && p > after {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out[:min(limit, len(out))], nil
}

func (f *feed) States(_ context.Context, profiles []string) ([]*segments.ProfileState, error) {
	out := make([]*segments.ProfileState, len(profiles))
	for i, p := range profiles {
		out[i] = &segments.ProfileState{Profile: p, Entries: map[string]segments.Entry{}}
		for _, seg := range []string{"vip", "other"} {
			if f.members(seg)[p] {
				out[i].Entries["segment:"+seg] = segments.Entry{Version: 1, Member: true}
			}
		}
	}
	return out, nil
}

func (f *feed) LastChange(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.recs)), nil
}

// waitJob waits for the job to finish and returns it.
func waitJob(t testing.TB, f *fixture, dst, id string) *destinations.Job {
	t.Helper()
	var got *destinations.Job
	eventually(t, "job "+id, func() bool {
		js, err := f.m.Jobs(context.Background(), dst)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(js, func(j *destinations.Job) bool { return j.ID == id })
		got = js[i]
		return got.Finished()
	})
	return got
}

// newSentFixture is newFixture keeping sent state (what each destination
// was told), which a resync's exits are read from; it returns the state.
func newSentFixture(t *testing.T, schedule ...time.Duration) (*fixture, destinations.SentStore) {
	t.Helper()
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newFixtureOn(t, s, func(o *destinations.Options) { o.Sent = s.SentState() }, schedule...), s.SentState()
}

// told writes into the sent state that the destination was sent the
// profile's entry into the segment.
func told(t *testing.T, sent destinations.SentStore, dst, segment, profile string) {
	t.Helper()
	err := sent.UpdateSent(context.Background(), dst, profile, func(s *destinations.Sent) (bool, error) {
		s.Apply(&segments.ChangeRecord{Sequence: 1, Segment: segment, Version: 1, Profile: profile, Direction: segments.Entered}, nil, time.Now())
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestResync: a resync sends an entry (reason resync, the newest sequence
// when it started) for every member of the connected segment and an exit
// for every profile the destination's sent state holds that is no longer
// a member: one whose exit was a dead letter, and one it was told of with
// no change record left to say so; webhook ids derive from the job and
// the profile; bad input is named.
func TestResync(t *testing.T) {
	f, sent := newSentFixture(t, time.Millisecond)
	r, refuse := refusingReceiver(t, func(rec received) string { return rec.id })
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	told(t, sent, d.ID, "vip", "p8")
	refuse.Store(destinations.MessageID(d.ID, 4), true)
	f.feed.add("vip", "p1", segments.Entered)
	f.feed.add("vip", "p2", segments.Entered)
	f.feed.add("vip", "p3", segments.Entered)
	f.feed.add("vip", "p2", segments.Exited) // dead-lettered: the receiver still has p2
	f.feed.add("other", "p9", segments.Entered)
	f.feed.add("vip", "p4", segments.Entered)
	f.feed.add("vip", "p4", segments.Exited) // delivered: the receiver knows
	eventually(t, "the records", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 7 })

	for _, bad := range []struct{ dst, seg, trait, field string }{{d.ID, "other", "", "segment"}, {d.ID, "nope", "", "segment"}, {d.ID, "", "ltv", "trait"}} {
		if _, err := f.m.Resync(ctx, bad.dst, bad.seg, bad.trait); graph.ErrorKind(err) != graph.KindInvalid || !strings.HasPrefix(graph.ErrorMessage(err), bad.field+": ") {
			t.Errorf("resync %s%s: %v, want invalid naming %s", bad.seg, bad.trait, err, bad.field)
		}
	}
	if _, err := f.m.Resync(ctx, "dst_none", "", ""); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("resync of an unknown destination: %v", err)
	}

	before := len(r.requests())
	j, err := f.m.Resync(ctx, d.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != destinations.JobQueued || j.Kind != destinations.JobResync || !slices.Equal(j.Segments, []string{"vip"}) {
		t.Fatalf("queued %+v", j)
	}
	j = waitJob(t, f, d.ID, j.ID)
	if j.State != destinations.JobDone || j.Done != 4 || j.Total != 4 || j.AsOf != 7 {
		t.Fatalf("job %+v, want done 4 of 4 as of 7", j)
	}
	var got []string
	for _, rec := range r.requests()[before:] {
		m := rec.msg.Data
		if m.Reason != destinations.ReasonResync || m.Sequence != 7 || m.Segment != "vip" || rec.id != destinations.ResyncMessageID(d.ID, j.ID, "vip", m.Profile) {
			t.Errorf("resync message %s %+v", rec.id, m)
		}
		got = append(got, rec.msg.Type+" "+m.Profile)
	}
	want := []string{"segment.entered p1", "segment.entered p3", "segment.exited p2", "segment.exited p8"}
	if !slices.Equal(got, want) {
		t.Fatalf("resync sent %v, want %v", got, want)
	}
	log, err := f.m.Deliveries(ctx, d.ID, 0, 3)
	if err != nil || len(log) != 3 || log[0].Job != j.ID || log[0].WebhookID != destinations.ResyncMessageID(d.ID, j.ID, "vip", "p8") {
		t.Fatalf("the log's newest entries: %+v, %v", log, err)
	}
	if s, err := f.m.SentState(ctx, d.ID, "p8"); err != nil || s == nil || s.Segments["vip"].In {
		t.Fatalf("p8's sent state after its exit: %+v, %v", s, err)
	}
}

// TestResyncPagesSentState: a resync reads its exits page by page from
// the destination's sent state, past several pages, in profile order,
// and leaves another destination's rows and segments alone.
func TestResyncPagesSentState(t *testing.T) {
	f, sent := newSentFixture(t, time.Millisecond)
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip", "other")
	ctx := context.Background()
	var want []string
	for i := range 250 {
		p := fmt.Sprintf("q%03d", i)
		told(t, sent, d.ID, "vip", p)
		told(t, sent, "dst_else", "vip", p)
		want = append(want, "segment.exited "+p)
	}
	told(t, sent, d.ID, "other", "q300")
	j, err := f.m.Resync(ctx, d.ID, "vip", "")
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, f, d.ID, j.ID); j.State != destinations.JobDone || j.Done != 250 || j.Total != 250 {
		t.Fatalf("job %+v, want done 250 of 250", j)
	}
	var got []string
	for _, rec := range r.requests() {
		got = append(got, rec.msg.Type+" "+rec.msg.Data.Profile)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("resync sent %d messages %v..., want the 250 exits in order", len(got), got[:min(len(got), 5)])
	}
	if s, err := sent.SentOf(ctx, "dst_else", []string{"q100"}); err != nil || !s["q100"].Segments["vip"].In {
		t.Fatalf("another destination's row: %+v, %v", s, err)
	}
}

// TestResyncRetriesKeepIDs: a resync message refused is retried on the
// schedule (a fake clock) with the same webhook id, the job's progress
// and error visible meanwhile; after the whole schedule the job fails.
func TestResyncRetriesKeepIDs(t *testing.T) {
	now, advance := fakeClock(-2 * time.Minute)
	f := newFixtureWith(t, func(o *destinations.Options) { o.Now = now }, time.Minute, time.Minute)
	r, down := refusingReceiver(t, byProfile)
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	for _, p := range []string{"p1", "p2", "p3"} {
		f.feed.add("vip", p, segments.Entered)
	}
	eventually(t, "the records", func() bool { return len(r.requests()) == 3 })
	down.Store("p2", true)
	j, err := f.m.Resync(ctx, d.ID, "vip", "")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a refused message", func() bool {
		js, _ := f.m.Jobs(ctx, d.ID)
		j = js[0]
		return j.Attempts == 1
	})
	if j.State != destinations.JobRunning || j.Done != 1 || j.Total != 3 || !strings.Contains(j.Error, "503") || !j.NextAt.Equal(now().Add(time.Minute)) {
		t.Fatalf("after a refusal: %+v", j)
	}
	f.feed.add("vip", "p5", segments.Entered) // held back behind the job
	advance(time.Minute)
	f.m.Wake()
	eventually(t, "the second refusal", func() bool { js, _ := f.m.Jobs(ctx, d.ID); return js[0].Attempts == 2 })
	down.Delete("p2")
	advance(time.Minute)
	f.m.Wake()
	j = waitJob(t, f, d.ID, j.ID)
	if j.State != destinations.JobDone || j.Done != 4 || j.Total != 4 || j.Error != "" { // p5 became a member during the job
		t.Fatalf("after the receiver came back: %+v", j)
	}
	eventually(t, "the record held back", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 4 })
	var ids []string
	for _, rec := range r.requests()[3:] {
		if rec.msg.Data.Profile == "p2" {
			ids = append(ids, rec.id)
		}
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("p2's resync attempts carried ids %v, want the same three times", ids)
	}
	if last := r.requests()[len(r.requests())-1]; last.msg.Data.Profile != "p5" || last.msg.Data.Reason != segments.ReasonData {
		t.Fatalf("the record recorded during the job came last? got %+v", last.msg)
	}

	down.Store("p1", true)
	j, err = f.m.Resync(ctx, d.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 3; k++ { // the first try and two retries: the schedule has two waits
		eventually(t, "a refusal", func() bool {
			js, _ := f.m.Jobs(ctx, d.ID)
			return js[0].Attempts == k || js[0].Finished()
		})
		advance(time.Minute)
		f.m.Wake()
	}
	if j = waitJob(t, f, d.ID, j.ID); j.State != destinations.JobFailed || !strings.Contains(j.Error, "attempt 3") {
		t.Fatalf("after the whole schedule: %+v", j)
	}
}

// TestReplayRange: a replay by time sends again, with their original
// webhook ids, the wanted records whose time is in [from, to); bad ranges
// are named.
func TestReplayRange(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	base := time.Now().UTC().Add(time.Hour).Truncate(time.Minute)
	for i, p := range []string{"p1", "p2", "p3", "p4", "p5", "p6"} {
		seg := "vip"
		if p == "p3" {
			seg = "other"
		}
		seq := f.feed.add(seg, p, segments.Entered)
		f.feed.mu.Lock()
		f.feed.recs[seq-1].Time = base.Add(time.Duration(i) * time.Minute)
		f.feed.mu.Unlock()
	}
	eventually(t, "the records", func() bool { return len(r.requests()) == 5 })
	for _, bad := range []struct {
		from, to time.Time
		field    string
	}{
		{base.Add(time.Hour), base, "to"},
		{base, base, "to"},
		{time.Time{}, base, "from"},
	} {
		if _, err := f.m.ReplayRange(ctx, d.ID, bad.from, bad.to); graph.ErrorKind(err) != graph.KindInvalid || !strings.HasPrefix(graph.ErrorMessage(err), bad.field+": ") {
			t.Errorf("replay %v to %v: %v, want invalid naming %s", bad.from, bad.to, err, bad.field)
		}
	}
	j, err := f.m.ReplayRange(ctx, d.ID, base.Add(time.Minute), base.Add(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if j.FromSequence != 2 || j.ToSequence != 4 {
		t.Fatalf("[+1m, +4m) maps to sequences %d to %d, want 2 to 4", j.FromSequence, j.ToSequence)
	}
	j = waitJob(t, f, d.ID, j.ID)
	got := r.requests()[5:]
	if j.State != destinations.JobDone || j.Done != 2 || j.Total != 2 || len(got) != 2 ||
		got[0].id != destinations.MessageID(d.ID, 2) || got[1].id != destinations.MessageID(d.ID, 4) {
		t.Fatalf("job %+v sent %d: %v", j, len(got), got)
	}
	j, err = f.m.ReplayRange(ctx, d.ID, base.Add(time.Hour), base.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, f, d.ID, j.ID); j.State != destinations.JobDone || j.Total != 0 || len(r.requests()) != 7 {
		t.Fatalf("a range without records: %+v, %d requests", j, len(r.requests()))
	}
}

// observer counts what the manager reports for metrics.
type observer struct {
	mu        sync.Mutex
	delivered []time.Duration
	disabled  []string
}

func (o *observer) Delivered(_ string, latency time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.delivered = append(o.delivered, latency)
}

func (o *observer) DisabledForFailing(dst string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.disabled = append(o.disabled, dst)
}

// TestDisabledAfterFailingTooLong: a destination whose head record keeps
// failing is disabled once it has failed for longer than DisableAfter
// (a fake clock), not before, with a reason and the observer told.
func TestDisabledAfterFailingTooLong(t *testing.T) {
	now, advance := fakeClock(-2 * time.Minute)
	f := newFixtureWith(t, func(o *destinations.Options) { o.Now, o.DisableAfter = now, 3*time.Minute },
		time.Minute, time.Minute, time.Minute, time.Minute, time.Minute, time.Minute)
	obs := &observer{}
	f.m.SetObserver(obs)
	r := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	for n := 1; n <= 4; n++ { // failing for 0, 1, 2 and 3 minutes: still on
		eventually(t, "an attempt", func() bool { return len(r.requests()) == n })
		eventually(t, "the attempt recorded", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.Head != nil && c.Head.Attempts == n })
		if cur, _ := f.store.Destination(ctx, d.ID); !cur.Enabled {
			t.Fatalf("disabled after failing for %d minutes", n-1)
		}
		advance(time.Minute)
		f.m.Wake()
	}
	eventually(t, "disabled", func() bool { cur, _ := f.store.Destination(ctx, d.ID); return !cur.Enabled })
	cur, _ := f.store.Destination(ctx, d.ID)
	if !strings.Contains(cur.DisabledReason, "failing since") || len(r.requests()) != 5 {
		t.Fatalf("reason %q after %d requests", cur.DisabledReason, len(r.requests()))
	}
	eventually(t, "the observer told", func() bool { obs.mu.Lock(); defer obs.mu.Unlock(); return len(obs.disabled) > 0 })
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.disabled) != 1 || obs.disabled[0] != d.ID || len(obs.delivered) != 0 {
		t.Fatalf("observer: %+v", obs)
	}
}

// TestDeliveryLog: every attempt is logged newest first with its attempt
// number, answer and webhook id, and a delivery's latency is observed.
func TestDeliveryLog(t *testing.T) {
	f := newFixture(t, time.Millisecond)
	obs := &observer{}
	f.m.SetObserver(obs)
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 0 {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	eventually(t, "delivered", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 1 })
	log, err := f.m.Deliveries(ctx, d.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Attempt != 2 || log[0].Status != 200 || log[1].Attempt != 1 || log[1].Status != 429 ||
		log[0].WebhookID != destinations.MessageID(d.ID, 1) || log[1].WebhookID != log[0].WebhookID || log[0].Sequence != 1 || log[0].Type != destinations.TypeEntered {
		t.Fatalf("log %+v %+v", log[0], log[1])
	}
	if page, err := f.m.Deliveries(ctx, d.ID, log[0].N, 10); err != nil || len(page) != 1 || page[0].N != log[1].N {
		t.Fatalf("the page before the newest: %+v, %v", page, err)
	}
	if _, err := f.m.Deliveries(ctx, "dst_none", 0, 10); graph.ErrorKind(err) != graph.KindNotFound {
		t.Fatalf("the log of an unknown destination: %v", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.delivered) != 1 || obs.delivered[0] <= 0 {
		t.Fatalf("latencies observed: %v", obs.delivered)
	}
}

// fakeClock is a clock starting at now+offset that moves only when
// advanced. Tests keep it within the reference library's five minutes of
// the real time, which signed timestamps are checked against.
func fakeClock(offset time.Duration) (now func() time.Time, advance func(time.Duration)) {
	var mu sync.Mutex
	clock := time.Now().UTC().Add(offset)
	return func() time.Time { mu.Lock(); defer mu.Unlock(); return clock },
		func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
}

// TestResyncSurvivesRestart: a resync stopped mid-way by a restart goes on
// from its stored position in the next process: what was sent is not sent
// again, and the message that failed is retried with the same webhook id.
func TestResyncSurvivesRestart(t *testing.T) {
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fd := &feed{}
	now, advance := fakeClock(-time.Minute)
	r, down := refusingReceiver(t, byProfile)
	first, stopFirst := startManager(t, s.Destinations(), fd, func(o *destinations.Options) { o.Now = now }, time.Minute)
	ctx := context.Background()
	d, secret, err := first.Create(ctx, "test", r.srv.URL, []string{"vip"})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
	for _, p := range []string{"p1", "p2", "p3"} {
		fd.add("vip", p, segments.Entered)
	}
	eventually(t, "the records", func() bool { return len(r.requests()) == 3 })
	down.Store("p2", true)
	j, err := first.Resync(ctx, d.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "p2 refused", func() bool { js, _ := first.Jobs(ctx, d.ID); return js[0].Attempts == 1 })
	stopFirst()
	js, _ := s.Destinations().Jobs(ctx, d.ID)
	if got := js[0]; got.State != destinations.JobRunning || got.Done != 1 || got.After != "p1" {
		t.Fatalf("the stored job after the first process: %+v", got)
	}

	down.Delete("p2")
	advance(time.Minute)
	second, _ := startManager(t, s.Destinations(), fd, func(o *destinations.Options) { o.Now = now }, time.Minute)
	if j = waitJob(t, &fixture{m: second}, d.ID, j.ID); j.State != destinations.JobDone || j.Done != 3 {
		t.Fatalf("after the restart: %+v", j)
	}
	var got []string
	for _, rec := range r.requests()[3:] {
		got = append(got, rec.msg.Data.Profile+" "+rec.id)
	}
	id := func(p string) string { return p + " " + destinations.ResyncMessageID(d.ID, j.ID, "vip", p) }
	if want := []string{id("p1"), id("p2"), id("p2"), id("p3")}; !slices.Equal(got, want) {
		t.Fatalf("resync messages across the restart:\n%v\nwant\n%v", got, want)
	}
}

// refusingReceiver answers 503 to the requests whose key is in the
// returned set, and 200 to the others.
func refusingReceiver(t *testing.T, key func(received) string) (*receiver, *sync.Map) {
	var refuse sync.Map
	r := newReceiver(t, nil)
	r.answer = func(n int, w http.ResponseWriter) {
		if _, no := refuse.Load(key(r.requests()[n])); no {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}
	return r, &refuse
}

func byProfile(rec received) string { return rec.msg.Data.Profile }

// TestJobsBookkeeping: queuing a job keeps only the newest finished ones;
// a 410 to a job's message disables the destination, and enabled again
// it resumes the job; a segment disconnected meanwhile is skipped.
func TestJobsBookkeeping(t *testing.T) {
	f := newFixture(t, time.Millisecond)
	var gone sync.Map
	r := newReceiver(t, nil)
	r.answer = func(n int, w http.ResponseWriter) {
		if _, g := gone.Load(r.requests()[n].msg.Data.Profile); g {
			w.WriteHeader(http.StatusGone)
		}
	}
	d := f.connect(t, r)
	ctx := context.Background()
	for i := range destinations.KeepFinishedJobs + 5 {
		old := &destinations.Job{ID: fmt.Sprintf("job_old%02d", i), Destination: d.ID, Kind: destinations.JobResync,
			State: destinations.JobDone, CreatedAt: time.Now().Add(time.Duration(i-100) * time.Minute)}
		if err := f.store.PutJob(ctx, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"p1", "p2"} {
		f.feed.add("vip", p, segments.Entered)
		f.feed.add("other", p, segments.Entered)
	}
	for _, seg := range []string{"vip", "other"} {
		if _, err := f.m.Connect(ctx, d.ID, seg); err != nil {
			t.Fatal(err)
		}
	}
	gone.Store("p2", true)
	j, err := f.m.Resync(ctx, d.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := f.m.Jobs(ctx, d.ID)
	if len(js) != destinations.KeepFinishedJobs || js[0].ID != j.ID || js[len(js)-1].ID != "job_old06" {
		t.Fatalf("after queuing: %d jobs, newest %s, oldest %s", len(js), js[0].ID, js[len(js)-1].ID)
	}
	eventually(t, "disabled by the 410", func() bool { cur, _ := f.store.Destination(ctx, d.ID); return !cur.Enabled })
	if _, err := f.m.Disconnect(ctx, d.ID, "vip"); err != nil { // the job's second segment (sorted): skipped
		t.Fatal(err)
	}
	gone.Delete("p2")
	if _, err := f.m.SetEnabled(ctx, d.ID, true); err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, f, d.ID, j.ID); j.State != destinations.JobDone {
		t.Fatalf("job %+v", j)
	}
	var got []string
	for _, rec := range r.requests() {
		got = append(got, rec.msg.Data.Segment+" "+rec.msg.Data.Profile)
	}
	if want := []string{"other p1", "other p2", "other p2"}; !slices.Equal(got, want) { // p2 refused with 410, then sent
		t.Fatalf("sent %v, want %v", got, want)
	}
}

// BenchmarkResync measures a resync of 2,000 members (from the test's
// in-memory feed) to a loopback receiver that verifies every request with
// the reference Standard Webhooks library, on a destination with a batch
// size of 1 (a request per member) and of 100, in members/s (go test
// ./destinations -run '^$' -bench BenchmarkResync; docs/benchmarks.md).
func BenchmarkResync(b *testing.B) {
	const n = 2000
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch%d", size), func(b *testing.B) {
			f := newFixture(b)
			r := newReceiver(b, ok)
			d := f.connect(b, r)
			ctx := context.Background()
			for i := range n {
				f.feed.add("vip", fmt.Sprintf("p%05d", i), segments.Entered) // recorded before vip is connected: not sent
			}
			if _, err := f.m.Connect(ctx, d.ID, "vip"); err != nil {
				b.Fatal(err)
			}
			if _, err := f.m.SetBatchSize(ctx, d.ID, size); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				j, err := f.m.Resync(ctx, d.ID, "", "")
				if err != nil {
					b.Fatal(err)
				}
				if j = waitJob(b, f, d.ID, j.ID); j.State != destinations.JobDone || j.Done != n {
					b.Fatalf("job %+v", j)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "members/s")
		})
	}
}
