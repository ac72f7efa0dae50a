package pebble_test

import (
	"testing"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/pebble"
)

func openTemp(t *testing.T) graph.Store {
	t.Helper()
	s, err := pebble.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) { storetest.Run(t, openTemp) }
