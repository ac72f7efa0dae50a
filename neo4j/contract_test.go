package neo4j_test

import (
	"testing"

	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestContract(t *testing.T) { storetest.Run(t, backends.OpenNeo4j) }

// TestContractSealed runs the contract with payload encryption on.
func TestContractSealed(t *testing.T) { storetest.Run(t, backends.OpenNeo4jSealed) }
