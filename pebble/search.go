package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	json "github.com/segmentio/encoding/json"

	"github.com/idgraph/idgraph/graph"
)

// The search index maps each prefix (2 to maxSearchPrefix bytes) of every
// lower-cased identifier value, name trait and name word to the entries it
// starts: x/ + hmac(prefix) + rank + hmac(entry) → entry. Prefixes are
// hashed like identifiers, so no personal value appears in a key; the rank
// bytes (exact first, then shorter values) make a query one short scan.
// Entries are never rewritten: stale ones (a renamed or absorbed profile)
// are dropped when read.
const (
	minSearchPrefix = 2
	maxSearchPrefix = 24
)

var pSearch = []byte("x/")

type searchEntry struct {
	Profile string `json:"p"`
	Field   string `json:"f"`
	Value   string `json:"v"`
}

func (s *Store) searchPrefixKey(prefix string) []byte {
	return key(pSearch, s.hash(graph.Key{Type: "search", Value: prefix})[:16])
}

// indexSearch writes the entries for one value, matched by its whole
// lower-cased text and, for names, by each word, with its erasure index
// entries (eraseindex.go).
func (t *tx) indexSearch(w *batchWriter, e searchEntry) {
	data, err := json.Marshal(e)
	if err != nil {
		w.err = err
		return
	}
	id := t.s.searchID(e)
	for _, k := range t.s.searchKeys(e, id) {
		w.put(k, data)
	}
	for _, k := range searchOwnerEntries(e, id, t.s.searchIdentHash(e)) {
		w.put(k, data)
	}
}

// searchID is the entry's ID, the last bytes of each of its keys.
func (s *Store) searchID(e searchEntry) []byte {
	return s.hash(graph.Key{Type: "entry", Value: e.Profile + "\x00" + e.Field + "\x00" + e.Value})[:searchIDLen]
}

// searchIdentHash is the hash of an identifier entry's identifier (nil
// for a name).
func (s *Store) searchIdentHash(e searchEntry) []byte {
	if e.Field == "name" {
		return nil
	}
	return s.hash(graph.Key{Type: e.Field, Value: e.Value})
}

// searchKeys are the keys an entry is stored under: one per prefix of its
// lower-cased value and, for names, of each word.
func (s *Store) searchKeys(e searchEntry, id []byte) [][]byte {
	lower := strings.ToLower(e.Value)
	texts := []string{lower}
	if e.Field == "name" {
		for _, word := range strings.Fields(lower) {
			if word != lower {
				texts = append(texts, word)
			}
		}
	}
	var out [][]byte
	done := map[string]bool{}
	for _, text := range texts {
		for n := minSearchPrefix; n <= min(len(text), maxSearchPrefix); n++ {
			prefix := text[:n]
			if done[prefix] {
				continue
			}
			done[prefix] = true
			var rank [3]byte
			if prefix != lower {
				rank[0] = 1
			}
			binary.BigEndian.PutUint16(rank[1:], uint16(min(len(e.Value), 0xffff)))
			out = append(out, key(s.searchPrefixKey(prefix), rank[:], id))
		}
	}
	return out
}

// Search finds identifiers and names starting with prefix.
func (s *Store) Search(ctx context.Context, prefix string, limit int) ([]graph.SearchHit, error) {
	if len(prefix) < minSearchPrefix || limit <= 0 {
		return nil, nil
	}
	scanKey := s.searchPrefixKey(prefix[:min(len(prefix), maxSearchPrefix)])
	budget := limit*5 + 50 // stale entries are skipped, within bounds
	var hits []graph.SearchHit
	seen := map[graph.SearchHit]bool{}
	err := s.scanLimit(scanKey, budget, func(_, v []byte) (bool, error) {
		var e searchEntry
		if err := jsonUnmarshal(v, &e); err != nil {
			return false, err
		}
		lower := strings.ToLower(e.Value)
		h := graph.SearchHit{Profile: e.Profile, Field: e.Field, Value: e.Value, Exact: lower == prefix}
		if seen[h] || !matches(lower, prefix, e.Field == "name") {
			return true, nil
		}
		if e.Field == "name" {
			p, err := s.Profile(ctx, e.Profile)
			if err != nil || p.MergedInto != "" || !slices.Contains(p.Names(), e.Value) {
				return true, nil // renamed or absorbed since
			}
		}
		seen[h] = true
		hits = append(hits, h)
		return len(hits) < limit*2, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: search: %w", err)
	}
	slices.SortFunc(hits, graph.SearchRank)
	return hits[:min(limit, len(hits))], nil
}

// matches checks the whole query (the index keys only its first bytes).
func matches(lower, prefix string, words bool) bool {
	if strings.HasPrefix(lower, prefix) {
		return true
	}
	if words {
		for _, w := range strings.Fields(lower) {
			if strings.HasPrefix(w, prefix) {
				return true
			}
		}
	}
	return false
}

// scanLimit calls fn for at most n entries under prefix, until fn says stop.
func (s *Store) scanLimit(prefix []byte, n int, fn func(k, v []byte) (bool, error)) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	end := prefixEnd(prefix)
	for valid := it.SeekGE(prefix); valid && n > 0 && bytes.Compare(it.Key(), end) < 0; valid, n = it.Next(), n-1 {
		more, err := fn(it.Key(), bytes.Clone(it.Value()))
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}
