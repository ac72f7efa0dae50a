package destinations_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

// addTrait appends a computed trait's change record at time at.
func (f *feed) addTrait(trait, profile string, prev, value *segments.Value, at time.Time) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := uint64(len(f.recs) + 1)
	f.recs = append(f.recs, &segments.ChangeRecord{Sequence: seq, Trait: trait, Version: 2, Profile: profile,
		Direction: segments.Changed, Reason: segments.ReasonData, Time: at, Previous: prev, Value: value})
	return seq
}

// traitMessage is a trait.changed body as a receiver reads it.
type traitMessage struct {
	id   string                     // webhook-id
	Type string                     `json:"type"`
	Data map[string]json.RawMessage `json:"data"`
}

// awaitCursor waits for the destination's cursor to pass sequence last.
func (f *fixture) awaitCursor(t *testing.T, id string, last uint64) {
	t.Helper()
	f.m.Wake()
	eventually(t, "the cursor passes every record", func() bool {
		c, err := f.m.Cursor(context.Background(), id)
		return err == nil && c.After == last
	})
}

// messages renders every message the receiver got with line.
func (r *receiver) messages(t *testing.T, line func(m traitMessage) string) []string {
	t.Helper()
	var out []string
	for _, rec := range r.requests() {
		m := traitMessage{id: rec.id}
		if err := json.Unmarshal(rec.body, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, line(m))
	}
	return out
}

// A connected computed trait's changes go out as signed trait.changed
// messages (the receiver verifies each with the reference library), in
// sequence order with the segments' messages; those of traits not
// connected (one with a connected segment's key included), recorded
// before the connection, or after the disconnection do not.
func TestTraitChangedDelivered(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	f.feed.addTrait("ltv", "p1", nil, num(1), time.Now().Add(-time.Hour)) // before the connection
	d, err := f.m.ConnectTrait(ctx, d.ID, "ltv")
	if err != nil || !slices.Equal(d.TraitKeys(), []string{"ltv"}) || !slices.Equal(d.SegmentKeys(), []string{"vip"}) {
		t.Fatalf("ConnectTrait = %+v, %v", d, err)
	}
	when := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	now := time.Now().UTC()
	f.feed.addTrait("ltv", "p1", nil, num(3), now)
	f.feed.addTrait("other", "p1", nil, num(3), now)
	f.feed.addTrait("vip", "p1", nil, num(3), now) // a trait, not the segment
	f.feed.add("vip", "p1", segments.Entered)
	f.feed.addTrait("ltv", "p1", num(3), &segments.Value{Type: "timestamp", Time: when}, now)
	f.feed.addTrait("ltv", "p1", &segments.Value{Type: "timestamp", Time: when}, &segments.Value{Type: "string", String: "gold"}, now)
	f.feed.addTrait("ltv", "p1", &segments.Value{Type: "string", String: "gold"}, &segments.Value{Type: "boolean"}, now)
	f.awaitCursor(t, d.ID, f.feed.addTrait("ltv", "p1", &segments.Value{Type: "boolean"}, nil, now))
	got := r.messages(t, func(m traitMessage) string {
		if m.id != destinations.MessageID(d.ID, mustUint(t, m.Data["sequence"])) {
			t.Errorf("webhook-id %q for %s", m.id, m.Data["sequence"])
		}
		if m.Type != destinations.TypeTraitChanged {
			return m.Type
		}
		return string(m.Data["trait"]) + " " + string(m.Data["previous"]) + "→" + string(m.Data["value"]) + " v" + string(m.Data["version"]) +
			" " + string(m.Data["profile"]) + " " + string(m.Data["reason"]) + " #" + string(m.Data["sequence"])
	})
	want := []string{
		`"ltv" null→3 v2 "p1" "data" #2`,
		"segment.entered",
		`"ltv" 3→"2026-05-01T10:00:00Z" v2 "p1" "data" #6`,
		`"ltv" "2026-05-01T10:00:00Z"→"gold" v2 "p1" "data" #7`,
		`"ltv" "gold"→false v2 "p1" "data" #8`,
		`"ltv" false→null v2 "p1" "data" #9`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("messages\n%q\nwant\n%q", got, want)
	}
	if d, err = f.m.DisconnectTrait(ctx, d.ID, "ltv"); err != nil || len(d.TraitKeys()) != 0 {
		t.Fatalf("DisconnectTrait = %+v, %v", d, err)
	}
	f.awaitCursor(t, d.ID, f.feed.addTrait("ltv", "p1", nil, num(4), time.Now().UTC()))
	if n := len(r.requests()); n != len(want) {
		t.Errorf("%d messages after disconnecting, want %d", n, len(want))
	}
}

func num(x float64) *segments.Value { return &segments.Value{Type: "number", Number: x} }

func mustUint(t *testing.T, raw json.RawMessage) uint64 {
	t.Helper()
	var n uint64
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Connecting a trait refuses bad input naming the field: a missing or
// malformed key, an unknown destination.
func TestConnectTraitRefuses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r)
	for _, tc := range []struct {
		dest, trait, field string
		kind               graph.Kind
	}{
		{d.ID, "missing", "trait", graph.KindInvalid},
		{d.ID, "", "trait", graph.KindInvalid},
		{d.ID, "a b", "trait", graph.KindInvalid},
		{"dst_nope", "ltv", "", graph.KindNotFound},
	} {
		_, err := f.m.ConnectTrait(ctx, tc.dest, tc.trait)
		var ge *graph.Error
		if graph.ErrorKind(err) != tc.kind || tc.field != "" && (!errors.As(err, &ge) || ge.Field != tc.field) {
			t.Errorf("ConnectTrait(%q, %q) = %v, want %s naming %q", tc.dest, tc.trait, err, tc.kind, tc.field)
		}
	}
}

// A destination with a purpose is sent a computed value only for a
// profile whose consent is granted, as an entry; a value going missing
// goes always, as an exit does.
func TestTraitChangeNeedsConsent(t *testing.T) {
	ctx := context.Background()
	purposes, _ := consent.NewPurposes(nil, nil)
	check := func(_ context.Context, profile, _ string, _ time.Time) (consent.Decision, error) {
		if profile == "ann" {
			return consent.Decision{Allowed: true, State: consent.Granted}, nil
		}
		return consent.Decision{State: consent.Denied, Reason: consent.ReasonDenied}, nil
	}
	f := newFixtureWith(t, func(o *destinations.Options) { o.Consent, o.Purposes = check, purposes })
	r := newReceiver(t, ok)
	d := f.connect(t, r)
	if _, err := f.m.ConnectTrait(ctx, d.ID, "ltv"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.SetPurpose(ctx, d.ID, "analytics"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	f.feed.addTrait("ltv", "ann", nil, num(1), now)
	f.feed.addTrait("ltv", "bob", nil, num(2), now)
	f.awaitCursor(t, d.ID, f.feed.addTrait("ltv", "bob", num(2), nil, now))
	got := r.messages(t, func(m traitMessage) string { return string(m.Data["profile"]) + " " + string(m.Data["value"]) })
	if want := []string{`"ann" 1`, `"bob" null`}; !slices.Equal(got, want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
	if c, _ := f.m.Cursor(ctx, d.ID); c.Withheld[consent.ReasonDenied] != 1 {
		t.Errorf("withheld %v, want one denied", c.Withheld)
	}
}

// An erased person's computed value goes out as profile.erased, with the
// trait's data and no value.
func TestErasedTraitIsProfileErased(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := newReceiver(t, ok)
	d := f.connect(t, r)
	if _, err := f.m.ConnectTrait(ctx, d.ID, "ltv"); err != nil {
		t.Fatal(err)
	}
	f.feed.addTrait("ltv", "p1", nil, num(1), time.Now().UTC())
	f.feed.mu.Lock()
	f.feed.recs = append(f.feed.recs, &segments.ChangeRecord{Sequence: 2, Trait: "ltv", Version: 2, Profile: "p1",
		Direction: segments.Changed, Reason: segments.ReasonErased, Time: time.Now().UTC()})
	f.feed.mu.Unlock()
	f.awaitCursor(t, d.ID, 2)
	got := r.messages(t, func(m traitMessage) string {
		return m.Type + " " + string(m.Data["trait"]) + " " + string(m.Data["previous"]) + "→" + string(m.Data["value"]) + " " + string(m.Data["reason"])
	})
	if want := []string{`trait.changed "ltv" null→1 "data"`, `profile.erased "ltv" null→null "erased"`}; !slices.Equal(got, want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
}

// A forwarder refuses a segment and a computed trait of one key, whichever
// is connected second (both would set traits.<key> at the receiver),
// naming the field and writing nothing; a webhook takes both.
func TestForwarderRefusesSharedKey(t *testing.T) {
	ctx := context.Background()
	ff := newForwarderFixture(t, 0, 1) // connected to the segment vip
	if _, err := ff.m.ConnectTrait(ctx, ff.d.ID, "ltv"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field   string
		connect func() (*destinations.Destination, error)
	}{
		{"trait", func() (*destinations.Destination, error) { return ff.m.ConnectTrait(ctx, ff.d.ID, "vip") }},
		{"segment", func() (*destinations.Destination, error) { return ff.m.Connect(ctx, ff.d.ID, "ltv") }},
	} {
		_, err := tc.connect()
		var ge *graph.Error
		if graph.ErrorKind(err) != graph.KindInvalid || !errors.As(err, &ge) || ge.Field != tc.field || !strings.Contains(ge.Msg, "traits.") {
			t.Errorf("connecting the %s of a key taken: %v, want invalid naming %s and the trait it would set", tc.field, err, tc.field)
		}
	}
	if d, err := ff.m.Get(ctx, ff.d.ID); err != nil || !slices.Equal(d.SegmentKeys(), []string{"vip"}) || !slices.Equal(d.TraitKeys(), []string{"ltv"}) {
		t.Errorf("after the refusals the forwarder has segments %v and traits %v (%v), want vip and ltv", d.SegmentKeys(), d.TraitKeys(), err)
	}
	d := ff.connect(t, newReceiver(t, ok), "vip")
	if _, err := ff.m.ConnectTrait(ctx, d.ID, "vip"); err != nil {
		t.Errorf("a webhook refused a trait of its segment's key: %v", err)
	}
}
