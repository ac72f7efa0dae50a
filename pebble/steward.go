package pebble

import (
	"context"
	"encoding/hex"
	"fmt"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

// MergeEvent returns one merge event.
func (s *Store) MergeEvent(_ context.Context, id string) (*graph.MergeEvent, error) {
	m := &graph.MergeEvent{}
	ok, err := s.getJSON(m, pMerge, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("pebble: merge event: %w", err)
	}
	if !ok {
		return nil, &graph.Error{Kind: graph.KindNotFound, Field: "id", Msg: fmt.Sprintf("no merge event %q", id)}
	}
	return m, nil
}

// AuditEntry returns one audit entry.
func (s *Store) AuditEntry(_ context.Context, id string) (*graph.AuditEntry, error) {
	a := &graph.AuditEntry{}
	ok, err := s.getJSON(a, pAudit, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("pebble: audit entry: %w", err)
	}
	if !ok {
		return nil, &graph.Error{Kind: graph.KindNotFound, Field: "id", Msg: fmt.Sprintf("no audit entry %q", id)}
	}
	return a, nil
}

// AuditLog lists audit entries newest first, walking the log (or the
// profile's index of it) backwards from the cursor.
func (s *Store) AuditLog(_ context.Context, q graph.AuditQuery) ([]*graph.AuditEntry, error) {
	prefix := pAudit
	if q.Profile != "" {
		prefix = key(pProfAudit, []byte(q.Profile+"/"))
	}
	upper := prefixEnd(prefix)
	if q.Before != "" {
		upper = key(prefix, []byte(q.Before))
	}
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("pebble: audit log: %w", err)
	}
	defer it.Close()
	var out []*graph.AuditEntry
	for valid := it.Last(); valid && len(out) < q.Limit; valid = it.Prev() {
		a := &graph.AuditEntry{}
		if q.Profile == "" {
			if err := jsonUnmarshal(it.Value(), a); err != nil {
				return nil, fmt.Errorf("pebble: audit log: %w", err)
			}
		} else if _, err := s.getJSON(a, pAudit, it.Value()); err != nil {
			return nil, fmt.Errorf("pebble: audit log: %w", err)
		}
		out = append(out, a)
	}
	return out, it.Error()
}

// ReviewQueue walks the queue index from the cursor (the hex of an entry's
// key after the prefix), reading each pending edge.
func (s *Store) ReviewQueue(_ context.Context, after string, limit int) ([]graph.QueueItem, error) {
	lower := pQueue
	if after != "" {
		pos, err := hex.DecodeString(after)
		if err != nil {
			return nil, graph.FieldErrorf("after", "malformed cursor")
		}
		lower = append(key(pQueue, pos), 0)
	}
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(pQueue)})
	if err != nil {
		return nil, fmt.Errorf("pebble: review queue: %w", err)
	}
	defer it.Close()
	var out []graph.QueueItem
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		k := it.Key()
		pos := k[len(pQueue):]
		hashes := k[len(k)-2*hashLen:]
		e := &graph.Edge{}
		ok, err := s.getJSON(e, pEdge, hashes)
		if err != nil {
			return nil, fmt.Errorf("pebble: review queue: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("pebble: review queue: entry without an edge")
		}
		out = append(out, graph.QueueItem{Edge: e, Cursor: hex.EncodeToString(pos)})
	}
	return out, it.Error()
}

// hashLen is the length of an identifier's HMAC.
const hashLen = 32
