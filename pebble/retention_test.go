package pebble_test

import (
	"testing"

	"github.com/idgraph/idgraph/pebble"
	retentiontest "github.com/idgraph/idgraph/retention/storetest"
)

func TestRetentionContract(t *testing.T) { retentiontest.Run(t, pebble.OpenChecked) }
