// Package storetest is the contract suite of segments.Store: every backend
// passes it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// Run runs every contract test against the backend. open returns an empty
// graph store that also stores segments.
func Run(t *testing.T, open graphtest.Opener) {
	graphtest.RunCases(t, open, func(t *testing.T, g graph.Store) stores {
		return stores{g, graphtest.As[segments.Backend](t, g).Segments()}
	}, map[string]func(*testing.T, stores){
		"DefinitionVersions":                  with(testDefinitionVersions),
		"DefinitionsListed":                   with(testDefinitionsListed),
		"DefinitionHistory":                   with(testDefinitionHistory),
		"SaveWritesChangeRecords":             with(testSaveWritesChangeRecords),
		"StaleSaveRefusedWhole":               with(testStaleSaveRefusedWhole),
		"SaveReplacesTheStoredState":          with(testSaveReplacesTheStoredState),
		"UnknownMembershipRefused":            with(testUnknownMembershipRefused),
		"TimersInDeadlineOrder":               with(testTimersInDeadlineOrder),
		"DeleteDropsMembers":                  with(testDeleteDropsMembers),
		"ConcurrentSavesOneWins":              with(testConcurrentSavesOneWins),
		"PendingChangesMergeUntilDone":        with(testPendingChanges),
		"PendingChangesNeverTakenFromAWriter": with(testPendingUnderConcurrentWrites),
		"MembersAtOnePointInTime":             with(testMembersAt),
		"MemberCountsFollowSaves":             with(testMemberCountsFollowSaves),
		"SizeSamples":                         with(testSizeSamples),
		"PageReadsEqualOneByOne":              with(testPageReadsEqualOneByOne),
		"StatesPagedByProfile":                with(testStatesPage),
	})
}

// stores is what a contract test gets: the graph and its segments.
type stores struct {
	g graph.Store
	s segments.Store
}

func with(fn func(*testing.T, graph.Store, segments.Store)) func(*testing.T, stores) {
	return func(t *testing.T, x stores) { fn(t, x.g, x.s) }
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func segRef(key string) segments.Ref { return segments.Ref{Kind: lang.KindSegment, Key: key} }

// Define creates a definition (version 1) and returns it.
func Define(t *testing.T, s segments.Store, kind lang.Kind, key, src string) *segments.Definition {
	t.Helper()
	d, err := s.PutDefinition(context.Background(), &segments.Definition{Kind: kind, Key: key, Source: src,
		Status: segments.Status{State: segments.StateLive}, CreatedAt: t0, UpdatedAt: t0}, 0)
	if err != nil {
		t.Fatalf("define %s: %v", key, err)
	}
	return d
}

// Profiles stitches n one-identifier profiles and returns their IDs.
func Profiles(t *testing.T, g graph.Store, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		id := fmt.Sprintf("user_id:u%d", i)
		graphtest.Ingest(t, g, graphtest.Obs(fmt.Sprintf("seed-%d", i), t0, id))
		out = append(out, graphtest.ProfileOf(t, g, id).ID)
	}
	return out
}

func state(t *testing.T, s segments.Store, profile string) *segments.ProfileState {
	t.Helper()
	sts, err := s.States(context.Background(), []string{profile})
	if err != nil {
		t.Fatalf("states: %v", err)
	}
	return sts[0]
}

// member is an entry of a member of version 1 since t0.
func member() segments.Entry { return segments.Entry{Version: 1, Member: true, Since: t0} }

func save(t *testing.T, s segments.Store, saves ...segments.Save) []*segments.ChangeRecord {
	t.Helper()
	cs, err := s.SaveStates(context.Background(), saves)
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	return cs
}

func wantKind(t *testing.T, what string, err error, kind graph.Kind) {
	t.Helper()
	if err == nil || graph.ErrorKind(err) != kind {
		t.Errorf("%s: got error %v, want kind %s", what, err, kind)
	}
}

func allChanges(t *testing.T, s segments.Store) []*segments.ChangeRecord {
	t.Helper()
	cs, err := s.Changes(context.Background(), 0, 1000)
	if err != nil {
		t.Fatalf("changes: %v", err)
	}
	return cs
}

func members(t *testing.T, s segments.Store, segment string) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		page, err := s.Members(context.Background(), segment, after, 2)
		if err != nil {
			t.Fatalf("members: %v", err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1]
	}
}

func testDefinitionVersions(t *testing.T, _ graph.Store, s segments.Store) {
	ctx := context.Background()
	d := Define(t, s, lang.KindSegment, "vip", `trait("vip") = true`)
	if d.Version != 1 {
		t.Fatalf("new definition has version %d, want 1", d.Version)
	}
	edit := *d
	edit.Source, edit.CreatedAt, edit.UpdatedAt = `trait("vip") = false`, t0.Add(time.Hour), t0.Add(time.Hour)
	steps := []struct {
		name     string
		do       func() error
		wantKind graph.Kind // "" for success
	}{
		{"create a taken key", func() error { _, err := s.PutDefinition(ctx, d, 0); return err }, graph.KindConflict},
		{"edit a missing key", func() error {
			_, err := s.PutDefinition(ctx, &segments.Definition{Kind: lang.KindSegment, Key: "nope"}, 1)
			return err
		}, graph.KindNotFound},
		{"bad key", func() error {
			_, err := s.PutDefinition(ctx, &segments.Definition{Kind: lang.KindSegment, Key: "a/b"}, 0)
			return err
		}, graph.KindInvalid},
		{"edit version 1", func() error { _, err := s.PutDefinition(ctx, &edit, 1); return err }, ""},
		{"edit stale version 1", func() error { _, err := s.PutDefinition(ctx, &edit, 1); return err }, graph.KindConflict},
		{"status of a stale version", func() error {
			return s.SetStatus(ctx, d.Ref(), 1, segments.Status{State: segments.StateDisabled})
		}, graph.KindConflict},
		{"status of version 2", func() error {
			return s.SetStatus(ctx, d.Ref(), 2, segments.Status{State: segments.StateBackfilling, Progress: 0.5})
		}, ""},
		{"delete a stale version", func() error { return s.DeleteDefinition(ctx, d.Ref(), 1) }, graph.KindConflict},
		{"status of a missing key", func() error {
			return s.SetStatus(ctx, segRef("nope"), 0, segments.Status{State: segments.StateLive})
		}, graph.KindNotFound},
		{"delete a missing key", func() error { return s.DeleteDefinition(ctx, segRef("nope"), 0) }, graph.KindNotFound},
		{"same key, other kind", func() error {
			_, err := s.PutDefinition(ctx, &segments.Definition{Kind: lang.KindComputed, Key: "vip", Source: "1"}, 0)
			return err
		}, ""},
	}
	for _, st := range steps {
		err := st.do()
		if st.wantKind == "" && err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.wantKind != "" {
			wantKind(t, st.name, err, st.wantKind)
		}
	}
	got, err := s.Definition(ctx, d.Ref())
	if err != nil {
		t.Fatal(err)
	}
	want := segments.Definition{Kind: lang.KindSegment, Key: "vip", Source: edit.Source, Version: 2,
		Status:    segments.Status{State: segments.StateBackfilling, Progress: 0.5},
		CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}
	if !sameDefinition(got, &want) {
		t.Errorf("stored definition %+v, want %+v", got, want)
	}
	if err := s.DeleteDefinition(ctx, d.Ref(), 2); err != nil {
		t.Fatal(err)
	}
	_, err = s.Definition(ctx, d.Ref())
	wantKind(t, "read a deleted definition", err, graph.KindNotFound)
	if _, err := s.Definition(ctx, segments.Ref{Kind: lang.KindComputed, Key: "vip"}); err != nil {
		t.Errorf("the computed trait of the same key went with the segment: %v", err)
	}
}

// Every edit keeps the version it replaced, as it was then (source,
// status, author, change); Versions pages through them newest first;
// deleting the definition deletes them, and a definition created again
// under the key starts a new history.
func testDefinitionHistory(t *testing.T, _ graph.Store, s segments.Store) {
	ctx := context.Background()
	ref := segRef("vip")
	_, err := s.Versions(ctx, ref, 0, 10)
	wantKind(t, "versions of a missing definition", err, graph.KindNotFound)
	put := func(src, author, change string, expected int) *segments.Definition {
		t.Helper()
		at := t0.Add(time.Duration(expected) * time.Hour)
		d, err := s.PutDefinition(ctx, &segments.Definition{Kind: lang.KindSegment, Key: "vip", Source: src,
			Status: segments.Status{State: segments.StateBackfilling}, CreatedAt: at, UpdatedAt: at, Author: author, Change: change}, expected)
		if err != nil {
			t.Fatalf("put version %d: %v", expected+1, err)
		}
		return d
	}
	put(`trait("a") = 1`, "steward-key:s1", segments.ChangeCreated, 0)
	if err := s.SetStatus(ctx, ref, 1, segments.Status{State: segments.StateLive}); err != nil {
		t.Fatal(err)
	}
	put(`trait("a") = 2`, "steward-key:s2", segments.ChangeEdited, 1)
	put(`trait("a") = 2`, "admin-key:a1", segments.ChangeDisabled, 2)
	// A trait of the same key has its own history.
	Define(t, s, lang.KindComputed, "vip", "1")
	versions := func(before, limit int) string {
		t.Helper()
		vs, err := s.Versions(ctx, ref, before, limit)
		if err != nil {
			t.Fatalf("versions before %d: %v", before, err)
		}
		var out []string
		for _, v := range vs {
			if v.Key != "vip" || v.Kind != lang.KindSegment || !v.CreatedAt.Equal(t0) || !v.UpdatedAt.Equal(t0.Add(time.Duration(v.Version-1)*time.Hour)) {
				t.Errorf("version %d: %+v", v.Version, v)
			}
			out = append(out, fmt.Sprintf("%d %s %s %s %s", v.Version, v.Source, v.Status.State, v.Author, v.Change))
		}
		return strings.Join(out, "; ")
	}
	for _, c := range []struct {
		before, limit int
		want          string
	}{
		{0, 10, `3 trait("a") = 2 BACKFILLING admin-key:a1 disabled; 2 trait("a") = 2 BACKFILLING steward-key:s2 edited; 1 trait("a") = 1 LIVE steward-key:s1 created`},
		{0, 1, `3 trait("a") = 2 BACKFILLING admin-key:a1 disabled`},
		{3, 1, `2 trait("a") = 2 BACKFILLING steward-key:s2 edited`},
		{2, 5, `1 trait("a") = 1 LIVE steward-key:s1 created`},
		{1, 5, ``},
		{99, 2, `3 trait("a") = 2 BACKFILLING admin-key:a1 disabled; 2 trait("a") = 2 BACKFILLING steward-key:s2 edited`},
	} {
		if got := versions(c.before, c.limit); got != c.want {
			t.Errorf("versions(before %d, limit %d):\n got %s\nwant %s", c.before, c.limit, got, c.want)
		}
	}
	// The current version's status changes in place; replaced ones keep theirs.
	if err := s.SetStatus(ctx, ref, 3, segments.Status{State: segments.StateDisabled}); err != nil {
		t.Fatal(err)
	}
	if got := versions(0, 2); !strings.HasPrefix(got, `3 trait("a") = 2 DISABLED`) || !strings.Contains(got, `2 trait("a") = 2 BACKFILLING`) {
		t.Errorf("after a status change: %s", got)
	}
	_, err = s.Versions(ctx, ref, -1, 1)
	wantKind(t, "versions before -1", err, graph.KindInvalid)
	_, err = s.Versions(ctx, ref, 0, 0)
	wantKind(t, "versions, limit 0", err, graph.KindInvalid)

	if err := s.DeleteDefinition(ctx, ref, 3); err != nil {
		t.Fatal(err)
	}
	_, err = s.Versions(ctx, ref, 0, 10)
	wantKind(t, "versions of a deleted definition", err, graph.KindNotFound)
	put(`trait("b") = 1`, "", segments.ChangeCreated, 0)
	if got := versions(0, 10); got != `1 trait("b") = 1 BACKFILLING  created` {
		t.Errorf("created again, the history is %s", got)
	}
	if vs, err := s.Versions(ctx, segments.Ref{Kind: lang.KindComputed, Key: "vip"}, 0, 10); err != nil || len(vs) != 1 || vs[0].Source != "1" {
		t.Errorf("the computed trait's history: %v %v", vs, err)
	}
}

func sameDefinition(a, b *segments.Definition) bool {
	return a.Kind == b.Kind && a.Key == b.Key && a.Source == b.Source && a.Version == b.Version &&
		a.Status == b.Status && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testDefinitionsListed(t *testing.T, _ graph.Store, s segments.Store) {
	for _, k := range []string{"b", "a", "адрес"} {
		Define(t, s, lang.KindComputed, k, "1")
		Define(t, s, lang.KindSegment, k, "true")
	}
	ds, err := s.Definitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, segments.RefString(d.Ref()))
	}
	want := []string{"segment:a", "segment:b", "segment:адрес", "computed:a", "computed:b", "computed:адрес"}
	if !slices.Equal(got, want) {
		t.Errorf("definitions %q, want %q", got, want)
	}
}

func testSaveWritesChangeRecords(t *testing.T, g graph.Store, s segments.Store) {
	ps := Profiles(t, g, 2)
	Define(t, s, lang.KindSegment, "vip", "true")
	Define(t, s, lang.KindComputed, "ltv", "1")
	ltv := segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: "ltv"})
	vip := segments.RefString(segRef("vip"))
	// p0 enters, with a computed value.
	identity := segments.Identity{Absorbed: "x", Counts: map[string]int{"user_id": 1}}
	cs := save(t, s, segments.Save{State: &segments.ProfileState{Profile: ps[0], Entries: map[string]segments.Entry{
		vip: member(), ltv: {Version: 1, Value: &segments.Value{Type: "number", Number: 42}},
	}, Identity: identity}, Reason: segments.ReasonData, At: t0})
	n42 := &segments.Value{Type: "number", Number: 42}
	want := []segments.ChangeRecord{
		{Sequence: 1, Trait: "ltv", Version: 1, Profile: ps[0], Direction: segments.Changed, Reason: segments.ReasonData, Time: t0, Value: n42},
		{Sequence: 2, Segment: "vip", Version: 1, Profile: ps[0], Direction: segments.Entered, Reason: segments.ReasonData, Time: t0},
	}
	sameChanges(t, "first save", cs, want)
	st := state(t, s, ps[0])
	if st.Rev != 1 || !st.Member("vip") || !st.Entries[ltv].Value.Equal(&segments.Value{Type: "number", Number: 42}) ||
		st.Identity.Absorbed != "x" || st.Identity.Counts["user_id"] != 1 {
		t.Errorf("state after the first save: %+v", st)
	}
	// Saved again unchanged (a computed value's new version and deadline
	// are no change of value): no record. Then p0 exits, its value
	// changes, and p1 enters in one save, recorded in the order of the
	// saves.
	st.Entries[vip] = segments.Entry{Version: 1, Member: true, Since: t0}
	st.Entries[ltv] = segments.Entry{Version: 2, Value: &segments.Value{Type: "number", Number: 42}, Deadline: t0.Add(48 * time.Hour)}
	if cs := save(t, s, segments.Save{State: st, Reason: segments.ReasonData, At: t0.Add(time.Minute)}); len(cs) != 0 {
		t.Errorf("an unchanged membership and value wrote %d records", len(cs))
	}
	st = state(t, s, ps[0])
	delete(st.Entries, vip)
	when := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	st.Entries[ltv] = segments.Entry{Version: 2, Value: &segments.Value{Type: "timestamp", Time: when.UTC()}}
	at := t0.Add(time.Hour)
	cs = save(t, s,
		segments.Save{State: st, Reason: segments.ReasonTime, At: at},
		segments.Save{State: &segments.ProfileState{Profile: ps[1], Entries: map[string]segments.Entry{vip: member()}}, Reason: segments.ReasonData, At: at})
	want = []segments.ChangeRecord{
		{Sequence: 3, Trait: "ltv", Version: 2, Profile: ps[0], Direction: segments.Changed, Reason: segments.ReasonTime, Time: at,
			Previous: n42, Value: &segments.Value{Type: "timestamp", Time: when}},
		{Sequence: 4, Segment: "vip", Version: 1, Profile: ps[0], Direction: segments.Exited, Reason: segments.ReasonTime, Time: at},
		{Sequence: 5, Segment: "vip", Version: 1, Profile: ps[1], Direction: segments.Entered, Reason: segments.ReasonData, Time: at},
	}
	sameChanges(t, "second save", cs, want)
	sameChanges(t, "changes after 2", mustChanges(t, s, 2), want)
	if last, err := s.LastChange(context.Background()); err != nil || last != 5 {
		t.Errorf("last change %d, %v; want 5", last, err)
	}
	if got := members(t, s, "vip"); !slices.Equal(got, ps[1:]) {
		t.Errorf("members %q, want %q", got, ps[1:])
	}
	if st := state(t, s, ps[0]); st.Rev != 3 || st.Member("vip") {
		t.Errorf("p0's state after exiting: %+v", st)
	}
	// The value goes (missing), each kind of value, and an entry that
	// keeps only a deadline: the record carries no value.
	st = state(t, s, ps[0])
	st.Entries[ltv] = segments.Entry{Version: 2, Deadline: t0.Add(72 * time.Hour)}
	cs = save(t, s, segments.Save{State: st, Reason: segments.ReasonData, At: at})
	sameChanges(t, "the value goes", cs, []segments.ChangeRecord{{Sequence: 6, Trait: "ltv", Version: 2, Profile: ps[0],
		Direction: segments.Changed, Reason: segments.ReasonData, Time: at, Previous: &segments.Value{Type: "timestamp", Time: when}}})
	prev := (*segments.Value)(nil)
	for i, v := range []*segments.Value{{Type: "boolean", Bool: false}, {Type: "boolean", Bool: true}, {Type: "string", String: "é\"\x00"}, {Type: "number", Number: -0.5}} {
		st = state(t, s, ps[0])
		st.Entries[ltv] = segments.Entry{Version: 2, Value: v}
		cs = save(t, s, segments.Save{State: st, Reason: segments.ReasonData, At: at})
		sameChanges(t, fmt.Sprintf("value %d", i), cs, []segments.ChangeRecord{{Sequence: uint64(7 + i), Trait: "ltv", Version: 2, Profile: ps[0],
			Direction: segments.Changed, Reason: segments.ReasonData, Time: at, Previous: prev, Value: v}})
		prev = v
	}
	sameChanges(t, "read back", mustChanges(t, s, 9), []segments.ChangeRecord{{Sequence: 10, Trait: "ltv", Version: 2, Profile: ps[0],
		Direction: segments.Changed, Reason: segments.ReasonData, Time: at, Previous: &segments.Value{Type: "string", String: "é\"\x00"}, Value: prev}})
}

// A save's Read (the state it was computed from) is what it replaces
// only when it is the stored state: a Read of the same revision that
// differs from it (here: no membership, where the stored state has one)
// changes no record, which the stored state decides.
func testSaveReplacesTheStoredState(t *testing.T, g graph.Store, s segments.Store) {
	ps := Profiles(t, g, 1)
	Define(t, s, lang.KindSegment, "vip", "true")
	vip := segments.RefString(segRef("vip"))
	save(t, s, segments.Save{State: &segments.ProfileState{Profile: ps[0], Entries: map[string]segments.Entry{vip: member()}}, At: t0})
	stored := state(t, s, ps[0])
	forged := &segments.ProfileState{Profile: ps[0], Rev: stored.Rev}
	next := &segments.ProfileState{Profile: ps[0], Rev: stored.Rev, Entries: map[string]segments.Entry{vip: member()}}
	if cs := save(t, s, segments.Save{State: next, Reason: segments.ReasonData, At: t0, Read: forged}); len(cs) != 0 {
		t.Errorf("a save over a Read that is not the stored state wrote %d records (%+v), want none", len(cs), *cs[0])
	}
	stored = state(t, s, ps[0])
	cs := save(t, s, segments.Save{State: &segments.ProfileState{Profile: ps[0], Rev: stored.Rev}, Reason: segments.ReasonData, At: t0, Read: stored})
	sameChanges(t, "exit over the stored Read", cs, []segments.ChangeRecord{{Sequence: 2, Segment: "vip", Version: 1, Profile: ps[0],
		Direction: segments.Exited, Reason: segments.ReasonData, Time: t0}})
}

// testStatesPage: StatesPage returns every stored state once, by
// profile, as States reads it, and none of a profile without one.
func testStatesPage(t *testing.T, g graph.Store, s segments.Store) {
	ctx := context.Background()
	ps := Profiles(t, g, 6)
	Define(t, s, lang.KindComputed, "ltv", "1")
	ltv := segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: "ltv"})
	var want []string
	for i, p := range ps[:5] {
		save(t, s, segments.Save{State: &segments.ProfileState{Profile: p, Entries: map[string]segments.Entry{
			ltv: {Version: 1, Value: &segments.Value{Type: "number", Number: float64(i)}}}}, Reason: segments.ReasonData, At: t0})
		want = append(want, p)
	}
	slices.Sort(want)
	var got []string
	for after := ""; ; {
		page, err := s.StatesPage(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page {
			if one := state(t, s, st.Profile); one.Rev != st.Rev || !one.Entries[ltv].Value.Equal(st.Entries[ltv].Value) {
				t.Errorf("paged state of %s %+v, States reads %+v", st.Profile, st, one)
			}
			got = append(got, st.Profile)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Profile
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged states of %q, want %q (the sixth profile has none)", got, want)
	}
}

func mustChanges(t *testing.T, s segments.Store, after uint64) []*segments.ChangeRecord {
	t.Helper()
	cs, err := s.Changes(context.Background(), after, 100)
	if err != nil {
		t.Fatalf("changes: %v", err)
	}
	return cs
}

func sameChanges(t *testing.T, what string, got []*segments.ChangeRecord, want []segments.ChangeRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d change records, want %d: %+v", what, len(got), len(want), got)
		return
	}
	for i, c := range got {
		w := want[i]
		if c.Sequence != w.Sequence || c.Segment != w.Segment || c.Trait != w.Trait || c.Version != w.Version || c.Profile != w.Profile ||
			c.Direction != w.Direction || c.Reason != w.Reason || !c.Time.Equal(w.Time) || !c.Previous.Equal(w.Previous) || !c.Value.Equal(w.Value) {
			t.Errorf("%s: record %d is %+v, want %+v", what, i, *c, w)
		}
	}
}

// A save of several profiles is all or nothing: one stale state refuses
// the others too.
func testStaleSaveRefusedWhole(t *testing.T, g graph.Store, s segments.Store) {
	ps := Profiles(t, g, 2)
	Define(t, s, lang.KindSegment, "vip", "true")
	vip := segments.RefString(segRef("vip"))
	save(t, s, segments.Save{State: &segments.ProfileState{Profile: ps[1]}, At: t0})
	_, err := s.SaveStates(context.Background(), []segments.Save{
		{State: &segments.ProfileState{Profile: ps[0], Entries: map[string]segments.Entry{vip: member()}}, At: t0},
		{State: &segments.ProfileState{Profile: ps[1], Rev: 0, Entries: map[string]segments.Entry{vip: member()}}, At: t0},
	})
	if !errors.Is(err, segments.ErrStale) || graph.ErrorKind(err) != graph.KindConflict {
		t.Errorf("a save from a stale revision: got %v, want a conflict", err)
	}
	if st := state(t, s, ps[0]); st.Rev != 0 || len(st.Entries) != 0 {
		t.Errorf("a refused save wrote %+v", st)
	}
	if last, err := s.LastChange(context.Background()); err != nil || last != 0 {
		t.Errorf("last change of a refused save: %d, %v", last, err)
	}
	if cs := allChanges(t, s); len(cs) != 0 {
		t.Errorf("a refused save wrote change records %+v", cs)
	}
}

func testUnknownMembershipRefused(t *testing.T, g graph.Store, s segments.Store) {
	ps := Profiles(t, g, 1)
	Define(t, s, lang.KindSegment, "vip", "true")
	Define(t, s, lang.KindComputed, "ltv", "1")
	tests := []struct {
		name    string
		profile string
		entries map[string]segments.Entry
		kind    graph.Kind
	}{
		{"no such segment", ps[0], map[string]segments.Entry{"segment:nope": member()}, graph.KindNotFound},
		{"no such profile", "p_nope", map[string]segments.Entry{"segment:vip": member()}, graph.KindNotFound},
		{"member of a computed trait", ps[0], map[string]segments.Entry{"computed:ltv": member()}, graph.KindInternal},
		{"bad reference", ps[0], map[string]segments.Entry{"vip": member()}, graph.KindInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SaveStates(context.Background(), []segments.Save{{State: &segments.ProfileState{Profile: tc.profile, Entries: tc.entries}, At: t0}})
			if err == nil {
				t.Fatal("saved")
			}
			wantKind(t, tc.name, err, tc.kind)
		})
	}
	if st := state(t, s, ps[0]); st.Rev != 0 {
		t.Errorf("refused saves wrote revision %d", st.Rev)
	}
	// A membership of a profile merged away since it was evaluated (a
	// backfill's page read before the merge) is stale: the caller
	// evaluates it again, as its survivor.
	graphtest.Ingest(t, g, graphtest.Obs("anon", t0, "anonymous_id:a9"))
	merged := graphtest.ProfileOf(t, g, "anonymous_id:a9").ID
	graphtest.Ingest(t, g, graphtest.Obs("join", t0.Add(time.Second), "user_id:u0", "anonymous_id:a9"))
	if survivor := graphtest.ProfileOf(t, g, "user_id:u0").ID; survivor == merged {
		merged = ps[0]
	}
	_, err := s.SaveStates(context.Background(), []segments.Save{{State: &segments.ProfileState{Profile: merged, Entries: map[string]segments.Entry{"segment:vip": member()}}, At: t0}})
	if !errors.Is(err, segments.ErrStale) {
		t.Errorf("member of a merged-away profile: got error %v, want %v", err, segments.ErrStale)
	}
	if st := state(t, s, merged); st.Rev != 0 {
		t.Errorf("a refused save wrote revision %d", st.Rev)
	}
}

func testTimersInDeadlineOrder(t *testing.T, g graph.Store, s segments.Store) {
	ctx := context.Background()
	ps := Profiles(t, g, 2)
	a, b := segments.RefString(segRef("a")), segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: "b"})
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	save(t, s,
		segments.Save{State: &segments.ProfileState{Profile: ps[0], Entries: map[string]segments.Entry{
			a: {Version: 1, Deadline: at(3)}, b: {Version: 1, Deadline: at(1)}}}, At: t0},
		segments.Save{State: &segments.ProfileState{Profile: ps[1], Entries: map[string]segments.Entry{
			a: {Version: 1, Deadline: at(1)}, b: {Version: 1, Deadline: at(5)}}}, At: t0})
	first, second := ps[0], ps[1]
	if second < first {
		first, second = second, first
	}
	refOf := map[string]map[int]string{ps[0]: {1: b, 3: a}, ps[1]: {1: a, 5: b}}
	tests := []struct {
		until time.Time
		limit int
		want  []string // "hour profile ref"
	}{
		{at(0), 10, nil},
		{at(1), 10, []string{fmt.Sprintf("1 %s %s", first, refOf[first][1]), fmt.Sprintf("1 %s %s", second, refOf[second][1])}},
		{at(1), 1, []string{fmt.Sprintf("1 %s %s", first, refOf[first][1])}},
		{at(4), 10, []string{fmt.Sprintf("1 %s %s", first, refOf[first][1]), fmt.Sprintf("1 %s %s", second, refOf[second][1]), fmt.Sprintf("3 %s %s", ps[0], a)}},
	}
	for _, tc := range tests {
		got := dueTimers(t, s, tc.until, tc.limit)
		if !slices.Equal(got, tc.want) {
			t.Errorf("due at %s (limit %d): %q, want %q", tc.until, tc.limit, got, tc.want)
		}
	}
	// A new save replaces the profile's timers.
	st := state(t, s, ps[0])
	st.Entries = map[string]segments.Entry{a: {Version: 1, Deadline: at(2)}}
	save(t, s, segments.Save{State: st, At: at(1)})
	if _, err := s.DueTimers(ctx, at(10), 10); err != nil {
		t.Fatal(err)
	}
	got := dueTimers(t, s, at(10), 10)
	want := []string{fmt.Sprintf("1 %s %s", ps[1], a), fmt.Sprintf("2 %s %s", ps[0], a), fmt.Sprintf("5 %s %s", ps[1], b)}
	if !slices.Equal(got, want) {
		t.Errorf("timers after a save: %q, want %q", got, want)
	}
}

func dueTimers(t *testing.T, s segments.Store, until time.Time, limit int) []string {
	t.Helper()
	ts, err := s.DueTimers(context.Background(), until, limit)
	if err != nil {
		t.Fatalf("due timers: %v", err)
	}
	var out []string
	for _, tm := range ts {
		out = append(out, fmt.Sprintf("%d %s %s", int(tm.At.Sub(t0)/time.Hour), tm.Profile, segments.RefString(tm.Ref)))
	}
	return out
}

func testDeleteDropsMembers(t *testing.T, g graph.Store, s segments.Store) {
	ps := Profiles(t, g, 3)
	d := Define(t, s, lang.KindSegment, "vip", "true")
	Define(t, s, lang.KindSegment, "vipx", "true")
	vip, vipx := segments.RefString(segRef("vip")), segments.RefString(segRef("vipx"))
	for _, p := range ps {
		save(t, s, segments.Save{State: &segments.ProfileState{Profile: p, Entries: map[string]segments.Entry{vip: member(), vipx: member()}}, At: t0})
	}
	want := slices.Sorted(slices.Values(ps))
	if got := members(t, s, "vip"); !slices.Equal(got, want) {
		t.Fatalf("members %q, want %q", got, want)
	}
	if err := s.DeleteDefinition(context.Background(), d.Ref(), 1); err != nil {
		t.Fatal(err)
	}
	if got := members(t, s, "vip"); len(got) != 0 {
		t.Errorf("a deleted segment has members %q", got)
	}
	if got := members(t, s, "vipx"); !slices.Equal(got, want) {
		t.Errorf("deleting vip changed vipx's members: %q", got)
	}
}

// Two evaluations of one profile from the same revision: one save wins,
// the other is refused as stale, and one record is written.
func testConcurrentSavesOneWins(t *testing.T, g graph.Store, s segments.Store) {
	ps := Profiles(t, g, 1)
	Define(t, s, lang.KindSegment, "vip", "true")
	vip := segments.RefString(segRef("vip"))
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.SaveStates(context.Background(), []segments.Save{{State: &segments.ProfileState{Profile: ps[0],
				Entries: map[string]segments.Entry{vip: member()}}, Reason: segments.ReasonData, At: t0}})
		})
	}
	wg.Wait()
	graphtest.ExactlyOneWins(t, "saves from one revision", errs, func(err error) bool { return errors.Is(err, segments.ErrStale) })
	if cs := allChanges(t, s); len(cs) != 1 {
		t.Errorf("%d change records, want 1", len(cs))
	}
}

// IngestRecording ingests observations with a stitcher that records data
// changes (graph.Stitcher.RecordDataChanges), one transaction each.
func IngestRecording(t *testing.T, g graph.Store, obs ...*graph.Observation) {
	t.Helper()
	st := graph.NewStitcher(g, graph.DefaultConfig())
	st.RecordDataChanges = true
	for _, o := range obs {
		if _, err := st.Ingest(context.Background(), []*graph.Observation{o}); err != nil {
			t.Fatalf("ingest %s: %v", o.MessageID, err)
		}
	}
}

func pending(t *testing.T, s segments.Store) []string {
	t.Helper()
	ps, err := s.PendingChanges(context.Background(), "", 100)
	if err != nil {
		t.Fatalf("pending changes: %v", err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s %q %q %d", p.Profile, p.Events, p.Traits, p.Mark))
	}
	return out
}

// Data changes are written with the events, merge per profile until they
// are taken, and are not taken from under a writer that added to them.
func testPendingChanges(t *testing.T, g graph.Store, s segments.Store) {
	ctx := context.Background()
	graphtest.Ingest(t, g, graphtest.Obs("m0", t0, "user_id:u0")) // records nothing
	if got := pending(t, s); len(got) != 0 {
		t.Fatalf("a stitcher not recording data changes wrote %q", got)
	}
	order := graphtest.Obs("m1", t0, "user_id:u1")
	order.Event.Name = "Order"
	identify := graphtest.Obs("m2", t0, "user_id:u1")
	identify.Event, identify.Traits = graph.Event{Type: "identify"}, map[string]any{"address": map[string]any{"city": "Lyon"}}
	IngestRecording(t, g, order, identify, graphtest.Obs("m3", t0, "user_id:u0"))
	u0, u1 := graphtest.ProfileOf(t, g, "user_id:u0").ID, graphtest.ProfileOf(t, g, "user_id:u1").ID
	want := []string{fmt.Sprintf(`%s ["Tested"] [] 1`, u0), fmt.Sprintf(`%s ["Order"] ["address.city"] 2`, u1)}
	if u1 < u0 {
		want[0], want[1] = want[1], want[0]
	}
	if got := pending(t, s); !slices.Equal(got, want) {
		t.Fatalf("pending %q, want %q", got, want)
	}
	ps, err := s.PendingChanges(ctx, "", 1)
	if err != nil || len(ps) != 1 {
		t.Fatalf("limit 1: %v %v", ps, err)
	}
	// Paging: after the first, the second; after the second, none; after
	// a prefix of an ID, that ID.
	lo, hi := min(u0, u1), max(u0, u1)
	for _, c := range []struct{ after, want string }{{lo, hi}, {hi, ""}, {hi[:len(hi)-1], hi}} {
		page, err := s.PendingChanges(ctx, c.after, 10)
		if err != nil || len(page) > 1 || (c.want == "") != (len(page) == 0) || (len(page) == 1 && page[0].Profile != c.want) {
			t.Fatalf("pending after %s: %+v %v, want %q", c.after, page, err, c.want)
		}
	}
	// More arrives for the first profile after it was read: taking it
	// then leaves the merged change.
	first := ps[0]
	more := graphtest.Obs("m4", t0, "user_id:u0")
	more.Event.Name = "Page"
	if first.Profile == u1 {
		more.Identifiers = []graph.Key{{Type: "user_id", Value: "u1"}}
	}
	IngestRecording(t, g, more)
	if err := s.DonePending(ctx, first); err != nil {
		t.Fatal(err)
	}
	got := pending(t, s)
	if len(got) != 2 || !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, first.Profile+` ["`) && strings.Contains(p, `"Page"`) }) {
		t.Fatalf("after taking a change that grew: %q", got)
	}
	take(t, s)
	if got := pending(t, s); len(got) != 0 {
		t.Errorf("pending after taking all: %q", got)
	}
	// A steward action moves events and traits with identifiers: its
	// profiles are to be evaluated entirely.
	IngestRecording(t, g, graphtest.Obs("m5", t0, "user_id:u1", "anonymous_id:a1"))
	take(t, s)
	st := graph.NewStitcher(g, graph.DefaultConfig())
	st.RecordDataChanges = true
	entry, err := st.Split(ctx, "steward:test", graphtest.ProfileOf(t, g, "user_id:u1").ID, []graph.Key{{Type: "anonymous_id", Value: "a1"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	ps, err = s.PendingChanges(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, p := range ps {
		if p.All {
			all = append(all, p.Profile)
		}
	}
	if want := slices.Sorted(slices.Values(entry.Profiles)); !slices.Equal(all, want) {
		t.Errorf("after a split, pending changes of %q are All, want %q", all, want)
	}
}

// A taker running beside a writer of one profile sees every event the
// writer stored: a change merged in while the taker held an older read is
// never deleted with it.
func testPendingUnderConcurrentWrites(t *testing.T, g graph.Store, s segments.Store) {
	ctx := context.Background()
	const n = 60
	seen := map[string]bool{}
	takeSeen := func() error {
		ps, err := s.PendingChanges(ctx, "", 10)
		if err != nil {
			return err
		}
		for _, p := range ps {
			for _, e := range p.Events {
				seen[e] = true
			}
			if err := s.DonePending(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
	written := make(chan error, 1)
	go func() {
		st := graph.NewStitcher(g, graph.DefaultConfig())
		st.RecordDataChanges = true
		for i := range n {
			o := graphtest.Obs(fmt.Sprintf("c%d", i), t0, "user_id:u")
			o.Event.Name = fmt.Sprintf("E%d", i)
			if _, err := st.Ingest(ctx, []*graph.Observation{o}); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	for done := false; !done; {
		select {
		case err := <-written:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
		}
		if err := takeSeen(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if e := fmt.Sprintf("E%d", i); !seen[e] {
			t.Errorf("event %s was stored but its pending change was taken unseen", e)
		}
	}
}

// MembersAt, with random entries and exits saved between its pages (and
// entries of other segments), returns exactly the members at its start,
// each once: over many random sequences and page sizes.
func testMembersAt(t *testing.T, g graph.Store, s segments.Store) {
	ctx := context.Background()
	ps := Profiles(t, g, 40)
	Define(t, s, lang.KindSegment, "vip", "true")
	Define(t, s, lang.KindSegment, "other", "true")
	// A computed trait of the segment's key: its change records name no
	// segment, so they say nothing of vip's members.
	Define(t, s, lang.KindComputed, "vip", "1")
	traitVIP := segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: "vip"})
	rng := rand.New(rand.NewPCG(7, 11))
	// flip saves a random profile's state with vip (and other, and the
	// computed vip's value) toggled.
	flip := func() {
		p := ps[rng.IntN(len(ps))]
		st := state(t, s, p)
		next := &segments.ProfileState{Profile: p, Rev: st.Rev, Entries: maps.Clone(st.Entries)}
		if next.Entries == nil {
			next.Entries = map[string]segments.Entry{}
		}
		if rng.IntN(2) == 0 {
			next.Entries[traitVIP] = segments.Entry{Version: 1, Value: &segments.Value{Type: "number", Number: float64(rng.IntN(3))}}
		}
		ref := segments.RefString(segRef([]string{"vip", "vip", "other"}[rng.IntN(3)]))
		if _, ok := next.Entries[ref]; ok {
			delete(next.Entries, ref)
		} else {
			next.Entries[ref] = member()
		}
		save(t, s, segments.Save{State: next, Reason: segments.ReasonData, At: t0})
	}
	for round := range 25 {
		for range 10 {
			flip()
		}
		want := members(t, s, "vip")
		page := 1 + rng.IntN(7)
		var got []string
		withData := 0 // pages read with their members' data
		// Every other round reads the members' data with the pages
		// (MembersDataAt); a store that reads them gives each member's
		// as ProfilesData does.
		var q *graph.DataQuery
		if round%2 == 1 {
			q = &graph.DataQuery{Keys: true}
		}
		at, err := segments.MembersDataAt(ctx, s, "vip", page, q, func(_ uint64, ids []string, data []*graph.ProfileData) error {
			if len(ids) > page {
				t.Fatalf("a page of %d, asked for %d", len(ids), page)
			}
			if data != nil {
				if q == nil || len(data) != len(ids) {
					t.Fatalf("data %v for %q, query %v", data, ids, q)
				}
				want, err := g.ProfilesData(ctx, ids, *q)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(profileData(data)) != fmt.Sprint(profileData(want)) {
					t.Fatalf("MembersDataAt gave %v for %q, ProfilesData %v", profileData(data), ids, profileData(want))
				}
				withData++
			}
			got = append(got, ids...)
			for range rng.IntN(6) {
				flip()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if at == 0 {
			t.Fatal("no point in time returned")
		}
		if slices.Sort(got); !slices.Equal(got, want) {
			t.Fatalf("round %d (pages of %d): members at the start %q, MembersAt gave %q", round, page, want, got)
		}
		if _, reads := s.(segments.MembersDataStore); reads && q != nil && len(want) > 0 && withData == 0 {
			t.Fatalf("round %d: a MembersDataStore read no page with its members' data", round)
		}
	}
}

// profileData prints data for comparing: nil, or ID and keys.
func profileData(data []*graph.ProfileData) []string {
	out := make([]string, len(data))
	for i, d := range data {
		if d != nil {
			out[i] = fmt.Sprint(d.ID, d.Keys)
		}
	}
	return out
}

// take removes every pending change.
func take(t *testing.T, s segments.Store) {
	t.Helper()
	ps, err := s.PendingChanges(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := s.DonePending(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}
