package neo4j_test

import (
	"testing"

	authtest "github.com/idgraph/idgraph/auth/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestAPIKeysContract(t *testing.T) { authtest.Run(t, backends.OpenNeo4j) }
