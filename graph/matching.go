package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
)

// Matcher is a probabilistic matching engine as stitching uses it: it files
// profiles under blocking keys and scores a pair of trait sets.
type Matcher interface {
	// Version names the model; every edge it scores records it.
	Version() string
	// BlockingKeys returns the keys under which a profile with these
	// traits is filed; profiles sharing a key are compared.
	BlockingKeys(traits map[string]string) []string
	// Score compares two profiles' traits.
	Score(a, b map[string]string) MatchScore
}

// BatchMatcher is a Matcher that compares one profile with many at once,
// preparing the first once rather than once per candidate.
type BatchMatcher interface {
	ScoreAll(a map[string]string, bs []map[string]string) []MatchScore
}

// MatchScore is a scored comparison.
type MatchScore struct {
	Probability float64
	// Hold sends the pair to review whatever its probability (the engine's
	// guards: names agree but personal fields disagree, or birth dates
	// disagree and only the names make a match).
	Hold        bool
	Explanation json.RawMessage
	// Explain, when Explanation is nil, builds it: only pairs that are
	// stored (at or above review) pay for an explanation.
	Explain func() json.RawMessage
}

func (sc MatchScore) explanation() json.RawMessage {
	if sc.Explanation == nil && sc.Explain != nil {
		return sc.Explain()
	}
	return sc.Explanation
}

// scoreAll compares traits with every candidate's.
func scoreAll(m Matcher, traits map[string]string, cands []*Profile) []MatchScore {
	if len(cands) == 0 {
		return nil // a batch matcher would prepare traits for nothing
	}
	others := make([]map[string]string, len(cands))
	for i, q := range cands {
		others[i] = q.StringTraits()
	}
	if bm, ok := m.(BatchMatcher); ok {
		return bm.ScoreAll(traits, others)
	}
	out := make([]MatchScore, len(cands))
	for i, o := range others {
		out[i] = m.Score(traits, o)
	}
	return out
}

// BlockEntry files a profile under blocking keys.
type BlockEntry struct {
	Profile string
	Keys    []string
}

// MatchConfig holds the matching thresholds and guards.
type MatchConfig struct {
	// Accept: at or above, an edge is accepted and joins profiles.
	Accept float64
	// Review: between Review and Accept, an edge waits for a steward;
	// below Review nothing is stored.
	Review float64
	// MaxBlock bounds the candidates read per blocking key; a larger block
	// (a key shared by too many profiles) is skipped.
	MaxBlock int
	// ChainSize: a probabilistic edge between two profiles that both hold
	// more identifiers than this goes to review rather than merging them.
	ChainSize int
}

// Reasons a probabilistic edge waits for review.
const (
	ReasonReview        = "review"         // scored between Review and Accept
	ReasonChainingGuard = "chaining_guard" // would join two large profiles
	ReasonHeld          = "held"           // the engine's household or namesake guard
)

// DefaultMatchConfig returns the documented defaults.
func DefaultMatchConfig() MatchConfig {
	return MatchConfig{Accept: 0.95, Review: 0.6, MaxBlock: 200, ChainSize: 20}
}

// StringTraits returns the profile's traits that are strings (or numbers),
// by dotted path: what matching compares.
func (p *Profile) StringTraits() map[string]string {
	out := make(map[string]string, len(p.Traits)) // sized once: matching builds thousands a batch
	for path, t := range p.Traits {
		if s, ok := stringValue(t.Value); ok {
			out[path] = s
		}
	}
	return out
}

func stringValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64, int, int64:
		return fmt.Sprint(v), true
	}
	return "", false
}

// noPrefetch turns prefetch off, for tests that compare its results with
// reading one profile at a time.
var noPrefetch atomic.Bool

// prefetch reads up front, for a batch, what matching each profile will
// read: the blocking index under the keys the traits are filed under, the
// candidate profiles filed there, and the anchor identifiers of the
// candidates that score at or above review, each in one store call for the
// whole batch (on Neo4j a round trip each) rather than one per profile.
// traits is a guess of each profile's traits at the time it is matched:
// match fetches whatever the guess missed, so the results are those of
// reading one profile at a time. The scores are kept for match, which
// scores again only the candidates the transaction has changed since.
func (st *stitch) prefetch(ctx context.Context, traits []map[string]string) error {
	if noPrefetch.Load() {
		return nil
	}
	var keys []string
	seen := map[string]bool{}
	fps := make([]string, len(traits))
	for i, t := range traits {
		fps[i] = fingerprint(t)
		for _, k := range st.blockingKeys(fps[i], t) {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if err := st.loadBlocks(ctx, keys); err != nil {
		return err
	}
	var ids []string
	for _, k := range keys {
		// An oversized block is skipped whatever this batch adds to it.
		if b := st.blocks[k]; len(b) <= st.matchCfg.MaxBlock {
			ids = append(ids, b...)
		}
	}
	if err := st.lockProfiles(ctx, ids); err != nil {
		return err
	}
	var anchors []Key
	for i, t := range traits {
		var cands []*Profile
		for _, k := range st.blockingKeys(fps[i], t) {
			if b := st.blocks[k]; len(b) <= st.matchCfg.MaxBlock {
				for _, id := range b {
					if p := st.live(st.profiles[id]); p.Anchor != (Key{}) && !slices.Contains(cands, p) {
						cands = append(cands, p)
					}
				}
			}
		}
		for j, sc := range st.score(fps[i], t, cands) {
			if sc.Probability >= st.matchCfg.Review {
				anchors = append(anchors, cands[j].Anchor)
			}
		}
	}
	return st.loadIdentifiers(ctx, anchors)
}

// score compares traits (fp is their fingerprint) with every candidate's, reusing the scores of
// earlier calls with the same traits for the candidates the transaction
// has not changed since (a pair's score depends only on the two trait
// sets; every change of a profile's traits touches it).
func (st *stitch) score(fp string, traits map[string]string, cands []*Profile) []MatchScore {
	memo := st.scores[fp]
	if memo == nil {
		memo = map[string]memoScore{}
		if st.scores == nil {
			st.scores = map[string]map[string]memoScore{}
		}
		st.scores[fp] = memo
	}
	out := make([]MatchScore, len(cands))
	var todo []*Profile
	var at []int
	for i, q := range cands {
		if m, ok := memo[q.ID]; ok && m.touched == st.touched[q.ID] {
			out[i] = m.MatchScore
			continue
		}
		todo = append(todo, q)
		at = append(at, i)
	}
	for j, sc := range scoreAll(st.matcher, traits, todo) {
		out[at[j]] = sc
		if sc.Probability < st.matchCfg.Review {
			sc = MatchScore{Probability: sc.Probability, Hold: sc.Hold} // never explained: keep no scorer alive
		}
		memo[todo[j].ID] = memoScore{sc, st.touched[todo[j].ID]}
	}
	return out
}

// memoScore is a score and how many times the transaction had touched the
// candidate when it was computed.
type memoScore struct {
	MatchScore
	touched int
}

// blockingKeys returns the matcher's keys for the traits (fp is their
// fingerprint), computed once
// per distinct set of traits in a transaction (prefetch asks for the keys
// that match asks for again).
func (st *stitch) blockingKeys(fp string, traits map[string]string) []string {
	if ks, ok := st.keyMemo[fp]; ok {
		return ks
	}
	ks := st.matcher.BlockingKeys(traits)
	if st.keyMemo == nil {
		st.keyMemo = map[string][]string{}
	}
	st.keyMemo[fp] = ks
	return ks
}

// fingerprint identifies a set of traits: equal sets, equal fingerprints.
func fingerprint(traits map[string]string) string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(traits)) {
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(traits[n])
		b.WriteByte(0)
	}
	return b.String()
}

// loadBlocks reads the blocking index under the keys not read yet. The
// index does not change under a transaction except through its own
// writes, which match keeps in filed.
func (st *stitch) loadBlocks(ctx context.Context, keys []string) error {
	var want []string
	for _, k := range keys {
		if _, ok := st.blocks[k]; !ok {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if len(want) == 0 {
		return nil
	}
	got, err := st.tx.Candidates(ctx, want, st.matchCfg.MaxBlock)
	if err != nil {
		return err
	}
	if st.blocks == nil {
		st.blocks = map[string][]string{}
	}
	for _, k := range want {
		st.blocks[k] = got[k]
	}
	return nil
}

// file files the profile under the keys it is not filed under yet, and
// returns each key's block as this transaction sees it: profiles filed
// earlier in the transaction are not stored yet, and count.
func (st *stitch) file(ctx context.Context, p *Profile, keys []string) (map[string][]string, error) {
	if err := st.loadBlocks(ctx, keys); err != nil {
		return nil, err
	}
	if st.filed == nil {
		st.filed = map[string][]string{}
	}
	blocks := make(map[string][]string, len(keys))
	var file []string
	for _, k := range keys {
		blocks[k] = slices.Concat(st.blocks[k], st.filed[k])
		if !slices.Contains(blocks[k], p.ID) {
			file = append(file, k)
			st.filed[k] = append(st.filed[k], p.ID)
		}
	}
	if len(file) > 0 {
		st.changes.Blocks = append(st.changes.Blocks, BlockEntry{Profile: p.ID, Keys: file})
	}
	return blocks, nil
}

// match compares the observation's profile with the profiles that share a
// blocking key with it, in the same transaction as the write: the edge
// exists before the write is acknowledged.
func (st *stitch) match(ctx context.Context, o *Observation, group *Profile) error {
	m, cfg := st.matcher, st.matchCfg
	traits := group.StringTraits()
	fp := fingerprint(traits)
	keys := st.blockingKeys(fp, traits)
	if len(keys) == 0 || group.Anchor == (Key{}) {
		return nil
	}
	blocks, err := st.file(ctx, group, keys)
	if err != nil {
		return err
	}
	var ids []string
	for _, k := range keys {
		if len(blocks[k]) > cfg.MaxBlock {
			st.res.OversizedBlocks++
			continue
		}
		for _, id := range blocks[k] {
			if id != group.ID && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if err := st.lockProfiles(ctx, ids); err != nil {
		return err
	}
	var cands []*Profile
	for _, id := range ids {
		p := st.live(st.profiles[id])
		if p != st.live(group) && p.Anchor != (Key{}) && !slices.Contains(cands, p) {
			cands = append(cands, p)
		}
	}
	slices.SortFunc(cands, func(a, b *Profile) int { return strings.Compare(a.ID, b.ID) })
	scores := st.score(fp, traits, cands)
	// The edge joins the two anchors: lock them before reading the edge, so
	// that it cannot change under us (Neo4j locks a relationship's nodes).
	// Only pairs at or above review read or write an edge, so only their
	// anchors are locked, not every candidate's.
	anchors := []Key{group.Anchor}
	var pairs [][2]Key
	for i, q := range cands {
		if scores[i].Probability >= cfg.Review {
			anchors = append(anchors, q.Anchor)
			pairs = append(pairs, Pair(group.Anchor, q.Anchor))
		}
	}
	if err := st.loadIdentifiers(ctx, anchors); err != nil {
		return err
	}
	if err := st.loadEdges(ctx, pairs); err != nil {
		return err
	}
	for i, q := range cands {
		if st.live(group) == q {
			continue // joined meanwhile, by an earlier candidate
		}
		if scores[i].Probability < cfg.Review {
			continue
		}
		pair := Pair(group.Anchor, q.Anchor)
		if err := st.propose(ctx, o, pair, st.live(group), q, scores[i], m.Version(), ""); err != nil {
			return err
		}
	}
	return nil
}

// propose records a scored pair between identifiers of two live profiles
// and merges the profiles when the score and the guards allow. hold, when
// set, sends the pair to review with that reason whatever its score.
func (st *stitch) propose(ctx context.Context, o *Observation, pair [2]Key, g, q *Profile, sc MatchScore, model, hold string) error {
	cfg := st.matchCfg
	e, err := st.edge(ctx, pair)
	if err != nil {
		return err
	}
	if e != nil && (e.Status == StatusRejected || e.Decision != nil) || cannotLink(g, q) {
		return nil // a rejected pair is not proposed again; a steward's decision stands
	}
	t := o.Time
	if t.IsZero() {
		t = st.now
	}
	if e == nil {
		e = &Edge{A: pair[0], B: pair[1], Kind: KindProbabilistic, Evidence: Evidence{FirstSeen: t}}
		st.edges[pair] = e
	}
	if e.Kind != KindProbabilistic {
		return nil // seen together: exact evidence outranks a score
	}
	e.Score, e.Model, e.Explanation = sc.Probability, model, sc.explanation()
	e.Count++
	e.LastSeen = maxTime(e.LastSeen, t)
	e.Sources = addSource(e.Sources, o.Source)
	st.dirtyEdges[pair] = true
	e.Impact = size(g) + size(q)
	switch {
	case hold != "":
		e.Status, e.Reason = StatusPending, hold
	case sc.Probability < cfg.Accept:
		e.Status, e.Reason = StatusPending, ReasonReview
	case sc.Hold:
		e.Status, e.Reason = StatusPending, ReasonHeld
	case size(g) > cfg.ChainSize && size(q) > cfg.ChainSize:
		e.Status, e.Reason = StatusPending, ReasonChainingGuard
	case !st.fits(g.Counts, q.Counts):
		e.Status, e.Reason = StatusPending, ReasonMergeProtection
	default:
		e.Status, e.Reason = StatusAccepted, ""
		if _, err := st.merge(ctx, g, q, o, pair); err != nil {
			return err
		}
	}
	st.res.Matches++
	return nil
}

// edge returns the stored (or already loaded) edge of a pair.
func (st *stitch) edge(ctx context.Context, pair [2]Key) (*Edge, error) {
	if err := st.loadEdges(ctx, [][2]Key{pair}); err != nil {
		return nil, err
	}
	return st.edges[pair], nil
}

// loadEdges reads the stored edges of the pairs not read yet, in one call.
// A pair with an identifier this transaction creates has no stored edge.
func (st *stitch) loadEdges(ctx context.Context, pairs [][2]Key) error {
	var want [][2]Key
	for _, p := range pairs {
		if _, ok := st.edges[p]; !ok && !st.noEdge[p] && !st.unstored[p[0]] && !st.unstored[p[1]] && !slices.Contains(want, p) {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		return nil
	}
	slices.SortFunc(want, comparePairs)
	es, err := st.tx.Edges(ctx, want)
	if err != nil {
		return err
	}
	if st.noEdge == nil {
		st.noEdge = map[[2]Key]bool{}
	}
	for _, p := range want {
		if e := es[p]; e != nil {
			st.edges[p] = e // apply writes dirty edges from this map
		} else {
			st.noEdge[p] = true
		}
	}
	return nil
}

// guessTraits guesses, for prefetch, the traits each observation's profile
// will have when it is matched: those of the profiles its identifiers
// belong to now, with the observation's own on top.
func (st *stitch) guessTraits(obs []*Observation) []map[string]string {
	var out []map[string]string
	for _, o := range obs {
		if len(o.Traits) == 0 {
			continue
		}
		t := map[string]string{}
		for _, k := range o.Identifiers {
			if n := st.ids[k]; n != nil {
				if p := st.root(n); p != nil {
					maps.Copy(t, p.StringTraits())
				}
			}
		}
		for path, v := range FlattenTraits(o.Traits) {
			if s, ok := stringValue(v); ok {
				t[path] = s
			}
		}
		out = append(out, t)
	}
	return out
}
