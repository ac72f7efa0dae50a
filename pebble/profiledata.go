package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	cpebble "github.com/cockroachdb/pebble/v2"
	json "github.com/segmentio/encoding/json"

	"github.com/idgraph/idgraph/graph"
)

// dataRecord is the part of a stored profile that a DataQuery reads.
// Traits and counts stay raw until asked for: the timestamps and trait
// metadata it skips cost most of decoding a whole profile.
type dataRecord struct {
	ID         string          `json:"id"`
	MergedInto string          `json:"mergedInto"`
	Absorbed   []string        `json:"absorbed"`
	Counts     json.RawMessage `json:"counts"`
	Traits     json.RawMessage `json:"traits"`
}

// ProfilesData returns what q asks for of each ID's live profile, nil
// where there is none.
func (s *Store) ProfilesData(_ context.Context, ids []string, q graph.DataQuery) ([]*graph.ProfileData, error) {
	raws, err := s.getManySplit(profileKeys(ids))
	if err != nil {
		return nil, fmt.Errorf("pebble: profiles data: %w", err)
	}
	out, err := s.profilesData(raws, q)
	if err != nil {
		return nil, fmt.Errorf("pebble: profiles data: %w", err)
	}
	return out, nil
}

// ScanProfilesData lists live profiles' data in ID order after the given
// ID. Only a record that mentions mergedInto is decoded while scanning
// (to check it); the page is decoded in parallel afterwards.
func (s *Store) ScanProfilesData(_ context.Context, after string, limit int, q graph.DataQuery) ([]*graph.ProfileData, error) {
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: key(pProfile, []byte(after), []byte{0}), UpperBound: prefixEnd(pProfile)})
	if err != nil {
		return nil, fmt.Errorf("pebble: scan profiles data: %w", err)
	}
	var raws [][]byte
	for it.First(); it.Valid() && len(raws) < limit; it.Next() {
		v := it.Value()
		if bytes.Contains(v, []byte(`"mergedInto"`)) {
			var r dataRecord
			if err := jsonUnmarshal(v, &r); err != nil {
				it.Close()
				return nil, fmt.Errorf("pebble: scan profiles data: %w", err)
			}
			if r.MergedInto != "" {
				continue
			}
		}
		raws = append(raws, bytes.Clone(v))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("pebble: scan profiles data: %w", err)
	}
	out, err := s.profilesData(raws, q)
	if err != nil {
		return nil, fmt.Errorf("pebble: scan profiles data: %w", err)
	}
	return out, nil
}

// decodeChunk is how many records one goroutine decodes at a time.
const decodeChunk = 256

// profilesData decodes profile records (nil: none) as q asks, across
// the CPUs, and reads the identifiers' keys when q asks for them. A
// merged-away profile gives nil.
func (s *Store) profilesData(raws [][]byte, q graph.DataQuery) ([]*graph.ProfileData, error) {
	out := make([]*graph.ProfileData, len(raws))
	absorbed := make([][]string, len(raws))
	chunks := (len(raws) + decodeChunk - 1) / decodeChunk
	errs := make([]error, chunks)
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(runtime.GOMAXPROCS(0), chunks) {
		wg.Go(func() {
			for c := range work {
				for i := c * decodeChunk; i < min((c+1)*decodeChunk, len(raws)); i++ {
					if raws[i] == nil {
						continue
					}
					p, abs, err := decodeData(raws[i], q)
					if err != nil {
						errs[c] = err
						break
					}
					out[i], absorbed[i] = p, abs
				}
			}
		})
	}
	for c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
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

// decodeData decodes what q asks for of one profile record; nil when the
// profile was merged away.
func decodeData(raw []byte, q graph.DataQuery) (*graph.ProfileData, []string, error) {
	var r dataRecord
	if err := jsonUnmarshal(raw, &r); err != nil {
		return nil, nil, err
	}
	if r.MergedInto != "" {
		return nil, nil, nil
	}
	p := &graph.ProfileData{ID: r.ID}
	if q.Counts && len(r.Counts) > 0 {
		if err := jsonUnmarshal(r.Counts, &p.Counts); err != nil {
			return nil, nil, err
		}
	}
	var err error
	if p.Traits, err = graph.TraitValues(r.Traits, q.Traits); err != nil {
		return nil, nil, err
	}
	return p, r.Absorbed, nil
}

// dataKeys fills in the identifier keys of each profile and of those it
// absorbed.
func (s *Store) dataKeys(ps []*graph.ProfileData, absorbed [][]string) error {
	groups := make([][]string, len(ps))
	for i, p := range ps {
		if p != nil {
			groups[i] = append([]string{p.ID}, absorbed[i]...)
		}
	}
	vs, owner, err := s.memberIdentifiers(groups)
	if err != nil {
		return err
	}
	for j, v := range vs {
		var k graph.Key
		if err := jsonUnmarshal(v, &k); err != nil {
			return err
		}
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
// of profiles, with the index of the group each belongs to. One iterator
// walks the member index for every group, in profile ID order, and one
// reads the identifiers (getMany): an iterator per profile cost most of a
// members export.
func (s *Store) memberIdentifiers(groups [][]string) (records [][]byte, owner []int, err error) {
	type profile struct {
		id    string
		group int
	}
	var ps []profile
	for i, ids := range groups {
		for _, id := range ids {
			ps = append(ps, profile{id, i})
		}
	}
	slices.SortFunc(ps, func(a, b profile) int { return strings.Compare(a.id, b.id) })
	var ks [][]byte
	var ownerOf []int
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: pMember, UpperBound: prefixEnd(pMember)})
	if err != nil {
		return nil, nil, err
	}
	valid := it.First()
	for _, p := range ps {
		prefix := key(pMember, []byte(p.id+"/"))
		// The next profile's entries usually follow the last one's (an
		// export's page is a run of IDs): step to them, and seek only when
		// they are further away.
		for step := 0; valid && bytes.Compare(it.Key(), prefix) < 0; step++ {
			if step == 8 {
				valid = it.SeekGE(prefix)
				break
			}
			valid = it.Next()
		}
		for ; valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
			ks, ownerOf = append(ks, key(pIdentifier, it.Value())), append(ownerOf, p.group)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
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

// splitMin is the fewest keys a getManySplit part looks up.
const splitMin = 256

// getManySplit is getMany with the keys split into a part per CPU, each
// looked up with its own iterator at once. A members export's page is
// about 3,000 point lookups (the profiles, then their identifiers, whose
// keys are hashes spread over the whole table: each lands in another
// block), which cost most of its time on one core.
func (s *Store) getManySplit(ks [][]byte) ([][]byte, error) {
	parts := min(runtime.GOMAXPROCS(0), len(ks)/splitMin)
	if parts < 2 {
		return s.getMany(ks)
	}
	out := make([][]byte, len(ks))
	errs := make([]error, parts)
	size := (len(ks) + parts - 1) / parts
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*size, min((p+1)*size, len(ks))
		wg.Go(func() {
			vs, err := s.getMany(ks[lo:hi])
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
