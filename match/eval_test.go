package match

import (
	"fmt"
	"strings"
	"testing"
)

// A truth column replaces the truth pattern and never reaches the model.
func TestEvaluateTruthColumn(t *testing.T) {
	tab, st := Synthesize(SynthOptions{Records: 1500, Seed: 9, Shape: "messy"})
	// IDs that say nothing, and the truth under an unremarkable name with
	// values that are not the ID's prefix: only --truth-column finds it.
	tab.Header[mCluster] = "person"
	for r, row := range tab.Rows {
		row[mID] = fmt.Sprint(r + 1)
		row[mCluster] = strings.TrimPrefix(row[mCluster], "rec-")
	}
	rep, err := Evaluate(tab, nil, EvalOptions{TruthColumn: "person"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TruePairs != st.TruePairs {
		t.Errorf("%d true pairs, generator made %d", rep.TruePairs, st.TruePairs)
	}
	for _, d := range rep.Detections {
		if d.Column == "person" {
			t.Errorf("truth column detected as %s", d.Kind)
		}
	}
	for _, f := range rep.Model.Config.Fields {
		if f.Name == "person" {
			t.Error("truth column compared")
		}
	}
	if rep.Cluster.F1 < 0.5 || rep.Cluster.Precision > 0.99 {
		t.Errorf("cluster %+v: too low, or so precise that the truth leaked", rep.Cluster)
	}
	if _, err := Evaluate(tab, nil, EvalOptions{TruthColumn: "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing truth column: %v", err)
	}
}
