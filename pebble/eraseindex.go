package pebble

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

// The erasure indexes (format version 6) name, for one person, the hub
// markings, blocking entries and search entries that hold their
// identifiers or profile IDs, so that an erasure reads only the person's
// own entries instead of scanning every marking, block and search entry.
var (
	pHubKey       = []byte("hk/") // + hmac(key) + hub marking ID → "": the key's markings
	pProfBlock    = []byte("pb/") // + profile ID + "/" + blocking key hash (16 bytes) → "": the profile's blocking entries
	pSearchOwner  = []byte("xp/") // + profile ID + "/" + entry ID (8 bytes) → searchEntry: the profile's search entries
	pSearchKeyOwn = []byte("xk/") // + hmac(key) + entry ID (8 bytes) → searchEntry: an identifier's search entry
)

const searchIDLen = 8

func hubKeyEntry(keyHash []byte, id string) []byte { return key(pHubKey, keyHash, []byte(id)) }

func profBlockEntry(profile string, blockHash []byte) []byte {
	return key(pProfBlock, []byte(profile+"/"), blockHash)
}

// searchOwnerEntries are the erasure index entries of a search entry:
// one under its profile and, for an identifier, one under its hash.
func searchOwnerEntries(e searchEntry, id, identHash []byte) [][]byte {
	out := [][]byte{key(pSearchOwner, []byte(e.Profile+"/"), id)}
	if e.Field != "name" {
		out = append(out, key(pSearchKeyOwn, identHash, id))
	}
	return out
}

// writeEraseIndexes writes the erasure indexes of an older store once,
// from its hub markings, blocking entries and search entries. Search
// entries repeat one value under each of its prefixes; each value's index
// entry is written once per prefix key, harmlessly (the same key and
// value).
func writeEraseIndexes(db *cpebble.DB) error {
	var mac func(graph.Key) []byte
	hasher := func() (func(graph.Key) []byte, error) {
		if mac != nil {
			return mac, nil
		}
		v, closer, err := db.Get(key(pSetting, []byte("hmac_secret")))
		if err != nil {
			return nil, fmt.Errorf("read the hmac secret: %w", err)
		}
		secret, err := hex.DecodeString(string(v))
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("bad hmac secret: %w", err)
		}
		mac = func(k graph.Key) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(k.Type + ":" + k.Value))
			return m.Sum(nil)
		}
		return mac, nil
	}
	m := newMigrationBatch(db)
	defer m.close()
	put := m.put
	err := scanDB(db, pHub, func(_, v []byte) error {
		var h graph.HubMarking
		if err := jsonUnmarshal(v, &h); err != nil {
			return err
		}
		hash, err := hasher()
		if err != nil {
			return err
		}
		return put(hubKeyEntry(hash(h.Key), h.ID), nil)
	})
	if err == nil {
		err = scanDB(db, pBlock, func(k, v []byte) error {
			if len(k) < len(pBlock)+16 {
				return nil
			}
			return put(profBlockEntry(string(v), k[len(pBlock):len(pBlock)+16]), nil)
		})
	}
	if err == nil {
		err = scanDB(db, pSearch, func(k, v []byte) error {
			var e searchEntry
			if err := jsonUnmarshal(v, &e); err != nil {
				return err
			}
			var ih []byte
			if e.Field != "name" {
				hash, err := hasher()
				if err != nil {
					return err
				}
				ih = hash(graph.Key{Type: e.Field, Value: e.Value})
			}
			for _, ok := range searchOwnerEntries(e, k[len(k)-searchIDLen:], ih) {
				if err := put(ok, v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	return m.commit()
}

// scanDB calls fn for every entry under prefix.
func scanDB(db *cpebble.DB, prefix []byte, fn func(k, v []byte) error) error {
	it, err := db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}
