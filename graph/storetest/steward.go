package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// identify is an identify call with traits, as the Segment decoder makes it.
func identify(msgID string, at time.Time, traits map[string]any, ids ...string) *graph.Observation {
	o := Obs(msgID, at, ids...)
	o.Traits = traits
	raw, _ := json.Marshal(traits)
	o.Event = graph.Event{Type: "identify", Traits: raw}
	return o
}

// state is everything a steward's round trip must restore: which live
// profile (by ID) holds each identifier, each live profile's counts,
// anchor and traits, and every edge's kind, status and reason.
func state(t *testing.T, s graph.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	var keys []graph.Key
	after := ""
	for {
		ps, err := s.Profiles(ctx, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			break
		}
		for _, p := range ps {
			ids, err := graph.ProfileIdentifiers(ctx, s, p)
			if err != nil {
				t.Fatal(err)
			}
			traits, _ := json.Marshal(p.Traits)
			fmt.Fprintf(&b, "profile %s anchor %s counts %v cannotLink %v traits %s\n", p.ID, p.Anchor, p.Counts, p.CannotLink, traits)
			for _, n := range ids {
				fmt.Fprintf(&b, "  %s\n", n.Key)
				keys = append(keys, n.Key)
			}
		}
		after = ps[len(ps)-1].ID
	}
	es, err := s.EdgesOf(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		fmt.Fprintf(&b, "edge %s %s %s %s %s\n", e.A, e.B, e.Kind, e.Status, e.Reason)
	}
	return b.String()
}

func steward(s graph.Store) *graph.Stitcher {
	st := graph.NewStitcher(s, graph.DefaultConfig())
	st.Matcher, st.MatchConfig = nameMatcher{}, graph.DefaultMatchConfig()
	return st
}

func wantKind(t *testing.T, err error, kind graph.Kind) {
	t.Helper()
	if graph.ErrorKind(err) != kind {
		t.Errorf("error = %v (%s), want kind %s", err, graph.ErrorKind(err), kind)
	}
}

func queue(t *testing.T, s graph.Store) []*graph.Edge {
	t.Helper()
	var out []*graph.Edge
	after := ""
	for {
		items, err := s.ReviewQueue(context.Background(), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			out = append(out, it.Edge)
		}
		if len(items) < 2 {
			return out
		}
		after = items[len(items)-1].Cursor
	}
}

// The queue lists pending edges, largest impact first then highest
// score, pages by cursor, and drops an edge once it is decided.
func testReviewQueue(t *testing.T, s graph.Store) {
	ctx := context.Background()
	cfg := graph.DefaultMatchConfig()
	big := person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01")
	big.Identifiers = append(big.Identifiers, key("anonymous_id:a1"), key("anonymous_id:a2"))
	ingestMatching(t, s, cfg, big,
		person("m2", t0, "crm_id:C2", "Jane", "Smith", "1990-05-05"), // pending with C1: impact 4
		person("m3", t0, "crm_id:C3", "Ann", "Jones", "1990-05-05"),
		person("m4", t0, "crm_id:C4", "Amy", "Jones", "1991-05-05"), // pending with C3: impact 2
	)
	q := queue(t, s)
	var got []string
	for _, e := range q {
		got = append(got, fmt.Sprintf("%s-%s/%d", e.A.Value, e.B.Value, e.Impact))
	}
	if want := []string{"C1-C2/4", "C3-C4/2"}; !slices.Equal(got, want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
	st := steward(s)
	if _, err := st.Reject(ctx, "steward-1", graph.Pair(key("crm_id:C1"), key("crm_id:C2")), "different people"); err != nil {
		t.Fatal(err)
	}
	if q := queue(t, s); len(q) != 1 || q[0].A.Value != "C3" {
		t.Errorf("after a rejection the queue is %v", q)
	}
}

// Approving merges; a second decision on the same edge is a conflict;
// the audit log records both sides, the actor and the note.
func testApproveAndAudit(t *testing.T, s graph.Store) {
	ctx := context.Background()
	ingestMatching(t, s, graph.DefaultMatchConfig(),
		person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01"),
		person("m2", t0.Add(time.Hour), "crm_id:C2", "Jonny", "Smith", "1980-01-01"))
	pair := graph.Pair(key("crm_id:C1"), key("crm_id:C2"))
	st := steward(s)
	a, err := st.Approve(ctx, "steward-1", pair, "same birthday, nickname")
	if err != nil {
		t.Fatal(err)
	}
	wantPartition(t, s, "crm_id:C1 crm_id:C2")
	e := edge(t, s, "crm_id:C1", "crm_id:C2")
	if e.Status != graph.StatusAccepted || e.Decision == nil || e.Decision.Actor != "steward-1" || e.Decision.Entry != a.ID {
		t.Errorf("approved edge = %+v", e)
	}
	_, err = st.Reject(ctx, "steward-2", pair, "")
	wantKind(t, err, graph.KindConflict)
	_, err = st.Approve(ctx, "steward-2", graph.Pair(key("crm_id:C1"), key("crm_id:C9")), "")
	wantKind(t, err, graph.KindNotFound)
	log, err := s.AuditLog(ctx, graph.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].ID != a.ID || log[0].Action != graph.ActionApprove || log[0].Note != "same birthday, nickname" ||
		len(log[0].Before) != 2 || len(log[0].After) != 1 || log[0].Merge == "" || !strings.Contains(string(log[0].Explanation), "Jonny") {
		t.Errorf("audit log = %+v", log)
	}
	p := ProfileOf(t, s, "crm_id:C1")
	mine, err := s.AuditLog(ctx, graph.AuditQuery{Profile: p.ID, Limit: 10})
	if err != nil || len(mine) != 1 {
		t.Errorf("profile audit = %v, %v", mine, err)
	}
	if _, err := s.MergeEvent(ctx, log[0].Merge); err != nil {
		t.Errorf("the approval's merge event: %v", err)
	}
}

// A rejection keeps the two apart: the same evidence is not proposed
// again, and exact evidence joining them waits for a steward.
func testRejectSticks(t *testing.T, s graph.Store) {
	ctx := context.Background()
	cfg := graph.DefaultMatchConfig()
	ingestMatching(t, s, cfg,
		person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01"),
		person("m2", t0, "crm_id:C2", "Jonny", "Smith", "1980-01-01"))
	if _, err := steward(s).Reject(ctx, "steward-1", graph.Pair(key("crm_id:C1"), key("crm_id:C2")), "twins"); err != nil {
		t.Fatal(err)
	}
	ingestMatching(t, s, cfg, person("m3", t0.Add(time.Hour), "crm_id:C2", "Jon", "Smith", "1980-01-01"))
	wantPartition(t, s, "crm_id:C1", "crm_id:C2")
	// Seen together: the automatic rules would merge; the steward said no.
	Ingest(t, s, Obs("m4", t0.Add(2*time.Hour), "crm_id:C1", "crm_id:C2"))
	wantPartition(t, s, "crm_id:C1", "crm_id:C2")
	if e := edge(t, s, "crm_id:C1", "crm_id:C2"); e.Status != graph.StatusRejected {
		t.Errorf("rejected edge became %s/%s", e.Status, e.Reason)
	}
	// A third identifier seen with both joins one side only, and its edge
	// to the other waits in the queue.
	Ingest(t, s, Obs("m5", t0.Add(3*time.Hour), "crm_id:C1", "email:x@example.com", "crm_id:C2"))
	wantPartition(t, s, "crm_id:C1 email:x@example.com", "crm_id:C2")
	var reasons []string
	for _, e := range queue(t, s) {
		reasons = append(reasons, e.Reason)
	}
	if !slices.Contains(reasons, graph.ReasonCannotLink) {
		t.Errorf("queue reasons %v, want a cannot_link item", reasons)
	}
}

// A manual link joins two profiles; linking again is a conflict.
func testLink(t *testing.T, s graph.Store) {
	ctx := context.Background()
	Ingest(t, s, Obs("m1", t0, "email:a@example.com"), Obs("m2", t0, "crm_id:C1"))
	st := steward(s)
	if _, err := st.Link(ctx, "steward-1", key("email:a@example.com"), key("crm_id:C1"), "same customer, phoned in"); err != nil {
		t.Fatal(err)
	}
	wantPartition(t, s, "crm_id:C1 email:a@example.com")
	if e := edge(t, s, "email:a@example.com", "crm_id:C1"); e.Kind != graph.KindManual || e.Status != graph.StatusAccepted {
		t.Errorf("link edge = %+v", e)
	}
	_, err := st.Link(ctx, "steward-1", key("email:a@example.com"), key("crm_id:C1"), "")
	wantKind(t, err, graph.KindConflict)
	_, err = st.Link(ctx, "steward-1", key("email:a@example.com"), key("crm_id:NOPE"), "")
	wantKind(t, err, graph.KindNotFound)
}

// A split moves identifiers (and their events and traits) to a new
// profile; undoing it ends with exactly the graph it started from.
func testSplitUndoRoundTrip(t *testing.T, s graph.Store) {
	ctx := context.Background()
	Ingest(t, s,
		identify("m1", t0, map[string]any{"name": "Ann", "plan": "pro"}, "email:ann@example.com", "anonymous_id:a1"),
		identify("m2", t0.Add(time.Minute), map[string]any{"name": "Bob", "city": "Oslo"}, "email:bob@example.com", "anonymous_id:a2"),
		Obs("m3", t0.Add(2*time.Minute), "anonymous_id:a1", "anonymous_id:a2"), // the family tablet's wrong join
		identify("m4", t0.Add(3*time.Minute), map[string]any{"plan": "free"}, "email:ann@example.com"),
	)
	wantPartition(t, s, "anonymous_id:a1 anonymous_id:a2 email:ann@example.com email:bob@example.com")
	before := state(t, s)
	orig := ProfileOf(t, s, "email:ann@example.com")
	st := steward(s)
	_, err := st.Split(ctx, "steward-1", orig.ID, []graph.Key{key("email:bob@example.com"), key("email:bob@example.com")}, "")
	wantKind(t, err, graph.KindInvalid)
	_, err = st.Split(ctx, "steward-1", orig.ID, []graph.Key{key("user_id:nobody")}, "")
	wantKind(t, err, graph.KindInvalid)
	sp, err := st.Split(ctx, "steward-1", orig.ID, []graph.Key{key("email:bob@example.com"), key("anonymous_id:a2")}, "Bob is Ann's brother")
	if err != nil {
		t.Fatal(err)
	}
	wantPartition(t, s, "anonymous_id:a1 email:ann@example.com", "anonymous_id:a2 email:bob@example.com")
	ann, bob := ProfileOf(t, s, "email:ann@example.com"), ProfileOf(t, s, "email:bob@example.com")
	if ann.ID != orig.ID || bob.ID == orig.ID {
		t.Errorf("after the split Ann is %s and Bob %s; the original was %s", ann.ID, bob.ID, orig.ID)
	}
	if ann.Traits["name"].Value != "Ann" || ann.Traits["plan"].Value != "free" || bob.Traits["name"].Value != "Bob" || bob.Traits["plan"].Value != nil {
		t.Errorf("traits after the split: Ann %v, Bob %v", ann.Traits, bob.Traits)
	}
	if e := edge(t, s, "anonymous_id:a1", "anonymous_id:a2"); e.Status != graph.StatusRejected || e.Reason != graph.ReasonSteward {
		t.Errorf("the cut edge = %+v", e)
	}
	evs, err := graph.Timeline(ctx, s, []graph.Key{key("email:bob@example.com"), key("anonymous_id:a2")}, nil, 10)
	if err != nil || len(evs) != 2 {
		t.Errorf("Bob's timeline = %d events, %v; want m2 and m3", len(evs), err)
	}
	// The tablet again: the split holds.
	Ingest(t, s, Obs("m5", t0.Add(4*time.Minute), "anonymous_id:a1", "anonymous_id:a2"))
	wantPartition(t, s, "anonymous_id:a1 email:ann@example.com", "anonymous_id:a2 email:bob@example.com")
	CheckInvariants(t, s)

	if _, err := st.UndoSplit(ctx, "steward-2", sp.ID, "it was one account after all"); err != nil {
		t.Fatal(err)
	}
	if after := state(t, s); after != before {
		t.Errorf("split then undo changed the graph:\nbefore\n%s\nafter\n%s", before, after)
	}
	_, err = st.UndoSplit(ctx, "steward-2", sp.ID, "")
	wantKind(t, err, graph.KindConflict)
}

// Undoing a merge brings the absorbed profile back under its ID, keeps
// what arrived since on its side, and keeps the two apart.
func testUndoMerge(t *testing.T, s graph.Store) {
	ctx := context.Background()
	Ingest(t, s,
		identify("m1", t0, map[string]any{"name": "Ann"}, "email:ann@example.com", "anonymous_id:a1"),
		identify("m2", t0.Add(time.Minute), map[string]any{"name": "Bob"}, "email:bob@example.com", "anonymous_id:a2"),
	)
	before := state(t, s)
	ann, bob := ProfileOf(t, s, "email:ann@example.com"), ProfileOf(t, s, "email:bob@example.com")
	Ingest(t, s, Obs("m3", t0.Add(2*time.Minute), "anonymous_id:a1", "anonymous_id:a2"))
	merges, err := s.Merges(ctx, bob.ID)
	if err != nil || len(merges) != 1 {
		t.Fatalf("merges = %v, %v", merges, err)
	}
	// The automatic merge is in the audit log too, with its cause.
	log, err := s.AuditLog(ctx, graph.AuditQuery{Profile: bob.ID, Limit: 5})
	if err != nil || len(log) != 1 || log[0].Action != graph.ActionMerge || log[0].Actor != "system" || log[0].Cause != "m3" || log[0].Merge != merges[0].ID {
		t.Errorf("audit of the automatic merge = %+v, %v", log, err)
	}
	// Since the merge: Bob signs in on a new device.
	Ingest(t, s, Obs("m4", t0.Add(3*time.Minute), "email:bob@example.com", "device_id:d2"))
	st := steward(s)
	if _, err := st.UndoMerge(ctx, "steward-1", merges[0].ID, "shared tablet"); err != nil {
		t.Fatal(err)
	}
	wantPartition(t, s, "anonymous_id:a1 email:ann@example.com", "anonymous_id:a2 device_id:d2 email:bob@example.com")
	if got := ProfileOf(t, s, "email:bob@example.com"); got.ID != bob.ID || got.Traits["name"].Value != "Bob" {
		t.Errorf("Bob came back as %s %v, want %s", got.ID, got.Traits, bob.ID)
	}
	if got := ProfileOf(t, s, "email:ann@example.com"); got.ID != ann.ID || got.Traits["name"].Value != "Ann" {
		t.Errorf("Ann is %s %v, want %s", got.ID, got.Traits, ann.ID)
	}
	_, err = st.UndoMerge(ctx, "steward-1", merges[0].ID, "")
	wantKind(t, err, graph.KindConflict)
	_, err = st.UndoMerge(ctx, "steward-1", "merge_nope", "")
	wantKind(t, err, graph.KindNotFound)
	// Without the device that arrived since, the graph is as before.
	if got := state(t, s); strings.Count(got, "profile ") != strings.Count(before, "profile ") {
		t.Errorf("profiles before the merge:\n%s\nafter the undo:\n%s", before, got)
	}
}

// Two stewards deciding one item at once: one outcome, one conflict.
func testConcurrentDecisions(t *testing.T, s graph.Store) {
	ctx := context.Background()
	ingestMatching(t, s, graph.DefaultMatchConfig(),
		person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01"),
		person("m2", t0, "crm_id:C2", "Jonny", "Smith", "1980-01-01"))
	pair := graph.Pair(key("crm_id:C1"), key("crm_id:C2"))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := steward(s)
			if i == 0 {
				_, errs[i] = st.Approve(ctx, "steward-a", pair, "")
			} else {
				_, errs[i] = st.Reject(ctx, "steward-b", pair, "")
			}
		}()
	}
	// Ingestion touching both profiles meanwhile.
	Ingest(t, s, Obs("m3", t0, "crm_id:C1", "anonymous_id:x"), Obs("m4", t0, "crm_id:C2", "anonymous_id:y"))
	wg.Wait()
	ExactlyOneWins(t, "decisions", errs, IsConflict)
	log, err := s.AuditLog(ctx, graph.AuditQuery{Limit: 10})
	if err != nil || len(log) != 1 {
		t.Fatalf("audit log = %d entries, %v; want 1", len(log), err)
	}
	e := edge(t, s, "crm_id:C1", "crm_id:C2")
	parts := len(Partition(t, s))
	switch e.Status {
	case graph.StatusAccepted:
		if parts != 1 {
			t.Errorf("approved, but %d profiles", parts)
		}
	case graph.StatusRejected:
		if parts != 2 {
			t.Errorf("rejected, but %d profiles", parts)
		}
	default:
		t.Errorf("edge is %s", e.Status)
	}
}

// A dry run reports what a lower threshold would merge and changes nothing.
func testDryRun(t *testing.T, s graph.Store) {
	ctx := context.Background()
	strict := graph.DefaultMatchConfig()
	strict.Accept = 0.995
	ingestMatching(t, s, strict,
		person("m1", t0, "crm_id:C1", "Jon", "Smith", "1980-01-01"),
		person("m2", t0.Add(time.Hour), "crm_id:C2", "Jon", "Smith", "1980-01-01"))
	before := state(t, s)
	st := steward(s)
	loose := graph.DefaultMatchConfig()
	var ids []string
	for _, k := range []string{"crm_id:C1", "crm_id:C2"} {
		ids = append(ids, ProfileOf(t, s, k).ID)
	}
	res, plan, err := st.PlanRematch(ctx, ids, &loose, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Merges != 1 || len(plan) != 1 || plan[0].Kind != "merge" || plan[0].Score != 0.99 {
		t.Errorf("plan = %+v (%+v)", plan, res)
	}
	if after := state(t, s); after != before {
		t.Errorf("a dry run changed the graph:\n%s\n%s", before, after)
	}
}

// A dry run of a steward action returns what it would do and writes nothing.
func testStewardDryRun(t *testing.T, s graph.Store) {
	ctx := context.Background()
	Ingest(t, s, Obs("m1", t0, "email:a@example.com", "anonymous_id:a1"), Obs("m2", t0, "anonymous_id:a2"))
	before := state(t, s)
	p := ProfileOf(t, s, "email:a@example.com")
	a, err := steward(s).Split(graph.DryRun(ctx), "steward-1", p.ID, []graph.Key{key("anonymous_id:a1")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.After) != 2 || a.After[1].Counts["anonymous_id"] != 1 || a.After[0].Counts["email"] != 1 {
		t.Errorf("dry-run split after = %+v", a.After)
	}
	if _, err := steward(s).Link(graph.DryRun(ctx), "steward-1", key("anonymous_id:a1"), key("anonymous_id:a2"), ""); err != nil {
		t.Fatal(err)
	}
	if after := state(t, s); after != before {
		t.Errorf("a dry run changed the graph:\n%s\n%s", before, after)
	}
	if log, _ := s.AuditLog(ctx, graph.AuditQuery{Limit: 5}); len(log) != 0 {
		t.Errorf("a dry run wrote audit entries: %v", log)
	}
}

// Recomputing traits after a split takes each identify call's traits only
// for the profile they went to: the other user of a family tablet keeps
// their own name on both sides.
func testSplitKeepsOwnTraits(t *testing.T, s graph.Store) {
	ctx := context.Background()
	cfg := graph.DefaultConfig()
	cfg.SharedLimits = nil // the split is the steward's, not the repair's
	IngestWith(t, s, cfg,
		identify("m1", t0, map[string]any{"name": "Ann"}, "user_id:ann", "anonymous_id:tablet", "email:ann@example.com"),
		identify("m2", t0.Add(time.Minute), map[string]any{"name": "Bob"}, "user_id:bob", "anonymous_id:tablet"),
	)
	wantPartition(t, s, "anonymous_id:tablet email:ann@example.com user_id:ann", "user_id:bob")
	ann := ProfileOf(t, s, "user_id:ann")
	if _, err := steward(s).Split(ctx, "steward-1", ann.ID, []graph.Key{key("email:ann@example.com")}, ""); err != nil {
		t.Fatal(err)
	}
	if got := ProfileOf(t, s, "user_id:ann").Traits["name"].Value; got != "Ann" {
		t.Errorf("Ann's profile is named %v after the split, want Ann", got)
	}
	if got := ProfileOf(t, s, "user_id:bob").Traits["name"].Value; got != "Bob" {
		t.Errorf("Bob's profile is named %v, want Bob", got)
	}
}
