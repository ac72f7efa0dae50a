package pebble

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
)

var (
	pDestJob = []byte("dstj/") // + destination + 0 + job id → destinations.Job
	pDestLog = []byte("dstl/") // + destination + 0 + n (8 bytes, big-endian) → destinations.Delivery
)

func jobKey(dst, id string) []byte { return key(pDestJob, []byte(dst), []byte{0}, []byte(id)) }

func logKey(dst string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(key(pDestLog, []byte(dst), []byte{0}), n)
}

// PutJob stores a job under (destination, id).
func (g destStore) PutJob(_ context.Context, j *destinations.Job) error {
	if err := g.put(jobKey(j.Destination, j.ID), j); err != nil {
		return fmt.Errorf("pebble: put delivery job: %w", err)
	}
	return nil
}

// Jobs returns a destination's jobs, oldest first.
func (g destStore) Jobs(_ context.Context, dst string) ([]*destinations.Job, error) {
	prefix := jobKey(dst, "")
	out, err := pageJSON[*destinations.Job](g.s, prefix, prefixEnd(prefix), int(^uint(0)>>1))
	if err != nil {
		return nil, fmt.Errorf("pebble: delivery jobs: %w", err)
	}
	destinations.SortJobs(out)
	return out, nil
}

// DeleteJob removes a job.
func (g destStore) DeleteJob(_ context.Context, dst, id string) error {
	if err := g.s.db.Delete(jobKey(dst, id), cpebble.Sync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: delete delivery job", Err: err}
	}
	return nil
}

// AppendDelivery adds an attempt to the destination's log and drops the
// entry that falls out of the newest keep, in one batch under the
// destination's log lock (the next N is read from the log's last key;
// nothing else writes the log).
func (g destStore) AppendDelivery(_ context.Context, d *destinations.Delivery, keep int) error {
	l := g.entry(d.Destination)
	l.logMu.Lock()
	defer l.logMu.Unlock()
	prefix := logKey(d.Destination, 0)[:len(pDestLog)+len(d.Destination)+1]
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("pebble: append delivery: %w", err)
	}
	last := uint64(0)
	if it.Last() {
		last = binary.BigEndian.Uint64(it.Key()[len(prefix):])
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return fmt.Errorf("pebble: append delivery: %w", err)
	}
	d.N = last + 1
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("pebble: append delivery: %w", err)
	}
	b := g.s.db.NewBatch()
	defer b.Close()
	if err := b.Set(logKey(d.Destination, d.N), data, nil); err != nil {
		return fmt.Errorf("pebble: append delivery: %w", err)
	}
	// One entry falls out per append: a point delete (range deletions
	// piling up at the log's start would slow every later read of it).
	if keep > 0 && d.N > uint64(keep) {
		if err := b.Delete(logKey(d.Destination, d.N-uint64(keep)), nil); err != nil {
			return fmt.Errorf("pebble: append delivery: %w", err)
		}
	}
	if err := b.Commit(cpebble.NoSync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: append delivery", Err: err}
	}
	return nil
}

// Deliveries pages through a destination's log, newest first.
func (g destStore) Deliveries(_ context.Context, dst string, before uint64, limit int) ([]*destinations.Delivery, error) {
	prefix := logKey(dst, 0)[:len(pDestLog)+len(dst)+1]
	upper := prefixEnd(prefix)
	if before > 0 {
		upper = logKey(dst, before)
	}
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("pebble: deliveries: %w", err)
	}
	defer it.Close()
	var out []*destinations.Delivery
	for it.Last(); it.Valid() && len(out) < limit; it.Prev() {
		d := &destinations.Delivery{}
		if err := jsonUnmarshal(it.Value(), d); err != nil {
			return nil, fmt.Errorf("pebble: deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: deliveries: %w", err)
	}
	return out, nil
}
