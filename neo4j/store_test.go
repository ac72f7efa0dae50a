package neo4j

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/testlock"
)

// openTest connects to the server named by NEO4J_URI (NEO4J_USER,
// NEO4J_PASSWORD, NEO4J_DATABASE) and empties it: never point it at a
// database whose data you want to keep. Start a throwaway server with
//
//	scripts/neo4j-dev-start.sh /tmp/neo4j-test $(scripts/free-port.sh)
func openTest(tb testing.TB) *Store {
	tb.Helper()
	uri := os.Getenv("NEO4J_URI")
	if uri == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("NEO4J_URI is not set; CI must provide a Neo4j server")
		}
		tb.Skip("NEO4J_URI is not set; start a server with scripts/neo4j-dev-start.sh DIR PORT and set NEO4J_URI=bolt://127.0.0.1:PORT")
	}
	testlock.Neo4j(tb)
	ctx := context.Background()
	s, err := Open(ctx, uri, os.Getenv("NEO4J_USER"), os.Getenv("NEO4J_PASSWORD"), WithDatabase(os.Getenv("NEO4J_DATABASE")))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := s.Reset(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

// count runs a raw count query, to look at what the Reader hides.
func count(t *testing.T, s *Store, cypher string, params map[string]any) int64 {
	t.Helper()
	recs, err := s.read(context.Background(), cypher, params)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := recs[0].Values[0].(int64)
	return n
}

// sameJSON compares records through their JSON form, which for UTC times
// is exact to the nanosecond, so it implies time.Time.Equal.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got  %s\n want %s", what, g, w)
	}
}

var (
	t0    = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	kAnon = graph.Key{Type: graph.TypeAnonymousID, Value: "anon-1"}
	kMail = graph.Key{Type: graph.TypeEmail, Value: "ada@example.org"}
	kUser = graph.Key{Type: graph.TypeUserID, Value: "u:1"} // a colon in the value survives
)

func TestRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()

	live := &graph.Profile{ID: "p_1", CreatedAt: t0, UpdatedAt: t0.Add(time.Nanosecond),
		Absorbed: []string{"p_2"}, Counts: map[string]int{"anonymous_id": 1, "email": 1, "user_id": 1},
		Traits: map[string]graph.Trait{
			"name":     {Value: "Ada", Source: "web", Time: t0},
			"plan.mrr": {Value: 42.5, Source: "crm", Time: t0.Add(time.Second)},
			"vip":      {Value: true, Source: "crm", Time: t0},
		}}
	absorbed := &graph.Profile{ID: "p_2", CreatedAt: t0.Add(time.Minute), UpdatedAt: t0.Add(time.Hour),
		MergedInto: "p_1", Counts: map[string]int{"email": 1}, Traits: map[string]graph.Trait{}}
	ids := []*graph.Identifier{
		{Key: kAnon, Profile: "p_1", FirstSeen: t0, LastSeen: t0.Add(time.Hour), Sources: []string{"web", "ios"}, Strong: 1},
		// Empty and nil lists stay apart, as in JSON.
		{Key: kMail, Profile: "p_2", FirstSeen: t0, LastSeen: t0, Sources: []string{}, Hub: true, Strong: 11},
		{Key: kUser, Profile: "p_1", FirstSeen: t0, LastSeen: t0},
	}
	edge := &graph.Edge{A: kAnon, B: kMail, Score: 0.75, Kind: graph.KindExact, Status: graph.StatusPending,
		Reason:   graph.ReasonMergeProtection,
		Evidence: graph.Evidence{Sources: []string{"web"}, Count: 3, FirstSeen: t0, LastSeen: t0.Add(time.Millisecond)}}
	edge2 := &graph.Edge{A: kAnon, B: kUser, Score: 1, Kind: graph.KindExact, Status: graph.StatusAccepted,
		Evidence: graph.Evidence{Sources: []string{"web"}, Count: 1, FirstSeen: t0, LastSeen: t0}}
	ev := &graph.Event{ID: "ev_1", MessageID: "m1", Type: "track", Name: "Signed Up", Source: "web",
		Timestamp: t0, ReceivedAt: t0.Add(time.Second), Identifiers: []graph.Key{kAnon, kUser},
		Properties: json.RawMessage(`{"plan":"pro"}`), Context: json.RawMessage(`{"ip":"10.0.0.1"}`)}
	ev2 := &graph.Event{ID: "ev_2", MessageID: "m2", Type: "identify", Source: "web",
		Timestamp: t0.Add(time.Minute), ReceivedAt: t0.Add(time.Minute), Identifiers: []graph.Key{kAnon},
		Traits: json.RawMessage(`{"name":"Ada"}`)}
	merge := &graph.MergeEvent{ID: "merge_1", At: t0.Add(time.Hour), MessageID: "m1", Source: "web",
		Survivor: "p_1", Absorbed: "p_2", Edge: [2]graph.Key{kAnon, kMail}, SurvivorSize: 2, AbsorbedSize: 1}
	hub := &graph.HubMarking{ID: "hub_1", At: t0, Key: kMail, Strong: 11, Limit: 10, MessageID: "m2"}

	keys := []graph.Key{kAnon, kMail, kUser}
	pairs := [][2]graph.Key{{kAnon, kMail}, {kAnon, kUser}}
	err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		seen, err := tx.LockMessages(ctx, []string{"m1", "m2"})
		if err != nil || len(seen) != 0 {
			return fmt.Errorf("lock messages = %v, %v; want none seen", seen, err)
		}
		got, err := tx.LockIdentifiers(ctx, keys)
		if err != nil || len(got) != 0 {
			return fmt.Errorf("lock identifiers = %v, %v; want none", got, err)
		}
		ps, err := tx.LockProfiles(ctx, []string{"p_1", "p_2"})
		if err != nil || len(ps) != 0 {
			return fmt.Errorf("lock profiles = %v, %v; want none", ps, err)
		}
		es, err := tx.Edges(ctx, pairs)
		if err != nil || len(es) != 0 {
			return fmt.Errorf("edges = %v, %v; want none", es, err)
		}
		return tx.Apply(ctx, &graph.Changes{
			Identifiers: ids, Edges: []*graph.Edge{edge, edge2}, Profiles: []*graph.Profile{live, absorbed},
			Merges: []*graph.MergeEvent{merge}, Hubs: []*graph.HubMarking{hub}, Events: []*graph.Event{ev, ev2},
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	// Inside a transaction, the Lock methods return what was stored.
	err = s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		seen, err := tx.LockMessages(ctx, []string{"m1", "m2", "m3"})
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(seen, map[string]bool{"m1": true, "m2": true}) {
			t.Errorf("lock messages = %v", seen)
		}
		got, err := tx.LockIdentifiers(ctx, keys)
		if err != nil {
			return err
		}
		for _, n := range ids {
			sameJSON(t, "locked identifier "+n.Key.String(), got[n.Key], n)
		}
		ps, err := tx.LockProfiles(ctx, []string{"p_1", "p_2", "p_missing"})
		if err != nil {
			return err
		}
		if len(ps) != 2 {
			t.Errorf("lock profiles returned %d, want 2", len(ps))
		}
		sameJSON(t, "locked live profile", ps["p_1"], live)
		sameJSON(t, "locked absorbed profile", ps["p_2"], absorbed)
		es, err := tx.Edges(ctx, append(pairs, [2]graph.Key{kMail, kUser}))
		if err != nil {
			return err
		}
		if len(es) != 2 {
			t.Errorf("edges returned %d, want 2", len(es))
		}
		sameJSON(t, "edge", es[pairs[0]], edge)
		sameJSON(t, "edge2", es[pairs[1]], edge2)
		return errors.New("roll back")
	})
	if err == nil || !strings.Contains(err.Error(), "roll back") {
		t.Fatalf("update error = %v, want the fn's", err)
	}

	// Reader.
	for _, n := range ids {
		got, err := s.Identifier(ctx, n.Key)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "identifier", got, n)
		if !got.FirstSeen.Equal(n.FirstSeen) || !got.LastSeen.Equal(n.LastSeen) {
			t.Errorf("identifier times %v %v, want %v %v", got.FirstSeen, got.LastSeen, n.FirstSeen, n.LastSeen)
		}
	}
	if _, err := s.Identifier(ctx, graph.Key{Type: "email", Value: "nobody@example.org"}); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("missing identifier: err = %v, want not_found", err)
	}
	for _, p := range []*graph.Profile{live, absorbed} {
		got, err := s.Profile(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "profile", got, p)
		if !got.CreatedAt.Equal(p.CreatedAt) || !got.UpdatedAt.Equal(p.UpdatedAt) {
			t.Errorf("profile times %v %v, want %v %v", got.CreatedAt, got.UpdatedAt, p.CreatedAt, p.UpdatedAt)
		}
	}
	if _, err := s.Profile(ctx, "p_missing"); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("missing profile: err = %v, want not_found", err)
	}
	members, err := s.IdentifiersOf(ctx, []*graph.Profile{live, absorbed})
	if err != nil {
		t.Fatal(err)
	}
	// kAnon < kMail < kUser; an absorbed profile lists only its own.
	sameJSON(t, "profile identifiers", members, [][]*graph.Identifier{ids, {ids[1]}})
	gotIDs, err := s.GetIdentifiers(ctx, []graph.Key{kUser, {Type: "email", Value: "nobody@example.org"}, kAnon})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "get identifiers", gotIDs, []*graph.Identifier{ids[2], nil, ids[0]})
	gotProfiles, err := s.GetProfiles(ctx, []string{"p_2", "p_missing", "p_1"})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "get profiles", gotProfiles, []*graph.Profile{absorbed, nil, live})
	edges, err := s.EdgesOf(ctx, []graph.Key{kMail, kUser})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "edges of", edges, []*graph.Edge{edge, edge2})
	list, err := s.Profiles(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "live profiles", list, []*graph.Profile{live})
	if list, err := s.Profiles(ctx, "p_1", 10); err != nil || len(list) != 0 {
		t.Errorf("profiles after p_1 = %v, %v; want none", list, err)
	}
	timelines, err := s.Timelines(ctx, []graph.TimelineQuery{
		{Keys: []graph.Key{kAnon}, Limit: 10},
		{Keys: []graph.Key{kAnon, kUser}, Limit: 1},
		{Keys: []graph.Key{kUser, kAnon}, After: &graph.EventCursor{Timestamp: ev2.Timestamp, ID: ev2.ID}, Limit: 10},
		{Keys: []graph.Key{kMail}, Limit: 10},
		{Keys: []graph.Key{kUser}, Limit: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "timelines", timelines, [][]*graph.Event{{ev2, ev}, {ev2}, {ev}, nil, nil})
	changed, err := s.ChangedSince(ctx, live.UpdatedAt, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "changed since", changed, []*graph.Profile{live, absorbed})
	if changed, err = s.ChangedSince(ctx, time.Time{}, "", 1); err != nil || len(changed) != 1 || changed[0].ID != "p_1" {
		t.Errorf("changed since the zero time, limit 1 = %v, %v; want p_1", changed, err)
	}
	if changed, err = s.ChangedSince(ctx, absorbed.UpdatedAt.Add(time.Nanosecond), "", 10); err != nil || len(changed) != 0 {
		t.Errorf("changed after the last update = %v, %v", changed, err)
	}
	if changed, err = s.ChangedSince(ctx, absorbed.UpdatedAt, absorbed.ID, 10); err != nil || len(changed) != 0 {
		t.Errorf("changed after the last (updatedAt, id) = %v, %v", changed, err)
	}
	for _, id := range []string{"p_1", "p_2"} {
		ms, err := s.Merges(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "merges of "+id, ms, []*graph.MergeEvent{merge})
	}
	if ms, err := s.Merges(ctx, "p_3"); err != nil || len(ms) != 0 {
		t.Errorf("merges of p_3 = %v, %v", ms, err)
	}
	hubs, err := s.Hubs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "hubs", hubs, []*graph.HubMarking{hub})

	// The graph reads naturally: relationships and no lock leftovers.
	if n := count(t, s, "MATCH (:Identifier)-[r:LINKED]->(:Identifier) RETURN count(r)", nil); n != 2 {
		t.Errorf("%d LINKED relationships, want 2", n)
	}
	if n := count(t, s, "MATCH (:Event {messageId: 'm1'})-[r:SEEN_WITH]->(:Identifier) RETURN count(r)", nil); n != 2 {
		t.Errorf("%d SEEN_WITH from m1, want 2", n)
	}
	if n := count(t, s, "MATCH (n) WHERE n.lock IS NOT NULL OR n.tx IS NOT NULL RETURN count(n)", nil); n != 0 {
		t.Errorf("%d nodes kept a lock property", n)
	}
}

// TestTimes checks that times come back Equal to the nanosecond whatever
// their zone, before 1970 too; they come back in UTC.
func TestTimes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	times := []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.FixedZone("", 2*3600)),
		time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC),
		// The edges of what any store holds (storetest refuses beyond).
		graph.MinStoredTime,
		graph.MaxStoredTime.Add(-time.Nanosecond),
		time.Unix(0, time.Now().UnixNano()).Local(),
	}
	var ids []*graph.Identifier
	for i, tm := range times {
		ids = append(ids, &graph.Identifier{Key: graph.Key{Type: "device_id", Value: fmt.Sprint(i)}, Profile: "p", FirstSeen: tm, LastSeen: tm})
	}
	err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, &graph.Changes{Identifiers: ids})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range ids {
		got, err := s.Identifier(ctx, want.Key)
		if err != nil {
			t.Fatal(err)
		}
		if !got.FirstSeen.Equal(want.FirstSeen) || got.FirstSeen.Location() != time.UTC {
			t.Errorf("%s came back as %s", want.FirstSeen, got.FirstSeen)
		}
	}
	zero := &graph.Identifier{Key: graph.Key{Type: "device_id", Value: "zero"}, Profile: "p"}
	err = s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, &graph.Changes{Identifiers: []*graph.Identifier{zero}})
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Identifier(ctx, zero.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !got.FirstSeen.IsZero() || !got.LastSeen.IsZero() {
		t.Errorf("zero times came back as %v, %v", got.FirstSeen, got.LastSeen)
	}
}

func TestLockMessagesDedup(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	id := &graph.Identifier{Key: kAnon, Profile: "p_1", FirstSeen: t0, LastSeen: t0}
	event := func(msg, typ string) *graph.Event {
		return &graph.Event{ID: "ev_" + msg + typ, MessageID: msg, Type: typ, Source: "web", Timestamp: t0,
			ReceivedAt: t0, Identifiers: []graph.Key{kAnon}}
	}
	err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		seen, err := tx.LockMessages(ctx, []string{"m1", "m1", "m2"})
		if err != nil {
			return err
		}
		if len(seen) != 0 {
			t.Errorf("first lock: seen = %v", seen)
		}
		if _, err := tx.LockIdentifiers(ctx, []graph.Key{kAnon}); err != nil {
			return err
		}
		return tx.Apply(ctx, &graph.Changes{Identifiers: []*graph.Identifier{id},
			Profiles: []*graph.Profile{{ID: "p_1", CreatedAt: t0, UpdatedAt: t0, Counts: map[string]int{"anonymous_id": 1}}},
			Events:   []*graph.Event{event("m1", "track"), event("m2", "track")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		seen, err := tx.LockMessages(ctx, []string{"m1", "m3"})
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(seen, map[string]bool{"m1": true}) {
			t.Errorf("second lock: seen = %v", seen)
		}
		if _, err := tx.LockIdentifiers(ctx, []graph.Key{kAnon}); err != nil {
			return err
		}
		// A stored message is not rewritten even if Apply is handed it.
		return tx.Apply(ctx, &graph.Changes{Events: []*graph.Event{event("m1", "page"), event("m3", "page")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	events, err := graph.Timeline(ctx, s, []graph.Key{kAnon}, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range events {
		got[e.MessageID] = e.Type
	}
	if want := map[string]string{"m1": "track", "m2": "track", "m3": "page"}; !reflect.DeepEqual(got, want) || len(events) != 3 {
		t.Errorf("events = %v (%d), want %v", got, len(events), want)
	}
	if n := count(t, s, "MATCH (e:Event {messageId: 'm1'})-[r:SEEN_WITH]->() RETURN count(r)", nil); n != 1 {
		t.Errorf("m1 has %d SEEN_WITH, want 1", n)
	}

	// A message locked but not applied is not stored.
	err = s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		if _, err := tx.LockMessages(ctx, []string{"m4", "m5"}); err != nil {
			return err
		}
		return tx.Apply(ctx, &graph.Changes{Events: []*graph.Event{event("m5", "page")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "MATCH (e:Event) WHERE e.messageId IN ['m4', 'm5'] RETURN count(e)", nil); n != 1 {
		t.Errorf("%d events for m4 and m5, want 1 (m5)", n)
	}

	// Through the stitcher.
	st := graph.NewStitcher(s, graph.DefaultConfig())
	o := &graph.Observation{MessageID: "m9", Source: "web", Time: t0, Identifiers: []graph.Key{kAnon, kMail}}
	r1, err := st.Ingest(ctx, []*graph.Observation{o})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := st.Ingest(ctx, []*graph.Observation{o, o})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Stored != 1 || r1.Duplicates != 0 || r2.Stored != 0 || r2.Duplicates != 2 {
		t.Errorf("results %+v %+v, want 1 stored then 2 duplicates", r1, r2)
	}
}

func TestUnusedStubsDeleted(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	stubs := "MATCH (i:Identifier) WHERE i.profile IS NULL RETURN count(i)"

	// Rolled back: stubs vanish with the transaction.
	err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		if _, err := tx.LockIdentifiers(ctx, []graph.Key{kAnon, kMail}); err != nil {
			return err
		}
		return errors.New("give up")
	})
	if err == nil {
		t.Fatal("want the fn's error")
	}
	if n := count(t, s, "MATCH (i:Identifier) RETURN count(i)", nil); n != 0 {
		t.Errorf("%d identifiers after rollback", n)
	}

	// Committed: Apply drops the stubs it is told are unused.
	err = s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		got, err := tx.LockIdentifiers(ctx, []graph.Key{kAnon, kMail, kUser})
		if err != nil {
			return err
		}
		if len(got) != 0 {
			t.Errorf("stubs reported as stored: %v", got)
		}
		return tx.Apply(ctx, &graph.Changes{
			Identifiers: []*graph.Identifier{{Key: kAnon, Profile: "p_1", FirstSeen: t0, LastSeen: t0}},
			Unused:      []graph.Key{kMail, kUser},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, stubs, nil); n != 0 {
		t.Errorf("%d stubs left", n)
	}
	// Unused never deletes a stored identifier.
	err = s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		if _, err := tx.LockIdentifiers(ctx, []graph.Key{kAnon}); err != nil {
			return err
		}
		return tx.Apply(ctx, &graph.Changes{Unused: []graph.Key{kAnon}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identifier(ctx, kAnon); err != nil {
		t.Errorf("stored identifier gone: %v", err)
	}

	// An alias locks both types of the previous ID and uses one.
	st := graph.NewStitcher(s, graph.DefaultConfig())
	_, err = st.Ingest(ctx, []*graph.Observation{{MessageID: "a1", Source: "web", Time: t0,
		Identifiers: []graph.Key{kUser}, PreviousID: "anon-2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identifier(ctx, graph.Key{Type: graph.TypeAnonymousID, Value: "anon-2"}); err != nil {
		t.Errorf("alias target: %v", err)
	}
	if n := count(t, s, stubs, nil); n != 0 {
		t.Errorf("%d stubs left after alias", n)
	}
}

func TestInitSettingRace(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, ok, err := s.Setting(ctx, "secret"); err != nil || ok {
		t.Fatalf("unset setting: ok=%v err=%v", ok, err)
	}
	got := make([]string, 10)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			v, err := s.InitSetting(ctx, "secret", fmt.Sprint("value-", i))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] || v == "" {
			t.Fatalf("InitSetting returned different values: %q", got)
		}
	}
	v, ok, err := s.Setting(ctx, "secret")
	if err != nil || !ok || v != got[0] {
		t.Errorf("Setting = %q, %v, %v; want %q", v, ok, err, got[0])
	}
	if v, err := s.InitSetting(ctx, "secret", "later"); err != nil || v != got[0] {
		t.Errorf("InitSetting again = %q, %v", v, err)
	}
}

// people builds observations whose profiles do not depend on the order
// of ingestion: each person's identifiers connect only to each other and
// stay within the default limits, so the profiles are exactly the people.
func people(n, anons int) (obs []*graph.Observation, want [][]string) {
	at := t0
	add := func(prev string, keys ...graph.Key) {
		at = at.Add(time.Second)
		obs = append(obs, &graph.Observation{MessageID: fmt.Sprint("msg-", len(obs)), Source: "web",
			Time: at, Identifiers: keys, PreviousID: prev})
	}
	for p := range n {
		user := graph.Key{Type: graph.TypeUserID, Value: fmt.Sprint("user-", p)}
		mail := graph.Key{Type: graph.TypeEmail, Value: fmt.Sprintf("p%d@example.org", p)}
		set := []string{user.String(), mail.String()}
		var anon []graph.Key
		for j := range anons {
			a := graph.Key{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%d-%d", p, j)}
			anon = append(anon, a)
			set = append(set, a.String())
		}
		for j, a := range anon {
			add("", a, user)
			add("", a, mail)
			add("", a, anon[(j+1)%len(anon)])
		}
		add(anon[0].Value, user) // alias
		slices.Sort(set)
		want = append(want, set)
	}
	return obs, want
}

// partition returns the live profiles as sorted sets of key strings, as
// the Reader lists them.
func partition(t *testing.T, s *Store) [][]string {
	t.Helper()
	ctx := context.Background()
	var out [][]string
	seen := map[string]bool{}
	after := ""
	for {
		ps, err := s.Profiles(ctx, after, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			break
		}
		for _, p := range ps {
			ids, err := graph.ProfileIdentifiers(ctx, s, p)
			if err != nil {
				t.Fatal(err)
			}
			var set []string
			for _, n := range ids {
				if seen[n.Key.String()] {
					t.Errorf("%s is listed twice", n.Key)
				}
				seen[n.Key.String()] = true
				set = append(set, n.Key.String())
			}
			slices.Sort(set)
			out = append(out, set)
		}
		after = ps[len(ps)-1].ID
	}
	return out
}

// rootPartition groups identifiers by the live profile reached by
// following mergedInto from the profile each joined. Unlike partition it
// does not rely on Profile.Absorbed.
func rootPartition(t *testing.T, s *Store) [][]string {
	t.Helper()
	ctx := context.Background()
	recs, err := s.read(ctx, "MATCH (p:Profile) RETURN p.id, p.mergedInto, p.counts", nil)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]string{}
	counts := map[string]string{}
	for _, r := range recs {
		id, _ := r.Values[0].(string)
		next[id], _ = r.Values[1].(string)
		counts[id], _ = r.Values[2].(string)
	}
	if recs, err = s.read(ctx, "MATCH (i:Identifier) RETURN i.key, i.profile, i.type", nil); err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{}
	types := map[string]map[string]int{}
	for _, r := range recs {
		key, _ := r.Values[0].(string)
		p, _ := r.Values[1].(string)
		typ, _ := r.Values[2].(string)
		for hops := 0; next[p] != ""; hops++ {
			if hops > len(next) {
				t.Fatalf("mergedInto cycle at %s", p)
			}
			p = next[p]
		}
		if _, ok := next[p]; !ok {
			t.Errorf("%s belongs to missing profile %q", key, p)
		}
		groups[p] = append(groups[p], key)
		if types[p] == nil {
			types[p] = map[string]int{}
		}
		types[p][typ]++
	}
	// A lost update shows as counts that disagree with the members.
	for p, want := range types {
		var got map[string]int
		if err := json.Unmarshal([]byte(counts[p]), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("profile %s counts %s, members have %v", p, counts[p], want)
		}
	}
	var out [][]string
	for _, set := range groups {
		slices.Sort(set)
		out = append(out, set)
	}
	return out
}

func samePartition(a, b [][]string) bool {
	a = slices.Clone(a)
	b = slices.Clone(b)
	for _, p := range [][][]string{a, b} {
		slices.SortFunc(p, func(x, y []string) int { return slices.Compare(x, y) })
	}
	return slices.EqualFunc(a, b, slices.Equal[[]string])
}

func ingestAll(t *testing.T, st *graph.Stitcher, obs []*graph.Observation, batch int) graph.Result {
	t.Helper()
	var total graph.Result
	for i := 0; i < len(obs); i += batch {
		r, err := st.Ingest(context.Background(), obs[i:min(i+batch, len(obs))])
		if err != nil {
			t.Fatal(err)
		}
		total.Stored += r.Stored
		total.Duplicates += r.Duplicates
	}
	return total
}

func TestConcurrentStitchersMatchSequential(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	obs, want := people(10, 8)

	if r := ingestAll(t, graph.NewStitcher(s, graph.DefaultConfig()), obs, 10); r.Stored != len(obs) {
		t.Fatalf("sequential: stored %d of %d", r.Stored, len(obs))
	}
	sequential := rootPartition(t, s)
	if !samePartition(sequential, want) {
		t.Fatalf("sequential partition:\n%v\nwant\n%v", sequential, want)
	}

	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	// Two stitchers (as in two processes) each ingest every observation,
	// in their own shuffled order, from four goroutines each: every
	// message arrives twice and batches overlap on identifiers.
	var (
		mu    sync.Mutex
		total graph.Result
		wg    sync.WaitGroup
	)
	for i := range 2 {
		st := graph.NewStitcher(s, graph.DefaultConfig())
		order := slices.Clone(obs)
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		batches := make(chan []*graph.Observation)
		go func() {
			for j := 0; j < len(order); j += 8 {
				batches <- order[j:min(j+8, len(order))]
			}
			close(batches)
		}()
		for range 4 {
			wg.Go(func() {
				for b := range batches {
					r, err := st.Ingest(ctx, b)
					if err != nil {
						t.Error(err)
						continue
					}
					mu.Lock()
					total.Stored += r.Stored
					total.Duplicates += r.Duplicates
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if total.Stored != len(obs) || total.Duplicates != len(obs) {
		t.Errorf("concurrent: stored %d, duplicates %d; want %d each", total.Stored, total.Duplicates, len(obs))
	}
	concurrent := rootPartition(t, s)
	if !samePartition(concurrent, sequential) {
		t.Errorf("concurrent partition differs:\n%v\nsequential\n%v", concurrent, sequential)
	}
	// Every stored observation counted once on each of its edges.
	wantEdges := map[string]int64{}
	for _, o := range obs {
		ks := slices.Clone(o.Identifiers)
		if o.PreviousID != "" {
			ks = append(ks, graph.Key{Type: graph.TypeAnonymousID, Value: o.PreviousID})
		}
		for i := range ks {
			for j := i + 1; j < len(ks); j++ {
				p := graph.Pair(ks[i], ks[j])
				wantEdges[p[0].String()+" "+p[1].String()]++
			}
		}
	}
	recs, err := s.read(ctx, "MATCH (a:Identifier)-[r:LINKED]->(b:Identifier) RETURN a.key + ' ' + b.key, r.count", nil)
	if err != nil {
		t.Fatal(err)
	}
	gotEdges := map[string]int64{}
	for _, r := range recs {
		gotEdges[r.Values[0].(string)] = r.Values[1].(int64)
	}
	if !reflect.DeepEqual(gotEdges, wantEdges) {
		t.Errorf("edge counts differ:\n got  %v\n want %v", gotEdges, wantEdges)
	}
	if n := count(t, s, "MATCH (e:Event) RETURN count(e)", nil); n != int64(len(obs)) {
		t.Errorf("%d events stored, want %d", n, len(obs))
	}
	if n := count(t, s, "MATCH (i:Identifier) WHERE i.profile IS NULL RETURN count(i)", nil); n != 0 {
		t.Errorf("%d stubs left", n)
	}
}

// TestChainedMerge merges a profile that had absorbed another into an
// older one, in a later transaction than the first merge. The reader must
// then list all three identifiers under the survivor, once each.
//
// It fails while graph/stitch.go's lockProfiles reuses its argument's
// backing array (ids = ids[:0]): called from merge with absorbed.Absorbed,
// it overwrites that list with the loaded profiles' MergedInto values, so
// the survivor's Absorbed lists the absorbed profile twice and loses the
// one it had absorbed (the pebble backend shows the same).
func TestChainedMerge(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	key := func(v string) graph.Key { return graph.Key{Type: graph.TypeAnonymousID, Value: v} }
	for i, ks := range [][]graph.Key{{key("z")}, {key("x")}, {key("y")}, {key("x"), key("y")}, {key("z"), key("x")}} {
		_, err := st.Ingest(ctx, []*graph.Observation{{MessageID: fmt.Sprint("cm-", i), Source: "web", Time: t0, Identifiers: ks}})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := partition(t, s)
	if want := [][]string{{"anonymous_id:x", "anonymous_id:y", "anonymous_id:z"}}; !samePartition(got, want) {
		t.Errorf("profiles %v, want %v", got, want)
	}
	if root := rootPartition(t, s); len(root) != 1 {
		t.Errorf("root partition %v", root)
	}
}

// TestUnavailable needs no server: nothing listens on the port.
func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Open(ctx, "bolt://"+addr, "", "")
	if graph.ErrorKind(err) != graph.KindUnavailable {
		t.Fatalf("Open on a closed port: kind %s, err %v; want unavailable", graph.ErrorKind(err), err)
	}
}

func TestSearchIndex(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ingest := func(msg string, at time.Time, traits map[string]any, keys ...graph.Key) {
		t.Helper()
		_, err := st.Ingest(ctx, []*graph.Observation{{MessageID: msg, Source: "crm", Time: at, Identifiers: keys, Traits: traits}})
		if err != nil {
			t.Fatal(err)
		}
	}
	search := func(prefix string) string {
		t.Helper()
		hits, err := s.Search(ctx, prefix, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hits {
			out = append(out, fmt.Sprintf("%s:%s@%s/%v", h.Field, h.Value, h.Profile, h.Exact))
		}
		return strings.Join(out, " ")
	}
	u1 := graph.Key{Type: graph.TypeUserID, Value: "u1"}
	anon := graph.Key{Type: graph.TypeAnonymousID, Value: "a2"}
	dev := graph.Key{Type: graph.TypeDeviceID, Value: "ABC-123"}
	ingest("m1", t0, map[string]any{"name": "Émile Zola", "firstName": "Émile", "lastName": "Zola", "age": 62}, u1)
	ingest("m2", t0.Add(time.Hour), map[string]any{"name": "Ann Smith", "last_name": 7}, anon, dev)
	p1, p2 := profileID(t, s, u1), profileID(t, s, anon)

	for prefix, want := range map[string]string{
		// Lower-cased with Go's rules; each value once per profile.
		"ém":   "name:Émile@" + p1 + "/false name:Émile Zola@" + p1 + "/false",
		"zola": "name:Zola@" + p1 + "/true name:Émile Zola@" + p1 + "/false",
		// The whole value matches as well as its words.
		"ann s": "name:Ann Smith@" + p2 + "/false",
		"abc":   "device_id:ABC-123@" + p2 + "/false",
		"62":    "",
	} {
		if got := search(prefix); got != want {
			t.Errorf("search %q = %s\nwant %s", prefix, got, want)
		}
	}

	// u2's profile is absorbed into u1's, older one, whose name is now
	// u2's, newer; the absorbed profile's names are gone, its identifiers
	// still point at it.
	ingest("m3", t0.Add(2*time.Hour), nil, u1, anon)
	if got, want := search("ann"), "name:Ann Smith@"+p1+"/false"; got != want {
		t.Errorf("after merge, search ann = %s, want %s", got, want)
	}
	if got, want := search("zola"), "name:Zola@"+p1+"/true"; got != want {
		t.Errorf("after merge, search zola = %s, want %s", got, want)
	}
	if got, want := search("abc"), "device_id:ABC-123@"+p2+"/false"; got != want {
		t.Errorf("after merge, search abc = %s, want %s", got, want)
	}
	if n := count(t, s, "MATCH (w:NameWord {profile: $id}) RETURN count(w)", map[string]any{"id": p2}); n != 0 {
		t.Errorf("absorbed profile keeps %d name words", n)
	}

	// An observation that does not change the names leaves their words be.
	words := func() []string {
		recs, err := s.read(ctx, "MATCH (w:NameWord) RETURN elementId(w) AS id ORDER BY id", nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.Values[0].(string))
		}
		return out
	}
	before := words()
	ingest("m4", t0.Add(3*time.Hour), map[string]any{"plan": "pro"}, u1)
	if after := words(); !slices.Equal(before, after) {
		t.Errorf("name words rewritten without a change: %v, then %v", before, after)
	}
}

// profileID returns the profile the identifier joined.
func profileID(t *testing.T, s *Store, k graph.Key) string {
	t.Helper()
	n, err := s.Identifier(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return n.Profile
}

// TestTimelinePos needs no server: positions sort as (timestamp, ID).
func TestTimelinePos(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type ev struct {
		ts  time.Time
		id  string
		pos string
	}
	var evs []ev
	for range 2000 {
		ts := time.Unix(rng.Int64N(1<<36)-1<<35, rng.Int64N(3)*int64(rng.IntN(1e9))).In(time.FixedZone("", 3600))
		if rng.IntN(4) == 0 && len(evs) > 0 {
			ts = evs[rng.IntN(len(evs))].ts // ties
		}
		id := fmt.Sprintf("ev_%x", rng.Int64N(1<<20))
		evs = append(evs, ev{ts, id, timelinePos(ts, id)})
	}
	byPos := slices.Clone(evs)
	slices.SortFunc(byPos, func(a, b ev) int { return strings.Compare(a.pos, b.pos) })
	byTime := slices.Clone(evs)
	slices.SortFunc(byTime, func(a, b ev) int {
		if c := a.ts.Compare(b.ts); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for i := range byPos {
		if byPos[i].pos != byTime[i].pos {
			t.Fatalf("position %d: %v %s by position, %v %s by time", i, byPos[i].ts, byPos[i].id, byTime[i].ts, byTime[i].id)
		}
	}
	if p := timelinePos(time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), "ev_~~~"); p >= timelineEnd {
		t.Errorf("%s sorts after timelineEnd", p)
	}
}

// TestReadsUseIndexes checks that timeline pages and searches are index
// seeks that read about as many entries as they return, not scans.
func TestReadsUseIndexes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	keys := searchGraph(t, s, 1000, 500)
	// A fresh database plans with the statistics of an empty one: refresh
	// them, as Neo4j does by itself once a graph has grown.
	if _, err := s.write(ctx, "CALL db.prepareForReplanning()", nil); err != nil {
		t.Fatal(err)
	}
	const limit = 20
	// In the middle of the hot user ID's 500 events.
	cursor := &graph.EventCursor{Timestamp: t0.Add(2300 * time.Second), ID: "ev_"}
	for name, q := range map[string]struct {
		cypher  string
		params  map[string]any
		maxRead int64
	}{
		"hot timeline": {timelinesQuery, timelinesParams([]graph.TimelineQuery{{Keys: keys[:1], Limit: limit}}), limit + 1},
		"profile timeline page": {timelinesQuery,
			timelinesParams([]graph.TimelineQuery{{Keys: keys, After: cursor, Limit: limit}}), 4 * (limit + 1)},
		// A name can match by its whole value and a word: up to 3 reads
		// per hit.
		"search names":       {searchQuery, searchParams("jo", limit), 3 * limit},
		"search identifiers": {searchQuery, searchParams("user-1", limit), 2 * limit},
	} {
		res, err := neo4jdriver.ExecuteQuery(ctx, s.driver, "PROFILE "+q.cypher, q.params,
			neo4jdriver.EagerResultTransformer, neo4jdriver.ExecuteQueryWithDatabase(s.db))
		if err != nil {
			t.Fatal(err)
		}
		var read, hits int64
		var walk func(p neo4jdriver.ProfiledPlan)
		walk = func(p neo4jdriver.ProfiledPlan) {
			if op := p.Operator(); strings.Contains(op, "Scan") {
				t.Errorf("%s: plan has %s", name, op)
			} else if strings.Contains(op, "Seek") {
				read += p.Records()
			}
			hits += p.DbHits()
			for _, c := range p.Children() {
				walk(c)
			}
		}
		walk(res.Summary.Profile())
		if read == 0 || read > q.maxRead {
			t.Errorf("%s: index seeks read %d entries, want 1 to %d", name, read, q.maxRead)
		}
		// Reading a hit's properties costs about ten hits; a search seeks
		// up to 2 × 129 length buckets.
		if bound := 15*q.maxRead + 300; hits > bound {
			t.Errorf("%s: %d db hits, want at most %d", name, hits, bound)
		}
	}
}
