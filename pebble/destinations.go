package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
)

var (
	pDest       = []byte("dst/")  // + id → destinations.Destination
	pDestCursor = []byte("dstc/") // + id → destinations.Cursor
	pDestDead   = []byte("dstd/") // + id + 0 + sequence (8 bytes, big-endian) → destinations.DeadLetter
	pDestLease  = []byte("dstl/") // + id → destinations.Lease
)

var _ destinations.Backend = (*Store)(nil)

// Destinations returns the store of destinations and their delivery
// state, kept in the same database.
func (s *Store) Destinations() destinations.Store { return destStore{s} }

type destStore struct{ s *Store }

func (g destStore) get(id string) (*destinations.Destination, error) {
	d := &destinations.Destination{}
	ok, err := g.s.getJSON(d, pDest, []byte(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, graph.Errorf(graph.KindNotFound, "no destination %q", id)
	}
	return d, nil
}

func (g destStore) put(k []byte, v any) error { return g.s.putSync(k, v, "a destination record") }

// CreateDestination stores a new destination.
func (g destStore) CreateDestination(_ context.Context, d *destinations.Destination) error {
	return g.s.createOnce(pDest, d.ID, "destination", d)
}

// Destination returns one destination.
func (g destStore) Destination(_ context.Context, id string) (*destinations.Destination, error) {
	d, err := g.get(id)
	if err != nil {
		return nil, fmt.Errorf("pebble: destination: %w", err)
	}
	return d, nil
}

// Destinations returns every destination, oldest first.
func (g destStore) Destinations(_ context.Context) ([]*destinations.Destination, error) {
	out, err := pageJSON[*destinations.Destination](g.s, pDest, prefixEnd(pDest), int(^uint(0)>>1))
	if err != nil {
		return nil, fmt.Errorf("pebble: destinations: %w", err)
	}
	destinations.SortDestinations(out)
	return out, nil
}

// UpdateDestination changes a destination under the store's write lock.
func (g destStore) UpdateDestination(_ context.Context, id string, fn func(*destinations.Destination) error) (*destinations.Destination, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	d, err := g.get(id)
	if err == nil {
		err = fn(d)
	}
	if err == nil {
		err = g.put(key(pDest, []byte(id)), d)
	}
	if err != nil {
		return nil, fmt.Errorf("pebble: update destination: %w", err)
	}
	return d, nil
}

// Cursor returns a destination's delivery state.
func (g destStore) Cursor(_ context.Context, id string) (*destinations.Cursor, error) {
	c := &destinations.Cursor{Destination: id}
	if _, err := g.s.getJSON(c, pDestCursor, []byte(id)); err != nil {
		return nil, fmt.Errorf("pebble: destination cursor: %w", err)
	}
	return c, nil
}

// PutCursor replaces a destination's delivery state; one written under a
// lease epoch is checked against the lease under the store's write lock,
// which TryLease takes too.
func (g destStore) PutCursor(_ context.Context, c *destinations.Cursor) error {
	if c.Epoch != 0 {
		g.s.mu.Lock()
		defer g.s.mu.Unlock()
		l, err := g.lease(c.Destination)
		if err == nil {
			err = destinations.Fenced(c, l)
		}
		if err != nil {
			return fmt.Errorf("pebble: put destination cursor: %w", err)
		}
	}
	if err := g.put(key(pDestCursor, []byte(c.Destination)), c); err != nil {
		return fmt.Errorf("pebble: put destination cursor: %w", err)
	}
	return nil
}

// lease reads a destination's lease (nil: never taken).
func (g destStore) lease(id string) (*destinations.Lease, error) {
	l := &destinations.Lease{}
	ok, err := g.s.getJSON(l, pDestLease, []byte(id))
	if err != nil || !ok {
		return nil, err
	}
	return l, nil
}

// TryLease takes or renews a destination's lease by this process's clock:
// only one process opens an embedded store, so leases here share the
// workers of several Managers on one store.
func (g destStore) TryLease(_ context.Context, id, owner string, ttl time.Duration) (*destinations.Lease, bool, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	cur, err := g.lease(id)
	if err != nil {
		return nil, false, fmt.Errorf("pebble: lease: %w", err)
	}
	next, held := destinations.NextLease(cur, id, owner, time.Now(), ttl)
	if held {
		if err := g.put(key(pDestLease, []byte(id)), next); err != nil {
			return nil, false, fmt.Errorf("pebble: lease: %w", err)
		}
	}
	return next, held, nil
}

// ReleaseLease expires owner's lease at epoch now.
func (g destStore) ReleaseLease(_ context.Context, id, owner string, epoch uint64) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	cur, err := g.lease(id)
	if err == nil && cur != nil && cur.Owner == owner && cur.Epoch == epoch {
		cur.Expires = time.Time{}
		err = g.put(key(pDestLease, []byte(id)), cur)
	}
	if err != nil {
		return fmt.Errorf("pebble: release lease: %w", err)
	}
	return nil
}

func deadKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(key(pDestDead, []byte(id), []byte{0}), seq)
}

// PutDeadLetter stores a dead letter under (destination, sequence).
func (g destStore) PutDeadLetter(_ context.Context, dl *destinations.DeadLetter) error {
	if err := g.put(deadKey(dl.Destination, dl.Record.Sequence), dl); err != nil {
		return fmt.Errorf("pebble: put dead letter: %w", err)
	}
	return nil
}

// DeleteDeadLetter removes a dead letter.
func (g destStore) DeleteDeadLetter(_ context.Context, id string, seq uint64) error {
	if err := g.s.db.Delete(deadKey(id, seq), cpebble.Sync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: delete dead letter", Err: err}
	}
	return nil
}

// DeadLetters pages through a destination's dead letters.
func (g destStore) DeadLetters(_ context.Context, id string, after uint64, limit int) ([]*destinations.DeadLetter, error) {
	if after == ^uint64(0) {
		return nil, nil
	}
	prefix := key(pDestDead, []byte(id), []byte{0})
	out, err := pageJSON[*destinations.DeadLetter](g.s, deadKey(id, after+1), prefixEnd(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: dead letters: %w", err)
	}
	return out, nil
}
