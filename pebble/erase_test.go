package pebble_test

import (
	"testing"

	erasetest "github.com/idgraph/idgraph/erase/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestEraseContract(t *testing.T) { erasetest.Run(t, backends.OpenPebble) }
