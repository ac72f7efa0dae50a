package traffic_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/traffic"
)

func TestSameSeedSameStream(t *testing.T) {
	o := traffic.Defaults()
	o.People = 300
	a, b := traffic.Generate(o), traffic.Generate(o)
	if len(a.Messages) != len(b.Messages) || len(a.Records) != len(b.Records) {
		t.Fatalf("lengths differ: %d/%d messages, %d/%d records", len(a.Messages), len(b.Messages), len(a.Records), len(b.Records))
	}
	for i := range a.Messages {
		if !bytes.Equal(a.Messages[i].Body, b.Messages[i].Body) {
			t.Fatalf("message %d differs:\n%s\n%s", i, a.Messages[i].Body, b.Messages[i].Body)
		}
	}
	o.Seed = 2
	if c := traffic.Generate(o); bytes.Equal(c.Messages[0].Body, a.Messages[0].Body) {
		t.Error("another seed gave the same first message")
	}
}

// TestStreamHasWhatRealTrafficHas: a generator that stopped producing one
// of the hard cases would let the property tests pass for nothing.
func TestStreamHasWhatRealTrafficHas(t *testing.T) {
	o := traffic.Defaults()
	o.People = 2000
	s := traffic.Generate(o)
	st := s.Stats
	for name, n := range map[string]int{"redeliveries": st.Redeliveries, "late": st.Late, "bursts": st.Bursts,
		"CRM duplicates": st.CRMDuplicates, "households": st.Households, "shared devices": st.SharedDevices,
		"library logins": st.LibraryLogins, "junk values": st.JunkValues, "email changes": st.EmailChanges,
		"aliases": st.Aliases, "new-device logins": st.NewDeviceLogins} {
		if n == 0 {
			t.Errorf("no %s in a stream of %d people", name, o.People)
		}
	}
	types := map[string]int{}
	ids := map[string]bool{}
	outOfOrder := 0
	var last string
	for _, m := range s.Messages {
		var v struct {
			Type, MessageID, Timestamp string
		}
		if err := json.Unmarshal(m.Body, &v); err != nil {
			t.Fatal(err)
		}
		types[v.Type]++
		if ids[v.MessageID] != m.Redelivery {
			t.Errorf("message %s: redelivery %v, seen before %v", v.MessageID, m.Redelivery, ids[v.MessageID])
		}
		ids[v.MessageID] = true
		if v.Timestamp < last {
			outOfOrder++
		}
		last = v.Timestamp
	}
	for _, typ := range []string{"identify", "track", "page", "screen", "alias"} {
		if types[typ] == 0 {
			t.Errorf("no %s calls", typ)
		}
	}
	if outOfOrder == 0 {
		t.Error("every message arrived in timestamp order")
	}
	shared := 0
	for k := range s.Owner {
		if k.Type == graph.TypeEmail && (k.Value == "asdf@asdf.com" || k.Value == "noemail@noemail.com") {
			shared++
		}
	}
	if shared > 0 {
		t.Errorf("junk emails have an owner in the truth")
	}
	t.Logf("%d messages, %d records, %+v", len(s.Messages), len(s.Records), st)
}

func TestScorePartition(t *testing.T) {
	k := func(v string) graph.Key { return graph.Key{Type: "user_id", Value: v} }
	owner := map[graph.Key]int{k("a1"): 1, k("a2"): 1, k("b1"): 2, k("b2"): 2}
	perfect := traffic.ScorePartition(owner, map[graph.Key]string{k("a1"): "p", k("a2"): "p", k("b1"): "q", k("b2"): "q"})
	if perfect.Precision != 1 || perfect.Recall != 1 {
		t.Errorf("perfect partition scored %v", perfect)
	}
	blob := traffic.ScorePartition(owner, map[graph.Key]string{k("a1"): "p", k("a2"): "p", k("b1"): "p", k("b2"): "p"})
	if blob.Precision != 2.0/6 || blob.Recall != 1 || blob.OverMerged != 1 {
		t.Errorf("one blob scored %v", blob)
	}
	apart := traffic.ScorePartition(owner, map[graph.Key]string{k("a1"): "p", k("a2"): "q", k("b1"): "r", k("b2"): "s"})
	if apart.Recall != 0 || apart.UnderMerged != 2 {
		t.Errorf("all apart scored %v", apart)
	}
}

// TestDirRoundTrip: what WriteDir writes, ReadMessages and ReadOwner read
// back, so that idgraph send and score see the stream Generate made.
func TestDirRoundTrip(t *testing.T) {
	o := traffic.Defaults()
	o.People = 200
	s := traffic.Generate(o)
	dir := t.TempDir()
	if err := s.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	i := 0
	err := traffic.ReadMessages(dir, func(m traffic.Message) error {
		if i >= len(s.Messages) {
			t.Fatalf("more than %d messages read back", len(s.Messages))
		}
		if want := s.Messages[i]; !bytes.Equal(m.Body, want.Body) || m.Person != want.Person {
			t.Fatalf("message %d read back as %s from %d, written %s from %d", i, m.Body, m.Person, want.Body, want.Person)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != len(s.Messages) {
		t.Errorf("read %d messages back, wrote %d", i, len(s.Messages))
	}
	owner, err := traffic.ReadOwner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(owner, s.Owner) {
		t.Errorf("truth read back with %d identifiers, written with %d", len(owner), len(s.Owner))
	}

	// A senders file that does not match the messages is an error.
	if err := os.WriteFile(filepath.Join(dir, "senders.txt"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := traffic.ReadMessages(dir, func(traffic.Message) error { return nil }); err == nil || !strings.Contains(err.Error(), "senders.txt ends") {
		t.Errorf("short senders.txt: %v", err)
	}
}

// TestScoreEvents: an event lands in the profile of its highest-priority
// identifier, and a redelivery counts once.
func TestScoreEvents(t *testing.T) {
	msg := func(id, anon, user string) []byte {
		return []byte(`{"type":"track","event":"x","messageId":"` + id + `","anonymousId":"` + anon + `","userId":"` + user + `"}`)
	}
	msgs := []traffic.Message{
		{Body: msg("1", "a1", "ann"), Person: 1},
		{Body: msg("1", "a1", "ann"), Person: 1},     // redelivered: the same bytes
		{Body: msg("2", "tablet", "ann"), Person: 2}, // Bob on Ann's tablet, signed in as Ann
		{Body: msg("3", "b1", ""), Person: 2},
		{Body: msg("4", "b2", ""), Person: 2},
	}
	profileOf := map[graph.Key]string{
		{Type: graph.TypeUserID, Value: "ann"}: "p-ann", {Type: graph.TypeAnonymousID, Value: "a1"}: "p-ann",
		{Type: graph.TypeAnonymousID, Value: "tablet"}: "p-bob", // placed by user_id first, whatever the tablet's profile
		{Type: graph.TypeAnonymousID, Value: "b1"}:     "p-bob", {Type: graph.TypeAnonymousID, Value: "b2"}: "p-bob",
	}
	s, err := traffic.ScoreEvents(profileOf, msgs, graph.DefaultConfig().Priority)
	if err != nil {
		t.Fatal(err)
	}
	// Events: ann's 1 and Bob's 2 in p-ann, Bob's 3 and 4 in p-bob.
	if s.Items != 4 || s.Predicted != 2 || s.Correct != 1 || s.True != 3 {
		t.Errorf("scored %+v, want 4 events, 2 predicted pairs, 1 correct, 3 true", s)
	}
	// Bob's event sent as Ann is foreign: flagged, or found from the owners.
	msgs[2].Foreign = true
	if s, _ := traffic.ScoreEvents(profileOf, msgs, graph.DefaultConfig().Priority); s.Items != 3 {
		t.Errorf("a foreign message was scored: %+v", s)
	}
	msgs[2].Foreign = false
	e := traffic.NewEventScorer(profileOf, graph.DefaultConfig().Priority)
	e.Owner = map[graph.Key]int{{Type: graph.TypeUserID, Value: "ann"}: 1}
	for _, m := range msgs {
		if err := e.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if s := e.Score(); s.Items != 3 || s.Predicted != 1 || s.Correct != 1 {
		t.Errorf("with the owners, scored %+v, want Bob's message as Ann left out", s)
	}
	if _, err := traffic.ScoreEvents(profileOf, []traffic.Message{{Body: []byte(`{"type":`)}}, nil); err == nil {
		t.Error("a message that does not decode scored without an error")
	}
}

// TestDiagnose: Bob's anonymous event on the tablet in Ann's profile is
// false with her own event on it (forced: one identifier) and with her
// signed-in event (shared: the tablet's events with another's); the
// ceiling counts only the forced pair as false.
func TestDiagnose(t *testing.T) {
	msg := func(id, anon, user string) []byte {
		return []byte(`{"type":"track","event":"x","messageId":"` + id + `","anonymousId":"` + anon + `","userId":"` + user + `"}`)
	}
	msgs := []traffic.Message{
		{Body: msg("1", "a1", "ann"), Person: 1},
		{Body: msg("2", "tablet", ""), Person: 1},
		{Body: msg("3", "tablet", ""), Person: 2},
		{Body: msg("4", "b1", ""), Person: 2},
	}
	user, anon := func(v string) graph.Key { return graph.Key{Type: graph.TypeUserID, Value: v} },
		func(v string) graph.Key { return graph.Key{Type: graph.TypeAnonymousID, Value: v} }
	profileOf := map[graph.Key]string{user("ann"): "p-ann", anon("a1"): "p-ann", anon("tablet"): "p-ann", anon("b1"): "p-bob"}
	owner := map[graph.Key]int{user("ann"): 1, anon("a1"): 1, anon("b1"): 2} // the tablet is the household's
	e := traffic.NewEventScorer(profileOf, graph.DefaultConfig().Priority)
	for _, m := range msgs {
		if err := e.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	d := e.Diagnose(owner)
	if d.False != 2 || d.Forced != 1 || d.Shared != 1 || d.Merged != 0 {
		t.Errorf("diagnosis %+v, want 2 false pairs: 1 forced, 1 shared, 0 merged", d)
	}
	// Best case: Ann's two events together, Bob's two together, and the
	// tablet's pair false: 2 / 3.
	if math.Abs(d.Ceiling-2.0/3) > 1e-9 || d.Separate != 0 {
		t.Errorf("ceiling %.4f, separate %.4f; want 0.6667 and 0 (the tablet's pair alone)", d.Ceiling, d.Separate)
	}
	// Ann's and Bob's own identifiers in one profile are merged pairs.
	profileOf[anon("b1")] = "p-ann"
	e = traffic.NewEventScorer(profileOf, graph.DefaultConfig().Priority)
	for _, m := range msgs {
		e.Add(m)
	}
	if d := e.Diagnose(owner); d.Merged != 1 || d.Forced != 1 || d.False != 4 {
		t.Errorf("with b1 in Ann's profile: %+v, want 4 false, 1 forced, 1 merged", d)
	}
}
