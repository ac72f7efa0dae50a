package destinations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
)

// feed is a segments.Store holding change records appended by the test:
// only what deliveries read (Changes, Definition) is implemented. The
// real stores' records are covered by segments' own suite and by the
// end-to-end test through serve.
type feed struct {
	segments.Store
	mu   sync.Mutex
	recs []*segments.ChangeRecord
	// reads counts the calls of Changes.
	reads atomic.Int64
	// hook, when set, runs once at the start of the next Changes.
	hook func()
}

func (f *feed) add(segment, profile, dir string) uint64 {
	return f.addFor(segment, profile, dir, segments.ReasonData)
}

func (f *feed) addFor(segment, profile, dir, reason string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := uint64(len(f.recs) + 1)
	f.recs = append(f.recs, &segments.ChangeRecord{Sequence: seq, Segment: segment, Version: 1, Profile: profile,
		Direction: dir, Reason: reason, Time: time.Now().UTC()})
	return seq
}

func (f *feed) Changes(_ context.Context, after uint64, limit int) ([]*segments.ChangeRecord, error) {
	f.reads.Add(1)
	f.mu.Lock()
	hook := f.hook
	f.hook = nil
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*segments.ChangeRecord
	for _, r := range f.recs {
		if r.Sequence > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *feed) Definition(_ context.Context, r segments.Ref) (*segments.Definition, error) {
	if r.Key == "missing" {
		return nil, segments.NotFound(r)
	}
	return &segments.Definition{Key: r.Key, Version: 1}, nil
}

// received is one request a receiver got.
type received struct {
	id, signature string
	header        http.Header
	at            time.Time
	body          []byte
	msg           struct {
		Type      string                     `json:"type"`
		Timestamp time.Time                  `json:"timestamp"`
		Data      destinations.SegmentChange `json:"data"`
	}
	// batch holds a batch's messages (msg.Type "batch").
	batch []struct {
		Type string                     `json:"type"`
		Data destinations.SegmentChange `json:"data"`
	}
}

// receiver is an httptest server that verifies every request with the
// reference Standard Webhooks library, records it, and answers with
// answer(n) for the n-th request (from 0).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	secret string
	answer func(n int, w http.ResponseWriter)

	mu  sync.Mutex
	got []received
}

func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter)) *receiver {
	t.Helper()
	r := &receiver{t: t, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		r.t.Errorf("reference library: secret %q: %v", secret, err)
	} else if err := wh.Verify(body, req.Header); err != nil {
		r.t.Errorf("reference library refuses the signature: %v (headers %v)", err, req.Header)
	}
	rec := received{id: req.Header.Get("webhook-id"), signature: req.Header.Get("webhook-signature"), header: req.Header.Clone(), body: body, at: time.Now()}
	var dst any = &rec.msg
	if strings.HasPrefix(string(body), `{"type":"`+destinations.TypeBatch+`"`) {
		rec.msg.Type = destinations.TypeBatch
		dst = &struct {
			Data any `json:"data"`
		}{&rec.batch}
	}
	if err := json.Unmarshal(body, dst); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	r.mu.Lock()
	n := len(r.got)
	r.got = append(r.got, rec)
	r.mu.Unlock()
	if r.answer != nil {
		r.answer(n, w)
	}
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type fixture struct {
	m     *destinations.Manager
	store destinations.Store
	feed  *feed
}

func newFixture(t testing.TB, schedule ...time.Duration) *fixture {
	t.Helper()
	return newFixtureWith(t, func(*destinations.Options) {}, schedule...)
}

// newFixtureWith is newFixture with options edited by edit.
func newFixtureWith(t testing.TB, edit func(*destinations.Options), schedule ...time.Duration) *fixture {
	t.Helper()
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newFixtureOn(t, s, edit, schedule...)
}

// newFixtureOn runs a manager over the store s, its options edited by edit.
func newFixtureOn(t testing.TB, s destinations.Backend, edit func(*destinations.Options), schedule ...time.Duration) *fixture {
	t.Helper()
	f := &fixture{store: s.Destinations(), feed: &feed{}}
	f.m, _ = startManager(t, f.store, f.feed, edit, schedule...)
	return f
}

// startManager runs a manager over the store and the feed until the test
// ends, or until the stop it returns is called (a process: tests of
// restarts and leases start several).
func startManager(t testing.TB, store destinations.Store, fd *feed, edit func(*destinations.Options), schedule ...time.Duration) (m *destinations.Manager, stop func()) {
	t.Helper()
	sealer, err := destinations.NewSealer([]byte("test-pepper-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if schedule == nil {
		schedule = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	}
	o := destinations.Options{Store: store, Segments: fd, Sealer: sealer,
		Client:   destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, Timeout: 3 * time.Second}),
		Schedule: schedule, Jitter: -1, Poll: 20 * time.Millisecond}
	edit(&o)
	m, err = destinations.NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return m, stop
}

// connect creates a destination for the receiver, connected to segments.
func (f *fixture) connect(t testing.TB, r *receiver, segs ...string) *destinations.Destination {
	t.Helper()
	d, secret, err := f.m.Create(context.Background(), "test", r.srv.URL+"/hook", segs)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
	return d
}

// eventually waits up to 10 s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ok(int, http.ResponseWriter) {}

func TestDeliveriesSignedAndOrderedPerProfile(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	steps := []struct{ seg, profile, dir string }{
		{"vip", "p1", segments.Entered},
		{"other", "p1", segments.Entered}, // not connected: never sent
		{"vip", "p2", segments.Entered},
		{"vip", "p1", segments.Exited},
		{"vip", "p2", segments.Exited},
		{"vip", "p1", segments.Entered},
	}
	for _, s := range steps {
		f.feed.add(s.seg, s.profile, s.dir)
	}
	f.m.Wake()
	eventually(t, "5 deliveries", func() bool { return len(r.requests()) >= 5 })
	time.Sleep(100 * time.Millisecond) // nothing more comes
	got := r.requests()
	if len(got) != 5 {
		t.Fatalf("got %d requests, want 5", len(got))
	}
	want := []struct {
		typ, profile string
		seq          uint64
	}{
		{destinations.TypeEntered, "p1", 1}, {destinations.TypeEntered, "p2", 3}, {destinations.TypeExited, "p1", 4},
		{destinations.TypeExited, "p2", 5}, {destinations.TypeEntered, "p1", 6},
	}
	for i, w := range want {
		g := got[i]
		if g.msg.Type != w.typ || g.msg.Data.Profile != w.profile || g.msg.Data.Sequence != w.seq || g.msg.Data.Segment != "vip" ||
			g.msg.Data.Version != 1 || g.msg.Data.Reason != segments.ReasonData || g.msg.Timestamp.IsZero() {
			t.Errorf("message %d: got %+v, want %+v", i, g.msg, w)
		}
		if g.id != destinations.MessageID(d.ID, w.seq) {
			t.Errorf("message %d: webhook-id %q", i, g.id)
		}
	}
	// An independent check of the signature scheme, from the spec's text.
	key, err := destinations.ParseSecret(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	ts := got[0].at.Unix()
	for _, delta := range []int64{0, -1, 1} { // the receiver's clock read the second after sending
		if destinations.Sign(key, got[0].id, time.Unix(ts+delta, 0), got[0].body) == got[0].signature {
			return
		}
	}
	t.Errorf("signature %q is not v1,base64(HMAC-SHA256(key, id.timestamp.body))", got[0].signature)
}

func TestRetryOn500ThenSuccess(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n < 2 {
			http.Error(w, "down", http.StatusInternalServerError)
		}
	})
	d := f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.feed.add("vip", "p1", segments.Exited)
	f.m.Wake()
	eventually(t, "4 requests", func() bool { return len(r.requests()) >= 4 })
	got := r.requests()
	seqs := []uint64{}
	for _, g := range got {
		seqs = append(seqs, g.msg.Data.Sequence)
	}
	// The exit waits behind the entry's retries: order holds.
	if want := []uint64{1, 1, 1, 2}; len(seqs) != 4 || seqs[0] != 1 || seqs[1] != 1 || seqs[2] != 1 || seqs[3] != 2 {
		t.Fatalf("sequences %v, want %v", seqs, want)
	}
	if got[0].id != got[2].id {
		t.Fatalf("a retry changed the webhook-id: %q then %q", got[0].id, got[2].id)
	}
	eventually(t, "the cursor", func() bool {
		c, _ := f.store.Cursor(context.Background(), d.ID)
		return c.After == 2
	})
	c, _ := f.store.Cursor(context.Background(), d.ID)
	if c.Delivered != 2 || c.FailedTries != 2 || c.Head != nil || c.LastError == "" {
		t.Fatalf("cursor %+v", c)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	f := newFixture(t, time.Millisecond)
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	eventually(t, "the retry", func() bool { return len(r.requests()) >= 2 })
	got := r.requests()
	if gap := got[1].at.Sub(got[0].at); gap < 900*time.Millisecond {
		t.Fatalf("retried after %v; the receiver asked for 1 s (the schedule says 1 ms)", gap)
	}
}

func TestGoneDisablesDestination(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	d := f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	eventually(t, "disabled", func() bool {
		got, _ := f.store.Destination(context.Background(), d.ID)
		return !got.Enabled
	})
	got, _ := f.store.Destination(context.Background(), d.ID)
	if got.DisabledReason == "" {
		t.Fatal("no reason given")
	}
	f.feed.add("vip", "p2", segments.Entered)
	f.m.Wake()
	time.Sleep(150 * time.Millisecond)
	if n := len(r.requests()); n != 1 {
		t.Fatalf("a disabled destination got %d requests, want 1", n)
	}
	c, _ := f.store.Cursor(context.Background(), d.ID)
	if c.After != 0 || c.Head == nil || c.Head.LastStatus != http.StatusGone {
		t.Fatalf("the record must stay pending for when it is enabled again: %+v", c)
	}
}

// A disabled destination's worker reads the destination alone each poll,
// not a page of records (a destination disabled for days would read one
// every poll), and delivers again from where it stopped once enabled.
func TestDisabledDestinationReadsNoRecords(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	eventually(t, "the first delivery", func() bool { return len(r.requests()) == 1 })
	if _, err := f.m.SetEnabled(ctx, d.ID, false); err != nil {
		t.Fatal(err)
	}
	f.feed.add("vip", "p2", segments.Entered)
	time.Sleep(100 * time.Millisecond) // a step sees it disabled
	before := f.feed.reads.Load()
	time.Sleep(400 * time.Millisecond) // 20 polls
	if n := f.feed.reads.Load() - before; n > 1 {
		t.Errorf("a disabled destination read records %d times in 20 polls", n)
	}
	if n := len(r.requests()); n != 1 {
		t.Fatalf("a disabled destination got %d requests, want 1", n)
	}
	if _, err := f.m.SetEnabled(ctx, d.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the record held back while disabled", func() bool { return len(r.requests()) == 2 })
	if got := r.requests()[1].msg.Data.Profile; got != "p2" {
		t.Fatalf("delivered %s after enabling, want p2", got)
	}
}

func TestDeadLetterAfterSchedule(t *testing.T) {
	f := newFixture(t, time.Millisecond, time.Millisecond)
	r := newReceiver(t, func(_ int, w http.ResponseWriter) {})
	r.answer = func(n int, w http.ResponseWriter) {
		if r.requests()[n].msg.Data.Sequence == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}
	d := f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.feed.add("vip", "p2", segments.Entered)
	f.m.Wake()
	eventually(t, "the second record", func() bool {
		c, _ := f.store.Cursor(context.Background(), d.ID)
		return c.After == 2
	})
	dl, err := f.store.DeadLetters(context.Background(), d.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Record.Sequence != 1 || dl[0].Attempts != 3 || dl[0].LastStatus != http.StatusServiceUnavailable {
		t.Fatalf("dead letters %+v", dl)
	}
	if n := len(r.requests()); n != 4 {
		t.Fatalf("%d requests, want 3 attempts of the first and 1 of the second", n)
	}
}

// TestRedeliverAndReplay: a dead letter redelivered once the receiver is
// back stops being one (an unknown one is not found); a replay from a
// sequence sends the wanted records from there again, in order, with
// their original webhook ids, and a replay ahead of the cursor sends
// nothing again.
func TestRedeliverAndReplay(t *testing.T) {
	f := newFixture(t, time.Millisecond)
	var down sync.Map // sequences refused while down
	r := newReceiver(t, nil)
	r.answer = func(n int, w http.ResponseWriter) {
		if _, ok := down.Load(r.requests()[n].msg.Data.Sequence); ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	down.Store(uint64(1), true)
	for _, p := range []string{"p1", "p2", "p3"} {
		f.feed.add("vip", p, segments.Entered)
	}
	f.feed.add("other", "p4", segments.Entered) // not wanted
	f.m.Wake()
	eventually(t, "the last record", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 4 })
	if dl, _ := f.store.DeadLetters(ctx, d.ID, 0, 10); len(dl) != 1 {
		t.Fatalf("dead letters %+v", dl)
	}
	if res, err := f.m.Redeliver(ctx, d.ID, 1); err != nil || res.OK() {
		t.Fatalf("redelivering while still down: %+v %v", res, err)
	}
	if dl, _ := f.store.DeadLetters(ctx, d.ID, 0, 10); len(dl) != 1 || dl[0].Attempts != 3 {
		t.Fatalf("after a failed redelivery: %+v", dl)
	}
	// An entry is checked as a delivery is: without consent for the
	// destination's purpose (this fixture checks none), it is not sent.
	setPurpose := func(p string) {
		t.Helper()
		if _, err := f.store.UpdateDestination(ctx, d.ID, func(d *destinations.Destination) error { d.Purpose = p; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	setPurpose("marketing")
	down.Delete(uint64(1))
	sentBefore := len(r.requests())
	if res, err := f.m.Redeliver(ctx, d.ID, 1); err != nil || res.OK() || !strings.Contains(res.Err, "consent for marketing") || len(r.requests()) != sentBefore {
		t.Fatalf("redelivering an entry without consent: %+v %v", res, err)
	}
	setPurpose("")
	if res, err := f.m.Redeliver(ctx, d.ID, 1); err != nil || !res.OK() {
		t.Fatalf("redelivering: %+v %v", res, err)
	}
	if dl, _ := f.store.DeadLetters(ctx, d.ID, 0, 10); len(dl) != 0 {
		t.Fatalf("a redelivered dead letter stays: %+v", dl)
	}
	for _, seq := range []uint64{0, 2, 99} {
		if _, err := f.m.Redeliver(ctx, d.ID, seq); graph.ErrorKind(err) != graph.KindNotFound {
			t.Errorf("redelivering %d: %v, want not found", seq, err)
		}
	}

	before := len(r.requests())
	if _, err := f.m.Replay(ctx, d.ID, 0); graph.ErrorKind(err) != graph.KindInvalid {
		t.Errorf("replaying from 0: %v", err)
	}
	if _, err := f.m.Replay(ctx, d.ID, 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replay", func() bool { return len(r.requests()) >= before+2 })
	got := r.requests()[before:]
	if len(got) != 2 || got[0].id != destinations.MessageID(d.ID, 2) || got[1].id != destinations.MessageID(d.ID, 3) {
		t.Fatalf("replayed %+v", got)
	}
	eventually(t, "the replay's end", func() bool {
		c, _ := f.store.Cursor(ctx, d.ID)
		cur, _ := f.store.Destination(ctx, d.ID)
		return c.After == 4 && cur.ReplayFrom == 0
	})
	if _, err := f.m.Replay(ctx, d.ID, 10); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the request cleared", func() bool { cur, _ := f.store.Destination(ctx, d.ID); return cur.ReplayFrom == 0 })
	if n := len(r.requests()); n != before+2 {
		t.Fatalf("a replay ahead of the cursor sent %d more", n-before-2)
	}
}

// TestHangingDestinationDoesNotDelayAnother: one receiver never answers
// (the client's timeout is longer than the test); another connected to
// the same segment gets every message while the first request to the
// hanging one is still open, on each backend.
func TestHangingDestinationDoesNotDelayAnother(t *testing.T) {
	for _, b := range suppBackends() {
		t.Run(b.name, func(t *testing.T) {
			f := newFixtureOn(t, b.open(t), func(o *destinations.Options) {
				o.Client = destinations.NewClient(destinations.ClientOptions{
					URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, Timeout: time.Hour})
			})
			release := make(chan struct{})
			var answered atomic.Bool // the hanging request ended
			hang := newReceiver(t, func(int, http.ResponseWriter) { <-release; answered.Store(true) })
			t.Cleanup(func() { close(release) }) // runs before the servers close
			fine := newReceiver(t, ok)
			f.connect(t, hang, "vip")
			f.connect(t, fine, "vip")
			const n = 50
			start := time.Now()
			for i := range n {
				f.feed.add("vip", "p"+strconv.Itoa(i), segments.Entered)
			}
			f.m.Wake()
			eventually(t, "every message at the healthy receiver", func() bool { return len(fine.requests()) == n })
			t.Logf("%s: %d messages delivered to the healthy receiver in %v while the other hangs", b.name, n, time.Since(start))
			if got := len(hang.requests()); got != 1 || answered.Load() {
				t.Fatalf("the hanging receiver got %d requests (answered: %v), want 1 still in flight", got, answered.Load())
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	f := newFixture(t)
	target := newReceiver(t, ok)
	r := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.Header().Set("Location", target.srv.URL+"/elsewhere")
		w.WriteHeader(http.StatusMovedPermanently)
	})
	d := f.connect(t, r, "vip")
	res, err := f.m.Test(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusMovedPermanently || res.OK() {
		t.Fatalf("result %+v, want the 301 itself as a failure", res)
	}
	if n := len(target.requests()); n != 0 {
		t.Fatalf("the redirect was followed (%d requests)", n)
	}
	if got := r.requests(); len(got) != 1 || got[0].msg.Type != destinations.TypePing {
		t.Fatalf("the test message: %+v", got)
	}
}

func TestCreateRefuses(t *testing.T) {
	f := newFixture(t)
	strict := destinations.URLPolicy{}
	tests := []struct {
		name, url string
		segments  []string
		field     string
	}{
		{"empty name", "https://example.com", nil, "name"},
		{"missing segment", "https://example.com", []string{"missing"}, "segment"},
		{"bad segment key", "https://example.com", []string{"a b"}, "segment"},
	}
	for _, tc := range tests {
		name := "n"
		if tc.name == "empty name" {
			name = " "
		}
		_, _, err := f.m.Create(context.Background(), name, tc.url, tc.segments)
		var ge *graph.Error
		if !errors.As(err, &ge) || ge.Field != tc.field {
			t.Errorf("%s: got %v, want an error on %s", tc.name, err, tc.field)
		}
	}
	for _, u := range []string{
		"http://example.com/hook",           // http
		"https://127.0.0.1/hook",            // loopback
		"https://[::1]:8443/hook",           // loopback v6
		"https://localhost/hook",            // loopback name
		"https://api.localhost/hook",        // loopback name
		"https://10.1.2.3/hook",             // private
		"https://192.168.0.1/hook",          // private
		"https://100.64.0.1/hook",           // shared (CGNAT)
		"https://169.254.169.254/latest",    // metadata
		"https://[fe80::1]/hook",            // link-local
		"https://[::ffff:127.0.0.1]/hook",   // v4-mapped loopback
		"https://0.0.0.0/hook",              // unspecified
		"https://224.0.0.1/hook",            // multicast
		"file:///etc/passwd",                // scheme
		"ftp://example.com/x",               // scheme
		"https://user:pw@example.com/hook",  // credentials
		"https:///hook",                     // no host
		"https://example.com/hook#fragment", // fragment
		"",
		"https://example.com/" + string(make([]byte, destinations.MaxURLLen)),
	} {
		if _, err := strict.CheckURL(u); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("CheckURL(%.60q): got %v, want invalid", u, err)
		}
	}
	for _, u := range []string{"https://example.com/hook", "https://93.184.215.14:8443/x?y=1", "https://[2606:4700::1]/h"} {
		if _, err := strict.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q): %v", u, err)
		}
	}
}

func TestSecrets(t *testing.T) {
	s := destinations.NewSecret()
	if _, err := destinations.ParseSecret(s); err != nil {
		t.Fatalf("a new secret does not parse: %v", err)
	}
	for _, bad := range []string{"", "whsec_", "secret", "whsec_!!!", "whsec_c2hvcnQ=", "whsec_" + string(make([]byte, 200))} {
		if _, err := destinations.ParseSecret(bad); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("ParseSecret(%.30q): got %v, want invalid", bad, err)
		}
	}
	sealer, _ := destinations.NewSealer([]byte("pepper-0123456789abcdef"))
	sealed := sealer.Seal("dst_1", s)
	if _, err := sealer.Open("dst_1", sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.Open("dst_2", sealed); err == nil {
		t.Fatal("a secret sealed for one destination opens for another")
	}
	other, _ := destinations.NewSealer([]byte("another-pepper-0123456789"))
	if _, err := other.Open("dst_1", sealed); err == nil {
		t.Fatal("a secret opens under another pepper")
	}
}

// TestErasedExitIsProfileErased: an exit written by an erasure reaches
// webhooks as profile.erased (the receiver deletes the person), signed
// like any message, after the person's entry.
func TestErasedExitIsProfileErased(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, ok)
	f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.feed.addFor("vip", "p1", segments.Exited, segments.ReasonErased)
	f.feed.addFor("vip", "p2", segments.Exited, segments.ReasonDefinition)
	f.m.Wake()
	eventually(t, "three messages", func() bool { return len(r.requests()) >= 3 })
	var got []string
	for _, rec := range r.requests() {
		got = append(got, rec.msg.Type+" "+rec.msg.Data.Profile+" "+rec.msg.Data.Reason)
	}
	if want := []string{"segment.entered p1 data", "profile.erased p1 erased", "segment.exited p2 definition"}; !slices.Equal(got, want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
}

// TestSecretRotation: after a rotation, messages verify under the old and
// the new secret (the reference library accepts any one of the
// signatures) until the grace period ends, then under the new one only; a
// grace of 0 drops the old secret at once; a grace out of bounds is
// refused naming the field.
func TestSecretRotation(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now().UTC()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	f := newFixtureWith(t, func(o *destinations.Options) { o.Now = now })
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	ctx := context.Background()
	verifies := func(rec received, secret string) bool {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(rec.body, rec.header) == nil
	}
	deliver := func(n int) received {
		t.Helper()
		f.feed.add("vip", fmt.Sprintf("p%d", n), segments.Entered)
		eventually(t, "a delivery", func() bool { return len(r.requests()) >= n })
		return r.requests()[n-1]
	}
	old := r.secret
	for _, grace := range []time.Duration{-time.Second, destinations.MaxRotationGrace + time.Second} {
		if _, _, err := f.m.RotateSecret(ctx, d.ID, grace); graph.ErrorKind(err) != graph.KindInvalid || !strings.HasPrefix(graph.ErrorMessage(err), "grace: ") {
			t.Errorf("rotating with a grace of %s: %v, want invalid naming grace", grace, err)
		}
	}
	_, second, err := f.m.RotateSecret(ctx, d.ID, time.Minute)
	if err != nil || second == old {
		t.Fatalf("rotate: %q %v", second, err)
	}
	if rec := deliver(1); !verifies(rec, old) || !verifies(rec, second) || strings.Count(rec.signature, "v1,") != 2 {
		t.Fatalf("during the grace period: signature %q verifies old %v, new %v", rec.signature, verifies(rec, old), verifies(rec, second))
	}
	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	r.mu.Lock()
	r.secret = second
	r.mu.Unlock()
	if rec := deliver(2); verifies(rec, old) || !verifies(rec, second) {
		t.Fatalf("after the grace period the old secret still verifies: %q", rec.signature)
	}
	_, third, err := f.m.RotateSecret(ctx, d.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = third
	r.mu.Unlock()
	if rec := deliver(3); verifies(rec, second) || !verifies(rec, third) {
		t.Fatalf("a rotation without grace kept the replaced secret: %q", rec.signature)
	}
}

// TestConnectRacingARecord: a segment connected, and a change of it
// recorded, between a worker's read of the destination and its read of
// the records, is delivered (the worker reads the destination again after
// the records).
func TestConnectRacingARecord(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	eventually(t, "the first message", func() bool { return len(r.requests()) == 1 })
	f.feed.mu.Lock()
	f.feed.hook = func() {
		if _, err := f.m.Connect(context.Background(), d.ID, "late"); err != nil {
			t.Error(err)
		}
		f.feed.add("late", "p2", segments.Entered)
	}
	f.feed.mu.Unlock()
	eventually(t, "the change of the segment connected meanwhile", func() bool { return len(r.requests()) == 2 })
	if got := r.requests()[1].msg.Data; got.Segment != "late" || got.Profile != "p2" {
		t.Fatalf("second message %+v", got)
	}
}

// TestErrorsHideTheURL: a URL's query may hold a token; a failure's error
// (stored as the last error, logged) does not repeat it.
func TestErrorsHideTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	u := srv.URL + "/hook?token=s3cr3t-token"
	srv.Close() // nothing listens: connection refused
	c := destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}})
	key, _ := destinations.ParseSecret(destinations.NewSecret())
	res := c.Send(context.Background(), u, [][]byte{key}, destinations.Message{ID: "msg_1", At: time.Now(), Body: []byte(`{}`)})
	if res.OK() || res.Err == "" || strings.Contains(res.Err, "s3cr3t") {
		t.Fatalf("result %+v", res)
	}
}
