package storetest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// pendingRig is a manager over a backend with a fake clock and a
// receiver answering each profile's messages with the status set for it.
type pendingRig struct {
	t    *testing.T
	ctx  context.Context
	g    graph.Store
	seg  segments.Store
	sent destinations.SentStore
	opts destinations.Options
	m    *destinations.Manager
	stop func()
	d    *destinations.Destination

	mu     sync.Mutex
	now    time.Time
	status map[string]int    // profile → status answered (0: 200)
	retry  map[string]string // profile → Retry-After answered
	got    map[string]int    // profile → messages received
}

func newPendingRig(t *testing.T, g graph.Store, schedule ...time.Duration) *pendingRig {
	t.Helper()
	r := &pendingRig{t: t, ctx: context.Background(), g: g, now: time.Now().UTC(),
		status: map[string]int{}, retry: map[string]string{}, got: map[string]int{}}
	r.seg = graphtest.As[segments.Backend](t, g).Segments()
	r.sent = graphtest.As[destinations.SentBackend](t, g).SentState()
	segtest.Define(t, r.seg, lang.KindSegment, "s1", "traits.plan = 'pro'")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		p := m.Data.Profile
		r.got[p]++
		if ra := r.retry[p]; ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		if st := r.status[p]; st != 0 {
			w.WriteHeader(st)
		}
	}))
	t.Cleanup(srv.Close)
	sealer, err := destinations.NewSealer([]byte("test-pepper-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	r.opts = destinations.Options{
		Store: graphtest.As[destinations.Backend](t, g).Destinations(), Segments: r.seg, Sent: r.sent, Profiles: g, Sealer: sealer,
		Client:   destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, Timeout: 5 * time.Second}),
		Schedule: schedule, Jitter: -1, Poll: 10 * time.Millisecond, DisableAfter: -1, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }}
	r.start()
	t.Cleanup(func() { r.stop() })
	if r.d, _, err = r.m.Create(r.ctx, "hook", srv.URL+"/hook", []string{"s1"}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *pendingRig) start() {
	m, err := destinations.NewManager(r.opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	r.stop = func() { cancel(); <-done }
}

func (r *pendingRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
	r.m.Wake()
}

func (r *pendingRig) answer(profile string, status int, retryAfter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[profile], r.retry[profile] = status, retryAfter
}

func (r *pendingRig) received(profile string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[profile]
}

// enter ingests a person and puts them in s1, and waits for the entry.
func (r *pendingRig) enter(user string) string {
	r.t.Helper()
	o := graphtest.Obs("m-"+user, time.Now().UTC(), "user_id:"+user)
	o.Event = graph.Event{Type: "identify"}
	graphtest.Ingest(r.t, r.g, o)
	p := graphtest.ProfileOf(r.t, r.g, "user_id:"+user).ID
	st := &segments.ProfileState{Profile: p, Entries: map[string]segments.Entry{"segment:s1": {Version: 1, Member: true, Since: time.Now().UTC()}}}
	if _, err := r.seg.SaveStates(r.ctx, []segments.Save{{State: st, Reason: segments.ReasonData, At: time.Now().UTC()}}); err != nil {
		r.t.Fatal(err)
	}
	r.m.Wake()
	r.wait("the entry of "+p, func() bool { return r.received(p) == 1 })
	return p
}

// row is the destination's sent state of the profile.
func (r *pendingRig) row(profile string) *destinations.Sent {
	r.t.Helper()
	got, err := r.sent.SentOf(r.ctx, r.d.ID, []string{profile})
	if err != nil {
		r.t.Fatal(err)
	}
	return got[profile]
}

func (r *pendingRig) wait(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAttempt waits until the profile's pending request has failed n
// times, and checks its next attempt is due after next.
func (r *pendingRig) waitAttempt(profile string, n int, next time.Duration) {
	r.t.Helper()
	r.wait("attempt", func() bool { s := r.row(profile); return s.Pending != nil && s.Pending.Attempts == n })
	p := r.row(profile).Pending
	if want := r.opts.Now().Add(next); !p.NextAt.Equal(want) || p.LastStatus == 0 {
		r.t.Fatalf("after attempt %d: next at %v (last status %d), want %v", n, p.NextAt, p.LastStatus, want)
	}
	if got := r.received(profile); got != 1+n {
		r.t.Fatalf("after attempt %d: %d messages, want the entry and %d attempts", n, got, n)
	}
}

// testPendingRetrySchedule: a withdrawal failing walks the schedule on a
// fake clock (Retry-After honoured when longer), keeps its attempt count
// across a restart, holds back neither another profile's withdrawal nor
// the health counters, and after the schedule becomes a dead letter kept
// on its row with the last status, the destination going on.
func testPendingRetrySchedule(t *testing.T, g graph.Store) {
	r := newPendingRig(t, g, time.Minute, 2*time.Minute, 3*time.Minute)
	p1, p2 := r.enter("u1"), r.enter("u2")
	r.answer(p1, http.StatusServiceUnavailable, "")
	if _, err := r.m.Withdraw(r.ctx, p1, "test"); err != nil {
		t.Fatal(err)
	}
	r.waitAttempt(p1, 1, time.Minute)
	h, err := r.m.Health(r.ctx, r.d)
	if err != nil || h.PendingRequests != 1 || h.OldestPendingRequest.IsZero() {
		t.Fatalf("health while a withdrawal waits: %+v %v", h, err)
	}
	// The counters are written unsynced (Store.PutRetryState), maybe later.
	r.wait("the failure counted", func() bool { c, _ := r.m.Cursor(r.ctx, r.d.ID); return c.FailedTries == 1 })
	// Another person's withdrawal goes at once, the first one waiting.
	if _, err := r.m.Withdraw(r.ctx, p2, "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("the second withdrawal", func() bool { return r.received(p2) == 2 && r.row(p2).Pending == nil })
	// 429 with a Retry-After longer than the schedule's step.
	r.answer(p1, http.StatusTooManyRequests, "600")
	r.advance(time.Minute)
	r.waitAttempt(p1, 2, 10*time.Minute)
	// A restart goes on from the stored attempt count: the third step.
	r.stop()
	r.start()
	r.answer(p1, http.StatusServiceUnavailable, "")
	r.advance(10 * time.Minute)
	r.waitAttempt(p1, 3, 3*time.Minute)
	r.advance(3 * time.Minute)
	r.wait("the dead letter", func() bool { return r.row(p1).GivenUp != nil })
	s := r.row(p1)
	if s.Pending != nil || s.GivenUp.Attempts != 4 || s.GivenUp.LastStatus != http.StatusServiceUnavailable || !s.Segments["s1"].In {
		t.Fatalf("the row given up on: %+v pending %+v given up %+v", s, s.Pending, s.GivenUp)
	}
	r.wait("the counters", func() bool { c, _ := r.m.Cursor(r.ctx, r.d.ID); return c.DeadLettered == 1 && c.FailedTries == 4 })
	if h, err := r.m.Health(r.ctx, r.d); err != nil || h.PendingRequests != 0 {
		t.Fatalf("health after the dead letter: %+v %v", h, err)
	}
	// A later withdrawal is sent and clears the one given up on.
	r.answer(p1, 0, "")
	if _, err := r.m.Withdraw(r.ctx, p1, "again"); err != nil {
		t.Fatal(err)
	}
	r.wait("the withdrawal again", func() bool { s := r.row(p1); return s.Pending == nil && s.GivenUp == nil })
	if got := r.received(p1); got != 6 {
		t.Fatalf("%d messages for %s, want the entry, 4 attempts and the exit", got, p1)
	}
}

// testPendingGoneDisables: a 410 to an erasure notice disables the
// destination as one to a change record does; the notice stays pending.
func testPendingGoneDisables(t *testing.T, g graph.Store) {
	r := newPendingRig(t, g, time.Minute)
	p1 := r.enter("u1")
	r.answer(p1, http.StatusGone, "")
	if _, err := r.m.Withdraw(r.ctx, p1, "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("disabled", func() bool { d, _ := r.m.Get(r.ctx, r.d.ID); return !d.Enabled })
	d, _ := r.m.Get(r.ctx, r.d.ID)
	s := r.row(p1)
	if d.DisabledReason != "the receiver answered 410 Gone" || s.Pending == nil || s.Pending.Attempts != 1 || s.GivenUp != nil {
		t.Fatalf("after a 410: reason %q, row %+v", d.DisabledReason, s.Pending)
	}
}

// testPendingFailingTooLongDisables: a withdrawal failing for longer
// than DisableAfter disables the destination with a reason.
func testPendingFailingTooLongDisables(t *testing.T, g graph.Store) {
	r := newPendingRig(t, g, time.Minute, time.Minute, time.Minute, time.Minute)
	r.stop()
	r.opts.DisableAfter = 90 * time.Second
	r.start()
	p1 := r.enter("u1")
	r.answer(p1, http.StatusBadGateway, "")
	if _, err := r.m.Withdraw(r.ctx, p1, "test"); err != nil {
		t.Fatal(err)
	}
	r.waitAttempt(p1, 1, time.Minute)
	r.advance(time.Minute)
	r.waitAttempt(p1, 2, time.Minute)
	r.advance(time.Minute) // failing for 2 minutes at the third attempt
	r.wait("disabled", func() bool { d, _ := r.m.Get(r.ctx, r.d.ID); return !d.Enabled })
	d, _ := r.m.Get(r.ctx, r.d.ID)
	if s := r.row(p1); s.Pending == nil || s.Pending.Attempts != 3 || d.DisabledReason == "" {
		t.Fatalf("after failing too long: reason %q, row %+v", d.DisabledReason, s.Pending)
	}
}
