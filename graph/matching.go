package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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
	// household guard: names agree but personal fields disagree).
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
	ReasonHeld          = "held"           // the engine's household guard
)

// DefaultMatchConfig returns the documented defaults.
func DefaultMatchConfig() MatchConfig {
	return MatchConfig{Accept: 0.95, Review: 0.6, MaxBlock: 200, ChainSize: 20}
}

// StringTraits returns the profile's traits that are strings (or numbers),
// by dotted path: what matching compares.
func (p *Profile) StringTraits() map[string]string {
	out := map[string]string{}
	for path, t := range p.Traits {
		switch v := t.Value.(type) {
		case string:
			out[path] = v
		case json.Number:
			out[path] = v.String()
		case float64, int, int64:
			out[path] = fmt.Sprint(v)
		}
	}
	return out
}

// match compares the observation's profile with the profiles that share a
// blocking key with it, in the same transaction as the write: the edge
// exists before the write is acknowledged.
func (st *stitch) match(ctx context.Context, o *Observation, group *Profile) error {
	m, cfg := st.matcher, st.matchCfg
	traits := group.StringTraits()
	keys := m.BlockingKeys(traits)
	if len(keys) == 0 || group.Anchor == (Key{}) {
		return nil
	}
	st.changes.Blocks = append(st.changes.Blocks, BlockEntry{Profile: group.ID, Keys: keys})
	blocks, err := st.tx.Candidates(ctx, keys, cfg.MaxBlock)
	if err != nil {
		return err
	}
	// Profiles filed earlier in this transaction are not stored yet.
	if st.filed == nil {
		st.filed = map[string][]string{}
	}
	for _, k := range keys {
		blocks[k] = append(blocks[k], st.filed[k]...)
		if !slices.Contains(st.filed[k], group.ID) {
			st.filed[k] = append(st.filed[k], group.ID)
		}
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
	anchors := []Key{group.Anchor}
	for _, id := range ids {
		p := st.live(st.profiles[id])
		if p != st.live(group) && p.Anchor != (Key{}) && !slices.Contains(cands, p) {
			cands = append(cands, p)
			anchors = append(anchors, p.Anchor)
		}
	}
	slices.SortFunc(cands, func(a, b *Profile) int { return strings.Compare(a.ID, b.ID) })
	// The edge joins the two anchors: lock them before reading the edge, so
	// that it cannot change under us (Neo4j locks a relationship's nodes).
	if err := st.loadIdentifiers(ctx, anchors); err != nil {
		return err
	}
	t := o.Time
	if t.IsZero() {
		t = st.now
	}
	scores := scoreAll(m, traits, cands)
	for i, q := range cands {
		if st.live(group) == q {
			continue // joined meanwhile, by an earlier candidate
		}
		sc := scores[i]
		if sc.Probability < cfg.Review {
			continue
		}
		pair := Pair(group.Anchor, q.Anchor)
		e, err := st.edge(ctx, pair)
		if err != nil {
			return err
		}
		if e != nil && (e.Status == StatusRejected || e.Decision != nil) || cannotLink(st.live(group), q) {
			continue // a rejected pair is not proposed again; a steward's decision stands
		}
		if e == nil {
			e = &Edge{A: pair[0], B: pair[1], Kind: KindProbabilistic, Evidence: Evidence{FirstSeen: t}}
			st.edges[pair] = e
		}
		if e.Kind != KindProbabilistic {
			continue // seen together: exact evidence outranks a score
		}
		e.Score, e.Model, e.Explanation = sc.Probability, m.Version(), sc.explanation()
		e.Count++
		e.LastSeen = maxTime(e.LastSeen, t)
		e.Sources = addSource(e.Sources, o.Source)
		st.dirtyEdges[pair] = true
		g := st.live(group)
		e.Impact = size(g) + size(q)
		switch {
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
	}
	return nil
}

// edge returns the stored (or already loaded) edge of a pair.
func (st *stitch) edge(ctx context.Context, pair [2]Key) (*Edge, error) {
	if e, ok := st.edges[pair]; ok {
		return e, nil
	}
	es, err := st.tx.Edges(ctx, [][2]Key{pair})
	if err != nil {
		return nil, err
	}
	if e := es[pair]; e != nil {
		st.edges[pair] = e // apply writes dirty edges from this map
	}
	return es[pair], nil
}
