package erase

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/tick"
)

// Set is the in-memory suppression set that ingest consults: a lookup is
// one HMAC and one map probe, whatever the set's size. It is loaded from
// the store at start (Load) and kept in step by the Service, which adds
// hashes before its erasure transaction commits and removes them after an
// unsuppression commits. With Follow, it also hears of the changes other
// processes sharing the store make (docs/security.md, "Erasure and
// suppression").
type Set struct {
	hasher Hasher
	mu     sync.RWMutex
	m      map[[32]byte]struct{}
	n      atomic.Int64 // len(m), read without the lock: an empty set costs no HMAC

	// gen counts local Adds and Removes: a refresh during which one ran
	// may have read the store before it committed, and is read again.
	gen atomic.Uint64
	// refresh serialises reads of the store's changes and guards what
	// follows it.
	refresh sync.Mutex
	store   Store
	seq     int64        // the last change applied
	maxAge  atomic.Int64 // a time.Duration; 0: not following
	readAt  atomic.Int64 // when the last clean read began, as time since base
	base    time.Time    // monotonic
}

// DefaultMaxAge bounds how old a read of the store's suppression changes
// a following set answers from; DefaultPollEvery is how often Poll reads.
const (
	DefaultMaxAge    = time.Second
	DefaultPollEvery = 250 * time.Millisecond
)

// NewSet returns an empty set under the hasher's pepper.
func NewSet(h Hasher) *Set { return &Set{hasher: h, m: map[[32]byte]struct{}{}, base: time.Now()} }

// Load replaces the set's contents with the store's suppression entries.
func (s *Set) Load(ctx context.Context, st Store) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	start := s.since()
	// The change number first: a change committed during the full read
	// is read again by the next Refresh.
	ch, err := st.SuppressionChanges(ctx, maxSeq)
	if err != nil {
		return fmt.Errorf("suppression: load: %w", err)
	}
	all, err := st.Suppressions(ctx)
	if err != nil {
		return fmt.Errorf("suppression: load: %w", err)
	}
	s.store, s.seq = st, ch.Seq
	s.readAt.Store(int64(start))
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

// maxSeq asks a store for its last change number and no changes.
const maxSeq = int64(^uint64(0) >> 1)

func (s *Set) since() time.Duration { return time.Since(s.base) }

// Follow makes the set hear of the suppression changes that other
// processes sharing the loaded store make: Refresh (or Poll) reads them,
// ingest (Current) never answers from a read older than maxAge (0:
// DefaultMaxAge), and an erasure returns only after maxAge has passed
// since it committed (Service.Erase), so that every server drops the
// person's messages received after erase returns.
func (s *Set) Follow(maxAge time.Duration) {
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	s.maxAge.Store(int64(maxAge))
}

// MaxAge is the bound given to Follow (0 when not following).
func (s *Set) MaxAge() time.Duration { return time.Duration(s.maxAge.Load()) }

// current reports whether the set needs no read of the store to answer.
func (s *Set) current() bool {
	age := s.MaxAge()
	return age == 0 || s.since()-time.Duration(s.readAt.Load()) < age
}

// errNoStore is Refresh before Load.
var errNoStore = errors.New("suppression: refresh: the set was never loaded")

// Refresh applies the suppression changes the store numbered since the
// last read.
func (s *Set) Refresh(ctx context.Context) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	return s.refreshLocked(ctx)
}

func (s *Set) refreshLocked(ctx context.Context) error {
	if s.store == nil {
		return errNoStore
	}
	for range 8 {
		start, gen := s.since(), s.gen.Load()
		ch, err := s.store.SuppressionChanges(ctx, s.seq)
		if err != nil {
			return fmt.Errorf("suppression: refresh: %w", err)
		}
		s.mu.Lock()
		if s.gen.Load() != gen {
			// A local erasure or unsuppression ran during the read: what was
			// read may predate its commit.
			s.mu.Unlock()
			continue
		}
		s.addLocked(ch.Added)
		s.removeLocked(ch.Removed)
		s.mu.Unlock()
		s.seq = ch.Seq
		s.readAt.Store(int64(start))
		return nil
	}
	return errors.New("suppression: refresh: local changes kept overlapping the read")
}

// Current makes sure that the set answers from a read of the store begun
// less than the Follow bound ago, reading it now if not (ingest calls it
// before consulting the set; graph.Stitcher). A set that does not follow
// is always current.
func (s *Set) Current(ctx context.Context) error {
	if s == nil || s.current() {
		return nil
	}
	s.refresh.Lock()
	defer s.refresh.Unlock()
	if s.current() { // another caller has just read
		return nil
	}
	return s.refreshLocked(ctx)
}

// Poll refreshes a following set every interval (0: DefaultPollEvery)
// until ctx ends, logging failures: Current reads the store itself when
// polls fail for longer than the bound.
func (s *Set) Poll(ctx context.Context, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		every = DefaultPollEvery
	}
	tick.Every(ctx, every, func(ctx context.Context) {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil && log != nil {
			log.Error("suppression refresh", "err", err)
		}
	})
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
	s.gen.Add(1)
	s.addLocked(hashes)
}

func (s *Set) addLocked(hashes []string) {
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
	s.gen.Add(1)
	s.removeLocked(hashes)
}

func (s *Set) removeLocked(hashes []string) {
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
