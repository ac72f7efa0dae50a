package neo4j_test

import (
	"testing"

	"github.com/idgraph/idgraph/graph/storetest"
)

func TestContract(t *testing.T) { storetest.Run(t, storetest.OpenNeo4j) }
