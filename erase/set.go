package erase

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/idgraph/idgraph/graph"
)

// Set is the in-memory suppression set that ingest consults: a lookup is
// one HMAC and one map probe, whatever the set's size. It is loaded from
// the store at start (Load) and kept in step by the Service, which adds
// hashes before its erasure transaction commits and removes them after an
// unsuppression commits.
type Set struct {
	hasher Hasher
	mu     sync.RWMutex
	m      map[[32]byte]struct{}
	n      atomic.Int64 // len(m), read without the lock: an empty set costs no HMAC
}

// NewSet returns an empty set under the hasher's pepper.
func NewSet(h Hasher) *Set { return &Set{hasher: h, m: map[[32]byte]struct{}{}} }

// Load replaces the set's contents with the store's suppression entries.
func (s *Set) Load(ctx context.Context, st Store) error {
	all, err := st.Suppressions(ctx)
	if err != nil {
		return fmt.Errorf("suppression: load: %w", err)
	}
	m := make(map[[32]byte]struct{}, len(all))
	for h := range all {
		if b, ok := decodeHash(h); ok {
			m[b] = struct{}{}
		}
	}
	s.mu.Lock()
	s.m = m
	s.n.Store(int64(len(m)))
	s.mu.Unlock()
	return nil
}

func decodeHash(h string) ([32]byte, bool) {
	var b [32]byte
	if len(h) != 64 {
		return b, false
	}
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return b, false
	}
	return b, true
}

// Add puts hashes (hex) in the set.
func (s *Set) Add(hashes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hashes {
		if b, ok := decodeHash(h); ok {
			s.m[b] = struct{}{}
		}
	}
	s.n.Store(int64(len(s.m)))
}

// Remove takes hashes (hex) out of the set.
func (s *Set) Remove(hashes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hashes {
		if b, ok := decodeHash(h); ok {
			delete(s.m, b)
		}
	}
	s.n.Store(int64(len(s.m)))
}

// Len is the number of hashes in the set.
func (s *Set) Len() int { return int(s.n.Load()) }

// Suppressed reports whether k's hash is in the set (graph.Suppressor).
func (s *Set) Suppressed(k graph.Key) bool {
	if s == nil || s.n.Load() == 0 {
		return false
	}
	sum := s.hasher.Sum(k)
	s.mu.RLock()
	_, ok := s.m[sum]
	s.mu.RUnlock()
	return ok
}

// Has reports whether the hex hash is in the set.
func (s *Set) Has(h string) bool {
	b, ok := decodeHash(h)
	if !ok {
		return false
	}
	s.mu.RLock()
	_, in := s.m[b]
	s.mu.RUnlock()
	return in
}
