package match_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/internal/matchtest"
	"github.com/idgraph/idgraph/match"
)

// BenchmarkIncremental measures incremental matching as `idgraph import`
// drives it with a model loaded: every record of a data set ingested in
// file order, in batches of 500 (import's default), with its rec_id as its
// only identifier and its columns as traits, on every backend. The model
// is trained on the same file. Each iteration ingests the whole set into an
// emptied store; it reports records/s and the store calls per record by
// method (on Neo4j each is a round trip) with the time spent in them. IDGRAPH_INCR picks the set:
// febrl1..febrl3 (default febrl3), synth20k or messy20k (20,000 records of
// `idgraph synth --shape messy`).
//
//	go test ./match/ -run '^$' -bench BenchmarkIncremental -benchtime 1x
func BenchmarkIncremental(b *testing.B) {
	name := os.Getenv("IDGRAPH_INCR")
	if name == "" {
		name = "febrl3"
	}
	table := benchTable(b, name)
	model := matchtest.Train(b, table)
	obs := matchtest.Observations(table.Records(model.Config.IDColumn))
	for _, be := range backends.Bench() {
		b.Run(be.Name, func(b *testing.B) {
			calls := &countingStore{n: map[string]int{}, d: map[string]time.Duration{}}
			var self, server time.Duration
			var queries int64
			var store graph.Store
			for b.Loop() {
				b.StopTimer()
				// Neo4j's store is shared and locked once per test: empty it.
				if r, ok := store.(interface{ Reset(context.Context) error }); ok {
					if err := r.Reset(context.Background()); err != nil {
						b.Fatal(err)
					}
				} else {
					store = be.Open(b)
				}
				calls.Store = store
				st := graph.NewStitcher(calls, graph.DefaultConfig())
				st.Matcher, st.MatchConfig = match.NewGraphMatcher(model, true), graph.DefaultMatchConfig()
				self0, server0 := processCPU(b, "self"), processCPU(b, os.Getenv("NEO4J_PID"))
				queries0 := statements(store)
				b.StartTimer()
				matchtest.Ingest(b, st, obs, 500)
				b.StopTimer()
				self += processCPU(b, "self") - self0
				queries += statements(store) - queries0
				if be.Name == "neo4j" {
					server += processCPU(b, os.Getenv("NEO4J_PID")) - server0
				}
				b.StartTimer()
			}
			// On a shared machine wall time depends on the other jobs; the
			// CPU time per record (this process, and the Neo4j server's
			// when NEO4J_PID names it) does not, or much less.
			perRecord := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(len(obs)*b.N) }
			b.ReportMetric(perRecord(self), "cpu-ms/record")
			if server > 0 {
				b.ReportMetric(perRecord(server), "server-cpu-ms/record")
			}
			b.ReportMetric(float64(len(obs)*b.N)/b.Elapsed().Seconds(), "records/s")
			backends.ReportLoad(b)
			if queries > 0 {
				// On Neo4j every statement is a round trip: the Tx calls
				// above, Apply's one per kind of record written.
				b.ReportMetric(float64(queries)/float64(len(obs)*b.N), "queries/record")
			}
			for _, m := range slices.Sorted(func(yield func(string) bool) {
				for m := range calls.n {
					if !yield(m) {
						return
					}
				}
			}) {
				b.ReportMetric(float64(calls.n[m])/float64(len(obs)*b.N), m+"/record")
				b.ReportMetric(calls.d[m].Seconds()/float64(b.N), m+"-s")
			}
			// The block entries written: on Neo4j one node each, most of
			// what a record writes (one per blocking rule the record fills).
			b.ReportMetric(float64(calls.entries)/float64(len(obs)*b.N), "block-entries/record")
			// The identifiers and profiles locked (on Neo4j a write lock
			// each, held to the commit; on the embedded store a read each).
			b.ReportMetric(float64(calls.lockedIDs)/float64(len(obs)*b.N), "ids-locked/record")
			b.ReportMetric(float64(calls.lockedProfiles)/float64(len(obs)*b.N), "profiles-locked/record")
		})
	}
}

// processCPU reads a process's user and system CPU time from /proc
// ("self", or a PID; zero when pid is empty or unreadable).
func processCPU(tb testing.TB, pid string) time.Duration {
	if pid == "" {
		return 0
	}
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command (in parentheses, which may hold spaces):
	// utime and stime are the 12th and 13th, in clock ticks (100 a second).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		tb.Fatalf("/proc/%s/stat: %d fields", pid, len(f))
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return time.Duration(u+s) * 10 * time.Millisecond
}

func benchTable(tb testing.TB, name string) *match.Table {
	tb.Helper()
	files := map[string]string{"febrl1": "dataset1.csv", "febrl2": "dataset2.csv", "febrl3": "dataset3.csv"}
	switch name {
	case "synth20k":
		t, _ := match.Synthesize(match.SynthOptions{Records: 20000, Seed: 1})
		return t
	case "messy20k":
		t, _ := match.Synthesize(match.SynthOptions{Records: 20000, Seed: 1, Shape: "messy"})
		return t
	}
	file, ok := files[name]
	if !ok {
		tb.Fatalf("IDGRAPH_INCR: unknown data set %q", name)
	}
	return matchtest.FEBRL(tb, file)
}

// statements returns the Cypher statements a Neo4j store has run, 0 for
// other stores.
func statements(s graph.Store) int64 {
	if q, ok := s.(interface{ Queries() int64 }); ok {
		return q.Queries()
	}
	return 0
}

// countingStore counts the stitching transactions' store calls by method.
type countingStore struct {
	graph.Store
	mu sync.Mutex
	n  map[string]int
	d  map[string]time.Duration
	// entries counts the block entries Apply writes; lockedIDs and
	// lockedProfiles, the keys and IDs the Lock methods were asked for.
	entries, lockedIDs, lockedProfiles int
}

// add adds n to a counter under the lock.
func (c *countingStore) add(counter *int, n int) {
	c.mu.Lock()
	*counter += n
	c.mu.Unlock()
}

// count counts a call of method m that started at start.
func (c *countingStore) count(m string, start time.Time) {
	c.mu.Lock()
	c.n[m]++
	c.d[m] += time.Since(start)
	c.mu.Unlock()
}

func (c *countingStore) Update(ctx context.Context, fn func(context.Context, graph.Tx) error) error {
	// Update-s less fn-s is the commit (and any retries).
	defer c.count("Update", time.Now())
	return c.Store.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		defer c.count("fn", time.Now())
		return fn(ctx, countingTx{tx, c})
	})
}

type countingTx struct {
	tx graph.Tx
	c  *countingStore
}

func (t countingTx) LockMessages(ctx context.Context, ids []string) (map[string]bool, error) {
	defer t.c.count("LockMessages", time.Now())
	return t.tx.LockMessages(ctx, ids)
}

func (t countingTx) LockIdentifiers(ctx context.Context, keys []graph.Key) (map[graph.Key]*graph.Identifier, error) {
	defer t.c.count("LockIdentifiers", time.Now())
	t.c.add(&t.c.lockedIDs, len(keys))
	return t.tx.LockIdentifiers(ctx, keys)
}

func (t countingTx) LockProfiles(ctx context.Context, ids []string) (map[string]*graph.Profile, error) {
	defer t.c.count("LockProfiles", time.Now())
	t.c.add(&t.c.lockedProfiles, len(ids))
	return t.tx.LockProfiles(ctx, ids)
}

func (t countingTx) Edges(ctx context.Context, pairs [][2]graph.Key) (map[[2]graph.Key]*graph.Edge, error) {
	defer t.c.count("Edges", time.Now())
	return t.tx.Edges(ctx, pairs)
}

func (t countingTx) Candidates(ctx context.Context, keys []string, limit int) (map[string][]string, error) {
	defer t.c.count("Candidates", time.Now())
	return t.tx.Candidates(ctx, keys, limit)
}

func (t countingTx) Apply(ctx context.Context, c *graph.Changes) error {
	defer t.c.count("Apply", time.Now())
	for _, b := range c.Blocks {
		t.c.add(&t.c.entries, len(b.Keys))
	}
	return t.tx.Apply(ctx, c)
}
