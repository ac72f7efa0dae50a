package neo4j_test

import (
	"testing"

	"github.com/idgraph/idgraph/internal/backends"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

func TestSegmentsContract(t *testing.T) { segtest.Run(t, backends.OpenNeo4j) }
