package pebble_test

import (
	"testing"

	desttest "github.com/idgraph/idgraph/destinations/storetest"
	"github.com/idgraph/idgraph/pebble"
)

func TestSentStateContract(t *testing.T) { desttest.RunSent(t, pebble.OpenChecked) }

// TestSentStateDelivery: random entries, exits, merges, erasures,
// revocations and withdrawals delivered to verifying receivers.
func TestSentStateDelivery(t *testing.T) { desttest.RunDelivery(t, pebble.OpenChecked, 8, 150) }
