package match_test

import (
	"bytes"
	"testing"

	"github.com/idgraph/idgraph/match"
)

// TestScoreAllEqualsScore: comparing a profile with many candidates in one
// dataset must give each pair the score and explanation it gets alone,
// whatever the other candidates are.
func TestScoreAllEqualsScore(t *testing.T) {
	table, _ := match.Synthesize(match.SynthOptions{Records: 600, Seed: 3, Household: 0.2, CommonName: 0.05})
	recs := match.SegmentTable(table).Records("rec_id")
	g := match.NewGraphMatcher(match.SegmentModel(), true)
	traits := make([]map[string]string, len(recs))
	for i, r := range recs {
		traits[i] = r.Fields
	}
	for a := 0; a < len(traits); a += 20 {
		bs := traits[(a+1)%len(traits) : min((a+1)%len(traits)+40, len(traits))]
		all := g.ScoreAll(traits[a], bs)
		for i, b := range bs {
			one := g.Score(traits[a], b)
			got := all[i]
			if got.Probability != one.Probability || got.Hold != one.Hold {
				t.Fatalf("record %d vs %d: batch %v/%v, alone %v/%v", a, i, got.Probability, got.Hold, one.Probability, one.Hold)
			}
			if e := got.Explain(); !bytes.Equal(e, one.Explanation) {
				t.Fatalf("record %d vs %d: explanations differ:\n%s\n%s", a, i, e, one.Explanation)
			}
		}
	}
}
