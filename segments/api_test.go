package segments_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// Disabling makes a new version and the sweep (Backfill of a disabled
// definition) records each member's exit, reason definition, without
// touching the status; enabling again backfills; a definition others read
// cannot be disabled; asking for the current state changes nothing.
func TestSetEnabled(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		buyer := segments.Ref{Kind: lang.KindSegment, Key: "buyer"}
		f.define(lang.KindSegment, "buyer", `events("Order").exists()`)
		f.define(lang.KindSegment, "vip", `in_segment("buyer")`)
		f.ingest(track("m1", "Order", t0, "", "user_id:ann"))
		want(t, "first", f.update("user_id:ann", segments.Change{All: true}), "buyer entered v1 data", "vip entered v1 data")

		_, _, err := f.e.SetEnabled(ctx, buyer, false, 0)
		if graph.ErrorKind(err) != graph.KindConflict || !strings.Contains(err.Error(), "segment:vip") {
			t.Errorf("disabling a segment another reads: %v", err)
		}
		if _, _, err := f.e.SetEnabled(ctx, segments.Ref{Kind: lang.KindSegment, Key: "vip"}, false, 2); graph.ErrorKind(err) != graph.KindConflict {
			t.Errorf("a stale version: %v", err)
		}
		if _, _, err := f.e.SetEnabled(ctx, segments.Ref{Kind: lang.KindSegment, Key: "nope"}, false, 0); graph.ErrorKind(err) != graph.KindNotFound {
			t.Errorf("an unknown segment: %v", err)
		}
		d, changed, err := f.e.SetEnabled(ctx, segments.Ref{Kind: lang.KindSegment, Key: "vip"}, false, 1)
		if err != nil || !changed || d.Version != 2 || d.Status.State != segments.StateDisabled {
			t.Fatalf("disabled: %+v %v %v", d, changed, err)
		}
		if ms, _ := f.e.Memberships(ctx, f.profile("user_id:ann")); strings.Join(ms, ",") != "buyer" {
			t.Errorf("memberships of a disabled segment are shown: %v", ms)
		}
		if err := f.e.Backfill(ctx, d); err != nil {
			t.Fatal(err)
		}
		cs, err := f.s.Changes(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "after the sweep", describe(cs), "buyer entered v1 data", "vip entered v1 data", "vip exited v1 definition")
		if got, _ := f.s.Definition(ctx, d.Ref()); got.Status.State != segments.StateDisabled {
			t.Errorf("the sweep changed the status: %+v", got.Status)
		}
		if _, changed, err := f.e.SetEnabled(ctx, d.Ref(), false, 0); changed || err != nil {
			t.Errorf("disabling a disabled segment: %v %v", changed, err)
		}
		// An edit of a disabled segment stays disabled.
		d, err = f.e.Define(ctx, lang.KindSegment, "vip", `in_segment("buyer") and true`, 2)
		if err != nil || d.Version != 3 || d.Status.State != segments.StateDisabled {
			t.Fatalf("edited while disabled: %+v %v", d, err)
		}
		d, changed, err = f.e.SetEnabled(ctx, d.Ref(), true, 0)
		if err != nil || !changed || d.Version != 4 || d.Status.State != segments.StateBackfilling {
			t.Fatalf("enabled: %+v %v %v", d, changed, err)
		}
		if err := f.e.Backfill(ctx, d); err != nil {
			t.Fatal(err)
		}
		cs, _ = f.s.Changes(ctx, 3, 100)
		want(t, "after the backfill", describe(cs), "vip entered v4 definition")
	})
}

// Preview counts an unsaved definition's members exactly (reading saved
// segments' memberships and events) and saves nothing; Explain evaluates
// a saved one for a profile (followed to its survivor), with the events
// that decided it and the next deadline.
func TestPreviewAndExplain(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.define(lang.KindSegment, "buyer", `events("Order").within(7d).exists()`)
		f.ingest(track("m1", "Order", t0.Add(-time.Hour), "", "user_id:ann"))
		f.ingest(track("m2", "Order", t0.Add(-10*24*time.Hour), "", "user_id:bob"))
		f.ingest(track("m3", "Page", t0, "", "user_id:cat"))
		for _, id := range []string{"user_id:ann", "user_id:bob", "user_id:cat"} {
			f.update(id, segments.Change{All: true})
		}
		for _, c := range []struct {
			src           string
			count, sample int
		}{
			{`events("Order").exists()`, 2, 2},
			{`in_segment("buyer")`, 1, 1},
			{`not in_segment("buyer")`, 2, 2},
			{`has_id("email")`, 0, 0},
		} {
			p, err := f.e.Preview(ctx, c.src, 5)
			if err != nil {
				t.Fatalf("preview %s: %v", c.src, err)
			}
			if p.Count != c.count || p.Profiles != 3 || len(p.Sample) != c.sample {
				t.Errorf("preview %s: %+v, want %d members", c.src, p, c.count)
			}
		}
		if _, err := f.e.Preview(ctx, `in_segment("nope")`, 5); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("preview of an invalid definition: %v", err)
		}
		if _, err := f.e.Preview(ctx, `true`, segments.MaxPreviewSample+1); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("a sample over the limit: %v", err)
		}
		if ds, _ := f.s.Definitions(ctx); len(ds) != 1 {
			t.Errorf("a preview saved a definition: %d", len(ds))
		}

		x, err := f.e.Explain(ctx, f.profile("user_id:ann"), segments.Ref{Kind: lang.KindSegment, Key: "buyer"})
		if err != nil {
			t.Fatal(err)
		}
		if !x.Value.Bool || !x.Stored.Member || x.Trace.EventCount != 1 || x.Trace.Events[0].MessageID != "m1" ||
			!x.Trace.Deadline.Equal(t0.Add(-time.Hour+7*24*time.Hour)) {
			t.Errorf("explain ann: %+v %+v", x, x.Trace)
		}
		x, err = f.e.Explain(ctx, f.profile("user_id:bob"), segments.Ref{Kind: lang.KindSegment, Key: "buyer"})
		if err != nil || x.Value.Bool || x.Stored.Member || x.Trace.EventCount != 0 {
			t.Errorf("explain bob: %+v %v", x, err)
		}
		if _, err := f.e.Explain(ctx, f.profile("user_id:ann"), segments.Ref{Kind: lang.KindSegment, Key: "nope"}); graph.ErrorKind(err) != graph.KindNotFound {
			t.Errorf("explain an unknown segment: %v", err)
		}
		// A merged profile's ID explains its survivor.
		annID := f.profile("user_id:ann")
		f.ingest(track("m4", "Page", t0, "", "anonymous_id:a1"))
		a1 := f.profile("anonymous_id:a1")
		f.ingest(track("m5", "Page", t0, "", "anonymous_id:a1", "user_id:ann"))
		for _, id := range []string{annID, a1} {
			x, err := f.e.Explain(ctx, id, segments.Ref{Kind: lang.KindSegment, Key: "buyer"})
			if err != nil || x.Profile != f.profile("user_id:ann") || !x.Value.Bool {
				t.Errorf("explain %s after a merge: %+v %v", id, x, err)
			}
		}
		if _, err := f.e.Explain(ctx, "p_nope", segments.Ref{Kind: lang.KindSegment, Key: "buyer"}); graph.ErrorKind(err) != graph.KindNotFound {
			t.Errorf("explain an unknown profile: %v", err)
		}
	})
}

// A preview of a definition that reads only profile data takes the scan of
// trait values and counts (Engine.previewData); the same definition joined
// with an event condition that always holds takes the full path, which
// reads whole profiles. Both must agree, over random profiles with random
// traits (missing, numbers, strings, nested), several identifiers and
// merges.
func TestPreviewProfileDataMatchesFullPath(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(3, 5))
		plans := []any{"pro", "free", "team", 3, nil}
		for i := range 60 {
			ids := []string{fmt.Sprint("user_id:u", i)}
			if rng.IntN(2) == 0 {
				ids = append(ids, fmt.Sprintf("email:u%d@corp.io", i))
			}
			if rng.IntN(5) == 0 { // a merge with an earlier profile
				ids = append(ids, fmt.Sprint("user_id:u", rng.IntN(i+1)))
			}
			o := track(fmt.Sprint("m", i), "Page", t0, "", ids...)
			o.Traits = map[string]any{"score": rng.IntN(100), "address": map[string]any{"city": []string{"Oslo", "Lima"}[rng.IntN(2)]}}
			if p := plans[rng.IntN(len(plans))]; p != nil {
				o.Traits["plan"] = p
			}
			f.ingest(o)
		}
		for _, src := range []string{
			`trait("plan") = "pro"`,
			`trait("plan") is missing or trait("score") > 50`,
			`trait("address.city") = "Oslo" and has_id("email")`,
			`id_count("user_id") >= 2`,
			`trait("plan") in ["team", "free"] and not has_id("email")`,
			`true`,
		} {
			fast, err := f.e.Preview(ctx, src, 100)
			if err != nil {
				t.Fatalf("preview %s: %v", src, err)
			}
			full, err := f.e.Preview(ctx, "("+src+`) and events("Never").count() = 0`, 100)
			if err != nil {
				t.Fatalf("preview %s with events: %v", src, err)
			}
			if fast.Count != full.Count || fast.Profiles != full.Profiles || !slices.Equal(fast.Sample, full.Sample) {
				t.Errorf("preview %s: %+v, the full path %+v", src, fast, full)
			}
		}
	})
}
