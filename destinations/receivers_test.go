package destinations_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/segments"
)

// Hostile receivers (issue 15's bad input): each is a failed attempt,
// retried on the schedule with the same webhook id, and dead-lettered
// after it, as a 5xx is.

// reset answers by resetting the connection: the request is read, then
// the socket closed with SO_LINGER 0, so the client gets an RST and no
// status line.
func reset(t testing.TB, w http.ResponseWriter) {
	t.Helper()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
		t.Errorf("SetLinger: %v", err)
	}
	conn.Close()
}

// TestResettingReceiver: a connection reset is a failure with no answer
// (status 0, "no answer: ..."), retried under the same webhook id until
// the receiver answers; one that always resets leaves a dead letter with
// status 0 after the whole schedule, and the next record goes on.
func TestResettingReceiver(t *testing.T) {
	ctx := context.Background()
	t.Run("retried until it answers", func(t *testing.T) {
		f := newFixture(t, time.Millisecond, time.Millisecond, time.Millisecond)
		r := newReceiver(t, nil)
		r.answer = func(n int, w http.ResponseWriter) {
			if n < 2 {
				reset(t, w)
			}
		}
		d := f.connect(t, r, "vip")
		f.feed.add("vip", "p1", segments.Entered)
		f.m.Wake()
		eventually(t, "delivered", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 1 })
		got := r.requests()
		if len(got) != 3 || got[0].id != got[1].id || got[1].id != got[2].id {
			t.Fatalf("%d requests (want 3, one webhook id): %+v", len(got), got)
		}
		c, _ := f.store.Cursor(ctx, d.ID)
		if c.Delivered != 1 || c.FailedTries != 2 || c.DeadLettered != 0 || !strings.HasPrefix(c.LastError, "no answer: ") {
			t.Fatalf("cursor %+v", c)
		}
		log, err := f.m.Deliveries(ctx, d.ID, 0, 10)
		if err != nil || len(log) != 3 {
			t.Fatalf("delivery log %+v, %v", log, err)
		}
		for i, want := range []int{200, 0, 0} { // newest first
			if log[i].Status != want || (want == 0) != strings.HasPrefix(log[i].Error, "no answer: ") {
				t.Errorf("attempt %d: status %d, error %q; want %d", log[i].Attempt, log[i].Status, log[i].Error, want)
			}
		}
	})
	t.Run("dead letter after the schedule", func(t *testing.T) {
		f := newFixture(t, time.Millisecond, time.Millisecond)
		r := newReceiver(t, nil)
		r.answer = func(n int, w http.ResponseWriter) {
			if r.requests()[n].msg.Data.Sequence == 1 {
				reset(t, w)
			}
		}
		d := f.connect(t, r, "vip")
		f.feed.add("vip", "p1", segments.Entered)
		f.feed.add("vip", "p2", segments.Entered)
		f.m.Wake()
		eventually(t, "the second record", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 2 })
		dl, err := f.store.DeadLetters(ctx, d.ID, 0, 10)
		if err != nil || len(dl) != 1 || dl[0].Record.Sequence != 1 || dl[0].Attempts != 3 || dl[0].LastStatus != 0 ||
			!strings.HasPrefix(dl[0].LastError, "no answer: ") {
			t.Fatalf("dead letters %+v, %v", dl, err)
		}
		if n := len(r.requests()); n != 4 {
			t.Fatalf("%d requests, want 3 attempts of the first and 1 of the second", n)
		}
	})
}

// TestHangingReceiverTimesOut: with a small client timeout, an attempt at
// a receiver that never answers fails as no answer, a timeout, no sooner
// than the timeout (and, generously, well within a few seconds: the
// bound is about hanging forever, not speed), and is retried.
func TestHangingReceiverTimesOut(t *testing.T) {
	ctx := context.Background()
	const timeout = 200 * time.Millisecond
	f := newFixtureWith(t, func(o *destinations.Options) {
		o.Client = destinations.NewClient(destinations.ClientOptions{
			URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, Timeout: timeout})
	}, time.Millisecond)
	release := make(chan struct{})
	r := newReceiver(t, nil)
	r.answer = func(n int, w http.ResponseWriter) {
		if n == 0 {
			<-release
		}
	}
	t.Cleanup(func() { close(release) }) // before the server closes, which waits for handlers
	d := f.connect(t, r, "vip")
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	eventually(t, "delivered after the timeout", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 1 })
	c, _ := f.store.Cursor(ctx, d.ID)
	if c.Delivered != 1 || c.FailedTries != 1 {
		t.Fatalf("cursor %+v", c)
	}
	log, err := f.m.Deliveries(ctx, d.ID, 0, 10)
	if err != nil || len(log) != 2 {
		t.Fatalf("delivery log %+v, %v", log, err)
	}
	first := log[1]
	if first.Status != 0 || !strings.HasPrefix(first.Error, "no answer: ") || !strings.Contains(strings.ToLower(first.Error), "timeout") {
		t.Fatalf("the hanging attempt: status %d, error %q; want no answer, a timeout", first.Status, first.Error)
	}
	if first.Duration < timeout || first.Duration > 5*time.Second {
		t.Fatalf("the hanging attempt took %v, want the %v timeout (at most 5 s)", first.Duration, timeout)
	}
	if got := r.requests(); len(got) != 2 || got[0].id != got[1].id {
		t.Fatalf("requests %+v", got)
	}
}

// TestBigAnswerReadUpToCap: a receiver answering 50 MB is read up to
// MaxBody, then the connection is dropped: the receiver manages to write
// no more than the sockets' buffers hold, far below 50 MB (read to the
// end, it writes all of it).
func TestBigAnswerReadUpToCap(t *testing.T) {
	const size = 50 << 20
	var written atomic.Int64
	done := make(chan struct{})
	r := newReceiver(t, func(_ int, w http.ResponseWriter) {
		defer close(done)
		w.WriteHeader(http.StatusInternalServerError)
		chunk := make([]byte, 64<<10)
		for written.Load() < size { // until the client hangs up
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	r.secret = destinations.NewSecret()
	c := destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, MaxBody: 1 << 10})
	key, _ := destinations.ParseSecret(r.secret)
	start := time.Now()
	res := c.Send(context.Background(), r.srv.URL, [][]byte{key}, destinations.Message{ID: "msg_1", At: time.Now(), Body: []byte(`{}`)})
	if res.Status != 500 || len(res.Err) > 300 {
		t.Fatalf("result %d %q", res.Status, res.Err[:min(len(res.Err), 300)])
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver is still writing 10 s after the client returned: the connection was not dropped")
	}
	t.Logf("a 50 MB answer: failed in %v; the receiver wrote %d bytes before the client hung up", time.Since(start), written.Load())
	if w := written.Load(); w >= size/4 {
		t.Fatalf("the receiver wrote %d of its %d bytes: the answer was read past the cap", w, size)
	}
}

// TestRetryAfterOn5xx (a fake clock): the wait before a retry is the
// schedule's step, or the Retry-After a 429 or 5xx asked for when longer
// (seconds or an HTTP date); another status's Retry-After is ignored.
// The retry comes at that time, not before.
func TestRetryAfterOn5xx(t *testing.T) {
	const step = time.Minute
	tests := []struct {
		name   string
		status int
		header func() string // the Retry-After, made when answering
		// want is the wait; slack allows for an HTTP date's whole
		// seconds, read against the real clock when the answer arrives.
		want, slack time.Duration
	}{
		{"503 longer than the step", http.StatusServiceUnavailable, func() string { return "120" }, 120 * time.Second, 0},
		{"503 shorter than the step", http.StatusServiceUnavailable, func() string { return "5" }, step, 0},
		{"503 an HTTP date", http.StatusServiceUnavailable,
			func() string { return time.Now().Add(100 * time.Second).UTC().Format(http.TimeFormat) }, 100 * time.Second, 10 * time.Second},
		{"500 longer than the step", http.StatusInternalServerError, func() string { return "90" }, 90 * time.Second, 0},
		{"429 longer than the step", http.StatusTooManyRequests, func() string { return "150" }, 150 * time.Second, 0},
		{"400 ignores it", http.StatusBadRequest, func() string { return "120" }, step, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			// Signed timestamps stay within the reference library's five
			// minutes of the real time.
			now, advance := fakeClock(-2 * time.Minute)
			f := newFixtureWith(t, func(o *destinations.Options) { o.Now = now }, step, step)
			r := newReceiver(t, nil)
			r.answer = func(n int, w http.ResponseWriter) {
				if n == 0 {
					w.Header().Set("Retry-After", tc.header())
					w.WriteHeader(tc.status)
				}
			}
			d := f.connect(t, r, "vip")
			f.feed.add("vip", "p1", segments.Entered)
			f.m.Wake()
			var c *destinations.Cursor
			eventually(t, "the failure recorded", func() bool {
				c, _ = f.store.Cursor(ctx, d.ID)
				return c.Head != nil && c.Head.Attempts == 1
			})
			wait := c.Head.NextAt.Sub(now())
			if wait > tc.want || wait < tc.want-tc.slack {
				t.Fatalf("next attempt in %v, want %v (less at most %v)", wait, tc.want, tc.slack)
			}
			if c.Head.LastStatus != tc.status {
				t.Fatalf("head %+v", c.Head)
			}
			advance(wait - time.Second)
			f.m.Wake()
			time.Sleep(100 * time.Millisecond) // a step runs, and must not send
			if n := len(r.requests()); n != 1 {
				t.Fatalf("retried %v early (%d requests)", time.Second, n)
			}
			advance(time.Second)
			f.m.Wake()
			eventually(t, "the retry", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == 1 })
		})
	}
}

// syncBuffer is a bytes.Buffer a slog handler writes into from the
// workers while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines whose msg is msg.
func (s *syncBuffer) lines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestConsentDropsLogged: an entry withheld for want of consent is
// logged with its reason, the purpose, the sequence and the profile id
// (no identifier), by the worker and by a job (a resync) alike, as a
// suppression is.
func TestConsentDropsLogged(t *testing.T) {
	ctx := context.Background()
	logs := &syncBuffer{}
	purposes, _ := consent.NewPurposes(nil, nil)
	f := newFixtureWith(t, func(o *destinations.Options) {
		o.Log = slog.New(slog.NewJSONHandler(logs, nil))
		o.Purposes = purposes
		o.Consent = func(_ context.Context, profile, _ string, _ time.Time) (consent.Decision, error) {
			if profile == "p2" {
				return consent.Decision{Reason: consent.ReasonDenied}, nil
			}
			return consent.Decision{Allowed: true}, nil
		}
	})
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	if _, err := f.m.SetPurpose(ctx, d.ID, "analytics"); err != nil {
		t.Fatal(err)
	}
	f.feed.add("vip", "p1", segments.Entered)
	last := f.feed.add("vip", "p2", segments.Entered)
	f.m.Wake()
	eventually(t, "the cursor past both", func() bool { c, _ := f.store.Cursor(ctx, d.ID); return c.After == last })
	j, err := f.m.Resync(ctx, d.ID, "vip", "")
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, f, d.ID, j.ID); j.State != destinations.JobDone {
		t.Fatalf("job %+v", j)
	}
	got := logs.lines(t, "destinations: withheld")
	if len(got) != 2 {
		t.Fatalf("%d withheld lines, want the worker's and the job's: %v", len(got), got)
	}
	for i, wantJob := range []any{nil, j.ID} {
		l := got[i]
		if l["reason"] != consent.ReasonDenied || l["purpose"] != "analytics" || l["profile"] != "p2" || l["destination"] != d.ID ||
			l["sequence"] == nil || l["job"] != wantJob {
			t.Errorf("line %d: %v, want reason denied, purpose, sequence, profile p2, job %v", i, l, wantJob)
		}
	}
	if got := r.requests(); len(got) != 2 || got[0].msg.Data.Profile != "p1" || got[1].msg.Data.Profile != "p1" {
		t.Fatalf("sent %+v, want p1's entry and its resync", got)
	}
}

// TestDefaultJitterSpreadsRetries (a fake clock): with the default
// jitter, destinations failing together retry within ±20% of the step,
// not all at the same time.
func TestDefaultJitterSpreadsRetries(t *testing.T) {
	ctx := context.Background()
	const step = time.Minute
	now, _ := fakeClock(0)
	f := newFixtureWith(t, func(o *destinations.Options) { o.Now, o.Jitter = now, 0 }, step)
	var ids []string
	for range 8 {
		r := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
		ids = append(ids, f.connect(t, r, "vip").ID)
	}
	f.feed.add("vip", "p1", segments.Entered)
	f.m.Wake()
	waits := map[time.Duration]bool{}
	for _, id := range ids {
		var c *destinations.Cursor
		eventually(t, "a failure recorded", func() bool { c, _ = f.store.Cursor(ctx, id); return c.Head != nil && c.Head.Attempts == 1 })
		wait := c.Head.NextAt.Sub(now())
		if wait < step*8/10 || wait > step*12/10 {
			t.Fatalf("a retry in %v, want within ±20%% of %v", wait, step)
		}
		waits[wait] = true
	}
	if len(waits) < 2 {
		t.Fatalf("8 destinations all retry in %v", waits)
	}
}
