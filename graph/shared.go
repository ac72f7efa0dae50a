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
		// review; everything else moves, each connected group of it to a
		// profile of its own (a device with its sessions, or another person
		// joined to this one only through a device).
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
		var rest []*Identifier
		for _, m := range all {
			if !core[m.Key] {
				rest = append(rest, m)
			}
		}
		remaining := slices.Clone(all)
		for _, group := range st.components(rest) {
			a := &AuditEntry{Actor: "system", Action: ActionSplit, Cause: p.ID, Anchor: p.Anchor,
				Note: fmt.Sprintf("%s is shared (seen with %d user IDs): the profile it joined is repaired", k, n.Users)}
			a.ID, a.At = NewID("audit", st.now)
			a.Before = []ProfileSnapshot{snapshot(p)}
			in := map[Key]bool{}
			for _, m := range group {
				in[m.Key] = true
			}
			for _, pair := range held {
				if !in[pair[0]] && !in[pair[1]] {
					continue
				}
				e := st.edges[pair]
				before := *e
				a.Edges = append(a.Edges, &before)
				e.Status, e.Reason, e.Decision = StatusPending, ReasonShared, st.decision(a)
				st.dirtyEdges[pair] = true
			}
			id, at := NewID("p", st.now)
			np := &Profile{ID: id, CreatedAt: at, Counts: map[string]int{}, Traits: map[string]Trait{}}
			st.profiles[id] = np
			for _, m := range group {
				a.Moved = append(a.Moved, Move{Key: m.Key, From: m.Profile, To: np.ID})
				m.Profile = np.ID
				st.dirtyIDs[m.Key] = true
			}
			// What has not moved yet stays for now: after the last group,
			// the person alone is left in p.
			remaining = slices.DeleteFunc(remaining, func(m *Identifier) bool { return in[m.Key] })
			if err := st.separate(ctx, s.Store, a, p, remaining, np, group); err != nil {
				return Result{}, err
			}
			for _, pair := range held {
				if in[pair[0]] || in[pair[1]] {
					st.edges[pair].Impact = size(p) + size(np)
				}
			}
			st.changes.Audit = append(st.changes.Audit, a)
		}
		changed = true
		return Result{}, st.apply(ctx)
	})
	return changed, err
}

// trusted orders strong identifiers: priority of their type, then the
// first seen, then the key.
func (st *stitch) trusted(a, b *Identifier) bool {
	if ra, rb := st.cfg.rank(a.Type), st.cfg.rank(b.Type); ra != rb {
		return ra < rb
	}
	if !a.FirstSeen.Equal(b.FirstSeen) {
		return a.FirstSeen.Before(b.FirstSeen)
	}
	return a.Key.Less(b.Key)
}

// personCore returns the person a profile is about: its most trusted
// strong identifier (a user ID before a CRM ID, then the first seen) and
// what accepted edges connect to it without passing through a hub or
// shared identifier; the devices other people also used are not in it.
func (st *stitch) personCore(all []*Identifier) map[Key]bool {
	in := map[Key]bool{}
	var top *Identifier
	for _, m := range all {
		if !m.Hub {
			in[m.Key] = true
			if IsStrong(m.Type) && (top == nil || st.trusted(m, top)) {
				top = m
			}
		}
	}
	core := map[Key]bool{}
	if top == nil {
		return core
	}
	adj := map[Key][]Key{}
	for pair, e := range st.edges {
		if e.Status == StatusAccepted && in[pair[0]] && in[pair[1]] {
			adj[pair[0]] = append(adj[pair[0]], pair[1])
			adj[pair[1]] = append(adj[pair[1]], pair[0])
		}
	}
	core[top.Key] = true
	for queue := []Key{top.Key}; len(queue) > 0; queue = queue[1:] {
		for _, y := range adj[queue[0]] {
			if !core[y] {
				core[y] = true
				queue = append(queue, y)
			}
		}
	}
	return core
}

// components groups identifiers by the accepted edges among them.
func (st *stitch) components(ids []*Identifier) [][]*Identifier {
	in := map[Key]*Identifier{}
	for _, m := range ids {
		in[m.Key] = m
	}
	adj := map[Key][]Key{}
	for pair, e := range st.edges {
		if e.Status == StatusAccepted && in[pair[0]] != nil && in[pair[1]] != nil {
			adj[pair[0]] = append(adj[pair[0]], pair[1])
			adj[pair[1]] = append(adj[pair[1]], pair[0])
		}
	}
	seen := map[Key]bool{}
	var out [][]*Identifier
	for _, m := range ids { // in the members' order: the groups come out the same every time
		if seen[m.Key] {
			continue
		}
		seen[m.Key] = true
		group := []*Identifier{m}
		for i := 0; i < len(group); i++ {
			for _, y := range adj[group[i].Key] {
				if !seen[y] {
					seen[y] = true
					group = append(group, in[y])
				}
			}
		}
		out = append(out, group)
	}
	return out
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
