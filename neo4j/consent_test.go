package neo4j_test

import (
	"testing"

	consenttest "github.com/idgraph/idgraph/consent/storetest"
	"github.com/idgraph/idgraph/internal/backends"
)

func TestConsentContract(t *testing.T) { consenttest.Run(t, backends.OpenNeo4j) }
