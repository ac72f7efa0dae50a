package pebble

import (
	"context"
	"fmt"
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// TestMigrationCountsMembers: a version 1 store has memberships and no
// counts; opened by this version it has both, and is stamped.
func TestMigrationCountsMembers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"vip": 3, "v": 1, "vipx": 0}
	for _, k := range []string{"vip", "v", "vipx"} {
		if _, err := s.Segments().PutDefinition(ctx, &segments.Definition{Kind: lang.KindSegment, Key: k, Source: "true"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		id := fmt.Sprintf("p_%d", i)
		if err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
			return tx.Apply(ctx, &graph.Changes{Profiles: []*graph.Profile{{ID: id}}})
		}); err != nil {
			t.Fatal(err)
		}
		entries := map[string]segments.Entry{segments.RefString(segments.Ref{Kind: lang.KindSegment, Key: "vip"}): {Version: 1, Member: true}}
		if i == 0 {
			entries[segments.RefString(segments.Ref{Kind: lang.KindSegment, Key: "v"})] = segments.Entry{Version: 1, Member: true}
		}
		if _, err := s.Segments().SaveStates(ctx, []segments.Save{{State: &segments.ProfileState{Profile: id, Entries: entries}}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	db := rawDB(t, dir)
	if err := db.DeleteRange(pSegCount, prefixEnd(pSegCount), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(formatKey, []byte("1"), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, n := range want {
		if got, err := s.Segments().MemberCount(ctx, k); err != nil || got != n {
			t.Errorf("segment %s: count %d, %v; want %d", k, got, err, n)
		}
	}
	v, closer, err := s.db.Get(formatKey)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if string(v) != fmt.Sprint(FormatVersion) {
		t.Errorf("format version %q after the migration, want %d", v, FormatVersion)
	}
}
