package graph

import (
	"context"
	"fmt"
	"slices"
)

// repair separates an identifier found shared (a family tablet seen with a
// second user ID) from the profile it joined while it looked personal, as
// a steward's split would: its edges to strong identifiers of that profile
// go back to pending with reason "shared", for a steward to review, and
// the identifiers held to the profile only through it (its own anonymous
// sessions, its device ID) move with it to a new profile; traits of both
// sides are recomputed from their own identify calls. The entry is audited
// with actor "system" and can be undone like a split (UndoSplit). It
// reports whether anything changed: a repaired identifier needs no more.
func (s *Stitcher) repair(ctx context.Context, k Key) (bool, error) {
	changed := false
	_, err := s.update(ctx, func(ctx context.Context, st *stitch) (Result, error) {
		changed = false
		if err := st.loadIdentifiers(ctx, []Key{k}); err != nil {
			return Result{}, err
		}
		n := st.ids[k]
		if !n.Hub || n.Profile == "" {
			return Result{}, nil
		}
		p := st.root(n)
		all, err := st.members(ctx, s.Store, p)
		if err != nil {
			return Result{}, err
		}
		core := st.personCore(all)
		if len(core) == 0 {
			return Result{}, nil // a device's own profile: no person to repair
		}
		// The edges that joined shared identifiers to the person go back to
		// review; the shared identifiers, and what only they held, move.
		var held [][2]Key
		for pair, e := range st.edges {
			a, b := st.ids[pair[0]], st.ids[pair[1]]
			if e.Status == StatusAccepted && a != nil && b != nil &&
				(a.Hub && core[b.Key] || b.Hub && core[a.Key]) {
				held = append(held, pair)
			}
		}
		if len(held) == 0 {
			return Result{}, nil // repaired before
		}
		slices.SortFunc(held, comparePairs)
		a := &AuditEntry{Actor: "system", Action: ActionSplit, Cause: p.ID, Anchor: p.Anchor,
			Note: fmt.Sprintf("%s is shared (seen with %d user IDs): the profile it joined is repaired", k, n.Users)}
		a.ID, a.At = NewID("audit", st.now)
		a.Before = []ProfileSnapshot{snapshot(p)}
		for _, pair := range held {
			e := st.edges[pair]
			before := *e
			a.Edges = append(a.Edges, &before)
			e.Status, e.Reason, e.Decision = StatusPending, ReasonShared, st.decision(a)
			st.dirtyEdges[pair] = true
		}
		move := map[Key]bool{}
		for _, m := range all {
			if !core[m.Key] {
				move[m.Key] = true
			}
		}
		if len(move) == 0 {
			return Result{}, nil
		}
		id, at := NewID("p", st.now)
		np := &Profile{ID: id, CreatedAt: at, Counts: map[string]int{}, Traits: map[string]Trait{}}
		st.profiles[id] = np
		var moved, kept []*Identifier
		for _, m := range all {
			if move[m.Key] {
				a.Moved = append(a.Moved, Move{Key: m.Key, From: m.Profile, To: np.ID})
				m.Profile = np.ID
				st.dirtyIDs[m.Key] = true
				moved = append(moved, m)
			} else {
				kept = append(kept, m)
			}
		}
		if err := st.separate(ctx, s.Store, a, p, kept, np, moved); err != nil {
			return Result{}, err
		}
		for _, pair := range held {
			st.edges[pair].Impact = size(p) + size(np)
		}
		st.changes.Audit = append(st.changes.Audit, a)
		changed = true
		return Result{}, st.apply(ctx)
	})
	return changed, err
}

// personCore returns the identifiers of a profile that accepted edges
// connect to its strong identifiers (user and CRM IDs) without passing
// through a hub or shared identifier: the person, as opposed to the
// devices other people also used.
func (st *stitch) personCore(all []*Identifier) map[Key]bool {
	in := map[Key]bool{}
	for _, m := range all {
		if !m.Hub {
			in[m.Key] = true
		}
	}
	adj := map[Key][]Key{}
	for pair, e := range st.edges {
		if e.Status == StatusAccepted && in[pair[0]] && in[pair[1]] {
			adj[pair[0]] = append(adj[pair[0]], pair[1])
			adj[pair[1]] = append(adj[pair[1]], pair[0])
		}
	}
	core := map[Key]bool{}
	var queue []Key
	for _, m := range all {
		if in[m.Key] && IsStrong(m.Type) {
			core[m.Key] = true
			queue = append(queue, m.Key)
		}
	}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range adj[x] {
			if !core[y] {
				core[y] = true
				queue = append(queue, y)
			}
		}
	}
	return core
}

// RepairShared repairs every profile that an identifier marked shared (or
// a hub) still holds: what Ingest does after each marking, run again at
// start-up so that a crash between a marking and its repair loses nothing.
func (s *Stitcher) RepairShared(ctx context.Context) (int, error) {
	hubs, err := s.Store.Hubs(ctx)
	if err != nil {
		return 0, fmt.Errorf("repair shared: %w", err)
	}
	n := 0
	for _, h := range hubs {
		ok, err := s.repair(ctx, h.Key)
		if err != nil {
			return n, fmt.Errorf("repair shared %s: %w", h.Key, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}
