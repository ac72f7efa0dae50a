package pebble_test

import (
	"testing"

	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/pebble"
)

func TestContract(t *testing.T) { storetest.Run(t, pebble.OpenChecked) }
