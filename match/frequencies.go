package match

import (
	"cmp"
	"maps"
	"slices"
)

// FrequencyTop is how many of a field's commonest values Frequencies
// keeps by name; the others are counted together.
const FrequencyTop = 5000

// TermFrequencies are how often the values of a model's term-frequency
// fields occur among the stored records, so that incremental scoring
// weighs agreement on a common name as a bulk run does. A pair scored
// alone has no corpus to count in; these counts are taken from the
// stored records when a model is trained and again at every bulk pass of
// `idgraph match`.
type TermFrequencies struct {
	// Records is how many records were counted.
	Records int                         `json:"records"`
	Fields  map[string]FieldFrequencies `json:"fields"`
}

// FieldFrequencies counts one field's values (their canonical keys).
type FieldFrequencies struct {
	// Total is the number of records with a value.
	Total int `json:"total"`
	// Counts holds the commonest keys, up to FrequencyTop.
	Counts map[string]int32 `json:"counts"`
	// Rest is the mean count of the keys not in Counts (at least 1): the
	// tail is rare, and a value never seen counts as one of it.
	Rest int32 `json:"rest"`
}

// Frequencies counts the dataset's values for every comparison with
// term-frequency adjustment.
func (d *Dataset) Frequencies() *TermFrequencies {
	out := &TermFrequencies{Records: len(d.IDs), Fields: map[string]FieldFrequencies{}}
	for c, comp := range d.comps {
		if !comp.tf || d.tfTotal[c] == 0 {
			continue
		}
		counts := map[string]int32{}
		for v := 1; v < d.dict[c].len(); v++ {
			counts[d.dict[c].at(uint32(v)).key] = d.tfN[c][v] // values sharing a key share its count
		}
		keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
			return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b))
		})
		f := FieldFrequencies{Total: d.tfTotal[c], Counts: map[string]int32{}, Rest: 1}
		var kept int64
		for _, k := range keys[:min(len(keys), FrequencyTop)] {
			f.Counts[k] = counts[k]
			kept += int64(counts[k])
		}
		if rest := len(keys) - len(f.Counts); rest > 0 {
			f.Rest = max(1, int32((int64(f.Total)-kept)/int64(rest)))
		}
		out.Fields[comp.field.Name] = f
	}
	return out
}

// useFrequencies takes the counts of term frequencies from f instead of
// the dataset's own records, and reports which comparisons f covers.
func (d *Dataset) useFrequencies(f *TermFrequencies) []bool {
	covered := make([]bool, len(d.comps))
	if f == nil {
		return covered
	}
	for c, comp := range d.comps {
		ff, ok := f.Fields[comp.field.Name]
		if !ok || !comp.tf || ff.Total == 0 {
			continue
		}
		covered[c] = true
		d.tfTotal[c] = ff.Total
		for v := 1; v < d.dict[c].len(); v++ {
			n, ok := ff.Counts[d.dict[c].at(uint32(v)).key]
			if !ok {
				n = ff.Rest
			}
			d.tfN[c][v] = n
		}
	}
	return covered
}
