package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

var (
	// + segment key → its member count (8 bytes, big-endian), kept in step
	// with sm/ by every write of memberships (format version 2).
	pSegCount = []byte("sn/")
	// + segment key + 0 + time → segments.SizeSample.
	pSegSize = []byte("sz/")
)

func countKey(segment string) []byte { return key(pSegCount, []byte(segment)) }

func sizeKey(segment string, at time.Time) []byte {
	return key(pSegSize, []byte(segment), []byte{0}, timestampBytes(at))
}

// addCounts adds membership deltas to the segments' counts in a batch;
// the caller holds the store's write lock, so the counts read are current.
func (s *Store) addCounts(w *batchWriter, deltas map[string]int) error {
	for seg, d := range deltas {
		if d == 0 {
			continue
		}
		n, err := s.memberCount(seg)
		if err != nil {
			return err
		}
		w.put(countKey(seg), binary.BigEndian.AppendUint64(nil, uint64(max(n+d, 0))))
	}
	return nil
}

func (s *Store) memberCount(segment string) (int, error) {
	v, ok, err := s.get(countKey(segment))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt member count of segment %q", segment)
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

// membershipDeltas is what a profile's move from was to is does to the
// segments' counts.
func membershipDeltas(deltas map[string]int, was, is map[string]segments.Entry) {
	for k := range was {
		if _, ok := is[k]; !ok {
			deltas[k]--
		}
	}
	for k := range is {
		if _, ok := was[k]; !ok {
			deltas[k]++
		}
	}
}

// MemberCount reads a segment's count.
func (g segStore) MemberCount(_ context.Context, segment string) (int, error) {
	n, err := g.s.memberCount(segment)
	if err != nil {
		return 0, &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: member count", Err: err}
	}
	return n, nil
}

// PutSizeSamples stores samples, replacing any at the same (segment, At).
func (g segStore) PutSizeSamples(_ context.Context, samples []segments.SizeSample) error {
	b := g.s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	for _, sm := range samples {
		sm.At = sm.At.UTC()
		w.putJSON(sizeKey(sm.Segment, sm.At), sm)
	}
	if w.err == nil {
		w.err = b.Commit(cpebble.Sync)
	}
	if w.err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: put size samples", Err: w.err}
	}
	return nil
}

// SizeSamples reads a segment's samples in a time range.
func (g segStore) SizeSamples(_ context.Context, segment string, from, to time.Time, limit int) ([]segments.SizeSample, error) {
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: sizeKey(segment, from), UpperBound: sizeKey(segment, to)})
	if err != nil {
		return nil, &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: size samples", Err: err}
	}
	defer it.Close()
	var out []segments.SizeSample
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		var sm segments.SizeSample
		if err := json.Unmarshal(it.Value(), &sm); err != nil {
			return nil, fmt.Errorf("pebble: size samples: corrupt sample: %w", err)
		}
		out = append(out, sm)
	}
	if err := it.Error(); err != nil {
		return nil, &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: size samples", Err: err}
	}
	return out, nil
}

// DeleteSizeSamples deletes every segment's samples before a time, one
// range per segment.
func (g segStore) DeleteSizeSamples(ctx context.Context, before time.Time) error {
	defs, err := g.Definitions(ctx)
	if err != nil {
		return fmt.Errorf("pebble: delete size samples: %w", err)
	}
	b := g.s.db.NewBatch()
	defer b.Close()
	for _, d := range defs {
		if d.Kind != lang.KindSegment {
			continue
		}
		if err = b.DeleteRange(sizeKey(d.Key, time.Unix(0, 0).Add(-1<<62)), sizeKey(d.Key, before), nil); err != nil {
			break
		}
	}
	if err == nil {
		err = b.Commit(cpebble.Sync)
	}
	if err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: delete size samples", Err: err}
	}
	return nil
}

// deleteSegmentSizes deletes a segment's count and samples in a batch.
func deleteSegmentSizes(b *cpebble.Batch, segment string) error {
	if err := b.Delete(countKey(segment), nil); err != nil {
		return err
	}
	lower := key(pSegSize, []byte(segment), []byte{0})
	return b.DeleteRange(lower, prefixEnd(lower), nil)
}

// countMembers writes every segment's member count from its sm/ index:
// the migration from format version 1, which kept no counts.
func countMembers(db *cpebble.DB, b *cpebble.Batch) error {
	it, err := db.NewIter(&cpebble.IterOptions{LowerBound: pSegMember, UpperBound: prefixEnd(pSegMember)})
	if err != nil {
		return err
	}
	defer it.Close()
	counts := map[string]uint64{}
	for ok := it.First(); ok; ok = it.Next() {
		rest := it.Key()[len(pSegMember):]
		if i := bytes.IndexByte(rest, 0); i >= 0 {
			counts[string(rest[:i])]++
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	for seg, n := range counts {
		if err := b.Set(countKey(seg), binary.BigEndian.AppendUint64(nil, n), nil); err != nil {
			return err
		}
	}
	return nil
}
