package pebble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

// TestMigrationWritesMemberKeys: a version 4 store's member index holds
// only hashes; opened by this version each entry also holds its
// identifier's type and value, which is what ProfilesData then reads
// (the identifier records are deleted before the second read to show
// it), an entry whose record is gone is skipped, and the store is
// stamped.
func TestMigrationWritesMemberKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := goldenChanges()
	if err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error { return tx.Apply(ctx, c) }); err != nil {
		t.Fatal(err)
	}
	q := graph.DataQuery{Keys: true}
	want, err := s.ProfilesData(ctx, []string{"p_1", "p_3"}, q)
	if err != nil || len(want[0].Keys) != 3 || len(want[1].Keys) != 2 {
		t.Fatalf("before: %+v, %v", want, err)
	}
	s.Close()

	// As version 4 wrote it: hashes only, and one entry whose identifier
	// record is gone.
	db := rawDB(t, dir)
	entries := 0
	it, err := db.NewIter(&cpebble.IterOptions{LowerBound: pMember, UpperBound: prefixEnd(pMember)})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := db.Set(slices.Clone(it.Key()), slices.Clone(memberHash(it.Value())), nil); err != nil {
			t.Fatal(err)
		}
		entries++
	}
	if err := it.Close(); err != nil || entries != len(c.Identifiers) {
		t.Fatalf("%d member entries, %v; want %d", entries, err, len(c.Identifiers))
	}
	dangling := make([]byte, 32)
	if err := db.Set(key(pMember, []byte("p_3/"), dangling), dangling, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(formatKey, []byte("4"), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, closer, err := s.db.Get(formatKey); err != nil || string(v) != fmt.Sprint(FormatVersion) {
		t.Fatalf("format version %q, %v after the migration, want %d", v, err, FormatVersion)
	} else {
		closer.Close()
	}
	if err := s.db.DeleteRange(pIdentifier, prefixEnd(pIdentifier), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	got, err := s.ProfilesData(ctx, []string{"p_1", "p_3"}, q)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !slices.Equal(got[i].Keys, want[i].Keys) {
			t.Errorf("%s: keys %v after the migration, want %v", want[i].ID, got[i].Keys, want[i].Keys)
		}
	}
}

// TestMemberIndexKeyCorrupt: a member index value that is neither a
// hash nor a hash and a key is an error, not a wrong key.
func TestMemberIndexKeyCorrupt(t *testing.T) {
	h := make([]byte, 32)
	k := graph.Key{Type: "email", Value: "ann@corp.io"}
	types := map[string]string{}
	if got, ok, err := memberIndexKey(memberValue(h, k), types); err != nil || !ok || got != k {
		t.Fatalf("round trip: %v, %v, %v; want %v", got, ok, err, k)
	}
	if _, ok, err := memberIndexKey(h, types); err != nil || ok {
		t.Fatalf("hash only: %v, %v; want skipped", ok, err)
	}
	for _, v := range [][]byte{h[:5], append(slices.Clone(h), 0x80), append(slices.Clone(h), 9, 'e')} {
		if _, _, err := memberIndexKey(v, types); !errors.Is(err, errMemberEntry) {
			t.Errorf("memberIndexKey(%q) = %v, want errMemberEntry", v, err)
		}
	}
}
