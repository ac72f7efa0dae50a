package pebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// Segments' key prefixes (see store.go for the graph's).
var (
	pSegDef    = []byte("sd/") // + kind name + "/" + key → segments.Definition
	pSegVer    = []byte("sv/") // + kind name + "/" + key + 0 + version (4 bytes, big-endian) → a replaced segments.Definition
	pSegState  = []byte("ss/") // + profile ID → segments.ProfileState
	pSegMember = []byte("sm/") // + segment key + 0 + profile ID → profile ID: members in ID order
	pSegChange = []byte("sc/") // + sequence (8 bytes, big-endian) → segments.ChangeRecord
	pSegTimer  = []byte("st/") // + deadline + profile ID + 0 + reference → segments.Timer
	pPending   = []byte("sp/") // + profile ID → segments.Pending: data changes not yet evaluated
)

var _ segments.Backend = (*Store)(nil)

// Segments returns the store of segments, kept in the same database as the
// graph (and written under the same lock).
func (s *Store) Segments() segments.Store { return segStore{s} }

type segStore struct{ s *Store }

func defKey(r segments.Ref) []byte {
	return key(pSegDef, []byte(segments.KindName(r.Kind)+"/"+r.Key))
}

// versionsPrefix starts the keys of a definition's replaced versions.
func versionsPrefix(r segments.Ref) []byte {
	return key(pSegVer, []byte(segments.KindName(r.Kind)+"/"+r.Key), []byte{0})
}

// versionKey is the key of a replaced version of a definition.
func versionKey(r segments.Ref, version int) []byte {
	return binary.BigEndian.AppendUint32(versionsPrefix(r), uint32(version))
}

func memberKey(segment, profile string) []byte {
	return key(pSegMember, []byte(segment), []byte{0}, []byte(profile))
}

func timerKey(t segments.Timer) []byte {
	return key(pSegTimer, timestampBytes(t.At), []byte(t.Profile), []byte{0}, []byte(segments.RefString(t.Ref)))
}

func (g segStore) definition(r segments.Ref) (*segments.Definition, error) {
	d := &segments.Definition{}
	ok, err := g.s.getJSON(d, defKey(r))
	if err != nil || !ok {
		return nil, err
	}
	return d, nil
}

// PutDefinition stores a definition's next version.
func (g segStore) PutDefinition(_ context.Context, d *segments.Definition, expected int) (*segments.Definition, error) {
	if err := segments.CheckPut(d, expected); err != nil {
		return nil, fmt.Errorf("pebble: put definition: %w", err)
	}
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	old, err := g.definition(d.Ref())
	if err != nil {
		return nil, fmt.Errorf("pebble: put definition: %w", err)
	}
	if err := segments.CheckVersion(d.Ref(), old, expected); err != nil {
		return nil, fmt.Errorf("pebble: put definition: %w", err)
	}
	next := *d
	next.Version = expected + 1
	b := g.s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	if old != nil {
		next.CreatedAt = old.CreatedAt
		w.putJSON(versionKey(d.Ref(), old.Version), old) // kept in the history
	}
	w.putJSON(defKey(d.Ref()), &next)
	if err := g.commitWrites(w); err != nil {
		return nil, fmt.Errorf("pebble: put definition: %w", err)
	}
	return &next, nil
}

// SetStatus changes the status of one version of a definition.
func (g segStore) SetStatus(_ context.Context, r segments.Ref, version int, st segments.Status) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	d, err := g.definition(r)
	if err != nil {
		return fmt.Errorf("pebble: set status: %w", err)
	}
	if err := segments.CheckStored(r, d, version); err != nil {
		return fmt.Errorf("pebble: set status: %w", err)
	}
	d.Status = st
	if err := g.putJSON(defKey(r), d); err != nil {
		return fmt.Errorf("pebble: set status: %w", err)
	}
	return nil
}

// DeleteDefinition deletes one version of a definition.
func (g segStore) DeleteDefinition(_ context.Context, r segments.Ref, expected int) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	d, err := g.definition(r)
	if err != nil {
		return fmt.Errorf("pebble: delete definition: %w", err)
	}
	if err := segments.CheckStored(r, d, expected); err != nil {
		return fmt.Errorf("pebble: delete definition: %w", err)
	}
	// A segment's member index goes with it, as its IN_SEGMENT
	// relationships do on Neo4j.
	b := g.s.db.NewBatch()
	defer b.Close()
	err = b.Delete(defKey(r), nil)
	if err == nil {
		err = b.DeleteRange(versionsPrefix(r), prefixEnd(versionsPrefix(r)), nil)
	}
	if err == nil && r.Kind == lang.KindSegment {
		err = b.DeleteRange(memberKey(r.Key, ""), prefixEnd(memberKey(r.Key, "")), nil)
	}
	if err == nil && r.Kind == lang.KindSegment {
		err = deleteSegmentSizes(b, r.Key)
	}
	if err == nil {
		err = g.s.commit(b, []cacheRecord{{defKey(r), nil}})
	}
	if err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: delete definition", Err: err}
	}
	return nil
}

func (g segStore) putJSON(k []byte, v any) error {
	b := g.s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	w.putJSON(k, v)
	return g.commitWrites(w)
}

// commitWrites commits a batch writer's batch.
func (g segStore) commitWrites(w *batchWriter) error {
	if w.err != nil {
		return w.err
	}
	if err := g.s.commit(w.b, w.records); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Err: err}
	}
	return nil
}

// Versions pages through a definition's versions, newest first.
func (g segStore) Versions(_ context.Context, r segments.Ref, before, limit int) ([]*segments.Definition, error) {
	d, err := g.definition(r)
	if err != nil {
		return nil, fmt.Errorf("pebble: definition versions: %w", err)
	}
	if d == nil {
		return nil, segments.NotFound(r)
	}
	current, below, err := segments.VersionsBound(d, before, limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: definition versions: %w", err)
	}
	var out []*segments.Definition
	if current {
		out = append(out, d)
	}
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: versionsPrefix(r), UpperBound: versionKey(r, below)})
	if err != nil {
		return nil, fmt.Errorf("pebble: definition versions: %w", err)
	}
	defer it.Close()
	for it.Last(); it.Valid() && len(out) < limit; it.Prev() {
		v := &segments.Definition{}
		if err := jsonUnmarshal(it.Value(), v); err != nil {
			return nil, fmt.Errorf("pebble: definition versions: %w", err)
		}
		out = append(out, v)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: definition versions: %w", err)
	}
	return out, nil
}

// Definition returns one definition.
func (g segStore) Definition(_ context.Context, r segments.Ref) (*segments.Definition, error) {
	d, err := g.definition(r)
	if err != nil {
		return nil, fmt.Errorf("pebble: definition: %w", err)
	}
	if d == nil {
		return nil, segments.NotFound(r)
	}
	return d, nil
}

// Definitions lists every definition; keys sort computed traits before
// segments ("computed/" < "segment/"), so they are re-sorted by kind.
func (g segStore) Definitions(context.Context) ([]*segments.Definition, error) {
	var byKind [2][]*segments.Definition
	err := g.s.scan(pSegDef, func(_, v []byte) error {
		d := &segments.Definition{}
		if err := jsonUnmarshal(v, d); err != nil {
			return err
		}
		if d.Kind == lang.KindSegment {
			byKind[0] = append(byKind[0], d)
		} else {
			byKind[1] = append(byKind[1], d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: definitions: %w", err)
	}
	return append(byKind[0], byKind[1]...), nil
}

// state reads a profile's state: compact (segments.EncodeState) or, as
// written before it, JSON.
func (g segStore) state(profile string) (*segments.ProfileState, error) {
	v, ok, err := g.s.get(pSegState, []byte(profile))
	if err != nil {
		return nil, err
	}
	return decodeState(profile, v, ok)
}

// decodeState decodes a stored state (ok: one is stored; otherwise the
// profile's state is empty, of revision 0).
func decodeState(profile string, v []byte, ok bool) (*segments.ProfileState, error) {
	if !ok {
		return &segments.ProfileState{Profile: profile}, nil
	}
	st, err := segments.DecodeState(v)
	if err != nil {
		return nil, fmt.Errorf("corrupt segment state of %s: %w", profile, err)
	}
	return st, nil
}

// states reads the profiles' states with one iterator (visitRun): a
// backfill's page is a run of neighbouring profile IDs, and a lookup of
// each cost more than the steps between them. A state of read (the
// caller's, by index; nil: none) that encodes to the stored bytes is
// taken as it is instead of being decoded again.
func (g segStore) states(profiles []string, read []*segments.ProfileState) ([]*segments.ProfileState, error) {
	out := make([]*segments.ProfileState, len(profiles))
	var buf []byte
	var bad error
	var dec segments.StateDecoder
	err := g.s.visitRun(prefixed(pSegState, profiles), func(i int, v []byte) {
		if read != nil {
			if r := read[i]; r != nil && r.Profile == profiles[i] {
				if buf = segments.AppendState(buf[:0], r); bytes.Equal(buf, v) {
					out[i] = r
					return
				}
			}
		}
		st, err := dec.Decode(v)
		if err != nil {
			err = fmt.Errorf("corrupt segment state of %s: %w", profiles[i], err)
		}
		out[i], bad = st, cmp.Or(bad, err)
	})
	if err = cmp.Or(err, bad); err != nil {
		return nil, err
	}
	for i, st := range out {
		if st == nil {
			out[i] = &segments.ProfileState{Profile: profiles[i]} // none stored
		}
	}
	return out, nil
}

// prefixed returns the keys of ids under prefix, in one allocation (a
// page's keys were several allocations a profile).
func prefixed(prefix []byte, ids []string) [][]byte {
	n := 0
	for _, id := range ids {
		n += len(prefix) + len(id)
	}
	buf := make([]byte, 0, n)
	ks := make([][]byte, len(ids))
	for i, id := range ids {
		start := len(buf)
		buf = append(append(buf, prefix...), id...)
		ks[i] = buf[start:len(buf):len(buf)]
	}
	return ks
}

// States returns the profiles' states.
func (g segStore) States(_ context.Context, profiles []string) ([]*segments.ProfileState, error) {
	out, err := g.states(profiles, nil)
	if err != nil {
		return nil, fmt.Errorf("pebble: segment states: %w", err)
	}
	return out, nil
}

// StatesPage pages through the stored states in profile order.
func (g segStore) StatesPage(_ context.Context, after string, limit int) ([]*segments.ProfileState, error) {
	lower := pSegState
	if after != "" {
		lower = append(key(pSegState, []byte(after)), 0)
	}
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(pSegState)})
	if err != nil {
		return nil, fmt.Errorf("pebble: segment states page: %w", err)
	}
	defer it.Close()
	var out []*segments.ProfileState
	var dec segments.StateDecoder
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		st, err := dec.Decode(it.Value())
		if err != nil {
			return nil, fmt.Errorf("pebble: segment states page: corrupt state of %s: %w", it.Key()[len(pSegState):], err)
		}
		out = append(out, st)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: segment states page: %w", err)
	}
	return out, nil
}

// replaced reads the stored states the saves replace. A save's Read that
// encodes to the stored bytes is taken as it is, not decoded again: a
// backfill's page read its states moments before, and decoding them under
// the store's lock was much of a page's save.
func (g segStore) replaced(saves []segments.Save) ([]*segments.ProfileState, error) {
	profiles, read := make([]string, len(saves)), make([]*segments.ProfileState, len(saves))
	for i, sv := range saves {
		profiles[i], read[i] = sv.State.Profile, sv.Read
	}
	return g.states(profiles, read)
}

// SaveStates writes the states, their change records, timers and member
// index entries in one synced batch, under the store's lock (which makes
// the revision check and the sequence numbers race-free). The stored
// states (replaced), and whether the profiles given memberships are live,
// are read with one iterator each for the whole batch (a backfill saves a
// page of a thousand profiles at once).
func (g segStore) SaveStates(_ context.Context, saves []segments.Save) ([]*segments.ChangeRecord, error) {
	if err := segments.CheckSaves(saves); err != nil {
		return nil, fmt.Errorf("pebble: save segment states: %w", err)
	}
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	seq, err := g.lastSequence()
	if err != nil {
		return nil, fmt.Errorf("pebble: save segment states: %w", err)
	}
	olds, err := g.replaced(saves)
	if err != nil {
		return nil, fmt.Errorf("pebble: save segment states: %w", err)
	}
	for i, sv := range saves {
		if olds[i].Rev != sv.State.Rev {
			return nil, fmt.Errorf("pebble: save segment states: %s: %w", sv.State.Profile, segments.ErrStale)
		}
	}
	// Each save's memberships before and after, worked out once.
	was, is := make([]map[string]segments.Entry, len(saves)), make([]map[string]segments.Entry, len(saves))
	for i, sv := range saves {
		was[i], is[i] = segments.SegmentMemberships(olds[i].Entries), segments.SegmentMemberships(sv.State.Entries)
	}
	if err := g.checkMembers(saves, was, is); err != nil {
		return nil, fmt.Errorf("pebble: save segment states: %w", err)
	}
	b := g.s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	var out []*segments.ChangeRecord
	deltas := map[string]int{}
	for i, sv := range saves {
		next, old := sv.State, olds[i]
		// Only what changed is written: most saves move a few of a
		// profile's deadlines and memberships, and rewriting all of them
		// was most of the engine's writes (and of its compactions).
		gone, added := segments.TimerChanges(old, next)
		for _, t := range gone {
			w.del(timerKey(t))
		}
		for _, t := range added {
			w.putJSON(timerKey(t), t)
		}
		membershipDeltas(deltas, was[i], is[i])
		for k := range was[i] {
			if _, ok := is[i][k]; !ok {
				w.del(memberKey(k, next.Profile))
			}
		}
		for k, e := range is[i] {
			if segments.WritesMembership(old, next, was[i], k, e) {
				w.put(memberKey(k, next.Profile), []byte(next.Profile))
			}
		}
		for _, c := range segments.Diff(sv, old.Entries) {
			seq++
			c.Sequence = seq
			w.put(changeKey(seq), segments.EncodeChange(c))
			out = append(out, c)
		}
		saved := *next
		saved.Rev++
		w.put(key(pSegState, []byte(next.Profile)), segments.EncodeState(&saved))
	}
	if err := g.s.addCounts(w, deltas); err != nil {
		return nil, fmt.Errorf("pebble: save segment states: %w", err)
	}
	if w.err != nil {
		return nil, fmt.Errorf("pebble: save segment states: %w", w.err)
	}
	if err := g.s.commit(b, w.records); err != nil {
		return nil, &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: save segment states", Err: err}
	}
	return out, nil
}

// checkMembers refuses memberships of a profile or segment that is not
// stored (as Neo4j, whose IN_SEGMENT needs both nodes, must), and a
// profile merged into another since it was evaluated entering a segment:
// stale (its survivor is evaluated instead). Only live profiles have a
// data column, so liveness is one key, read for every member profile with
// one iterator; each segment is looked up once. was and is are each save's
// memberships before and after (SegmentMemberships).
func (g segStore) checkMembers(saves []segments.Save, was, is []map[string]segments.Entry) error {
	var ids []string
	var enters []bool
	segs := map[string]bool{}
	for i, sv := range saves {
		if len(is[i]) == 0 {
			continue
		}
		ids = append(ids, sv.State.Profile)
		enters = append(enters, false)
		for k := range is[i] {
			segs[k] = true
			if _, ok := was[i][k]; !ok {
				enters[len(enters)-1] = true
			}
		}
	}
	live := make([]bool, len(ids))
	if err := g.s.visitRun(prefixed(pProfData, ids), func(i int, _ []byte) { live[i] = true }); err != nil {
		return err
	}
	for i, ok := range live {
		if ok {
			continue
		}
		if _, ok, err := g.s.get(pProfile, []byte(ids[i])); err != nil || !ok {
			return notStored(err, "profile %s", ids[i])
		}
		if enters[i] {
			return fmt.Errorf("profile %s merged away: %w", ids[i], segments.ErrStale)
		}
	}
	for k := range segs {
		if _, ok, err := g.s.get(defKey(segments.Ref{Key: k})); err != nil || !ok {
			return notStored(err, "segment %q", k)
		}
	}
	return nil
}

func notStored(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return graph.Errorf(graph.KindNotFound, "no "+format, args...)
}

func changeKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(pSegChange), seq)
}

// lastSequence is the sequence number of the newest change record (0 when
// there is none).
func (g segStore) lastSequence() (uint64, error) {
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: pSegChange, UpperBound: prefixEnd(pSegChange)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[len(pSegChange):]), nil
}

// LastChange returns the newest change record's sequence number.
func (g segStore) LastChange(context.Context) (uint64, error) {
	seq, err := g.lastSequence()
	if err != nil {
		return 0, fmt.Errorf("pebble: last segment change: %w", err)
	}
	return seq, nil
}

// Changes pages through the change records.
func (g segStore) Changes(_ context.Context, after uint64, limit int) ([]*segments.ChangeRecord, error) {
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: changeKey(after + 1), UpperBound: prefixEnd(pSegChange)})
	if err != nil {
		return nil, fmt.Errorf("pebble: segment changes: %w", err)
	}
	defer it.Close()
	var out []*segments.ChangeRecord
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		c, err := segments.DecodeChange(it.Value()) // compact, or JSON before format 3
		if err != nil {
			return nil, fmt.Errorf("pebble: segment changes: corrupt record: %w", err)
		}
		out = append(out, c)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: segment changes: %w", err)
	}
	return out, nil
}

// DueTimers reads the timer index up to until, in key (deadline) order.
func (g segStore) DueTimers(_ context.Context, until time.Time, limit int) ([]segments.Timer, error) {
	out, err := pageJSON[segments.Timer](g.s, pSegTimer, key(pSegTimer, timestampBytes(until.Add(1))), limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: due timers: %w", err)
	}
	return out, nil
}

// pageJSON decodes the values of up to limit keys in [lower, upper).
func pageJSON[T any](s *Store, lower, upper []byte, limit int) ([]T, error) {
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []T
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		var v T
		if err := jsonUnmarshal(it.Value(), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, it.Error()
}

// Members pages through a segment's member index.
func (g segStore) Members(_ context.Context, segment, after string, limit int) ([]string, error) {
	var out []string
	lower := memberKey(segment, "")
	if after != "" {
		lower = append(memberKey(segment, after), 0)
	}
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(memberKey(segment, ""))})
	if err != nil {
		return nil, fmt.Errorf("pebble: members: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		out = append(out, string(it.Value()))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: members: %w", err)
	}
	return out, nil
}

// pendData adds a transaction's data changes to the pending ones, in the
// transaction's batch: they are durable exactly when the events are.
func (t *tx) pendData(w *batchWriter, cs []graph.DataChange) error {
	for _, c := range cs {
		k := key(pPending, []byte(c.Profile))
		var p segments.Pending
		if _, err := t.getJSON(&p, k); err != nil {
			return err
		}
		p.DataChange = graph.MergeDataChange(p.DataChange, c)
		p.Profile = c.Profile
		p.Mark++
		w.putJSON(k, &p)
	}
	return nil
}

// PendingChanges reads the pending data changes in profile order.
func (g segStore) PendingChanges(_ context.Context, after string, limit int) ([]segments.Pending, error) {
	lower := pPending
	if after != "" {
		lower = key(pPending, []byte(after), []byte{0})
	}
	out, err := pageJSON[segments.Pending](g.s, lower, prefixEnd(pPending), limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: pending changes: %w", err)
	}
	return out, nil
}

// DonePending deletes pending changes unless more was added since they
// were read, in one batch. The stored changes are read with one iterator
// (a page of them is a run of neighbouring keys), under the store's lock,
// which ingest waits for.
func (g segStore) DonePending(_ context.Context, ps ...segments.Pending) error {
	ks := make([][]byte, len(ps))
	for i, p := range ps {
		ks[i] = key(pPending, []byte(p.Profile))
	}
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	vs, err := g.s.getRun(ks)
	if err != nil {
		return fmt.Errorf("pebble: done pending: %w", err)
	}
	b := g.s.db.NewBatch()
	defer b.Close()
	for i, p := range ps {
		var cur segments.Pending
		if vs[i] == nil {
			continue
		}
		if err := jsonUnmarshal(vs[i], &cur); err != nil {
			return fmt.Errorf("pebble: done pending: %w", err)
		}
		if cur.Mark != p.Mark {
			continue
		}
		if err := b.Delete(ks[i], nil); err != nil {
			return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: done pending", Err: err}
		}
	}
	if b.Empty() {
		return nil
	}
	// Not synced: a deletion lost in a crash leaves the change pending,
	// and evaluating it again changes nothing.
	if err := b.Commit(cpebble.NoSync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: done pending", Err: err}
	}
	return nil
}
