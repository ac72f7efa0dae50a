// Package panics fails a test binary in which any HTTP request panicked:
// the server recovers a panic into a 500, which a test that only looks at
// status codes, or retries, would not notice.
package panics

import (
	"fmt"
	"os"
	"testing"

	"github.com/idgraph/idgraph/server"
)

// Main runs the tests, then fails the binary if any request panicked. Use
// it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if n := server.PanicCount(); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d requests panicked during the tests; the first:\n", n)
		for _, s := range server.PanicStacks() {
			fmt.Fprintln(os.Stderr, s)
		}
		code = 1
	}
	os.Exit(code)
}
