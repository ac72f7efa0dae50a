package neo4j

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
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
	out := make([]*destinations.Destination, len(recs))
	for i, rec := range recs {
		if out[i], err = decode[destinations.Destination](rec.Values[0]); err != nil {
			return nil, fmt.Errorf("neo4j: destinations: %w", err)
		}
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

// PutCursor replaces a destination's delivery state.
func (g destStore) PutCursor(ctx context.Context, c *destinations.Cursor) error {
	data, err := encode(c)
	if err != nil {
		return fmt.Errorf("neo4j: put destination cursor: %w", err)
	}
	if _, err := g.s.write(ctx, "MERGE (c:DestinationCursor {id: $id}) SET c.data = $data",
		map[string]any{"id": c.Destination, "data": data}); err != nil {
		return wrap("neo4j: put destination cursor", err)
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
	out := make([]*destinations.DeadLetter, len(recs))
	for i, rec := range recs {
		if out[i], err = decode[destinations.DeadLetter](rec.Values[0]); err != nil {
			return nil, fmt.Errorf("neo4j: dead letters: %w", err)
		}
	}
	return out, nil
}
