package graph

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stitcher ingests observations: it upserts identifiers and edges and
// keeps profiles as the connected components of accepted edges.
type Stitcher struct {
	Store  Store
	Config Config
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Broker, when set, hears of every profile each committed Ingest changed.
	Broker *Broker
	// RecordDataChanges writes what each transaction changed in profile
	// data with its changes (Changes.DataChanges), for segments.
	RecordDataChanges bool
	// Matcher, when set, compares profiles whose traits change with the
	// profiles that share a blocking key with them.
	Matcher     Matcher
	MatchConfig MatchConfig
	// swapped, once SetMatcher is called, replaces Matcher: a server that
	// trains a model swaps it while transactions run, and each
	// transaction keeps the matcher it started with.
	swapped atomic.Pointer[matcherBox]
	// Suppressor, when set, names identifiers of erased people: Ingest
	// drops every observation that carries one, before stitching.
	Suppressor Suppressor
	// Retention, when set, says which events are past their time to live:
	// Ingest stitches such an observation's identifiers and traits but does
	// not keep its event, which the retention sweeper would delete anyway.
	Retention EventRetention
	// recordTypes are the imported record-ID types (AddRecordIDTypes).
	recordMu    sync.Mutex
	recordTypes atomic.Pointer[map[string]bool]
}

type matcherBox struct{ m Matcher }

// SetMatcher replaces the matcher for transactions that start from now
// on (nil turns matching off).
func (s *Stitcher) SetMatcher(m Matcher) { s.swapped.Store(&matcherBox{m}) }

// CurrentMatcher is the matcher a transaction starting now uses.
func (s *Stitcher) CurrentMatcher() Matcher {
	if b := s.swapped.Load(); b != nil {
		return b.m
	}
	return s.Matcher
}

// AddRecordIDTypes marks identifier types as imported record IDs: their
// per-type limit becomes Config.RecordIDLimit (unless --limits names them
// or they are Segment's own). It reports whether a type was new.
func (s *Stitcher) AddRecordIDTypes(types ...string) bool {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	cur := s.recordTypes.Load()
	var next map[string]bool
	for _, t := range types {
		if cur != nil && (*cur)[t] || next != nil && next[t] {
			continue
		}
		if next == nil {
			next = map[string]bool{}
			if cur != nil {
				maps.Copy(next, *cur)
			}
		}
		next[t] = true
	}
	if next == nil {
		return false
	}
	s.recordTypes.Store(&next)
	return true
}

// RecordIDTypes lists the imported record-ID types, sorted.
func (s *Stitcher) RecordIDTypes() []string {
	if cur := s.recordTypes.Load(); cur != nil {
		return slices.Sorted(maps.Keys(*cur))
	}
	return nil
}

// config is the stitching config with the record-ID limits applied.
func (s *Stitcher) config() Config {
	if cur := s.recordTypes.Load(); cur != nil {
		return s.Config.withRecordTypes(*cur)
	}
	return s.Config
}

// NewStitcher returns a stitcher over the store with the given rules.
func NewStitcher(s Store, cfg Config) *Stitcher {
	return &Stitcher{Store: s, Config: cfg, Now: func() time.Time { return time.Now().UTC() }}
}

// Result counts what one Ingest call did.
type Result struct {
	Stored     int // observations stored
	Duplicates int // observations whose message ID was already stored
	Merges     int
	Hubs       int
	// Matches counts probabilistic edges scored at or above review.
	Matches int
	// OversizedBlocks counts blocking keys skipped as too common.
	OversizedBlocks int
	// NameHeld counts identifiers the name guard kept out of a profile.
	NameHeld int
	// Marked lists the identifiers marked as hubs (or shared).
	Marked []Key
	// Repaired counts profiles repaired after a shared identifier was found;
	// RepairErrors says why a repair failed (RepairShared retries it).
	Repaired     int
	RepairErrors []error
	// Suppressed counts observations dropped because they carry an
	// identifier of an erased person (Stitcher.Suppressor).
	Suppressed int
	// Expired counts observations stitched without keeping their event,
	// which was already past its time to live (Stitcher.Retention); they
	// are not counted in Stored.
	Expired int
}

// EventRetention says whether an event is past its time to live at an
// instant (retention.Policy).
type EventRetention interface {
	Expired(ev *Event, now time.Time) bool
}

// Suppressor says whether an identifier belongs to an erased person whose
// return is suppressed. It is consulted for every identifier of every
// observation, so it must answer in constant time.
type Suppressor interface {
	Suppressed(Key) bool
}

// CurrentSuppressor is a Suppressor that other processes change too:
// Ingest calls Current first, which brings it up to date if it is too old
// to answer (erase.Set with Follow); an error fails the ingest.
type CurrentSuppressor interface {
	Suppressor
	Current(context.Context) error
}

// suppressed reports whether the observation carries a suppressed
// identifier. An alias's previousId is checked under both types it may
// take.
func suppressed(sp Suppressor, o *Observation) bool {
	for _, k := range o.Identifiers {
		if sp.Suppressed(k) {
			return true
		}
	}
	if o.PreviousID != "" {
		return sp.Suppressed(Key{Type: TypeUserID, Value: o.PreviousID}) ||
			sp.Suppressed(Key{Type: TypeAnonymousID, Value: o.PreviousID})
	}
	return false
}

// dropSuppressed returns the observations that carry no suppressed
// identifier, and how many were dropped.
func (s *Stitcher) dropSuppressed(obs []*Observation) ([]*Observation, int) {
	if s.Suppressor == nil {
		return obs, 0
	}
	var kept []*Observation
	for i, o := range obs {
		if suppressed(s.Suppressor, o) {
			if kept == nil {
				kept = append(make([]*Observation, 0, len(obs)), obs[:i]...)
			}
			continue
		}
		if kept != nil {
			kept = append(kept, o)
		}
	}
	if kept == nil {
		return obs, 0
	}
	return kept, len(obs) - len(kept)
}

// Ingest stores the observations in order, atomically: either all are
// stored (or found to be duplicates) or none is.
func (s *Stitcher) Ingest(ctx context.Context, obs []*Observation) (Result, error) {
	if c, ok := s.Suppressor.(CurrentSuppressor); ok {
		if err := c.Current(ctx); err != nil {
			return Result{}, fmt.Errorf("ingest: %w", err)
		}
	}
	obs, dropped := s.dropSuppressed(obs)
	if len(obs) == 0 && dropped > 0 {
		return Result{Suppressed: dropped}, nil
	}
	res, err := s.update(ctx, func(ctx context.Context, st *stitch) (Result, error) { return st.run(ctx, obs) })
	if err != nil {
		return Result{}, fmt.Errorf("ingest: %w", err)
	}
	res.Suppressed = dropped
	// The marking is durable now; the repair is a transaction of its own
	// (it reads whole profiles), and RepairShared finishes it after a crash.
	for _, k := range res.Marked {
		repaired, err := s.repair(ctx, k)
		if err != nil {
			// The write is acknowledged all the same: it is durable, and
			// the repair is retried by RepairShared.
			res.RepairErrors = append(res.RepairErrors, fmt.Errorf("repair %s: %w", k, err))
			continue
		}
		if repaired {
			res.Repaired++
		}
	}
	return res, nil
}

// Rematch compares the given profiles again with the profiles that share
// a blocking key with them, with the current model and thresholds (the
// bulk `idgraph match`). Absorbed IDs and profiles without traits are
// skipped.
func (s *Stitcher) Rematch(ctx context.Context, ids []string) (Result, error) {
	if s.CurrentMatcher() == nil {
		return Result{}, Errorf(KindInvalid, "no matching model is loaded (serve --model)")
	}
	res, err := s.update(ctx, func(ctx context.Context, st *stitch) (Result, error) { return st.rematch(ctx, ids) })
	if err != nil {
		return Result{}, fmt.Errorf("rematch: %w", err)
	}
	return res, nil
}

// Planned is one change a dry run would make.
type Planned struct {
	Kind     string    `json:"kind"` // "merge" or "review"
	Profiles [2]string `json:"profiles"`
	Edge     [2]Key    `json:"edge"`
	Score    float64   `json:"score"`
	Reason   string    `json:"reason,omitempty"`
}

// PlanRematch is Rematch without writing: it reports which profiles the
// current model would merge, and which pairs it would send to review, with
// the thresholds given (nil: the configured ones). With fileBlocks it
// writes the blocking index (profiles filed under their keys, as matching
// would), so that a bulk run's pages compare with the pages before them;
// without, it writes nothing.
func (s *Stitcher) PlanRematch(ctx context.Context, ids []string, cfg *MatchConfig, fileBlocks bool) (Result, []Planned, error) {
	if s.CurrentMatcher() == nil {
		return Result{}, nil, Errorf(KindInvalid, "no matching model is loaded (serve --model)")
	}
	var res Result
	var plan []Planned
	err := s.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		st := s.newStitch(tx)
		st.dryRun, st.fileBlocks = true, fileBlocks
		if cfg != nil {
			st.matchCfg = *cfg
		}
		var err error
		res, err = st.rematch(ctx, ids)
		plan = st.plan()
		return err
	})
	if err != nil {
		return Result{}, nil, fmt.Errorf("plan rematch: %w", err)
	}
	return res, plan, nil
}

func (st *stitch) plan() []Planned {
	var out []Planned
	for _, m := range st.changes.Merges {
		e := st.edges[m.Edge]
		p := Planned{Kind: "merge", Profiles: [2]string{m.Survivor, m.Absorbed}, Edge: m.Edge}
		if e != nil {
			p.Score = e.Score
		}
		out = append(out, p)
	}
	for pair := range st.dirtyEdges {
		e := st.edges[pair]
		if e.Status == StatusPending && e.Kind == KindProbabilistic {
			a, b := st.ids[pair[0]], st.ids[pair[1]]
			p := Planned{Kind: "review", Edge: pair, Score: e.Score, Reason: e.Reason}
			if a != nil && b != nil {
				p.Profiles = [2]string{st.root(a).ID, st.root(b).ID}
			}
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(x, y Planned) int { return comparePairs(x.Edge, y.Edge) })
	return out
}

// update runs fn on a fresh stitch in a transaction and publishes the
// profile changes once it has committed.
func (s *Stitcher) update(ctx context.Context, fn func(context.Context, *stitch) (Result, error)) (Result, error) {
	var res Result
	var changes []ProfileChange
	err := s.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		st := s.newStitch(tx)
		var err error
		res, err = fn(ctx, st)
		changes = st.profileChanges()
		return err
	})
	if err != nil {
		return Result{}, err
	}
	if s.Broker != nil {
		s.Broker.Publish(changes)
	}
	return res, nil
}

func (s *Stitcher) newStitch(tx Tx) *stitch {
	return &stitch{cfg: s.config(), matcher: s.CurrentMatcher(), matchCfg: s.MatchConfig, tx: tx, now: s.Now(), ids: map[Key]*Identifier{},
		retention: s.Retention, recordData: s.RecordDataChanges, traitPaths: map[string][]string{},
		profiles: map[string]*Profile{}, edges: map[[2]Key]*Edge{},
		dirtyIDs: map[Key]bool{}, dirtyProfiles: map[string]bool{}, dirtyEdges: map[[2]Key]bool{}, touched: map[string]int{}}
}

func (st *stitch) rematch(ctx context.Context, ids []string) (Result, error) {
	ids = slices.Sorted(slices.Values(ids))
	if err := st.lockProfiles(ctx, ids); err != nil {
		return Result{}, err
	}
	var anchors []Key
	for _, id := range ids {
		if p := st.profiles[id]; p.MergedInto == "" && p.Anchor != (Key{}) {
			anchors = append(anchors, p.Anchor)
		}
	}
	// An anchor may have joined a profile this one absorbed (a split can
	// make such an identifier the anchor): load the anchors' own profiles.
	if err := st.loadIdentifiers(ctx, anchors); err != nil {
		return Result{}, err
	}
	var traits []map[string]string
	for _, id := range ids {
		traits = append(traits, st.live(st.profiles[id]).StringTraits())
	}
	if err := st.prefetch(ctx, traits); err != nil {
		return Result{}, err
	}
	for _, id := range ids {
		p := st.profiles[id]
		if p.MergedInto != "" || len(p.Traits) == 0 || st.ids[p.Anchor] == nil || st.root(st.ids[p.Anchor]) != p {
			continue // absorbed, here or earlier in this call
		}
		o := &Observation{MessageID: "rematch:" + id, Source: "rematch", Time: st.now}
		if err := st.match(ctx, o, p); err != nil {
			return Result{}, err
		}
		st.res.Stored++
	}
	return st.res, st.apply(ctx)
}

// apply writes everything the stitch changed (a dry run only the
// blocking index).
func (st *stitch) apply(ctx context.Context) error {
	if st.dryRun && st.fileBlocks {
		return st.tx.Apply(ctx, &Changes{Blocks: st.changes.Blocks})
	}
	if st.dryRun {
		return nil
	}
	for k := range st.dirtyIDs {
		st.changes.Identifiers = append(st.changes.Identifiers, st.ids[k])
	}
	for id := range st.dirtyProfiles {
		st.changes.Profiles = append(st.changes.Profiles, st.profiles[id])
	}
	for p := range st.dirtyEdges {
		st.changes.Edges = append(st.changes.Edges, st.edges[p])
	}
	if st.recordData {
		st.changes.DataChanges = st.dataChanges()
	}
	return st.tx.Apply(ctx, &st.changes)
}

// profileChanges lists what the transaction did to each profile it wrote.
func (st *stitch) profileChanges() []ProfileChange {
	if st.dryRun {
		return nil // nothing was written
	}
	kinds := map[string]string{}
	for _, m := range st.changes.Merges {
		kinds[m.Survivor] = ChangeMerged
	}
	for _, id := range st.split {
		kinds[id] = ChangeSplit
	}
	var out []ProfileChange
	for _, p := range st.changes.Profiles {
		c := ProfileChange{ProfileID: p.ID, Kind: ChangeUpdated, At: st.now}
		if k, ok := kinds[p.ID]; ok {
			c.Kind = k
		}
		if p.MergedInto != "" {
			c.Kind, c.MergedInto = ChangeAbsorbed, p.MergedInto
		}
		out = append(out, c)
	}
	return out
}

// stitch is the in-memory state of one transaction: everything the batch
// touches is loaded (and locked) up front, then observations are applied
// in order, then the changes are written at once.
type stitch struct {
	cfg       Config
	matcher   Matcher
	matchCfg  MatchConfig
	retention EventRetention
	// filed holds the blocking entries this transaction wrote, by key.
	filed map[string][]string
	// blocks holds the blocking index as stored, by key (prefetch);
	// keyMemo, the blocking keys of each set of traits seen.
	blocks  map[string][]string
	keyMemo map[string][]string
	// scores holds the scores computed so far, by the fingerprint of the
	// traits compared and the candidate profile's ID; touched counts the
	// touches of each profile, which make its scores stale (see score).
	scores  map[string]map[string]memoScore
	touched map[string]int
	// noEdge holds pairs read and found to have no stored edge; unstored,
	// the keys locked and found not stored (none of their pairs has one).
	noEdge   map[[2]Key]bool
	unstored map[Key]bool
	tx       Tx
	now      time.Time
	ids      map[Key]*Identifier
	profiles map[string]*Profile
	edges    map[[2]Key]*Edge

	dirtyIDs      map[Key]bool
	dirtyProfiles map[string]bool
	dirtyEdges    map[[2]Key]bool
	changes       Changes
	res           Result
	// held lists the contact identifiers the name guard keeps out of the
	// current observation's profile.
	held map[Key]bool
	// split lists profiles a steward split (for change notifications).
	split []string
	// dryRun computes the changes without writing them, except, with
	// fileBlocks, the blocking index.
	dryRun, fileBlocks bool
	// recordData writes Changes.DataChanges; traitPaths are the trait
	// paths observations set, by profile.
	recordData bool
	traitPaths map[string][]string
}

func (st *stitch) run(ctx context.Context, obs []*Observation) (Result, error) {
	msgIDs := make([]string, 0, len(obs))
	for _, o := range obs {
		msgIDs = append(msgIDs, o.MessageID)
	}
	slices.Sort(msgIDs) // one lock order for every writer
	seen, err := st.tx.LockMessages(ctx, msgIDs)
	if err != nil {
		return Result{}, err
	}
	var todo []*Observation
	keySet := map[Key]bool{}
	for _, o := range obs {
		if seen[o.MessageID] {
			st.res.Duplicates++
			continue
		}
		seen[o.MessageID] = true
		todo = append(todo, o)
		for _, k := range candidateKeys(o) {
			keySet[k] = true
		}
	}
	if len(todo) == 0 {
		return st.res, nil
	}
	keys := slices.SortedFunc(maps.Keys(keySet), func(a, b Key) int { return a.Compare(b) })
	if st.ids, err = st.tx.LockIdentifiers(ctx, keys); err != nil {
		return Result{}, err
	}
	var pids []string
	for _, n := range st.ids {
		pids = append(pids, n.Profile)
	}
	if err := st.lockProfiles(ctx, pids); err != nil {
		return Result{}, err
	}
	st.unstored = map[Key]bool{}
	for _, k := range keys {
		if st.ids[k] == nil {
			st.unstored[k] = true
		}
	}
	pairSet := map[[2]Key]bool{}
	for _, o := range todo {
		ks := candidateKeys(o)
		for i := range ks {
			for j := i + 1; j < len(ks); j++ {
				pairSet[Pair(ks[i], ks[j])] = true
			}
		}
	}
	if len(pairSet) > 0 {
		pairs := slices.SortedFunc(maps.Keys(pairSet), func(a, b [2]Key) int {
			if c := a[0].Compare(b[0]); c != 0 {
				return c
			}
			return a[1].Compare(b[1])
		})
		if st.edges, err = st.tx.Edges(ctx, pairs); err != nil {
			return Result{}, err
		}
	}
	if st.matcher != nil {
		if err := st.prefetch(ctx, st.guessTraits(todo)); err != nil {
			return Result{}, err
		}
	}
	for _, o := range todo {
		kept, err := st.observe(ctx, o)
		if err != nil {
			return Result{}, err
		}
		if kept {
			st.res.Stored++
		} else {
			st.res.Expired++
		}
	}
	for k := range keySet {
		if _, ok := st.ids[k]; !ok {
			st.changes.Unused = append(st.changes.Unused, k)
		}
	}
	if err := st.apply(ctx); err != nil {
		return Result{}, err
	}
	return st.res, nil
}

// candidateKeys are the keys an observation may touch: its identifiers and,
// for an alias, both types the previous ID may have.
func candidateKeys(o *Observation) []Key {
	ks := slices.Clone(o.Identifiers)
	if o.PreviousID != "" {
		ks = append(ks, Key{TypeUserID, o.PreviousID}, Key{TypeAnonymousID, o.PreviousID})
	}
	return ks
}

// lockProfiles locks the profiles and every profile they were merged into.
func (st *stitch) lockProfiles(ctx context.Context, ids []string) error {
	for len(ids) > 0 {
		var want []string
		seen := map[string]bool{} // ids may be thousands (a batch's candidates)
		for _, id := range ids {
			if _, ok := st.profiles[id]; !ok && id != "" && !seen[id] {
				seen[id] = true
				want = append(want, id)
			}
		}
		if len(want) == 0 {
			return nil
		}
		slices.Sort(want)
		got, err := st.tx.LockProfiles(ctx, want)
		if err != nil {
			return err
		}
		ids = nil // not ids[:0]: the caller's slice (a profile's Absorbed list) must not be overwritten
		for _, id := range want {
			p, ok := got[id]
			if !ok {
				return fmt.Errorf("profile %s is referenced but not stored", id)
			}
			st.profiles[id] = p
			if p.MergedInto != "" {
				ids = append(ids, p.MergedInto)
			}
		}
	}
	return nil
}

// root returns the live profile an identifier belongs to, or nil for an
// identifier that has none yet.
func (st *stitch) root(n *Identifier) *Profile {
	if n.Profile == "" {
		return nil
	}
	return st.live(st.profiles[n.Profile])
}

// live follows a loaded profile to the live profile it was merged into.
func (st *stitch) live(p *Profile) *Profile {
	for p.MergedInto != "" {
		p = st.profiles[p.MergedInto]
	}
	return p
}

// loadIdentifiers locks the stored identifiers among keys that the
// transaction has not loaded yet, with their profiles: nothing is used
// before the transaction has loaded (and locked) it.
func (st *stitch) loadIdentifiers(ctx context.Context, keys []Key) error {
	missing, err := st.loadStored(ctx, keys)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("identifier %s is referenced but not stored", missing[0])
	}
	return nil
}

// observe stitches an observation and reports whether its event is kept
// (not past its time to live).
func (st *stitch) observe(ctx context.Context, o *Observation) (bool, error) {
	keys := dedupeKeys(o.Identifiers)
	if o.PreviousID != "" {
		prev := Key{TypeAnonymousID, o.PreviousID}
		if _, ok := st.ids[Key{TypeUserID, o.PreviousID}]; ok {
			prev.Type = TypeUserID
		}
		if !slices.Contains(keys, prev) {
			keys = append(keys, prev)
		}
	}
	t := o.Time
	if t.IsZero() {
		t = st.now
	}
	for _, k := range keys {
		n := st.ids[k]
		if n == nil {
			n = &Identifier{Key: k, FirstSeen: t, LastSeen: t}
			st.ids[k] = n
		}
		n.FirstSeen = minTime(n.FirstSeen, t)
		n.LastSeen = maxTime(n.LastSeen, t)
		n.Sources = addSource(n.Sources, o.Source)
		st.dirtyIDs[k] = true
	}
	var pairs [][2]Key
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			p := Pair(keys[i], keys[j])
			pairs = append(pairs, p)
			e := st.edges[p]
			if e != nil && e.Kind == KindProbabilistic && e.Decision == nil {
				// Seen together: exact evidence outranks a score, and the
				// pair is decided again as an exact one. Left waiting for
				// review, it would join two profiles that group merges
				// anyway without an accepted edge.
				e.Kind, e.Score, e.Model, e.Explanation = KindExact, 1, "", nil
				if e.Status == StatusPending {
					e.Status, e.Reason, e.Impact = "", "", 0
				}
				st.countStrong(p)
			}
			if e == nil {
				e = &Edge{A: p[0], B: p[1], Score: 1, Kind: KindExact, Evidence: Evidence{FirstSeen: t, LastSeen: t}}
				st.edges[p] = e
				st.countStrong(p)
			}
			e.Count++
			e.FirstSeen = minTime(e.FirstSeen, t)
			e.LastSeen = maxTime(e.LastSeen, t)
			e.Sources = addSource(e.Sources, o.Source)
			st.dirtyEdges[p] = true
		}
	}
	order := st.byPriority(keys)
	// The name guard's held identifiers join one another, not the rest;
	// a device the profile shares with whoever typed the form has been
	// seen with a second person, as if they had signed in on it.
	var ref *Profile
	st.held, ref = st.nameHeld(o, order)
	st.res.NameHeld += len(st.held)
	if len(st.held) > 0 {
		for _, k := range keys {
			if n := st.ids[k]; !n.Hub && st.cfg.SharedLimits[k.Type] > 0 && st.root(n) == ref {
				n.Users++
			}
		}
	}
	for _, k := range keys {
		n := st.ids[k]
		if n.Hub {
			continue
		}
		m := &HubMarking{Key: k, Strong: n.Strong, Limit: st.cfg.HubLimit, MessageID: o.MessageID}
		if limit, ok := st.cfg.SharedLimits[k.Type]; ok && n.Users > limit {
			m.Strong, m.Limit, m.Rule = n.Users, limit, RuleShared
		} else if n.Strong <= st.cfg.HubLimit {
			continue
		}
		n.Hub = true
		m.ID, m.At = NewID("hub", st.now)
		st.changes.Hubs = append(st.changes.Hubs, m)
		st.res.Hubs++
		st.res.Marked = append(st.res.Marked, k)
	}

	if err := st.group(ctx, o, order); err != nil {
		return false, err
	}
	for _, p := range pairs {
		e := st.edges[p]
		a, b := st.ids[p[0]], st.ids[p[1]]
		switch {
		case e.Status == StatusPending && e.Decision == nil && st.root(a) == st.root(b):
			// Seen again once the limits let the two join (a repair or a
			// split freed room): the edge holds the profile together now.
			e.Status, e.Reason, e.Impact = StatusAccepted, "", 0
		case e.Status != "":
			// Decided before: a pair is not re-proposed on the same evidence.
		case st.root(a) == st.root(b):
			e.Status = StatusAccepted
		case st.shared(a) || st.shared(b):
			// A device other people also use: who it belongs to is a
			// steward's call.
			e.Status, e.Reason = StatusPending, ReasonShared
			e.Impact = size(st.root(a)) + size(st.root(b))
		case a.Hub || b.Hub:
			e.Status, e.Reason = StatusRejected, ReasonHub
		case st.held[a.Key] != st.held[b.Key]:
			e.Status, e.Reason = StatusPending, ReasonNameConflict
			e.Impact = size(st.root(a)) + size(st.root(b))
		case cannotLink(st.root(a), st.root(b)):
			e.Status, e.Reason = StatusPending, ReasonCannotLink
			e.Impact = size(st.root(a)) + size(st.root(b))
		default:
			e.Status, e.Reason = StatusPending, ReasonMergeProtection
			e.Impact = size(st.root(a)) + size(st.root(b))
		}
	}

	ev := o.Event
	ev.ID, _ = NewID("ev", st.now)
	ev.MessageID, ev.Source, ev.Identifiers = o.MessageID, o.Source, keys
	if ev.Timestamp.IsZero() {
		ev.Timestamp = t
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = st.now
	}
	if st.retention != nil && st.retention.Expired(&ev, st.now) {
		return false, nil
	}
	st.changes.Events = append(st.changes.Events, &ev)
	return true, nil
}

// countStrong counts a pair newly seen together in each side's number of
// strong identifiers seen with it (for hub detection).
func (st *stitch) countStrong(p [2]Key) {
	if IsStrong(p[1].Type) {
		st.ids[p[0]].Strong++
	}
	if IsStrong(p[0].Type) {
		st.ids[p[1]].Strong++
	}
	if p[1].Type == TypeUserID {
		st.ids[p[0]].Users++
	}
	if p[0].Type == TypeUserID {
		st.ids[p[1]].Users++
	}
}

// byPriority sorts keys by their type's priority, then by key.
func (st *stitch) byPriority(keys []Key) []Key {
	order := slices.Clone(keys)
	slices.SortStableFunc(order, func(a, b Key) int {
		if ra, rb := st.cfg.rank(a.Type), st.cfg.rank(b.Type); ra != rb {
			return ra - rb
		}
		return a.Compare(b)
	})
	return order
}

// group joins the observation's identifiers (in priority order) into one
// profile, leaving out any whose profile would break a limit and those
// the name guard holds (st.held), which join one another.
func (st *stitch) group(ctx context.Context, o *Observation, order []Key) error {
	group, err := st.gather(ctx, o, order, func(k Key) bool { return !st.held[k] })
	if err != nil {
		return err
	}
	target := group
	if len(st.held) > 0 {
		// The traits describe whoever typed the form: they go with the
		// held identifiers, not onto the profile they were kept from.
		if target, err = st.gather(ctx, o, order, func(k Key) bool { return st.held[k] }); err != nil {
			return err
		}
	}
	// Identifiers left out (hubs, or over a limit) that have no profile yet
	// get one of their own: every identifier belongs to exactly one.
	for _, k := range order {
		if n := st.ids[k]; n.Profile == "" {
			st.newProfile(n)
		}
	}
	if target == nil {
		return nil
	}
	group = target
	t := o.Time
	if t.IsZero() {
		t = st.now
	}
	for path, v := range FlattenTraits(o.Traits) {
		if cur, ok := group.Traits[path]; !ok || !cur.Time.After(t) {
			group.Traits[path] = Trait{Value: v, Source: o.Source, Time: t}
		}
		st.traitPaths[group.ID] = append(st.traitPaths[group.ID], path)
	}
	// Every observation touches its profile: UpdatedAt is the change feed
	// that caches and subscriptions in other processes follow.
	st.touch(group)
	if st.matcher != nil && len(o.Traits) > 0 {
		return st.match(ctx, o, group)
	}
	return nil
}

// gather joins the identifiers of order that pick selects into one
// profile, in order, leaving out hubs and any whose profile would break a
// limit or a cannot-link, and returns it (nil when none was joined).
func (st *stitch) gather(ctx context.Context, o *Observation, order []Key, pick func(Key) bool) (*Profile, error) {
	var group *Profile
	var first Key
	for _, k := range order {
		n := st.ids[k]
		if n.Hub || !pick(k) {
			continue
		}
		p := st.root(n)
		switch {
		case group == nil:
			if p == nil {
				p = st.newProfile(n)
			}
			group, first = p, k
		case p == group:
		case p == nil:
			if st.fits(group.Counts, map[string]int{k.Type: 1}) {
				st.join(group, n)
				// It joins where the identifier it was seen with joined, so
				// that undoing a merge can give it back to the right side.
				n.Profile = st.ids[first].Profile
			}
		case st.fits(group.Counts, p.Counts) && !cannotLink(group, p):
			var err error
			if group, err = st.merge(ctx, group, p, o, Pair(first, k)); err != nil {
				return nil, err
			}
		}
	}
	return group, nil
}

// shared reports whether an identifier was marked by a shared limit (and
// not also by the hub limit, which marks junk values seen with everyone).
func (st *stitch) shared(n *Identifier) bool {
	limit, ok := st.cfg.SharedLimits[n.Type]
	return n.Hub && ok && n.Users > limit && n.Strong <= st.cfg.HubLimit
}

func (st *stitch) fits(have, add map[string]int) bool {
	for typ, n := range add {
		if have[typ]+n > st.cfg.limit(typ) {
			return false
		}
	}
	return true
}

func (st *stitch) touch(p *Profile) {
	p.UpdatedAt = st.now
	st.dirtyProfiles[p.ID] = true
	st.touched[p.ID]++
}

func (st *stitch) newProfile(n *Identifier) *Profile {
	id, at := NewID("p", st.now)
	p := &Profile{ID: id, CreatedAt: at, Anchor: n.Key, Counts: map[string]int{}, Traits: map[string]Trait{}}
	st.profiles[id] = p
	st.join(p, n)
	return p
}

func (st *stitch) join(p *Profile, n *Identifier) {
	n.Profile = p.ID
	p.Counts[n.Type]++
	st.touch(p)
}

// merge absorbs the younger profile into the older one and records it.
func (st *stitch) merge(ctx context.Context, a, b *Profile, o *Observation, edge [2]Key) (*Profile, error) {
	survivor, absorbed := a, b
	if b.Older(a) {
		survivor, absorbed = b, a
	}
	// Profiles absorbed earlier must point at the new root directly.
	if err := st.lockProfiles(ctx, absorbed.Absorbed); err != nil {
		return nil, err
	}
	ev := &MergeEvent{MessageID: o.MessageID, Source: o.Source, Survivor: survivor.ID, Absorbed: absorbed.ID,
		Edge: edge, SurvivorSize: size(survivor), AbsorbedSize: size(absorbed), Group: slices.Clone(absorbed.Absorbed)}
	ev.ID, ev.At = NewID("merge", st.now)
	before := []ProfileSnapshot{snapshot(survivor), snapshot(absorbed)}
	for _, id := range absorbed.Absorbed {
		st.profiles[id].MergedInto = survivor.ID
		st.dirtyProfiles[id] = true
	}
	survivor.Absorbed = append(survivor.Absorbed, absorbed.ID)
	survivor.Absorbed = append(survivor.Absorbed, absorbed.Absorbed...)
	absorbed.Absorbed = nil
	absorbed.MergedInto = survivor.ID
	for _, id := range absorbed.CannotLink {
		if !slices.Contains(survivor.CannotLink, id) {
			survivor.CannotLink = append(survivor.CannotLink, id)
		}
	}
	for typ, c := range absorbed.Counts {
		survivor.Counts[typ] += c
	}
	for path, tr := range absorbed.Traits {
		if cur, ok := survivor.Traits[path]; !ok || tr.Time.After(cur.Time) {
			survivor.Traits[path] = tr
		}
	}
	st.touch(survivor)
	st.touch(absorbed)
	st.changes.Merges = append(st.changes.Merges, ev)
	if !strings.HasPrefix(o.Source, "steward:") { // a steward's own entry records theirs
		id, at := NewID("audit", st.now)
		edge := ev.Edge
		entry := &AuditEntry{ID: id, At: at, Actor: "system", Action: ActionMerge,
			Cause: o.MessageID, Edge: &edge, Profiles: []string{survivor.ID, absorbed.ID}, Merge: ev.ID,
			Before: before, After: []ProfileSnapshot{snapshot(survivor)}}
		if e := st.edges[edge]; e != nil {
			entry.Explanation = e.Explanation
		}
		st.changes.Audit = append(st.changes.Audit, entry)
	}
	st.res.Merges++
	return survivor, nil
}

func size(p *Profile) int {
	n := 0
	for _, c := range p.Counts {
		n += c
	}
	return n
}

func dedupeKeys(ks []Key) []Key {
	out := make([]Key, 0, len(ks))
	for _, k := range ks {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func addSource(srcs []string, s string) []string {
	if s == "" || slices.Contains(srcs, s) {
		return srcs
	}
	return append(srcs, s)
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
