package pebble_test

import (
	"testing"

	desttest "github.com/idgraph/idgraph/destinations/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestSentStateContract(t *testing.T) { desttest.RunSent(t, backends.OpenPebble) }

// TestSentStateDelivery: random entries, exits, merges, erasures,
// revocations and withdrawals delivered to verifying receivers.
func TestSentStateDelivery(t *testing.T) { desttest.RunDelivery(t, backends.OpenPebble, 8, 150) }
