package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/suppression"
)

// statesHook runs before once, at the first StatesPage: a change recorded
// after a resync started, before it reads the states.
type statesHook struct {
	segments.Store
	once   sync.Once
	before func()
}

func (h *statesHook) StatesPage(ctx context.Context, after string, limit int) ([]*segments.ProfileState, error) {
	h.once.Do(h.before)
	return h.Store.StatesPage(ctx, after, limit)
}

// webhookLog keeps the messages a webhook receives, a batch's each, as
// "type profile previous→value reason sequence", and the webhook-id of
// the request that carried each.
type webhookLog struct {
	srv *httptest.Server
	kept
}

func newWebhookLog(t *testing.T) *webhookLog {
	l := &webhookLog{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		type message struct {
			Type string                     `json:"type"`
			Data map[string]json.RawMessage `json:"data"`
		}
		var m struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			t.Errorf("a webhook request: %v", err)
		}
		var ms []message
		if m.Type == destinations.TypeBatch {
			if err := json.Unmarshal(m.Data, &ms); err != nil {
				t.Errorf("a webhook batch: %v", err)
			}
		} else {
			ms = []message{{Type: m.Type}}
			if err := json.Unmarshal(m.Data, &ms[0].Data); err != nil {
				t.Errorf("a webhook message: %v", err)
			}
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, m := range ms {
			var profile string
			_ = json.Unmarshal(m.Data["profile"], &profile)
			l.lines = append(l.lines, fmt.Sprintf("%s %s %s→%s %s %s", m.Type, profile, m.Data["previous"], m.Data["value"], m.Data["reason"], m.Data["sequence"]))
			l.ids = append(l.ids, req.Header.Get("webhook-id"))
		}
	}))
	t.Cleanup(l.srv.Close)
	return l
}

// awaitJob waits for a job to finish and returns it.
func awaitJob(t *testing.T, m *destinations.Manager, destination, id string) *destinations.Job {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		js, err := m.Jobs(context.Background(), destination)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range js {
			if j.ID == id && j.Finished() {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not finish: %+v", id, js)
		}
		m.Wake()
	}
}

// testResyncedTraits: a resync sends a forwarder one identify per profile
// with a value of the computed trait, and a webhook a trait.changed
// (reason resync, previous null, the job's asOfSequence), each the value
// at the job's point in time (one changed after it started is sent as it
// was, and its change follows); a profile whose identifier is suppressed
// or without consent for the destination's purpose gets none; one the
// destination holds a value of that has none now gets null. Ids derive
// from the job and the trait (a refused call is sent again with the same
// ones), the job counts every profile, and webhooks' deliveries of values
// are in their sent state (which the nulls come from). With a batch size,
// the same goes in batches: a webhook's under a batch id, a forwarder's
// in one call per page.
func testResyncedTraits(t *testing.T, g graph.Store, batchSize int) {
	ctx := context.Background()
	lists := &suppression.Lists{Store: graphtest.As[suppression.Backend](t, g).SuppressionLists(),
		Hasher: erase.NewHasher([]byte("test-pepper-0123456789abcdef")), Norm: graph.NewNormalizer("US")}
	purposes, _ := consent.NewPurposes(nil, nil)
	var denied sync.Map // profile → true
	var later func()    // a change once the resync has started
	var calls int       // the forwarder's calls before it
	f := newTraitForwarder(t, g, func(o *destinations.Options) {
		o.Suppression, o.Purposes = lists, purposes
		o.Consent = func(_ context.Context, profile, _ string, _ time.Time) (consent.Decision, error) {
			if _, ok := denied.Load(profile); ok {
				return consent.Decision{State: consent.Denied, Reason: consent.ReasonDenied}, nil
			}
			return consent.Decision{Allowed: true, State: consent.Granted}, nil
		}
		o.Segments = &statesHook{Store: o.Segments, before: func() { later() }}
	})
	wl := newWebhookLog(t)
	wh, _, err := f.m.Create(ctx, "wh", wl.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{f.d.ID, wh.ID} {
		if _, err := f.m.ConnectTrait(ctx, id, "ltv"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.SetPurpose(ctx, id, "analytics"); err != nil {
			t.Fatal(err)
		}
	}
	f.ingest("user_id:ta1")
	f.ingest("anonymous_id:tb1")
	f.ingest("user_id:tc1", "email:tc1@corp.io")
	f.ingest("user_id:td1")
	f.ingest("user_id:te1")
	ann, bob, cy, dee, eve := f.profile("user_id:ta1"), f.profile("anonymous_id:tb1"), f.profile("user_id:tc1"), f.profile("user_id:td1"), f.profile("user_id:te1")
	setValue(t, f.seg, ann, "ltv", &segments.Value{Type: "number", Number: 3}, segments.ReasonData)
	setValue(t, f.seg, bob, "ltv", &segments.Value{Type: "string", String: "gold"}, segments.ReasonData)
	setValue(t, f.seg, cy, "ltv", &segments.Value{Type: "number", Number: 5}, segments.ReasonData)
	setValue(t, f.seg, dee, "ltv", &segments.Value{Type: "number", Number: 7}, segments.ReasonData)
	f.settle()
	if rows, err := f.sent.SentOf(ctx, wh.ID, []string{ann}); err != nil || !rows[ann].Traits["ltv"].In {
		t.Fatalf("a webhook's delivered value is not in its sent state: %+v, %v", rows[ann], err)
	}
	// eve was told of a value long ago, with no change record left.
	for _, id := range []string{f.d.ID, wh.ID} {
		err := f.sent.UpdateSent(ctx, id, eve, func(s *destinations.Sent) (bool, error) {
			s.Apply(&segments.ChangeRecord{Sequence: 1, Trait: "ltv", Version: 1, Profile: eve, Direction: segments.Changed,
				Value: &segments.Value{Type: "number", Number: 1}}, []destinations.Identifier{{Type: "user_id", Value: "te1"}}, time.Now())
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lists.Add(ctx, suppression.Scope{Kind: suppression.Global}, []suppression.Input{{Type: "email", Value: "TC1@corp.io"}}); err != nil {
		t.Fatal(err)
	}
	denied.Store(dee, true)
	lines, _ := f.api.got()
	webhook, _ := wl.got()
	for _, id := range []string{f.d.ID, wh.ID} {
		if _, err := f.m.SetBatchSize(ctx, id, batchSize); err != nil {
			t.Fatal(err)
		}
	}
	f.api.mu.Lock()
	f.api.fail, calls = 1, len(f.api.calls)
	f.api.mu.Unlock()
	later = func() {
		setValue(t, f.seg, ann, "ltv", &segments.Value{Type: "number", Number: 9}, segments.ReasonData)
	}

	j, err := f.m.Resync(ctx, f.d.ID, "", "ltv")
	if err != nil || !slices.Equal(j.Traits, []string{"ltv"}) || len(j.Segments) != 0 {
		t.Fatalf("resync of ltv: %+v, %v", j, err)
	}
	j = awaitJob(t, f.m, f.d.ID, j.ID)
	jw, err := f.m.Resync(ctx, wh.ID, "", "") // everything connected: ltv
	if err != nil {
		t.Fatal(err)
	}
	jw = awaitJob(t, f.m, wh.ID, jw.ID)
	f.settle()
	for _, j := range []*destinations.Job{j, jw} {
		if j.State != destinations.JobDone || j.Done != 5 || j.Total != 5 {
			t.Errorf("job %+v, want done with 5 of 5 (4 values, one null)", j)
		}
	}

	after, ids := f.api.got()
	got := after[len(lines):]
	resynced := slices.Sorted(slices.Values(got[:min(len(got), 3)]))
	if !slices.Equal(resynced, []string{`/tb1 {"ltv":"gold"}`, `ta1/ {"ltv":3}`, `te1/ {"ltv":null}`}) || len(got) != 4 || got[3] != `ta1/ {"ltv":9}` {
		t.Errorf("the forwarder took %q after the resync, want ann's value as it was when the job started, bob's, null for eve, then ann's change during the job", got)
	}
	prefix := destinations.ResyncTraitMessageID(f.d.ID, j.ID, "ltv", "")
	for i, id := range ids[len(lines) : len(lines)+3] {
		if !strings.HasPrefix(id, prefix) || !strings.HasSuffix(id, "_identify") {
			t.Errorf("message %d of the resync has id %q, want %s<profile>_identify", i, id, prefix)
		}
	}
	f.api.mu.Lock()
	retried := f.api.calls[calls:]
	if len(retried) < 2 || !slices.Equal(retried[0], retried[1]) {
		t.Errorf("the refused call and its retry carried %q", retried)
	}
	f.api.mu.Unlock()

	var gotHook []string
	hook, hookIDs := wl.got()
	for i, m := range hook[len(webhook):] {
		if !strings.Contains(m, `"resync"`) {
			continue
		}
		gotHook = append(gotHook, m)
		profile := strings.Fields(m)[1]
		wantID := destinations.ResyncTraitMessageID(wh.ID, jw.ID, "ltv", profile)
		if batchSize > 1 {
			wantID = fmt.Sprintf("msg_%s_%s_batch_", wh.ID, jw.ID)
		}
		if id := hookIDs[len(webhook)+i]; !strings.HasPrefix(id, wantID) {
			t.Errorf("the webhook's resync message %q came under the id %q, want %s…", m, id, wantID)
		}
	}
	seq := fmt.Sprint(jw.AsOf)
	wantHook := []string{
		"trait.changed " + ann + ` null→9 "resync" ` + seq,
		"trait.changed " + bob + ` null→"gold" "resync" ` + seq,
		"trait.changed " + eve + ` null→null "resync" ` + seq,
	}
	if slices.Sort(gotHook); !slices.Equal(gotHook, slices.Sorted(slices.Values(wantHook))) {
		t.Errorf("the webhook's resync sent\n%q\nwant\n%q", gotHook, wantHook)
	}

	// The webhook's sent state of a value goes with the person: its
	// erasure sends the trait's profile.erased and the notice, and leaves
	// no row.
	before, _ := wl.got()
	if _, err := graphtest.As[erase.Backend](t, g).Erasure().ErasePerson(ctx, erase.Request{ID: "erasure-rt", Profile: bob, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	f.settle()
	erased, _ := wl.got()
	if got := erased[len(before):]; len(got) != 2 || !strings.HasPrefix(got[0], "profile.erased "+bob+` null→null "erased"`) || !strings.HasPrefix(got[1], "profile.erased "+bob) {
		t.Errorf("the webhook was sent %q on the erasure, want the trait's profile.erased, then the notice", got)
	}
	if rows, err := f.sent.SentTo(ctx, []string{bob}); err != nil || len(rows) > 0 {
		t.Errorf("sent state left after the erasure: %+v, %v", rows, err)
	}
}
