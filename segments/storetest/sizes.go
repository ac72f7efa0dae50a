package storetest

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// memberCount reads a segment's count, failing the test on error.
func memberCount(t *testing.T, s segments.Store, segment string) int {
	t.Helper()
	n, err := s.MemberCount(context.Background(), segment)
	if err != nil {
		t.Fatalf("member count %s: %v", segment, err)
	}
	return n
}

// Random saves move profiles in and out of three segments, several per
// transaction; after each, every count equals the members listed. A
// deleted and re-created segment starts from zero.
func testMemberCountsFollowSaves(t *testing.T, g graph.Store, s segments.Store) {
	ps := Profiles(t, g, 8)
	keys := []string{"a", "b", "ab"} // "a" is a prefix of "ab": counts must not mix
	for _, k := range keys {
		Define(t, s, lang.KindSegment, k, "true")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	check := func(step int) {
		t.Helper()
		for _, k := range keys {
			if n, want := memberCount(t, s, k), len(members(t, s, k)); n != want {
				t.Fatalf("step %d: segment %s counts %d, lists %d members", step, k, n, want)
			}
		}
	}
	for step := range 40 {
		var saves []segments.Save
		for _, p := range rng.Perm(len(ps))[:1+rng.IntN(3)] {
			entries := map[string]segments.Entry{}
			for _, k := range keys {
				if rng.IntN(2) == 0 {
					entries[segments.RefString(segRef(k))] = member()
				}
			}
			st := state(t, s, ps[p])
			saves = append(saves, segments.Save{State: &segments.ProfileState{Profile: ps[p], Rev: st.Rev, Entries: entries}, At: t0})
		}
		save(t, s, saves...)
		check(step)
	}
	d, err := s.Definition(context.Background(), segRef("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDefinition(context.Background(), segRef("a"), d.Version); err != nil {
		t.Fatal(err)
	}
	Define(t, s, lang.KindSegment, "a", "true")
	if n := memberCount(t, s, "a"); n != 0 {
		t.Errorf("a re-created segment counts %d members", n)
	}
	if n := memberCount(t, s, "unknown"); n != 0 {
		t.Errorf("an unknown segment counts %d members", n)
	}
	check(-1)
}

// Samples are read back by segment and time range, oldest first; one at
// the same (segment, time) replaces the stored one; old ones are deleted
// by time and a deleted segment's go with it.
func testSizeSamples(t *testing.T, _ graph.Store, s segments.Store) {
	ctx := context.Background()
	d := Define(t, s, lang.KindSegment, "vip", "true")
	Define(t, s, lang.KindSegment, "vipx", "true")
	var samples []segments.SizeSample
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Hour)
		samples = append(samples, segments.SizeSample{Segment: "vip", At: at, Size: i}, segments.SizeSample{Segment: "vipx", At: at, Size: 100 + i})
	}
	if err := s.PutSizeSamples(ctx, samples); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSizeSamples(ctx, []segments.SizeSample{{Segment: "vip", At: t0.Add(3 * time.Hour), Size: 33}}); err != nil {
		t.Fatal(err)
	}
	read := func(seg string, from, to time.Time, limit int) []int {
		t.Helper()
		got, err := s.SizeSamples(ctx, seg, from, to, limit)
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for i, sm := range got {
			if sm.Segment != seg || (i > 0 && !sm.At.After(got[i-1].At)) {
				t.Fatalf("samples out of order or of another segment: %+v", got)
			}
			sizes = append(sizes, sm.Size)
		}
		return sizes
	}
	same := func(what string, got, want []int) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: %v, want %v", what, got, want)
			}
		}
	}
	same("vip hours 2..5", read("vip", t0.Add(2*time.Hour), t0.Add(5*time.Hour), 100), []int{2, 33, 4})
	same("vip limited", read("vip", t0, t0.Add(24*time.Hour), 3), []int{0, 1, 2})
	same("vipx hour 9", read("vipx", t0.Add(9*time.Hour), t0.Add(24*time.Hour), 100), []int{109})
	if err := s.DeleteSizeSamples(ctx, t0.Add(8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	same("vip after deleting old samples", read("vip", t0.Add(-time.Hour), t0.Add(24*time.Hour), 100), []int{8, 9})
	if err := s.DeleteDefinition(ctx, d.Ref(), d.Version); err != nil {
		t.Fatal(err)
	}
	same("vip after deleting the segment", read("vip", t0.Add(-time.Hour), t0.Add(24*time.Hour), 100), nil)
	same("vipx after deleting vip", read("vipx", t0.Add(-time.Hour), t0.Add(24*time.Hour), 100), []int{108, 109})
}
