package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
)

// Entries is implemented, in its own tests, by a backend so that
// NothingLeftInIndexes can read what it holds beneath its read paths.
type Entries interface {
	// IndexEntries returns every index and secondary entry the store
	// holds, as text: its key and value (pebble), or a node's or
	// relationship's labels and properties (neo4j), which its indexes
	// are built from. Segment change records and destinations' sent
	// states are left out: an erasure writes them, naming the profile, to
	// tell destinations that the person left.
	IndexEntries(ctx context.Context) ([]string, error)
	// KeyForms are the forms an identifier takes in those entries besides
	// its value (its keyed hash, or "type:value").
	KeyForms(k graph.Key) []string
}

// marker is the long random part of a generated person's values.
func (p Person) marker() string { return strings.TrimPrefix(p.Keys[2].Value, "u-") }

// naming returns the entries that name p (a profile of group, one of
// their identifiers' forms, or their marker).
func naming(t *testing.T, x Entries, p Person, group []string) []string {
	t.Helper()
	entries, err := x.IndexEntries(context.Background())
	if err != nil {
		t.Fatalf("index entries: %v", err)
	}
	needles := append([]string{p.marker(), p.Keys[4].Value}, group...)
	for _, k := range p.Keys {
		needles = append(needles, x.KeyForms(k)...)
	}
	var out []string
	for _, e := range entries {
		for _, n := range needles {
			if strings.Contains(e, n) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// testNothingLeftInIndexes: after an erasure no index or secondary entry
// names the person's profiles, identifiers or values, while those of the
// people beside them are still there.
func testNothingLeftInIndexes(t *testing.T, x stores) {
	ix, ok := x.g.(Entries)
	if !ok {
		t.Fatalf("%T does not show its index entries (erase/storetest.Entries)", x.g)
	}
	people := Generate(t, x.g, 3, 21)
	enrol(t, x.g, x.s, people)
	recordConsent(t, x.g, people)
	v := people[1]
	// The hub marking holds the first identifier apart from the rest:
	// the person is then two profiles, each erased.
	markHub(t, x.g, v.Keys[0])
	var group []string
	for _, k := range v.Keys {
		if prof := live(t, x.g, k); !slices.Contains(group, prof.ID) {
			group = append(append(group, prof.ID), prof.Absorbed...)
		}
	}
	// Blocking entries, as the matcher files them.
	if err := x.g.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, &graph.Changes{Blocks: []graph.BlockEntry{{Profile: group[0], Keys: []string{"name:" + v.marker()}}}})
	}); err != nil {
		t.Fatalf("file blocking entries: %v", err)
	}
	if got := naming(t, ix, v, group); len(got) == 0 {
		t.Fatal("no index entry names the person before erasure: the check would prove nothing")
	}
	for _, k := range v.Keys {
		if n, err := x.g.Identifier(context.Background(), k); err == nil {
			eraseProfile(t, x.e, n.Profile, true)
		}
	}
	for _, e := range naming(t, ix, v, group) {
		t.Errorf("after erasure an entry still names the person: %q", e)
	}
	for _, p := range []Person{people[0], people[2]} {
		other := live(t, x.g, p.Keys[0])
		if len(naming(t, ix, p, []string{other.ID})) == 0 {
			t.Errorf("the erasure took the entries of %s too", other.ID)
		}
	}
}

// testEraseBesideIngest: an erasure that runs while other people are
// ingested loses nothing of theirs and leaves nothing of the person.
func testEraseBesideIngest(t *testing.T, g graph.Store, e erase.Store, s segments.Store) {
	ctx := context.Background()
	people := Generate(t, g, 3, 31)
	v := people[1]
	prof := live(t, g, v.Keys[0])
	group := append([]string{prof.ID}, prof.Absorbed...)
	before := snapshots(t, g, s, people, 1)

	others, msgs := plan(8, 32, len(people))
	started := make(chan struct{})
	var wg sync.WaitGroup
	var ingestErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		st := graph.NewStitcher(g, graph.DefaultConfig())
		st.RecordDataChanges = true
		for i, obs := range msgs {
			for _, o := range obs {
				if _, err := st.Ingest(ctx, []*graph.Observation{o}); err != nil {
					ingestErr = err
					close(started)
					return
				}
			}
			if i == 0 {
				close(started)
			}
		}
	}()
	<-started
	out := eraseProfile(t, e, prof.ID, true)
	wg.Wait()
	if ingestErr != nil {
		t.Fatalf("ingest beside the erasure: %v", ingestErr)
	}
	if out.Counts[erase.CountProfiles] != len(group) {
		t.Errorf("erased %d profiles, want %d (counts %v)", out.Counts[erase.CountProfiles], len(group), out.Counts)
	}
	gone(t, g, s, v, group, "none")
	if after := snapshots(t, g, s, people, 1); !mapsEqual(before, after) {
		t.Errorf("the people stored before changed during the erasure")
	}
	for i, p := range others {
		prof := live(t, g, p.Keys[0])
		for _, k := range p.Keys[1:] {
			if got := live(t, g, k); got.ID != prof.ID {
				t.Errorf("%s is in %s, want %s with the person's other identifiers", k, got.ID, prof.ID)
			}
		}
		evs, err := graph.Timeline(ctx, g, p.Keys, nil, 100)
		if err != nil || len(evs) != len(msgs[i]) {
			t.Errorf("person ingested beside the erasure has %d events (%v), want %d", len(evs), err, len(msgs[i]))
		}
	}
	graphtest.CheckInvariants(t, g)
}

// markHub makes k a hub: more user IDs than the hub limit are seen with
// it (user IDs that name no one, so that those kept apart from k's
// profile are not the person's).
func markHub(t *testing.T, g graph.Store, k graph.Key) {
	t.Helper()
	cfg := graph.DefaultConfig()
	cfg.HubLimit = 3
	cfg.SharedLimits = nil
	var obs []*graph.Observation
	for i := range 5 {
		obs = append(obs, graphtest.Obs(fmt.Sprintf("hub-%d", i), t0.Add(time.Hour), fmt.Sprintf("user_id:hubmate-%d", i), k.String()))
	}
	graphtest.IngestWith(t, g, cfg, obs...)
	hubs, err := g.Hubs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hubs {
		if h.Key == k {
			return
		}
	}
	t.Fatalf("%s is not a hub after %d user IDs: markings %+v", k, len(obs), hubs)
}
