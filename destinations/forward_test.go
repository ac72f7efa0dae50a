package destinations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
)

// segmentAPI is a Segment-compatible receiver that keeps the messages of
// every batch posted to its /v1/batch.
type segmentAPI struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	messages []map[string]any
	// fail is how many requests to answer 503 before accepting; ids are
	// the message ids of every request, failed ones too.
	fail int
	ids  [][]string
}

func newSegmentAPI(t *testing.T) *segmentAPI {
	t.Helper()
	a := &segmentAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b struct {
			Batch []map[string]any `json:"batch"`
		}
		if req.URL.Path != "/v1/batch" || json.NewDecoder(req.Body).Decode(&b) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		var ids []string
		for _, m := range b.Batch {
			ids = append(ids, fmt.Sprint(m["messageId"]))
		}
		a.ids = append(a.ids, ids)
		if a.fail > 0 {
			a.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		a.requests++
		a.messages = append(a.messages, b.Batch...)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *segmentAPI) counts() (requests, messages int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests, len(a.messages)
}

// forwarderFixture runs a manager whose profile reads are counted, over
// n profiles with a user ID each, members of vip, and a forwarder to a
// Segment-compatible receiver connected to vip.
type forwarderFixture struct {
	*fixture
	api   *segmentAPI
	d     *destinations.Destination
	mu    sync.Mutex
	calls map[string]int
}

func (f *forwarderFixture) resetCalls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = map[string]int{}
	return out
}

// newForwarderFixture makes the fixture; a batch size above 1 is set
// before the records, which the forwarder is disabled while they are
// written, so they are batched as full as the size allows.
func newForwarderFixture(t *testing.T, n, batchSize int) *forwarderFixture {
	t.Helper()
	ctx := context.Background()
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ff := &forwarderFixture{api: newSegmentAPI(t), calls: map[string]int{}}
	count := func(m string) { ff.mu.Lock(); ff.calls[m]++; ff.mu.Unlock() }
	ff.fixture = newFixtureOn(t, s, func(o *destinations.Options) {
		o.Sent, o.Profiles = s.SentState(), graph.CountingReader{R: s, Count: count}
	})
	if ff.d, err = ff.m.CreateForwarder(ctx, "segment", ff.api.srv.URL, "write-key", []string{"vip"}); err != nil {
		t.Fatal(err)
	}
	if batchSize > 1 {
		if _, err := ff.m.SetBatchSize(ctx, ff.d.ID, batchSize); err != nil {
			t.Fatal(err)
		}
		if _, err := ff.m.SetEnabled(ctx, ff.d.ID, false); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if ff.d, err = ff.m.SetEnabled(ctx, ff.d.ID, true); err != nil {
				t.Fatal(err)
			}
		}()
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		k := graph.Key{Type: graph.TypeUserID, Value: fmt.Sprintf("u%04d", i)}
		if _, err := st.Ingest(ctx, []*graph.Observation{{MessageID: k.Value, Time: at, Identifiers: []graph.Key{k}, Event: graph.Event{Type: "identify"}}}); err != nil {
			t.Fatal(err)
		}
		id, err := s.Identifier(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		ff.feed.add("vip", id.Profile, segments.Entered)
	}
	return ff
}

// TestForwarderReadsProfilesPerPage: a forwarder's resync reads the
// profiles and identifiers of a page of messages with one GetProfiles and
// one IdentifiersOf call, not one per message, and still addresses each
// message by its profile's user ID.
func TestForwarderReadsProfilesPerPage(t *testing.T) {
	const n = 250 // three pages of a job
	f := newForwarderFixture(t, n, 1)
	ctx := context.Background()
	eventually(t, "the entries", func() bool { _, m := f.api.counts(); return m == 2*n })
	f.resetCalls()
	j, err := f.m.Resync(ctx, f.d.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, f.fixture, f.d.ID, j.ID); j.State != destinations.JobDone || j.Done != n {
		t.Fatalf("job %+v", j)
	}
	calls := f.resetCalls()
	t.Logf("a resync of %d members to a forwarder: %v", n, calls)
	pages := (n + 99) / 100
	if calls["GetProfiles"] > pages || calls["IdentifiersOf"] > pages || calls["Profile"] > 0 {
		t.Errorf("a resync of %d members read %v, want at most %d GetProfiles and IdentifiersOf (one per page) and no Profile", n, calls, pages)
	}
	requests, messages := f.api.counts()
	if messages != 4*n {
		t.Fatalf("%d messages in %d requests, want %d", messages, requests, 4*n)
	}
	f.api.mu.Lock()
	defer f.api.mu.Unlock()
	for _, m := range f.api.messages[2*n:] {
		if m["userId"] == "" || m["userId"] == nil {
			t.Fatalf("a resync message without a user ID: %v", m)
		}
	}
}

// TestForwarderBatches: a forwarder with a batch size sends up to that
// many changes' messages per /v1/batch call, each message with the id it
// has when sent alone; a refused call is sent again whole with the same
// ids; what is sent is recorded in the sent state.
func TestForwarderBatches(t *testing.T) {
	const n, size = 120, 50
	f := newForwarderFixture(t, n, size)
	f.api.mu.Lock()
	f.api.fail = 1
	f.api.mu.Unlock()
	ctx := context.Background()
	eventually(t, "the entries delivered", func() bool { c, err := f.m.Cursor(ctx, f.d.ID); return err == nil && c.After == n })
	f.api.mu.Lock()
	defer f.api.mu.Unlock()
	var sizes []int
	for _, ids := range f.api.ids {
		sizes = append(sizes, len(ids))
	}
	if !slices.Equal(sizes, []int{2 * size, 2 * size, 2 * size, 2 * (n - 2*size)}) {
		t.Fatalf("messages per call %v, want a refused call of %d sent again, then %d and %d", sizes, 2*size, 2*size, 2*(n-2*size))
	}
	if !slices.Equal(f.api.ids[0], f.api.ids[1]) {
		t.Fatalf("the retried call carried other ids")
	}
	seen := map[string]bool{}
	for _, m := range f.api.messages {
		id := fmt.Sprint(m["messageId"])
		if seen[id] || m["userId"] == nil {
			t.Fatalf("message %v repeated or without a user ID", m)
		}
		seen[id] = true
	}
	if want := destinations.MessageID(f.d.ID, 1) + "_identify"; f.api.ids[0][0] != want {
		t.Fatalf("the first message's id is %s, want %s (as when sent alone)", f.api.ids[0][0], want)
	}
	c, err := f.m.Cursor(ctx, f.d.ID)
	if err != nil || c.Delivered != n || c.Head != nil {
		t.Fatalf("cursor %+v, %v", c, err)
	}
	p := fmt.Sprint(f.api.messages[len(f.api.messages)-1]["properties"].(map[string]any)["idgraph_profile"])
	if s, err := f.m.SentState(ctx, f.d.ID, p); err != nil || s == nil || !s.Segments["vip"].In {
		t.Fatalf("the sent state of %s: %+v, %v", p, s, err)
	}
}

// TestForwarderMergeValueNeedsConsent: on a destination with a purpose, a
// merge's null reaches the absorbed profile's IDs always, but the
// survivor's value is sent again after it only while the survivor's
// consent allows it, as a new value would be.
func TestForwarderMergeValueNeedsConsent(t *testing.T) {
	ctx := context.Background()
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var denied sync.Map // profile → true
	purposes, _ := consent.NewPurposes(nil, nil)
	check := func(_ context.Context, profile, _ string, _ time.Time) (consent.Decision, error) {
		if _, ok := denied.Load(profile); ok {
			return consent.Decision{State: consent.Denied, Reason: consent.ReasonDenied}, nil
		}
		return consent.Decision{Allowed: true, State: consent.Granted}, nil
	}
	f := newFixtureOn(t, s, func(o *destinations.Options) {
		o.Sent, o.Profiles, o.Consent, o.Purposes = s.SentState(), s, check, purposes
	})
	api := newSegmentAPI(t)
	d, err := f.m.CreateForwarder(ctx, "segment", api.srv.URL, "write-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = f.m.ConnectTrait(ctx, d.ID, "ltv"); err != nil {
		t.Fatal(err)
	}
	if _, err = f.m.SetPurpose(ctx, d.ID, "analytics"); err != nil {
		t.Fatal(err)
	}
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ingest := func(ids ...graph.Key) string {
		if _, err := st.Ingest(ctx, []*graph.Observation{{MessageID: fmt.Sprint(ids), Time: time.Now().UTC(), Identifiers: ids, Event: graph.Event{Type: "identify"}}}); err != nil {
			t.Fatal(err)
		}
		n, err := s.Identifier(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		return n.Profile
	}
	u, v := ingest(graph.Key{Type: graph.TypeUserID, Value: "cu1"}), ingest(graph.Key{Type: "anonymous_id", Value: "ca1"})
	f.feed.addTrait("ltv", u, nil, num(3), time.Now().UTC())
	f.awaitCursor(t, d.ID, f.feed.addTrait("ltv", v, nil, num(5), time.Now().UTC()))
	ingest(graph.Key{Type: "anonymous_id", Value: "ca1"}, graph.Key{Type: graph.TypeUserID, Value: "cu1"})
	p, err := s.Profile(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	gone, survivor := v, p.MergedInto
	if survivor == "" {
		gone, survivor = u, v
	}
	denied.Store(survivor, true)
	f.feed.mu.Lock()
	seq := uint64(len(f.feed.recs) + 1)
	f.feed.recs = append(f.feed.recs, &segments.ChangeRecord{Sequence: seq, Trait: "ltv", Version: 2, Profile: gone,
		Direction: segments.Changed, Reason: segments.ReasonMerged, Time: time.Now().UTC(), Previous: num(1)})
	f.feed.mu.Unlock()
	f.awaitCursor(t, d.ID, seq)
	api.mu.Lock()
	defer api.mu.Unlock()
	var got []string
	for _, m := range api.messages {
		got = append(got, fmt.Sprint(m["messageId"] == destinations.MessageID(d.ID, seq)+"_survivor", " ", m["traits"]))
	}
	if want := []string{"false map[ltv:3]", "false map[ltv:5]", "false map[ltv:<nil>]"}; !slices.Equal(got, want) {
		t.Fatalf("messages %q, want %q (no value sent again without consent)", got, want)
	}
}
