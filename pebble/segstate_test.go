package pebble

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// TestJSONStatesRead: a segment state and a change record as format
// version 2 wrote them (JSON) read beside the compact ones of version 3;
// the state's next save rewrites it compactly from its revision, and the
// records and timers follow from it as from any stored state.
func TestJSONStatesRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := s.Segments()
	if _, err := g.PutDefinition(ctx, &segments.Definition{Kind: lang.KindSegment, Key: "vip", Source: "true"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, &graph.Changes{Profiles: []*graph.Profile{{ID: "p_old"}, {ID: "p_new"}}})
	}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	vip := segments.RefString(segments.Ref{Kind: lang.KindSegment, Key: "vip"})
	ltv := segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: "ltv"})
	old := &segments.ProfileState{Profile: "p_old", Rev: 4, Definitions: "d1",
		Identity: segments.Identity{Counts: map[string]int{"email": 1}},
		Entries: map[string]segments.Entry{
			vip: {Version: 1, Deadline: t0.Add(time.Hour)},
			ltv: {Version: 1, Value: &segments.Value{Type: "number", Number: 12}},
		}}
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SaveStates(ctx, []segments.Save{{State: &segments.ProfileState{Profile: "p_new"}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, dir)
	if err := db.Set(key(pSegState, []byte("p_old")), data, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(timerKey(segments.Timer{At: t0.Add(time.Hour), Profile: "p_old", Ref: segments.Ref{Kind: lang.KindSegment, Key: "vip"}}), []byte("{}"), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	// A change record as version 2 wrote it: the next ones follow it.
	oldChange := &segments.ChangeRecord{Sequence: 2, Segment: "vip", Version: 1, Profile: "p_new", Direction: segments.Entered, Reason: segments.ReasonData, Time: t0}
	if data, err = json.Marshal(oldChange); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(changeKey(2), data, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g = s.Segments()
	sts, err := g.States(ctx, []string{"p_old", "p_new"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sts[0], old) {
		t.Fatalf("JSON state read as\n%+v\nwant\n%+v", sts[0], old)
	}
	if sts[1].Rev != 1 {
		t.Fatalf("compact state %+v, want revision 1", sts[1])
	}
	next := *old
	next.Entries = map[string]segments.Entry{ltv: {Version: 1, Value: &segments.Value{Type: "number", Number: 13}}}
	cs, err := g.SaveStates(ctx, []segments.Save{{State: &next, Reason: segments.ReasonData, At: t0}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Trait != "ltv" || cs[0].Previous.Number != 12 || cs[0].Value.Number != 13 || cs[0].Sequence != 3 {
		t.Fatalf("records %+v", cs)
	}
	all, err := g.Changes(ctx, 0, 10)
	if err != nil || len(all) != 2 || !reflect.DeepEqual(all[0], oldChange) || !reflect.DeepEqual(all[1], cs[0]) {
		t.Fatalf("changes %+v, %v; want the JSON record, then the compact one", all, err)
	}
	raw, ok, err := s.get(pSegState, []byte("p_old"))
	if err != nil || !ok || raw[0] == '{' {
		t.Fatalf("state after its save: %q %v %v; want the compact encoding", raw, ok, err)
	}
	if ts, err := g.DueTimers(ctx, t0.Add(2*time.Hour), 10); err != nil || len(ts) != 0 {
		t.Fatalf("timers %+v %v; want the JSON state's timer gone", ts, err)
	}
}

// TestMembersAfterSegmentRecreated: a segment deleted and created again
// lost its member index; a save after the change of definitions writes
// its members again even when the profile's entry did not change.
func TestMembersAfterSegmentRecreated(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := s.Segments()
	def := &segments.Definition{Kind: lang.KindSegment, Key: "vip", Source: "true"}
	if _, err := g.PutDefinition(ctx, def, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, &graph.Changes{Profiles: []*graph.Profile{{ID: "p_1"}}})
	}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	entries := map[string]segments.Entry{segments.RefString(def.Ref()): {Version: 1, Member: true, Since: t0}}
	if _, err := g.SaveStates(ctx, []segments.Save{{State: &segments.ProfileState{Profile: "p_1", Definitions: "a", Entries: entries}}}); err != nil {
		t.Fatal(err)
	}
	if err := g.DeleteDefinition(ctx, def.Ref(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := g.PutDefinition(ctx, def, 0); err != nil {
		t.Fatal(err)
	}
	if ms, err := g.Members(ctx, "vip", "", 10); err != nil || len(ms) != 0 {
		t.Fatalf("members of the new segment before a save: %v %v", ms, err)
	}
	if _, err := g.SaveStates(ctx, []segments.Save{{State: &segments.ProfileState{Profile: "p_1", Rev: 1, Definitions: "b", Entries: entries}}}); err != nil {
		t.Fatal(err)
	}
	if ms, err := g.Members(ctx, "vip", "", 10); err != nil || len(ms) != 1 || ms[0] != "p_1" {
		t.Fatalf("members after the save: %v %v; want p_1", ms, err)
	}
}
