package pebble

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

var (
	pSuppress = []byte("sup/") // + suppression hash (hex) → request ID
	pReceipt  = []byte("er/")  // + request ID → erase.Receipt
)

var _ erase.Backend = (*Store)(nil)

// Erasure returns the store's erasure operations.
func (s *Store) Erasure() erase.Store { return eraseStore{s} }

type eraseStore struct{ s *Store }

// eraser collects one erasure's deletions into a batch, counting them.
type eraser struct {
	s       *Store
	w       *batchWriter
	counts  map[string]int
	deleted map[string]bool // keys already deleted
}

func (e *eraser) del(kind string, k []byte) {
	if e.deleted[string(k)] {
		return
	}
	e.deleted[string(k)] = true
	e.w.del(k)
	if kind != "" {
		e.counts[kind]++
	}
}

// ErasePerson deletes the person in one synced batch, under the store's
// write lock: no transaction sees half of it.
func (g eraseStore) ErasePerson(_ context.Context, req erase.Request) (*erase.Erased, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &erase.Erased{Counts: map[string]int{}}
	live, err := g.live(req.Profile)
	if err != nil || live == nil || req.Keeps(live) {
		return out, wrapErase(err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	e := &eraser{s: s, w: &batchWriter{b: b}, counts: out.Counts, deleted: map[string]bool{}}
	group := append([]string{live.ID}, live.Absorbed...)
	out.Profiles = group

	// Identifiers (and their membership entries).
	var hashes [][]byte
	keys := map[graph.Key]bool{}
	for _, id := range group {
		err := s.scan(key(pMember, []byte(id+"/")), func(k, v []byte) error {
			e.del("", k)
			h := memberHash(v)
			var n graph.Identifier
			ok, err := s.getJSON(&n, pIdentifier, h)
			if err != nil || !ok {
				return err
			}
			keys[n.Key] = true
			hashes = append(hashes, h)
			e.del(erase.CountIdentifiers, key(pIdentifier, h))
			if req.Suppress != nil {
				sh := req.Suppress(n.Key)
				e.w.put(key(pSuppress, []byte(sh)), []byte(req.ID))
				out.Suppressed = append(out.Suppressed, sh)
			}
			return nil
		})
		if err != nil {
			return nil, wrapErase(err)
		}
	}
	for k := range keys {
		out.Identifiers = append(out.Identifiers, k)
	}
	slices.SortFunc(out.Identifiers, graph.Key.Compare)
	if err := e.edgesAndEvents(hashes); err != nil {
		return nil, wrapErase(err)
	}
	// Merges, steward entries and profiles.
	for _, id := range group {
		if err := e.byProfile(pProfMerge, pMerge, id, erase.CountMerges, func(v []byte) []string {
			var m graph.MergeEvent
			_ = json.Unmarshal(v, &m)
			return []string{m.Survivor, m.Absorbed}
		}); err != nil {
			return nil, wrapErase(err)
		}
		if err := e.byProfile(pProfAudit, pAudit, id, erase.CountAudit, func(v []byte) []string {
			var a graph.AuditEntry
			_ = json.Unmarshal(v, &a)
			return a.Profiles
		}); err != nil {
			return nil, wrapErase(err)
		}
		e.del(erase.CountProfiles, key(pProfile, []byte(id)))
		e.del("", key(pProfData, []byte(id)))
	}
	// Hub markings, blocking entries and search entries, read through the
	// erasure indexes (eraseindex.go): only the person's own entries.
	if err := e.indexed(group, hashes); err != nil {
		return nil, wrapErase(err)
	}
	last, err := segStore{s}.lastSequence()
	if err != nil {
		return nil, wrapErase(err)
	}
	exits, err := e.segments(group, req)
	if err != nil {
		return nil, wrapErase(err)
	}
	out.Exits = exits
	// Destinations that were sent the person hear of the erasure after its
	// exit records (sent state, destinations/sent.go).
	if err := e.markSentErased(group, req.ID, last+uint64(exits), req.At); err != nil {
		return nil, wrapErase(err)
	}
	if e.w.err != nil {
		return nil, wrapErase(e.w.err)
	}
	if err := s.commit(b, e.w.records); err != nil {
		return nil, &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: erase", Err: err}
	}
	s.suppressed.record(out.Suppressed, false)
	return out, nil
}

func wrapErase(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("pebble: erase: %w", err)
}

// live returns the live profile that id belongs to, nil when none is
// stored.
func (g eraseStore) live(id string) (*graph.Profile, error) {
	for range 64 {
		var p graph.Profile
		ok, err := g.s.getJSON(&p, pProfile, []byte(id))
		if err != nil || !ok {
			return nil, err
		}
		if p.MergedInto == "" {
			return &p, nil
		}
		id = p.MergedInto
	}
	return nil, fmt.Errorf("profile %s: merged-into chain too long", id)
}

// indexed deletes the hub markings of the identifiers (hashes), the
// profiles' blocking entries and the search entries of the profiles or
// identifiers, each with its erasure index entries.
func (e *eraser) indexed(group []string, hashes [][]byte) error {
	s := e.s
	for _, hx := range hashes {
		err := s.scan(key(pHubKey, hx), func(k, _ []byte) error {
			e.del("", k)
			e.del(erase.CountHubs, key(pHub, k[len(pHubKey)+len(hx):]))
			return nil
		})
		if err == nil {
			err = s.scan(key(pSearchKeyOwn, hx), e.delSearch)
		}
		if err != nil {
			return err
		}
	}
	for _, id := range group {
		prefix := key(pProfBlock, []byte(id+"/"))
		err := s.scan(prefix, func(k, _ []byte) error {
			e.del("", k)
			e.del(erase.CountBlocks, key(pBlock, k[len(prefix):], []byte(id)))
			return nil
		})
		if err == nil {
			err = s.scan(key(pSearchOwner, []byte(id+"/")), e.delSearch)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// delSearch deletes the search entry an erasure index entry (k, v) names:
// every prefix key and both index entries.
func (e *eraser) delSearch(k, v []byte) error {
	if e.deleted[string(k)] {
		return nil
	}
	var se searchEntry
	if err := jsonUnmarshal(v, &se); err != nil {
		return err
	}
	id := k[len(k)-searchIDLen:]
	for _, sk := range e.s.searchKeys(se, id) {
		e.del(erase.CountSearch, sk)
	}
	for _, ok := range searchOwnerEntries(se, id, e.s.searchIdentHash(se)) {
		e.del("", ok)
	}
	return nil
}

// edgesAndEvents deletes every edge touching the identifiers (with its
// adjacency and review-queue entries) and every event seen with them
// (with all its timeline entries).
func (e *eraser) edgesAndEvents(hashes [][]byte) error {
	s := e.s
	for _, hx := range hashes {
		err := s.scan(key(pNeighbour, hx), func(k, _ []byte) error {
			hy := k[len(pNeighbour)+len(hx):]
			e.del("", k)
			e.del("", key(pNeighbour, hy, hx))
			for _, ek := range [][]byte{key(pEdge, hx, hy), key(pEdge, hy, hx)} {
				v, ok, err := s.get(ek)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				var ed graph.Edge
				if err := json.Unmarshal(v, &ed); err != nil {
					return err
				}
				if ed.Status == graph.StatusPending {
					e.del("", key(pQueue, []byte(graph.QueueRank(&ed)), s.hash(ed.A), s.hash(ed.B)))
				}
				e.del(erase.CountEdges, ek)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The identifier's consent records (consent.go's layout).
		err = s.scan(key(pConsent, hx, []byte{0}), func(k, _ []byte) error {
			e.del(erase.CountConsent, k)
			return nil
		})
		if err != nil {
			return err
		}
		err = s.scan(key(pTimeline, hx), func(k, mh []byte) error {
			e.del("", k)
			ek := key(pEvent, mh)
			if e.deleted[string(ek)] {
				return nil
			}
			var ev graph.Event
			ok, err := s.getJSON(&ev, ek)
			if err != nil || !ok {
				return err
			}
			for _, ik := range ev.Identifiers {
				e.del("", timelineKey(s.hash(ik), &ev))
			}
			e.del("", eventTimeKey(ev.Timestamp, mh))
			e.del(erase.CountEvents, ek)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// byProfile deletes the records a profile's index (idx + profile + "/")
// lists under rec, with every index entry of each (profilesOf names the
// profiles a record is indexed under).
func (e *eraser) byProfile(idx, rec []byte, profile, kind string, profilesOf func([]byte) []string) error {
	return e.s.scan(key(idx, []byte(profile+"/")), func(k, id []byte) error {
		e.del("", k)
		rk := key(rec, id)
		if e.deleted[string(rk)] {
			return nil
		}
		v, ok, err := e.s.get(rk)
		if err != nil || !ok {
			return err
		}
		for _, p := range profilesOf(v) {
			e.del("", key(idx, []byte(p+"/"), id))
		}
		e.del(kind, rk)
		return nil
	})
}

// segments deletes the profiles' segment states, memberships, timers and
// pending data changes, and writes an exit record (reason "erased", or
// the request's) for every membership and a change to missing for every
// computed value, so that destinations hear that the person left.
func (e *eraser) segments(group []string, req erase.Request) (int, error) {
	g := segStore{e.s}
	seq, err := g.lastSequence()
	if err != nil {
		return 0, err
	}
	exits := 0
	deltas := map[string]int{}
	for _, id := range group {
		old, err := g.state(id)
		if err != nil {
			return 0, err
		}
		membershipDeltas(deltas, segments.SegmentMemberships(old.Entries), nil)
		for _, t := range segments.Timers(old) {
			e.del(erase.CountTimers, timerKey(t))
		}
		for k := range segments.SegmentMemberships(old.Entries) {
			e.del(erase.CountMemberships, memberKey(k, id))
		}
		for _, c := range segments.ErasureRecords(id, old.Entries, req.ExitReason(), req.At) {
			seq++
			c.Sequence = seq
			e.w.put(changeKey(seq), segments.EncodeChange(c))
			if c.Direction == segments.Exited {
				exits++
			}
		}
		sk := key(pSegState, []byte(id))
		if _, ok, err := e.s.get(sk); err != nil {
			return 0, err
		} else if ok {
			e.del(erase.CountSegmentStates, sk)
		}
		pk := key(pPending, []byte(id))
		if _, ok, err := e.s.get(pk); err != nil {
			return 0, err
		} else if ok {
			e.del(erase.CountPendingChanges, pk)
		}
	}
	return exits, e.s.addCounts(e.w, deltas)
}

// AddSuppressions stores the hashes, keeping existing entries.
func (g eraseStore) AddSuppressions(_ context.Context, request string, hashes []string) error {
	return g.write("add suppressions", func(b *cpebble.Batch) error {
		for _, h := range hashes {
			k := key(pSuppress, []byte(h))
			if _, ok, err := g.s.get(k); err != nil {
				return err
			} else if ok {
				continue
			}
			if err := b.Set(k, []byte(request), nil); err != nil {
				return err
			}
		}
		return nil
	}, hashes, false)
}

// RemoveSuppressions deletes the hashes.
func (g eraseStore) RemoveSuppressions(_ context.Context, hashes []string) error {
	return g.write("remove suppressions", func(b *cpebble.Batch) error {
		for _, h := range hashes {
			if err := b.Delete(key(pSuppress, []byte(h)), nil); err != nil {
				return err
			}
		}
		return nil
	}, hashes, true)
}

// write commits fn's batch and records the suppression change it makes.
func (g eraseStore) write(op string, fn func(*cpebble.Batch) error, hashes []string, removed bool) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	b := g.s.db.NewBatch()
	defer b.Close()
	if err := fn(b); err != nil {
		return fmt.Errorf("pebble: %s: %w", op, err)
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: " + op, Err: err}
	}
	g.s.suppressed.record(hashes, removed)
	return nil
}

// suppressionLog is the last change number and, for every hash changed
// since the store was opened, the change that left it as it is.
type suppressionLog struct {
	mu  sync.Mutex
	seq int64
	by  map[string]suppressionChange
}

type suppressionChange struct {
	seq     int64
	removed bool
}

func (l *suppressionLog) record(hashes []string, removed bool) {
	if len(hashes) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	if l.by == nil {
		l.by = map[string]suppressionChange{}
	}
	for _, h := range hashes {
		l.by[h] = suppressionChange{seq: l.seq, removed: removed}
	}
}

// SuppressionChanges reads the in-memory log.
func (g eraseStore) SuppressionChanges(_ context.Context, after int64) (erase.SuppressionChanges, error) {
	l := &g.s.suppressed
	l.mu.Lock()
	defer l.mu.Unlock()
	out := erase.SuppressionChanges{Seq: l.seq}
	if after >= l.seq {
		return out, nil
	}
	for h, c := range l.by {
		switch {
		case c.seq <= after:
		case c.removed:
			out.Removed = append(out.Removed, h)
		default:
			out.Added = append(out.Added, h)
		}
	}
	return out, nil
}

// Suppressions returns every suppression hash with its request.
func (g eraseStore) Suppressions(context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := g.s.scan(pSuppress, func(k, v []byte) error {
		out[string(bytes.TrimPrefix(k, pSuppress))] = string(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: suppressions: %w", err)
	}
	return out, nil
}

// SuppressionsOf gets each hash's key.
func (g eraseStore) SuppressionsOf(_ context.Context, hashes []string) (map[string]string, error) {
	out := map[string]string{}
	for _, h := range hashes {
		v, ok, err := g.s.get(key(pSuppress, []byte(h)))
		if err != nil {
			return nil, fmt.Errorf("pebble: suppressions of: %w", err)
		}
		if ok {
			out[h] = string(v)
		}
	}
	return out, nil
}

// PutReceipt stores a receipt.
func (g eraseStore) PutReceipt(_ context.Context, r *erase.Receipt) error {
	if err := g.s.putSync(key(pReceipt, []byte(r.ID)), r, "an erasure receipt"); err != nil {
		return fmt.Errorf("pebble: put receipt: %w", err)
	}
	return nil
}

// Receipt returns one receipt.
func (g eraseStore) Receipt(_ context.Context, id string) (*erase.Receipt, error) {
	r := &erase.Receipt{}
	ok, err := g.s.getJSON(r, pReceipt, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("pebble: receipt: %w", err)
	}
	if !ok {
		return nil, graph.Errorf(graph.KindNotFound, "no erasure request %q", id)
	}
	return r, nil
}
