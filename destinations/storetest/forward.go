package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// segmentReceiver is a Segment-compatible /v1/batch that drops a message
// whose messageId it has taken (as Segment deduplicates) and keeps each
// other as "userId/anonymousId traits"; fail is how many calls to refuse
// (503) before taking them, and calls the message IDs of every call.
type segmentReceiver struct {
	srv   *httptest.Server
	kept  // mu also guards the fields below
	fail  int
	calls [][]string
	seen  map[string]bool
}

// kept is what a test receiver took: a line per message and the id it
// came under.
type kept struct {
	mu    sync.Mutex
	lines []string
	ids   []string
}

func (k *kept) got() (lines, ids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.lines), slices.Clone(k.ids)
}

func newSegmentReceiver(t *testing.T) *segmentReceiver {
	r := &segmentReceiver{seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b struct {
			Batch []struct {
				MessageID   string          `json:"messageId"`
				UserID      string          `json:"userId"`
				AnonymousID string          `json:"anonymousId"`
				Traits      json.RawMessage `json:"traits"`
			} `json:"batch"`
		}
		if err := json.NewDecoder(req.Body).Decode(&b); err != nil {
			t.Errorf("a forwarded batch: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		var call []string
		for _, m := range b.Batch {
			call = append(call, m.MessageID)
		}
		r.calls = append(r.calls, call)
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		for _, m := range b.Batch {
			if !r.seen[m.MessageID] {
				r.seen[m.MessageID] = true
				r.lines = append(r.lines, m.UserID+"/"+m.AnonymousID+" "+string(m.Traits))
				r.ids = append(r.ids, m.MessageID)
			}
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// setValue records a computed value change of a profile the way the
// engine does (nil: the value goes missing) and returns its sequence.
func setValue(t *testing.T, s segments.Store, profile, trait string, v *segments.Value, reason string) uint64 {
	t.Helper()
	ctx := context.Background()
	sts, err := s.States(ctx, []string{profile})
	if err != nil {
		t.Fatal(err)
	}
	st := &segments.ProfileState{Profile: profile}
	if len(sts) > 0 && sts[0] != nil {
		st = sts[0]
	}
	next := *st
	next.Entries = maps.Clone(st.Entries)
	if next.Entries == nil {
		next.Entries = map[string]segments.Entry{}
	}
	ref := segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: trait})
	delete(next.Entries, ref)
	if v != nil {
		next.Entries[ref] = segments.Entry{Version: 1, Value: v}
	}
	cs, err := s.SaveStates(ctx, []segments.Save{{State: &next, Reason: reason, At: time.Now().UTC()}})
	if err != nil || len(cs) != 1 {
		t.Fatalf("saving %s of %s: %v, %v", trait, profile, cs, err)
	}
	return cs[0].Sequence
}

// traitForwarder is a manager over a backend with a forwarder connected
// to the computed trait ltv and its Segment-compatible receiver.
type traitForwarder struct {
	t    *testing.T
	g    graph.Store
	seg  segments.Store
	sent destinations.SentStore
	m    *destinations.Manager
	d    *destinations.Destination
	api  *segmentReceiver
	n    int
}

func newTraitForwarder(t *testing.T, g graph.Store, edits ...func(*destinations.Options)) *traitForwarder {
	ctx := context.Background()
	f := &traitForwarder{t: t, g: g, seg: graphtest.As[segments.Backend](t, g).Segments(),
		sent: graphtest.As[destinations.SentBackend](t, g).SentState(), api: newSegmentReceiver(t)}
	segtest.Define(t, f.seg, lang.KindComputed, "ltv", "1")
	sealer, err := destinations.NewSealer([]byte("test-pepper-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	o := destinations.Options{
		Store: graphtest.As[destinations.Backend](t, g).Destinations(), Segments: f.seg, Sent: f.sent, Profiles: g, Sealer: sealer,
		Client:   destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, Timeout: 5 * time.Second}),
		Schedule: []time.Duration{time.Millisecond, time.Millisecond}, Jitter: -1, Poll: 10 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	for _, edit := range edits {
		edit(&o)
	}
	f.m, err = destinations.NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.m.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	if f.d, err = f.m.CreateForwarder(ctx, "fw", f.api.srv.URL, "write-key", nil); err != nil {
		t.Fatal(err)
	}
	if f.d, err = f.m.ConnectTrait(ctx, f.d.ID, "ltv"); err != nil || !slices.Equal(f.d.TraitKeys(), []string{"ltv"}) {
		t.Fatalf("connecting a computed trait to a forwarder: %+v, %v", f.d, err)
	}
	return f
}

// ingest stitches an identify carrying the identifiers (type:value).
func (f *traitForwarder) ingest(ids ...string) {
	f.n++
	o := graphtest.Obs(fmt.Sprintf("fw%d", f.n), time.Now().UTC(), ids...)
	o.Event = graph.Event{Type: "identify"}
	graphtest.Ingest(f.t, f.g, o)
}

func (f *traitForwarder) profile(id string) string { return graphtest.ProfileOf(f.t, f.g, id).ID }

// settle waits for the forwarder (and every other destination of the
// manager) to pass every record and pending request.
func (f *traitForwarder) settle() {
	t, ctx := f.t, context.Background()
	t.Helper()
	ds, err := f.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			last, err := f.seg.LastChange(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c, err := f.m.Cursor(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			pending, err := f.sent.PendingSent(ctx, d.ID, 1)
			if err != nil {
				t.Fatal(err)
			}
			if c.After == last && len(pending) == 0 {
				if c.DeadLettered > 0 {
					t.Fatalf("a dead letter: %+v", c)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not catch up: cursor %+v, last %d, pending %v", d.Name, c, last, pending)
			}
			f.m.Wake()
		}
	}
}

// testForwardedTraits: a forwarder connected to a computed trait sends
// each change of its value as an identify setting traits.ltv (null when
// missing), addressed as its segment messages are, under message IDs a
// refused call sends again. On a merge, the absorbed profile's IDs are
// sent null (they are the survivor's now: its old value would be stale)
// and the survivor's value is sent again after, to the IDs it went to;
// the erasure sends the values it sent back to null, by the IDs they went
// to, sends no value after, and leaves no sent state.
func testForwardedTraits(t *testing.T, g graph.Store) {
	ctx := context.Background()
	f := newTraitForwarder(t, g)
	api, seg, d := f.api, f.seg, f.d
	api.fail = 1
	f.ingest("user_id:fu1", "email:fu1@example.com")
	f.ingest("anonymous_id:fa1")
	user, visitor := f.profile("user_id:fu1"), f.profile("anonymous_id:fa1")
	first := setValue(t, seg, user, "ltv", &segments.Value{Type: "number", Number: 3}, segments.ReasonData)
	setValue(t, seg, visitor, "ltv", &segments.Value{Type: "string", String: "gold"}, segments.ReasonData)
	f.settle()

	f.ingest("anonymous_id:fa1", "user_id:fu1") // the visitor is the person
	survivor := f.profile("user_id:fu1")
	absorbed, held, cleared, restated := visitor, `{"ltv":3}`, "/fa1", "fu1/"
	if survivor == visitor {
		absorbed, held, cleared, restated = user, `{"ltv":"gold"}`, "fu1/", "/fa1"
	}
	merge := setValue(t, seg, absorbed, "ltv", nil, segments.ReasonMerged)
	f.settle()
	setValue(t, seg, survivor, "ltv", &segments.Value{Type: "number", Number: 8}, segments.ReasonData)
	f.settle()
	lines, ids := api.got()
	if _, err := graphtest.As[erase.Backend](t, g).Erasure().ErasePerson(ctx, erase.Request{ID: "erasure-fw", Profile: survivor, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	f.settle()

	want := []string{`fu1/ {"ltv":3}`, `/fa1 {"ltv":"gold"}`,
		cleared + ` {"ltv":null}`, restated + " " + held, // the merge
		`fu1/fa1 {"ltv":8}`}
	if !slices.Equal(lines, want) {
		t.Fatalf("before the erasure the receiver took\n%q\nwant\n%q", lines, want)
	}
	api.mu.Lock()
	if len(api.calls) < 2 || !slices.Equal(api.calls[0], api.calls[1]) || api.calls[0][0] != destinations.MessageID(d.ID, first)+"_identify" {
		t.Errorf("the refused call and its retry carried %q", api.calls)
	}
	api.mu.Unlock()
	if base := destinations.MessageID(d.ID, merge); ids[2] != base+"_identify" || ids[3] != base+"_survivor" {
		t.Errorf("the merge's message IDs %q, want %s_identify and _survivor", ids[2:4], base)
	}
	after, afterIDs := api.got()
	if got := after[len(lines):]; !slices.Equal(got, []string{`fu1/fa1 {"ltv":null}`}) || !strings.HasSuffix(afterIDs[len(ids)], "_traits_identify") {
		t.Errorf("after the erasure the receiver took %q (%q), want the value sent back to null by the IDs it went to", got, afterIDs[len(ids):])
	}
	if rows, err := f.sent.SentTo(ctx, []string{user, visitor}); err != nil || len(rows) > 0 {
		t.Errorf("sent state left after the erasure: %+v, %v", rows, err)
	}
}

// testForwardedTraitsBatched: in a batched call, a merge's message sends
// the survivor's value again as the call itself set it earlier, not the
// older value of the sent state, which the call has not updated yet.
func testForwardedTraitsBatched(t *testing.T, g graph.Store) {
	ctx := context.Background()
	f := newTraitForwarder(t, g)
	f.ingest("user_id:fu2")
	f.ingest("anonymous_id:fa2")
	user, visitor := f.profile("user_id:fu2"), f.profile("anonymous_id:fa2")
	setValue(t, f.seg, user, "ltv", &segments.Value{Type: "number", Number: 1}, segments.ReasonData)
	setValue(t, f.seg, visitor, "ltv", &segments.Value{Type: "number", Number: 5}, segments.ReasonData)
	f.settle()
	if _, err := f.m.SetBatchSize(ctx, f.d.ID, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.SetEnabled(ctx, f.d.ID, false); err != nil {
		t.Fatal(err)
	}
	f.ingest("anonymous_id:fa2", "user_id:fu2")
	survivor := f.profile("user_id:fu2")
	absorbed := map[bool]string{true: visitor, false: user}[survivor == user]
	setValue(t, f.seg, survivor, "ltv", &segments.Value{Type: "number", Number: 2}, segments.ReasonData)
	setValue(t, f.seg, absorbed, "ltv", nil, segments.ReasonMerged)
	if _, err := f.m.SetEnabled(ctx, f.d.ID, true); err != nil {
		t.Fatal(err)
	}
	f.settle()
	lines, _ := f.api.got()
	cleared := map[bool]string{true: "/fa2", false: "fu2/"}[survivor == user]
	want := []string{`fu2/ {"ltv":1}`, `/fa2 {"ltv":5}`, `fu2/fa2 {"ltv":2}`, cleared + ` {"ltv":null}`, `fu2/fa2 {"ltv":2}`}
	if !slices.Equal(lines, want) {
		t.Fatalf("the receiver took\n%q\nwant\n%q", lines, want)
	}
	f.api.mu.Lock()
	defer f.api.mu.Unlock()
	if n := len(f.api.calls); n != 3 {
		t.Errorf("%d calls, want the batch's one after two", n)
	}
}
