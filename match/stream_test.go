package match

import (
	"context"
	"errors"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// synthDataset is a noisy labelled set with its detected configuration.
func synthDataset(t *testing.T, records int, maxBlock int) *Dataset {
	t.Helper()
	tab, _ := Synthesize(SynthOptions{Records: records, Seed: 11})
	cfg, _ := Detect(tab.Header, tab.Rows, "")
	cfg.MaxBlockSize = maxBlock
	ds, err := NewTableDataset(cfg, cfg.IDColumn, tab, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestStreamedCandidatesAreTheRulesUnion checks the streamed blocking
// against its definition, computed pair by pair: a pair is a candidate
// when some rule puts both records in one block no larger than the
// rule's cap (or within a sorted neighbourhood's window), and its rule
// set is every such rule. A small cap makes oversized blocks common.
func TestStreamedCandidatesAreTheRulesUnion(t *testing.T) {
	ds := synthDataset(t, 1500, 12)
	res, err := Run(ds, Options{KeepPairs: true})
	if err != nil {
		t.Fatal(err)
	}
	n := ds.Len()
	want := map[Pair]uint32{}
	// A rule's oversized blocks are blocked again, first as a sorted
	// neighbourhood (the rule's key, then the sorters, which may be
	// missing), then the rule's key plus each refiner, and a refined
	// rule's once more, breadth first.
	type defined struct {
		BlockRule
		only     func(i int) bool // the records the rule blocks
		depth    int
		required int // key parts a record must have
	}
	rules := []defined{}
	for _, r := range ds.Config.Blocking {
		rules = append(rules, defined{r, func(int) bool { return true }, 0, len(r.Keys)})
	}
	for r := 0; r < len(rules) && len(rules) < 32; r++ {
		rule := rules[r]
		if rule.Window > 0 || rule.depth == 2 {
			continue
		}
		keys := ds.blockKeys(rule.BlockRule)
		size := map[string]int{}
		for i, k := range keys {
			if rule.only(i) {
				size[k]++
			}
		}
		limit := res.Blocking.Rules[r].Cap
		over := func(i int) bool { return rule.only(i) && keys[i] != "" && size[keys[i]] > limit }
		if !slices.ContainsFunc(keys, func(k string) bool { return k != "" && size[k] > limit }) {
			continue
		}
		for _, sortBy := range ds.sorters(rule.BlockRule) {
			windowed := BlockRule{Keys: append(slices.Clone(rule.Keys), sortBy...), Window: oversizedWindow}
			rules = append(rules, defined{windowed, over, rule.depth + 1, len(rule.Keys)})
		}
		for _, ref := range ds.refiners() {
			if slices.ContainsFunc(rule.Keys, func(k KeyPart) bool { return k.Field == ref.Field }) {
				continue
			}
			refined := BlockRule{Keys: append(slices.Clone(rule.Keys), ref)}
			rules = append(rules, defined{refined, over, rule.depth + 1, len(refined.Keys)})
		}
	}
	if len(rules) > 32 {
		rules = rules[:32]
	}
	if len(rules) != len(res.Blocking.Rules) {
		t.Fatalf("%d rules reported, %d by definition", len(res.Blocking.Rules), len(rules))
	}
	refinedRules := 0
	for r, rule := range rules {
		keys := ds.keysOf(rule.BlockRule, rule.required, nil)
		for i := range keys {
			if !rule.only(i) {
				keys[i] = ""
			}
		}
		refinedRules += rule.depth
		var in func(i, j int) bool
		if rule.Window > 0 {
			idx := []int{}
			for i, k := range keys {
				if k != "" {
					idx = append(idx, i)
				}
			}
			sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
			rank := make([]int, n)
			for i := range rank {
				rank[i] = -1
			}
			for p, i := range idx {
				rank[i] = p
			}
			in = func(i, j int) bool {
				d := rank[i] - rank[j]
				return rank[i] >= 0 && rank[j] >= 0 && d < rule.Window && -d < rule.Window
			}
		} else {
			size := map[string]int{}
			for _, k := range keys {
				size[k]++
			}
			limit := res.Blocking.Rules[r].Cap
			in = func(i, j int) bool { return keys[i] != "" && keys[i] == keys[j] && size[keys[i]] <= limit }
		}
		pairs := 0
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				if in(i, j) {
					want[Pair{int32(i), int32(j)}] |= 1 << uint(r)
					pairs++
				}
			}
		}
		if got := res.Blocking.Rules[r].Pairs; got != pairs {
			t.Errorf("rule %s: %d pairs reported, %d by definition", rule.label(), got, pairs)
		}
	}
	if refinedRules == 0 {
		t.Fatal("no refined rule: oversized blocks are not refined")
	}
	oversized := 0
	for _, st := range res.Blocking.Rules {
		oversized += st.Oversized
	}
	if oversized == 0 {
		t.Fatal("no oversized block: the cap is not exercised")
	}
	if len(res.Candidates.Pairs) != len(want) || res.Blocking.CandidatePairs != len(want) {
		t.Fatalf("%d candidates (report %d), %d by definition", len(res.Candidates.Pairs), res.Blocking.CandidatePairs, len(want))
	}
	for k, p := range res.Candidates.Pairs {
		if k > 0 && !(res.Candidates.Pairs[k-1].I < p.I || res.Candidates.Pairs[k-1].I == p.I && res.Candidates.Pairs[k-1].J < p.J) {
			t.Fatalf("candidates not sorted at %d", k)
		}
		if rules, ok := want[p]; !ok || rules != res.Candidates.Rules[k] {
			t.Fatalf("pair %v: rules %b, want %b (candidate by definition: %v)", p, res.Candidates.Rules[k], rules, ok)
		}
	}
}

// TestSpilledRunEqualsInMemoryRun forces every compared pair through the
// temporary file and expects the run it would have had in memory.
func TestSpilledRunEqualsInMemoryRun(t *testing.T) {
	ds := synthDataset(t, 3000, 0)
	dir := t.TempDir()
	mem, err := Run(ds, Options{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var observed int
	spilled, err := Run(ds, Options{TempDir: dir, PairMemory: 1, Observe: func(c []ScoredPair) {
		mu.Lock()
		observed += len(c)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if mem.SpilledBytes != 0 {
		t.Errorf("the in-memory run spilled %d bytes", mem.SpilledBytes)
	}
	if want := int64(spilled.Blocking.CandidatePairs * (12 + len(ds.comps))); spilled.SpilledBytes != want {
		t.Errorf("spilled %d bytes, want %d (every pair)", spilled.SpilledBytes, want)
	}
	if observed != spilled.Blocking.CandidatePairs {
		t.Errorf("observed %d pairs of %d", observed, spilled.Blocking.CandidatePairs)
	}
	if mem.Model.Version != spilled.Model.Version {
		t.Errorf("models differ: %s, %s", mem.Model.Version, spilled.Model.Version)
	}
	if !slices.Equal(mem.Labels, spilled.Labels) || mem.Clusters != spilled.Clusters {
		t.Errorf("clusters differ: %+v, %+v", mem.Clusters, spilled.Clusters)
	}
	if mem.Clusters.Edges == 0 || mem.Clusters.Clusters == ds.Len() {
		t.Errorf("nothing clustered: %+v", mem.Clusters)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// A run whose context is cancelled while it compares (a signal, a server
// shutting down) stops with the context's error and leaves no spill file;
// one cancelled before it starts compares nothing.
func TestRunStopsWhenCancelled(t *testing.T) {
	ds := synthDataset(t, 20000, 200)
	for _, phase := range []string{"", "comparing", "scoring"} {
		t.Run("at "+phase, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			progress := &Progress{}
			var observed atomic.Int64
			opt := Options{Context: ctx, TempDir: dir, PairMemory: 1, Progress: progress,
				Observe: func(c []ScoredPair) { observed.Add(int64(len(c))) }}
			if phase == "" {
				cancel()
			} else {
				go func() {
					for progress.Snapshot().Phase != phase || progress.Snapshot().Done == 0 {
						if ctx.Err() != nil {
							return
						}
						time.Sleep(time.Millisecond)
					}
					cancel()
				}()
			}
			res, err := Run(ds, opt)
			if !errors.Is(err, context.Canceled) || res != nil {
				t.Fatalf("Run returned %v, %v; want context.Canceled", res, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("spill files left behind: %v", entries)
			}
			if phase == "" && observed.Load() != 0 {
				t.Errorf("%d pairs scored after the run was stopped before it began", observed.Load())
			}
		})
	}
}
