package neo4j

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/envelope"
)

// Encryption of personal payloads (WithKeyring).
//
// Every profile owns data keys, (:DataKey {id, owner, wrapped, gen})
// nodes: 32 random bytes wrapped (AES-GCM) under a generation of the
// keyring, which lives outside Neo4j. A profile's traits and an event's
// properties, traits and context are stored as "enc1:<key id>:<base64 of
// nonce, ciphertext and tag>", sealed with the key of the profile that
// owns them and bound to the record and field (the additional data), so
// that a ciphertext copied to another record does not open.
//
// A profile writes under its own key (Profile.key names it); ciphertexts
// name their key, so a merge moves the absorbed profile's keys to the
// survivor (owner) and re-encrypts nothing. A split re-encrypts the events
// that move to the other side under that side's key (reencryptMoved):
// giving each side a copy of the key instead would let the side that
// stays decrypt whatever the other side's erasure left on disk. Erasure
// deletes every key the profile group owns; RotateKeys then rewraps the
// live keys under a new generation and destroys the old one in the
// keyring file, after which the wrapped keys that erasure left in Neo4j's
// store files and transaction logs cannot be unwrapped.

// sealedPrefix starts every sealed property value. A plain value (written
// without a keyring) is JSON and never starts with it.
const sealedPrefix = "enc1:"

// WithKeyring stores profile traits and event payloads encrypted under
// per-profile keys wrapped by ring (default: plain).
func WithKeyring(ring *envelope.Keyring) Option {
	return func(o *options) { o.ring = ring }
}

// sealer holds the keyring and the unwrapped data keys in memory.
type sealer struct {
	ring *envelope.Keyring
	mu   sync.RWMutex
	keys map[string]cipher.AEAD
}

// maxCachedKeys bounds the cache of unwrapped keys (about 1 KB each with
// AES-GCM's tables); past it the cache starts over.
const maxCachedKeys = 100_000

// keyFetcher reads a data key's wrapped bytes by ID (nil when there is
// none): in a transaction through it, so that keys it created are seen.
type keyFetcher func(ctx context.Context, id string) ([]byte, error)

// newKey makes a data key for owner and returns its ID, its row for the
// (:DataKey) node and its cipher.
func (z *sealer) newKey(owner string) (string, map[string]any, cipher.AEAD, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, nil, fmt.Errorf("data key: %w", err)
	}
	id := hex.EncodeToString(b[:])
	key, err := envelope.NewKey()
	if err != nil {
		return "", nil, nil, err
	}
	defer clear(key)
	wrapped, err := z.ring.Wrap(id, key)
	if err != nil {
		return "", nil, nil, err
	}
	gen, _ := envelope.WrappedGeneration(wrapped)
	a, err := envelope.NewAEAD(key)
	if err != nil {
		return "", nil, nil, err
	}
	z.remember(id, a)
	return id, map[string]any{"id": id, "owner": owner, "wrapped": wrapped, "gen": int64(gen)}, a, nil
}

func (z *sealer) remember(id string, a cipher.AEAD) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.keys == nil || len(z.keys) >= maxCachedKeys {
		z.keys = map[string]cipher.AEAD{}
	}
	z.keys[id] = a
}

// forget drops erased keys from memory.
func (z *sealer) forget(ids []string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, id := range ids {
		delete(z.keys, id)
	}
}

// aead returns the cipher of key id, unwrapping it on first use.
func (z *sealer) aead(ctx context.Context, id string, fetch keyFetcher) (cipher.AEAD, error) {
	z.mu.RLock()
	a := z.keys[id]
	z.mu.RUnlock()
	if a != nil {
		return a, nil
	}
	wrapped, err := fetch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("data key %s: %w", id, err)
	}
	if wrapped == nil {
		return nil, fmt.Errorf("data key %s is gone (erased)", id)
	}
	key, err := z.ring.Unwrap(id, wrapped)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if a, err = envelope.NewAEAD(key); err != nil {
		return nil, err
	}
	z.remember(id, a)
	return a, nil
}

// seal encrypts a property value under key id; nil stays nil.
func seal(a cipher.AEAD, id, aad string, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	b, err := envelope.Seal(a, []byte(s), []byte(aad))
	if err != nil {
		return nil, err
	}
	return sealedPrefix + id + ":" + base64.RawStdEncoding.EncodeToString(b), nil
}

// sealedKey returns the key ID a sealed value names.
func sealedKey(v string) (string, bool) {
	rest, ok := strings.CutPrefix(v, sealedPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ":")
	return id, ok
}

// open decrypts m[field] in place when it is sealed. A sealed value read
// without a keyring is an error, never returned as if it were the data.
func (z *sealer) open(ctx context.Context, fetch keyFetcher, m map[string]any, field, aad string) error {
	v, _ := m[field].(string)
	id, ok := sealedKey(v)
	if !ok {
		return nil
	}
	if z == nil {
		return fmt.Errorf("%s is encrypted and the store was opened without a keyring", field)
	}
	a, err := z.aead(ctx, id, fetch)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	b, err := base64.RawStdEncoding.DecodeString(v[len(sealedPrefix)+len(id)+1:])
	if err != nil {
		return fmt.Errorf("%s: corrupt ciphertext: %w", field, err)
	}
	plain, err := envelope.Unseal(a, b, []byte(aad))
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	m[field] = string(plain)
	return nil
}

func profileAAD(id, field string) string { return "profile\x00" + id + "\x00" + field }
func eventAAD(id, field string) string   { return "event\x00" + id + "\x00" + field }

// eventSealed lists the event properties that are sealed.
var eventSealed = []string{"properties", "traits", "context"}

// fetchKey reads a data key outside any transaction.
func (s *Store) fetchKey(ctx context.Context, id string) ([]byte, error) {
	recs, err := s.read(ctx, `MATCH (k:DataKey {id: $id}) RETURN k.wrapped`, map[string]any{"id": id})
	return wrappedFrom(recs, err)
}

// fetchKey reads a data key in the transaction.
func (t *tx) fetchKey(ctx context.Context, id string) ([]byte, error) {
	recs, err := t.collect(ctx, `MATCH (k:DataKey {id: $id}) RETURN k.wrapped`, map[string]any{"id": id})
	return wrappedFrom(recs, err)
}

func wrappedFrom(recs []*neo4jdriver.Record, err error) ([]byte, error) {
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	b, _ := recs[0].Values[0].([]byte)
	return b, nil
}

// openProfile decrypts a profile's sealed properties in place.
func (z *sealer) openProfile(ctx context.Context, fetch keyFetcher, m map[string]any) error {
	if err := z.open(ctx, fetch, m, "traits", profileAAD(getString(m, "id"), "traits")); err != nil {
		return fmt.Errorf("profile %s: %w", getString(m, "id"), err)
	}
	return nil
}

// openEvent decrypts an event's sealed properties in place.
func (z *sealer) openEvent(ctx context.Context, fetch keyFetcher, m map[string]any) error {
	id := getString(m, "messageId")
	for _, f := range eventSealed {
		if err := z.open(ctx, fetch, m, f, eventAAD(id, f)); err != nil {
			return fmt.Errorf("event %s: %w", id, err)
		}
	}
	return nil
}

// profileFrom decrypts and decodes a profile read outside a transaction.
func (s *Store) profileFrom(ctx context.Context, m map[string]any) (*graph.Profile, error) {
	if err := s.seal.openProfile(ctx, s.fetchKey, m); err != nil {
		return nil, err
	}
	return profileFrom(m)
}

// eventFrom decrypts and decodes an event read outside a transaction.
func (s *Store) eventFrom(ctx context.Context, m map[string]any) (*graph.Event, error) {
	if err := s.seal.openEvent(ctx, s.fetchKey, m); err != nil {
		return nil, err
	}
	return eventFrom(m), nil
}

// ownerKey returns the key owner writes under, making one (added to
// *rows, for a (:DataKey) node) when the profile has none it owns.
func (t *tx) ownerKey(ctx context.Context, owner string, rows *[]any) (string, cipher.AEAD, error) {
	if id, ok := t.keys[owner]; ok {
		a, err := t.seal.aead(ctx, id, t.fetchKey)
		return id, a, err
	}
	id, row, a, err := t.seal.newKey(owner)
	if err != nil {
		return "", nil, err
	}
	if t.keys == nil {
		t.keys = map[string]string{}
	}
	t.keys[owner] = id
	*rows = append(*rows, row)
	return id, a, nil
}

// sealChanges encrypts the rows of c's profiles and events in place, under
// the key of the profile that owns each, and returns the data keys to
// create and the key ownership that c's merges move.
func (t *tx) sealChanges(ctx context.Context, c *graph.Changes, profiles, events []any) (keys, owners []any, err error) {
	for i, p := range c.Profiles {
		row := profiles[i].(map[string]any)
		id, a, err := t.ownerKey(ctx, p.ID, &keys)
		if err != nil {
			return nil, nil, fmt.Errorf("profile %s: %w", p.ID, err)
		}
		if row["traits"], err = seal(a, id, profileAAD(p.ID, "traits"), row["traits"]); err != nil {
			return nil, nil, fmt.Errorf("profile %s: %w", p.ID, err)
		}
		row["key"] = id
		if p.MergedInto != "" {
			owners = append(owners, map[string]any{"absorbed": p.ID, "survivor": p.MergedInto})
		}
	}
	profileOf := make(map[graph.Key]string, len(c.Identifiers))
	for _, n := range c.Identifiers {
		if n.Profile != "" {
			profileOf[n.Key] = n.Profile
		}
	}
	for i, e := range c.Events {
		owner, err := t.eventOwner(ctx, e, profileOf)
		if err != nil {
			return nil, nil, err
		}
		id, a, err := t.ownerKey(ctx, owner, &keys)
		if err != nil {
			return nil, nil, fmt.Errorf("event %s: %w", e.MessageID, err)
		}
		row := events[i].(map[string]any)["props"].(map[string]any)
		if err := sealFields(row, a, id, e.MessageID); err != nil {
			return nil, nil, err
		}
	}
	return keys, owners, nil
}

// sealFields seals an event's payload fields in row under key id.
func sealFields(row map[string]any, a cipher.AEAD, id, messageID string) error {
	for _, f := range eventSealed {
		v, err := seal(a, id, eventAAD(messageID, f), row[f])
		if err != nil {
			return fmt.Errorf("event %s: %w", messageID, err)
		}
		row[f] = v
	}
	row["key"] = id
	return nil
}

// eventOwner is the profile an event belongs to: that of its first
// identifier with one, as this transaction writes or locked it, else as
// stored.
func (t *tx) eventOwner(ctx context.Context, e *graph.Event, profileOf map[graph.Key]string) (string, error) {
	for _, k := range e.Identifiers {
		if p := profileOf[k]; p != "" {
			return p, nil
		}
		if p := t.owners[k]; p != "" {
			return p, nil
		}
	}
	recs, err := t.collect(ctx, `MATCH (i:Identifier) WHERE i.key IN $keys AND i.profile IS NOT NULL
		RETURN i.profile LIMIT 1`, map[string]any{"keys": keyList(e.Identifiers)})
	if err != nil {
		return "", fmt.Errorf("event %s: owner: %w", e.MessageID, err)
	}
	if len(recs) == 0 {
		return "", fmt.Errorf("event %s: no identifier of it has a profile to own its key", e.MessageID)
	}
	p, _ := recs[0].Values[0].(string)
	return p, nil
}

// reencryptMoved re-encrypts, under their new profile's key, the events
// seen with identifiers that this transaction moved to a profile that
// does not own the events' key: a split. (A merge moves the keys to the
// survivor instead, so its events match and nothing is rewritten.)
func (t *tx) reencryptMoved(ctx context.Context, c *graph.Changes) error {
	var moved []any
	for _, n := range c.Identifiers {
		if old, ok := t.owners[n.Key]; ok && n.Profile != "" && old != n.Profile {
			moved = append(moved, n.Key.String())
		}
	}
	if len(moved) == 0 {
		return nil
	}
	recs, err := t.collect(ctx, `UNWIND $keys AS key
		MATCH (i:Identifier {key: key})<-[:SEEN_WITH]-(e:Event)
		WITH DISTINCT e, i.profile AS owner
		WHERE e.key IS NOT NULL AND NOT EXISTS { MATCH (k:DataKey {id: e.key}) WHERE k.owner = owner }
		RETURN e.messageId, e.properties, e.traits, e.context, owner`, map[string]any{"keys": moved})
	if err != nil {
		return fmt.Errorf("re-encrypt moved events: %w", err)
	}
	var keys, rows []any
	done := map[string]bool{}
	for _, r := range recs {
		m := map[string]any{"messageId": r.Values[0], "properties": r.Values[1], "traits": r.Values[2], "context": r.Values[3]}
		id := getString(m, "messageId")
		if done[id] {
			continue // seen with identifiers of two profiles: re-encrypted once
		}
		done[id] = true
		if err := t.seal.openEvent(ctx, t.fetchKey, m); err != nil {
			return fmt.Errorf("re-encrypt moved events: %w", err)
		}
		owner, _ := r.Values[4].(string)
		kid, a, err := t.ownerKey(ctx, owner, &keys)
		if err != nil {
			return fmt.Errorf("re-encrypt moved events: %w", err)
		}
		if err := sealFields(m, a, kid, id); err != nil {
			return fmt.Errorf("re-encrypt moved events: %w", err)
		}
		rows = append(rows, m)
	}
	if len(keys) > 0 {
		if err := t.exec(ctx, `UNWIND $rows AS r CREATE (k:DataKey) SET k = r`, map[string]any{"rows": keys}); err != nil {
			return fmt.Errorf("re-encrypt moved events: keys: %w", err)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if err := t.exec(ctx, `UNWIND $rows AS r
		MATCH (e:Event {messageId: r.messageId})
		SET e.properties = r.properties, e.traits = r.traits, e.context = r.context, e.key = r.key`,
		map[string]any{"rows": rows}); err != nil {
		return fmt.Errorf("re-encrypt moved events: %w", err)
	}
	return nil
}

// Rotation is what RotateKeys did.
type Rotation struct {
	// Generation is the keyring's generation now, the only one left.
	Generation uint32
	// Rewrapped counts the data keys rewrapped under it.
	Rewrapped int
	// Unreadable counts data keys wrapped under a generation the keyring
	// had already lost: their payloads were unreadable before.
	Unreadable int
}

// RotateKeys adds a keyring generation, rewraps every data key in the
// database under it, and then deletes the older generations from the
// keyring file, so that the wrapped keys erasure left in Neo4j's store
// files and transaction logs can no longer be unwrapped. Run it (idgraph
// purge) with no other process writing: a key wrapped by a process that
// still uses an old generation would be lost.
func (s *Store) RotateKeys(ctx context.Context) (Rotation, error) {
	var out Rotation
	if s.seal == nil {
		return out, errors.New("neo4j: rotate keys: the store was opened without a keyring")
	}
	ring := s.seal.ring
	gen, err := ring.Rotate()
	if err != nil {
		return out, fmt.Errorf("neo4j: rotate keys: %w", err)
	}
	out.Generation = gen
	skip := []string{}
	for {
		recs, err := s.write(ctx, `MATCH (k:DataKey) WHERE k.gen < $gen AND NOT k.id IN $skip
			RETURN k.id, k.wrapped LIMIT 1000`, map[string]any{"gen": int64(gen), "skip": skip})
		if err != nil {
			return out, wrap("neo4j: rotate keys", err)
		}
		if len(recs) == 0 {
			break
		}
		rows := make([]any, 0, len(recs))
		for _, r := range recs {
			id := asString(r.Values[0])
			old, _ := r.Values[1].([]byte)
			key, err := ring.Unwrap(id, old)
			if errors.Is(err, envelope.ErrUnknownGeneration) {
				out.Unreadable++
				skip = append(skip, id)
				continue
			}
			if err != nil {
				return out, fmt.Errorf("neo4j: rotate keys: %w", err)
			}
			wrapped, err := ring.Wrap(id, key)
			clear(key)
			if err != nil {
				return out, fmt.Errorf("neo4j: rotate keys: %w", err)
			}
			rows = append(rows, map[string]any{"id": id, "old": old, "new": wrapped})
		}
		// A key erased or rewrapped meanwhile is left as it is (and, if
		// still old, read again by the next round).
		done, err := s.write(ctx, `UNWIND $rows AS r
			MATCH (k:DataKey {id: r.id}) WHERE k.wrapped = r.old
			SET k.wrapped = r.new, k.gen = $gen
			RETURN count(*)`, map[string]any{"rows": rows, "gen": int64(gen)})
		if err != nil {
			return out, wrap("neo4j: rotate keys", err)
		}
		n, _ := done[0].Values[0].(int64)
		out.Rewrapped += int(n)
	}
	// Neo4j has committed (and synced) every rewrapped key: the old
	// generations can go.
	if err := ring.DropBefore(gen); err != nil {
		return out, fmt.Errorf("neo4j: rotate keys: %w", err)
	}
	return out, nil
}

// CheckKeyring tells whether the store and its keyring belong together,
// before anything is written. With a keyring, a data key wrapped under one
// of its generations must unwrap: a keyring file lost and made anew, or
// another store's, would otherwise seal new data under a KEK with which
// the old data does not open. Without one, the store must hold no data
// keys: its sealed payloads would not read.
func (s *Store) CheckKeyring(ctx context.Context) error {
	if s.seal == nil {
		recs, err := s.read(ctx, `MATCH (k:DataKey) RETURN k.id LIMIT 1`, nil)
		if err != nil {
			return wrap("neo4j: check keyring", err)
		}
		if len(recs) > 0 {
			return errors.New("neo4j: the store holds encrypted payloads (data keys) and was opened without a keyring")
		}
		return nil
	}
	ring := s.seal.ring
	gens := []int64{}
	for _, g := range ring.Generations() {
		gens = append(gens, int64(g))
	}
	recs, err := s.read(ctx, `OPTIONAL MATCH (k:DataKey) WHERE k.gen IN $gens
		WITH k LIMIT 1
		RETURN k.id, k.wrapped, EXISTS { MATCH (:DataKey) }`, map[string]any{"gens": gens})
	if err != nil {
		return wrap("neo4j: check keyring", err)
	}
	id, _ := recs[0].Values[0].(string)
	wrapped, _ := recs[0].Values[1].([]byte)
	if any, _ := recs[0].Values[2].(bool); any && id == "" {
		return fmt.Errorf("neo4j: keyring %s is not this store's: no data key is wrapped under any of its generations %v", ring.Path(), gens)
	}
	if id == "" {
		return nil
	}
	key, err := ring.Unwrap(id, wrapped)
	if err != nil {
		return fmt.Errorf("neo4j: keyring %s is not this store's: %w", ring.Path(), err)
	}
	clear(key)
	return nil
}
