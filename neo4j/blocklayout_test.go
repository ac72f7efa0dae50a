package neo4j

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/internal/testlock"
)

// TestBlockLayoutCost measures, on demand, what the blocking index costs
// the server in the layout this package writes (one Block node per entry)
// and in one node per key holding its profiles in a list, the alternative
// considered for issue 12 (docs/benchmarks.md, "Incremental matching: the
// server's side"). It replays the Block entries stored on the server (run
// it after BenchmarkIncremental, which leaves its last iteration's graph),
// 500 profiles a transaction in ID order (the order they were created),
// under scratch labels that it deletes afterwards, and logs the server's
// CPU time (NEO4J_PID) for the writes and for reading 2,500 keys' blocks.
//
//	IDGRAPH_BLOCK_LAYOUTS=1 NEO4J_PID=... go test ./neo4j -run TestBlockLayoutCost -v
func TestBlockLayoutCost(t *testing.T) {
	if os.Getenv("IDGRAPH_BLOCK_LAYOUTS") == "" || os.Getenv("NEO4J_URI") == "" {
		t.Skip("on demand: set IDGRAPH_BLOCK_LAYOUTS=1, NEO4J_URI and NEO4J_PID")
	}
	testlock.Neo4j(t)
	ctx := context.Background()
	s, err := Open(ctx, os.Getenv("NEO4J_URI"), os.Getenv("NEO4J_USER"), os.Getenv("NEO4J_PASSWORD"), WithDatabase(os.Getenv("NEO4J_DATABASE")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, q := range []string{
		"CREATE INDEX scratch_block_key IF NOT EXISTS FOR (b:ScratchBlock) ON (b.key)",
		"CREATE CONSTRAINT scratch_block_list_key IF NOT EXISTS FOR (b:ScratchBlockList) REQUIRE b.key IS UNIQUE",
		"CALL db.awaitIndexes(300)",
	} {
		if _, err := s.write(ctx, q, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"DROP INDEX scratch_block_key IF EXISTS", "DROP CONSTRAINT scratch_block_list_key IF EXISTS"} {
			if _, err := s.write(ctx, q, nil); err != nil {
				t.Error(err)
			}
		}
	})
	recs, err := s.read(ctx, `MATCH (b:Block) RETURN b.profile, collect(b.key) ORDER BY b.profile`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Skip("no Block entries stored: run BenchmarkIncremental first")
	}
	var sample []string // every seventh profile's keys, as a batch would read
	entries := 0
	for i, r := range recs {
		ks := toStrings(r.Values[1])
		entries += len(ks)
		if i%7 == 0 && len(sample) < 2500 {
			sample = append(sample, ks...)
		}
	}
	t.Logf("%d profiles, %d entries", len(recs), entries)
	layouts := []struct {
		name, write, read, label string
	}{
		{"node per entry", `UNWIND $rows AS r UNWIND r.keys AS k CREATE (:ScratchBlock {key: k, profile: r.profile})`,
			`UNWIND $keys AS k CALL (k) {
				MATCH (b:ScratchBlock {key: k}) USING INDEX b:ScratchBlock(key)
				RETURN b.profile AS profile LIMIT 201
			} RETURN k, collect(profile)`, "ScratchBlock"},
		{"list per key", `UNWIND $keys AS kr
			MERGE (b:ScratchBlockList {key: kr.key})
			SET b.profiles = coalesce(b.profiles, []) + kr.profiles`,
			`UNWIND $keys AS k MATCH (b:ScratchBlockList {key: k}) RETURN k, b.profiles[..201]`, "ScratchBlockList"},
	}
	for round := range 2 {
		for _, l := range layouts {
			w0, c0 := time.Now(), serverCPU(t)
			for b := 0; b < len(recs); b += 500 {
				rows, keys := layoutRows(recs[b:min(b+500, len(recs))])
				if err := writeOnce(ctx, s, l.write, map[string]any{"rows": rows, "keys": keys}); err != nil {
					t.Fatal(err)
				}
			}
			wall, cpu := time.Since(w0), serverCPU(t)-c0
			r0, rc0 := time.Now(), serverCPU(t)
			for range 10 {
				if _, err := s.read(ctx, l.read, map[string]any{"keys": sample}); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("round %d, %s: write %v wall, %v server CPU (%.3f ms a profile); read %d keys x10: %v wall, %v server CPU",
				round, l.name, wall.Round(time.Millisecond), cpu, cpu.Seconds()*1000/float64(len(recs)),
				len(sample), time.Since(r0).Round(time.Millisecond), serverCPU(t)-rc0)
			for {
				r, err := s.write(ctx, "MATCH (b:"+l.label+") WITH b LIMIT 20000 DELETE b RETURN count(*)", nil)
				if err != nil {
					t.Fatal(err)
				}
				if n, _ := r[0].Values[0].(int64); n == 0 {
					break
				}
			}
		}
	}
}

// layoutRows returns a batch's entries both ways: a row per profile with
// its keys, and a row per key (sorted) with its profiles.
func layoutRows(recs []*neo4jdriver.Record) (rows, keys []any) {
	byKey := map[string][]any{}
	for _, r := range recs {
		ks := toStrings(r.Values[1])
		rows = append(rows, map[string]any{"profile": r.Values[0], "keys": ks})
		for _, k := range ks {
			byKey[k] = append(byKey[k], r.Values[0])
		}
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range byKey {
			if !yield(k) {
				return
			}
		}
	}) {
		keys = append(keys, map[string]any{"key": k, "profiles": byKey[k]})
	}
	return rows, keys
}

// writeOnce runs one write query in its own transaction, committed.
func writeOnce(ctx context.Context, s *Store, cypher string, params map[string]any) error {
	sess := s.driver.NewSession(ctx, neo4jdriver.SessionConfig{AccessMode: neo4jdriver.AccessModeWrite, DatabaseName: s.db})
	defer sess.Close(context.Background())
	_, err := sess.ExecuteWrite(ctx, func(tx neo4jdriver.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, cypher, params)
		if err != nil {
			return nil, err
		}
		return res.Consume(ctx)
	})
	return err
}

// serverCPU reads the Neo4j server's user and system CPU time from /proc
// (NEO4J_PID; zero when unset).
func serverCPU(tb testing.TB) time.Duration {
	pid := os.Getenv("NEO4J_PID")
	if pid == "" {
		return 0
	}
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// utime and stime are the 12th and 13th fields after the command.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(u+st) * 10 * time.Millisecond
}
