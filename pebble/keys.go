package pebble

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
)

// pAPIKey + key id → auth.Record (the HMAC of the secret, never the secret).
var pAPIKey = []byte("ak/")

var _ auth.Backend = (*Store)(nil)

// APIKeys returns the store of API key records, kept in the same database
// (and written under the same lock).
func (s *Store) APIKeys() auth.Store { return keyStore{s} }

type keyStore struct{ s *Store }

func (k keyStore) get(id string) (*auth.Record, error) {
	v, ok, err := k.s.get(pAPIKey, []byte(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, graph.Errorf(graph.KindNotFound, "no key with id %q", id)
	}
	r := &auth.Record{}
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("corrupt key record %q: %w", id, err)
	}
	return r, nil
}

func (k keyStore) put(r *auth.Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := k.s.db.Set(key(pAPIKey, []byte(r.ID)), v, cpebble.Sync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Msg: "writing a key record", Err: err}
	}
	return nil
}

// CreateKey stores a new record.
func (k keyStore) CreateKey(_ context.Context, r *auth.Record) error {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	if _, err := k.get(r.ID); err == nil {
		return graph.Errorf(graph.KindConflict, "pebble: create key: id %q is taken", r.ID)
	} else if graph.ErrorKind(err) != graph.KindNotFound {
		return fmt.Errorf("pebble: create key: %w", err)
	}
	if err := k.put(r); err != nil {
		return fmt.Errorf("pebble: create key: %w", err)
	}
	return nil
}

// Key returns one record.
func (k keyStore) Key(_ context.Context, id string) (*auth.Record, error) {
	r, err := k.get(id)
	if err != nil {
		return nil, fmt.Errorf("pebble: key: %w", err)
	}
	return r, nil
}

// ListKeys returns every record, oldest first.
func (k keyStore) ListKeys(_ context.Context) ([]*auth.Record, error) {
	it, err := k.s.db.NewIter(&cpebble.IterOptions{LowerBound: pAPIKey, UpperBound: prefixEnd(pAPIKey)})
	if err != nil {
		return nil, fmt.Errorf("pebble: list keys: %w", err)
	}
	defer it.Close()
	var out []*auth.Record
	for it.First(); it.Valid(); it.Next() {
		r := &auth.Record{}
		if err := json.Unmarshal(it.Value(), r); err != nil {
			return nil, fmt.Errorf("pebble: list keys: corrupt record: %w", err)
		}
		out = append(out, r)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: list keys: %w", err)
	}
	auth.SortRecords(out)
	return out, nil
}

func (k keyStore) change(op, id string, fn func(*auth.Record) bool) (*auth.Record, error) {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	r, err := k.get(id)
	if err == nil && fn(r) {
		err = k.put(r)
	}
	if err != nil {
		return nil, fmt.Errorf("pebble: %s: %w", op, err)
	}
	return r, nil
}

// ExpireKey moves the record's expiry sooner.
func (k keyStore) ExpireKey(_ context.Context, id string, at time.Time, replacedBy string) (*auth.Record, error) {
	return k.change("expire key", id, func(r *auth.Record) bool { return auth.Expire(r, at, replacedBy) })
}

// RevokeKey marks the record revoked.
func (k keyStore) RevokeKey(_ context.Context, id string, at time.Time) (*auth.Record, error) {
	return k.change("revoke key", id, func(r *auth.Record) bool { return auth.Revoke(r, at) })
}
