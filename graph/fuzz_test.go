package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
)

// The fuzz target decodes its bytes into a short sequence of operations on
// a tiny alphabet of identifiers and traits, so that collisions, merges,
// limits, hubs, matching and steward actions meet often, and checks what
// must hold after any sequence (see checkGraph). Run it longer with
//
//	go test -run '^$' -fuzz '^FuzzStitch$' -fuzztime 10m -parallel 1 ./graph/
//
// Crashers land in testdata/fuzz/FuzzStitch, which every test run replays
// on both backends (TestStitchCorpusOnNeo4j).

// alphabet: 3 user IDs, 3 emails, 3 anonymous IDs, 2 devices, 2 CRM IDs and
// a custom type. Anonymous IDs share values with user IDs so that an
// alias's previousId can take either type.
var alphabet = []graph.Key{
	{Type: graph.TypeUserID, Value: "u1"}, {Type: graph.TypeUserID, Value: "u2"}, {Type: graph.TypeUserID, Value: "u3"},
	{Type: graph.TypeEmail, Value: "a@x.io"}, {Type: graph.TypeEmail, Value: "b@x.io"}, {Type: graph.TypeEmail, Value: "none@none.com"},
	{Type: graph.TypeAnonymousID, Value: "a1"}, {Type: graph.TypeAnonymousID, Value: "a2"}, {Type: graph.TypeAnonymousID, Value: "u1"},
	{Type: graph.TypeDeviceID, Value: "d1"}, {Type: graph.TypeDeviceID, Value: "d2"},
	{Type: graph.TypeCRMID, Value: "c1"}, {Type: graph.TypeCRMID, Value: "c2"},
	{Type: "loyalty_id", Value: "l1"},
}

var previousIDs = []string{"u1", "u2", "u3", "a1", "a2", "a3"}

// people are trait sets the test matcher scores 0.99 (same person), 0.8
// (review band: same last name and initial) or 0.1 against each other.
var people = []map[string]any{
	{"firstName": "Jon", "lastName": "Smith", "birthday": "1980-01-01"},
	{"firstName": "Jon", "lastName": "Smith", "birthday": "1990-02-02"},
	{"firstName": "Jane", "lastName": "Smith", "birthday": "1980-01-01"},
	{"firstName": "Ann", "lastName": "Lee", "birthday": "1975-03-03"},
}

const maxOps = 30

// numOps is the number of operation codes (see FuzzStitch).
const numOps = 17

var fuzzT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// bytesIn reads fuzz input a byte at a time; past the end it reads zeros.
type bytesIn struct {
	b []byte
	i int
}

func (r *bytesIn) more() bool { return r.i < len(r.b) }

func (r *bytesIn) next() int {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return int(r.b[r.i-1])
}

func (r *bytesIn) pick(n int) int { return r.next() % n }

// model is what the test knows independently of the stitcher: which
// identifiers exist and which were seen together (a union-find).
type model struct {
	seen     map[string]bool // message IDs stored
	exists   map[graph.Key]bool
	parent   map[graph.Key]graph.Key
	ingested []*graph.Observation
	// What invalidates an oracle: a steward reject, split or undo
	// separates co-observed identifiers; approve, link and undo split may join
	// profiles beyond the limits; link joins identifiers never seen
	// together.
	separated, overLimits, linked bool
	// held: the name guard kept co-observed identifiers apart.
	held bool
}

func (m *model) find(k graph.Key) graph.Key {
	for m.parent[k] != k {
		k = m.parent[k]
	}
	return k
}

// observe applies one stored observation as stitching must: the alias's
// previousId is a user ID if one is stored with that value, else an
// anonymous ID.
func (m *model) observe(o *graph.Observation) {
	if m.seen[o.MessageID] {
		return
	}
	m.seen[o.MessageID] = true
	m.ingested = append(m.ingested, o)
	keys := slices.Clone(o.Identifiers)
	if o.PreviousID != "" {
		prev := graph.Key{Type: graph.TypeAnonymousID, Value: o.PreviousID}
		if m.exists[graph.Key{Type: graph.TypeUserID, Value: o.PreviousID}] {
			prev.Type = graph.TypeUserID
		}
		keys = append(keys, prev)
	}
	for _, k := range keys {
		if !m.exists[k] {
			m.exists[k] = true
			m.parent[k] = k
		}
	}
	for _, k := range keys[1:] {
		m.parent[m.find(k)] = m.find(keys[0])
	}
}

// fuzzConfig decodes the first byte: matching on or off, tight limits
// (so that merge protection and hubs fire) or limits too large to matter,
// and tight matching guards.
type fuzzConfig struct {
	matching, tight bool
	// bulk: the rematch operation is a bulk pass's links instead
	// (`idgraph match` with a model trained with no set-up step).
	bulk  bool
	cfg   graph.Config
	match graph.MatchConfig
}

func decodeConfig(c int) fuzzConfig {
	fc := fuzzConfig{matching: c&1 != 0, tight: c&2 != 0, bulk: c&128 != 0, cfg: graph.DefaultConfig(), match: graph.DefaultMatchConfig()}
	if fc.tight {
		fc.cfg.Limits = map[string]int{graph.TypeUserID: 1, graph.TypeEmail: 2, graph.TypeAnonymousID: 3, graph.TypeDeviceID: 1, graph.TypeCRMID: 1, "loyalty_id": 1}
		fc.cfg.HubLimit = 2
	} else {
		for typ := range fc.cfg.Limits {
			fc.cfg.Limits[typ] = 1000
		}
		fc.cfg.Limits["loyalty_id"] = 1000
		fc.cfg.HubLimit = 1000
		fc.cfg.SharedLimits = nil // shared devices are repaired only under tight limits
	}
	if c&4 != 0 {
		fc.match.ChainSize, fc.match.MaxBlock = 2, 2
	}
	return fc
}

// runStitch decodes data into operations, runs them on the store and
// checks the graph after every steward action and at the end.
func runStitch(t *testing.T, s graph.Store, data []byte) {
	ctx := context.Background()
	r := &bytesIn{b: data}
	fc := decodeConfig(r.next())
	st := graph.NewStitcher(s, fc.cfg)
	tick := 0
	st.Now = func() time.Time { tick++; return fuzzT0.Add(time.Duration(tick) * time.Hour) }
	if fc.matching {
		st.Matcher, st.MatchConfig = storetest.NameMatcher, fc.match
	}
	m := &model{seen: map[string]bool{}, exists: map[graph.Key]bool{}, parent: map[graph.Key]graph.Key{}}
	var all, batch []*graph.Observation
	flush := func() {
		if len(batch) == 0 {
			return
		}
		res, err := st.Ingest(ctx, batch)
		if err != nil {
			t.Fatalf("ingest %s: %v", describe(batch), err)
		}
		// The trait sets' first names (Jon, Jane, Ann) disagree: the name
		// guard holds emails seen with another name's profile.
		m.held = m.held || res.NameHeld > 0
		for _, o := range batch {
			m.observe(o)
		}
		batch = nil
	}
	var done, refused []string
	// act runs a steward action (or a rematch), as a dry run when the
	// input says so: a dry run must change nothing. effect records what
	// a real action may do that the oracles must allow for.
	act := func(what string, fn func(context.Context) error, effect func()) {
		flush()
		dry := r.next()&1 == 1
		var before string
		c := ctx
		if dry {
			what, c, before = "dry run of "+what, graph.DryRun(ctx), dumpGraph(t, s, m)
		}
		err := fn(c)
		switch k := graph.ErrorKind(err); {
		case err == nil:
			done = append(done, what)
		case k == graph.KindInvalid || k == graph.KindConflict:
			// A refusal the API answers 400 or 409: nothing changed.
			refused = append(refused, fmt.Sprintf("%s: %v", what, err))
			return
		default:
			t.Fatalf("%s: %v (%s)", what, err, k)
		}
		if dry {
			if after := dumpGraph(t, s, m); after != before {
				t.Fatalf("%s changed the graph:\nbefore %s\nafter  %s", what, before, after)
			}
			return
		}
		if effect != nil {
			effect()
		}
		checkGraph(t, s, fc, m)
	}
	joins := func() { m.overLimits = true }
	separates := func() { m.separated = true }
	for ops := 0; ops < maxOps && r.more(); ops++ {
		switch op := r.pick(numOps); {
		case op < 8:
			o := decodeObservation(r, fmt.Sprintf("m%d", len(all)))
			all = append(all, o)
			batch = append(batch, o)
		case op == 8:
			flush()
		case op == 9 && len(all) > 0: // redelivery, possibly within the batch
			batch = append(batch, all[r.pick(len(all))])
		case op == 10 || op == 11:
			flush()
			q, err := s.ReviewQueue(ctx, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(q) == 0 {
				continue
			}
			e := q[r.pick(len(q))].Edge
			pair := [2]graph.Key{e.A, e.B}
			if op == 10 {
				act("approve "+graph.EdgeID(pair), func(ctx context.Context) error {
					_, err := st.Approve(ctx, "fuzz", pair, "")
					return err
				}, joins)
			} else {
				// A rejection keeps the two profiles apart, even when
				// their identifiers are seen together later.
				act("reject "+graph.EdgeID(pair), func(ctx context.Context) error {
					_, err := st.Reject(ctx, "fuzz", pair, "")
					return err
				}, separates)
			}
		case op == 12:
			flush()
			keys := slices.SortedFunc(maps.Keys(m.exists), graph.Key.Compare)
			if len(keys) < 2 {
				continue
			}
			a, b := keys[r.pick(len(keys))], keys[r.pick(len(keys))]
			act(fmt.Sprintf("link %s %s", a, b), func(ctx context.Context) error {
				_, err := st.Link(ctx, "fuzz", a, b, "")
				return err
			}, func() { m.overLimits, m.linked = true, true })
		case op == 13:
			flush()
			p := pickProfile(t, s, r)
			if p == nil {
				continue
			}
			ids, err := graph.ProfileIdentifiers(ctx, s, p)
			if err != nil {
				t.Fatal(err)
			}
			mask := r.next()
			var move []graph.Key
			for i, n := range ids {
				if mask&(1<<(i%8)) != 0 {
					move = append(move, n.Key)
				}
			}
			if len(move) == 0 {
				continue
			}
			act(fmt.Sprintf("split %s %v", p.ID, move), func(ctx context.Context) error {
				_, err := st.Split(ctx, "fuzz", p.ID, move, "")
				return err
			}, separates)
		case op == 14 || op == 15:
			flush()
			log, err := s.AuditLog(ctx, graph.AuditQuery{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var entries []*graph.AuditEntry
			for _, a := range log {
				if op == 14 && a.Merge != "" || op == 15 && a.Action == graph.ActionSplit {
					entries = append(entries, a)
				}
			}
			if len(entries) == 0 {
				continue
			}
			a := entries[r.pick(len(entries))]
			if op == 14 {
				act("undo merge "+a.Merge, func(ctx context.Context) error {
					_, err := st.UndoMerge(ctx, "fuzz", a.Merge, "")
					return err
				}, separates)
			} else {
				act("undo split "+a.ID, func(ctx context.Context) error {
					_, err := st.UndoSplit(ctx, "fuzz", a.ID, "")
					return err
				}, joins)
			}
		case op == 16 && fc.bulk:
			// A bulk pass's links between any stored identifiers, joined
			// or held, or their plan: the graph's guards and steward
			// decisions must hold whatever the bulk run says.
			flush()
			keys := slices.SortedFunc(maps.Keys(m.exists), graph.Key.Compare)
			if len(keys) < 2 {
				continue
			}
			var links []graph.Link
			for n := 1 + r.pick(4); n > 0; n-- {
				l := graph.Link{A: keys[r.pick(len(keys))], B: keys[r.pick(len(keys))], Model: "fuzz-bulk"}
				flags := r.next()
				l.Join = flags&1 != 0
				l.Score.Probability = []float64{0.99, 0.97, 0.8, 0.65}[flags>>1&3]
				if flags&8 != 0 {
					l.Hold = graph.ReasonClusterGuard
				}
				links = append(links, l)
			}
			act(fmt.Sprintf("links %v", links), func(ctx context.Context) error {
				if graph.IsDryRun(ctx) {
					_, _, err := st.PlanLinks(ctx, links, nil)
					return err
				}
				_, err := st.ApplyLinks(ctx, links)
				return err
			}, func() { m.linked = true })
		case op == 16:
			// The bulk re-score (idgraph match), or its plan, which must
			// write nothing (the dry-run bit decides which).
			flush()
			p := pickProfile(t, s, r)
			if p == nil {
				continue
			}
			act("rematch "+p.ID, func(ctx context.Context) error {
				if graph.IsDryRun(ctx) {
					_, _, err := st.PlanRematch(ctx, []string{p.ID}, nil, false)
					return err
				}
				_, err := st.Rematch(ctx, []string{p.ID})
				return err
			}, nil)
		}
	}
	flush()
	t.Logf("%+v; %d messages stored: %s", fc, len(m.ingested), describe(m.ingested))
	t.Logf("steward actions done: %q; refused: %q", done, refused)
	checkGraph(t, s, fc, m)
	checkRedelivery(t, st, s, m)
}

// decodeObservation reads 1-4 identifiers, an optional previousId, an
// optional trait set and a time within a quarter hour (so out of order).
func decodeObservation(r *bytesIn, msgID string) *graph.Observation {
	o := &graph.Observation{MessageID: msgID, Source: "fuzz", Event: graph.Event{Type: "track", Name: "Fuzzed"}}
	for n := 1 + r.pick(4); n > 0; n-- {
		o.Identifiers = append(o.Identifiers, alphabet[r.pick(len(alphabet))])
	}
	flags := r.next()
	if flags&1 != 0 {
		o.PreviousID = previousIDs[r.pick(len(previousIDs))]
		o.Event.Type = "alias"
	}
	if p := (flags >> 1 & 7) % 5; p > 0 {
		o.Traits = people[p-1]
		raw, _ := json.Marshal(o.Traits)
		o.Event.Type, o.Event.Name, o.Event.Traits = "identify", "", raw
	}
	o.Time = fuzzT0.Add(time.Duration(flags>>4) * time.Minute)
	return o
}

func describe(obs []*graph.Observation) string {
	var parts []string
	for _, o := range obs {
		s := fmt.Sprintf("%s%v", o.MessageID, o.Identifiers)
		if o.PreviousID != "" {
			s += " prev=" + o.PreviousID
		}
		if o.Traits != nil {
			s += fmt.Sprintf(" %v", o.Traits["firstName"])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// checkGraph checks what must hold after any sequence:
//   - the store's invariants (storetest.CheckInvariants);
//   - the live profiles hold exactly the identifiers ever observed, and
//     each identifier's own record points (through MergedInto) at the
//     profile that lists it;
//   - each live profile's anchor is one of its identifiers;
//   - an accepted edge never joins two live profiles, and (until a steward
//     splits or undoes a merge) each profile is connected by accepted
//     edges;
//   - the review queue lists exactly the pending edges;
//   - an identifier seen with more strong identifiers than the hub limit
//     is a hub;
//   - merge protection: no profile exceeds a limit unless a steward joined
//     profiles;
//   - exact stitching: with matching off (and no link), no profile spans
//     two groups of co-observed identifiers; with limits too large to
//     matter and no steward reject, split or undo, every group of co-observed
//     identifiers is in one profile; so with both, the profiles are
//     exactly the connected components, whatever the order and batching.
func checkGraph(t *testing.T, s graph.Store, fc fuzzConfig, m *model) {
	t.Helper()
	ctx := context.Background()
	storetest.CheckInvariants(t, s)
	profileOf := map[graph.Key]string{}
	members := map[string][]graph.Key{}
	ps, err := s.Profiles(ctx, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	idss, err := s.IdentifiersOf(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		counts := map[string]int{}
		hasAnchor := false
		for _, n := range idss[i] {
			profileOf[n.Key] = p.ID
			members[p.ID] = append(members[p.ID], n.Key)
			counts[n.Type]++
			hasAnchor = hasAnchor || n.Key == p.Anchor
		}
		if !hasAnchor {
			t.Errorf("profile %s's anchor %s is not one of its identifiers %v", p.ID, p.Anchor, members[p.ID])
		}
		for typ, c := range counts {
			if limit := limitOf(fc.cfg, typ); c > limit && !m.overLimits {
				t.Errorf("profile %s holds %d %s identifiers, over the limit %d", p.ID, c, typ, limit)
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(m.exists), graph.Key.Compare)
	if len(profileOf) != len(keys) {
		t.Errorf("live profiles hold %d identifiers, %d were observed", len(profileOf), len(keys))
	}
	ids, err := s.GetIdentifiers(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range ids {
		k := keys[i]
		if n == nil {
			t.Errorf("identifier %s was observed but is not stored", k)
			continue
		}
		p, err := s.Profile(ctx, n.Profile)
		if err != nil {
			t.Errorf("identifier %s: profile %q: %v", k, n.Profile, err)
			continue
		}
		live := p.ID
		if p.MergedInto != "" {
			live = p.MergedInto
		}
		if live != profileOf[k] {
			t.Errorf("identifier %s points at profile %s (live: %s) but is listed in %q", k, n.Profile, live, profileOf[k])
		}
		if n.Strong > fc.cfg.HubLimit && !n.Hub {
			t.Errorf("identifier %s was seen with %d strong identifiers, over the hub limit %d, and is not a hub", k, n.Strong, fc.cfg.HubLimit)
		}
	}
	edges, err := s.EdgesOf(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[[2]graph.Key]bool{}
	comp := map[graph.Key]graph.Key{} // components of accepted edges
	var findComp func(graph.Key) graph.Key
	findComp = func(k graph.Key) graph.Key {
		if p, ok := comp[k]; ok && p != k {
			return findComp(p)
		}
		return k
	}
	for _, e := range edges {
		switch e.Status {
		case graph.StatusAccepted:
			if profileOf[e.A] != profileOf[e.B] {
				t.Errorf("accepted %s edge %s–%s joins two profiles, %s and %s", e.Kind, e.A, e.B, profileOf[e.A], profileOf[e.B])
			}
			comp[findComp(e.A)] = findComp(e.B)
		case graph.StatusPending:
			pending[[2]graph.Key{e.A, e.B}] = true
		}
	}
	// A steward's split or undo moves the identifiers named, connected or
	// not; everything else joins profiles only along accepted edges.
	for p, ks := range members {
		for _, k := range ks[1:] {
			if !m.separated && findComp(k) != findComp(ks[0]) {
				t.Errorf("profile %s holds %s and %s, which no path of accepted edges joins", p, ks[0], k)
			}
		}
	}
	q, err := s.ReviewQueue(ctx, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	queued := map[[2]graph.Key]bool{}
	for _, it := range q {
		pair := [2]graph.Key{it.Edge.A, it.Edge.B}
		if it.Edge.Status != graph.StatusPending || !pending[pair] {
			t.Errorf("the review queue lists %s–%s, which is %s", pair[0], pair[1], it.Edge.Status)
		}
		queued[pair] = true
	}
	for pair := range pending {
		if !queued[pair] {
			t.Errorf("pending edge %s–%s is not in the review queue", pair[0], pair[1])
		}
	}
	// Exact stitching against the union-find.
	if !fc.matching && !m.linked {
		for p, ks := range members {
			for _, k := range ks[1:] {
				if m.find(k) != m.find(ks[0]) {
					t.Errorf("profile %s joins %s and %s, never seen connected", p, ks[0], k)
				}
			}
		}
	}
	if !fc.tight && !m.separated && !m.held {
		for _, k := range keys {
			if root := m.find(k); profileOf[k] != profileOf[root] {
				t.Errorf("%s and %s were seen connected but are in profiles %s and %s", k, root, profileOf[k], profileOf[root])
			}
		}
	}
}

// pickProfile picks a live profile, nil when there is none.
func pickProfile(t *testing.T, s graph.Store, r *bytesIn) *graph.Profile {
	t.Helper()
	ps, err := s.Profiles(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		return nil
	}
	return ps[r.pick(len(ps))]
}

func limitOf(cfg graph.Config, typ string) int {
	if n, ok := cfg.Limits[typ]; ok {
		return n
	}
	return graph.DefaultCustomLimit
}

// checkRedelivery sends every stored message again, in one batch and then
// one at a time: all are duplicates and nothing in the graph changes.
func checkRedelivery(t *testing.T, st *graph.Stitcher, s graph.Store, m *model) {
	t.Helper()
	if len(m.ingested) == 0 {
		return
	}
	ctx := context.Background()
	before := dumpGraph(t, s, m)
	res, err := st.Ingest(ctx, m.ingested)
	if err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	for _, o := range slices.Backward(m.ingested) {
		r, err := st.Ingest(ctx, []*graph.Observation{o})
		if err != nil {
			t.Fatalf("redeliver %s: %v", o.MessageID, err)
		}
		res.Stored += r.Stored
	}
	if res.Stored != 0 || res.Duplicates != len(m.ingested) {
		t.Errorf("redelivering %d messages stored %d, found %d duplicates", len(m.ingested), res.Stored, res.Duplicates)
	}
	if after := dumpGraph(t, s, m); after != before {
		t.Errorf("redelivery changed the graph:\nbefore %s\nafter  %s", before, after)
	}
}

// dumpGraph renders the live profiles, their identifiers and the edges.
func dumpGraph(t *testing.T, s graph.Store, m *model) string {
	t.Helper()
	ctx := context.Background()
	ps, err := s.Profiles(ctx, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.SortedFunc(maps.Keys(m.exists), graph.Key.Compare)
	ids, err := s.GetIdentifiers(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	edges, err := s.EdgesOf(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal([]any{ps, ids, edges})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzStitch's seeds are in testdata/fuzz/FuzzStitch with the crashers
// found, written by testdata/fuzz/seeds.py (which says what each
// exercises). The input: a config byte (bit 0 matching, bit 1 tight
// limits, bit 2 tight matching guards, bit 7 bulk links for rematch), then
// operations: 0-7 observe, 8 flush the batch, 9 redeliver, 10 approve, 11
// reject, 12 link, 13 split, 14 undo merge, 15 undo split, 16 rematch (or
// bulk links: count-1, then per link two identifier picks and a flags
// byte). An observation is: count-1,
// identifier indexes, flags (bit 0 alias, bits 1-3 person+1, bits 4-7
// minutes). A steward action or rematch is: the choice of edge, profile
// or entry (and a split's mask), then a byte whose bit 0 makes it a dry
// run.
func FuzzStitch(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := pebble.OpenMem()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		runStitch(t, s, data)
	})
}

// TestStitchCorpusOnNeo4j replays the fuzz corpus (hand-written seeds and
// crashers) on Neo4j, so that every sequence the fuzzer keeps is checked
// on both backends.
func TestStitchCorpusOnNeo4j(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzStitch", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no fuzz corpus in testdata/fuzz/FuzzStitch")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := readCorpusFile(file)
			if err != nil {
				t.Fatal(err)
			}
			runStitch(t, backends.OpenNeo4j(t), data)
		})
	}
}

// readCorpusFile reads a file in go test's corpus format: a version line,
// then one []byte("…") value.
func readCorpusFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	head, val, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	if !ok || head != "go test fuzz v1" {
		return nil, fmt.Errorf("%s: not a go test fuzz v1 file", path)
	}
	val = strings.TrimSpace(val)
	if !strings.HasPrefix(val, "[]byte(") || !strings.HasSuffix(val, ")") {
		return nil, fmt.Errorf("%s: want one []byte value, have %q", path, val)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(val, "[]byte("), ")"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return []byte(s), nil
}
