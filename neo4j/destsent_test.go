package neo4j_test

import (
	"testing"

	desttest "github.com/idgraph/idgraph/destinations/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestSentStateContract(t *testing.T) { desttest.RunSent(t, backends.OpenNeo4j) }

// TestSentStateDelivery: random entries, exits, merges, erasures,
// revocations and withdrawals delivered to verifying receivers.
func TestSentStateDelivery(t *testing.T) { desttest.RunDelivery(t, backends.OpenNeo4j, 3, 80) }
