package segments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for the engine.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// fixture is a store, an engine over it and its clock.
type fixture struct {
	t     *testing.T
	g     graph.Store
	s     segments.Store
	e     *segments.Engine
	clock *clock
	defs  map[string]int // RefString → version
}

func newFixture(t *testing.T, open graphtest.Opener) *fixture {
	t.Helper()
	g := open(t)
	s := g.(segments.Backend).Segments()
	c := &clock{now: t0}
	return &fixture{t: t, g: g, s: s, clock: c, defs: map[string]int{},
		e: segments.NewEngine(g, s, segments.EngineOptions{Now: c.Now})}
}

// define saves (or edits) a definition and reloads the engine.
func (f *fixture) define(kind lang.Kind, key, src string) {
	f.t.Helper()
	ref := segments.Ref{Kind: kind, Key: key}
	d, err := f.s.PutDefinition(context.Background(), &segments.Definition{Kind: kind, Key: key, Source: src,
		Status: segments.Status{State: segments.StateLive}}, f.defs[segments.RefString(ref)])
	if err != nil {
		f.t.Fatalf("define %s: %v", key, err)
	}
	f.defs[segments.RefString(ref)] = d.Version
	if err := f.e.Load(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	if failed := f.e.Failed(); len(failed) > 0 {
		f.t.Fatalf("definitions failed: %v", failed)
	}
}

// track stores a track event seen with the identifiers; props is JSON.
func track(msg, name string, at time.Time, props string, ids ...string) *graph.Observation {
	o := graphtest.Obs(msg, at, ids...)
	o.Event = graph.Event{Type: "track", Name: name, Timestamp: at}
	if props != "" {
		o.Event.Properties = json.RawMessage(props)
	}
	return o
}

// ingest stores observations and returns the stitching result.
func (f *fixture) ingest(obs ...*graph.Observation) graph.Result {
	f.t.Helper()
	return graphtest.Ingest(f.t, f.g, obs...)
}

func (f *fixture) profile(id string) string {
	f.t.Helper()
	return graphtest.ProfileOf(f.t, f.g, id).ID
}

func (f *fixture) update(id string, ch segments.Change) []string {
	f.t.Helper()
	cs, err := f.e.Update(context.Background(), f.profile(id), ch)
	if err != nil {
		f.t.Fatalf("update %s: %v", id, err)
	}
	return describe(cs)
}

func (f *fixture) drain() []string {
	f.t.Helper()
	cs, err := f.e.Drain(context.Background())
	if err != nil {
		f.t.Fatalf("drain: %v", err)
	}
	return describe(cs)
}

// describe renders records without profile IDs (random) or sequences; a
// computed trait's change as "key changed vN reason previous→value".
func describe(cs []*segments.ChangeRecord) []string {
	var out []string
	for _, c := range cs {
		if c.IsTrait() {
			out = append(out, fmt.Sprintf("%s %s v%d %s %s→%s", c.Trait, c.Direction, c.Version, c.Reason, valueText(c.Previous), valueText(c.Value)))
			continue
		}
		out = append(out, fmt.Sprintf("%s %s v%d %s", c.Segment, c.Direction, c.Version, c.Reason))
	}
	return out
}

// valueText renders a computed value as its JSON scalar ("null": missing).
func valueText(v *segments.Value) string {
	b, _ := json.Marshal(v.Interface())
	return string(b)
}

func (f *fixture) state(id string) *segments.ProfileState {
	f.t.Helper()
	sts, err := f.s.States(context.Background(), []string{f.profile(id)})
	if err != nil {
		f.t.Fatal(err)
	}
	return sts[0]
}

func (f *fixture) computed(id, key string) any {
	f.t.Helper()
	return f.state(id).Entries[segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: key})].Value.Interface()
}

func want(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func eachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) { fn(t, newFixture(t, b.Open)) })
	}
}

// Only the definitions that read what changed are evaluated: a trait that
// changed unannounced is not seen until a change names it; in_segment
// dependents follow their dependency in the same save.
func TestOnlyDependentsEvaluated(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.define(lang.KindSegment, "buyer", `events("Order").exists()`)
		f.define(lang.KindSegment, "pro", `trait("plan") = "pro"`)
		f.define(lang.KindSegment, "pro_buyer", `in_segment("buyer") and in_segment("pro")`)
		f.ingest(track("m1", "Page", t0, "", "user_id:ann"))
		want(t, "first evaluation", f.update("user_id:ann", segments.Change{All: true}))
		pro := graphtest.Obs("m2", t0, "user_id:ann")
		pro.Event, pro.Traits = graph.Event{Type: "identify"}, map[string]any{"plan": "pro"}
		f.ingest(pro, track("m3", "Order", t0, "", "user_id:ann"))
		want(t, "an unrelated event", f.update("user_id:ann", segments.Change{Events: []string{"Page"}}))
		want(t, "an order", f.update("user_id:ann", segments.Change{Events: []string{"Order"}}), "buyer entered v1 data")
		want(t, "the plan", f.update("user_id:ann", segments.Change{Traits: []string{"plan"}}),
			"pro entered v1 data", "pro_buyer entered v1 data")
	})
}

// A profile leaves a windowed segment when the window passes, through the
// timer index alone; a computed windowed sum drops the event then too, and
// each new value is a change record (none while it stays).
func TestTimeAloneChangesMembership(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.define(lang.KindSegment, "recent", `events("Order").within(7d).exists()`)
		f.define(lang.KindComputed, "spend", `events("Order").within(7d).sum(prop("revenue"))`)
		f.define(lang.KindSegment, "not_recent", `not in_segment("recent")`)
		f.ingest(track("m1", "Order", t0, `{"revenue": 30}`, "user_id:ann"),
			track("m2", "Order", t0.Add(48*time.Hour), `{"revenue": 12.5}`, "user_id:ann"))
		f.clock.Set(t0.Add(72 * time.Hour))
		want(t, "orders", f.update("user_id:ann", segments.Change{Events: []string{"Order"}}),
			"spend changed v1 data null→42.5", "recent entered v1 data")
		if got := f.computed("user_id:ann", "spend"); got != 42.5 {
			t.Errorf("spend %v, want 42.5", got)
		}
		steps := []struct {
			at    time.Duration
			spend any
			want  []string
		}{
			{7*24*time.Hour - time.Nanosecond, 42.5, nil},
			{7 * 24 * time.Hour, 12.5, []string{"spend changed v1 time 42.5→12.5"}},
			{9*24*time.Hour - time.Nanosecond, 12.5, nil},
			{9 * 24 * time.Hour, 0.0, []string{"spend changed v1 time 12.5→0", "not_recent entered v1 time", "recent exited v1 time"}},
		}
		for _, st := range steps {
			f.clock.Set(t0.Add(st.at))
			want(t, fmt.Sprintf("drain at +%s", st.at), f.drain(), st.want...)
			if got := f.computed("user_id:ann", "spend"); got != st.spend {
				t.Errorf("spend at +%s: %v, want %v", st.at, got, st.spend)
			}
		}
		if ts, err := f.s.DueTimers(context.Background(), t0.Add(1000*24*time.Hour), 10); err != nil || len(ts) != 0 {
			t.Errorf("timers left once nothing can change: %v %v", ts, err)
		}
	})
}

// On a merge the absorbed profile exits with profile_merged, and the
// survivor enters only if it was not a member already.
func TestMergeExitsAbsorbed(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.define(lang.KindSegment, "buyer", `events("Order").exists()`)
		f.define(lang.KindSegment, "big", `events("Order").count() >= 2`)
		f.ingest(track("m1", "Order", t0, "", "user_id:ann"))
		f.ingest(track("m2", "Order", t0.Add(time.Minute), "", "anonymous_id:a1"))
		f.clock.Set(t0.Add(2 * time.Hour))
		want(t, "ann", f.update("user_id:ann", segments.Change{All: true}), "buyer entered v1 data")
		want(t, "a1", f.update("anonymous_id:a1", segments.Change{All: true}), "buyer entered v1 data")
		absorbed := f.profile("anonymous_id:a1")
		if r := f.ingest(track("m3", "Page", t0.Add(time.Hour), "", "user_id:ann", "anonymous_id:a1")); r.Merges != 1 {
			t.Fatalf("%d merges, want 1", r.Merges)
		}
		got := f.update("user_id:ann", segments.Change{Events: []string{"Page"}})
		want(t, "merge", got, "buyer exited v1 profile_merged", "big entered v1 profile_merged")
		sts, err := f.s.States(context.Background(), []string{absorbed})
		if err != nil || len(sts[0].Entries) != 0 {
			t.Errorf("absorbed profile keeps entries %v (%v)", sts[0].Entries, err)
		}
		// Updating through the absorbed ID reaches the survivor.
		want(t, "absorbed ID", f.update("anonymous_id:a1", segments.Change{All: true}))
		cs, err := f.s.Changes(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Direction == segments.Exited && c.Profile != absorbed {
				t.Errorf("the survivor exited: %+v", c)
			}
		}
	})
}

// A redelivered messageId is dropped by the store, so it changes nothing,
// even with another payload and timestamp.
func TestRedeliveryChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.define(lang.KindComputed, "spend", `events("Order").sum(prop("revenue"))`)
		f.define(lang.KindSegment, "whale", `events("Order").sum(prop("revenue")) > 100`)
		f.ingest(track("m1", "Order", t0, `{"revenue": 100}`, "user_id:ann"))
		f.update("user_id:ann", segments.Change{Events: []string{"Order"}})
		if r := f.ingest(track("m1", "Order", t0.Add(time.Hour), `{"revenue": 500}`, "user_id:ann")); r.Duplicates != 1 {
			t.Fatalf("redelivery: %+v, want a duplicate", r)
		}
		want(t, "redelivery", f.update("user_id:ann", segments.Change{Events: []string{"Order"}}))
		if got := f.computed("user_id:ann", "spend"); got != 100.0 {
			t.Errorf("spend %v after a redelivery, want 100", got)
		}
	})
}

// An edited definition's entries are evaluated again at the next update
// (reason definition); a deleted one's are dropped.
func TestDefinitionEdits(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.define(lang.KindSegment, "buyer", `events("Order").exists()`)
		f.define(lang.KindSegment, "big", `events("Order").count() >= 2`)
		f.ingest(track("m1", "Order", t0, "", "user_id:ann"))
		want(t, "first", f.update("user_id:ann", segments.Change{All: true}), "buyer entered v1 data")
		f.define(lang.KindSegment, "big", `events("Order").count() >= 1`)
		want(t, "after the edit", f.update("user_id:ann", segments.Change{Events: []string{"Page"}}), "big entered v2 definition")
		f.define(lang.KindSegment, "big_buyer", `in_segment("big") and in_segment("buyer")`)
		want(t, "a new segment", f.update("user_id:ann", segments.Change{Events: []string{"Page"}}), "big_buyer entered v1 definition")
		err := f.e.Delete(context.Background(), segments.Ref{Kind: lang.KindSegment, Key: "big"}, 2)
		if graph.ErrorKind(err) != graph.KindConflict || !strings.Contains(err.Error(), "segment:big_buyer") {
			t.Errorf("deleting a segment another reads: %v, want a conflict naming segment:big_buyer", err)
		}
		for _, key := range []string{"big_buyer", "buyer"} {
			if err := f.e.Delete(context.Background(), segments.Ref{Kind: lang.KindSegment, Key: key}, 1); err != nil {
				t.Fatal(err)
			}
		}
		want(t, "after the deletes", f.update("user_id:ann", segments.Change{Events: []string{"Page"}}),
			"big_buyer exited v1 definition", "buyer exited v1 definition")
	})
}

// Data changes are durable with the events: a process that stops after
// ingesting and before evaluating (here, a store closed and opened again
// and an engine with no memory) evaluates them when it catches up.
func TestCatchUpAfterRestart(t *testing.T) {
	dir := t.TempDir()
	g, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	segtest.Define(t, g.Segments(), lang.KindSegment, "buyer", `events("Order").exists()`)
	segtest.IngestRecording(t, g, track("m1", "Order", t0, "", "user_id:ann"))
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	g, err = pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	e := segments.NewEngine(g, g.Segments(), segments.EngineOptions{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := e.CatchUp(context.Background()); n != 1 || err != nil {
		t.Fatalf("caught up with %d changes (%v), want 1", n, err)
	}
	if n, err := e.CatchUp(context.Background()); n != 0 || err != nil {
		t.Fatalf("%d changes still pending (%v)", n, err)
	}
	members, err := g.Segments().Members(context.Background(), "buyer", "", 10)
	if err != nil || len(members) != 1 || members[0] != graphtest.ProfileOf(t, g, "user_id:ann").ID {
		t.Errorf("members %q (%v), want ann's profile", members, err)
	}
}

// One CatchUp takes pages until one is not full, the next page read and
// evaluated while the one before is saved: when it returns, every change
// it took is saved and removed.
func TestCatchUpPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		segtest.Define(t, f.s, lang.KindSegment, "buyer", `events("Order").exists()`)
		const n = 5
		for i := range n {
			segtest.IngestRecording(t, f.g, track(fmt.Sprint("m", i), "Order", t0, "", fmt.Sprint("user_id:u", i)))
		}
		e := segments.NewEngine(f.g, f.s, segments.EngineOptions{Now: f.clock.Now, TimerBatch: 2})
		if err := e.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if k, err := e.CatchUp(ctx); k != n || err != nil {
			t.Fatalf("caught up with %d changes (%v), want %d", k, err, n)
		}
		if ps, err := f.s.PendingChanges(ctx, "", 10); len(ps) != 0 || err != nil {
			t.Errorf("%d changes still pending (%v)", len(ps), err)
		}
		if m, err := f.s.MemberCount(ctx, "buyer"); m != n || err != nil {
			t.Errorf("%d members, %v; want %d", m, err, n)
		}
	})
}

// A computed trait's change records: one when the value changes (to, from
// and between values, late events included), none when it does not (an
// event that leaves it as it was, an edit that computes the same value);
// on a merge the absorbed profile's values go (reason profile_merged) and
// the survivor's change.
func TestTraitChangeRecords(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.define(lang.KindComputed, "spend", `events("Order").sum(prop("revenue"))`)
		f.define(lang.KindComputed, "last_sku", `events("Order").last(prop("sku"))`)
		f.clock.Set(t0.Add(24 * time.Hour))
		order := func(msg string, at time.Duration, revenue int, sku string, ids ...string) []string {
			t.Helper()
			f.ingest(track(msg, "Order", t0.Add(at), fmt.Sprintf(`{"revenue": %d, "sku": %q}`, revenue, sku), ids...))
			return f.update(ids[0], segments.Change{Events: []string{"Order"}})
		}
		want(t, "first order", order("m1", 0, 10, "A", "user_id:ann"),
			`last_sku changed v1 data null→"A"`, "spend changed v1 data null→10")
		want(t, "a late order of 0: nothing changes", order("m2", -time.Hour, 0, "B", "user_id:ann"))
		want(t, "a late order of 5: the sum only", order("m3", -2*time.Hour, 5, "C", "user_id:ann"),
			"spend changed v1 data 10→15")
		f.define(lang.KindComputed, "spend", `events("Order").sum(prop("revenue")) + 0`)
		want(t, "an edit computing the same value", f.update("user_id:ann", segments.Change{Events: []string{"Page"}}))

		want(t, "another profile", order("m4", time.Hour, 7, "D", "anonymous_id:a1"),
			`last_sku changed v1 data null→"D"`, "spend changed v2 data null→7")
		absorbed, survivor := f.profile("anonymous_id:a1"), f.profile("user_id:ann")
		if r := f.ingest(track("m5", "Page", t0.Add(2*time.Hour), "", "user_id:ann", "anonymous_id:a1")); r.Merges != 1 {
			t.Fatalf("%d merges, want 1", r.Merges)
		}
		cs, err := f.e.Update(context.Background(), survivor, segments.Change{Events: []string{"Page"}})
		if err != nil {
			t.Fatal(err)
		}
		want(t, "merge", describe(cs),
			`last_sku changed v1 profile_merged "D"→null`, "spend changed v2 profile_merged 7→null",
			`last_sku changed v1 profile_merged "A"→"D"`, "spend changed v2 profile_merged 15→22")
		for i, c := range cs {
			if w := []string{absorbed, absorbed, survivor, survivor}[i]; c.Profile != w {
				t.Errorf("merge record %d is of %s, want %s", i, c.Profile, w)
			}
		}
		// Segment readers skip trait records: a segment of the trait's key
		// has no members and no records.
		all, err := f.s.Changes(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range all {
			if c.Segment != "" || c.Direction != segments.Changed || c.Previous.Equal(c.Value) {
				t.Errorf("record %+v: want a trait change between two different values", *c)
			}
		}
	})
}

// Two engines on one store (two serve processes on one Neo4j): one
// defines a segment and a profile enters it; the other, loaded before,
// evaluates the profile next and keeps the entry rather than dropping it
// as a definition it does not know.
func TestAnotherProcessDefinitionsSeen(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		other := segments.NewEngine(f.g, f.s, segments.EngineOptions{Now: f.clock.Now})
		if err := other.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.define(lang.KindSegment, "pro", `trait("plan") = "pro"`)
		o := graphtest.Obs("m1", t0, "user_id:ann")
		o.Event, o.Traits = graph.Event{Type: "identify"}, map[string]any{"plan": "pro"}
		f.ingest(o)
		want(t, "the defining engine", f.update("user_id:ann", segments.Change{Traits: []string{"plan"}}), "pro entered v1 data")
		cs, err := other.Update(context.Background(), f.profile("user_id:ann"), segments.Change{Traits: []string{"plan"}})
		if err != nil {
			t.Fatal(err)
		}
		want(t, "the other engine", describe(cs))
		if !f.state("user_id:ann").Member("pro") {
			t.Errorf("the other engine dropped the membership")
		}
	})
}
