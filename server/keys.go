package server

import (
	"context"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
)

// legacySettings name the settings where stores made before the idg_
// scheme kept the keys they created on first start.
var legacySettings = [3]string{"write_key", "read_key", "steward_key"}

// scrubber is a store that can rewrite its files so that overwritten
// values leave them (the embedded store: pebble.Store.Scrub).
type scrubber interface{ Scrub(context.Context) error }

// LoadKeys returns the legacy keys (wk_/rk_/sk_): those given (flags or
// environment), else those an older version stored on first start, unless
// retire is set, which deletes the stored ones. It creates none: a new
// store starts with one admin key (FirstAdminKey).
func LoadKeys(ctx context.Context, store graph.Store, write, read, steward string, retire bool) (Keys, error) {
	var keys Keys
	if retire {
		for _, name := range legacySettings {
			if err := store.PutSetting(ctx, name, ""); err != nil {
				return Keys{}, fmt.Errorf("load keys: retire %s: %w", name, err)
			}
		}
		// Blanked is not gone: the embedded store keeps the old values in
		// its write-ahead log and tables until it rewrites them.
		if sc, ok := store.(scrubber); ok {
			if err := sc.Scrub(ctx); err != nil {
				return Keys{}, fmt.Errorf("load keys: retire: %w", err)
			}
		}
	}
	for i, k := range []struct {
		given string
		dst   *[]string
	}{{write, &keys.Write}, {read, &keys.Read}, {steward, &keys.Steward}} {
		if k.given != "" {
			*k.dst = []string{k.given}
			continue
		}
		v, ok, err := store.Setting(ctx, legacySettings[i])
		if err != nil {
			return Keys{}, fmt.Errorf("load keys: %w", err)
		}
		if ok && v != "" {
			*k.dst = []string{v}
		}
	}
	all := map[string]bool{}
	for _, set := range [][]string{keys.Write, keys.Read, keys.Steward} {
		for _, k := range set {
			if all[k] {
				return Keys{}, fmt.Errorf("load keys: the write, read and steward keys must all differ")
			}
			if auth.IsKey(k) {
				return Keys{}, fmt.Errorf("load keys: an idg_ key is not given by flag: it is stored (idgraph keys create)")
			}
			all[k] = true
		}
	}
	return keys, nil
}

// Empty reports whether there are no legacy keys at all.
func (k Keys) Empty() bool { return len(k.Write)+len(k.Read)+len(k.Steward) == 0 }

// FirstAdminKey creates the store's first admin key, once in the store's
// life: ok is false when one was made before (by this process or another
// sharing the store). The caller shows the key once, on stdout, never in
// the log.
func FirstAdminKey(ctx context.Context, store graph.Store, kr *auth.Keyring) (key auth.Key, ok bool, err error) {
	if _, done, err := store.Setting(ctx, "first_admin_key"); err != nil || done {
		return auth.Key{}, false, err
	}
	key, rec, err := kr.Create(ctx, auth.RoleAdmin, "first admin key", time.Time{})
	if err != nil {
		return auth.Key{}, false, fmt.Errorf("first admin key: %w", err)
	}
	// Two first starts at once both get here: the first to record its id
	// wins, and the other revokes the key it made.
	won, err := store.InitSetting(ctx, "first_admin_key", rec.ID)
	if err != nil {
		return auth.Key{}, false, fmt.Errorf("first admin key: %w", err)
	}
	if won != rec.ID {
		if _, err := kr.Revoke(ctx, rec.ID); err != nil {
			return auth.Key{}, false, fmt.Errorf("first admin key: %w", err)
		}
		return auth.Key{}, false, nil
	}
	return key, true, nil
}
