package pebble_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/pebble"
)

// TestPurgeRemovesErasedMarkers erases a person whose identifier, trait
// and event carry long random markers, then purges the store: before the
// purge the raw files still hold the markers (the test can see them),
// after it no file does, and another person's marker is still there.
func TestPurgeRemovesErasedMarkers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	marker := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return "mk" + hex.EncodeToString(b)
	}
	idMark, traitMark, eventMark, keep := marker(), marker(), marker(), marker()
	s, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := graphtest.Obs("m1", time.Now(), "user_id:"+idMark)
	o.Traits = map[string]any{"name": traitMark}
	o.Event.Properties = []byte(`{"note":"` + eventMark + `"}`)
	graphtest.Ingest(t, s, o, graphtest.Obs("m2", time.Now(), "user_id:"+keep))
	p := graphtest.ProfileOf(t, s, "user_id:"+idMark)
	if _, err := s.Erasure().ErasePerson(ctx, erase.Request{ID: "r1", Profile: p.ID, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identifier(ctx, graph.Key{Type: "user_id", Value: idMark}); graph.ErrorKind(err) != graph.KindNotFound {
		t.Fatalf("not erased: %v", err)
	}
	s.Close()
	markers := []string{idMark, traitMark, eventMark}
	found, err := pebble.ScanFiles(dir, markers)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("before the purge no file holds the erased markers: the scan cannot tell anything")
	}
	t.Logf("before purge: %d of %d markers on disk", len(found), len(markers))
	if err := pebble.Purge(ctx, dir); err != nil {
		t.Fatal(err)
	}
	found, err = pebble.ScanFiles(dir, append(markers, keep))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range markers {
		if files := found[m]; len(files) > 0 {
			t.Errorf("marker %s… still in %v after the purge", m[:10], files)
		}
	}
	if len(found[keep]) == 0 {
		t.Error("the purge lost another person's data")
	}
	s, err = pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	graphtest.ProfileOf(t, s, "user_id:"+keep)
}
