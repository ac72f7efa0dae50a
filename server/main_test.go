package server_test

import (
	"testing"

	"github.com/idgraph/idgraph/internal/panics"
)

func TestMain(m *testing.M) { panics.Main(m) }
