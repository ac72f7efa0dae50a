package match

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// A column that is 90% one value must not blow up the candidate set:
// its block is skipped, reported, and the count stays bounded.
func TestBlockingCapsOversizedBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	recs := make([]Record, n)
	for i := range recs {
		pc := "2000"
		if rng.IntN(10) == 0 {
			pc = fmt.Sprintf("%04d", 3000+rng.IntN(500))
		}
		recs[i] = Record{ID: fmt.Sprint(i), Fields: map[string]string{
			"surname":  fmt.Sprintf("name%d", rng.IntN(400)),
			"postcode": pc,
		}}
	}
	cfg := &Config{
		Fields:       []Field{{Name: "surname", Kind: KindSurname}, {Name: "postcode", Kind: KindPostcode}},
		Blocking:     []BlockRule{{Keys: []KeyPart{{Field: "postcode"}}}, {Keys: []KeyPart{{Field: "surname", Transform: "exact"}, {Field: "postcode"}}}},
		MaxBlockSize: 100,
	}
	ds, err := NewDataset(cfg, recs)
	if err != nil {
		t.Fatal(err)
	}
	c, rep := ds.Block()
	pc := rep.Rules[0]
	if pc.Oversized != 1 || pc.LargestOversized != "2000" || pc.OversizedRecords < n*8/10 {
		t.Errorf("postcode rule: %+v, want the 2000 block reported as oversized", pc)
	}
	// Every rule produces at most n·cap/2 pairs.
	if bound := len(cfg.Blocking) * n * cfg.MaxBlockSize / 2; rep.CandidatePairs > bound {
		t.Errorf("candidate pairs %d over bound %d", rep.CandidatePairs, bound)
	}
	if rep.CandidatePairs != len(c.Pairs) || rep.CandidatePairs == 0 {
		t.Errorf("candidate pairs %d, pairs %d", rep.CandidatePairs, len(c.Pairs))
	}
	seen := map[Pair]bool{}
	for i, p := range c.Pairs {
		if p.I >= p.J || seen[p] {
			t.Fatalf("pair %v out of order or repeated", p)
		}
		seen[p] = true
		if c.Rules[i] == 0 {
			t.Fatalf("pair %v has no rule", p)
		}
	}
}

func TestBlockingUnionAndLink(t *testing.T) {
	cfg := &Config{Fields: []Field{
		{Name: "given", Kind: KindGivenName}, {Name: "surname", Kind: KindSurname},
		{Name: "dob", Kind: KindDate}, {Name: "zip", Kind: KindPostcode},
	}}
	a := []Record{
		{ID: "a1", Fields: map[string]string{"given": "john", "surname": "smith", "dob": "1980-01-02", "zip": "2000"}},
		{ID: "a2", Fields: map[string]string{"given": "mary", "surname": "jones", "dob": "1975-03-04", "zip": "3000"}},
	}
	b := []Record{
		// typo in the surname, same birthday: found by the date rule
		{ID: "b1", Fields: map[string]string{"given": "jon", "surname": "smiht", "dob": "02/01/1980", "zip": "2001"}},
		// different birthday, same name and postcode: found by the name rules
		{ID: "b2", Fields: map[string]string{"given": "mary", "surname": "jones", "dob": "1976-03-04", "zip": "3000"}},
		// same birthday as a1 but in the same file as b1: never paired with b1
		{ID: "b3", Fields: map[string]string{"given": "x", "surname": "y", "dob": "1980-01-02"}},
	}
	ds, err := NewLinkDataset(cfg, a, b)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ds.Block()
	got := map[string]bool{}
	for _, p := range c.Pairs {
		got[ds.IDs[p.I]+"-"+ds.IDs[p.J]] = true
	}
	for _, want := range []string{"a1-b1", "a2-b2", "a1-b3"} {
		if !got[want] {
			t.Errorf("pair %s not found; got %v", want, got)
		}
	}
	if got["b1-b3"] || got["a1-a2"] {
		t.Errorf("same-file pair in link mode: %v", got)
	}
}

// One person's many records share every key, so their block is
// oversized; its sorted neighbourhood still links them, for a bounded
// number of pairs, and namesakes with other birth dates sort apart.
func TestBlockingWindowsOversizedBlocks(t *testing.T) {
	const copies, cap = 60, 10
	var recs []Record
	for i := range copies {
		dob := "1930-01-01"
		if i%2 == 1 {
			dob = "1975-06-30" // the namesake
		}
		recs = append(recs, Record{ID: fmt.Sprint(i), Fields: map[string]string{"surname": "smith", "dob": dob}})
	}
	cfg := &Config{
		Fields:       []Field{{Name: "surname", Kind: KindSurname}, {Name: "dob", Kind: KindDate}},
		Blocking:     []BlockRule{{Keys: []KeyPart{{Field: "surname", Transform: "soundex"}}}},
		MaxBlockSize: cap,
	}
	ds, err := NewDataset(cfg, recs)
	if err != nil {
		t.Fatal(err)
	}
	c, rep := ds.Block()
	var window *RuleStats
	for i, r := range rep.Rules {
		if r.Rule == "soundex(surname) / sorted[5](flat(dob))" {
			window = &rep.Rules[i]
		}
	}
	if window == nil {
		t.Fatalf("no window refinement among %+v", rep.Rules)
	}
	if max := copies * (oversizedWindow - 1); rep.CandidatePairs > max || rep.CandidatePairs == 0 {
		t.Errorf("%d candidate pairs, want 1..%d", rep.CandidatePairs, max)
	}
	// Connected within each birth date; pairs across them only where the two runs meet.
	across := 0
	for _, p := range c.Pairs {
		if p.I%2 != p.J%2 {
			across++
		}
	}
	if max := oversizedWindow * (oversizedWindow - 1) / 2; across > max {
		t.Errorf("%d pairs across the two birth dates, want at most %d", across, max)
	}
	labels, _ := Cluster(copies, scoreSame(c.Pairs), ClusterOptions{})
	for i := 2; i < copies; i++ {
		if labels[i] != labels[i%2] {
			t.Fatalf("record %d not linked to its own date's records: labels %v", i, labels)
		}
	}
}

// scoreSame accepts the pairs of records with the same index parity.
func scoreSame(pairs []Pair) []ScoredPair {
	var out []ScoredPair
	for _, p := range pairs {
		if p.I%2 == p.J%2 {
			out = append(out, ScoredPair{I: p.I, J: p.J, Weight: 20, Prob: 1})
		}
	}
	return out
}
