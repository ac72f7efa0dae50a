package match

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/idgraph/idgraph/graph"
)

// GraphMatcher scores profiles inside the identity graph with a trained
// model, one new or changed profile at a time (graph.Matcher).
//
// Incremental scoring differs from a bulk run in two ways: term
// frequencies come from counts taken over the stored records (a model
// trained with no set-up step carries them; without counts the
// adjustment is off, as a pair has no corpus to count in), and
// sorted-neighbourhood rules are not used for candidates (they need the
// whole sorted set); equality rules are.
type GraphMatcher struct {
	model *Model
	hold  bool
	// splitName derives firstName/lastName from a Segment `name` trait
	// when the model compares the parts.
	splitName bool
	// rename maps source columns to the model's canonical fields
	// (AutoModel.Rename).
	rename map[string]string
	// freq, when set, are the stored records' term frequencies.
	freq *TermFrequencies
}

// NewGraphMatcher returns a matcher over the model; hold keeps the
// household guard on.
func NewGraphMatcher(m *Model, hold bool) *GraphMatcher {
	g := &GraphMatcher{model: m, hold: hold}
	has := map[string]bool{}
	for _, f := range m.Config.Fields {
		has[f.Name] = true
	}
	g.splitName = has["firstName"] && has["lastName"] && !has["name"]
	return g
}

// WithRename returns a matcher that compares each trait named in rename
// as the field it maps to. A trait already named like the field (a
// Segment trait) wins over a renamed column; among renamed columns, the
// first in name order: a fact counts once.
func (g *GraphMatcher) WithRename(rename map[string]string) *GraphMatcher {
	c := *g
	c.rename = rename
	return &c
}

// WithFrequencies returns a matcher that weighs exact agreement by how
// common the value is among the stored records counted in f.
func (g *GraphMatcher) WithFrequencies(f *TermFrequencies) *GraphMatcher {
	c := *g
	c.freq = f
	return &c
}

func (g *GraphMatcher) fields(traits map[string]string) map[string]string {
	if len(g.rename) > 0 {
		out := make(map[string]string, len(traits))
		var cols []string
		for k, v := range traits {
			if _, ok := g.rename[k]; ok {
				cols = append(cols, k)
			} else if v != "" {
				out[k] = v
			}
		}
		slices.Sort(cols)
		for _, k := range cols {
			if f := g.rename[k]; out[f] == "" && traits[k] != "" {
				out[f] = traits[k]
			}
		}
		traits = out
	}
	if g.splitName {
		return SegmentTraits(traits)
	}
	return traits
}

// Version is the model's version.
func (g *GraphMatcher) Version() string { return g.model.Version }

// BlockingKeys returns one key per equality rule the traits fill in.
func (g *GraphMatcher) BlockingKeys(traits map[string]string) []string {
	ds, err := NewDataset(&g.model.Config, []Record{{ID: "x", Fields: g.fields(traits)}})
	if err != nil {
		return nil
	}
	var keys []string
	for r, rule := range ds.Config.Blocking {
		if rule.Window > 0 {
			continue
		}
		if k := ds.blockKeys(rule)[0]; k != "" {
			keys = append(keys, strconv.Itoa(r)+":"+k)
		}
	}
	return keys
}

// Score compares two trait sets and explains the result.
func (g *GraphMatcher) Score(a, b map[string]string) graph.MatchScore {
	sc := g.ScoreAll(a, []map[string]string{b})[0]
	if sc.Explain != nil {
		sc.Explanation, sc.Explain = sc.Explain(), nil
	}
	return sc
}

// ScoreAll compares one trait set with many in one dataset, so that the
// first is prepared once (graph.BatchMatcher); explanations are built only
// for the pairs that ask for theirs. Term frequencies come from the
// matcher's counts, never from the dataset's few records, so a pair's
// score does not depend on the other records of the dataset.
func (g *GraphMatcher) ScoreAll(a map[string]string, bs []map[string]string) []graph.MatchScore {
	out := make([]graph.MatchScore, len(bs))
	recs := make([]Record, 0, len(bs)+1)
	recs = append(recs, Record{ID: "a", Fields: g.fields(a)})
	for i, b := range bs {
		recs = append(recs, Record{ID: strconv.Itoa(i + 1), Fields: g.fields(b)})
	}
	ds, err := NewDataset(&g.model.Config, recs)
	if err != nil {
		return out
	}
	counted := ds.useFrequencies(g.freq)
	sc, err := NewScorer(g.model, ds)
	if err != nil {
		return out
	}
	sc.Hold = g.hold
	for c := range sc.useTF {
		sc.useTF[c] = sc.useTF[c] && counted[c]
	}
	for i := range bs {
		sp := sc.Score(0, i+1)
		out[i] = graph.MatchScore{Probability: sp.Prob, Hold: sp.Held, Explain: func() json.RawMessage {
			x := sc.Explain(0, i+1)
			x.A, x.B = "a", "b" // the pair, not its place in this dataset
			expl, _ := json.Marshal(x)
			return expl
		}}
	}
	return out
}
