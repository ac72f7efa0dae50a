package suppression_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/suppression"
)

func open(t *testing.T) (*pebble.Store, *suppression.Lists) {
	t.Helper()
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &suppression.Lists{Store: s.SuppressionLists(), Hasher: erase.NewHasher([]byte("pepper-0123456789abcdef")),
		Norm: graph.NewNormalizer("GB"), Types: func() []string { return []string{"loyalty_id"} }}
}

// Check applies an entry to the scopes it names and no other.
func TestCheckScopes(t *testing.T) {
	ctx := context.Background()
	_, l := open(t)
	k := graph.Key{Type: graph.TypePhone, Value: "+447700900123"}
	for _, c := range []struct {
		scope                suppression.Scope
		destination, channel string
		want                 bool
	}{
		{suppression.Scope{Kind: suppression.Global}, "dst_0000000000000001", "", true},
		{suppression.Scope{Kind: suppression.Destination, Target: "dst_0000000000000001"}, "dst_0000000000000001", "sms", true},
		{suppression.Scope{Kind: suppression.Destination, Target: "dst_0000000000000001"}, "dst_0000000000000002", "sms", false},
		{suppression.Scope{Kind: suppression.Channel, Target: "sms"}, "dst_0000000000000002", "sms", true},
		{suppression.Scope{Kind: suppression.Channel, Target: "sms"}, "dst_0000000000000002", "", false},
		{suppression.Scope{Kind: suppression.Channel, Target: "sms"}, "dst_0000000000000002", "sms-eu", false},
	} {
		// The national spelling normalises to the stored E.164 key.
		res, err := l.Add(ctx, c.scope, []suppression.Input{{Type: "phone", Value: "07700 900123"}})
		if err != nil || res.Changed != 1 || res.Keys[0] != k {
			t.Fatalf("add %v: %+v, %v", c.scope, res, err)
		}
		m, ok, err := l.Check(ctx, []graph.Key{{Type: graph.TypeEmail, Value: "x@mail.idgraph.dev"}, k}, c.destination, c.channel)
		if err != nil || ok != c.want || (ok && (m.Scope != c.scope || m.Type != "phone")) {
			t.Fatalf("%v for (%s, %q): %+v %v %v, want %v", c.scope, c.destination, c.channel, m, ok, err, c.want)
		}
		if res, err := l.Remove(ctx, c.scope, []suppression.Input{{Type: "phone", Value: "+44 7700 900123"}}); err != nil || res.Changed != 1 {
			t.Fatalf("remove %v: %+v, %v", c.scope, res, err)
		}
	}
}

// Only built-in and configured types are taken; a page is bounded.
func TestTypesAndPages(t *testing.T) {
	ctx := context.Background()
	_, l := open(t)
	g := suppression.Scope{Kind: suppression.Global}
	if _, err := l.Add(ctx, g, []suppression.Input{{Type: "loyalty_id", Value: "L-1"}, {Type: "crm_id", Value: "c1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(ctx, g, []suppression.Input{{Type: "loyalty", Value: "L-1"}}); graph.ErrorKind(err) != graph.KindInvalid {
		t.Fatalf("an unconfigured type: %v", err)
	}
	for _, n := range []int{0, suppression.MaxPage + 1} {
		if _, err := l.Entries(ctx, g, "", n); graph.ErrorKind(err) != graph.KindInvalid {
			t.Fatalf("a page of %d: %v", n, err)
		}
	}
	if es, err := l.Entries(ctx, g, "", 10); err != nil || len(es) != 2 {
		t.Fatalf("entries = %+v, %v", es, err)
	}
}

// AffectedProfiles names the live profiles holding the keys: a profile
// merged away is answered by its survivor, once.
func TestAffectedProfiles(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	st := graph.NewStitcher(s, graph.DefaultConfig())
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ingest := func(id string, keys ...graph.Key) {
		t.Helper()
		if _, err := st.Ingest(ctx, []*graph.Observation{{MessageID: id, Time: at, Identifiers: keys, Event: graph.Event{Type: "identify"}}}); err != nil {
			t.Fatal(err)
		}
	}
	ann := graph.Key{Type: graph.TypeUserID, Value: "ann"}
	a1 := graph.Key{Type: graph.TypeEmail, Value: "a1@mail.idgraph.dev"}
	a2 := graph.Key{Type: graph.TypeEmail, Value: "a2@mail.idgraph.dev"}
	bob := graph.Key{Type: graph.TypeUserID, Value: "bob"}
	ingest("1", ann, a1)
	ingest("2", a2)
	ingest("3", bob)
	before, err := s.Identifier(ctx, a2)
	if err != nil {
		t.Fatal(err)
	}
	ingest("4", ann, a2) // merges a2's profile and ann's
	live := func(k graph.Key) string {
		n, err := s.Identifier(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Profile(ctx, n.Profile)
		if err != nil {
			t.Fatal(err)
		}
		if p.MergedInto != "" {
			return p.MergedInto
		}
		return p.ID
	}
	got, err := suppression.AffectedProfiles(ctx, s, []graph.Key{a1, a2, bob, {Type: graph.TypeEmail, Value: "nobody@mail.idgraph.dev"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{live(ann), live(bob)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("AffectedProfiles = %v, want %v", got, want)
	}
	// By a2's profile before the merge, whichever survived.
	keys, err := suppression.LiveIdentifiers(ctx, s, before.Profile)
	if err != nil || !slices.Contains(keys, a1) || !slices.Contains(keys, a2) {
		t.Fatalf("LiveIdentifiers = %v, %v", keys, err)
	}
}
