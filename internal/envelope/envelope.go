// Package envelope holds the key-encryption keys (KEKs) of envelope
// encryption in a small keyring file outside the data store, and seals
// values with AES-256-GCM.
//
// A store keeps one random data key per owner (a profile) wrapped under
// the keyring's current generation. Rotation adds a generation, the store
// rewraps every live data key under it, and DropBefore then removes the
// older generations from the file: every wrapped key left behind in the
// store's files (those of erased owners) can no longer be unwrapped, so
// the values sealed under them are unreadable.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// KeySize is the size of data keys and KEKs: AES-256.
const KeySize = 32

// ErrUnknownGeneration is returned when a wrapped key names a generation
// the keyring does not hold (destroyed by rotation, or never there).
var ErrUnknownGeneration = errors.New("envelope: unknown key generation")

// Keyring is the set of KEK generations in one file. It is safe for
// concurrent use.
type Keyring struct {
	path string
	mu   sync.RWMutex
	gens map[uint32]cipher.AEAD
	raw  map[uint32][]byte
	cur  uint32
}

type fileFormat struct {
	Version     int               `json:"version"`
	Current     uint32            `json:"current"`
	Generations map[string]string `json:"generations"`
}

// OpenKeyring reads the keyring at path, creating it (mode 0600) with one
// generation when it does not exist.
func OpenKeyring(path string) (*Keyring, error) {
	k := &Keyring{path: path}
	err := k.load()
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	k.raw, k.cur = map[uint32][]byte{1: key}, 1
	// Linked, not renamed, into place: of processes that start at once on
	// a missing file (two servers on one Neo4j), one creates it and the
	// others read that one, rather than each replacing the file with its
	// own KEK and wrapping keys under one that is then lost.
	err = k.write(func(tmp string) error { return os.Link(tmp, k.path) })
	if errors.Is(err, os.ErrExist) {
		clear(key)
		k = &Keyring{path: path}
		return k, k.load()
	}
	if err != nil {
		return nil, err
	}
	return k, k.build()
}

func (k *Keyring) load() error {
	b, err := os.ReadFile(k.path)
	if err != nil {
		return fmt.Errorf("envelope: read keyring: %w", err)
	}
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("envelope: keyring %s: %w", k.path, err)
	}
	if f.Version != 1 {
		return fmt.Errorf("envelope: keyring %s: unknown version %d", k.path, f.Version)
	}
	raw := make(map[uint32][]byte, len(f.Generations))
	for g, s := range f.Generations {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return fmt.Errorf("envelope: keyring %s: generation %q: %w", k.path, g, err)
		}
		key, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(key) != KeySize {
			return fmt.Errorf("envelope: keyring %s: generation %d is not a %d-byte key", k.path, n, KeySize)
		}
		raw[uint32(n)] = key
	}
	if raw[f.Current] == nil {
		return fmt.Errorf("envelope: keyring %s: current generation %d is missing", k.path, f.Current)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.raw, k.cur = raw, f.Current
	return k.buildLocked()
}

func (k *Keyring) build() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.buildLocked()
}

func (k *Keyring) buildLocked() error {
	k.gens = make(map[uint32]cipher.AEAD, len(k.raw))
	for g, key := range k.raw {
		a, err := NewAEAD(key)
		if err != nil {
			return err
		}
		k.gens[g] = a
	}
	return nil
}

// save writes the keyring to a temporary file, syncs it, renames it over
// the old one and syncs the directory, so that a crash leaves either the
// old or the new keyring whole. The caller holds k.mu or owns k alone.
func (k *Keyring) save() error {
	return k.write(func(tmp string) error { return os.Rename(tmp, k.path) })
}

// write writes the keyring to a synced temporary file, puts it in place
// with place (rename or link) and syncs the directory.
func (k *Keyring) write(place func(tmp string) error) error {
	f := fileFormat{Version: 1, Current: k.cur, Generations: map[string]string{}}
	for g, key := range k.raw {
		f.Generations[strconv.FormatUint(uint64(g), 10)] = base64.StdEncoding.EncodeToString(key)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	dir := filepath.Dir(k.path)
	tmp, err := os.CreateTemp(dir, ".keyring-*")
	if err != nil {
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	if err := place(tmp.Name()); err != nil {
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("envelope: save keyring: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("envelope: save keyring: sync directory: %w", err)
	}
	return nil
}

// Path is the keyring file's path.
func (k *Keyring) Path() string { return k.path }

// Current is the generation new keys are wrapped under.
func (k *Keyring) Current() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur
}

// Generations lists the generations the keyring holds, oldest first.
func (k *Keyring) Generations() []uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]uint32, 0, len(k.raw))
	for g := range k.raw {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Rotate adds a new generation, makes it current and saves the keyring.
// The older generations stay until DropBefore, so that keys not yet
// rewrapped can still be unwrapped.
func (k *Keyring) Rotate() (uint32, error) {
	key, err := NewKey()
	if err != nil {
		return 0, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	g := k.cur + 1
	for old := range k.raw {
		g = max(g, old+1)
	}
	k.raw[g], k.cur = key, g
	if err := k.save(); err != nil {
		delete(k.raw, g)
		k.cur = g - 1
		return 0, err
	}
	return g, k.buildLocked()
}

// DropBefore removes every generation older than gen from the keyring
// file (gen must be current). Keys wrapped under them are unreadable
// afterwards.
func (k *Keyring) DropBefore(gen uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen != k.cur {
		return fmt.Errorf("envelope: drop generations before %d: the current generation is %d", gen, k.cur)
	}
	for g := range k.raw {
		if g < gen {
			clear(k.raw[g]) // the file is rewritten below; this is the memory copy
			delete(k.raw, g)
		}
	}
	if err := k.save(); err != nil {
		return err
	}
	return k.buildLocked()
}

// Wrap seals a data key under the current generation, bound to id (the
// key's name in the store): generation (4 bytes, big endian) || nonce ||
// ciphertext and tag.
func (k *Keyring) Wrap(id string, key []byte) ([]byte, error) {
	k.mu.RLock()
	g, a := k.cur, k.gens[k.cur]
	k.mu.RUnlock()
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], g)
	return seal(a, prefix[:], key, []byte(id))
}

// WrappedGeneration is the generation a wrapped key was wrapped under.
func WrappedGeneration(wrapped []byte) (uint32, error) {
	if len(wrapped) < 4 {
		return 0, errors.New("envelope: wrapped key too short")
	}
	return binary.BigEndian.Uint32(wrapped), nil
}

// Unwrap opens a key that Wrap sealed under id. A generation the keyring
// does not hold is ErrUnknownGeneration; a key altered, or given with
// another id, fails authentication.
func (k *Keyring) Unwrap(id string, wrapped []byte) ([]byte, error) {
	g, err := WrappedGeneration(wrapped)
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	a := k.gens[g]
	k.mu.RUnlock()
	if a == nil {
		return nil, fmt.Errorf("%w %d (keyring %s)", ErrUnknownGeneration, g, k.path)
	}
	key, err := Unseal(a, wrapped[4:], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("envelope: unwrap key %s: %w", id, err)
	}
	return key, nil
}

// NewKey returns KeySize random bytes from crypto/rand.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("envelope: new key: %w", err)
	}
	return key, nil
}

// NewAEAD returns AES-256-GCM under key.
func NewAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("envelope: key is %d bytes, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return a, nil
}

// Seal encrypts plaintext bound to aad: a random nonce || ciphertext and
// tag.
func Seal(a cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	return seal(a, nil, plaintext, aad)
}

func seal(a cipher.AEAD, prefix, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, len(prefix)+a.NonceSize(), len(prefix)+a.NonceSize()+len(plaintext)+a.Overhead())
	copy(out, prefix)
	if _, err := rand.Read(out[len(prefix):]); err != nil {
		return nil, fmt.Errorf("envelope: nonce: %w", err)
	}
	return a.Seal(out, out[len(prefix):], plaintext, aad), nil
}

// Unseal decrypts what Seal returned for the same aad; anything altered
// fails.
func Unseal(a cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, errors.New("envelope: sealed value too short")
	}
	n := a.NonceSize()
	out, err := a.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	return out, nil
}
