package segments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

var (
	oracleSeeds = flag.Int("oracle.seeds", 3, "random streams per backend in TestOracle")
	oracleSteps = flag.Int("oracle.steps", 300, "steps of each stream in TestOracle")
)

// oracleDefs are the definitions the oracle maintains, dependencies
// first: windows, nested chains, traits, identifiers, in_segment and
// computed references, time functions.
var oracleDefs = []struct {
	kind     lang.Kind
	key, src string
}{
	{lang.KindComputed, "spend30", `events("Order").within(30d).sum(prop("revenue"))`},
	{lang.KindComputed, "last_sku", `events("Order").last(prop("sku"))`},
	{lang.KindComputed, "fav_page", `events("Page").within(2d).mode(prop("sku"))`},
	{lang.KindComputed, "days_idle", `days_since(events("Order").last_at())`},
	{lang.KindComputed, "city", `lower(trait("address.city"))`},
	{lang.KindComputed, "avg_recent", `events("Order").latest(3).avg(prop("revenue"))`},
	{lang.KindSegment, "buyer7", `events("Order").within(7d).exists()`},
	{lang.KindSegment, "big", `events("Order").where(number(prop("revenue")) >= 50).count() >= 2`},
	{lang.KindSegment, "pro", `trait("plan") = "pro"`},
	{lang.KindSegment, "pro_buyer", `in_segment("buyer7") and in_segment("pro")`},
	{lang.KindSegment, "lapsed", `events("Order").exists() and not events("Order").within(3d).exists()`},
	{lang.KindSegment, "multi_device", `id_count("anonymous_id") >= 2 and has_id("user_id")`},
	{lang.KindSegment, "abandoned", `events("Cart").between(1h, 2d).where(
		not events("Order").after_parent().where(prop("sku") = parent.prop("sku")).exists()).exists()`},
	{lang.KindSegment, "spender", `computed("spend30") > 100`},
	{lang.KindSegment, "quiet_spender", `in_segment("spender") and computed("days_idle") >= 2`},
	{lang.KindSegment, "recent_page", `events("Page").between(0d, 12h).count() between 1 and 3`},
}

// oracle drives one random stream through the incremental path and
// checks it against a from-scratch evaluation of the raw event log.
type oracle struct {
	f     *fixture
	rng   *rand.Rand
	progs []*lang.Program
	srcs  []string // the sources progs were compiled from
	// log is the raw event log: the first observation of each message ID
	// (the store drops redeliveries).
	log   map[string]*graph.Observation
	order []string // message IDs in arrival order
	sent  []*graph.Observation
	// people are user IDs, each with its anonymous IDs.
	people [][]string
	checks int
	merges int
	splits int
	edits  int
	// viaPending sends changes through the durable path: stitching
	// records them with the events, the engine catches up.
	viaPending bool
	stitcher   *graph.Stitcher
	// traits is each (profile, computed trait)'s value as its change
	// records tell it, read up to the sequence traitsRead.
	traits     map[[2]string]*segments.Value
	traitsRead uint64
	traitRecs  int
}

func newOracle(t *testing.T, f *fixture, seed uint64) *oracle {
	o := &oracle{f: f, rng: rand.New(rand.NewPCG(seed, 13)), log: map[string]*graph.Observation{},
		viaPending: seed%2 == 1, stitcher: graph.NewStitcher(f.g, graph.DefaultConfig()),
		traits: map[[2]string]*segments.Value{}}
	o.stitcher.RecordDataChanges = o.viaPending
	env := lang.MapEnv{}
	for _, d := range oracleDefs {
		f.define(d.kind, d.key, d.src)
		prog, err := lang.Compile(d.src, lang.Options{Kind: d.kind, Key: d.key, Env: env})
		if err != nil {
			t.Fatalf("compile %s: %v", d.key, err)
		}
		env[segments.Ref{Kind: d.kind, Key: d.key}] = prog.Definition()
		o.progs, o.srcs = append(o.progs, prog), append(o.srcs, d.src)
	}
	for i := range 8 {
		p := []string{fmt.Sprintf("user_id:u%d", i)}
		for j := range 1 + o.rng.IntN(3) {
			p = append(p, fmt.Sprintf("anonymous_id:a%d-%d", i, j))
		}
		o.people = append(o.people, p)
	}
	return o
}

func key(s string) graph.Key {
	typ, v, _ := strings.Cut(s, ":")
	return graph.Key{Type: typ, Value: v}
}

func (o *oracle) pick(xs ...string) string { return xs[o.rng.IntN(len(xs))] }

// identifiers picks who an observation is about: mostly one anonymous
// device, sometimes a login (user ID with a device: a merge), sometimes
// the user ID alone.
func (o *oracle) identifiers() []string {
	p := o.people[o.rng.IntN(len(o.people))]
	anon := p[1+o.rng.IntN(len(p)-1)]
	switch r := o.rng.IntN(10); {
	case r < 6:
		return []string{anon}
	case r < 8:
		return []string{p[0], anon}
	default:
		return []string{p[0]}
	}
}

// observation makes a random track or identify message, late, on time or
// slightly in the future.
func (o *oracle) observation(now time.Time) *graph.Observation {
	msg := fmt.Sprintf("m%d", len(o.sent))
	at := now.Add(-time.Duration(o.rng.Int64N(int64(96 * time.Hour))))
	switch o.rng.IntN(20) {
	case 0:
		at = now.Add(time.Duration(o.rng.Int64N(int64(2 * time.Hour)))) // clock skew: future
	case 1, 2:
		at = now.Add(-time.Duration(o.rng.Int64N(int64(40 * 24 * time.Hour)))) // very late
	}
	obs := graphtest.Obs(msg, at, o.identifiers()...)
	if o.rng.IntN(8) == 0 {
		obs.Event = graph.Event{Type: "identify", Timestamp: at}
		obs.Traits = map[string]any{"plan": o.pick("free", "pro"), "address": map[string]any{"city": o.pick("Paris", "LYON", "Köln")}}
		return obs
	}
	props := map[string]any{"sku": o.pick("A", "B", "C")}
	switch o.rng.IntN(5) {
	case 0:
		props["revenue"] = fmt.Sprint(o.rng.IntN(120)) // a numeric string
	case 1: // no revenue
	default:
		props["revenue"] = o.rng.IntN(120)
	}
	raw, _ := json.Marshal(props)
	obs.Event = graph.Event{Type: "track", Name: o.pick("Order", "Order", "Page", "Cart"), Timestamp: at, Properties: raw}
	return obs
}

// redelivery re-sends an earlier message ID with another payload and
// time: the store must drop it.
func (o *oracle) redelivery(now time.Time) *graph.Observation {
	prev := o.sent[o.rng.IntN(len(o.sent))]
	obs := o.observation(now)
	obs.MessageID = prev.MessageID
	return obs
}

func (o *oracle) run(t *testing.T, steps int) {
	ctx := context.Background()
	now := t0
	for i := range steps {
		now = now.Add(time.Duration(o.rng.Int64N(int64(6 * time.Hour))))
		o.f.clock.Set(now)
		var obs *graph.Observation
		if len(o.sent) > 0 && o.rng.IntN(10) == 0 {
			obs = o.redelivery(now)
		} else {
			obs = o.observation(now)
		}
		o.sent = append(o.sent, obs)
		if _, dup := o.log[obs.MessageID]; !dup {
			o.log[obs.MessageID] = obs
			o.order = append(o.order, obs.MessageID)
		}
		r, err := o.stitcher.Ingest(ctx, []*graph.Observation{obs})
		if err != nil {
			t.Fatalf("step %d: ingest: %v", i, err)
		}
		o.merges += r.Merges
		if o.viaPending {
			o.catchUp(t)
		} else {
			o.incremental(t, obs)
		}
		if o.rng.IntN(30) == 0 {
			o.split(t)
		}
		if o.rng.IntN(40) == 0 {
			o.edit(t)
		}
		if o.rng.IntN(4) == 0 {
			if _, err := o.f.e.Drain(ctx); err != nil {
				t.Fatalf("step %d: drain: %v", i, err)
			}
		}
		if o.rng.IntN(25) == 0 || i == steps-1 {
			// A checkpoint a little later: some windows pass with no
			// event at all.
			now = now.Add(time.Duration(o.rng.Int64N(int64(3 * 24 * time.Hour))))
			o.f.clock.Set(now)
			if _, err := o.f.e.Drain(ctx); err != nil {
				t.Fatalf("step %d: drain: %v", i, err)
			}
			o.check(t, i, now)
		}
	}
	o.checkTransitions(t)
}

// oracleEdits are other sources the stream switches definitions to, each
// read by others (pro by pro_buyer, spend30 by spender, buyer7 by
// pro_buyer), so a backfill of an edit evaluates it and its readers and
// carries the other entries over.
var oracleEdits = map[string][2]string{
	"pro":     {`trait("plan") = "pro"`, `trait("plan") = "free"`},
	"spend30": {`events("Order").within(30d).sum(prop("revenue"))`, `events("Order").within(10d).sum(prop("revenue"))`},
	"buyer7":  {`events("Order").within(7d).exists()`, `events("Order").within(2d).exists()`},
}

// edit switches a definition to its other source and backfills it.
func (o *oracle) edit(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	keys := slices.Sorted(maps.Keys(oracleEdits))
	k := keys[o.rng.IntN(len(keys))]
	i := slices.IndexFunc(o.progs, func(p *lang.Program) bool { return p.Key == k })
	kind, src := o.progs[i].Kind, oracleEdits[k][0]
	if o.srcs[i] == src {
		src = oracleEdits[k][1]
	}
	ref := segments.RefString(segments.Ref{Kind: kind, Key: k})
	d, err := o.f.e.Define(ctx, kind, k, src, o.f.defs[ref])
	if err != nil {
		t.Fatalf("edit %s: %v", k, err)
	}
	o.f.defs[ref] = d.Version
	if err := o.f.e.Backfill(ctx, d); err != nil {
		t.Fatalf("backfill %s: %v", k, err)
	}
	env := lang.MapEnv{}
	for j, p := range o.progs {
		if j == i {
			if p, err = lang.Compile(src, lang.Options{Kind: kind, Key: k, Env: env}); err != nil {
				t.Fatal(err)
			}
			o.progs[j], o.srcs[j] = p, src
		}
		env[segments.Ref{Kind: p.Kind, Key: p.Key}] = p.Definition()
	}
	o.edits++
}

// split has a steward move one identifier of a person's profile to a
// profile of its own, with the events seen only on it.
func (o *oracle) split(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	person := o.people[o.rng.IntN(len(o.people))]
	if _, err := o.f.g.Identifier(ctx, key(person[0])); err != nil {
		return // not seen yet
	}
	p := graphtest.ProfileOf(t, o.f.g, person[0])
	ids, err := graph.ProfileIdentifiers(ctx, o.f.g, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 2 {
		return
	}
	k := ids[o.rng.IntN(len(ids))].Key
	entry, err := o.stitcher.Split(ctx, "steward:oracle", p.ID, []graph.Key{k}, "")
	if err != nil {
		t.Fatalf("split %s off %s: %v", k, p.ID, err)
	}
	o.splits++
	if o.viaPending {
		o.catchUp(t)
		return
	}
	for _, id := range entry.Profiles {
		if _, err := o.f.e.Update(ctx, id, segments.Change{All: true}); err != nil {
			t.Fatalf("update %s after a split: %v", id, err)
		}
	}
}

// catchUp evaluates the pending changes stitching recorded.
func (o *oracle) catchUp(t *testing.T) {
	t.Helper()
	for {
		n, err := o.f.e.CatchUp(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// incremental tells the engine what the observation changed, for every
// profile it touched.
func (o *oracle) incremental(t *testing.T, obs *graph.Observation) {
	t.Helper()
	ch := segments.Change{}
	if obs.Event.Type == "track" {
		ch.Events = []string{obs.Event.Name}
	}
	for path := range graph.FlattenTraits(obs.Traits) {
		ch.Traits = append(ch.Traits, path)
	}
	done := map[string]bool{}
	for _, k := range obs.Identifiers {
		if _, err := o.f.g.Identifier(context.Background(), k); graph.ErrorKind(err) == graph.KindNotFound {
			continue // a redelivery, dropped, named an identifier never stored
		}
		p := graphtest.ProfileOf(t, o.f.g, k.String()).ID
		if done[p] {
			continue
		}
		done[p] = true
		if _, err := o.f.e.Update(context.Background(), p, ch); err != nil {
			t.Fatalf("update %s: %v", p, err)
		}
	}
}

// check compares every profile's stored entries with a from-scratch
// evaluation over the raw log at now.
func (o *oracle) check(t *testing.T, step int, now time.Time) {
	t.Helper()
	o.checks++
	ctx := context.Background()
	var live []*graph.Profile
	for after := ""; ; {
		ps, err := o.f.g.Profiles(ctx, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			break
		}
		live = append(live, ps...)
		after = ps[len(ps)-1].ID
	}
	ids, err := o.f.g.IdentifiersOf(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	mismatches := o.readTraitRecords(t)
	for i, p := range live {
		want := o.fromScratch(t, p, ids[i], now)
		got := o.f.state(ids[i][0].Key.String())
		for _, prog := range o.progs {
			rs := segments.RefString(segments.Ref{Kind: prog.Kind, Key: prog.Key})
			g, w := got.Entries[rs], want[rs]
			if g.Member != w.Member || !g.Value.Equal(w.Value) {
				mismatches++
				t.Errorf("step %d, %s, profile %s (%s): incremental %s, from scratch %s",
					step, now.Format(time.RFC3339), p.ID, ids[i][0].Key, show(g), show(w))
			}
			if r := o.traits[[2]string{p.ID, prog.Key}]; prog.Kind == lang.KindComputed && !r.Equal(w.Value) {
				mismatches++
				t.Errorf("step %d, profile %s: the change records of %s end at %s, from scratch %s",
					step, p.ID, prog.Key, show(segments.Entry{Value: r}), show(w))
			}
		}
		sts, err := o.f.s.States(ctx, p.Absorbed)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sts {
			if len(st.Entries) > 0 {
				mismatches++
				t.Errorf("step %d: absorbed profile %s keeps entries %v", step, st.Profile, st.Entries)
			}
			for _, prog := range o.progs {
				if r := o.traits[[2]string{st.Profile, prog.Key}]; r != nil {
					mismatches++
					t.Errorf("step %d: the change records of absorbed profile %s end with %s = %s", step, st.Profile, prog.Key, show(segments.Entry{Value: r}))
				}
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("step %d: %d mismatches", step, mismatches)
	}
}

// readTraitRecords follows the computed traits' change records written
// since the last checkpoint: each starts from the value the previous one
// of its (profile, trait) ended at (missing at first) and differs from it.
// It returns the number of records that do not.
func (o *oracle) readTraitRecords(t *testing.T) int {
	t.Helper()
	bad := 0
	for {
		cs, err := o.f.s.Changes(context.Background(), o.traitsRead, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			o.traitsRead = c.Sequence
			if !c.IsTrait() {
				continue
			}
			o.traitRecs++
			k := [2]string{c.Profile, c.Trait}
			if c.Direction != segments.Changed || c.Segment != "" || !c.Previous.Equal(o.traits[k]) || c.Previous.Equal(c.Value) {
				bad++
				t.Errorf("record %d of %s %s: %s → %s (%s), after %s", c.Sequence, c.Profile, c.Trait,
					show(segments.Entry{Value: c.Previous}), show(segments.Entry{Value: c.Value}), c.Direction, show(segments.Entry{Value: o.traits[k]}))
			}
			o.traits[k] = c.Value
		}
		if len(cs) < 500 {
			return bad
		}
	}
}

func show(e segments.Entry) string {
	if e.Value != nil {
		b, _ := json.Marshal(e.Value)
		return string(b)
	}
	return fmt.Sprintf("member=%v", e.Member)
}

// fromScratch evaluates every definition for a profile over the raw log:
// the events seen with any of its identifiers, its stored traits and
// identifier counts.
func (o *oracle) fromScratch(t *testing.T, p *graph.Profile, ids []*graph.Identifier, now time.Time) map[string]segments.Entry {
	t.Helper()
	snap := &lang.Snapshot{Traits: map[string]any{}, IDCounts: map[string]int{}, Segments: map[string]bool{}, Computed: map[string]any{}}
	for path, tr := range p.Traits {
		snap.Traits[path] = tr.Value
	}
	mine := map[graph.Key]bool{}
	for _, n := range ids {
		mine[n.Key] = true
		snap.IDCounts[n.Type]++
	}
	for _, id := range o.order {
		obs := o.log[id]
		if obs.Event.Type != "track" || !slices.ContainsFunc(obs.Identifiers, func(k graph.Key) bool { return mine[k] }) {
			continue
		}
		ev := lang.Event{Name: obs.Event.Name, Timestamp: obs.Event.Timestamp, MessageID: id}
		d := json.NewDecoder(bytes.NewReader(obs.Event.Properties))
		d.UseNumber()
		if err := d.Decode(&ev.Properties); err != nil {
			t.Fatal(err)
		}
		snap.Events = append(snap.Events, ev)
	}
	view := snap.View()
	out := map[string]segments.Entry{}
	for _, prog := range o.progs {
		v := lang.Eval(prog, view, now).Value
		rs := segments.RefString(segments.Ref{Kind: prog.Kind, Key: prog.Key})
		if prog.Kind == lang.KindSegment {
			snap.Segments[prog.Key] = v.Type == lang.TypeBool && v.Bool
			out[rs] = segments.Entry{Member: snap.Segments[prog.Key]}
			continue
		}
		out[rs] = segments.Entry{Value: segments.ValueOf(v)}
		if x := segments.ValueOf(v); x != nil {
			snap.Computed[prog.Key] = x.Interface()
		}
	}
	return out
}

// checkTransitions reads every change record: per (profile, segment) they
// alternate, starting with entered, and end as the membership stands.
func (o *oracle) checkTransitions(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	last := map[[2]string]string{}
	n := 0
	var after uint64
	for {
		cs, err := o.f.s.Changes(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			if c.Sequence <= after {
				t.Fatalf("sequence %d after %d", c.Sequence, after)
			}
			after = c.Sequence
			if c.IsTrait() {
				continue // readTraitRecords checks them
			}
			k := [2]string{c.Profile, c.Segment}
			prev, seen := last[k]
			if prev == c.Direction || (!seen && c.Direction != segments.Entered) {
				t.Errorf("record %d: %s %s %s after %q", c.Sequence, c.Profile, c.Segment, c.Direction, prev)
				if os.Getenv("ORACLE_DEBUG") != "" {
					all, _ := o.f.s.Changes(ctx, 0, 10000)
					for _, x := range all {
						if x.Profile == c.Profile && x.Segment == c.Segment {
							t.Logf("  %+v", *x)
						}
					}
					t.FailNow()
				}
			}
			last[k] = c.Direction
			n++
		}
	}
	for k, dir := range last {
		sts, err := o.f.s.States(ctx, []string{k[0]})
		if err != nil {
			t.Fatal(err)
		}
		if sts[0].Member(k[1]) != (dir == segments.Entered) {
			t.Errorf("profile %s: last record for %s is %s, member: %v", k[0], k[1], dir, sts[0].Member(k[1]))
		}
	}
	t.Logf("%d messages (%d redeliveries), %d merges, %d splits, %d edits, %d checkpoints, %d membership and %d computed trait change records, zero mismatches (pending changes: %v)",
		len(o.sent), len(o.sent)-len(o.order), o.merges, o.splits, o.edits, o.checks, n, o.traitRecs, o.viaPending)
}

// TestOracle: random streams of events (late, duplicate, out of order,
// future-dated), identifies and merges go through the incremental path;
// at random checkpoints every membership and computed value equals a
// from-scratch evaluation over the raw log.
func TestOracle(t *testing.T) {
	steps := *oracleSteps
	if testing.Short() {
		steps /= 5
	}
	for _, b := range backends.All() {
		for seed := range uint64(*oracleSeeds) {
			t.Run(fmt.Sprintf("%s/seed%d", b.Name, seed), func(t *testing.T) {
				newOracle(t, newFixture(t, b.Open), seed).run(t, steps)
			})
		}
	}
}
