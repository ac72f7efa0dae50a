package neo4j

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/idgraph/idgraph/graph"
)

// Search reads two indexes, both on (length, lower-cased text), where the
// length is that of the value as stored, by which hits rank:
//
//   - Identifier.searchLen, Identifier.search: each identifier's value;
//   - (:NameWord {len, word, profile, value}): for each live profile's name
//     traits, the whole value and each of its words. Apply rewrites a
//     profile's NameWord nodes when its names change or it is absorbed.
//
// A range index answers STARTS WITH, but in text order, not by length;
// seeking one length at a time, shortest first, gives the best hits of
// each source (exact matches have the prefix's length) whatever the number
// of matches. Values longer than maxSearchLen share the last length.
const maxSearchLen = 128

// searchLen is the length bucket a value is indexed under.
func searchLen(value string) int { return min(len(value), maxSearchLen) }

// maxWordBytes bounds an indexed name word: Neo4j's range index refuses a
// key over about 8 KB, failing the whole ingest transaction (a 9 KB name
// without spaces did), and a prefix search never needs more.
const maxWordBytes = 1024

// clip cuts s to at most n bytes, at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// nameWord is one NameWord node: a word (or the whole value) of a name.
type nameWord struct {
	word, value string
}

// nameWords returns the search entries of a live profile's name traits:
// each value whole and each of its words, lower-cased, each once. An
// absorbed profile has none: its traits were merged into the survivor.
func nameWords(p *graph.Profile) []nameWord {
	if p.MergedInto != "" {
		return nil
	}
	var out []nameWord
	for _, v := range p.Names() {
		lower := strings.ToLower(v)
		for _, w := range append([]string{lower}, strings.Fields(lower)...) {
			if nw := (nameWord{clip(w, maxWordBytes), v}); !slices.Contains(out, nw) {
				out = append(out, nw)
			}
		}
	}
	return out
}

// searchQuery fetches up to $n rows from each source, shortest values
// first. Rows of one length are disjoint from other lengths' and DISTINCT
// within it (a name can match by several words), so each LIMIT counts
// distinct hits.
const searchQuery = `CALL {
		UNWIND range(0, $maxLen) AS len
		CALL {
			WITH len
			MATCH (i:Identifier)
			USING INDEX i:Identifier(searchLen, search)
			WHERE i.searchLen = len AND i.search STARTS WITH $prefix
			RETURN i.profile AS profile, i.type AS field, i.value AS value
			LIMIT $n
		}
		RETURN profile, field, value
		LIMIT $n
	UNION ALL
		UNWIND range(0, $maxLen) AS len
		CALL {
			WITH len
			MATCH (w:NameWord)
			USING INDEX w:NameWord(len, word)
			WHERE w.len = len AND w.word STARTS WITH $prefix
			RETURN DISTINCT w.profile AS profile, 'name' AS field, w.value AS value
			LIMIT $n
		}
		RETURN profile, field, value
		LIMIT $n
	}
	RETURN profile, field, value`

// Search returns up to limit identifiers and live profile names whose
// lower-cased value, or a word of the name, starts with prefix, best first
// (see graph.SearchRank).
func (s *Store) Search(ctx context.Context, prefix string, limit int) ([]graph.SearchHit, error) {
	if prefix == "" || limit <= 0 {
		return nil, nil
	}
	recs, err := s.read(ctx, searchQuery, searchParams(prefix, limit))
	if err != nil {
		return nil, wrap("neo4j: search", err)
	}
	hits := make([]graph.SearchHit, 0, len(recs))
	seen := make(map[graph.SearchHit]bool, len(recs))
	for _, r := range recs {
		h := graph.SearchHit{}
		h.Profile, _ = r.Values[0].(string)
		h.Field, _ = r.Values[1].(string)
		h.Value, _ = r.Values[2].(string)
		h.Exact = strings.ToLower(h.Value) == prefix
		// A custom identifier type may be called "name".
		if !seen[h] {
			seen[h] = true
			hits = append(hits, h)
		}
	}
	slices.SortFunc(hits, graph.SearchRank)
	return hits[:min(limit, len(hits))], nil
}

func searchParams(prefix string, limit int) map[string]any {
	return map[string]any{"prefix": prefix, "n": limit, "maxLen": maxSearchLen}
}
