package pebble

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
)

var (
	// Keyed by profile first, so that an erasure or a withdrawal finds
	// every destination's row of a person with one prefix scan.
	pSent        = []byte("dsent/")  // + profile + 0 + destination → destinations.Sent
	pSentPending = []byte("dsentq/") // + destination + 0 + profile → "" while the Sent has a Pending
)

var _ destinations.SentBackend = (*Store)(nil)

// SentState returns the store of what each destination was sent.
func (s *Store) SentState() destinations.SentStore { return destStore{s} }

func sentKey(profile, destination string) []byte {
	return key(pSent, []byte(profile), []byte{0}, []byte(destination))
}

func sentPendingKey(destination, profile string) []byte {
	return key(pSentPending, []byte(destination), []byte{0}, []byte(profile))
}

// SentOf reads the destination's rows of the profiles.
func (g destStore) SentOf(_ context.Context, destination string, profiles []string) (map[string]*destinations.Sent, error) {
	out := map[string]*destinations.Sent{}
	for _, p := range profiles {
		s := &destinations.Sent{}
		ok, err := g.s.getJSON(s, sentKey(p, destination))
		if err != nil {
			return nil, fmt.Errorf("pebble: sent state: %w", err)
		}
		if ok {
			out[p] = s
		}
	}
	return out, nil
}

// UpdateSent changes one row under the store's write lock, with its
// pending index entry, in one synced batch.
func (g destStore) UpdateSent(_ context.Context, destination, profile string, fn func(*destinations.Sent) (bool, error)) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	s := &destinations.Sent{}
	if _, err := g.s.getJSON(s, sentKey(profile, destination)); err != nil {
		return fmt.Errorf("pebble: update sent state: %w", err)
	}
	s.Destination, s.Profile = destination, profile
	keep, err := fn(s)
	if err != nil {
		return err
	}
	b := g.s.db.NewBatch()
	defer b.Close()
	w := &batchWriter{b: b}
	putSent(w, s, keep)
	if w.err == nil {
		w.err = b.Commit(cpebble.Sync)
	}
	if w.err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: update sent state", Err: w.err}
	}
	return nil
}

// putSent writes (or, keep false, deletes) a row and its pending entry.
func putSent(w *batchWriter, s *destinations.Sent, keep bool) {
	k, pk := sentKey(s.Profile, s.Destination), sentPendingKey(s.Destination, s.Profile)
	if !keep {
		w.del(k)
		w.del(pk)
		return
	}
	w.putJSON(k, s)
	if s.Pending != nil {
		w.put(pk, nil)
	} else {
		w.del(pk)
	}
}

// SentTo reads every destination's rows of the profiles.
func (g destStore) SentTo(_ context.Context, profiles []string) ([]*destinations.Sent, error) {
	var out []*destinations.Sent
	for _, p := range profiles {
		rows, err := g.s.sentOfProfile(p)
		if err != nil {
			return nil, fmt.Errorf("pebble: sent state: %w", err)
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (s *Store) sentOfProfile(profile string) ([]*destinations.Sent, error) {
	var out []*destinations.Sent
	err := s.scan(key(pSent, []byte(profile), []byte{0}), func(_, v []byte) error {
		r := &destinations.Sent{}
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("corrupt sent state: %w", err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// PendingSent reads the destination's rows with a pending request.
func (g destStore) PendingSent(_ context.Context, destination string, limit int) ([]*destinations.Sent, error) {
	var out []*destinations.Sent
	prefix := key(pSentPending, []byte(destination), []byte{0})
	err := g.s.scanLimit(prefix, limit, func(k, _ []byte) (bool, error) {
		r := &destinations.Sent{}
		ok, err := g.s.getJSON(r, sentKey(string(k[len(prefix):]), destination))
		if ok {
			out = append(out, r)
		}
		return true, err
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: pending sent state: %w", err)
	}
	return out, nil
}

// markSentErased asks, in an erasure's batch, for the erasure to be sent
// to every destination that was sent one of the profiles.
func (e *eraser) markSentErased(group []string, request string, after uint64, at time.Time) error {
	for _, p := range group {
		rows, err := e.s.sentOfProfile(p)
		if err != nil {
			return err
		}
		for _, s := range rows {
			s.MarkErased(request, after, at)
			putSent(e.w, s, true)
		}
	}
	return nil
}
