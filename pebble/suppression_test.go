package pebble_test

import (
	"testing"

	"github.com/idgraph/idgraph/internal/backends"
	suppressiontest "github.com/idgraph/idgraph/suppression/storetest"
)

func TestSuppressionListsContract(t *testing.T) { suppressiontest.Run(t, backends.OpenPebble) }
