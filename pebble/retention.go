package pebble

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/retention"
)

var _ retention.Backend = (*Store)(nil)

// Retention returns the store's retention operations.
func (s *Store) Retention() retention.Store { return retentionStore{s} }

type retentionStore struct{ s *Store }

// eventHead is the part of a stored event that retention reads: decoding
// the properties too would cost most of a sweep's time.
type eventHead struct {
	Type        string      `json:"type"`
	Name        string      `json:"name"`
	Timestamp   time.Time   `json:"timestamp"`
	ID          string      `json:"id"`
	Identifiers []graph.Key `json:"identifiers"`
}

func (h *eventHead) event() *graph.Event {
	return &graph.Event{Type: h.Type, Name: h.Name, Timestamp: h.Timestamp, ID: h.ID, Identifiers: h.Identifiers}
}

// DeleteExpiredEvents reads the event time index (eventtime.go) in time
// order from the oldest event up to the latest cutoff, without the write
// lock: an entry whose type's cutoff is later than its time names an
// expired event, and the others (kept by a longer rule) are passed over
// without reading their events. It then deletes the expired ones it found
// under the lock in one synced batch, reading each again first: an event
// another sweep or an erasure deleted meanwhile is skipped. The cursor is
// the last entry read.
func (g retentionStore) DeleteExpiredEvents(_ context.Context, req retention.EventsRequest) (*retention.EventsResult, error) {
	s := g.s
	out := &retention.EventsResult{Deleted: map[string]int{}}
	if req.Limit <= 0 {
		return nil, graph.FieldErrorf("limit", "must be positive, not %d", req.Limit)
	}
	lower := pEventTime
	if req.After != "" {
		after, err := hex.DecodeString(req.After)
		if err != nil || len(after) <= eventTimeLen {
			return nil, graph.FieldErrorf("after", "bad cursor %q", req.After)
		}
		lower = append(key(pEventTime, after), 0)
	}
	expired, next, err := s.findExpired(lower, req)
	if err != nil {
		return nil, fmt.Errorf("pebble: delete expired events: %w", err)
	}
	out.Next = next
	if len(expired) == 0 {
		return out, nil
	}
	if err := g.deleteEvents(expired, req.Cutoffs, out); err != nil {
		return nil, fmt.Errorf("pebble: delete expired events: %w", err)
	}
	return out, nil
}

// findExpired reads the event time index from lower up to the latest
// cutoff, at most req.ScanLimit entries or until req.Limit expired events
// are found, and returns their event keys and the cursor after the last
// entry read ("" at the end).
func (s *Store) findExpired(lower []byte, req retention.EventsRequest) (expired [][]byte, next string, err error) {
	if req.Cutoffs.None() {
		return nil, "", nil
	}
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: key(pEventTime, eventTimeBytes(req.Cutoffs.Latest()))})
	if err != nil {
		return nil, "", err
	}
	defer it.Close()
	read := 0
	for it.First(); it.Valid() && len(expired) < req.Limit; it.Next() {
		if read++; read > req.ScanLimit() {
			break
		}
		k := it.Key()
		if cut := req.Cutoffs.Of(string(it.Value())); !cut.IsZero() && eventTimeOf(k).Before(cut) {
			expired = append(expired, key(pEvent, k[len(pEventTime)+eventTimeLen:]))
		}
		next = hex.EncodeToString(k[len(pEventTime):])
	}
	if !it.Valid() {
		next = "" // the end: the sweep is done
	}
	return expired, next, it.Error()
}

// deleteEvents deletes the events under keys (if still stored and
// expired) with their timeline entries, and pends a data change for each
// live profile they were seen with, in one batch under the write lock.
func (g retentionStore) deleteEvents(keys [][]byte, cut retention.Cutoffs, out *retention.EventsResult) error {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &tx{s: s, hashes: map[graph.Key][]byte{}}
	defer t.close()
	b := s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	byProfile := map[string][]*graph.Event{}
	live := map[string]string{} // profile ID → its live profile
	for _, ek := range keys {
		var h eventHead
		ok, err := t.getJSON(&h, ek)
		if err != nil {
			return err
		}
		ev := h.event()
		if !ok || !cut.Expired(ev) {
			continue
		}
		w.del(ek)
		w.del(eventTimeKey(ev.Timestamp, ek[len(pEvent):]))
		for _, k := range ev.Identifiers {
			hk := t.hash(k)
			w.del(timelineKey(hk, ev))
			var n graph.Identifier
			if ok, err := t.getJSON(&n, key(pIdentifier, hk)); err != nil {
				return err
			} else if !ok || n.Profile == "" {
				continue
			}
			lp, ok := live[n.Profile]
			if !ok {
				p, err := eraseStore{s}.live(n.Profile)
				if err != nil {
					return err
				}
				if p != nil {
					lp = p.ID
				}
				live[n.Profile] = lp
			}
			if lp != "" && !slices.Contains(byProfile[lp], ev) {
				byProfile[lp] = append(byProfile[lp], ev)
			}
		}
		out.Deleted[retention.EventType(ev)]++
	}
	var changes []graph.DataChange
	for _, id := range slices.Sorted(maps.Keys(byProfile)) {
		changes = append(changes, graph.DataChange{Profile: id, Events: retention.TrackNames(byProfile[id])})
		out.Profiles = append(out.Profiles, id)
	}
	if err := t.pendData(w, changes); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if err := s.commit(b, w.records); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: delete expired events", Err: err}
	}
	return nil
}

// InactiveProfiles scans the profiles in ID order for live ones last
// updated before before.
func (g retentionStore) InactiveProfiles(_ context.Context, before time.Time, after string, limit int) ([]string, error) {
	lower := pProfile
	if after != "" {
		lower = append(key(pProfile, []byte(after)), 0)
	}
	it, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(pProfile)})
	if err != nil {
		return nil, fmt.Errorf("pebble: inactive profiles: %w", err)
	}
	defer it.Close()
	var out []string
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		var p struct {
			ID         string    `json:"id"`
			UpdatedAt  time.Time `json:"updatedAt"`
			MergedInto string    `json:"mergedInto"`
		}
		if err := jsonUnmarshal(it.Value(), &p); err != nil {
			return nil, fmt.Errorf("pebble: inactive profiles: %w", err)
		}
		if p.MergedInto == "" && p.UpdatedAt.Before(before) {
			out = append(out, p.ID)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: inactive profiles: %w", err)
	}
	return out, nil
}
