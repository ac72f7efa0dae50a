package pebble_test

import (
	"testing"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
	suppressiontest "github.com/idgraph/idgraph/suppression/storetest"
)

func TestSuppressionListsContract(t *testing.T) { suppressiontest.Run(t, backends.OpenPebble) }

// TestSuppressionCountsReopen: the counts, taken at Open, are those of the
// entries a previous process left.
func TestSuppressionCountsReopen(t *testing.T) {
	suppressiontest.RunReopen(t, func(t *testing.T) (graph.Store, func() graph.Store) {
		dir := t.TempDir()
		open := func() *pebble.Store {
			s, err := pebble.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s := open()
		t.Cleanup(func() { s.Close() })
		return s, func() graph.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
			return s
		}
	})
}
