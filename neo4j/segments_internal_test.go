package neo4j

import (
	"context"
	"testing"
	"time"

	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// Membership is visible in Cypher as (:Profile)-[:IN_SEGMENT {since,
// version}]->(:Segment), kept with the state it mirrors.
func TestInSegmentRelationships(t *testing.T) {
	s := openTest(t)
	g := s.Segments()
	ps := segtest.Profiles(t, s, 2)
	segtest.Define(t, g, lang.KindSegment, "vip", "true")
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	vip := segments.RefString(segments.Ref{Kind: lang.KindSegment, Key: "vip"})
	entries := map[string]segments.Entry{vip: {Version: 1, Member: true, Since: since}}
	if _, err := g.SaveStates(context.Background(), []segments.Save{
		{State: &segments.ProfileState{Profile: ps[0], Entries: entries}, At: since},
		{State: &segments.ProfileState{Profile: ps[1], Entries: entries}, At: since},
	}); err != nil {
		t.Fatal(err)
	}
	const rel = `MATCH (p:Profile {id: $id})-[m:IN_SEGMENT {version: 1}]->(:Segment {key: "vip"}) WHERE m.since = $since RETURN count(m)`
	if n := count(t, s, rel, map[string]any{"id": ps[0], "since": since}); n != 1 {
		t.Fatalf("%d IN_SEGMENT relationships from %s, want 1", n, ps[0])
	}
	// Exiting deletes the relationship; the other member keeps its own.
	if _, err := g.SaveStates(context.Background(), []segments.Save{{State: &segments.ProfileState{Profile: ps[0], Rev: 1}, At: since}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want int64
	}{{ps[0], 0}, {ps[1], 1}} {
		if n := count(t, s, rel, map[string]any{"id": c.id, "since": since}); n != c.want {
			t.Errorf("%d IN_SEGMENT relationships from %s, want %d", n, c.id, c.want)
		}
	}
}
