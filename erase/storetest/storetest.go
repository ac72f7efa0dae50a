// Package storetest is the contract suite of erase.Store: every backend
// passes it.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// Run runs every contract test against the backend. open returns an empty
// graph store that also stores segments and erasures.
func Run(t *testing.T, open graphtest.Opener) {
	graphtest.RunCases(t, open, func(t *testing.T, g graph.Store) stores {
		return stores{g, graphtest.As[erase.Backend](t, g).Erasure(), graphtest.As[segments.Backend](t, g).Segments()}
	}, map[string]func(*testing.T, stores){
		"ErasesOnePersonOnly":              with(testErasesOnePersonOnly),
		"ErasureIsIdempotent":              with(testIdempotent),
		"AbsorbedProfileErasesWholePerson": with(testAbsorbedProfile),
		"ReviewItemsGo":                    with(testReviewItems),
		"SuppressionsAndReceipts":          with(testSuppressionsAndReceipts),
		"SuppressionChanges":               with(testSuppressionChanges),
		"NothingLeftInIndexes":             testNothingLeftInIndexes,
		"EraseBesideIngest":                with(testEraseBesideIngest),
	})
}

// stores is what a contract test gets: the graph, its erasures and its
// segments.
type stores struct {
	g graph.Store
	e erase.Store
	s segments.Store
}

func with(fn func(*testing.T, graph.Store, erase.Store, segments.Store)) func(*testing.T, stores) {
	return func(t *testing.T, x stores) { fn(t, x.g, x.e, x.s) }
}

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// Person is one generated person: the identifiers they were seen with.
type Person struct {
	Keys []graph.Key
	Name string
}

// Generate stitches n people who share nothing: each is seen first
// anonymously on two devices, then identified (user ID, email, phone,
// name), then tracked, so that each has merges, edges, events, traits,
// search entries and pending data changes. Values carry a long random
// marker, so that a test can look for them anywhere.
func Generate(t *testing.T, g graph.Store, n int, seed uint64) []Person {
	t.Helper()
	people, msgs := plan(n, seed, 0)
	for _, obs := range msgs {
		segtest.IngestRecording(t, g, obs...)
	}
	return people
}

// plan makes Generate's people (numbered from first, which keeps phone
// numbers apart) and each one's messages, in order.
func plan(n int, seed uint64, first int) ([]Person, [][]*graph.Observation) {
	r := rand.New(rand.NewPCG(seed, 7))
	var people []Person
	var msgs [][]*graph.Observation
	for i := first; i < first+n; i++ {
		mark := fmt.Sprintf("%d%016x", i, r.Uint64())
		p := Person{Name: "Ada" + mark + " Lovelace" + mark}
		anon1, anon2 := "anonymous_id:a1-"+mark, "anonymous_id:a2-"+mark
		uid, email := "user_id:u-"+mark, "email:m"+mark+"@example.com"
		phone := fmt.Sprintf("phone:+1415555%04d", i)
		at := t0.Add(time.Duration(i) * time.Minute)
		obs := []*graph.Observation{
			graphtest.Obs("m1-"+mark, at, anon1),
			graphtest.Obs("m2-"+mark, at.Add(time.Second), anon2),
		}
		id := graphtest.Obs("m3-"+mark, at.Add(2*time.Second), anon1, uid, email, phone)
		id.Traits = map[string]any{"name": p.Name, "plan": "pro"}
		id.Event = graph.Event{Type: "identify"}
		obs = append(obs, id, graphtest.Obs("m4-"+mark, at.Add(3*time.Second), anon2, uid))
		for j := range 1 + r.IntN(3) {
			obs = append(obs, graphtest.Obs(fmt.Sprintf("m5-%s-%d", mark, j), at.Add(time.Duration(4+j)*time.Second), email))
		}
		for _, s := range []string{anon1, anon2, uid, email, phone} {
			typ, v, _ := strings.Cut(s, ":")
			p.Keys = append(p.Keys, graph.Key{Type: typ, Value: v})
		}
		people = append(people, p)
		msgs = append(msgs, obs)
	}
	return people, msgs
}

// live returns the live profile holding k.
func live(t *testing.T, g graph.Store, k graph.Key) *graph.Profile {
	t.Helper()
	return graphtest.ProfileOf(t, g, k.String())
}

// enrol makes every profile a member of a live segment with a deadline
// (so a timer), returning the segment key.
func enrol(t *testing.T, g graph.Store, s segments.Store, people []Person) string {
	t.Helper()
	segtest.Define(t, s, lang.KindSegment, "vip", "traits.plan = 'pro'")
	segtest.Define(t, s, lang.KindComputed, "ltv", "1")
	var saves []segments.Save
	for _, p := range people {
		prof := live(t, g, p.Keys[0])
		saves = append(saves, segments.Save{State: &segments.ProfileState{Profile: prof.ID, Entries: map[string]segments.Entry{
			"segment:vip":  {Version: 1, Member: true, Since: t0, Deadline: t0.Add(24 * time.Hour)},
			"computed:ltv": {Version: 1, Value: &segments.Value{Type: "number", Number: 42}},
		}}, Reason: segments.ReasonData, At: t0})
	}
	if _, err := s.SaveStates(context.Background(), saves); err != nil {
		t.Fatalf("save states: %v", err)
	}
	return "vip"
}

// Snapshot is everything the read paths say about one person.
func Snapshot(t *testing.T, g graph.Store, s segments.Store, p Person) string {
	t.Helper()
	ctx := context.Background()
	prof := live(t, g, p.Keys[0])
	ids, err := graph.ProfileIdentifiers(ctx, g, prof)
	if err != nil {
		t.Fatal(err)
	}
	var keys []graph.Key
	for _, n := range ids {
		keys = append(keys, n.Key)
	}
	edges, err := g.EdgesOf(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	events, err := graph.Timeline(ctx, g, keys, nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	merges, err := g.Merges(ctx, prof.ID)
	if err != nil {
		t.Fatal(err)
	}
	var absorbed []*graph.Profile
	if len(prof.Absorbed) > 0 {
		if absorbed, err = g.GetProfiles(ctx, prof.Absorbed); err != nil {
			t.Fatal(err)
		}
	}
	hits, err := g.Search(ctx, strings.ToLower(p.Name[:12]), 20)
	if err != nil {
		t.Fatal(err)
	}
	states, err := s.States(ctx, []string{prof.ID})
	if err != nil {
		t.Fatal(err)
	}
	choices := consentOf(t, g, keys)
	data, err := json.Marshal([]any{prof, ids, edges, events, merges, absorbed, hits, states, choices})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// snapshots maps each person's first key to their snapshot, skipping one.
func snapshots(t *testing.T, g graph.Store, s segments.Store, people []Person, skip int) map[string]string {
	out := map[string]string{}
	for i, p := range people {
		if i != skip {
			out[p.Keys[0].String()] = Snapshot(t, g, s, p)
		}
	}
	return out
}

func eraseProfile(t *testing.T, e erase.Store, id string, suppress bool) *erase.Erased {
	t.Helper()
	h := erase.NewHasher([]byte("test pepper"))
	// The request ID names no profile, as a real one (graph.NewID) does not.
	req := erase.Request{ID: "req-" + h.SubjectHash(id)[:16], Profile: id, At: t0.Add(48 * time.Hour)}
	if suppress {
		req.Suppress = h.Hash
	}
	out, err := e.ErasePerson(context.Background(), req)
	if err != nil {
		t.Fatalf("erase %s: %v", id, err)
	}
	return out
}

// consentOf reads the consent records of the keys.
func consentOf(t *testing.T, g graph.Store, keys []graph.Key) []consent.Record {
	t.Helper()
	cb, ok := g.(consent.Backend)
	if !ok {
		t.Fatalf("%T does not store consent", g)
	}
	recs, err := cb.Consent().ConsentOf(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// recordConsent gives every identifier of every person a consent choice.
func recordConsent(t *testing.T, g graph.Store, people []Person) {
	t.Helper()
	var recs []consent.Record
	for i, p := range people {
		for _, k := range p.Keys {
			recs = append(recs, consent.Record{ID: fmt.Sprintf("choice-%d", i), Key: k, Purpose: "marketing",
				Status: consent.Granted, Time: t0, Source: "test"})
		}
	}
	if err := g.(consent.Backend).Consent().AppendConsent(context.Background(), recs); err != nil {
		t.Fatalf("append consent: %v", err)
	}
}

func testErasesOnePersonOnly(t *testing.T, g graph.Store, e erase.Store, s segments.Store) {
	people := Generate(t, g, 5, 1)
	seg := enrol(t, g, s, people)
	recordConsent(t, g, people)
	for _, victim := range []int{3, 0} {
		ctx := context.Background()
		v := people[victim]
		prof := live(t, g, v.Keys[4])
		group := append([]string{prof.ID}, prof.Absorbed...)
		before := snapshots(t, g, s, people, victim)
		changesBefore, err := s.LastChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := eraseProfile(t, e, group[len(group)-1], true)
		if !slices.Equal(out.Profiles, group) {
			t.Errorf("erased profiles %v, want %v", out.Profiles, group)
		}
		if len(out.Identifiers) != len(v.Keys) || len(out.Suppressed) != len(v.Keys) {
			t.Errorf("erased %d identifiers with %d suppressions, want %d", len(out.Identifiers), len(out.Suppressed), len(v.Keys))
		}
		for kind, min := range map[string]int{erase.CountProfiles: 2, erase.CountIdentifiers: 5, erase.CountEdges: 4, erase.CountConsent: 5,
			erase.CountEvents: 5, erase.CountMerges: 1, erase.CountSegmentStates: 1, erase.CountMemberships: 1, erase.CountTimers: 1} {
			if out.Counts[kind] < min {
				t.Errorf("erased %d %s, want at least %d (counts %v)", out.Counts[kind], kind, min, out.Counts)
			}
		}
		gone(t, g, s, v, group, seg)
		// Members learn that the person left.
		cs, err := s.Changes(ctx, changesBefore, 100)
		if err != nil {
			t.Fatal(err)
		}
		// Its computed value goes, without repeating the erased value.
		if len(cs) != 2 || cs[0].Profile != prof.ID || cs[0].Trait != "ltv" || cs[0].Direction != segments.Changed ||
			cs[0].Previous != nil || cs[0].Value != nil || cs[0].Reason != erase.ExitReason ||
			cs[1].Profile != prof.ID || cs[1].Direction != segments.Exited || cs[1].Reason != erase.ExitReason || out.Exits != 1 {
			t.Errorf("change records after erasure = %+v (exits %d), want ltv's value gone and one exit of %s, reason %q", cs, out.Exits, prof.ID, erase.ExitReason)
		}
		if after := snapshots(t, g, s, people, victim); !mapsEqual(before, after) {
			for k := range before {
				if before[k] != after[k] {
					t.Errorf("%s changed:\nbefore %s\nafter  %s", k, before[k], after[k])
				}
			}
		}
		graphtest.CheckInvariants(t, g)
		people = slices.Delete(slices.Clone(people), victim, victim+1)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// gone checks that no read path returns anything of the person.
func gone(t *testing.T, g graph.Store, s segments.Store, p Person, group []string, seg string) {
	t.Helper()
	ctx := context.Background()
	if recs := consentOf(t, g, p.Keys); len(recs) > 0 {
		t.Errorf("consent records after erasure: %+v", recs)
	}
	for _, k := range p.Keys {
		if n, err := g.Identifier(ctx, k); graph.ErrorKind(err) != graph.KindNotFound {
			t.Errorf("identifier %s after erasure: %+v, %v", k, n, err)
		}
	}
	got, err := g.GetIdentifiers(ctx, p.Keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range got {
		if n != nil {
			t.Errorf("GetIdentifiers returned %s after erasure", p.Keys[i])
		}
	}
	for _, id := range group {
		if _, err := g.Profile(ctx, id); graph.ErrorKind(err) != graph.KindNotFound {
			t.Errorf("profile %s after erasure: %v", id, err)
		}
		if ms, err := g.Merges(ctx, id); err != nil || len(ms) != 0 {
			t.Errorf("merges of %s after erasure: %v, %v", id, ms, err)
		}
		if a, err := g.AuditLog(ctx, graph.AuditQuery{Profile: id, Limit: 10}); err != nil || len(a) != 0 {
			t.Errorf("audit of %s after erasure: %d entries, %v", id, len(a), err)
		}
	}
	ps, err := g.GetProfiles(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range ps {
		if pr != nil {
			t.Errorf("GetProfiles returned %s after erasure", pr.ID)
		}
	}
	if evs, err := graph.Timeline(ctx, g, p.Keys, nil, 100); err != nil || len(evs) != 0 {
		t.Errorf("timeline after erasure: %d events, %v", len(evs), err)
	}
	if es, err := g.EdgesOf(ctx, p.Keys); err != nil || len(es) != 0 {
		t.Errorf("edges after erasure: %d, %v", len(es), err)
	}
	for _, q := range []string{strings.ToLower(p.Name[:12]), strings.ToLower(p.Keys[3].Value[:12]), p.Keys[2].Value[:10], p.Keys[0].Value[:10]} {
		hits, err := g.Search(ctx, q, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if slices.Contains(group, h.Profile) || strings.Contains(h.Value, p.Keys[2].Value[2:]) {
				t.Errorf("search %q found %+v after erasure", q, h)
			}
		}
	}
	all, err := g.Profiles(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range all {
		if slices.Contains(group, pr.ID) {
			t.Errorf("Profiles lists %s after erasure", pr.ID)
		}
	}
	states, err := s.States(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st != nil && (st.Rev != 0 || len(st.Entries) != 0) {
			t.Errorf("segment state of %s after erasure: %+v", st.Profile, st)
		}
	}
	members, err := s.Members(ctx, seg, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.MemberCount(ctx, seg); err != nil || n != len(members) {
		t.Errorf("segment %s counts %d members (%v) and lists %d after erasure", seg, n, err, len(members))
	}
	timers, err := s.DueTimers(ctx, t0.Add(1000*time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingChanges(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range group {
		if slices.Contains(members, id) {
			t.Errorf("segment %s still lists %s", seg, id)
		}
		for _, tm := range timers {
			if tm.Profile == id {
				t.Errorf("timer of %s after erasure", id)
			}
		}
		for _, pc := range pending {
			if pc.Profile == id {
				t.Errorf("pending data change of %s after erasure", id)
			}
		}
	}
}

func testIdempotent(t *testing.T, g graph.Store, e erase.Store, s segments.Store) {
	people := Generate(t, g, 2, 2)
	prof := live(t, g, people[1].Keys[2])
	first := eraseProfile(t, e, prof.ID, false)
	if first.Counts[erase.CountProfiles] == 0 {
		t.Fatalf("first erasure erased nothing: %+v", first)
	}
	for range 2 {
		again := eraseProfile(t, e, prof.ID, true)
		if len(again.Profiles) != 0 || len(again.Identifiers) != 0 || len(again.Suppressed) != 0 {
			t.Errorf("erasing again = %+v, want nothing", again)
		}
		for k, n := range again.Counts {
			if n != 0 {
				t.Errorf("erasing again deleted %d %s", n, k)
			}
		}
	}
	out := eraseProfile(t, e, "p_never_stored", true)
	if len(out.Profiles) != 0 {
		t.Errorf("erasing an unknown profile = %+v", out)
	}
	live(t, g, people[0].Keys[0]) // the other person is still there
	graphtest.CheckInvariants(t, g)
}

func testAbsorbedProfile(t *testing.T, g graph.Store, e erase.Store, s segments.Store) {
	people := Generate(t, g, 3, 3)
	prof := live(t, g, people[1].Keys[0])
	if len(prof.Absorbed) == 0 {
		t.Fatalf("generated profile absorbed nothing: %+v", prof)
	}
	out := eraseProfile(t, e, prof.Absorbed[0], false)
	if len(out.Profiles) != 1+len(prof.Absorbed) || out.Profiles[0] != prof.ID {
		t.Errorf("erasing absorbed %s erased %v, want the live %s and all it absorbed", prof.Absorbed[0], out.Profiles, prof.ID)
	}
	gone(t, g, s, people[1], out.Profiles, "none")
	graphtest.CheckInvariants(t, g)
}

func testReviewItems(t *testing.T, g graph.Store, e erase.Store, s segments.Store) {
	ctx := context.Background()
	cfg := graph.DefaultConfig()
	cfg.SharedLimits = nil
	graphtest.IngestWith(t, g, cfg,
		graphtest.Obs("r1", t0, "user_id:dad", "device_id:tv"),
		graphtest.Obs("r2", t0.Add(time.Hour), "user_id:teen", "device_id:tv"),
	)
	q, err := g.ReviewQueue(ctx, "", 100)
	if err != nil || len(q) == 0 {
		t.Fatalf("review queue before erasure: %d items, %v", len(q), err)
	}
	teen := live(t, g, graph.Key{Type: "user_id", Value: "teen"})
	eraseProfile(t, e, teen.ID, false)
	q, err = g.ReviewQueue(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range q {
		if it.Edge.A.Value == "teen" || it.Edge.B.Value == "teen" {
			t.Errorf("review item %v–%v after erasure", it.Edge.A, it.Edge.B)
		}
	}
	live(t, g, graph.Key{Type: "user_id", Value: "dad"})
	graphtest.CheckInvariants(t, g)
}

func testSuppressionsAndReceipts(t *testing.T, g graph.Store, e erase.Store, s segments.Store) {
	ctx := context.Background()
	h := func(i int) string { return fmt.Sprintf("%064x", i) }
	if err := e.AddSuppressions(ctx, "r1", []string{h(1), h(2)}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddSuppressions(ctx, "r2", []string{h(2), h(3)}); err != nil {
		t.Fatal(err)
	}
	got, err := e.Suppressions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{h(1): "r1", h(2): "r1", h(3): "r2"}
	if !mapsEqual(got, want) {
		t.Errorf("suppressions = %v, want %v (an existing entry keeps its first request)", got, want)
	}
	if got, err := e.SuppressionsOf(ctx, []string{h(3), h(9), h(1)}); err != nil || !mapsEqual(got, map[string]string{h(1): "r1", h(3): "r2"}) {
		t.Errorf("suppressions of h3, h9, h1 = %v, %v: want h1 and h3 with their requests", got, err)
	}
	if err := e.RemoveSuppressions(ctx, []string{h(1), h(9)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Suppressions(ctx); len(got) != 2 || got[h(1)] != "" {
		t.Errorf("after removal: %v", got)
	}
	if _, err := e.Receipt(ctx, "nope"); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("missing receipt: %v, want not_found", err)
	}
	rc := &erase.Receipt{ID: "erasure_1", Mode: erase.EraseAndSuppress, SubjectHash: h(1), SubjectHashes: []string{h(1), h(2)},
		Deleted: map[string]int{"events": 3}, RequestedAt: t0, CompletedAt: t0.Add(time.Second)}
	if err := e.PutReceipt(ctx, rc); err != nil {
		t.Fatal(err)
	}
	back, err := e.Receipt(ctx, rc.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(rc)
	b, _ := json.Marshal(back)
	if string(a) != string(b) {
		t.Errorf("receipt round trip:\n got %s\nwant %s", b, a)
	}
	// Suppression entries written by an erasure are listed too.
	people := Generate(t, g, 1, 4)
	out := eraseProfile(t, e, live(t, g, people[0].Keys[0]).ID, true)
	got, _ = e.Suppressions(ctx)
	for _, sh := range out.Suppressed {
		if got[sh] == "" {
			t.Errorf("suppression %s of the erasure is not stored", sh)
		}
	}
}

// testSuppressionChanges: every change to the suppression entries
// (AddSuppressions, RemoveSuppressions, ErasePerson) is numbered, and a
// read after a number gives each hash changed since as it is now; a Set
// that loaded the store hears of them through Refresh.
func testSuppressionChanges(t *testing.T, g graph.Store, e erase.Store, _ segments.Store) {
	ctx := context.Background()
	h := func(i int) string { return fmt.Sprintf("%064x", i) }
	changes := func(after int64) erase.SuppressionChanges {
		t.Helper()
		c, err := e.SuppressionChanges(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(c.Added)
		slices.Sort(c.Removed)
		return c
	}
	check := func(what string, c erase.SuppressionChanges, added, removed []string) {
		t.Helper()
		if !slices.Equal(c.Added, added) || !slices.Equal(c.Removed, removed) {
			t.Errorf("%s: added %v, removed %v; want %v, %v", what, c.Added, c.Removed, added, removed)
		}
	}
	other := erase.NewSet(erase.NewHasher([]byte("test pepper")))
	if err := other.Load(ctx, e); err != nil {
		t.Fatal(err)
	}
	start := changes(1 << 62).Seq
	check("nothing changed", changes(start), nil, nil)
	if err := e.AddSuppressions(ctx, "r1", []string{h(1), h(2)}); err != nil {
		t.Fatal(err)
	}
	c1 := changes(start)
	check("after adding", c1, []string{h(1), h(2)}, nil)
	if c1.Seq <= start {
		t.Fatalf("the change number did not grow: %d after %d", c1.Seq, start)
	}
	check("read again", changes(c1.Seq), nil, nil)
	if err := e.RemoveSuppressions(ctx, []string{h(1)}); err != nil {
		t.Fatal(err)
	}
	c2 := changes(c1.Seq)
	check("after removing", c2, nil, []string{h(1)})
	check("both changes", changes(start), []string{h(2)}, []string{h(1)})
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if other.Has(h(1)) || !other.Has(h(2)) {
		t.Errorf("the other set after a refresh: h1 %v, h2 %v; want false, true", other.Has(h(1)), other.Has(h(2)))
	}
	if err := e.AddSuppressions(ctx, "r2", []string{h(1)}); err != nil {
		t.Fatal(err)
	}
	check("added again", changes(c2.Seq), []string{h(1)}, nil)
	check("removed, then added again", changes(c1.Seq), []string{h(1)}, nil)
	people := Generate(t, g, 1, 7)
	p := live(t, g, people[0].Keys[0])
	c3 := changes(start)
	done := eraseProfile(t, e, p.ID, true)
	if len(done.Suppressed) == 0 {
		t.Fatal("the erasure suppressed nothing")
	}
	want := slices.Clone(done.Suppressed)
	slices.Sort(want)
	check("after an erasure", changes(c3.Seq), want, nil)
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range people[0].Keys {
		if !other.Suppressed(k) {
			t.Errorf("the other set does not suppress %s after a refresh", k.Type)
		}
	}
	if !other.Has(h(1)) {
		t.Error("the other set does not have h1 back")
	}
}
