package segments

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments/lang"
)

// Engine keeps every profile's memberships and computed values equal to a
// from-scratch evaluation of the definitions over the profile's data.
//
// It is exact by construction: when a profile changes, the definitions
// that depend on what changed are evaluated again, from scratch, over the
// profile's stored events, traits and identifiers (the evaluator is exact;
// there is no approximate state to drift). What it saves per profile is
// each definition's result and next deadline; the timer index re-evaluates
// a result when its deadline passes.
type Engine struct {
	graph graph.Reader
	store Store
	opt   EngineOptions

	mu   sync.RWMutex
	defs *definitions
	// stored fingerprints the stored definitions defs was compiled from,
	// checked when refresh last read them.
	stored  string
	checked time.Time

	// pendingMu serialises CatchUp; pendingAfter is where its next page
	// of pending changes starts.
	pendingMu    sync.Mutex
	pendingAfter string
}

// EngineOptions configure an Engine. Zero fields take defaults.
type EngineOptions struct {
	Limits lang.Limits
	// Now is the clock (time.Now).
	Now func() time.Time
	// Retries bounds the evaluations of a profile whose state another
	// evaluation saved in between (default 10).
	Retries int
	// TimerBatch is how many due timers a drain reads at once (default
	// 500).
	TimerBatch int
	// SampleEvery is how often Run stores every segment's size (default
	// DefaultSampleEvery; negative: never), and SampleKeep how long
	// samples are kept (default DefaultSampleKeep).
	SampleEvery, SampleKeep time.Duration
}

// NewEngine returns an engine with no definitions loaded: call Load.
func NewEngine(r graph.Reader, s Store, opt EngineOptions) *Engine {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Retries <= 0 {
		opt.Retries = 10
	}
	if opt.TimerBatch <= 0 {
		opt.TimerBatch = 500
	}
	if opt.SampleEvery == 0 {
		opt.SampleEvery = DefaultSampleEvery
	}
	if opt.SampleKeep <= 0 {
		opt.SampleKeep = DefaultSampleKeep
	}
	return &Engine{graph: r, store: s, opt: opt, defs: &definitions{byRef: map[string]*compiled{}}}
}

// compiled is one live definition, ready to evaluate.
type compiled struct {
	def  *Definition
	ref  string // RefString
	prog *lang.Program
	rank int // place in evaluation order: after everything it reads
	// dependents are the definitions that read this one, and their ranks.
	dependents []string
	readBy     []int
	// reads are the loaded definitions this one reads (in_segment,
	// computed).
	reads []*compiled
}

// definitions are the loaded definitions and the dependency index that maps
// what changed to what must be evaluated again.
type definitions struct {
	order   []*compiled // dependencies first
	byRef   map[string]*compiled
	events  map[string][]int // event name → ranks of the definitions reading it
	idTypes map[string][]int
	traits  []traitDep
	// print fingerprints the compiled definitions and their versions.
	print string
	// held is what each compiled definition is (RefString → version,
	// creation time and a hash of the source), and before the prints and
	// helds of the definitions loaded before these in this process, newest
	// last: a state saved with one of them needs only the definitions
	// changed since evaluated again.
	held   map[string]string
	before []heldPrint
	// since maps each print of before to the definitions created or
	// edited since it (changedSince), worked out once here; dropped lists
	// the prints some of whose definitions are no longer loaded.
	since   map[string][]Ref
	dropped map[string]bool
	// failed lists the definitions that did not compile, with why.
	failed map[string]error
}

// heldPrint is a print of earlier definitions and what they held.
type heldPrint struct {
	print string
	held  map[string]string
}

// keepPrints bounds the earlier prints definitions remember: a state saved
// with an older one is evaluated whole. A backfill leaves the states
// whose entries it does not change at their print, so prints stay in use
// until the profile's next evaluation.
const keepPrints = 256

type traitDep struct {
	path string
	rank int
}

// Load reads the definitions and compiles the live ones (not DISABLED) in
// dependency order. A definition that does not compile, or that reads one
// that did not, is left out and reported by Failed.
func (e *Engine) Load(ctx context.Context) error {
	ds, err := e.store.Definitions(ctx)
	if err != nil {
		return fmt.Errorf("segments: load: %w", err)
	}
	e.mu.Lock()
	e.defs, e.stored = compile(ds, e.opt.Limits, e.defs), storedPrint(ds)
	e.mu.Unlock()
	return nil
}

// storedPrint fingerprints stored definitions as loaded: a change of any
// one's version or status changes it.
func storedPrint(ds []*Definition) string {
	h := sha256.New()
	for _, d := range ds {
		fmt.Fprintf(h, "%s\x00%d\x00%s\x00", RefString(d.Ref()), d.Version, d.Status.State)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// refreshEvery bounds how often an engine reads the stored definitions to
// see whether another process changed them.
const refreshEvery = 250 * time.Millisecond

// refresh loads the definitions again if the stored ones changed since
// they were loaded (another process sharing the store created, edited or
// deleted one), at most once per refreshEvery, and returns those to
// evaluate with.
func (e *Engine) refresh(ctx context.Context) (*definitions, error) {
	e.mu.RLock()
	defs, checked := e.defs, e.checked
	e.mu.RUnlock()
	now := time.Now()
	if now.Sub(checked) < refreshEvery {
		return defs, nil
	}
	ds, err := e.store.Definitions(ctx)
	if err != nil {
		return defs, fmt.Errorf("segments: refresh definitions: %w", err)
	}
	fp := storedPrint(ds)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.checked = now
	if fp != e.stored {
		e.defs, e.stored = compile(ds, e.opt.Limits, e.defs), fp
	}
	return e.defs, nil
}

// Failed returns the definitions Load left out, by RefString, with their
// errors.
func (e *Engine) Failed() map[string]error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return maps.Clone(e.defs.failed)
}

// compile compiles the live definitions of ds; prev are the definitions
// loaded before (nil for none), whose print the result remembers.
func compile(ds []*Definition, lim lang.Limits, prev *definitions) *definitions {
	out := &definitions{byRef: map[string]*compiled{}, events: map[string][]int{}, idTypes: map[string][]int{}, failed: map[string]error{},
		held: map[string]string{}}
	env := lang.MapEnv{}
	pending := slices.DeleteFunc(slices.Clone(ds), func(d *Definition) bool { return d.Status.State == StateDisabled })
	// Each pass compiles the definitions whose references are compiled,
	// so the order of success is an order of dependencies. in_segment and
	// computed chains are at most lang's MaxRefChain long.
	for progress := true; progress && len(pending) > 0; {
		progress = false
		var next []*Definition
		for _, d := range pending {
			prog, err := lang.Compile(d.Source, lang.Options{Kind: d.Kind, Key: d.Key, Limits: lim, Env: env})
			var le *lang.Error
			if errors.As(err, &le) && le.Code == lang.CodeUnknownReference {
				next = append(next, d)
				out.failed[RefString(d.Ref())] = err
				continue
			}
			if err != nil {
				out.failed[RefString(d.Ref())] = err
				continue
			}
			delete(out.failed, RefString(d.Ref()))
			env[d.Ref()] = prog.Definition()
			c := &compiled{def: d, ref: RefString(d.Ref()), prog: prog, rank: len(out.order)}
			out.order = append(out.order, c)
			out.byRef[c.ref] = c
			progress = true
		}
		pending = next
	}
	h := sha256.New()
	for _, c := range out.order {
		fmt.Fprintf(h, "%s\x00%d\x00", c.ref, c.def.Version)
		src := sha256.Sum256([]byte(c.def.Source))
		out.held[c.ref] = fmt.Sprintf("%d\x00%d\x00%x", c.def.Version, c.def.CreatedAt.UnixNano(), src[:8])
	}
	out.print = hex.EncodeToString(h.Sum(nil)[:12])
	if prev != nil {
		out.before = prev.before
		if prev.print != "" && prev.print != out.print {
			out.before = append(slices.Clone(prev.before), heldPrint{prev.print, prev.held})
		}
		out.before = out.before[max(0, len(out.before)-keepPrints):]
	}
	out.since, out.dropped = make(map[string][]Ref, len(out.before)), map[string]bool{}
	for _, h := range out.before {
		changed := []Ref{}
		for _, c := range out.order {
			if h.held[c.ref] != out.held[c.ref] {
				changed = append(changed, c.def.Ref())
			}
		}
		out.since[h.print] = changed
		for ref := range h.held {
			if out.byRef[ref] == nil {
				out.dropped[h.print] = true
			}
		}
	}
	for _, c := range out.order {
		deps := c.prog.Deps
		for _, n := range deps.Events {
			out.events[n] = append(out.events[n], c.rank)
		}
		for _, t := range deps.IDTypes {
			out.idTypes[t] = append(out.idTypes[t], c.rank)
		}
		for _, p := range deps.Traits {
			out.traits = append(out.traits, traitDep{p, c.rank})
		}
		for _, r := range c.prog.Refs {
			if dep := out.byRef[RefString(r)]; dep != nil {
				dep.dependents = append(dep.dependents, c.ref)
				dep.readBy = append(dep.readBy, c.rank)
				c.reads = append(c.reads, dep)
			}
		}
	}
	return out
}

// Change is what changed in a profile's data.
type Change struct {
	Events []string // names of events stored (late or not)
	Traits []string // trait paths set, as graph flattens them
	// Refs are definitions to evaluate whatever changed (due timers).
	Refs []Ref
	// All evaluates every definition.
	All bool
}

// affected returns the definitions to evaluate for a change, with the
// definitions that read them, transitively, in evaluation order.
func (d *definitions) affected(ch Change, idTypes []string) []*compiled {
	if ch.All {
		return d.order
	}
	set := make([]bool, len(d.order)) // by rank
	add := func(ranks ...int) {
		for _, r := range ranks {
			set[r] = true
		}
	}
	for _, n := range ch.Events {
		add(d.events[n]...)
	}
	for _, t := range idTypes {
		add(d.idTypes[t]...)
	}
	for _, p := range ch.Traits {
		for _, td := range d.traits {
			if traitOverlap(td.path, p) {
				add(td.rank)
			}
		}
	}
	for _, r := range ch.Refs {
		if c := d.byRef[RefString(r)]; c != nil {
			add(c.rank)
		}
	}
	var out []*compiled
	for _, c := range d.order { // in order, so that dependents come after
		if set[c.rank] {
			out = append(out, c)
			add(c.readBy...)
		}
	}
	return out
}

// traitOverlap reports whether a definition reading path a sees a change
// to path b: the same path, or one inside the other.
func traitOverlap(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// AbsorbedPrint fingerprints a profile's absorbed profiles.
func AbsorbedPrint(p *graph.Profile) string {
	if len(p.Absorbed) == 0 {
		return ""
	}
	h := sha256.New()
	for _, id := range slices.Sorted(slices.Values(p.Absorbed)) {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Update evaluates again the definitions that depend on the change of the
// profile (live or absorbed: an absorbed profile's survivor is evaluated),
// and saves the results with the change records they imply. It returns
// the records written.
func (e *Engine) Update(ctx context.Context, profile string, ch Change) ([]*ChangeRecord, error) {
	return e.update(ctx, profile, ch, ReasonData)
}

func (e *Engine) update(ctx context.Context, profile string, ch Change, reason string) ([]*ChangeRecord, error) {
	for range e.opt.Retries {
		cs, err := e.evaluate(ctx, profile, ch, reason)
		if !errors.Is(err, ErrStale) {
			return cs, err
		}
	}
	return nil, fmt.Errorf("segments: update %s: still stale after %d evaluations: %w", profile, e.opt.Retries, ErrStale)
}

func (e *Engine) evaluate(ctx context.Context, id string, ch Change, reason string) ([]*ChangeRecord, error) {
	live, saves, err := e.plan(ctx, id, ch, reason)
	if err != nil || len(saves) == 0 {
		return nil, err
	}
	cs, err := e.store.SaveStates(ctx, saves)
	if err != nil {
		return nil, fmt.Errorf("segments: update %s: %w", live, err)
	}
	return cs, nil
}

// plan evaluates a profile's change and returns the live profile's ID and
// the saves to write: none when nothing changed.
func (e *Engine) plan(ctx context.Context, id string, ch Change, reason string) (string, []Save, error) {
	e.mu.RLock()
	defs := e.defs
	e.mu.RUnlock()
	now := e.opt.Now().UTC()
	p, err := e.graph.Profile(ctx, id)
	if err != nil {
		return "", nil, fmt.Errorf("segments: update %s: %w", id, err)
	}
	if p.MergedInto != "" {
		if p, err = e.graph.Profile(ctx, p.MergedInto); err != nil {
			return "", nil, fmt.Errorf("segments: update %s: %w", id, err)
		}
	}
	states, err := e.store.States(ctx, []string{p.ID})
	if err != nil {
		return "", nil, fmt.Errorf("segments: update %s: %w", p.ID, err)
	}
	j := &planJob{p: p, st: states[0], ch: ch, reason: reason}
	var absorbed []*ProfileState
	if j.merged() {
		if absorbed, err = e.store.States(ctx, p.Absorbed); err != nil {
			return "", nil, fmt.Errorf("segments: update %s: %w", p.ID, err)
		}
	}
	if err := e.decide(ctx, j, defs, absorbed, now); err != nil {
		return "", nil, err
	}
	if j.needsEvents() {
		if j.events, err = ProfileEvents(ctx, e.graph, p); err != nil {
			return "", nil, err
		}
	}
	if err := j.eval(); err != nil {
		return "", nil, err
	}
	return p.ID, j.result(), nil
}

// planJob is one profile's evaluation, in the steps plan takes one
// profile at a time and planPage a page at a time: read the profile and
// its state, decide what to evaluate (decide), read the events that needs,
// evaluate (eval: CPU only, so a page's jobs run in parallel), and give
// the saves (result).
type planJob struct {
	p      *graph.Profile // the live profile
	st     *ProfileState  // its stored state
	ch     Change
	reason string

	// Set by decide.
	saves   []Save // the absorbed profiles' exits
	todo    []*compiled
	next    *ProfileState
	reasons map[string]string
	names   map[string]bool // the events todo reads, by name
	events  []*graph.Event  // read when needsEvents
	now     time.Time       // the evaluation time

	// blank is the page's blank results (planPage; nil in plan, where
	// evaluating them would cost more than it saves).
	blank *blank
}

// merged reports whether the profile absorbed (or gave back) profiles
// since its state was saved: decide then needs the absorbed profiles'
// states.
func (j *planJob) merged() bool { return AbsorbedPrint(j.p) != j.st.Identity.Absorbed }

// needsEvents reports whether eval reads the profile's events.
func (j *planJob) needsEvents() bool { return len(j.todo) > 0 && len(j.names) > 0 }

// decide works out what to evaluate, given the states of the profiles
// absorbed when merged. It reads the stored definitions again only when
// the state was saved with others than defs.
func (e *Engine) decide(ctx context.Context, j *planJob, defs *definitions, absorbed []*ProfileState, now time.Time) error {
	p, st := j.p, j.st
	identity := Identity{Absorbed: AbsorbedPrint(p), Counts: p.Counts}
	if identity.Absorbed != st.Identity.Absorbed {
		// Merged (or split) since the last evaluation: the absorbed
		// profiles leave their segments, and everything of the survivor
		// is evaluated again over its new events and traits.
		for _, a := range absorbed {
			if len(a.Entries) > 0 {
				j.saves = append(j.saves, Save{State: &ProfileState{Profile: a.Profile, Rev: a.Rev}, Reason: ReasonMerged, At: now, Read: a})
			}
		}
		j.ch.All, j.reason = true, ReasonMerged
	}
	if st.Rev > 0 && st.Definitions != defs.print {
		// Saved with other definitions: maybe by a process that has
		// newer ones. Never drop entries of a definition this process
		// has not loaded yet.
		var err error
		if defs, err = e.refresh(ctx); err != nil {
			return err
		}
	}
	todo, next, reasons := defs.start(p.ID, st, identity, j.ch)
	// Only the events the definitions read are decoded: an order that
	// re-evaluates the order definitions leaves the pages alone.
	j.names = map[string]bool{}
	for _, c := range todo {
		for _, n := range c.prog.Deps.Events {
			j.names[n] = true
		}
	}
	j.todo, j.next, j.reasons, j.now = todo, next, reasons, now
	return nil
}

// start is where an evaluation of a profile starts, given its stored
// state and its identity now: the definitions the change affects (with
// those created or edited since, when the state was saved with
// definitions loaded before; all of them when it was saved with others
// this process does not know), the next state
// with the entries of the stored one carried over (those of definitions
// no longer loaded dropped), and the reasons of the entries that change
// because of the definitions rather than the change.
func (d *definitions) start(id string, st *ProfileState, identity Identity, ch Change) ([]*compiled, *ProfileState, map[string]string) {
	todo, reasons := d.plan(st, identity, ch)
	return todo, d.carry(id, st, identity, len(todo), reasons), reasons
}

// plan returns the definitions to evaluate for a change of a profile whose
// state is st and identity now identity, and why those the change did not
// affect are evaluated.
func (d *definitions) plan(st *ProfileState, identity Identity, ch Change) ([]*compiled, map[string]string) {
	var idTypes []string
	for t, n := range identity.Counts {
		if n != st.Identity.Counts[t] {
			idTypes = append(idTypes, t)
		}
	}
	for t, n := range st.Identity.Counts {
		if _, ok := identity.Counts[t]; !ok && n != 0 {
			idTypes = append(idTypes, t)
		}
	}
	todo := d.affected(ch, idTypes)
	reasons := map[string]string{}
	if changed, ok := d.changedSince(st); ok {
		// Saved with definitions loaded before these: only those created
		// or edited since (and what reads them) are evaluated again; the
		// other entries are as current as the state.
		ch.Refs = append(slices.Clone(ch.Refs), changed...)
		all := d.affected(ch, idTypes)
		byChange := make([]bool, len(d.order)) // by rank: not quadratic when all 150 are affected
		for _, c := range todo {
			byChange[c.rank] = true
		}
		for _, c := range all {
			if !byChange[c.rank] {
				reasons[c.ref] = ReasonDefinition
			}
		}
		todo = all
	} else if st.Definitions != d.print {
		// Definitions were created, edited or deleted since: evaluate
		// everything; what the change itself did not affect changes
		// because of the definitions (unless the profile is new to the
		// engine: then it is its data).
		for _, c := range d.order {
			if st.Rev == 0 {
				break
			}
			reasons[c.ref] = ReasonDefinition
		}
		for _, c := range todo {
			delete(reasons, c.ref)
		}
		todo = d.order
	}
	return todo, reasons
}

// carry starts the next state from st: its entries of loaded definitions
// (those of deleted or disabled ones are dropped, with their reason),
// with room for todo more.
func (d *definitions) carry(id string, st *ProfileState, identity Identity, todo int, reasons map[string]string) *ProfileState {
	next := &ProfileState{Profile: id, Rev: st.Rev, Entries: make(map[string]Entry, max(len(st.Entries), todo)), Identity: identity, Definitions: d.print}
	for rs, en := range st.Entries {
		if d.byRef[rs] == nil {
			reasons[rs] = ReasonDefinition // deleted or disabled: dropped
			continue
		}
		next.Entries[rs] = en
	}
	return next
}

// carriesOver reports whether st's entries all belong to loaded
// definitions and its identity counts are identity's: then a state that
// evaluates todo to st's entries again differs from st by its print
// alone, which a backfill checks before copying the entries.
func (d *definitions) carriesOver(st *ProfileState, identity Identity) bool {
	if st.Rev == 0 || !maps.Equal(st.Identity.Counts, identity.Counts) {
		return false
	}
	if st.Definitions == d.print {
		return true
	}
	_, known := d.since[st.Definitions]
	return known && !d.dropped[st.Definitions]
}

// readResults are the memberships and computed values of entries that
// todo reads from definitions it does not evaluate itself (entryResults
// of only those: a backfill of one definition beside 150 read all 150).
func readResults(entries map[string]Entry, todo []*compiled) (map[string]bool, map[string]any) {
	segs, computed := map[string]bool{}, map[string]any{}
	for _, c := range todo {
		for _, r := range c.reads {
			en, ok := entries[r.ref]
			switch {
			case !ok:
			case r.def.Kind == lang.KindSegment:
				segs[r.def.Key] = en.Member
			case en.Value != nil:
				computed[r.def.Key] = en.Value.Interface()
			}
		}
	}
	return segs, computed
}

// sameEntries reports whether a and b hold the same entries of todo.
func sameEntries(a, b map[string]Entry, todo []*compiled) bool {
	for _, c := range todo {
		x, okx := a[c.ref]
		y, oky := b[c.ref]
		if okx != oky || okx && !sameEntry(x, y) {
			return false
		}
	}
	return true
}

func sameEntry(x, y Entry) bool {
	return x.Version == y.Version && x.Member == y.Member && x.Since.Equal(y.Since) && x.Value.Equal(y.Value) && x.Deadline.Equal(y.Deadline)
}

// changedSince returns the definitions created or edited since st was
// saved, when st was saved with definitions this process loaded before
// (ok false otherwise: unknown, the same, or no state).
func (d *definitions) changedSince(st *ProfileState) (changed []Ref, ok bool) {
	if st.Rev == 0 || st.Definitions == d.print {
		return nil, false
	}
	changed, ok = d.since[st.Definitions]
	return changed, ok
}

// onlyPrintMoved reports whether next differs from st only by the
// definitions' fingerprint, st's being one these definitions know
// (changedSince), with no entry of a definition created or edited since in
// either: a save would write the fingerprint alone, and the profile's next
// evaluation works out the same from the old one. So a backfill writes
// only the states whose entries change, not every profile's. An entry of a
// changed definition is written even when equal: the member index may
// have gone with an earlier definition of the same key (MembershipWrites).
func (d *definitions) onlyPrintMoved(st, next *ProfileState) bool {
	changed, ok := d.changedSince(st)
	if !ok {
		return false
	}
	for _, r := range changed {
		rs := RefString(r)
		if _, ok := st.Entries[rs]; ok {
			return false
		}
		if _, ok := next.Entries[rs]; ok {
			return false
		}
	}
	was := *next
	was.Definitions = st.Definitions
	return sameState(st, &was)
}

// printOnlyMoved is onlyPrintMoved of a next state holding st's entries
// (and identity): only the entries of changed definitions are looked at.
func (d *definitions) printOnlyMoved(st *ProfileState) bool {
	changed, ok := d.changedSince(st)
	if !ok {
		return false
	}
	for _, r := range changed {
		if _, ok := st.Entries[RefString(r)]; ok {
			return false
		}
	}
	return true
}

// result returns the saves of an evaluated job: none when nothing changed.
func (j *planJob) result() []Save {
	if len(j.saves) == 0 && sameState(j.st, j.next) {
		return nil // nothing changed: no write
	}
	return append(j.saves, Save{State: j.next, Reason: j.reason, Reasons: j.reasons, At: j.now, Read: j.st})
}

// sameState reports whether saving b over a would change nothing.
func sameState(a, b *ProfileState) bool {
	if a.Definitions != b.Definitions || a.Identity.Absorbed != b.Identity.Absorbed ||
		!maps.Equal(a.Identity.Counts, b.Identity.Counts) || len(a.Entries) != len(b.Entries) {
		return false
	}
	for rs, x := range a.Entries {
		y, ok := b.Entries[rs]
		if !ok || !sameEntry(x, y) {
			return false
		}
	}
	return true
}

// eval evaluates the definitions to do (in order) over the profile's
// data, writing their entries into next, whose other entries are read for
// in_segment and computed. It reads no store: a page's jobs run it in
// parallel.
func (j *planJob) eval() error {
	if len(j.todo) == 0 {
		return nil
	}
	snap, err := snapshotFrom(j.p, j.events, j.names, j.next.Entries, len(j.todo))
	if err != nil {
		return err
	}
	// One session for all: each name's events are ordered once, and a
	// chain several definitions hold is evaluated once. The view reads
	// snap's maps as evalSession updates them.
	evalSession(snap, j.todo, j.next, j.now, j.blank)
	return nil
}

// evalSession evaluates the definitions (in order) in a session over
// snap, writing their entries into next and their results into snap's
// memberships and computed values, which the definitions after them read.
// A definition that reads only what a blank profile holds takes its result
// from b (nil: none), if b was evaluated for the same definitions at now.
func evalSession(snap *lang.Snapshot, todo []*compiled, next *ProfileState, now time.Time, b *blank) {
	v := snap.View()
	sess := lang.NewSession(v, now)
	if b != nil && !b.now.Equal(now) {
		b = nil
	}
	for _, c := range todo {
		r, ok := lang.Result{}, false
		if b != nil && c.rank < len(b.defs.order) && b.defs.order[c.rank] == c {
			r, ok = b.result(c, v)
		}
		if !ok {
			r = sess.Eval(c.prog)
		}
		record(snap, next, c, r, now)
	}
}

// record writes c's result r into next's entries and snap's memberships
// and computed values.
func record(snap *lang.Snapshot, next *ProfileState, c *compiled, r lang.Result, now time.Time) {
	old := next.Entries[c.ref]
	en := Entry{Version: c.def.Version, Deadline: r.Deadline}
	if c.def.Kind == lang.KindSegment {
		en.Member = r.Value.Type == lang.TypeBool && r.Value.Bool
		snap.Segments[c.def.Key] = en.Member
		if en.Member {
			en.Since = now
			if old.Member {
				en.Since = old.Since
			}
		}
	} else {
		en.Value = ValueOf(r.Value)
		delete(snap.Computed, c.def.Key)
		if en.Value != nil {
			snap.Computed[c.def.Key] = en.Value.Interface()
		}
	}
	if en.Empty() {
		delete(next.Entries, c.ref)
	} else {
		next.Entries[c.ref] = en
	}
}

// snapshot is what definitions read of a live profile: its traits and
// identifier counts, its events when needEvents, and the memberships and
// computed values of entries (for in_segment and computed).
func (e *Engine) snapshot(ctx context.Context, p *graph.Profile, needEvents bool, entries map[string]Entry) (*lang.Snapshot, error) {
	var events []*graph.Event
	if needEvents {
		var err error
		if events, err = ProfileEvents(ctx, e.graph, p); err != nil {
			return nil, err
		}
	}
	return snapshotFrom(p, events, nil, entries, 0)
}

// snapshotFrom is snapshot over events already read, keeping those of the
// given names only (all of them when names is nil), with room for the
// results of evaluating todo definitions.
func snapshotFrom(p *graph.Profile, events []*graph.Event, names map[string]bool, entries map[string]Entry, todo int) (*lang.Snapshot, error) {
	if names != nil {
		events = slices.DeleteFunc(events, func(ev *graph.Event) bool { return !names[ev.Name] })
	}
	snap, err := lang.SnapshotOf(p, events)
	if err != nil {
		return nil, fmt.Errorf("segments: evaluate %s: %w", p.ID, err)
	}
	snap.Segments, snap.Computed = entryResults(entries, todo)
	return snap, nil
}

// entryResults are the memberships and computed values of entries, as
// in_segment and computed read them, in maps sized for the results of todo
// more definitions (a new profile's evaluation fills them from empty:
// growing them was much of its cost beside 150 definitions).
func entryResults(entries map[string]Entry, todo int) (map[string]bool, map[string]any) {
	n := max(len(entries), todo)
	segs, computed := make(map[string]bool, n), make(map[string]any, n)
	for rs, en := range entries {
		ref, err := ParseRef(rs)
		if err != nil {
			continue
		}
		if ref.Kind == lang.KindSegment {
			segs[ref.Key] = en.Member
		} else if en.Value != nil {
			computed[ref.Key] = en.Value.Interface()
		}
	}
	return segs, computed
}

// eventPage is how many events a timeline read returns at once.
const eventPage = 1000

// ProfileEvents reads every stored event of a live profile (those of the
// profiles it absorbed included), each once.
func ProfileEvents(ctx context.Context, r graph.Reader, p *graph.Profile) ([]*graph.Event, error) {
	evs, err := profilesEvents(ctx, r, []*graph.Profile{p})
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

// profilesEvents is ProfileEvents for several profiles, with one read of
// their identifiers and one timeline read per page of events (not one per
// profile).
func profilesEvents(ctx context.Context, r graph.Reader, ps []*graph.Profile) ([][]*graph.Event, error) {
	out := make([][]*graph.Event, len(ps))
	if len(ps) == 0 {
		return out, nil
	}
	ids, err := r.IdentifiersOf(ctx, ps)
	if err != nil {
		return nil, fmt.Errorf("segments: events of %s: %w", ps[0].ID, err)
	}
	qs := make([]graph.TimelineQuery, len(ps))
	open := make([]int, len(ps)) // the profiles whose events are not all read
	for i, ns := range ids {
		keys := make([]graph.Key, len(ns))
		for k, n := range ns {
			keys[k] = n.Key
		}
		qs[i], open[i] = graph.TimelineQuery{Keys: keys, Limit: eventPage}, i
	}
	for len(open) > 0 {
		ask := make([]graph.TimelineQuery, len(open))
		for k, i := range open {
			ask[k] = qs[i]
		}
		pages, err := r.Timelines(ctx, ask)
		if err != nil {
			return nil, fmt.Errorf("segments: events of %s: %w", ps[open[0]].ID, err)
		}
		var more []int
		for k, i := range open {
			out[i] = append(out[i], pages[k]...)
			if len(pages[k]) == eventPage {
				last := pages[k][len(pages[k])-1]
				qs[i].After = &graph.EventCursor{Timestamp: last.Timestamp, ID: last.ID}
				more = append(more, i)
			}
		}
		open = more
	}
	return out, nil
}

// Drain evaluates the (profile, definition) pairs whose deadline has
// passed, in deadline order, with their dependents, and returns the
// change records written.
func (e *Engine) Drain(ctx context.Context) ([]*ChangeRecord, error) {
	var out []*ChangeRecord
	var last *Timer
	for {
		now := e.opt.Now()
		ts, err := e.store.DueTimers(ctx, now, e.opt.TimerBatch)
		if err != nil {
			return out, fmt.Errorf("segments: drain: %w", err)
		}
		if len(ts) == 0 {
			return out, nil
		}
		// A batch that starts where the last one did made no progress (a
		// deadline that does not move): stop rather than spin.
		if first := ts[0]; last != nil && last.At.Equal(first.At) && last.Profile == first.Profile && last.Ref == first.Ref {
			return out, fmt.Errorf("segments: drain: timer of %s for %s did not move past %s", first.Profile, RefString(first.Ref), first.At)
		}
		last = &ts[0]
		var profiles []string
		refs := map[string][]Ref{}
		for _, t := range ts {
			if _, ok := refs[t.Profile]; !ok {
				profiles = append(profiles, t.Profile)
			}
			refs[t.Profile] = append(refs[t.Profile], t.Ref)
		}
		// A profile that fails does not hold up the others: its timer
		// stays due and is tried again.
		var failed error
		for _, p := range profiles {
			cs, err := e.update(ctx, p, Change{Refs: refs[p]}, ReasonTime)
			if err != nil {
				failed = cmp.Or(failed, fmt.Errorf("segments: drain: %w", err))
				continue
			}
			out = append(out, cs...)
		}
		if failed != nil {
			return out, failed
		}
	}
}

// CatchUp evaluates the pending data changes (written with the events
// they come from, so none is lost by a crash between the two) and returns
// how many it took; the caller repeats while there are some.
//
// Pages are taken round robin in profile ID order, each after the last
// one's end, so a profile whose change is pending waits at most one pass
// over the others, however fast new changes arrive for profiles before
// it. A page's results are saved in one transaction (one synced commit,
// not one per profile); a page that cannot be (a profile saved meanwhile
// by another process) is saved profile by profile.
//
// One call takes pages until one is not full (the end of the pass, or
// all there was), each read, evaluated, saved and removed before the next
// is read. Pipelining them (the next page read and evaluated while the one
// before is saved) cut ingest beside 150 definitions from about 0.68 to
// 0.49 of its rate without them (BenchmarkIngestSegments, 3 December
// 2026, docs/benchmarks.md): the engine's evaluations then take the CPU
// ingest needs on 2 cores. Everything taken is saved and removed when
// CatchUp returns.
func (e *Engine) CatchUp(ctx context.Context) (int, error) {
	e.pendingMu.Lock()
	defer e.pendingMu.Unlock()
	ps, err := e.store.PendingChanges(ctx, e.pendingAfter, e.opt.TimerBatch)
	if err == nil && len(ps) == 0 && e.pendingAfter != "" {
		e.pendingAfter = "" // the end: the next pass starts again
		ps, err = e.store.PendingChanges(ctx, "", e.opt.TimerBatch)
	}
	taken := 0
	var failed error
	for {
		if err != nil {
			return taken, cmp.Or(failed, fmt.Errorf("segments: catch up: %w", err))
		}
		if len(ps) == 0 {
			return taken, failed
		}
		e.pendingAfter = ps[len(ps)-1].Profile
		taken += len(ps)
		ids, changes := make([]string, len(ps)), make([]Change, len(ps))
		for i, p := range ps {
			ids[i], changes[i] = p.Profile, Change{Events: p.Events, Traits: p.Traits, All: p.All}
		}
		plans, errs := e.planPage(ctx, ids, changes, ReasonData)
		failed = cmp.Or(failed, e.savePage(ctx, ps, plans, errs))
		if len(ps) < e.opt.TimerBatch {
			return taken, failed
		}
		ps, err = e.store.PendingChanges(ctx, e.pendingAfter, e.opt.TimerBatch)
	}
}

// savePage saves a planned page of pending changes (saveTogether) and
// removes those it saved, all in one write: a crash before it evaluates
// them again, which changes nothing. A profile that fails does not hold
// up the others: its change stays pending and is tried again.
func (e *Engine) savePage(ctx context.Context, page []Pending, plans [][]Save, errs []error) error {
	work, failed := e.saveTogether(ctx, page, plans, errs)
	var done []Pending
	for _, w := range work {
		if w.done {
			done = append(done, w.Pending)
		}
	}
	if err := e.store.DonePending(ctx, done...); err != nil {
		failed = cmp.Or(failed, fmt.Errorf("segments: catch up: %w", err))
	}
	return failed
}

// pendingWork is a pending change and whether it was evaluated and saved.
type pendingWork struct {
	Pending
	done bool
}

// saveTogether saves a page of pending changes, evaluated by planPage
// (plans and errs), in one transaction, in page order; the changes whose
// saves would overlap another's (two profiles merged into one), and every
// one when the transaction is refused, are updated one by one instead. It
// marks what was done.
func (e *Engine) saveTogether(ctx context.Context, page []Pending, plans [][]Save, errs []error) ([]*pendingWork, error) {
	var failed error
	work := make([]*pendingWork, len(page))
	var saves []Save
	var alone []*pendingWork
	saved := map[string]bool{}
	for i, p := range page {
		w := &pendingWork{Pending: p}
		work[i] = w
		ss, err := plans[i], errs[i]
		if err != nil {
			failed = cmp.Or(failed, fmt.Errorf("segments: catch up: %w", err))
			continue
		}
		if slices.ContainsFunc(ss, func(sv Save) bool { return saved[sv.State.Profile] }) {
			alone = append(alone, w)
			continue
		}
		for _, sv := range ss {
			saved[sv.State.Profile] = true
		}
		saves = append(saves, ss...)
		w.done = true
	}
	if len(saves) > 0 {
		if _, err := e.store.SaveStates(ctx, saves); err != nil {
			// Refused whole (stale or unavailable): nothing was written.
			for _, w := range work {
				if w.done {
					w.done = false
					alone = append(alone, w)
				}
			}
		}
	}
	for _, w := range alone {
		if _, err := e.Update(ctx, w.Profile, Change{Events: w.Events, Traits: w.Traits, All: w.All}); err != nil {
			failed = cmp.Or(failed, fmt.Errorf("segments: catch up: %w", err))
			continue
		}
		w.done = true
	}
	return work, failed
}

// Run keeps the segments up to date until ctx ends: it evaluates pending
// data changes, drains the timer index, samples segment sizes once per
// SampleEvery, then sleeps until the next
// deadline, a signal on wake (sent after each ingest), or poll at the
// latest (to see what other processes wrote). Errors are passed to report
// and retried at the next wake.
func (e *Engine) Run(ctx context.Context, wake <-chan struct{}, poll time.Duration, report func(error)) {
	var sampled time.Time // the sampling period last sampled
	for {
		// Definitions another process changed are seen within a poll.
		if _, err := e.refresh(ctx); err != nil && ctx.Err() == nil {
			report(err)
		}
		for {
			n, err := e.CatchUp(ctx)
			if err != nil && ctx.Err() == nil {
				report(err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		if _, err := e.Drain(ctx); err != nil && ctx.Err() == nil {
			report(err)
		}
		if period := e.samplePeriod(); e.opt.SampleEvery > 0 && !period.Equal(sampled) {
			if err := e.SampleSizes(ctx); err != nil && ctx.Err() == nil {
				report(err)
			} else {
				sampled = period
			}
		}
		wait := poll
		if ts, err := e.store.DueTimers(ctx, e.opt.Now().Add(poll), 1); err == nil && len(ts) > 0 {
			wait = max(ts[0].At.Sub(e.opt.Now()), 0)
		}
		if e.opt.SampleEvery > 0 {
			wait = min(wait, e.nextSample())
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Define checks a definition against the loaded ones and saves it as a new
// version (expectedVersion as Store.PutDefinition: 0 creates), with
// status BACKFILLING, then reloads the engine. An edit of a DISABLED
// definition stays DISABLED (and keeps its creation time, as every edit
// does). Every error of the language is a *lang.Error with a code and a
// position; nothing is saved unless the definition compiles. The caller
// runs Backfill next (a sweep, for a disabled one).
func (e *Engine) Define(ctx context.Context, kind lang.Kind, key, src string, expectedVersion int) (*Definition, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if _, err := e.Check(kind, key, src); err != nil {
		return nil, err
	}
	now := e.opt.Now().UTC()
	next := &Definition{Kind: kind, Key: key, Source: src, Status: Status{State: StateBackfilling}, CreatedAt: now, UpdatedAt: now,
		Author: AuthorOf(ctx), Change: ChangeCreated}
	if expectedVersion > 0 {
		next.Change = ChangeEdited
		cur, err := e.store.Definition(ctx, next.Ref())
		if err != nil {
			return nil, err
		}
		next.CreatedAt = cur.CreatedAt
		if cur.Status.State == StateDisabled {
			next.Status = cur.Status
		}
	}
	d, err := e.store.PutDefinition(ctx, next, expectedVersion)
	if err != nil {
		return nil, err
	}
	return d, e.Load(ctx)
}

// Delete deletes version expectedVersion of a definition and reloads the
// engine; its entries are dropped (members exit, reason definition) as
// profiles are next evaluated. A definition that others read through
// in_segment or computed is refused (conflict), naming them.
func (e *Engine) Delete(ctx context.Context, r Ref, expectedVersion int) error {
	if err := e.inUse(r, "delete"); err != nil {
		return err
	}
	if err := e.store.DeleteDefinition(ctx, r, expectedVersion); err != nil {
		return err
	}
	return e.Load(ctx)
}

// Memberships returns the segments a profile is a member of, by key.
// Entries of definitions no longer loaded (deleted or disabled, not yet
// swept) are left out.
func (e *Engine) Memberships(ctx context.Context, profile string) ([]string, error) {
	entries, err := e.liveEntries(ctx, profile)
	if err != nil {
		return nil, fmt.Errorf("segments: memberships of %s: %w", profile, err)
	}
	return slices.Sorted(maps.Keys(SegmentMemberships(entries))), nil
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }
