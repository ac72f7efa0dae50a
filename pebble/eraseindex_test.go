package pebble

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/idgraph/idgraph/graph"
)

// TestMigrationWritesIndexes: a store of each older version's golden
// records gets exactly the erasure index entries (hk/, pb/, xp/, xk/) and
// event time entries (et/) that this version writes for the same graph.
func TestMigrationWritesIndexes(t *testing.T) {
	indexLines := func(dump []byte) string {
		var out bytes.Buffer
		for line := range bytes.Lines(dump) {
			for _, p := range [][]byte{pHubKey, pProfBlock, pSearchOwner, pSearchKeyOwn, pEventTime} {
				if bytes.HasPrefix(line, append([]byte{'"'}, p...)) {
					out.Write(line)
				}
			}
		}
		return out.String()
	}
	want := indexLines(dump(t, buildGolden(t)))
	if want == "" {
		t.Fatal("this version wrote no index entries")
	}
	if !bytes.Contains([]byte(want), append([]byte{'"'}, pEventTime...)) {
		t.Fatal("this version wrote no event time entries")
	}
	for v := 1; v < FormatVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			if got := indexLines(dump(t, openGolden(t, goldenFile(v)))); got != want {
				t.Errorf("index entries after migrating v%d:\n%s\nwant:\n%s", v, got, want)
			}
		})
	}
}

// IndexEntries shows every record to the erase contract's
// NothingLeftInIndexes, but the segment change records and sent states
// (and their indexes, which name the profile as the rows do)
// (erase/storetest.Entries).
func (s *Store) IndexEntries(context.Context) ([]string, error) {
	var out []string
	err := s.scan(nil, func(k, v []byte) error {
		if !bytes.HasPrefix(k, pSegChange) && !bytes.HasPrefix(k, pSent) && !bytes.HasPrefix(k, pSentPending) && !bytes.HasPrefix(k, pSentDest) {
			out = append(out, string(k)+" "+string(v))
		}
		return nil
	})
	return out, err
}

// KeyForms is an identifier's keyed hash, the form keys hold it in.
func (s *Store) KeyForms(k graph.Key) []string { return []string{string(s.hash(k))} }
