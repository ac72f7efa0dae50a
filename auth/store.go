package auth

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"time"
)

// Record is a key as stored: its public id and role, the HMAC of its
// secret, and its lifetime. It never holds the secret.
type Record struct {
	ID   string `json:"id"`
	Role Role   `json:"role"`
	// Name is the operator's label ("web shop", "ann's laptop").
	Name string `json:"name,omitempty"`
	// Hash is HMAC-SHA256(pepper, secret).
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
	// Expires, when set, ends the key: a rotated key keeps working until
	// then (its grace period).
	Expires time.Time `json:"expires,omitzero"`
	// Revoked, when set, ended the key at once.
	Revoked time.Time `json:"revoked,omitzero"`
	// ReplacedBy names the key a rotation made in its place.
	ReplacedBy string `json:"replacedBy,omitempty"`
}

// State says whether the record accepts requests at now.
func (r *Record) State(now time.Time) string {
	switch {
	case !r.Revoked.IsZero():
		return "revoked"
	case !r.Expires.IsZero() && !now.Before(r.Expires):
		return "expired"
	case !r.Expires.IsZero():
		return "expiring"
	}
	return "active"
}

// Hash returns HMAC-SHA256(pepper, secret), what a record stores.
func Hash(pepper []byte, secret string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// Store keeps key records. Every backend implements it (see
// auth/storetest); the graph.Store of a backend exposes it through Backend.
type Store interface {
	// CreateKey stores a new record; a record with its id already there is
	// a conflict error.
	CreateKey(ctx context.Context, r *Record) error
	// Key returns the record with the id, or a not_found error.
	Key(ctx context.Context, id string) (*Record, error)
	// ListKeys returns every record, oldest first.
	ListKeys(ctx context.Context) ([]*Record, error)
	// ExpireKey moves the record's expiry to at unless it already expires
	// sooner, and records the key that replaced it (if any); a revoked key
	// stays revoked. An unknown id is a not_found error.
	ExpireKey(ctx context.Context, id string, at time.Time, replacedBy string) (*Record, error)
	// RevokeKey marks the record revoked at at, unless it already is
	// (the first revocation time stays). An unknown id is a not_found error.
	RevokeKey(ctx context.Context, id string, at time.Time) (*Record, error)
}

// Backend is implemented by graph stores that also keep key records.
type Backend interface {
	APIKeys() Store
}

// Expire applies ExpireKey's rule to a record in memory, for backends that
// read, change and write: it reports whether anything changed.
func Expire(r *Record, at time.Time, replacedBy string) bool {
	changed := false
	if r.Expires.IsZero() || at.Before(r.Expires) {
		r.Expires, changed = at, true
	}
	if replacedBy != "" && r.ReplacedBy != replacedBy {
		r.ReplacedBy, changed = replacedBy, true
	}
	return changed
}

// Revoke applies RevokeKey's rule to a record in memory.
func Revoke(r *Record, at time.Time) bool {
	if !r.Revoked.IsZero() {
		return false
	}
	r.Revoked = at
	return true
}

// SortRecords orders records oldest first (ties by id), as ListKeys
// returns them.
func SortRecords(rs []*Record) {
	slices.SortFunc(rs, func(a, b *Record) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
}
