// Package testlock serialises tests of different packages (separate test
// processes) that share one external resource, such as the single database
// of a Neo4j Community server.
package testlock

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Neo4j holds the cross-process lock on the Neo4j test database until the
// test ends.
func Neo4j(tb testing.TB) {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "idgraph-neo4j-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
