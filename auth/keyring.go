package auth

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// DefaultGrace is how long a rotated key keeps working.
const DefaultGrace = 24 * time.Hour

// DefaultCacheTTL bounds how long a looked-up record is trusted: below a
// second, so that a revocation made by another process sharing the store
// takes effect within one (this process's own revocations drop the entry
// at once).
const DefaultCacheTTL = 500 * time.Millisecond

// Principal is who a key authenticated: the key's public id and its role.
// Legacy keys (wk_/rk_/sk_) have no public id: see LegacyID.
type Principal struct {
	ID   string
	Role Role
}

// Legacy holds the keys of the scheme before this one, given by flags or
// stored on first start: each still works, with its role, until retired.
type Legacy struct {
	Write, Read, Steward []string
}

// Keyring authenticates keys and manages them. Its zero value is not
// usable: make one with NewKeyring.
type Keyring struct {
	store  Store // nil: only legacy keys
	pepper []byte
	legacy Legacy
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cached
	// Lookups counts store reads of a record (cache misses): tests use it
	// to see that a mistyped key never reaches the store.
	Lookups atomic.Int64
}

type cached struct {
	rec *Record
	at  time.Time
}

// KeyringOptions configure NewKeyring.
type KeyringOptions struct {
	// Store keeps the records; nil leaves only the legacy keys.
	Store Store
	// Pepper keys the HMAC of secrets; required with Store (see LoadPepper).
	Pepper []byte
	Legacy Legacy
	// CacheTTL bounds how long a record is cached (0: DefaultCacheTTL;
	// negative: no cache).
	CacheTTL time.Duration
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// NewKeyring returns a keyring.
func NewKeyring(o KeyringOptions) (*Keyring, error) {
	if o.Store != nil && len(o.Pepper) < 16 {
		return nil, fmt.Errorf("keyring: the pepper must be at least 16 bytes")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Keyring{store: o.Store, pepper: o.Pepper, legacy: o.Legacy, ttl: cmp.Or(o.CacheTTL, DefaultCacheTTL),
		now: o.Now, cache: map[string]cached{}}, nil
}

// Managed reports whether the keyring keeps keys in a store (and so can
// create, rotate and revoke them).
func (k *Keyring) Managed() bool { return k.store != nil }

// Authenticate returns who the key belongs to, or an unauthorized error
// that names no secret: a malformed or mistyped key is refused before any
// lookup; an unknown id and a wrong secret get one message.
func (k *Keyring) Authenticate(ctx context.Context, s string) (Principal, error) {
	if s == "" {
		return Principal{}, graph.Errorf(graph.KindUnauthorized, "no key given")
	}
	if !IsKey(s) {
		if p, ok := k.legacyKey(s); ok {
			return p, nil
		}
		return Principal{}, graph.Errorf(graph.KindUnauthorized, "the key is not valid")
	}
	key, err := Parse(s)
	if err != nil {
		return Principal{}, err
	}
	if k.store == nil {
		return Principal{}, graph.Errorf(graph.KindUnauthorized, "the key is not valid")
	}
	rec, err := k.record(ctx, key.ID)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return Principal{}, graph.Errorf(graph.KindUnauthorized, "the key is not valid")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	// The role is part of the key's text, so a key whose role was edited
	// fails here even before its hash would.
	if !hmac.Equal(Hash(k.pepper, key.Secret), rec.Hash) || rec.Role != key.Role {
		return Principal{}, graph.Errorf(graph.KindUnauthorized, "the key is not valid")
	}
	switch rec.State(k.now()) {
	case "revoked":
		return Principal{}, graph.Errorf(graph.KindUnauthorized, "the key %s was revoked", key.ID)
	case "expired":
		return Principal{}, graph.Errorf(graph.KindUnauthorized, "the key %s has expired (rotated or past its end)", key.ID)
	}
	return Principal{ID: rec.ID, Role: rec.Role}, nil
}

// legacyKey matches s against every legacy key in constant time.
func (k *Keyring) legacyKey(s string) (Principal, bool) {
	found := Principal{}
	for _, set := range []struct {
		role Role
		keys []string
	}{{RoleSteward, k.legacy.Steward}, {RoleRead, k.legacy.Read}, {RoleWrite, k.legacy.Write}} {
		for _, want := range set.keys {
			if subtle.ConstantTimeCompare([]byte(want), []byte(s)) == 1 && found.Role == "" {
				found = Principal{ID: LegacyID(k.pepper, set.role, s), Role: set.role}
			}
		}
	}
	return found, found.Role != ""
}

// record returns the record, from the cache when it is fresh enough.
func (k *Keyring) record(ctx context.Context, id string) (*Record, error) {
	now := time.Now()
	if k.ttl > 0 {
		k.mu.Lock()
		c, ok := k.cache[id]
		k.mu.Unlock()
		if ok && now.Sub(c.at) < k.ttl {
			return c.rec, nil
		}
	}
	k.Lookups.Add(1)
	rec, err := k.store.Key(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.ttl > 0 {
		k.mu.Lock()
		if len(k.cache) > 10000 {
			clear(k.cache) // ids are random: a flood of unknown ones is not cached anyway
		}
		k.cache[id] = cached{rec: rec, at: now}
		k.mu.Unlock()
	}
	return rec, nil
}

func (k *Keyring) forget(id string) {
	k.mu.Lock()
	delete(k.cache, id)
	k.mu.Unlock()
}

func (k *Keyring) managed(op string) error {
	if k.store == nil {
		return graph.Errorf(graph.KindUnavailable, "%s: this store keeps no keys", op)
	}
	return nil
}

// Create makes a key of the role; the returned Key is the only time its
// secret exists outside the client. expires zero means it does not expire.
func (k *Keyring) Create(ctx context.Context, role Role, name string, expires time.Time) (Key, *Record, error) {
	if err := k.managed("create key"); err != nil {
		return Key{}, nil, err
	}
	if len(name) > 200 {
		return Key{}, nil, graph.FieldErrorf("name", "is longer than 200 bytes")
	}
	for range 3 { // a clash of random 8-character ids is all but impossible: retry anyway
		key, err := New(role)
		if err != nil {
			return Key{}, nil, err
		}
		rec := &Record{ID: key.ID, Role: role, Name: name, Hash: Hash(k.pepper, key.Secret), Created: k.now().UTC(), Expires: expires}
		err = k.store.CreateKey(ctx, rec)
		if graph.ErrorKind(err) == graph.KindConflict {
			continue
		}
		if err != nil {
			return Key{}, nil, fmt.Errorf("create key: %w", err)
		}
		return key, rec, nil
	}
	return Key{}, nil, fmt.Errorf("create key: three id clashes in a row")
}

// Rotate makes a new key of the same role and name in place of id, which
// keeps working for grace (0: at once) and then expires.
func (k *Keyring) Rotate(ctx context.Context, id string, grace time.Duration) (Key, *Record, error) {
	if err := k.managed("rotate key"); err != nil {
		return Key{}, nil, err
	}
	if grace < 0 {
		return Key{}, nil, graph.FieldErrorf("grace", "must not be negative")
	}
	if err := checkID(id); err != nil {
		return Key{}, nil, fmt.Errorf("rotate key: %w", err)
	}
	old, err := k.store.Key(ctx, id)
	if err != nil {
		return Key{}, nil, fmt.Errorf("rotate key: %w", err)
	}
	if st := old.State(k.now()); st == "revoked" || st == "expired" {
		return Key{}, nil, graph.Errorf(graph.KindConflict, "rotate key: the key %s is %s already", id, st)
	}
	key, rec, err := k.Create(ctx, old.Role, old.Name, time.Time{})
	if err != nil {
		return Key{}, nil, fmt.Errorf("rotate key: %w", err)
	}
	if _, err := k.store.ExpireKey(ctx, id, k.now().UTC().Add(grace), rec.ID); err != nil {
		return Key{}, nil, fmt.Errorf("rotate key: %w", err)
	}
	k.forget(id)
	return key, rec, nil
}

// Revoke ends the key now: this process refuses it at once, others
// sharing the store within the cache TTL.
func (k *Keyring) Revoke(ctx context.Context, id string) (*Record, error) {
	if err := k.managed("revoke key"); err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("revoke key: %w", err)
	}
	rec, err := k.store.RevokeKey(ctx, id, k.now().UTC())
	k.forget(id)
	if err != nil {
		return nil, fmt.Errorf("revoke key: %w", err)
	}
	return rec, nil
}

// checkID refuses what is not a key id without quoting it: an operator
// may paste a whole key where its id belongs.
func checkID(id string) error {
	if !ValidID(id) {
		return graph.FieldErrorf("id", "is not a key id: give the 8 characters after the role, as in idg_<role>_<id>_…")
	}
	return nil
}

// List returns every stored key record, oldest first.
func (k *Keyring) List(ctx context.Context) ([]*Record, error) {
	if err := k.managed("list keys"); err != nil {
		return nil, err
	}
	recs, err := k.store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return recs, nil
}

// Now returns the keyring's clock reading.
func (k *Keyring) Now() time.Time { return k.now() }

// LegacyID names a legacy key (which has no public id) in audit entries:
// "legacy-<role>-" and 12 hex digits (48 bits) of HMAC-SHA256 keyed with
// the pepper over the key. An unsalted hash of the key (what older
// versions recorded) let anyone holding the audit log test guesses of a
// short key offline; this one cannot be computed without the pepper,
// which lives outside the store. It is stable for as long as the pepper
// is, so one key's entries stay together, and two keys of a role are told
// apart. Without a pepper (a keyring of legacy keys only, as in tests) it
// is "legacy-<role>", which says nothing about the key.
func LegacyID(pepper []byte, role Role, key string) string {
	if len(pepper) == 0 {
		return "legacy-" + string(role)
	}
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("idgraph legacy key id\x00")) // apart from Hash's HMACs of secrets
	m.Write([]byte(key))
	return "legacy-" + string(role) + "-" + hex.EncodeToString(m.Sum(nil)[:6])
}
