package traffic_test

import (
	"bytes"
	"encoding/json"
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
