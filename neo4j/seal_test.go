package neo4j_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/internal/envelope"
	"github.com/idgraph/idgraph/neo4j"
)

// sealedPerson ingests one person whose traits and event payloads carry
// marker, and returns their email key.
func sealedPerson(t *testing.T, s graph.Store, n int, marker string) graph.Key {
	t.Helper()
	at := time.Date(2026, 4, 1, 9, n, 0, 0, time.UTC)
	email := fmt.Sprintf("email:p%d@example.com", n)
	o := graphtest.Obs(fmt.Sprintf("s%d-1", n), at, fmt.Sprintf("anonymous_id:a%d", n), email)
	o.Traits = map[string]any{"note": marker}
	o.Event.Type = "identify"
	o.Event.Properties = json.RawMessage(`{"note":"` + marker + `"}`)
	o.Event.Context = json.RawMessage(`{"page":{"url":"https://x.test/?q=` + marker + `"}}`)
	o2 := graphtest.Obs(fmt.Sprintf("s%d-2", n), at.Add(time.Second), email)
	o2.Event.Properties = json.RawMessage(`{"note":"` + marker + `"}`)
	graphtest.Ingest(t, s, o, o2)
	return graph.Key{Type: "email", Value: fmt.Sprintf("p%d@example.com", n)}
}

// TestSealedPayloads: with a keyring, profile traits and event payloads
// are stored only as ciphertexts naming their key, read back decrypted;
// after erasure and RotateKeys, the ciphertexts and wrapped keys the
// erased person left (as a copy of the database's files would hold them)
// cannot be decrypted with the keyring that remains, while the other
// person's data still reads.
func TestSealedPayloads(t *testing.T) {
	ctx := context.Background()
	s := backends.OpenNeo4jSealed(t).(*neo4j.Store)
	gone, kept := "GONE"+strings.Repeat("q7", 30), "KEPT"+strings.Repeat("z3", 30)
	goneKey := sealedPerson(t, s, 1, gone)
	keptKey := sealedPerson(t, s, 2, kept)

	rows, err := neo4j.RawRows(ctx, s, `MATCH (n) WHERE n:Profile OR n:Event
		RETURN n.messageId, [k IN keys(n) WHERE n[k] IS :: STRING | n[k]]`, nil)
	if err != nil {
		t.Fatal(err)
	}
	type leftover struct{ messageID, field, value string }
	var left []leftover
	for _, r := range rows {
		for _, v := range r[1].([]any) {
			if s := v.(string); strings.Contains(s, gone[:20]) || strings.Contains(s, kept[:20]) {
				t.Fatalf("a marker is stored in plain text: %.80s", s)
			}
		}
	}
	evs, err := neo4j.RawRows(ctx, s, `MATCH (e:Event) WHERE e.messageId STARTS WITH 's1-'
		RETURN e.messageId, e.properties, e.context`, nil)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events of the erased person: %v, %v", evs, err)
	}
	for _, r := range evs {
		left = append(left, leftover{r[0].(string), "properties", r[1].(string)})
		if r[2] != nil {
			left = append(left, leftover{r[0].(string), "context", r[2].(string)})
		}
	}
	// What the database's files keep of the person: the ciphertexts and
	// their wrapped keys. With the keyring as it is, they decrypt.
	ring := neo4j.KeyringOf(s)
	wrapped := map[string][]byte{}
	for _, l := range left {
		id, ok := neo4j.SealedKeyID(l.value)
		if !ok {
			t.Fatalf("event %s %s is not sealed: %.60s", l.messageID, l.field, l.value)
		}
		w, err := neo4j.RawRows(ctx, s, `MATCH (k:DataKey {id: $id}) RETURN k.wrapped`, map[string]any{"id": id})
		if err != nil || len(w) != 1 {
			t.Fatalf("data key %s: %v, %v", id, w, err)
		}
		wrapped[id] = w[0][0].([]byte)
		plain, err := neo4j.UnsealEvent(ring, wrapped[id], l.messageID, l.field, l.value)
		if err != nil || !strings.Contains(plain, gone) {
			t.Fatalf("before erasure: %q, %v; want the marker", plain, err)
		}
	}
	// Reads decrypt.
	p := graphtest.ProfileOf(t, s, goneKey.String())
	if p.Traits["note"].Value != gone {
		t.Fatalf("profile traits read %v", p.Traits)
	}
	tl, err := s.Timelines(ctx, []graph.TimelineQuery{{Keys: []graph.Key{goneKey}, Limit: 10}})
	if err != nil || len(tl[0]) != 2 || !strings.Contains(string(tl[0][0].Properties), gone) {
		t.Fatalf("timeline: %v, %v", tl, err)
	}

	if _, err := s.Erasure().ErasePerson(ctx, erase.Request{ID: "req-seal", Profile: p.ID, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rot, err := s.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Rewrapped == 0 || rot.Unreadable != 0 {
		t.Fatalf("rotation %+v: want the kept person's keys rewrapped", rot)
	}
	remaining, err := envelope.OpenKeyring(ring.Path())
	if err != nil {
		t.Fatal(err)
	}
	if g := remaining.Generations(); len(g) != 1 || g[0] != rot.Generation {
		t.Fatalf("keyring generations %v after rotation to %d", g, rot.Generation)
	}
	for _, l := range left {
		id, _ := neo4j.SealedKeyID(l.value)
		if plain, err := neo4j.UnsealEvent(remaining, wrapped[id], l.messageID, l.field, l.value); !errors.Is(err, envelope.ErrUnknownGeneration) {
			t.Fatalf("after erasure and rotation, event %s %s: %q, %v; want ErrUnknownGeneration", l.messageID, l.field, plain, err)
		}
	}
	if n, err := neo4j.RawRows(ctx, s, `MATCH (k:DataKey) WHERE k.id IN $ids RETURN k`, map[string]any{"ids": keysOf(wrapped)}); err != nil || len(n) != 0 {
		t.Fatalf("erased data keys still stored: %v, %v", n, err)
	}
	// The other person reads through the rewrapped keys, in a fresh cache.
	fresh := reopenSealed(t, remaining)
	q := graphtest.ProfileOf(t, fresh, keptKey.String())
	if q.Traits["note"].Value != kept {
		t.Fatalf("kept profile after rotation: %v", q.Traits)
	}
	tl, err = fresh.Timelines(ctx, []graph.TimelineQuery{{Keys: []graph.Key{keptKey}, Limit: 10}})
	if err != nil || len(tl[0]) != 2 || !strings.Contains(string(tl[0][0].Properties), kept) {
		t.Fatalf("kept timeline after rotation: %v, %v", tl, err)
	}
}

func keysOf(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// reopenSealed opens another store on the test database with ring, so that
// nothing comes from the first store's cache of unwrapped keys.
func reopenSealed(t *testing.T, ring *envelope.Keyring) *neo4j.Store {
	t.Helper()
	uri, user, pass := backends.Neo4jURI(t)
	s, err := neo4j.Open(context.Background(), uri, user, pass, neo4j.WithKeyring(ring))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSealedSplit: a split re-encrypts the events that move to the new
// profile under a key the new profile owns, so that erasing the profile
// that stays neither takes the other side's events with it nor leaves
// them under a key the erased side owned.
func TestSealedSplit(t *testing.T) {
	ctx := context.Background()
	s := backends.OpenNeo4jSealed(t).(*neo4j.Store)
	ann := graphtest.Obs("m1", time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC), "email:ann@example.com", "anonymous_id:a1")
	bob := graphtest.Obs("m2", time.Date(2026, 4, 1, 9, 1, 0, 0, time.UTC), "email:bob@example.com", "anonymous_id:a2")
	bob.Event.Properties = json.RawMessage(`{"note":"bob's"}`)
	tablet := graphtest.Obs("m3", time.Date(2026, 4, 1, 9, 2, 0, 0, time.UTC), "anonymous_id:a1", "anonymous_id:a2")
	graphtest.Ingest(t, s, ann, bob, tablet)
	orig := graphtest.ProfileOf(t, s, "email:ann@example.com")
	if graphtest.ProfileOf(t, s, "email:bob@example.com").ID != orig.ID {
		t.Fatal("the tablet did not join Ann and Bob")
	}
	st := graph.NewStitcher(s, graph.DefaultConfig())
	if _, err := st.Split(ctx, "steward-1", orig.ID, []graph.Key{{Type: "email", Value: "bob@example.com"}, {Type: "anonymous_id", Value: "a2"}}, "brother"); err != nil {
		t.Fatal(err)
	}
	bobID := graphtest.ProfileOf(t, s, "email:bob@example.com").ID
	if bobID == orig.ID {
		t.Fatal("the split left Bob in Ann's profile")
	}
	owner, err := neo4j.RawRows(ctx, s, `MATCH (e:Event {messageId: "m2"}) MATCH (k:DataKey {id: e.key}) RETURN k.owner`, nil)
	if err != nil || len(owner) != 1 || owner[0][0] != bobID {
		t.Fatalf("Bob's event's key is owned by %v (%v); want Bob's new profile %s", owner, err, bobID)
	}
	if _, err := s.Erasure().ErasePerson(ctx, erase.Request{ID: "req-ann", Profile: orig.ID, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	fresh := reopenSealed(t, neo4j.KeyringOf(s))
	evs, err := graph.Timeline(ctx, fresh, []graph.Key{{Type: "email", Value: "bob@example.com"}}, nil, 10)
	if err != nil || len(evs) != 1 || string(evs[0].Properties) != `{"note":"bob's"}` {
		t.Fatalf("Bob's timeline after Ann's erasure: %v, %v", evs, err)
	}
}
