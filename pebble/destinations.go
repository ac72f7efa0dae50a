package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
)

var (
	pDest       = []byte("dst/")  // + id → destinations.Destination
	pDestCursor = []byte("dstc/") // + id → destinations.Cursor
	pDestDead   = []byte("dstd/") // + id + 0 + sequence (8 bytes, big-endian) → destinations.DeadLetter
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

// destLease is a destination's lease; its lock is held while a fenced
// cursor is checked and written, so that the lease cannot pass between
// the two. One per destination: a lock for all would serialise every
// destination's synced writes behind each other's.
type destLease struct {
	mu    sync.Mutex
	lease *destinations.Lease // nil: never taken
	// logMu serialises the appends to the destination's delivery log
	// (AppendDelivery): per destination, so that a destination failing
	// every millisecond does not take the store's write lock per attempt.
	logMu sync.Mutex
}

// leaseOf returns a destination's lease entry, locked.
func (g destStore) leaseOf(id string) *destLease {
	l := g.entry(id)
	l.mu.Lock()
	return l
}

// entry returns a destination's lease entry.
func (g destStore) entry(id string) *destLease {
	g.s.leaseMu.Lock()
	l, ok := g.s.leases[id]
	if !ok {
		if g.s.leases == nil {
			g.s.leases = map[string]*destLease{}
		}
		l = &destLease{}
		g.s.leases[id] = l
	}
	g.s.leaseMu.Unlock()
	return l
}

// PutCursor replaces a destination's delivery state; one written under a
// lease epoch is checked against the lease and written under its lock,
// which TryLease takes too.
func (g destStore) PutCursor(_ context.Context, c *destinations.Cursor) error {
	return g.putCursor(c, cpebble.Sync, "pebble: put destination cursor")
}

// PutRetryState writes the cursor as PutCursor does, fenced alike, but
// without waiting for the disk: a failing destination retried often
// would otherwise make a synced write per attempt, and every other
// destination's synced cursor write would queue behind them in the one
// log (docs/activation.md, Isolation). A crash may lose it, and only it:
// the log is replayed in order, so what survives is the state of some
// earlier write, and any synced write after it makes it durable too.
func (g destStore) PutRetryState(_ context.Context, c *destinations.Cursor) error {
	return g.putCursor(c, cpebble.NoSync, "pebble: put destination retry state")
}

func (g destStore) putCursor(c *destinations.Cursor, opts *cpebble.WriteOptions, op string) error {
	if c.Epoch != 0 {
		l := g.leaseOf(c.Destination)
		defer l.mu.Unlock()
		if err := destinations.Fenced(c, l.lease); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := g.s.putJSON(key(pDestCursor, []byte(c.Destination)), c, "a destination cursor", opts); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// TryLease takes or renews a destination's lease. Only one process opens
// an embedded store, so its leases share the workers of the Managers of
// that process, and live in memory: after a crash the restarted process
// finds them free rather than waiting for the dead one's to expire.
func (g destStore) TryLease(_ context.Context, id, owner string, ttl time.Duration) (*destinations.Lease, bool, error) {
	l := g.leaseOf(id)
	defer l.mu.Unlock()
	next, held := destinations.NextLease(l.lease, id, owner, time.Now(), ttl)
	if held {
		l.lease = next
	}
	return next, held, nil
}

// ReleaseLease expires owner's lease at epoch now.
func (g destStore) ReleaseLease(_ context.Context, id, owner string, epoch uint64) error {
	l := g.leaseOf(id)
	defer l.mu.Unlock()
	if cur := l.lease; cur != nil && cur.Owner == owner && cur.Epoch == epoch {
		l.lease = &destinations.Lease{Destination: id, Owner: owner, Epoch: epoch}
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
