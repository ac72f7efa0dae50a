package server_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/idgraph/idgraph/server"
)

// TestMain fails the package when any request panicked, even in a test
// that only looked at status codes.
func TestMain(m *testing.M) {
	code := m.Run()
	if n := server.PanicCount(); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d requests panicked during the tests (see the logged stacks)\n", n)
		code = 1
	}
	os.Exit(code)
}
