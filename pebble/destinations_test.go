package pebble_test

import (
	"testing"

	desttest "github.com/idgraph/idgraph/destinations/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestDestinationsContract(t *testing.T) { desttest.Run(t, backends.OpenPebble) }
