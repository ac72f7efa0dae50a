package pebble_test

import (
	"testing"

	erasetest "github.com/idgraph/idgraph/erase/storetest"
	"github.com/idgraph/idgraph/pebble"
)

func TestEraseContract(t *testing.T) { erasetest.Run(t, pebble.OpenChecked) }
