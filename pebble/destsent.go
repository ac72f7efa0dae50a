package pebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
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
	// pSentDest (format version 7) lists each destination's rows, so that
	// paging one destination (a resync's exits, the consent sweep) reads
	// only its own rows.
	pSentDest = []byte("dsentd/") // + destination + 0 + profile → ""
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

func sentDestKey(destination, profile string) []byte {
	return key(pSentDest, []byte(destination), []byte{0}, []byte(profile))
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
// pending index entry, in one synced batch. The write lock is every
// profile's lock here: an erasure holds it for its whole batch, so the
// profile read under it is either there (the erasure comes after and
// marks the row) or gone.
func (g destStore) UpdateSent(_ context.Context, destination, profile string, fn func(*destinations.Sent) (bool, error)) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	s := &destinations.Sent{}
	if _, err := g.s.getJSON(s, sentKey(profile, destination)); err != nil {
		return fmt.Errorf("pebble: update sent state: %w", err)
	}
	_, stored, err := g.s.get(pProfile, []byte(profile))
	if err != nil {
		return fmt.Errorf("pebble: update sent state: %w", err)
	}
	s.Destination, s.Profile, s.ProfileGone = destination, profile, !stored
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

// putSent writes (or, keep false, deletes) a row and its index entries.
func putSent(w *batchWriter, s *destinations.Sent, keep bool) {
	k, pk, dk := sentKey(s.Profile, s.Destination), sentPendingKey(s.Destination, s.Profile), sentDestKey(s.Destination, s.Profile)
	if !keep {
		w.del(k)
		w.del(pk)
		w.del(dk)
		return
	}
	w.putJSON(k, s)
	w.put(dk, nil)
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

// SentPage reads the destination's rows after a profile, through the
// destination's index entries. The rows are read by a second iterator,
// opened after the index's (a seek on an open iterator costs less than a
// point read, which opens one each time): a row deleted in between is
// skipped.
func (g destStore) SentPage(_ context.Context, destination, after string, limit int) ([]*destinations.Sent, error) {
	prefix := key(pSentDest, []byte(destination), []byte{0})
	lower := prefix
	if after != "" {
		lower = key(prefix, []byte(after), []byte{0}) // the first profile after after
	}
	out, err := g.sentPage(prefix, lower, destination, limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: sent page: %w", err)
	}
	return out, nil
}

func (g destStore) sentPage(prefix, lower []byte, destination string, limit int) ([]*destinations.Sent, error) {
	idx, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	rows, err := g.s.db.NewIter(&cpebble.IterOptions{LowerBound: pSent, UpperBound: prefixEnd(pSent)})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*destinations.Sent
	for idx.First(); idx.Valid() && len(out) < limit; idx.Next() {
		k := sentKey(string(idx.Key()[len(prefix):]), destination)
		if !rows.SeekGE(k) || !bytes.Equal(rows.Key(), k) {
			continue
		}
		r := &destinations.Sent{}
		if err := json.Unmarshal(rows.Value(), r); err != nil {
			return nil, fmt.Errorf("corrupt sent state: %w", err)
		}
		out = append(out, r)
	}
	if err := cmp.Or(idx.Error(), rows.Error()); err != nil {
		return nil, err
	}
	return out, nil
}

// writeSentByDestination writes the sent state's index by destination of
// an older store once, from its rows.
func writeSentByDestination(db *cpebble.DB) error {
	m := newMigrationBatch(db)
	defer m.close()
	err := scanDB(db, pSent, func(k, _ []byte) error {
		profile, destination, ok := bytes.Cut(k[len(pSent):], []byte{0})
		if !ok {
			return fmt.Errorf("bad sent state key %q", k)
		}
		return m.put(sentDestKey(string(destination), string(profile)), nil)
	})
	if err != nil {
		return err
	}
	return m.commit()
}

// PendingSent reads the destination's rows with a pending request. The
// index is read from the iterator's snapshot and each row as it is now,
// so an entry whose request was sent and cleared meanwhile finds its row
// gone or without a request: it is skipped and the next entries make up
// the limit (counting it cut the page short, and a caller waiting for
// "nothing pending" took a short page for an empty one).
func (g destStore) PendingSent(_ context.Context, destination string, limit int) ([]*destinations.Sent, error) {
	var out []*destinations.Sent
	if limit <= 0 {
		return nil, nil
	}
	prefix := key(pSentPending, []byte(destination), []byte{0})
	err := g.s.scanLimit(prefix, math.MaxInt, func(k, _ []byte) (bool, error) {
		r := &destinations.Sent{}
		ok, err := g.s.getJSON(r, sentKey(string(k[len(prefix):]), destination))
		if ok && r.Pending != nil {
			out = append(out, r)
		}
		return len(out) < limit, err
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
