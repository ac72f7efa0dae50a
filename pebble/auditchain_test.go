package pebble_test

import (
	"testing"

	audittest "github.com/idgraph/idgraph/audit/storetest"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
)

func TestAuditChainContract(t *testing.T) {
	audittest.Run(t, backends.OpenPebble, func(t *testing.T, g graph.Store, seq uint64, edit func([]byte) []byte) {
		if err := pebble.EditAuditEntry(g.(*pebble.Store), seq, edit); err != nil {
			t.Fatal(err)
		}
	})
}
