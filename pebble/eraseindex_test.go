package pebble

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/idgraph/idgraph/graph"
)

// TestMigrationWritesEraseIndexes: a store of each older version's golden
// records gets exactly the erasure index entries (hk/, pb/, xp/, xk/)
// that this version writes for the same graph.
func TestMigrationWritesEraseIndexes(t *testing.T) {
	indexLines := func(dump []byte) string {
		var out bytes.Buffer
		for line := range bytes.Lines(dump) {
			for _, p := range [][]byte{pHubKey, pProfBlock, pSearchOwner, pSearchKeyOwn} {
				if bytes.HasPrefix(line, append([]byte{'"'}, p...)) {
					out.Write(line)
				}
			}
		}
		return out.String()
	}
	want := indexLines(dump(t, buildGolden(t)))
	if want == "" {
		t.Fatal("this version wrote no erasure index entries")
	}
	for v := 1; v < FormatVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			if got := indexLines(dump(t, openGolden(t, goldenFile(v)))); got != want {
				t.Errorf("erasure index entries after migrating v%d:\n%s\nwant:\n%s", v, got, want)
			}
		})
	}
}

// IndexEntries shows every record to the erase contract's
// NothingLeftInIndexes, but the segment change records and sent states
// (erase/storetest.Entries).
func (s *Store) IndexEntries(context.Context) ([]string, error) {
	var out []string
	err := s.scan(nil, func(k, v []byte) error {
		if !bytes.HasPrefix(k, pSegChange) && !bytes.HasPrefix(k, pSent) && !bytes.HasPrefix(k, pSentPending) {
			out = append(out, string(k)+" "+string(v))
		}
		return nil
	})
	return out, err
}

// KeyForms is an identifier's keyed hash, the form keys hold it in.
func (s *Store) KeyForms(k graph.Key) []string { return []string{string(s.hash(k))} }
