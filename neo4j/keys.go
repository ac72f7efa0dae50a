package neo4j

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
)

var _ auth.Backend = (*Store)(nil)

// APIKeys returns the store of API key records: (:ApiKey {id, data}) nodes
// whose data is the record's JSON (the HMAC of the secret, never the
// secret).
func (s *Store) APIKeys() auth.Store { return keyStore{s} }

type keyStore struct{ s *Store }

func recordFrom(v any) (*auth.Record, error) {
	data, _ := v.(string)
	r := &auth.Record{}
	if err := json.Unmarshal([]byte(data), r); err != nil {
		return nil, fmt.Errorf("corrupt key record: %w", err)
	}
	return r, nil
}

// CreateKey stores a new record.
func (k keyStore) CreateKey(ctx context.Context, r *auth.Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("neo4j: create key: %w", err)
	}
	return k.s.createUnique(ctx, "ApiKey", "key", r.ID, string(data))
}

// createUnique creates the (:label {id, data}) node; MERGE on the unique
// id makes a clash a conflict error rather than a second node.
func (s *Store) createUnique(ctx context.Context, label, what, id, data string) error {
	recs, err := s.write(ctx, `MERGE (n:`+label+` {id: $id})
		ON CREATE SET n.data = $data, n.fresh = true
		ON MATCH SET n.fresh = false
		WITH n, n.fresh AS created
		REMOVE n.fresh
		RETURN created`, map[string]any{"id": id, "data": data})
	if err != nil {
		return wrap("neo4j: create "+what, err)
	}
	if len(recs) == 0 || recs[0].Values[0] != true {
		return graph.Errorf(graph.KindConflict, "neo4j: create %s: id %q is taken", what, id)
	}
	return nil
}

// Key returns one record.
func (k keyStore) Key(ctx context.Context, id string) (*auth.Record, error) {
	recs, err := k.s.read(ctx, "MATCH (k:ApiKey {id: $id}) RETURN k.data", map[string]any{"id": id})
	if err != nil {
		return nil, wrap("neo4j: key", err)
	}
	if len(recs) == 0 {
		return nil, graph.Errorf(graph.KindNotFound, "neo4j: key: no key with id %q", id)
	}
	r, err := recordFrom(recs[0].Values[0])
	if err != nil {
		return nil, fmt.Errorf("neo4j: key: %w", err)
	}
	return r, nil
}

// ListKeys returns every record, oldest first.
func (k keyStore) ListKeys(ctx context.Context) ([]*auth.Record, error) {
	recs, err := k.s.read(ctx, "MATCH (k:ApiKey) RETURN k.data", nil)
	if err != nil {
		return nil, wrap("neo4j: list keys", err)
	}
	out := make([]*auth.Record, len(recs))
	for i, rec := range recs {
		if out[i], err = recordFrom(rec.Values[0]); err != nil {
			return nil, fmt.Errorf("neo4j: list keys: %w", err)
		}
	}
	auth.SortRecords(out)
	return out, nil
}

// change locks the record's node, applies fn and writes it back, in one
// transaction.
func (k keyStore) change(ctx context.Context, op, id string, fn func(*auth.Record) bool) (*auth.Record, error) {
	var out *auth.Record
	err := k.s.updateJSON(ctx, "neo4j: "+op, "ApiKey", "key", id, func(data string) (string, error) {
		r, err := recordFrom(data)
		if err != nil {
			return "", err
		}
		out = r
		if !fn(r) {
			return data, nil
		}
		b, err := json.Marshal(r)
		return string(b), err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updateJSON locks the (:label {id}) node and replaces its data with
// what fn makes of it, in one transaction; no node is not_found.
func (s *Store) updateJSON(ctx context.Context, op, label, what, id string, fn func(data string) (string, error)) error {
	return segStore{s}.writeTx(ctx, op, func(t *tx) error {
		recs, err := t.collect(ctx, "MATCH (n:"+label+" {id: $id}) SET n.lock = true REMOVE n.lock RETURN n.data",
			map[string]any{"id": id})
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return graph.Errorf(graph.KindNotFound, "no %s with id %q", what, id)
		}
		old, _ := recs[0].Values[0].(string)
		data, err := fn(old)
		if err != nil || data == old {
			return err
		}
		return t.exec(ctx, "MATCH (n:"+label+" {id: $id}) SET n.data = $data", map[string]any{"id": id, "data": data})
	})
}

// ExpireKey moves the record's expiry sooner.
func (k keyStore) ExpireKey(ctx context.Context, id string, at time.Time, replacedBy string) (*auth.Record, error) {
	return k.change(ctx, "expire key", id, func(r *auth.Record) bool { return auth.Expire(r, at, replacedBy) })
}

// RevokeKey marks the record revoked.
func (k keyStore) RevokeKey(ctx context.Context, id string, at time.Time) (*auth.Record, error) {
	return k.change(ctx, "revoke key", id, func(r *auth.Record) bool { return auth.Revoke(r, at) })
}
