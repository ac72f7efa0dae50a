package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	json "github.com/segmentio/encoding/json"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/retention"
)

// Update runs fn holding the store's write lock; the changes it applies are
// committed in one synced batch, so they survive kill -9 once Update returns.
func (s *Store) Update(ctx context.Context, fn func(context.Context, graph.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &tx{s: s, loadedProfile: map[graph.Key]string{}, loadedEdges: map[[2]graph.Key][]byte{}, loadedNames: map[string][]string{}, hashes: map[graph.Key][]byte{}}
	defer t.close()
	return fn(ctx, t)
}

type tx struct {
	s *Store
	// loadedProfile remembers each identifier's stored profile, so that
	// Apply can move its membership entry when the profile changes.
	loadedProfile map[graph.Key]string
	// loadedEdges holds each loaded edge's review-queue key (nil when it
	// was not pending), so that Apply can move it.
	loadedEdges map[[2]graph.Key][]byte
	// loadedNames holds each loaded profile's name traits, so that Apply
	// indexes only names that are new.
	loadedNames map[string][]string
	// hashes memoises identifier hashes: a key is hashed when locked, when
	// written, for each of its edges and for each of its events.
	hashes  map[graph.Key][]byte
	applied bool
	// it serves the transaction's point reads. Unlike DB.Get, an iterator
	// can consult the bottom level's bloom filters, and most lookups here
	// are for keys that do not exist (new message IDs, new identifiers).
	it *cpebble.Iterator
	// fillGen is the cache generation when it was opened; values it reads
	// are cached only while no write has begun since (fillOK).
	fillGen uint64
	fillOK  bool
}

func (t *tx) close() {
	if t.it != nil {
		t.it.Close()
	}
}

// get reads one key (cache first); ok is false when it is absent.
func (t *tx) get(k []byte) ([]byte, bool, error) {
	if v, ok := t.s.records.Get(string(k)); ok {
		return v, true, nil
	}
	if t.it == nil {
		var err error
		t.fillGen, t.fillOK = t.s.readGen()
		if t.it, err = t.s.db.NewIter(&cpebble.IterOptions{UseL6Filters: true}); err != nil {
			return nil, false, err
		}
	}
	if !t.it.SeekPrefixGE(k) || !bytes.Equal(t.it.Key(), k) {
		return nil, false, t.it.Error()
	}
	v := bytes.Clone(t.it.Value())
	if cached(k) && t.fillOK {
		t.s.fill(t.fillGen, k, v)
	}
	return v, true, nil
}

func (t *tx) getJSON(dst any, k []byte) (bool, error) {
	v, ok, err := t.get(k)
	if err != nil || !ok {
		return ok, err
	}
	return true, jsonUnmarshal(v, dst)
}

func (t *tx) hash(k graph.Key) []byte {
	h, ok := t.hashes[k]
	if !ok {
		h = t.s.hash(k)
		t.hashes[k] = h
	}
	return h
}

func (t *tx) LockMessages(_ context.Context, ids []string) (map[string]bool, error) {
	seen := map[string]bool{}
	for _, id := range ids {
		_, ok, err := t.get(key(pEvent, t.s.messageHash(id)))
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
		ok, err := t.getJSON(n, key(pIdentifier, t.hash(k)))
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
		ok, err := t.getJSON(p, key(pProfile, []byte(id)))
		if err != nil {
			return nil, fmt.Errorf("pebble: lock profiles: %w", err)
		}
		if ok {
			out[id] = p
			t.loadedNames[id] = p.Names()
		}
	}
	return out, nil
}

func (t *tx) Edges(_ context.Context, pairs [][2]graph.Key) (map[[2]graph.Key]*graph.Edge, error) {
	out := map[[2]graph.Key]*graph.Edge{}
	for _, p := range pairs {
		e := &graph.Edge{}
		ok, err := t.getJSON(e, key(pEdge, t.hash(p[0]), t.hash(p[1])))
		if err != nil {
			return nil, fmt.Errorf("pebble: edges: %w", err)
		}
		if ok {
			out[p] = e
			t.loadedEdges[p] = t.queueKey(e)
		}
	}
	return out, nil
}

func (s *Store) blockPrefix(k string) []byte {
	return key(pBlock, s.hash(graph.Key{Type: "block", Value: k})[:16])
}

// Candidates reads up to limit+1 profile IDs filed under each key: one
// iterator, seeking to each key's prefix in order (a batch's keys are
// many).
func (t *tx) Candidates(_ context.Context, keys []string, limit int) (map[string][]string, error) {
	out := make(map[string][]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	type block struct {
		key    string
		prefix []byte
	}
	blocks := make([]block, len(keys))
	for i, k := range keys {
		blocks[i] = block{k, t.s.blockPrefix(k)}
	}
	slices.SortFunc(blocks, func(a, b block) int { return bytes.Compare(a.prefix, b.prefix) })
	it, err := t.s.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("pebble: candidates: %w", err)
	}
	defer it.Close()
	for _, b := range blocks {
		var ids []string
		end := prefixEnd(b.prefix)
		for valid := it.SeekGE(b.prefix); valid && len(ids) <= limit && bytes.Compare(it.Key(), end) < 0; valid = it.Next() {
			ids = append(ids, string(it.Value()))
		}
		out[b.key] = ids
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: candidates: %w", err)
	}
	return out, nil
}

func (t *tx) Apply(_ context.Context, c *graph.Changes) error {
	if t.applied {
		return fmt.Errorf("pebble: apply: called twice in one transaction")
	}
	t.applied = true
	if err := c.Validate(); err != nil {
		return fmt.Errorf("pebble: apply: %w", err)
	}
	b := t.s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	for _, n := range c.Identifiers {
		h := t.hash(n.Key)
		w.putJSON(key(pIdentifier, h), n)
		old, existed := t.loadedProfile[n.Key]
		if existed && old != n.Profile {
			w.del(key(pMember, []byte(old+"/"), h))
		}
		if !existed || old != n.Profile {
			w.put(key(pMember, []byte(n.Profile+"/"), h), memberValue(h, n.Key))
		}
		if !existed {
			t.indexSearch(w, searchEntry{Profile: n.Profile, Field: n.Type, Value: n.Value})
		}
	}
	for _, e := range c.Edges {
		ha, hb := t.hash(e.A), t.hash(e.B)
		w.putJSON(key(pEdge, ha, hb), e)
		old, loaded := t.loadedEdges[graph.Pair(e.A, e.B)]
		if !loaded {
			w.put(key(pNeighbour, ha, hb), nil)
			w.put(key(pNeighbour, hb, ha), nil)
		}
		if q := t.queueKey(e); !bytes.Equal(old, q) {
			if old != nil {
				w.del(old)
			}
			if q != nil {
				w.put(q, nil)
			}
		}
	}
	for _, p := range c.Profiles {
		w.putJSON(key(pProfile, []byte(p.ID)), p)
		putDataColumn(w, p)
		for _, name := range p.Names() {
			if p.MergedInto == "" && !slices.Contains(t.loadedNames[p.ID], name) {
				t.indexSearch(w, searchEntry{Profile: p.ID, Field: "name", Value: name})
			}
		}
	}
	for _, m := range c.Merges {
		w.putJSON(key(pMerge, []byte(m.ID)), m)
		w.put(key(pProfMerge, []byte(m.Survivor+"/"+m.ID)), []byte(m.ID))
		w.put(key(pProfMerge, []byte(m.Absorbed+"/"+m.ID)), []byte(m.ID))
	}
	for _, a := range c.Audit {
		w.putJSON(key(pAudit, []byte(a.ID)), a)
		for _, p := range a.Profiles {
			w.put(key(pProfAudit, []byte(p+"/"+a.ID)), []byte(a.ID))
		}
	}
	for _, h := range c.Hubs {
		w.putJSON(key(pHub, []byte(h.ID)), h)
		w.put(hubKeyEntry(t.hash(h.Key), h.ID), nil)
	}
	for _, b := range c.Blocks {
		for _, k := range b.Keys {
			prefix := t.s.blockPrefix(k)
			w.put(key(prefix, []byte(b.Profile)), []byte(b.Profile))
			w.put(profBlockEntry(b.Profile, prefix[len(pBlock):]), nil)
		}
	}
	for _, ev := range c.Events {
		mh := t.s.messageHash(ev.MessageID)
		w.putJSON(key(pEvent, mh), ev)
		w.put(eventTimeKey(ev.Timestamp, mh), []byte(retention.EventType(ev)))
		for _, k := range ev.Identifiers {
			w.put(timelineKey(t.hash(k), ev), mh)
		}
	}
	if err := t.pendData(w, c.DataChanges); err != nil {
		return fmt.Errorf("pebble: apply: %w", err)
	}
	if w.err != nil {
		return fmt.Errorf("pebble: apply: %w", w.err)
	}
	if err := t.s.commit(b, w.records); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: apply", Err: err}
	}
	return nil
}

// queueKey is a pending edge's review-queue entry: its rank, then the
// pair's hashes; nil for an edge that is not pending.
func (t *tx) queueKey(e *graph.Edge) []byte {
	if e.Status != graph.StatusPending {
		return nil
	}
	return key(pQueue, []byte(graph.QueueRank(e)), t.hash(e.A), t.hash(e.B))
}

// timelineKey orders an identifier's events by timestamp, then by ID.
func timelineKey(h []byte, ev *graph.Event) []byte {
	return key(pTimeline, h, timestampBytes(ev.Timestamp), []byte(ev.ID))
}

// timestampBytes encodes t so that byte order is time order, before 1970
// too (the sign bit is flipped).
func timestampBytes(t time.Time) []byte {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(t.UnixNano())^(1<<63))
	return ts[:]
}

type batchWriter struct {
	b   *cpebble.Batch
	err error
	// records are the cacheable values written (nil: deleted), for the
	// cache once the batch has committed.
	records []cacheRecord
}

func (w *batchWriter) put(k, v []byte) {
	if w.err == nil {
		w.err = w.b.Set(k, v, nil)
	}
	if cached(k) {
		w.records = append(w.records, cacheRecord{k, v})
	}
}

func (w *batchWriter) del(k []byte) {
	if w.err == nil {
		w.err = w.b.Delete(k, nil)
	}
	if cached(k) {
		w.records = append(w.records, cacheRecord{k, nil})
	}
}

func (w *batchWriter) putJSON(k []byte, v any) {
	data, err := json.Marshal(v)
	if err != nil && w.err == nil {
		w.err = err
	}
	w.put(k, data)
}
