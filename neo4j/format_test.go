package neo4j

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/graph"
)

// TestFormatVersion: a database records its format version; one from
// before versions were recorded opens as version 1 (and is stamped); a
// newer version is refused with both versions named.
func TestFormatVersion(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	version := func() int64 {
		t.Helper()
		recs, err := s.read(ctx, `MATCH (f:StoreFormat) RETURN f.version`, nil)
		if err != nil || len(recs) != 1 {
			t.Fatalf("format nodes: %d, %v; want one", len(recs), err)
		}
		v, _ := recs[0].Values[0].(int64)
		return v
	}
	if v := version(); v != FormatVersion {
		t.Fatalf("format version %d, want %d", v, FormatVersion)
	}
	reopen := func() error {
		s2, err := Open(ctx, os.Getenv("NEO4J_URI"), os.Getenv("NEO4J_USER"), os.Getenv("NEO4J_PASSWORD"), WithDatabase(os.Getenv("NEO4J_DATABASE")))
		if err == nil {
			s2.Close()
		}
		return err
	}
	// As written before versions were recorded: data, no format node.
	if _, err := s.write(ctx, `MATCH (f:StoreFormat) DELETE f CREATE (:Profile {id: "p_old"})`, nil); err != nil {
		t.Fatal(err)
	}
	if err := reopen(); err != nil {
		t.Fatalf("a database without a format version: %v", err)
	}
	if v := version(); v != FormatVersion {
		t.Fatalf("after opening an unversioned database: version %d, want %d", v, FormatVersion)
	}
	t.Cleanup(func() {
		if _, err := s.write(ctx, `MATCH (f:StoreFormat) SET f.version = $v`, map[string]any{"v": FormatVersion}); err != nil {
			t.Error(err)
		}
	})
	if _, err := s.write(ctx, `MATCH (f:StoreFormat) SET f.version = 2`, nil); err != nil {
		t.Fatal(err)
	}
	err := reopen()
	if !errors.Is(err, graph.ErrStoreFormat) || !strings.Contains(err.Error(), "format version 2") || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("opening a version 2 database: %v; want ErrStoreFormat naming versions 2 and 1", err)
	}
	t.Log(err)
}

// TestPendingChangesAdopted: a database written when pending data changes
// were PendingChange nodes keeps them: opening moves each into its
// profile's DataChange, due, merged with what is there.
func TestPendingChangesAdopted(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, err := s.write(ctx, `CREATE (:PendingChange {profile: "p_a", events: ["Order"], traits: ["plan"], all: false, mark: 3}),
		(:PendingChange {profile: "p_b", events: [], traits: [], all: true, mark: 1}),
		(:DataChange {profile: "p_b", events: ["Page"], traits: [], all: false, mark: 7})`, nil); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, os.Getenv("NEO4J_URI"), os.Getenv("NEO4J_USER"), os.Getenv("NEO4J_PASSWORD"), WithDatabase(os.Getenv("NEO4J_DATABASE")))
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	ps, err := s.Segments().PendingChanges(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v", ps)
	want := `[{DataChange:{Profile:p_a Events:[Order] Traits:[plan] All:false} Mark:1} {DataChange:{Profile:p_b Events:[Page] Traits:[] All:true} Mark:8}]`
	if got != want {
		t.Fatalf("pending after opening %s, want %s", got, want)
	}
	if recs, err := s.read(ctx, `MATCH (old:PendingChange) RETURN count(old)`, nil); err != nil || recs[0].Values[0].(int64) != 0 {
		t.Fatalf("PendingChange nodes left: %v %v", recs, err)
	}
}
