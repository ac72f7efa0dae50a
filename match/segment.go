package match

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

// The built-in model for Segment's reserved identify traits, so that
// `idgraph serve` matches profiles with no training and no configuration.
// It is trained (TrainSegmentModel) on labelled synthetic people, never on
// a set whose scores we report: the evaluation runs on another seed.
//
//go:generate go run ./internal/gensegment
//go:embed segment_model.json
var segmentModelJSON []byte

// SegmentModelSeed and SegmentModelRecords fix the synthetic set the
// built-in model is trained on.
const (
	SegmentModelSeed    = 1
	SegmentModelRecords = 20_000
)

// SegmentConfig is the configuration for Segment's reserved identify
// traits. A profile that only sends `name` is compared by its first and
// last word (SegmentTraits).
func SegmentConfig() *Config {
	c := &Config{Fields: []Field{
		{Name: "firstName", Kind: KindGivenName, Swap: "lastName"},
		{Name: "lastName", Kind: KindSurname, Swap: "firstName"},
		{Name: "email", Kind: KindEmail},
		{Name: "phone", Kind: KindPhone},
		{Name: "birthday", Kind: KindDate},
		{Name: "address.street", Kind: KindAddress},
		{Name: "address.city", Kind: KindCity},
		{Name: "address.postalCode", Kind: KindPostcode},
		{Name: "address.state", Kind: KindState},
	}}
	c.Blocking = DefaultBlocking(c.Fields)
	return c
}

// SegmentModel returns the built-in model. It panics only if the embedded
// file is corrupt, which TestSegmentModelIsFresh rules out.
func SegmentModel() *Model {
	m, err := DecodeModel(bytes.NewReader(segmentModelJSON))
	if err != nil {
		panic(fmt.Sprintf("match: built-in Segment model: %v", err))
	}
	return m
}

// SegmentTraits fills firstName and lastName from `name` when a profile
// sent only the full name, as many Segment sources do.
func SegmentTraits(traits map[string]string) map[string]string {
	name := strings.Fields(traits["name"])
	if len(name) < 2 || traits["firstName"] != "" || traits["lastName"] != "" {
		return traits
	}
	out := make(map[string]string, len(traits)+2)
	for k, v := range traits {
		out[k] = v
	}
	out["firstName"], out["lastName"] = name[0], name[len(name)-1]
	return out
}

// SegmentTable rewrites a synthetic table (SynthHeader) as Segment
// identify traits: rec_id, firstName, lastName, email, phone, birthday and
// the address.* traits (street number and name joined, no SSN).
func SegmentTable(t *Table) *Table {
	col := map[string]int{}
	for i, h := range t.Header {
		col[h] = i
	}
	out := &Table{Header: []string{"rec_id", "firstName", "lastName", "email", "phone", "birthday",
		"address.street", "address.city", "address.postalCode", "address.state"}, Rows: make([][]string, len(t.Rows))}
	for i, row := range t.Rows {
		get := func(h string) string { return row[col[h]] }
		out.Rows[i] = []string{get("rec_id"), get("given_name"), get("surname"), get("email"), get("phone"),
			get("date_of_birth"), strings.TrimSpace(get("street_number") + " " + get("address_1")),
			get("suburb"), get("postcode"), get("state")}
	}
	return out
}

var trueID = regexp.MustCompile(`^rec-(\d+)-`)

// TrainSegmentModel trains the built-in model from labelled synthetic
// people (seed SegmentModelSeed): m from the true pairs blocking finds,
// u from the candidate pairs that are not matches.
func TrainSegmentModel() (*Model, error) {
	tab, _ := Synthesize(SynthOptions{Records: SegmentModelRecords, Seed: SegmentModelSeed})
	ds, err := NewDataset(SegmentConfig(), SegmentTable(tab).Records("rec_id"))
	if err != nil {
		return nil, err
	}
	cands, _ := ds.Block()
	var matches, nonMatches []Pair
	for _, p := range cands.Pairs {
		if trueID.FindString(ds.IDs[p.I]) == trueID.FindString(ds.IDs[p.J]) {
			matches = append(matches, p)
		} else {
			nonMatches = append(nonMatches, p)
		}
	}
	m, _, err := TrainLabelled(ds, cands, matches, nonMatches, TrainOptions{Seed: SegmentModelSeed})
	if err != nil {
		return nil, fmt.Errorf("match: train Segment model: %w", err)
	}
	return m, nil
}
