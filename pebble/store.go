// Package pebble is the embedded identity-graph store: durable on local
// disk in a Pebble LSM, with no server to run.
//
// Personal values never appear in keys: an identifier is keyed by an
// HMAC-SHA256 of "type:value" under a per-instance secret, and its value
// lives only inside values (its record and its member index entries), so
// that erasing a person can later remove every copy by rewriting records
// (an LSM keeps old keys in places, such as its manifest, that compaction
// does not reach).
package pebble

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	json "github.com/segmentio/encoding/json"

	cpebble "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/idgraph/idgraph/graph"
)

// Key prefixes. Each is one byte plus a separator so prefixes never nest.
var (
	pSetting    = []byte("s/")
	pIdentifier = []byte("i/")  // + hmac(key) → Identifier
	pProfile    = []byte("p/")  // + profile ID → Profile
	pMember     = []byte("pi/") // + profile ID + "/" + hmac(key) → key hmac + type + value (who joined which profile; members.go)
	pEdge       = []byte("e/")  // + hmac(A) + hmac(B) → Edge
	pNeighbour  = []byte("n/")  // + hmac(x) + hmac(y): adjacency, both ways
	pEvent      = []byte("ev/") // + hmac(message ID) → Event; its presence de-duplicates the message
	pTimeline   = []byte("t/")  // + hmac(key) + timestamp + event ID → hmac(message ID)
	pMerge      = []byte("mg/") // + merge ID → MergeEvent
	pProfMerge  = []byte("pm/") // + profile ID + "/" + merge ID → merge ID
	pHub        = []byte("h/")  // + hub marking ID → HubMarking
	pBlock      = []byte("b/")  // + hmac(blocking key)[:16] + profile ID → profile ID
	pQueue      = []byte("q/")  // + queue rank + hmac(A) + hmac(B): pending edges in review order
	pAudit      = []byte("au/") // + audit ID → AuditEntry
	pProfAudit  = []byte("pa/") // + profile ID + "/" + audit ID → audit ID
)

// Store is the embedded backend.
type Store struct {
	db     *cpebble.DB
	fs     vfs.FS // the database's file system, and its directory
	dbDir  string
	secret []byte
	macs   sync.Pool // of HMAC hashes under secret, reset and reused
	// records caches the raw values of identifiers, profiles and edges,
	// which every observation reads and rewrites. Updated only after a
	// commit succeeds, under mu, so it never holds an uncommitted value.
	records *lru.Cache[string, []byte]
	// cacheMu guards the cache's coherence with the disk: a commit drops
	// the keys it writes before it commits and puts their new values after
	// (cacheWrites counts commits under way, cacheGen counts their starts
	// and ends), and a reader caches a value only if no commit began or
	// ended while it read. Otherwise a reader could find the old value in
	// the cache beside a new record on disk, or put an old value it read
	// back after a commit replaced it.
	cacheMu     sync.Mutex
	cacheGen    uint64
	cacheWrites int
	// mu serialises transactions: one writer at a time gives the isolation
	// that stitching needs, and group commit is left to batching.
	mu sync.Mutex
	// leases are the destinations' delivery leases, by destination id,
	// under leaseMu (destinations.go).
	leaseMu sync.Mutex
	leases  map[string]*destLease
	// suppCounts are the suppression list entries by scope and type,
	// counted at Open and kept under mu (suppression.go).
	suppCounts map[suppCount]int
	// suppressed numbers the suppression changes since the store was
	// opened (erase.Store.SuppressionChanges), in memory: one process owns
	// the store, and it has heard of them all.
	suppressed suppressionLog
}

var _ graph.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir. A store of a newer
// format version than this code's is refused (see FormatVersion).
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pebble: open: %w", err)
	}
	return open(dir, randomHex(32), nil)
}

// OpenMem opens a new, empty store held in memory and lost on Close: for
// tests that open thousands of stores (the fuzz target), where a directory
// and an fsync per commit would cost more than the test itself.
func OpenMem() (*Store, error) { return open("mem", randomHex(32), vfs.NewMem()) }

// open opens the store in dir (on fs, or the disk when fs is nil); a new
// store gets secret as its HMAC secret.
func open(dir, secret string, fs vfs.FS) (*Store, error) {
	opts := &cpebble.Options{
		CacheSize:    128 << 20,
		MemTableSize: 32 << 20,
		Logger:       quietLogger{},
	}
	if fs != nil {
		opts.FS, opts.CacheSize, opts.MemTableSize = fs, 8<<20, 4<<20
	}
	// Most point reads ask for keys that do not exist yet (new message IDs,
	// new identifiers): bloom filters answer those without a block read.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	db, err := cpebble.Open(filepath.Join(dir, "graph"), opts)
	if err != nil {
		return nil, fmt.Errorf("pebble: open: %w", err)
	}
	if err := checkFormat(db, dir); err != nil {
		db.Close()
		return nil, err
	}
	records, err := lru.New[string, []byte](recordCacheSize)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("pebble: open: %w", err)
	}
	s := &Store{db: db, fs: cmp.Or[vfs.FS](fs, vfs.Default), dbDir: filepath.Join(dir, "graph"), records: records}
	secret, err = s.InitSetting(context.Background(), "hmac_secret", secret)
	if err != nil {
		db.Close()
		return nil, err
	}
	if s.secret, err = hex.DecodeString(secret); err != nil {
		db.Close()
		return nil, fmt.Errorf("pebble: open: bad secret: %w", err)
	}
	if err := (suppStore{s}).loadSuppCounts(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Close flushes and closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the store is usable.
func (s *Store) Ping(context.Context) error {
	if _, _, err := s.get(pSetting, []byte("hmac_secret")); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Op: "pebble: ping", Err: err}
	}
	return nil
}

// hash is the storage key of an identifier.
func (s *Store) hash(k graph.Key) []byte {
	m, _ := s.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, s.secret)
	}
	m.Reset()
	m.Write([]byte(k.Type))
	m.Write([]byte{':'})
	m.Write([]byte(k.Value))
	sum := m.Sum(nil)
	s.macs.Put(m)
	return sum
}

// messageHash keys an event by its message ID (which may carry personal
// data, as clients choose it).
func (s *Store) messageHash(id string) []byte {
	return s.hash(graph.Key{Type: "message", Value: id})
}

func key(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// recordCacheSize bounds the record cache (about 300 bytes a record).
const recordCacheSize = 200_000

func cached(k []byte) bool {
	return bytes.HasPrefix(k, pIdentifier) || bytes.HasPrefix(k, pProfile) || bytes.HasPrefix(k, pEdge) || bytes.HasPrefix(k, pSegDef)
}

// get returns the value under prefix+rest; ok is false when absent. The
// value is shared with the cache: callers must not modify it.
func (s *Store) get(prefix []byte, rest ...[]byte) ([]byte, bool, error) {
	k := key(append([][]byte{prefix}, rest...)...)
	if v, ok := s.records.Get(string(k)); ok {
		return v, true, nil
	}
	gen, fillOK := s.readGen()
	v, closer, err := s.db.Get(k)
	if errors.Is(err, cpebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	if cached(k) && fillOK {
		s.fill(gen, k, out)
	}
	return out, true, nil
}

// getMany returns the values under ks, nil where absent, read with one
// iterator in key order (nearby keys share block reads, and one iterator
// costs less than one per key). It bypasses the record cache: a bulk
// read (a million members exported) would evict what ingest works on, and
// the cache's lock and lookups cost as much as the reads.
func (s *Store) getMany(ks [][]byte) ([][]byte, error) {
	out := make([][]byte, len(ks))
	order := make([]int, len(ks))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ks[a], ks[b]) })
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	for _, i := range order {
		// A prefix seek of the whole key is a point lookup: the tables'
		// bloom filters skip those that cannot hold it, as Get does.
		if it.SeekPrefixGE(ks[i]) && bytes.Equal(it.Key(), ks[i]) {
			out[i] = bytes.Clone(it.Value())
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, err
	}
	return out, nil
}

// cacheRecord is a cacheable value a batch writes; nil when it deletes.
type cacheRecord struct{ k, v []byte }

// readGen returns the cache generation to read under, and whether values
// read now may be cached at all (no commit under way).
func (s *Store) readGen() (uint64, bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	return s.cacheGen, s.cacheWrites == 0
}

// fill caches a value read under generation gen, unless a commit has
// begun since.
func (s *Store) fill(gen uint64, k, v []byte) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cacheWrites == 0 && s.cacheGen == gen {
		s.records.Add(string(k), v)
	}
}

// commit commits a batch durably, keeping the record cache coherent with
// what it writes.
func (s *Store) commit(b *cpebble.Batch, records []cacheRecord) error {
	s.cacheMu.Lock()
	s.cacheWrites++
	s.cacheGen++
	for _, r := range records {
		s.records.Remove(string(r.k))
	}
	s.cacheMu.Unlock()
	err := b.Commit(cpebble.Sync)
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if err == nil {
		for _, r := range records {
			if r.v == nil {
				s.records.Remove(string(r.k))
			} else {
				s.records.Add(string(r.k), r.v)
			}
		}
	}
	s.cacheWrites--
	s.cacheGen++
	return err
}

func (s *Store) getJSON(dst any, prefix []byte, rest ...[]byte) (bool, error) {
	v, ok, err := s.get(prefix, rest...)
	if err != nil || !ok {
		return ok, err
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return false, fmt.Errorf("corrupt record %q: %w", prefix, err)
	}
	return true, nil
}

// Setting reads a named setting.
func (s *Store) Setting(_ context.Context, name string) (string, bool, error) {
	v, ok, err := s.get(pSetting, []byte(name))
	if err != nil {
		return "", false, fmt.Errorf("pebble: setting: %w", err)
	}
	return string(v), ok, nil
}

// InitSetting stores value under name unless one is there already.
func (s *Store) InitSetting(ctx context.Context, name, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok, err := s.Setting(ctx, name); err != nil || ok {
		return v, err
	}
	if err := s.db.Set(key(pSetting, []byte(name)), []byte(value), cpebble.Sync); err != nil {
		return "", fmt.Errorf("pebble: init setting: %w", err)
	}
	return value, nil
}

// PutSetting stores value under name, replacing any value there.
func (s *Store) PutSetting(_ context.Context, name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Set(key(pSetting, []byte(name)), []byte(value), cpebble.Sync); err != nil {
		return fmt.Errorf("pebble: put setting: %w", err)
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, "pebble: "+f+"\n", a...) }
func (quietLogger) Fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "pebble: fatal: "+f+"\n", a...)
	os.Exit(1)
}

func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("corrupt record: %w", err)
	}
	return nil
}

// Scrub rewrites the store so that values overwritten before it are gone
// from its files, not only from its reads: the memtable is flushed (its
// write-ahead log then becomes obsolete), every table is compacted (which
// drops old versions), and the obsolete logs, which Pebble keeps to
// recycle, are overwritten with zeros (a recycled log is reused from its
// start, and its old tail was never cleared). serve --retire-legacy-keys
// calls it after blanking the keys older versions stored in plain text.
// It costs a full compaction: minutes on a large store.
func (s *Store) Scrub(ctx context.Context) error {
	s.mu.Lock() // no commit, so no log rotation, until done
	defer s.mu.Unlock()
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("pebble: scrub: flush: %w", err)
	}
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return fmt.Errorf("pebble: scrub: compact: %w", err)
	}
	names, err := s.fs.List(s.dbDir)
	if err != nil {
		return fmt.Errorf("pebble: scrub: %w", err)
	}
	type log struct {
		num  uint64
		name string
	}
	var logs []log
	for _, n := range names {
		if num, err := strconv.ParseUint(strings.TrimSuffix(n, ".log"), 10, 64); err == nil && strings.HasSuffix(n, ".log") {
			logs = append(logs, log{num, n})
		}
	}
	// The log in use is the newest (the flush made it); older ones are
	// obsolete.
	slices.SortFunc(logs, func(a, b log) int { return cmp.Compare(a.num, b.num) })
	for _, l := range logs[:max(len(logs)-1, 0)] {
		if err := s.zeroFile(s.fs.PathJoin(s.dbDir, l.name)); err != nil {
			return fmt.Errorf("pebble: scrub: %w", err)
		}
	}
	return nil
}

// zeroFile overwrites the file with zeros, keeping its size.
func (s *Store) zeroFile(path string) error {
	st, err := s.fs.Stat(path)
	if err != nil {
		return err
	}
	f, err := s.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	zeros := make([]byte, 64<<10)
	for off := int64(0); off < st.Size(); off += int64(len(zeros)) {
		n := min(int64(len(zeros)), st.Size()-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
