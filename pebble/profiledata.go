package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	cpebble "github.com/cockroachdb/pebble/v2"
	json "github.com/segmentio/encoding/json"

	"github.com/idgraph/idgraph/graph"
)

// pProfData + profile ID → the live profile's data column (dataColumn):
// what bulk reads of profile data (ProfilesData, ScanProfilesData: a
// segment preview, a members export) read, written in the same batch as
// the profile record. A merged-away profile has none. It is a fraction
// of the profile record's size (no trait sources or times, no
// timestamps) and binary, so that a scan of a million profiles reads a
// few tens of megabytes, mostly from the block cache, and decodes only
// the traits asked for.
var pProfData = []byte("pd/")

// dataColumnV1 is the first byte of a data column value.
const dataColumnV1 = 1

// dataColumn encodes a live profile's data column: a version byte, then
// the absorbed profile IDs, the identifier counts by type and the trait
// values by path (each as the JSON of the value), each list a uvarint
// length followed by its items, strings as a uvarint length and bytes.
// Counts and traits are sorted, so that the encoding is deterministic.
func dataColumn(p *graph.Profile) ([]byte, error) {
	b := []byte{dataColumnV1}
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	b = binary.AppendUvarint(b, uint64(len(p.Absorbed)))
	for _, id := range p.Absorbed {
		str(id)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Counts)))
	for _, t := range slices.Sorted(maps.Keys(p.Counts)) {
		str(t)
		b = binary.AppendUvarint(b, uint64(max(p.Counts[t], 0)))
	}
	b = binary.AppendUvarint(b, uint64(len(p.Traits)))
	for _, path := range slices.Sorted(maps.Keys(p.Traits)) {
		v, err := json.Marshal(p.Traits[path].Value)
		if err != nil {
			return nil, fmt.Errorf("trait %q: %w", path, err)
		}
		str(path)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b, nil
}

// putDataColumn writes (or, for a merged-away profile, deletes) the data
// column of a profile being written.
func putDataColumn(w *batchWriter, p *graph.Profile) {
	k := key(pProfData, []byte(p.ID))
	if p.MergedInto != "" {
		w.del(k)
		return
	}
	v, err := dataColumn(p)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("profile %s: data column: %w", p.ID, err)
	}
	w.put(k, v)
}

// errDataColumn is a data column value that does not decode.
var errDataColumn = errors.New("corrupt profile data column")

// columnReader reads a data column value in order.
type columnReader struct {
	b   []byte
	err error
}

func (r *columnReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errDataColumn
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns the next length-prefixed bytes, aliasing the value.
func (r *columnReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errDataColumn
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// decodeColumn decodes what q asks for of a profile's data column into p
// (whose ID is set), with the IDs of the profiles it absorbed when q asks
// for keys or for them (p.Absorbed). Only the traits asked for are parsed. scalars holds the
// scalar values parsed so far, by their JSON: a page's profiles share
// them (strings and numbers in an any are immutable), which spares an
// allocation per profile for the few values a trait such as a plan takes.
func decodeColumn(p *graph.ProfileData, raw []byte, q graph.DataQuery, scalars map[string]any) ([]string, error) {
	id := p.ID
	if len(raw) == 0 || raw[0] != dataColumnV1 {
		return nil, fmt.Errorf("%w: profile %s", errDataColumn, id)
	}
	r := &columnReader{b: raw[1:]}
	var absorbed []string
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		a := r.bytes()
		if q.Keys || q.Absorbed {
			absorbed = append(absorbed, string(a))
		}
	}
	if q.Absorbed {
		p.Absorbed = absorbed
	}
	n := r.uvarint()
	if q.Counts && n > 0 && r.err == nil {
		p.Counts = make(map[string]int, n)
	}
	for ; n > 0 && r.err == nil; n-- {
		t, c := r.bytes(), r.uvarint()
		if p.Counts != nil {
			p.Counts[string(t)] = int(c)
		}
	}
	for n := r.uvarint(); n > 0 && r.err == nil && len(q.Traits) > 0; n-- {
		path, v := r.bytes(), r.bytes()
		i := slices.IndexFunc(q.Traits, func(want string) bool { return want == string(path) })
		if i < 0 || r.err != nil {
			continue
		}
		val, ok := scalars[string(v)]
		if !ok {
			if _, err := json.Parse(v, &val, 0); err != nil {
				return nil, fmt.Errorf("%w: profile %s: trait %q: %w", errDataColumn, id, q.Traits[i], err)
			}
			switch val.(type) {
			case map[string]any, []any: // mutable: each profile its own
			default:
				if len(scalars) < maxScalars {
					scalars[string(v)] = val
				}
			}
		}
		if p.Traits == nil {
			p.Traits = make(map[string]any, len(q.Traits))
		}
		p.Traits[q.Traits[i]] = val
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: profile %s", r.err, id)
	}
	return absorbed, nil
}

// maxScalars bounds the scalar values a decoder keeps for sharing.
const maxScalars = 1024

// ProfilesData returns what q asks for of each ID's live profile, nil
// where there is none.
func (s *Store) ProfilesData(_ context.Context, ids []string, q graph.DataQuery) ([]*graph.ProfileData, error) {
	ks := make([][]byte, len(ids))
	for i, id := range ids {
		ks[i] = key(pProfData, []byte(id))
	}
	raws, err := s.getSplit(ks, s.getRun)
	if err != nil {
		return nil, fmt.Errorf("pebble: profiles data: %w", err)
	}
	out, err := s.profilesData(ids, raws, q)
	if err != nil {
		return nil, fmt.Errorf("pebble: profiles data: %w", err)
	}
	return out, nil
}

// ScanProfilesData lists live profiles' data in ID order after the given
// ID, from the data column (which only live profiles have); the page is
// decoded in parallel once read.
func (s *Store) ScanProfilesData(_ context.Context, after string, limit int, q graph.DataQuery) ([]*graph.ProfileData, error) {
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: key(pProfData, []byte(after), []byte{0}), UpperBound: prefixEnd(pProfData)})
	if err != nil {
		return nil, fmt.Errorf("pebble: scan profiles data: %w", err)
	}
	// A few allocations a page, not a few a profile: the values are
	// copied into shared buffers, the IDs into one string.
	var raws [][]byte
	var buf, idBytes []byte
	var idEnds []int
	for it.First(); it.Valid() && len(raws) < limit; it.Next() {
		v := it.Value()
		if len(buf)+len(v) > cap(buf) {
			buf = make([]byte, 0, max(64<<10, len(v)))
		}
		start := len(buf)
		buf = append(buf, v...)
		raws = append(raws, buf[start:len(buf):len(buf)])
		idBytes = append(idBytes, it.Key()[len(pProfData):]...)
		idEnds = append(idEnds, len(idBytes))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("pebble: scan profiles data: %w", err)
	}
	all := string(idBytes)
	ids := make([]string, len(idEnds))
	start := 0
	for i, end := range idEnds {
		ids[i], start = all[start:end], end
	}
	out, err := s.profilesData(ids, raws, q)
	if err != nil {
		return nil, fmt.Errorf("pebble: scan profiles data: %w", err)
	}
	return out, nil
}

// decodeChunk is how many records one goroutine decodes at a time.
const decodeChunk = 512

// profilesData decodes the data columns of profiles (nil: none, not a
// live profile) as q asks, across the CPUs, and reads the identifiers'
// keys when q asks for them.
func (s *Store) profilesData(ids []string, raws [][]byte, q graph.DataQuery) ([]*graph.ProfileData, error) {
	out := make([]*graph.ProfileData, len(raws))
	absorbed := make([][]string, len(raws))
	chunks := (len(raws) + decodeChunk - 1) / decodeChunk
	errs := make([]error, chunks)
	decode := func(c int) {
		lo, hi := c*decodeChunk, min((c+1)*decodeChunk, len(raws))
		slab := make([]graph.ProfileData, hi-lo)
		scalars := map[string]any{}
		for i := lo; i < hi; i++ {
			if raws[i] == nil {
				continue
			}
			p := &slab[i-lo]
			p.ID = ids[i]
			abs, err := decodeColumn(p, raws[i], q, scalars)
			if err != nil {
				errs[c] = err
				return
			}
			out[i], absorbed[i] = p, abs
		}
	}
	if chunks <= 1 {
		for c := range chunks {
			decode(c)
		}
	} else {
		var wg sync.WaitGroup
		work := make(chan int)
		for range min(runtime.GOMAXPROCS(0), chunks) {
			wg.Go(func() {
				for c := range work {
					decode(c)
				}
			})
		}
		for c := range chunks {
			work <- c
		}
		close(work)
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if q.Keys {
		if err := s.dataKeys(out, absorbed); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeDataColumns writes the data column of every live profile (the
// migration to format version 4), committing every few thousand.
func writeDataColumns(db *cpebble.DB) error {
	it, err := db.NewIter(&cpebble.IterOptions{LowerBound: pProfile, UpperBound: prefixEnd(pProfile)})
	if err != nil {
		return err
	}
	defer it.Close()
	b := db.NewBatch()
	defer func() { b.Close() }()
	w := &batchWriter{b: b}
	for ok := it.First(); ok; ok = it.Next() {
		var p graph.Profile
		if err := jsonUnmarshal(it.Value(), &p); err != nil {
			return fmt.Errorf("profile %s: %w", it.Key()[len(pProfile):], err)
		}
		putDataColumn(w, &p)
		if w.err != nil {
			return w.err
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(cpebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
			w = &batchWriter{b: b}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return b.Commit(cpebble.NoSync)
}

// dataKeys fills in the identifier keys of each profile and of those it
// absorbed, from the member index alone (memberKeys): no identifier
// record is read.
func (s *Store) dataKeys(ps []*graph.ProfileData, absorbed [][]string) error {
	groups := make([][]string, len(ps))
	for i, p := range ps {
		if p != nil {
			groups[i] = append([]string{p.ID}, absorbed[i]...)
		}
	}
	keys, owner, err := s.memberKeys(groups)
	if err != nil {
		return err
	}
	for j, k := range keys {
		ps[owner[j]].Keys = append(ps[owner[j]].Keys, k)
	}
	for _, p := range ps {
		if p != nil {
			slices.SortFunc(p.Keys, graph.Key.Compare)
		}
	}
	return nil
}

// memberIdentifiers reads the identifier records that joined each group
// of profiles, with the index of the group each belongs to: the member
// index is walked with one iterator (walkMembers), and the records are
// read with getManySplit.
func (s *Store) memberIdentifiers(groups [][]string) (records [][]byte, owner []int, err error) {
	var ks [][]byte
	var ownerOf []int
	err = s.walkMembers(groups, func(group int, v []byte) error {
		ks, ownerOf = append(ks, key(pIdentifier, memberHash(v))), append(ownerOf, group)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	vs, err := s.getManySplit(ks)
	if err != nil {
		return nil, nil, err
	}
	for j, v := range vs {
		if v != nil { // nil: removed since the member index was read
			records, owner = append(records, v), append(owner, ownerOf[j])
		}
	}
	return records, owner, nil
}

// splitMin is the fewest keys a getSplit part looks up.
const splitMin = 256

// getManySplit is getMany with the keys split into a part per CPU (see
// getSplit): the identifier records of a page of profiles, whose keys
// are hashes spread over the whole table (each lands in another block).
func (s *Store) getManySplit(ks [][]byte) ([][]byte, error) { return s.getSplit(ks, s.getMany) }

// getSplit reads the keys with get, split into a part per CPU, each read
// with its own iterator at once: the point reads of a members export's
// page cost most of its time on one core.
func (s *Store) getSplit(ks [][]byte, get func([][]byte) ([][]byte, error)) ([][]byte, error) {
	parts := min(runtime.GOMAXPROCS(0), len(ks)/splitMin)
	if parts < 2 {
		return get(ks)
	}
	out := make([][]byte, len(ks))
	errs := make([]error, parts)
	size := (len(ks) + parts - 1) / parts
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*size, min((p+1)*size, len(ks))
		wg.Go(func() {
			vs, err := get(ks[lo:hi])
			copy(out[lo:hi], vs)
			errs[p] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// getRun returns the values under ks, nil where absent, read with one
// iterator in key order that steps to the next key when it is near and
// seeks only when it is further away (stepNear): a members export's page
// is a run of profile IDs, whose data columns are neighbours, and a seek
// of each (getMany) cost more than the steps between them.
func (s *Store) getRun(ks [][]byte) ([][]byte, error) {
	out := make([][]byte, len(ks))
	err := s.visitRun(ks, func(i int, v []byte) {
		out[i] = bytes.Clone(v)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// visitRun is getRun handing each value present to fn (by the index of its
// key) without copying it: v is valid only during the call.
func (s *Store) visitRun(ks [][]byte, fn func(i int, v []byte)) error {
	if len(ks) == 0 {
		return nil
	}
	order := make([]int, len(ks))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ks[a], ks[b]) })
	first, last := ks[order[0]], ks[order[len(order)-1]]
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: first, UpperBound: append(bytes.Clone(last), 0)})
	if err != nil {
		return err
	}
	valid := it.First()
	for _, i := range order {
		if valid = stepNear(it, valid, ks[i]); valid && bytes.Equal(it.Key(), ks[i]) {
			fn(i, it.Value())
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// stepNear moves an iterator going forward (valid: positioned on a key)
// to the first key at or after target: by a few steps when the target is
// near, by a seek otherwise. It reports whether the iterator is on a key.
func stepNear(it *cpebble.Iterator, valid bool, target []byte) bool {
	for step := 0; valid && bytes.Compare(it.Key(), target) < 0; step++ {
		if step == 8 {
			return it.SeekGE(target)
		}
		valid = it.Next()
	}
	return valid
}
