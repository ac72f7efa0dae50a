package pebble

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

// Update runs fn holding the store's write lock; the changes it applies are
// committed in one synced batch, so they survive kill -9 once Update returns.
func (s *Store) Update(ctx context.Context, fn func(context.Context, graph.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn(ctx, &tx{s: s, loadedProfile: map[graph.Key]string{}})
}

type tx struct {
	s *Store
	// loadedProfile remembers each identifier's stored profile, so that
	// Apply can move its membership entry when the profile changes.
	loadedProfile map[graph.Key]string
	applied       bool
}

func (t *tx) LockMessages(_ context.Context, ids []string) (map[string]bool, error) {
	seen := map[string]bool{}
	for _, id := range ids {
		_, ok, err := t.s.get(pMessage, t.s.hash(graph.Key{Type: "message", Value: id}))
		if err != nil {
			return nil, fmt.Errorf("pebble: lock messages: %w", err)
		}
		if ok {
			seen[id] = true
		}
	}
	return seen, nil
}

func (t *tx) LockIdentifiers(_ context.Context, keys []graph.Key) (map[graph.Key]*graph.Identifier, error) {
	out := make(map[graph.Key]*graph.Identifier, len(keys))
	for _, k := range keys {
		n := &graph.Identifier{}
		ok, err := t.s.getJSON(n, pIdentifier, t.s.hash(k))
		if err != nil {
			return nil, fmt.Errorf("pebble: lock identifiers: %w", err)
		}
		if ok {
			out[k] = n
			t.loadedProfile[k] = n.Profile
		}
	}
	return out, nil
}

func (t *tx) LockProfiles(_ context.Context, ids []string) (map[string]*graph.Profile, error) {
	out := make(map[string]*graph.Profile, len(ids))
	for _, id := range ids {
		p := &graph.Profile{}
		ok, err := t.s.getJSON(p, pProfile, []byte(id))
		if err != nil {
			return nil, fmt.Errorf("pebble: lock profiles: %w", err)
		}
		if ok {
			out[id] = p
		}
	}
	return out, nil
}

func (t *tx) Edges(_ context.Context, pairs [][2]graph.Key) (map[[2]graph.Key]*graph.Edge, error) {
	out := map[[2]graph.Key]*graph.Edge{}
	for _, p := range pairs {
		e := &graph.Edge{}
		ok, err := t.s.getJSON(e, pEdge, t.s.hash(p[0]), t.s.hash(p[1]))
		if err != nil {
			return nil, fmt.Errorf("pebble: edges: %w", err)
		}
		if ok {
			out[p] = e
		}
	}
	return out, nil
}

func (t *tx) Apply(_ context.Context, c *graph.Changes) error {
	if t.applied {
		return fmt.Errorf("pebble: apply: called twice in one transaction")
	}
	t.applied = true
	b := t.s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	for _, n := range c.Identifiers {
		h := t.s.hash(n.Key)
		w.putJSON(key(pIdentifier, h), n)
		if old, ok := t.loadedProfile[n.Key]; ok && old != n.Profile {
			w.del(key(pMember, []byte(old+"/"), h))
		}
		w.put(key(pMember, []byte(n.Profile+"/"), h), h)
	}
	for _, e := range c.Edges {
		ha, hb := t.s.hash(e.A), t.s.hash(e.B)
		w.putJSON(key(pEdge, ha, hb), e)
		w.put(key(pNeighbour, ha, hb), nil)
		w.put(key(pNeighbour, hb, ha), nil)
	}
	for _, p := range c.Profiles {
		w.putJSON(key(pProfile, []byte(p.ID)), p)
	}
	for _, m := range c.Merges {
		w.putJSON(key(pMerge, []byte(m.ID)), m)
		w.put(key(pProfMerge, []byte(m.Survivor+"/"+m.ID)), []byte(m.ID))
		w.put(key(pProfMerge, []byte(m.Absorbed+"/"+m.ID)), []byte(m.ID))
	}
	for _, h := range c.Hubs {
		w.putJSON(key(pHub, []byte(h.ID)), h)
	}
	for _, ev := range c.Events {
		w.putJSON(key(pEvent, []byte(ev.ID)), ev)
		w.put(key(pMessage, t.s.hash(graph.Key{Type: "message", Value: ev.MessageID})), []byte(ev.ID))
		for _, k := range ev.Identifiers {
			w.put(timelineKey(t.s.hash(k), ev), []byte(ev.ID))
		}
	}
	if w.err != nil {
		return fmt.Errorf("pebble: apply: %w", w.err)
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: apply", Err: err}
	}
	return nil
}

// timelineKey orders an identifier's events by timestamp, then by ID.
func timelineKey(h []byte, ev *graph.Event) []byte {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(ev.Timestamp.UnixNano()))
	return key(pTimeline, h, ts[:], []byte(ev.ID))
}

type batchWriter struct {
	b   *cpebble.Batch
	err error
}

func (w *batchWriter) put(k, v []byte) {
	if w.err == nil {
		w.err = w.b.Set(k, v, nil)
	}
}

func (w *batchWriter) del(k []byte) {
	if w.err == nil {
		w.err = w.b.Delete(k, nil)
	}
}

func (w *batchWriter) putJSON(k []byte, v any) {
	data, err := json.Marshal(v)
	if err != nil && w.err == nil {
		w.err = err
	}
	w.put(k, data)
}
