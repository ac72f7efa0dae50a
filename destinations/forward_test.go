package destinations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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

func newForwarderFixture(t *testing.T, n int) *forwarderFixture {
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
	f := newForwarderFixture(t, n)
	ctx := context.Background()
	eventually(t, "the entries", func() bool { _, m := f.api.counts(); return m == 2*n })
	f.resetCalls()
	j, err := f.m.Resync(ctx, f.d.ID, "")
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
