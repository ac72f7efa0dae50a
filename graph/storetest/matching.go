package storetest

import (
	"context"
	"encoding/json"
	"slices"
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

// testApplyLinks: a bulk run's links (`idgraph match` with a model trained
// with no set-up step) go through the graph's own rules: a joined pair
// merges, a pair the run kept apart waits for review with its reason, a
// rejected pair stays rejected, merge protection holds, a link to an
// identifier that is not stored is skipped, a dry run writes nothing, and
// applying the same links again changes nothing.
func testApplyLinks(t *testing.T, s graph.Store) {
	ctx := context.Background()
	// Stored with matching off: only the links join anything.
	Ingest(t, s,
		person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01"),
		person("m2", t0, "crm_id:C2", "Jon", "Smith", "1980-01-01"),
		person("m3", t0, "crm_id:C3", "Jon", "Smyth", "1980-01-01"),
		person("m4", t0, "crm_id:C4", "Jane", "Smith", "1990-05-05"),
		person("m5", t0, "crm_id:C5", "Jane", "Smith", "1990-05-05"),
		person("m6", t0, "user_id:u1", "Ann", "Lee", "1975-03-03"),
		person("m7", t0, "user_id:u2", "Ann", "Lee", "1975-03-03"),
	)
	edgeCount := func() int {
		t.Helper()
		es, err := s.EdgesOf(ctx, []graph.Key{key("crm_id:C1"), key("crm_id:C2"), key("crm_id:C3"), key("crm_id:C4"), key("user_id:u1")})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	st := graph.NewStitcher(s, graph.DefaultConfig())
	st.MatchConfig = graph.DefaultMatchConfig()
	// A steward rejected C4–C5 before the run.
	pair := graph.Pair(key("crm_id:C4"), key("crm_id:C5"))
	rejected := &graph.Edge{A: pair[0], B: pair[1], Kind: graph.KindProbabilistic, Status: graph.StatusRejected, Reason: "steward", Score: 0.5,
		Evidence: graph.Evidence{FirstSeen: t0, LastSeen: t0, Count: 1}}
	if err := s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, &graph.Changes{Edges: []*graph.Edge{rejected}})
	}); err != nil {
		t.Fatal(err)
	}
	score := func(p float64) graph.MatchScore {
		return graph.MatchScore{Probability: p, Explanation: json.RawMessage(`{"bulk":true}`)}
	}
	links := []graph.Link{
		{A: key("crm_id:C1"), B: key("crm_id:C2"), Score: score(0.999), Model: "bulk-1", Join: true},
		{A: key("crm_id:C2"), B: key("crm_id:C3"), Score: score(0.97), Model: "bulk-1", Hold: graph.ReasonClusterGuard},
		{A: key("crm_id:C1"), B: key("crm_id:C4"), Score: score(0.7), Model: "bulk-1"},
		{A: key("crm_id:C4"), B: key("crm_id:C5"), Score: score(0.99), Model: "bulk-1", Join: true},
		{A: key("user_id:u1"), B: key("user_id:u2"), Score: score(0.99), Model: "bulk-1", Join: true},
		{A: key("crm_id:C1"), B: key("crm_id:gone"), Score: score(0.99), Model: "bulk-1", Join: true},
	}
	before, edgesBefore := Partition(t, s), edgeCount()
	res, plan, err := st.PlanLinks(ctx, links, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Merges != 1 || len(plan) != 4 {
		t.Errorf("dry run: %d merges, plan %+v; want 1 merge and 4 items (a merge, two reviews, merge protection)", res.Merges, plan)
	}
	if after, edgesAfter := Partition(t, s), edgeCount(); !slices.Equal(after, before) || edgesAfter != edgesBefore {
		t.Fatalf("a dry run changed the graph: %v → %v, %d → %d edges", before, after, edgesBefore, edgesAfter)
	}
	res, err = st.ApplyLinks(ctx, links)
	if err != nil {
		t.Fatal(err)
	}
	if res.Merges != 1 {
		t.Errorf("merges = %d, want 1", res.Merges)
	}
	wantPartition(t, s, "crm_id:C1 crm_id:C2", "crm_id:C3", "crm_id:C4", "crm_id:C5", "user_id:u1", "user_id:u2")
	for _, c := range []struct {
		a, b           string
		status, reason string
	}{
		{"crm_id:C1", "crm_id:C2", graph.StatusAccepted, ""},
		{"crm_id:C2", "crm_id:C3", graph.StatusPending, graph.ReasonClusterGuard},
		{"crm_id:C1", "crm_id:C4", graph.StatusPending, graph.ReasonReview},
		{"crm_id:C4", "crm_id:C5", graph.StatusRejected, "steward"},
		{"user_id:u1", "user_id:u2", graph.StatusPending, graph.ReasonMergeProtection},
	} {
		e := edge(t, s, c.a, c.b)
		if e == nil || e.Status != c.status || e.Reason != c.reason {
			t.Errorf("edge %s–%s = %+v, want %s/%s", c.a, c.b, e, c.status, c.reason)
		} else if c.status != graph.StatusRejected && (e.Model != "bulk-1" || e.Kind != graph.KindProbabilistic || !strings.Contains(string(e.Explanation), "bulk")) {
			t.Errorf("edge %s–%s does not record the bulk run's model and explanation: %+v", c.a, c.b, e)
		}
	}
	if n, err := s.Identifier(ctx, key("crm_id:gone")); err == nil && n != nil {
		t.Errorf("a link to an identifier that is not stored created it: %+v", n)
	}
	again, err := st.ApplyLinks(ctx, links)
	if err != nil {
		t.Fatal(err)
	}
	if again.Merges != 0 {
		t.Errorf("the same links again merged %d profiles", again.Merges)
	}
	wantPartition(t, s, "crm_id:C1 crm_id:C2", "crm_id:C3", "crm_id:C4", "crm_id:C5", "user_id:u1", "user_id:u2")
}
