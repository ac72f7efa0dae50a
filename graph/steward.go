package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Audit actions: what a data steward did.
const (
	// ActionMerge is an automatic merge (stitching or matching); its actor
	// is "system" and its cause the message or record that caused it.
	ActionMerge     = "merge"
	ActionApprove   = "approve"
	ActionReject    = "reject"
	ActionLink      = "link"
	ActionSplit     = "split"
	ActionUndoMerge = "undo_merge"
	ActionUndoSplit = "undo_split"
)

// Reasons set by steward decisions.
const (
	// ReasonSteward: a steward rejected the edge (reject, split, undo).
	ReasonSteward = "steward"
	// ReasonCannotLink: evidence joins two profiles a steward kept apart;
	// it waits for a steward, whatever the automatic rules say.
	ReasonCannotLink = "cannot_link"
)

// Decision is a steward's verdict on an edge.
type Decision struct {
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Note   string    `json:"note,omitempty"`
	Entry  string    `json:"entry"` // the audit entry that records it
}

// AuditEntry is the immutable record of one steward action: who, when,
// why, and the graph before and after.
type AuditEntry struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Note   string    `json:"note,omitempty"`
	// Cause is what the action acted on: an edge's ID, a merge event or
	// an earlier audit entry.
	Cause string `json:"cause,omitempty"`
	// Edge is the decided or linked pair.
	Edge *[2]Key `json:"edge,omitempty"`
	// Profiles are the profiles involved, for each profile's history.
	Profiles []string `json:"profiles"`
	// Merge is the merge event the action made (approve, link).
	Merge  string            `json:"merge,omitempty"`
	Before []ProfileSnapshot `json:"before"`
	After  []ProfileSnapshot `json:"after"`
	// Moved lists the identifiers that changed profile (split, undo).
	Moved []Move `json:"moved,omitempty"`
	// Edges lists the edges whose status the action changed, as they were.
	Edges []*Edge `json:"edges,omitempty"`
	// Anchor is the split profile's anchor before the split.
	Anchor Key `json:"anchor,omitzero"`
	// Explanation is the decided or merging edge's explanation at the time,
	// kept with the decision (the edge's own may be re-scored later).
	Explanation json.RawMessage `json:"explanation,omitempty"`
}

// ProfileSnapshot is a profile as an audit entry shows it.
type ProfileSnapshot struct {
	ID         string         `json:"id"`
	MergedInto string         `json:"mergedInto,omitempty"`
	Counts     map[string]int `json:"counts"`
	Names      []string       `json:"names,omitempty"`
}

// Move is one identifier's change of profile.
type Move struct {
	Key  Key    `json:"key"`
	From string `json:"from"`
	To   string `json:"to"`
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Profile string // only entries involving this profile
	Before  string // only entries older than this entry ID
	Limit   int
}

// QueueItem is a pending edge with its place in the review queue.
type QueueItem struct {
	Edge   *Edge
	Cursor string
}

// QueueRank orders the review queue: largest impact first, then highest
// score. Its byte order is the queue order.
func QueueRank(e *Edge) string {
	impact := min(max(e.Impact, 0), 999_999_999)
	score := int64((1 - min(max(e.Score, 0), 1)) * 1e12)
	return fmt.Sprintf("%09d%013d", 999_999_999-impact, score)
}

// EdgeID is an edge's opaque, stable ID in the API.
func EdgeID(pair [2]Key) string {
	return "edge_" + base64URL(pair[0].String()+"\x00"+pair[1].String())
}

// ParseEdgeID inverts EdgeID.
func ParseEdgeID(id string) ([2]Key, error) {
	raw, ok := unbase64URL(strings.TrimPrefix(id, "edge_"))
	a, b, found := strings.Cut(raw, "\x00")
	if !ok || !strings.HasPrefix(id, "edge_") || !found {
		return [2]Key{}, FieldErrorf("id", "%q is not an edge ID", id)
	}
	ka, kb := parseKeyString(a), parseKeyString(b)
	if ka.Type == "" || kb.Type == "" {
		return [2]Key{}, FieldErrorf("id", "%q is not an edge ID", id)
	}
	return Pair(ka, kb), nil
}

func parseKeyString(s string) Key {
	t, v, _ := strings.Cut(s, ":")
	return Key{Type: t, Value: v}
}

// cannotLink reports whether a steward kept the two live profiles apart.
func cannotLink(a, b *Profile) bool {
	in := func(p *Profile, ids []string) bool {
		return slices.ContainsFunc(ids, func(id string) bool { return id == p.ID || slices.Contains(p.Absorbed, id) })
	}
	return in(b, a.CannotLink) || in(a, b.CannotLink)
}

func (st *stitch) keepApart(a, b *Profile) {
	if !slices.Contains(a.CannotLink, b.ID) {
		a.CannotLink = append(a.CannotLink, b.ID)
	}
	if !slices.Contains(b.CannotLink, a.ID) {
		b.CannotLink = append(b.CannotLink, a.ID)
	}
	st.touch(a)
	st.touch(b)
}

// allowLink lifts the cannot-links between two live profiles: a steward
// who joins them overrides an earlier decision.
func (st *stitch) allowLink(a, b *Profile) {
	drop := func(p, q *Profile) {
		p.CannotLink = slices.DeleteFunc(p.CannotLink, func(id string) bool { return id == q.ID || slices.Contains(q.Absorbed, id) })
	}
	drop(a, b)
	drop(b, a)
	st.touch(a)
	st.touch(b)
}

func snapshot(p *Profile) ProfileSnapshot {
	return ProfileSnapshot{ID: p.ID, MergedInto: p.MergedInto, Counts: maps.Clone(p.Counts), Names: p.Names()}
}

type dryRunKey struct{}

// DryRun marks a context so that steward actions run through the same code
// and return the audit entry they would write (with the profiles after),
// but write nothing: the preview of an action is the action itself.
func DryRun(ctx context.Context) context.Context { return context.WithValue(ctx, dryRunKey{}, true) }

// IsDryRun reports whether ctx asks for a dry run.
func IsDryRun(ctx context.Context) bool { b, _ := ctx.Value(dryRunKey{}).(bool); return b }

// steward runs one steward action in a transaction and returns its audit
// entry, recorded in the same transaction.
func (s *Stitcher) steward(ctx context.Context, op, actor, action, note string, fn func(context.Context, *stitch, *AuditEntry) error) (*AuditEntry, error) {
	if strings.TrimSpace(actor) == "" {
		return nil, fmt.Errorf("%s: %w", op, Errorf(KindForbidden, "no actor"))
	}
	if len(note) > 4000 {
		return nil, fmt.Errorf("%s: %w", op, FieldErrorf("note", "is longer than 4,000 characters"))
	}
	var entry *AuditEntry
	_, err := s.update(ctx, func(ctx context.Context, st *stitch) (Result, error) {
		e := &AuditEntry{Actor: actor, Action: action, Note: note}
		e.ID, e.At = NewID("audit", st.now)
		if err := fn(ctx, st, e); err != nil {
			return Result{}, err
		}
		st.changes.Audit = append(st.changes.Audit, e)
		entry = e
		st.dryRun = IsDryRun(ctx)
		return st.res, st.apply(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return entry, nil
}

func (st *stitch) decision(e *AuditEntry) *Decision {
	return &Decision{Actor: e.Actor, At: e.At, Action: e.Action, Note: e.Note, Entry: e.ID}
}

// lockPair locks both identifiers of a pair and their profiles, and
// returns the stored edge (nil if there is none).
func (st *stitch) lockPair(ctx context.Context, pair [2]Key, fields [2]string) (*Edge, error) {
	ids, err := st.tx.LockIdentifiers(ctx, pair[:])
	if err != nil {
		return nil, err
	}
	for i, k := range pair {
		n := ids[k]
		if n == nil || n.Profile == "" {
			return nil, &Error{Kind: KindNotFound, Field: fields[i], Msg: fmt.Sprintf("no identifier %s", k)}
		}
		st.ids[k] = n
		if err := st.lockProfiles(ctx, []string{n.Profile}); err != nil {
			return nil, err
		}
	}
	return st.edge(ctx, pair)
}

// Approve accepts a pending edge and merges the two profiles it joins.
func (s *Stitcher) Approve(ctx context.Context, actor string, pair [2]Key, note string) (*AuditEntry, error) {
	return s.steward(ctx, "approve", actor, ActionApprove, note, func(ctx context.Context, st *stitch, a *AuditEntry) error {
		e, err := st.pending(ctx, pair)
		if err != nil {
			return err
		}
		e.Status, e.Reason, e.Decision = StatusAccepted, "", st.decision(a)
		return st.join2(ctx, a, e)
	})
}

// Reject rejects a pending edge and keeps the two profiles apart: no
// automatic decision joins them later (a steward still can).
func (s *Stitcher) Reject(ctx context.Context, actor string, pair [2]Key, note string) (*AuditEntry, error) {
	return s.steward(ctx, "reject", actor, ActionReject, note, func(ctx context.Context, st *stitch, a *AuditEntry) error {
		e, err := st.pending(ctx, pair)
		if err != nil {
			return err
		}
		e.Status, e.Reason, e.Decision = StatusRejected, ReasonSteward, st.decision(a)
		st.dirtyEdges[pair] = true
		a.Explanation = e.Explanation
		ga, gb := st.root(st.ids[pair[0]]), st.root(st.ids[pair[1]])
		a.Edge, a.Cause = &pair, EdgeID(pair)
		a.Profiles = uniq(ga.ID, gb.ID)
		a.Before = []ProfileSnapshot{snapshot(ga), snapshot(gb)}
		if ga != gb {
			st.keepApart(ga, gb)
		}
		a.After = []ProfileSnapshot{snapshot(ga), snapshot(gb)}
		return nil
	})
}

// pending locks a pending edge, or says why it cannot be decided.
func (st *stitch) pending(ctx context.Context, pair [2]Key) (*Edge, error) {
	e, err := st.lockPair(ctx, pair, [2]string{"id", "id"})
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, Errorf(KindNotFound, "no edge %s", EdgeID(pair))
	}
	st.edges[pair] = e
	if e.Status != StatusPending {
		if d := e.Decision; d != nil {
			return nil, Errorf(KindConflict, "the edge was already decided: %s by %s at %s", d.Action, d.Actor, d.At.Format(time.RFC3339))
		}
		return nil, Errorf(KindConflict, "the edge is %s, not pending", e.Status)
	}
	return e, nil
}

// join2 records an accepted edge and merges its two sides' profiles.
func (st *stitch) join2(ctx context.Context, a *AuditEntry, e *Edge) error {
	pair := [2]Key{e.A, e.B}
	st.edges[pair] = e
	st.dirtyEdges[pair] = true
	a.Explanation = e.Explanation
	ga, gb := st.root(st.ids[pair[0]]), st.root(st.ids[pair[1]])
	a.Edge, a.Cause = &pair, EdgeID(pair)
	a.Profiles = uniq(ga.ID, gb.ID)
	a.Before = []ProfileSnapshot{snapshot(ga), snapshot(gb)}
	if ga == gb {
		a.After = []ProfileSnapshot{snapshot(ga)}
		return nil // joined meanwhile: the edge is recorded, nothing merges twice
	}
	st.allowLink(ga, gb)
	o := &Observation{MessageID: a.ID, Source: "steward:" + a.Actor, Time: st.now}
	survivor, err := st.merge(ctx, ga, gb, o, pair)
	if err != nil {
		return err
	}
	a.Merge = st.changes.Merges[len(st.changes.Merges)-1].ID
	a.After = []ProfileSnapshot{snapshot(survivor)}
	return nil
}

// Link joins two identifiers with a manual accepted edge, merging their
// profiles.
func (s *Stitcher) Link(ctx context.Context, actor string, a, b Key, note string) (*AuditEntry, error) {
	if a == b {
		return nil, fmt.Errorf("link: %w", FieldErrorf("b", "is the same identifier as a"))
	}
	return s.steward(ctx, "link", actor, ActionLink, note, func(ctx context.Context, st *stitch, entry *AuditEntry) error {
		pair := Pair(a, b)
		fields := [2]string{"a", "b"}
		if pair[0] != a {
			fields = [2]string{"b", "a"}
		}
		e, err := st.lockPair(ctx, pair, fields)
		if err != nil {
			return err
		}
		if e != nil && e.Status == StatusAccepted && st.root(st.ids[a]) == st.root(st.ids[b]) {
			return Errorf(KindConflict, "%s and %s are already linked", a, b)
		}
		if e == nil {
			e = &Edge{A: pair[0], B: pair[1], Evidence: Evidence{FirstSeen: st.now, LastSeen: st.now}}
		}
		e.Kind, e.Score, e.Status, e.Reason, e.Decision = KindManual, 1, StatusAccepted, "", st.decision(entry)
		e.Count++
		e.Sources = addSource(e.Sources, "steward")
		return st.join2(ctx, entry, e)
	})
}

// members locks a live profile and everything in it: the profiles it
// absorbed, its identifiers and the edges touching them.
func (st *stitch) members(ctx context.Context, r Reader, p *Profile) ([]*Identifier, error) {
	if err := st.lockProfiles(ctx, p.Absorbed); err != nil {
		return nil, err
	}
	stored, err := ProfileIdentifiers(ctx, r, p)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, len(stored))
	for i, n := range stored {
		keys[i] = n.Key
	}
	locked, err := st.tx.LockIdentifiers(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]*Identifier, 0, len(keys))
	for _, k := range keys {
		n := locked[k]
		if n == nil {
			return nil, fmt.Errorf("identifier %s vanished", k)
		}
		if cur, ok := st.ids[k]; ok {
			n = cur
		}
		st.ids[k] = n
		out = append(out, n)
	}
	edges, err := r.EdgesOf(ctx, keys)
	if err != nil {
		return nil, err
	}
	pairs := make([][2]Key, len(edges))
	for i, e := range edges {
		pairs[i] = [2]Key{e.A, e.B}
	}
	lockedEdges, err := st.tx.Edges(ctx, pairs)
	if err != nil {
		return nil, err
	}
	for p, e := range lockedEdges {
		if _, ok := st.edges[p]; !ok {
			st.edges[p] = e
		}
	}
	return out, nil
}

// cut rejects every accepted edge between the two sides, remembering each
// edge as it was.
func (st *stitch) cut(a *AuditEntry, side map[Key]bool) {
	pairs := make([][2]Key, 0, len(st.edges))
	for p := range st.edges {
		pairs = append(pairs, p)
	}
	slices.SortFunc(pairs, comparePairs)
	for _, p := range pairs {
		e := st.edges[p]
		_, knownA := st.ids[p[0]]
		_, knownB := st.ids[p[1]]
		if e.Status != StatusAccepted || !knownA || !knownB || side[p[0]] == side[p[1]] {
			continue
		}
		before := *e
		a.Edges = append(a.Edges, &before)
		e.Status, e.Reason, e.Decision = StatusRejected, ReasonSteward, st.decision(a)
		st.dirtyEdges[p] = true
	}
}

func comparePairs(x, y [2]Key) int {
	if c := x[0].Compare(y[0]); c != 0 {
		return c
	}
	return x[1].Compare(y[1])
}

// Split moves the given identifiers of a live profile (and so the events
// seen only on them) to a new profile; the original keeps its ID. The
// edges that held them are rejected, and the two are kept apart.
func (s *Stitcher) Split(ctx context.Context, actor, profileID string, keys []Key, note string) (*AuditEntry, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("split: %w", FieldErrorf("identifiers", "name at least one identifier to move"))
	}
	return s.steward(ctx, "split", actor, ActionSplit, note, func(ctx context.Context, st *stitch, a *AuditEntry) error {
		p, err := st.liveProfile(ctx, profileID, "profileId")
		if err != nil {
			return err
		}
		all, err := st.members(ctx, s.Store, p)
		if err != nil {
			return err
		}
		move := map[Key]bool{}
		for _, k := range keys {
			n, ok := st.ids[k]
			if !ok || !slices.Contains(all, n) {
				return FieldErrorf("identifiers", "%s is not in profile %s", k, p.ID)
			}
			if move[k] {
				return FieldErrorf("identifiers", "%s is listed twice", k)
			}
			move[k] = true
		}
		if len(move) == len(all) {
			return FieldErrorf("identifiers", "would move every identifier: nothing would be left in %s", p.ID)
		}
		a.Cause, a.Anchor = p.ID, p.Anchor
		a.Before = []ProfileSnapshot{snapshot(p)}
		id, at := NewID("p", st.now)
		n := &Profile{ID: id, CreatedAt: at, Counts: map[string]int{}, Traits: map[string]Trait{}}
		st.profiles[id] = n
		var moved, kept []*Identifier
		for _, m := range all {
			if move[m.Key] {
				a.Moved = append(a.Moved, Move{Key: m.Key, From: m.Profile, To: n.ID})
				m.Profile = n.ID
				st.dirtyIDs[m.Key] = true
				moved = append(moved, m)
			} else {
				kept = append(kept, m)
			}
		}
		st.cut(a, move)
		return st.separate(ctx, s.Store, a, p, kept, n, moved)
	})
}

// separate finishes a split or an undone merge: the two profiles are kept
// apart, each is rebuilt from its own identifiers, and the entry records
// them as they are after.
func (st *stitch) separate(ctx context.Context, r Reader, a *AuditEntry, stays *Profile, staying []*Identifier, other *Profile, others []*Identifier) error {
	st.keepApart(stays, other)
	if err := st.rebuild(ctx, r, stays, staying); err != nil {
		return err
	}
	if err := st.rebuild(ctx, r, other, others); err != nil {
		return err
	}
	a.Profiles = []string{stays.ID, other.ID}
	a.After = []ProfileSnapshot{snapshot(stays), snapshot(other)}
	st.split = append(st.split, stays.ID, other.ID)
	return nil
}

func (st *stitch) liveProfile(ctx context.Context, id, field string) (*Profile, error) {
	if err := st.lockProfiles(ctx, []string{id}); err != nil {
		return nil, &Error{Kind: KindNotFound, Field: field, Msg: fmt.Sprintf("no profile %q", id)}
	}
	p := st.profiles[id]
	if p.MergedInto != "" {
		return nil, &Error{Kind: KindConflict, Field: field, Msg: fmt.Sprintf("profile %s was merged into %s; act on that profile", id, p.MergedInto)}
	}
	return p, nil
}

// rebuild recomputes a profile's counts, anchor and traits from its
// identifiers and the identify calls and records seen with them, in the
// order stitching applied them (timestamp, then event ID).
func (st *stitch) rebuild(ctx context.Context, r Reader, p *Profile, ids []*Identifier) error {
	p.Counts = map[string]int{}
	keys := make([]Key, len(ids))
	var anchor *Identifier
	for i, n := range ids {
		keys[i] = n.Key
		p.Counts[n.Type]++
		if n.Key == p.Anchor {
			anchor = n
		}
	}
	if anchor == nil {
		for _, n := range ids {
			if anchor == nil || n.FirstSeen.Before(anchor.FirstSeen) || n.FirstSeen.Equal(anchor.FirstSeen) && n.Key.Less(anchor.Key) {
				anchor = n
			}
		}
		p.Anchor = Key{}
		if anchor != nil {
			p.Anchor = anchor.Key
		}
	}
	var evs []*Event
	var after *EventCursor
	for {
		page, err := Timeline(ctx, r, keys, after, 1000)
		if err != nil {
			return err
		}
		for _, ev := range page {
			if (ev.Type == "identify" || ev.Type == "record") && len(ev.Traits) > 0 {
				evs = append(evs, ev)
			}
		}
		if len(page) < 1000 {
			break
		}
		last := page[len(page)-1]
		after = &EventCursor{Timestamp: last.Timestamp, ID: last.ID}
	}
	slices.Reverse(evs) // oldest first, as they were applied
	lead, hub, err := st.traitLeads(ctx, r, ids, evs)
	if err != nil {
		return err
	}
	member := make(map[Key]bool, len(keys))
	for _, k := range keys {
		member[k] = true
	}
	p.Traits = map[string]Trait{}
	for i, ev := range evs {
		// An identify call's traits went to the profile of its leading
		// identifier, not to every profile it touched (the family tablet's
		// other users keep their own names).
		if !lead[i] {
			continue
		}
		var traits map[string]any
		dec := json.NewDecoder(bytes.NewReader(ev.Traits))
		dec.UseNumber()
		if err := dec.Decode(&traits); err != nil {
			continue // not an object: stitching took no traits from it either
		}
		if st.nameGuarded(traits, p.Traits, ev.Identifiers, func(k Key) bool { return !member[k] && !hub[k] }) {
			continue
		}
		for path, v := range FlattenTraits(traits) {
			if cur, ok := p.Traits[path]; !ok || !cur.Time.After(ev.Timestamp) {
				p.Traits[path] = Trait{Value: v, Source: ev.Source, Time: ev.Timestamp}
			}
		}
	}
	st.touch(p)
	return nil
}

// traitLeads reports, for each event, whether stitching gave its traits to
// the profile of these identifiers: the event's leading identifier (the
// first in priority order that is not a hub, as group picks it) is one of
// them. It also returns which of the events' identifiers are hubs.
func (st *stitch) traitLeads(ctx context.Context, r Reader, ids []*Identifier, evs []*Event) ([]bool, map[Key]bool, error) {
	member, hub := map[Key]bool{}, map[Key]bool{}
	for _, n := range ids {
		member[n.Key] = true
		hub[n.Key] = n.Hub
	}
	var others []Key
	for _, ev := range evs {
		for _, k := range ev.Identifiers {
			if !member[k] && !slices.Contains(others, k) {
				others = append(others, k)
			}
		}
	}
	if len(others) > 0 {
		found, err := r.GetIdentifiers(ctx, others)
		if err != nil {
			return nil, nil, err
		}
		for i, n := range found {
			hub[others[i]] = n != nil && n.Hub
		}
	}
	out := make([]bool, len(evs))
	for i, ev := range evs {
		for _, k := range st.byPriority(ev.Identifiers) {
			if !hub[k] {
				out[i] = member[k]
				break
			}
		}
	}
	return out, hub, nil
}

// UndoMerge restores the two profiles of a merge: the absorbed profile
// comes back under its own ID with the identifiers it had then, plus those
// that arrived since and are joined only to its side; the edges between
// the sides are rejected and the two are kept apart.
func (s *Stitcher) UndoMerge(ctx context.Context, actor, mergeID, note string) (*AuditEntry, error) {
	return s.steward(ctx, "undo merge", actor, ActionUndoMerge, note, func(ctx context.Context, st *stitch, a *AuditEntry) error {
		m, err := s.Store.MergeEvent(ctx, mergeID)
		if err != nil {
			return err
		}
		// The profiles the absorbed one had absorbed are re-pointed below:
		// load them first.
		if err := st.lockProfiles(ctx, append([]string{m.Absorbed}, m.Group...)); err != nil {
			return err
		}
		ab := st.profiles[m.Absorbed]
		if ab.MergedInto == "" {
			return Errorf(KindConflict, "merge %s is already undone: %s is a profile of its own", m.ID, ab.ID)
		}
		later, err := s.Store.Merges(ctx, ab.ID)
		if err != nil {
			return err
		}
		for _, l := range later {
			if l.Absorbed == ab.ID && l.ID > m.ID {
				return Errorf(KindConflict, "%s was merged again later (merge %s): undo that first", ab.ID, l.ID)
			}
		}
		root := st.profiles[ab.MergedInto]
		for root.MergedInto != "" {
			root = st.profiles[root.MergedInto]
		}
		all, err := st.members(ctx, s.Store, root)
		if err != nil {
			return err
		}
		// The profiles it had absorbed come back with it, except those an
		// undo made live again since, even if a later merge took them in
		// again (into this profile or another).
		var regroup []string
		for _, id := range m.Group {
			if !slices.Contains(root.Absorbed, id) {
				continue
			}
			again, err := s.Store.Merges(ctx, id)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(again, func(l *MergeEvent) bool { return l.Absorbed == id && l.ID > m.ID }) {
				regroup = append(regroup, id)
			}
		}
		group := append([]string{ab.ID}, regroup...)
		a.Cause = m.ID
		a.Before = []ProfileSnapshot{snapshot(root)}
		// Identifiers stay with the profile they joined (new ones join where
		// the identifier they were seen with did), so the sides are exact.
		side := map[Key]bool{}
		var mine, theirs []*Identifier
		for _, n := range all {
			if slices.Contains(group, n.Profile) {
				side[n.Key] = true
				mine = append(mine, n)
			} else {
				theirs = append(theirs, n)
			}
		}
		// A split since may have taken one side's every identifier: undoing
		// would leave a live profile with none (as a split may not).
		if len(mine) == 0 || len(theirs) == 0 {
			empty := root.ID
			if len(mine) == 0 {
				empty = ab.ID
			}
			return Errorf(KindConflict, "undoing merge %s would leave %s with no identifiers (they were split off since); undo that split first", m.ID, empty)
		}
		st.cut(a, side)
		ab.MergedInto, ab.Absorbed = "", regroup
		for _, id := range regroup {
			st.profiles[id].MergedInto = ab.ID
			st.touch(st.profiles[id])
		}
		root.Absorbed = slices.DeleteFunc(root.Absorbed, func(id string) bool { return slices.Contains(group, id) })
		return st.separate(ctx, s.Store, a, root, theirs, ab, mine)
	})
}

// UndoSplit joins a split's profiles again: the identifiers it moved go
// back where they were, the edges it rejected get their status back, and
// the new profile's ID redirects to the original.
func (s *Stitcher) UndoSplit(ctx context.Context, actor, entryID, note string) (*AuditEntry, error) {
	return s.steward(ctx, "undo split", actor, ActionUndoSplit, note, func(ctx context.Context, st *stitch, a *AuditEntry) error {
		sp, err := s.Store.AuditEntry(ctx, entryID)
		if err != nil {
			return err
		}
		if sp.Action != ActionSplit || len(sp.Profiles) != 2 {
			return FieldErrorf("id", "%s is a %s, not a split", sp.ID, sp.Action)
		}
		orig, err := st.liveProfile(ctx, sp.Profiles[0], "id")
		if err != nil {
			return err
		}
		if err := st.lockProfiles(ctx, sp.Profiles[1:]); err != nil {
			return err
		}
		n := st.profiles[sp.Profiles[1]]
		if n.MergedInto != "" {
			return Errorf(KindConflict, "the split's profile %s has since been merged into %s", n.ID, n.MergedInto)
		}
		if len(n.Absorbed) > 0 {
			// Its identifiers' homes no longer tell the split's side from
			// what joined since.
			return Errorf(KindConflict, "the split's profile %s has since absorbed %s: undo that merge first", n.ID, n.Absorbed[0])
		}
		// Undo is a stack: a split, or an undo, since on either profile
		// moved identifiers the split's record does not know about.
		for _, id := range sp.Profiles {
			since, err := s.Store.AuditLog(ctx, AuditQuery{Profile: id, Limit: 100})
			if err != nil {
				return err
			}
			for _, e := range since {
				if e.ID > sp.ID && (e.Action == ActionSplit || e.Action == ActionUndoMerge || e.Action == ActionUndoSplit) {
					return Errorf(KindConflict, "%s (%s) changed profile %s after this split: undo it first", e.ID, e.Action, id)
				}
			}
		}
		kept, err := st.members(ctx, s.Store, orig)
		if err != nil {
			return err
		}
		moved, err := st.members(ctx, s.Store, n)
		if err != nil {
			return err
		}
		a.Cause = sp.ID
		a.Before = []ProfileSnapshot{snapshot(orig), snapshot(n)}
		for _, mv := range sp.Moved {
			if id := st.ids[mv.Key]; id != nil && id.Profile == n.ID {
				a.Moved = append(a.Moved, Move{Key: mv.Key, From: n.ID, To: mv.From})
				id.Profile = mv.From
				st.dirtyIDs[mv.Key] = true
			}
		}
		here := map[Key]bool{}
		for _, n := range append(slices.Clone(kept), moved...) {
			here[n.Key] = true
		}
		for _, was := range sp.Edges {
			pair := [2]Key{was.A, was.B}
			e := st.edges[pair]
			if e == nil || e.Decision == nil || e.Decision.Entry != sp.ID {
				continue // decided again since: that decision stands
			}
			if !here[pair[0]] || !here[pair[1]] {
				continue // an end has left both profiles since (a later split or repair): it stays cut
			}
			before := *e
			a.Edges = append(a.Edges, &before)
			restored := *was
			st.edges[pair] = &restored
			st.dirtyEdges[pair] = true
		}
		st.allowLink(orig, n)
		orig.Absorbed = append(orig.Absorbed, n.ID)
		orig.Absorbed = append(orig.Absorbed, n.Absorbed...)
		for _, id := range n.Absorbed {
			st.profiles[id].MergedInto = orig.ID
			st.touch(st.profiles[id])
		}
		n.MergedInto, n.Absorbed, n.Counts, n.Traits = orig.ID, nil, map[string]int{}, map[string]Trait{}
		orig.Anchor = sp.Anchor
		if err := st.rebuild(ctx, s.Store, orig, append(kept, moved...)); err != nil {
			return err
		}
		a.Profiles = []string{orig.ID, n.ID}
		a.After = []ProfileSnapshot{snapshot(orig)}
		return nil
	})
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func unbase64URL(s string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err == nil
}

func uniq(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
