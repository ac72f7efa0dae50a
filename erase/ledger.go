package erase

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// LedgerEntry is one line of the erasure ledger.
type LedgerEntry struct {
	Request string    `json:"request"`
	Mode    Mode      `json:"mode"`
	Hashes  []string  `json:"hashes"`
	At      time.Time `json:"at"`
}

// Ledger is the append-only erasure ledger: a JSONL file kept outside the
// data store (beside the pepper), each line synced before the request
// runs. A store restored from a backup taken before an erasure still
// holds the person; Replay finds and erases them again.
type Ledger struct {
	path string
	mu   sync.Mutex
}

// OpenLedger returns the ledger at path (created on the first append).
func OpenLedger(path string) *Ledger { return &Ledger{path: path} }

// Path is the ledger's file.
func (l *Ledger) Path() string { return l.path }

// Append writes one entry and syncs the file.
func (l *Ledger) Append(e LedgerEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("erasure ledger: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("erasure ledger: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("erasure ledger: append: %w", err)
	}
	return nil
}

// Entries reads every entry, in order. A missing file has none; a torn
// last line (a crash mid-append) is skipped.
func (l *Ledger) Entries() ([]LedgerEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("erasure ledger: %w", err)
	}
	defer f.Close()
	var out []LedgerEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var e LedgerEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("erasure ledger: read: %w", err)
	}
	return out, nil
}

// ReplayResult says what Replay did.
type ReplayResult struct {
	// Requests are the erasing requests the store had no receipt of.
	Requests []string
	// Profiles counts the profiles found again and erased.
	Profiles int
	// Suppressions counts the suppression entries restored.
	Suppressions int
}

// Replay re-applies the ledger to the store: suppression entries the store
// lacks are stored again (less those unsuppressed later), and for every
// erasing request the store has no receipt of (it was restored from
// before the request), every profile holding a hashed identifier, or a
// hashed profile ID, is erased again. It then loads the set. Run it at
// start, before ingest.
func (s *Service) Replay(ctx context.Context) (ReplayResult, error) {
	var res ReplayResult
	if s.Ledger == nil {
		return res, s.Set.Load(ctx, s.Store)
	}
	entries, err := s.Ledger.Entries()
	if err != nil {
		return res, err
	}
	suppress := map[string]string{} // hash → request, net of unsuppressions
	redo := map[string]string{}     // hash → request whose erasure the store lacks
	modes := map[string]Mode{}
	known := map[string]bool{}
	for _, e := range entries {
		modes[e.Request] = e.Mode
		if e.Mode == Unsuppress {
			for _, h := range e.Hashes {
				delete(suppress, h)
				delete(redo, h)
			}
			continue
		}
		if e.Mode.suppresses() {
			for _, h := range e.Hashes {
				suppress[h] = e.Request
			}
		}
		if !e.Mode.erases() {
			continue
		}
		has, ok := known[e.Request]
		if !ok {
			_, err := s.Store.Receipt(ctx, e.Request)
			if err != nil && graph.ErrorKind(err) != graph.KindNotFound {
				return res, fmt.Errorf("erasure replay: %w", err)
			}
			has = err == nil
			known[e.Request] = has
			if !has {
				res.Requests = append(res.Requests, e.Request)
			}
		}
		if !has {
			for _, h := range e.Hashes {
				redo[h] = e.Request
			}
		}
	}
	stored, err := s.Store.Suppressions(ctx)
	if err != nil {
		return res, fmt.Errorf("erasure replay: %w", err)
	}
	byReq := map[string][]string{}
	for h, req := range suppress {
		if _, ok := stored[h]; !ok {
			byReq[req] = append(byReq[req], h)
			res.Suppressions++
		}
	}
	for req, hs := range byReq {
		if err := s.Store.AddSuppressions(ctx, req, hs); err != nil {
			return res, fmt.Errorf("erasure replay: %w", err)
		}
	}
	if len(redo) > 0 {
		n, err := s.reerase(ctx, redo, modes)
		res.Profiles = n
		if err != nil {
			return res, err
		}
	}
	now := s.now()
	for _, req := range res.Requests {
		rc := &Receipt{ID: req, Mode: modes[req], Deleted: map[string]int{}, RequestedAt: now, CompletedAt: now, Replayed: true}
		if err := s.Store.PutReceipt(ctx, rc); err != nil {
			return res, fmt.Errorf("erasure replay: %w", err)
		}
	}
	return res, s.Set.Load(ctx, s.Store)
}

// reerase scans every live profile and erases those holding a hash in
// redo: a full scan, run only when the ledger names a request the store
// has not seen.
func (s *Service) reerase(ctx context.Context, redo map[string]string, modes map[string]Mode) (int, error) {
	type hit struct{ profile, request string }
	var hits []hit
	after := ""
	for {
		ps, err := s.Graph.Profiles(ctx, after, 500)
		if err != nil {
			return 0, fmt.Errorf("erasure replay: %w", err)
		}
		if len(ps) == 0 {
			break
		}
		ids, err := s.Graph.IdentifiersOf(ctx, ps)
		if err != nil {
			return 0, fmt.Errorf("erasure replay: %w", err)
		}
	profiles:
		for i, p := range ps {
			for _, pid := range append([]string{p.ID}, p.Absorbed...) {
				if req, ok := redo[s.Hasher.SubjectHash(pid)]; ok {
					hits = append(hits, hit{p.ID, req})
					continue profiles
				}
			}
			for _, n := range ids[i] {
				if req, ok := redo[s.Hasher.Hash(n.Key)]; ok {
					hits = append(hits, hit{p.ID, req})
					continue profiles
				}
			}
		}
		after = ps[len(ps)-1].ID
	}
	for _, h := range hits {
		req := Request{ID: h.request, Profile: h.profile, At: s.now()}
		if modes[h.request].suppresses() {
			req.Suppress = s.Hasher.Hash
		}
		done, err := s.Store.ErasePerson(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("erasure replay: %w", err)
		}
		s.publish(done.Profiles)
	}
	return len(hits), nil
}
