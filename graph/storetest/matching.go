package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// nameMatcher is a matcher small enough to reason about: profiles are
// filed by last name; the same first name, last name and birthday score
// 0.99, the same last name and first initial 0.8, anything else 0.1.
type nameMatcher struct{}

// NameMatcher is that matcher, for tests outside the contract suite (the
// fuzz target) that need matching to fire on a tiny alphabet of names.
var NameMatcher graph.Matcher = nameMatcher{}

func (nameMatcher) Version() string { return "test-1" }

func (nameMatcher) BlockingKeys(t map[string]string) []string {
	if t["lastName"] == "" {
		return nil
	}
	return []string{"last:" + strings.ToLower(t["lastName"])}
}

func (nameMatcher) Score(a, b map[string]string) graph.MatchScore {
	p := 0.1
	switch {
	case a["firstName"] == b["firstName"] && a["lastName"] == b["lastName"] && a["birthday"] == b["birthday"]:
		p = 0.99
	case a["lastName"] == b["lastName"] && a["firstName"] != "" && b["firstName"] != "" && a["firstName"][0] == b["firstName"][0]:
		p = 0.8
	}
	expl, _ := json.Marshal(map[string]any{"first": [2]string{a["firstName"], b["firstName"]}, "probability": p})
	return graph.MatchScore{Probability: p, Explanation: expl}
}

func person(id string, at time.Time, key, first, last, birthday string) *graph.Observation {
	o := Obs(id, at, key)
	o.Traits = map[string]any{"firstName": first, "lastName": last, "birthday": birthday}
	return o
}

func ingestMatching(t *testing.T, s graph.Store, cfg graph.MatchConfig, obs ...*graph.Observation) graph.Result {
	t.Helper()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	st.Matcher, st.MatchConfig = nameMatcher{}, cfg
	var total graph.Result
	for _, o := range obs {
		r, err := st.Ingest(context.Background(), []*graph.Observation{o})
		if err != nil {
			t.Fatalf("ingest %s: %v", o.MessageID, err)
		}
		total.Matches += r.Matches
		total.Merges += r.Merges
		total.OversizedBlocks += r.OversizedBlocks
	}
	return total
}

func testProbabilisticMatching(t *testing.T, s graph.Store) {
	cfg := graph.DefaultMatchConfig()
	r := ingestMatching(t, s, cfg,
		person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01"),
		person("m2", t0.Add(time.Hour), "anonymous_id:web-1", "Jon", "Smith", "1980-01-01"), // accepted: merges
		person("m3", t0, "crm_id:C2", "Jane", "Smith", "1990-05-05"),                        // review band with both
		person("m4", t0, "crm_id:C3", "Bob", "Smith", "1970-02-02"),                         // below review: nothing
	)
	if r.Merges != 1 {
		t.Fatalf("merges = %d, want 1", r.Merges)
	}
	wantPartition(t, s, "anonymous_id:web-1 crm_id:C1", "crm_id:C2", "crm_id:C3")
	e := edge(t, s, "crm_id:C1", "anonymous_id:web-1")
	if e.Kind != graph.KindProbabilistic || e.Status != graph.StatusAccepted || e.Score != 0.99 || e.Model != "test-1" || !strings.Contains(string(e.Explanation), "Jon") {
		t.Errorf("accepted edge = %+v", e)
	}
	e = edge(t, s, "crm_id:C1", "crm_id:C2")
	if e.Status != graph.StatusPending || e.Reason != graph.ReasonReview || e.Score != 0.8 {
		t.Errorf("review edge = %+v", e)
	}
	es, err := s.EdgesOf(context.Background(), []graph.Key{key("crm_id:C3")})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 0 {
		t.Errorf("a pair below the review threshold was stored: %+v", es)
	}
}

func testRejectedPairNotProposedAgain(t *testing.T, s graph.Store) {
	cfg := graph.DefaultMatchConfig()
	ingestMatching(t, s, cfg, person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01"), person("m2", t0, "crm_id:C2", "Jane", "Smith", "1990-05-05"))
	e := edge(t, s, "crm_id:C1", "crm_id:C2")
	e.Status, e.Reason = graph.StatusRejected, "steward"
	err := s.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, &graph.Changes{Edges: []*graph.Edge{e}})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Jane's record now matches Jon's exactly, but the pair was rejected.
	ingestMatching(t, s, cfg, person("m3", t0.Add(time.Hour), "crm_id:C2", "Jon", "Smith", "1980-01-01"))
	if e := edge(t, s, "crm_id:C1", "crm_id:C2"); e.Status != graph.StatusRejected {
		t.Errorf("rejected pair became %s", e.Status)
	}
	wantPartition(t, s, "crm_id:C1", "crm_id:C2")
}

func testMatchingGuards(t *testing.T, s graph.Store) {
	cfg := graph.DefaultMatchConfig()
	cfg.ChainSize = 1
	// Two profiles of two identifiers each: a single edge may not chain them.
	big1 := person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01")
	big1.Identifiers = append(big1.Identifiers, key("anonymous_id:a1"))
	big2 := person("m2", t0, "crm_id:C2", "Jon", "Smith", "1980-01-01")
	big2.Identifiers = append(big2.Identifiers, key("anonymous_id:a2"))
	ingestMatching(t, s, cfg, big1, big2)
	if e := edge(t, s, "crm_id:C1", "crm_id:C2"); e.Status != graph.StatusPending || e.Reason != graph.ReasonChainingGuard {
		t.Errorf("edge between two large profiles = %s/%s, want pending/chaining_guard", e.Status, e.Reason)
	}
	// Merge protection applies to probabilistic merges: two user IDs.
	ingestMatching(t, s, graph.DefaultMatchConfig(), person("m3", t0, "user_id:u1", "Ann", "Lee", "1975-03-03"), person("m4", t0, "user_id:u2", "Ann", "Lee", "1975-03-03"))
	if e := edge(t, s, "user_id:u1", "user_id:u2"); e.Status != graph.StatusPending || e.Reason != graph.ReasonMergeProtection {
		t.Errorf("edge joining two user IDs = %s/%s, want pending/merge_protection", e.Status, e.Reason)
	}
	// A key shared by more profiles than MaxBlock is skipped, and counted.
	cfg = graph.DefaultMatchConfig()
	cfg.MaxBlock = 2
	var obs []*graph.Observation
	for i, first := range []string{"Al", "Bo", "Cy", "Di"} {
		obs = append(obs, person(msg(10+i), t0, "crm_id:X"+first, first, "Common", "2000-01-01"))
	}
	if r := ingestMatching(t, s, cfg, obs...); r.OversizedBlocks == 0 {
		t.Errorf("no oversized block reported for a key shared by 4 profiles with MaxBlock 2")
	}
}

// testMatchingAnchorNotInMessage: a returning user identifies on a new
// device; their profile's anchor (the laptop they were first seen on) is
// not in the message, yet matching compares that profile with another in
// its block. Everything matching uses must be loaded by the transaction.
func testMatchingAnchorNotInMessage(t *testing.T, s graph.Store) {
	withTraits := func(o *graph.Observation, first, last string) *graph.Observation {
		o.Traits = map[string]any{"firstName": first, "lastName": last}
		return o
	}
	ingestMatching(t, s, graph.DefaultMatchConfig(),
		withTraits(Obs("m1", t0, "user_id:maria", "anonymous_id:a-maria"), "Maria", "Williams"),
		Obs("m2", t0.Add(time.Minute), "anonymous_id:a-laptop"),
		withTraits(Obs("m3", t0.Add(2*time.Minute), "user_id:steven", "anonymous_id:a-laptop"), "Steven", "Williams"),
		withTraits(Obs("m4", t0.Add(3*time.Minute), "user_id:steven", "anonymous_id:a-phone"), "Steven", "Williams"),
	)
	wantPartition(t, s, "anonymous_id:a-maria user_id:maria", "anonymous_id:a-laptop anonymous_id:a-phone user_id:steven")
}
