// Package backends opens every storage backend for tests, so that each
// behaviour is tested on all of them.
package backends

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/envelope"
	"github.com/idgraph/idgraph/internal/testlock"
	"github.com/idgraph/idgraph/neo4j"
	"github.com/idgraph/idgraph/pebble"
)

// Backend names a store implementation for tests.
type Backend struct {
	Name string
	Open storetest.Opener
}

// All lists every backend: each behaviour is tested on all of them.
func All() []Backend {
	return []Backend{{"embedded", OpenPebble}, {"neo4j", OpenNeo4j}}
}

// BenchBackend is a Backend for benchmarks: its opener takes a testing.TB,
// so a failure to open fails the benchmark.
type BenchBackend struct {
	Name string
	Open func(testing.TB) graph.Store
}

// Bench lists every backend for benchmarks.
func Bench() []BenchBackend {
	return []BenchBackend{{"embedded", openPebble}, {"neo4j", openNeo4j}}
}

// OpenPebble opens an embedded store in a temporary directory.
func OpenPebble(t *testing.T) graph.Store { return openPebble(t) }

// BenchPebble is OpenPebble for benchmarks: a failure to open the store
// fails the benchmark, where a testing.T of its own would end it unreported.
func BenchPebble(tb testing.TB) graph.Store { return openPebble(tb) }

func openPebble(t testing.TB) graph.Store {
	t.Helper()
	s, err := pebble.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var neo struct {
	once  sync.Once
	store *neo4j.Store
	err   error
}

// Neo4jURI returns the test server's address from NEO4J_URI. Without it the
// test is skipped, except under CI=true, where a missing Neo4j fails it:
// Neo4j tests never skip silently in CI.
func Neo4jURI(t testing.TB) (uri, user, password string) {
	t.Helper()
	uri = os.Getenv("NEO4J_URI")
	if uri == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("NEO4J_URI is not set under CI=true: Neo4j tests must run (use scripts/test)")
		}
		t.Skip("NEO4J_URI is not set; run scripts/test to start a Neo4j for the tests")
	}
	return uri, os.Getenv("NEO4J_USER"), os.Getenv("NEO4J_PASSWORD")
}

// OpenNeo4j returns the shared Neo4j store, emptied. Test binaries of
// different packages run at once, so each test holds a file lock while it
// uses the one database that Neo4j Community has.
func OpenNeo4j(t *testing.T) graph.Store { return openNeo4j(t) }

// BenchNeo4j is OpenNeo4j for benchmarks: a failure to open or empty the
// store fails the benchmark, where a testing.T of its own would end it
// unreported.
func BenchNeo4j(tb testing.TB) graph.Store { return openNeo4j(tb) }

func openNeo4j(t testing.TB) graph.Store {
	t.Helper()
	uri, user, pass := Neo4jURI(t)
	testlock.Neo4j(t)
	neo.once.Do(func() { neo.store, neo.err = neo4j.Open(context.Background(), uri, user, pass) })
	if neo.err != nil {
		t.Fatalf("neo4j: %v", neo.err)
	}
	if err := neo.store.Reset(context.Background()); err != nil {
		t.Fatalf("neo4j reset: %v", err)
	}
	return neo.store
}

var sealed struct {
	once  sync.Once
	store *neo4j.Store
	err   error
}

// OpenNeo4jSealed is OpenNeo4j with payload encryption on
// (neo4j.WithKeyring): a second store on the same database, whose keyring
// lives in a directory kept for the test process.
func OpenNeo4jSealed(t *testing.T) graph.Store { return openNeo4jSealed(t) }

// BenchNeo4jSealed is OpenNeo4jSealed for benchmarks.
func BenchNeo4jSealed(tb testing.TB) graph.Store { return openNeo4jSealed(tb) }

func openNeo4jSealed(t testing.TB) graph.Store {
	t.Helper()
	uri, user, pass := Neo4jURI(t)
	testlock.Neo4j(t)
	sealed.once.Do(func() {
		dir, err := os.MkdirTemp("", "idgraph-keyring-")
		if err != nil {
			sealed.err = err
			return
		}
		ring, err := envelope.OpenKeyring(filepath.Join(dir, "keyring"))
		if err != nil {
			sealed.err = err
			return
		}
		sealed.store, sealed.err = neo4j.Open(context.Background(), uri, user, pass, neo4j.WithKeyring(ring))
	})
	if sealed.err != nil {
		t.Fatalf("neo4j sealed: %v", sealed.err)
	}
	if err := sealed.store.Reset(context.Background()); err != nil {
		t.Fatalf("neo4j reset: %v", err)
	}
	return sealed.store
}

// ReportLoad reports the machine's 1-minute load average as a benchmark
// metric (load1): figures from a shared machine mean little without it.
func ReportLoad(b *testing.B) {
	avg, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	if f := strings.Fields(string(avg)); len(f) > 0 {
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			b.ReportMetric(v, "load1")
		}
	}
}

// CPUTime is the process's user and system CPU time so far: on a shared
// machine, CPU time per operation varies less than wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
