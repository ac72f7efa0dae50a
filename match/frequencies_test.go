package match

import (
	"math"
	"testing"
)

// TestGraphMatcherFrequencies: with the stored records' term frequencies,
// a pair scored alone in the graph gets the probability the bulk run gave
// it among all the records; without them, pairs that agree on a common or
// a rare name score differently.
func TestGraphMatcherFrequencies(t *testing.T) {
	tab, _ := Synthesize(SynthOptions{Records: 2000, Seed: 5, Shape: "messy"})
	ds, res := runDetected(t, tab)
	recs := tab.Records(ds.Config.IDColumn)
	freq := ds.Frequencies()
	if len(freq.Fields) == 0 || freq.Records != len(recs) {
		t.Fatalf("frequencies %+v: want counts for the name fields of %d records", freq, len(recs))
	}
	with := NewGraphMatcher(res.Model, true).WithFrequencies(freq)
	without := NewGraphMatcher(res.Model, true)
	differ := 0
	for n, p := range res.Scored {
		if n%7 != 0 {
			continue // a sample keeps the test fast
		}
		a, b := recs[p.I].Fields, recs[p.J].Fields
		got := with.ScoreAll(a, []map[string]string{b})[0]
		if math.Abs(got.Probability-p.Prob) > 1e-9 || got.Hold != p.Held {
			t.Fatalf("pair %s–%s: graph %v (held %v), bulk %v (held %v)", ds.IDs[p.I], ds.IDs[p.J], got.Probability, got.Hold, p.Prob, p.Held)
		}
		if off := without.ScoreAll(a, []map[string]string{b})[0]; math.Abs(off.Probability-p.Prob) > 1e-6 {
			differ++
		}
	}
	if differ == 0 {
		t.Errorf("no pair scores differently without term frequencies: the test cannot tell them apart")
	}
}

// TestFrequenciesTail: past FrequencyTop a field's keys are counted
// together as their mean, at least 1, and a key never seen counts as the
// tail.
func TestFrequenciesTail(t *testing.T) {
	var recs []Record
	add := func(name string, n int) {
		for range n {
			recs = append(recs, Record{ID: string(rune('a'+len(recs)%26)) + name + string(rune(len(recs))), Fields: map[string]string{"surname": name}})
		}
	}
	add("smith", 50)
	for i := range FrequencyTop + 10 {
		add("name"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676%26)), 1)
	}
	ds, err := NewDataset(&Config{Fields: []Field{{Name: "surname", Kind: KindSurname}}}, recs)
	if err != nil {
		t.Fatal(err)
	}
	f := ds.Frequencies().Fields["surname"]
	if f.Total != len(recs) || len(f.Counts) != FrequencyTop || f.Counts["smith"] != 50 || f.Rest != 1 {
		t.Errorf("surname frequencies: total %d, %d counted, smith %d, rest %d; want %d, %d, 50, 1", f.Total, len(f.Counts), f.Counts["smith"], f.Rest, len(recs), FrequencyTop)
	}
	small, err := NewDataset(ds.Config, []Record{{ID: "x", Fields: map[string]string{"surname": "smith"}}, {ID: "y", Fields: map[string]string{"surname": "zzyzx"}}})
	if err != nil {
		t.Fatal(err)
	}
	if covered := small.useFrequencies(ds.Frequencies()); !covered[0] {
		t.Fatal("surname not covered")
	}
	if got := small.tf(0, small.col[0][0]); got != 50/float64(len(recs)) {
		t.Errorf("tf(smith) = %v, want %v", got, 50/float64(len(recs)))
	}
	if got := small.tf(0, small.col[0][1]); got != 1/float64(len(recs)) {
		t.Errorf("tf of a key never seen = %v, want the tail's %v", got, 1/float64(len(recs)))
	}
}
