package pebble_test

import (
	"testing"

	desttest "github.com/idgraph/idgraph/destinations/storetest"
	"github.com/idgraph/idgraph/pebble"
)

func TestDestinationsContract(t *testing.T) { desttest.Run(t, pebble.OpenChecked) }
