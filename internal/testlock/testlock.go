// Package testlock serialises tests of different packages (separate test
// processes) that share one external resource, such as the single database
// of a Neo4j Community server.
package testlock

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Neo4j holds the cross-process lock on the Neo4j test database until the
// test ends. The lock is named after NEO4J_URI and kept in the user's cache
// directory rather than TMPDIR, so test processes with different temporary
// directories that share one server still take turns.
func Neo4j(tb testing.TB) {
	tb.Helper()
	sum := sha256.Sum256([]byte(os.Getenv("NEO4J_URI")))
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "idgraph-test-locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "neo4j-"+hex.EncodeToString(sum[:8])+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
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
