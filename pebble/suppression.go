package pebble

import (
	"context"
	"encoding/json"
	"fmt"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/suppression"
)

// Suppression list entries are kept twice, as JSON: by scope for pages and
// counts, by hash for the delivery-time lookup. Keys hold hashes only.
var (
	pSuppScope = []byte("sls/") // + scope + 0 + hash → suppression.Entry
	pSuppHash  = []byte("slh/") // + hash + 0 + scope → suppression.Entry
)

var _ suppression.Backend = (*Store)(nil)

// SuppressionLists returns the store of suppression list entries, kept in
// the same database.
func (s *Store) SuppressionLists() suppression.Store { return suppStore{s} }

type suppStore struct{ s *Store }

func suppScopeKey(sc suppression.Scope, hash string) []byte {
	return key(pSuppScope, []byte(sc.String()), []byte{0}, []byte(hash))
}

func suppHashKey(hash string, sc suppression.Scope) []byte {
	return key(pSuppHash, []byte(hash), []byte{0}, []byte(sc.String()))
}

// suppCount is a key of the entry counts: a scope and an identifier type.
type suppCount struct {
	scope suppression.Scope
	typ   string
}

// loadSuppCounts counts the entries, at Open: one process opens the
// store, and every add and remove after it keeps the counts
// (applySuppCounts), so suppressionCounts reads no entry. Counting here
// rather than at the first add, remove or count keeps the scan off those
// calls, which would hold the store's write lock through it (ingest
// waiting on a scan of every entry); Open pays it once, before the store
// serves anything.
func (g suppStore) loadSuppCounts() error {
	n := map[suppCount]int{}
	err := g.s.scan(pSuppScope, func(_, v []byte) error {
		var e suppression.Entry
		if err := jsonUnmarshal(v, &e); err != nil {
			return err
		}
		n[suppCount{e.Scope, e.Type}]++
		return nil
	})
	if err != nil {
		return fmt.Errorf("pebble: open: count suppression list entries: %w", err)
	}
	g.s.suppCounts = n
	return nil
}

// applySuppCounts adds a committed batch's changes to the counts (under
// the write lock the batch was written under, so no reader sees a count
// its entries do not have).
func (g suppStore) applySuppCounts(delta map[suppCount]int) {
	for k, d := range delta {
		if g.s.suppCounts[k] += d; g.s.suppCounts[k] == 0 {
			delete(g.s.suppCounts, k)
		}
	}
}

// AddSuppressionEntries stores the new entries in one synced batch, under
// the store's write lock so that concurrent adds count each entry once.
func (g suppStore) AddSuppressionEntries(_ context.Context, es []suppression.Entry) (int, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	delta := map[suppCount]int{}
	b := g.s.db.NewBatch()
	defer b.Close()
	added := map[string]bool{}
	for _, e := range es {
		k := suppScopeKey(e.Scope, e.Hash)
		if added[string(k)] {
			continue
		}
		_, closer, err := g.s.db.Get(k)
		if err == nil {
			closer.Close()
			continue
		}
		if err != cpebble.ErrNotFound {
			return 0, fmt.Errorf("pebble: add suppression entries: %w", err)
		}
		data, err := json.Marshal(e)
		if err != nil {
			return 0, fmt.Errorf("pebble: add suppression entries: %w", err)
		}
		if err := b.Set(k, data, nil); err != nil {
			return 0, fmt.Errorf("pebble: add suppression entries: %w", err)
		}
		if err := b.Set(suppHashKey(e.Hash, e.Scope), data, nil); err != nil {
			return 0, fmt.Errorf("pebble: add suppression entries: %w", err)
		}
		added[string(k)] = true
		delta[suppCount{e.Scope, e.Type}]++
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		return 0, &graph.Error{Kind: graph.KindUnavailable, Msg: "pebble: add suppression entries", Err: err}
	}
	g.applySuppCounts(delta)
	return len(added), nil
}

// RemoveSuppressionEntries deletes the scope's entries in one synced
// batch.
func (g suppStore) RemoveSuppressionEntries(_ context.Context, sc suppression.Scope, hashes []string) (int, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	delta := map[suppCount]int{}
	b := g.s.db.NewBatch()
	defer b.Close()
	removed := map[string]bool{}
	for _, h := range hashes {
		k := suppScopeKey(sc, h)
		if removed[h] {
			continue
		}
		v, closer, err := g.s.db.Get(k)
		if err == cpebble.ErrNotFound {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("pebble: remove suppression entries: %w", err)
		}
		var e suppression.Entry
		err = jsonUnmarshal(v, &e)
		closer.Close()
		if err != nil {
			return 0, fmt.Errorf("pebble: remove suppression entries: %w", err)
		}
		delta[suppCount{sc, e.Type}]--
		if err := b.Delete(k, nil); err != nil {
			return 0, fmt.Errorf("pebble: remove suppression entries: %w", err)
		}
		if err := b.Delete(suppHashKey(h, sc), nil); err != nil {
			return 0, fmt.Errorf("pebble: remove suppression entries: %w", err)
		}
		removed[h] = true
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		return 0, &graph.Error{Kind: graph.KindUnavailable, Msg: "pebble: remove suppression entries", Err: err}
	}
	g.applySuppCounts(delta)
	return len(removed), nil
}

// SuppressionEntries pages through a scope's entries by hash.
func (g suppStore) SuppressionEntries(_ context.Context, sc suppression.Scope, after string, limit int) ([]suppression.Entry, error) {
	prefix := key(pSuppScope, []byte(sc.String()), []byte{0})
	lower := prefix
	if after != "" {
		lower = append(suppScopeKey(sc, after), 0)
	}
	out, err := pageJSON[suppression.Entry](g.s, lower, prefixEnd(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: suppression entries: %w", err)
	}
	return out, nil
}

// SuppressionCounts reads the counts kept with the entries (counted once
// a process, at Open).
func (g suppStore) SuppressionCounts(_ context.Context) ([]suppression.Count, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	out := make([]suppression.Count, 0, len(g.s.suppCounts))
	for k, c := range g.s.suppCounts {
		out = append(out, suppression.Count{Scope: k.scope, Type: k.typ, N: c})
	}
	suppression.SortCounts(out)
	return out, nil
}

// SuppressionsOf reads each hash's range of the by-hash index.
func (g suppStore) SuppressionsOf(_ context.Context, hashes []string) ([]suppression.Entry, error) {
	var out []suppression.Entry
	seen := map[string]bool{}
	for _, h := range hashes {
		if seen[h] {
			continue
		}
		seen[h] = true
		prefix := key(pSuppHash, []byte(h), []byte{0})
		es, err := pageJSON[suppression.Entry](g.s, prefix, prefixEnd(prefix), int(^uint(0)>>1))
		if err != nil {
			return nil, fmt.Errorf("pebble: suppressions of: %w", err)
		}
		out = append(out, es...)
	}
	suppression.SortEntries(out)
	return out, nil
}
