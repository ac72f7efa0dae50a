package pebble_test

import (
	"testing"

	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestContract(t *testing.T) { storetest.Run(t, backends.OpenPebble) }
