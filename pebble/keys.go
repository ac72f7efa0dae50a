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
	return k.s.putSync(key(pAPIKey, []byte(r.ID)), r, "a key record")
}

// putSync writes v's JSON under k, synced.
func (s *Store) putSync(k []byte, v any, what string) error {
	return s.putJSON(k, v, what, cpebble.Sync)
}

// putJSON writes v as JSON under k with the given durability.
func (s *Store) putJSON(k []byte, v any, what string, opts *cpebble.WriteOptions) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.db.Set(k, data, opts); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Msg: "writing " + what, Err: err}
	}
	return nil
}

// CreateKey stores a new record.
func (k keyStore) CreateKey(_ context.Context, r *auth.Record) error {
	return k.s.createOnce(pAPIKey, r.ID, "key", r)
}

// createOnce writes v under prefix+id unless something is there (a
// conflict error), under the store's write lock.
func (s *Store) createOnce(prefix []byte, id, what string, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok, err := s.get(prefix, []byte(id)); err != nil {
		return fmt.Errorf("pebble: create %s: %w", what, err)
	} else if ok {
		return graph.Errorf(graph.KindConflict, "pebble: create %s: id %q is taken", what, id)
	}
	if err := s.putSync(key(prefix, []byte(id)), v, "a "+what); err != nil {
		return fmt.Errorf("pebble: create %s: %w", what, err)
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
