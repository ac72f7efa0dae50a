package neo4j

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

var _ destinations.Backend = (*Store)(nil)

// Destinations returns the store of destinations: (:Destination {id,
// data}), (:DestinationCursor {id, data}) and (:DeadLetter {destination,
// sequence, data}) nodes whose data is the record's JSON.
func (s *Store) Destinations() destinations.Store { return destStore{s} }

type destStore struct{ s *Store }

func decode[T any](v any) (*T, error) {
	data, _ := v.(string)
	out := new(T)
	if err := json.Unmarshal([]byte(data), out); err != nil {
		return nil, fmt.Errorf("corrupt %T: %w", out, err)
	}
	return out, nil
}

// decodeRows decodes column col of each record, skipping rows whose value
// is null: under Neo4j's read-committed isolation a node deleted by a
// transaction that commits while the read runs is still returned, with
// its properties read as null. The row is gone, so it is left out.
func decodeRows[T any](op string, recs []*neo4jdriver.Record, col int) ([]*T, error) {
	out := make([]*T, 0, len(recs))
	for _, rec := range recs {
		if rec.Values[col] == nil {
			continue
		}
		v, err := decode[T](rec.Values[col])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func encode(v any) (string, error) {
	data, err := json.Marshal(v)
	return string(data), err
}

// CreateDestination stores a new destination; a taken id is a conflict.
func (g destStore) CreateDestination(ctx context.Context, d *destinations.Destination) error {
	data, err := encode(d)
	if err != nil {
		return fmt.Errorf("neo4j: create destination: %w", err)
	}
	return g.s.createUnique(ctx, "Destination", "destination", d.ID, data)
}

// Destination returns one destination.
func (g destStore) Destination(ctx context.Context, id string) (*destinations.Destination, error) {
	recs, err := g.s.read(ctx, "MATCH (d:Destination {id: $id}) RETURN d.data", map[string]any{"id": id})
	if err != nil {
		return nil, wrap("neo4j: destination", err)
	}
	if len(recs) == 0 {
		return nil, graph.Errorf(graph.KindNotFound, "neo4j: destination: no destination %q", id)
	}
	d, err := decode[destinations.Destination](recs[0].Values[0])
	if err != nil {
		return nil, fmt.Errorf("neo4j: destination: %w", err)
	}
	return d, nil
}

// Destinations returns every destination, oldest first.
func (g destStore) Destinations(ctx context.Context) ([]*destinations.Destination, error) {
	recs, err := g.s.read(ctx, "MATCH (d:Destination) RETURN d.data", nil)
	if err != nil {
		return nil, wrap("neo4j: destinations", err)
	}
	out, err := decodeRows[destinations.Destination]("neo4j: destinations", recs, 0)
	if err != nil {
		return nil, err
	}
	destinations.SortDestinations(out)
	return out, nil
}

// UpdateDestination locks the destination's node, applies fn and writes
// the result, in one transaction.
func (g destStore) UpdateDestination(ctx context.Context, id string, fn func(*destinations.Destination) error) (*destinations.Destination, error) {
	var out *destinations.Destination
	err := g.s.updateJSON(ctx, "neo4j: update destination", "Destination", "destination", id, func(data string) (string, error) {
		d, err := decode[destinations.Destination](data)
		if err != nil {
			return "", err
		}
		if err := fn(d); err != nil {
			return "", err
		}
		out = d
		return encode(d)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Cursor returns a destination's delivery state.
func (g destStore) Cursor(ctx context.Context, id string) (*destinations.Cursor, error) {
	recs, err := g.s.read(ctx, "MATCH (c:DestinationCursor {id: $id}) RETURN c.data", map[string]any{"id": id})
	if err != nil {
		return nil, wrap("neo4j: destination cursor", err)
	}
	if len(recs) == 0 {
		return &destinations.Cursor{Destination: id}, nil
	}
	c, err := decode[destinations.Cursor](recs[0].Values[0])
	if err != nil {
		return nil, fmt.Errorf("neo4j: destination cursor: %w", err)
	}
	return c, nil
}

// PutCursor replaces a destination's delivery state; one written under a
// lease epoch is checked against the lease node, locked, in the same
// transaction.
func (g destStore) PutCursor(ctx context.Context, c *destinations.Cursor) error {
	data, err := encode(c)
	if err != nil {
		return fmt.Errorf("neo4j: put destination cursor: %w", err)
	}
	const put = "MERGE (c:DestinationCursor {id: $id}) SET c.data = $data"
	params := map[string]any{"id": c.Destination, "data": data}
	if c.Epoch == 0 {
		if _, err := g.s.write(ctx, put, params); err != nil {
			return wrap("neo4j: put destination cursor", err)
		}
		return nil
	}
	return segStore{g.s}.writeTx(ctx, "neo4j: put destination cursor", func(t *tx) error {
		l, _, err := lockLease(ctx, t, c.Destination)
		if err == nil {
			err = destinations.Fenced(c, l)
		}
		if err != nil {
			return err
		}
		return t.exec(ctx, put, params)
	})
}

// PutRetryState is PutCursor: a committed Neo4j transaction is durable,
// and the driver has no cheaper write to offer. (The embedded store
// writes retry states without syncing.)
func (g destStore) PutRetryState(ctx context.Context, c *destinations.Cursor) error {
	return g.PutCursor(ctx, c)
}

// lockLease locks a destination's lease node, creating it when there is
// none (the creation rolls back with a refused transaction), and returns
// the lease (nil: never taken) and the database's clock, which every
// process on the database shares.
func lockLease(ctx context.Context, t *tx, id string) (*destinations.Lease, time.Time, error) {
	recs, err := t.collect(ctx, `MERGE (l:DestinationLease {id: $id})
		SET l.lock = true REMOVE l.lock
		RETURN l.owner, l.epoch, l.expires, timestamp()`, map[string]any{"id": id})
	if err != nil {
		return nil, time.Time{}, err
	}
	v := recs[0].Values
	now := time.UnixMilli(v[3].(int64)).UTC()
	owner, ok := v[0].(string)
	if !ok {
		return nil, now, nil
	}
	epoch, _ := v[1].(int64)
	expires, _ := v[2].(int64)
	return &destinations.Lease{Destination: id, Owner: owner, Epoch: uint64(epoch), Expires: time.UnixMilli(expires).UTC()}, now, nil
}

// TryLease takes or renews a destination's lease by the database's clock.
func (g destStore) TryLease(ctx context.Context, id, owner string, ttl time.Duration) (*destinations.Lease, bool, error) {
	var out *destinations.Lease
	var held bool
	err := segStore{g.s}.writeTx(ctx, "neo4j: lease", func(t *tx) error {
		cur, now, err := lockLease(ctx, t, id)
		if err != nil {
			return err
		}
		out, held = destinations.NextLease(cur, id, owner, now, ttl)
		if !held {
			return nil
		}
		return t.exec(ctx, "MATCH (l:DestinationLease {id: $id}) SET l.owner = $owner, l.epoch = $epoch, l.expires = $expires",
			map[string]any{"id": id, "owner": owner, "epoch": int64(out.Epoch), "expires": out.Expires.UnixMilli()})
	})
	if err != nil {
		return nil, false, err
	}
	return out, held, nil
}

// ReleaseLease expires owner's lease at epoch now.
func (g destStore) ReleaseLease(ctx context.Context, id, owner string, epoch uint64) error {
	if _, err := g.s.write(ctx, `MATCH (l:DestinationLease {id: $id}) WHERE l.owner = $owner AND l.epoch = $epoch
		SET l.expires = 0`, map[string]any{"id": id, "owner": owner, "epoch": int64(epoch)}); err != nil {
		return wrap("neo4j: release lease", err)
	}
	return nil
}

// PutDeadLetter stores a dead letter under (destination, sequence).
func (g destStore) PutDeadLetter(ctx context.Context, dl *destinations.DeadLetter) error {
	data, err := encode(dl)
	if err != nil {
		return fmt.Errorf("neo4j: put dead letter: %w", err)
	}
	if _, err := g.s.write(ctx, "MERGE (l:DeadLetter {destination: $id, sequence: $seq}) SET l.data = $data",
		map[string]any{"id": dl.Destination, "seq": int64(dl.Record.Sequence), "data": data}); err != nil {
		return wrap("neo4j: put dead letter", err)
	}
	return nil
}

// DeleteDeadLetter removes a dead letter.
func (g destStore) DeleteDeadLetter(ctx context.Context, id string, seq uint64) error {
	if _, err := g.s.write(ctx, "MATCH (l:DeadLetter {destination: $id, sequence: $seq}) DELETE l",
		map[string]any{"id": id, "seq": int64(seq)}); err != nil {
		return wrap("neo4j: delete dead letter", err)
	}
	return nil
}

// DeadLetters pages through a destination's dead letters.
func (g destStore) DeadLetters(ctx context.Context, id string, after uint64, limit int) ([]*destinations.DeadLetter, error) {
	recs, err := g.s.read(ctx, `MATCH (l:DeadLetter {destination: $id}) WHERE l.sequence > $after
		RETURN l.data ORDER BY l.sequence LIMIT $limit`, map[string]any{"id": id, "after": int64(after), "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: dead letters", err)
	}
	return decodeRows[destinations.DeadLetter]("neo4j: dead letters", recs, 0)
}
