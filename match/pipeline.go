package match

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a whole run: training and clustering.
type Options struct {
	Train   TrainOptions
	Cluster ClusterOptions
	// Model, when set, is used as is instead of training one.
	Model *Model
	// NoHold turns off the household and namesake guards (Scorer.Hold).
	NoHold bool
	// KeepPairs fills Result.Candidates and Result.Scored. A bulk run
	// leaves it off: its memory then does not grow with the candidates.
	KeepPairs bool
	// Observe, when set, sees every scored candidate once, a chunk at a
	// time, from several goroutines at once; a chunk is valid during the
	// call.
	Observe func([]ScoredPair)
	// PairMemory bounds the bytes of compared pairs held between
	// blocking and scoring; the rest is spilled to a temporary file in
	// TempDir (default os.TempDir()). Default DefaultPairMemory.
	PairMemory int64
	TempDir    string
	// TrainOnly stops after training: Result has the model and the
	// blocking report, and no pair is kept for scoring.
	TrainOnly bool
	// Progress, when not nil, is updated as the run goes.
	Progress *Progress
	// Context, when not nil, stops the run when it is done (a signal, a
	// server shutting down): Run returns its error within a chunk of
	// pairs, its spill file removed.
	Context context.Context
}

// Result is everything a run produced.
type Result struct {
	Model    *Model
	Train    *TrainReport // nil when a model was given
	Blocking *BlockingReport
	// Candidates and Scored (one per candidate, same order, sorted by
	// I, J) are filled with Options.KeepPairs only.
	Candidates *Candidates
	Scored     []ScoredPair
	Labels     []int32 // cluster label per record
	Clusters   ClusterReport
	Scorer     *Scorer
	// SpilledBytes is how much of the compared pairs went to disk.
	SpilledBytes int64
}

// Progress reports a run's phase and how far it is, for a progress bar.
// Its methods are safe to call while the run updates it.
type Progress struct {
	mu      sync.Mutex
	phase   string
	unit    string
	total   int64
	started time.Time
	done    atomic.Int64
}

// ProgressState is where a run is: its phase, when that began, the
// phase's work done and its total (0: not counted) in Units ("pairs").
type ProgressState struct {
	Phase, Unit string
	Started     time.Time
	Done, Total int64
}

// Snapshot returns the current state.
func (p *Progress) Snapshot() ProgressState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProgressState{Phase: p.phase, Unit: p.unit, Started: p.started, Done: p.done.Load(), Total: p.total}
}

func (p *Progress) start(phase, unit string, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase, p.unit, p.total, p.started = phase, unit, total, time.Now()
	p.done.Store(0)
	p.mu.Unlock()
}

// grow adds n to the total, if there is a Progress.
func (p *Progress) grow(n int) {
	if p != nil {
		p.mu.Lock()
		p.total += int64(n)
		p.mu.Unlock()
	}
}

// add counts n more done, if there is a Progress.
func (p *Progress) add(n int) {
	if p != nil {
		p.done.Add(int64(n))
	}
}

func (p *Progress) counter() *atomic.Int64 {
	if p == nil {
		return nil
	}
	return &p.done
}

// Run blocks, compares, trains (unless given a model), scores and
// clusters. Candidate pairs are never all held as such: blocking streams
// them to the comparisons on every core, the comparison vectors go to a
// pairStore (spilled to disk past Options.PairMemory), training reads
// their histogram, and scoring keeps only the pairs clustering needs.
func Run(ds *Dataset, opt Options) (*Result, error) {
	res := &Result{}
	ctx := opt.Context
	if ctx == nil {
		ctx = context.Background()
	}
	stopped := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("match: run stopped: %w", err)
		}
		return nil
	}
	nc := len(ds.comps)
	opt.Progress.start("blocking", "rules", int64(len(ds.Config.Blocking)))
	plan := ds.planBlocks(opt.Progress)
	res.Blocking = plan.report
	if err := stopped(); err != nil {
		return nil, err
	}
	// Blocking cannot return early; once the run is stopped its pairs are
	// passed over uncompared, which is most of their cost.
	var cancelled atomic.Bool

	store := newPairStore(nc, opt.PairMemory, opt.TempDir)
	defer store.close()
	train := opt.Model == nil
	var hmu sync.Mutex
	hist := newVecHist(nc, len(plan.rules))
	pairs := 0
	opt.Progress.start("comparing", "pairs", plan.examined)
	const chunkPairs = 1 << 15
	plan.generate(opt.Progress.counter(), func() pairSink {
		lv := make([]uint8, nc)
		local := newVecHist(nc, len(plan.rules))
		buf := make([]byte, 0, chunkPairs*store.size)
		n := 0
		return pairSink{
			pair: func(i, j int32, rules uint32) {
				if cancelled.Load() {
					return
				}
				n++
				ds.levelsInto(int(i), int(j), lv)
				if train {
					local.add(lv, rules, 1)
				}
				if opt.TrainOnly {
					return
				}
				buf = store.put(buf, i, j, rules, lv)
				if len(buf) == cap(buf) {
					store.add(buf)
					buf = make([]byte, 0, chunkPairs*store.size)
					if ctx.Err() != nil {
						cancelled.Store(true)
					}
				}
			},
			done: func() {
				if len(buf) > 0 {
					store.add(buf)
				}
				hmu.Lock()
				hist.merge(local)
				pairs += n
				hmu.Unlock()
			},
		}
	})
	res.Blocking.CandidatePairs = pairs
	res.SpilledBytes = store.spilled
	if err := stopped(); err != nil {
		return nil, err
	}

	res.Model = opt.Model
	if train {
		opt.Progress.start("training", "", 0)
		m, rep, err := trainHist(ds, hist.sorted(), opt.Train)
		if err != nil {
			return nil, err
		}
		res.Model, res.Train = m, rep
	}
	hist = nil
	if opt.TrainOnly {
		return res, nil
	}
	sc, err := NewScorer(res.Model, ds)
	if err != nil {
		return nil, err
	}
	sc.Hold = !opt.NoHold
	res.Scorer = sc

	// Scoring keeps the pairs at or above the threshold (clustering's
	// edges and the held pairs it counts), or all with KeepPairs.
	copt := opt.Cluster
	copt.defaults()
	opt.Progress.start("scoring", "pairs", store.n)
	var kmu sync.Mutex
	var kept []ScoredPair
	var rules []uint32
	err = store.each(runtime.GOMAXPROCS(0), func(chunk []byte) {
		if ctx.Err() != nil {
			return
		}
		n := len(chunk) / store.size
		out := make([]ScoredPair, n)
		var outRules []uint32
		if opt.KeepPairs {
			outRules = make([]uint32, n)
		}
		keep := 0
		for k := range n {
			i, j, r, lv := store.decode(chunk, k)
			w := sc.weight(int(i), int(j), lv)
			out[k] = ScoredPair{I: i, J: j, Weight: w, Prob: prob(w), Held: sc.held(lv)}
			if opt.KeepPairs {
				outRules[k] = r
			}
		}
		if opt.Observe != nil {
			opt.Observe(out)
		}
		if !opt.KeepPairs {
			for _, p := range out {
				if p.Prob >= copt.Threshold {
					out[keep] = p
					keep++
				}
			}
			out = out[:keep]
		}
		kmu.Lock()
		kept = append(kept, out...)
		rules = append(rules, outRules...)
		kmu.Unlock()
		if c := opt.Progress.counter(); c != nil {
			c.Add(int64(n))
		}
	})
	if err != nil {
		return nil, err
	}
	if err := store.close(); err != nil {
		return nil, err
	}
	if err := stopped(); err != nil {
		return nil, err
	}
	if opt.KeepPairs {
		res.Candidates, res.Scored = sortedCandidates(kept, rules)
	}
	opt.Progress.start("clustering", "", 0)
	if copt.Score == nil {
		copt.Score = func(i, j int32) ScoredPair { return sc.Score(int(i), int(j)) }
	}
	if copt.Contradicts == nil {
		copt.Contradicts = func(i, j int32) (ScoredPair, bool) { return sc.ScoreContradicts(int(i), int(j)) }
	}
	res.Labels, res.Clusters = Cluster(ds.Len(), kept, copt)
	return res, nil
}

// sortedCandidates orders scored pairs and their rules by I, J.
func sortedCandidates(scored []ScoredPair, rules []uint32) (*Candidates, []ScoredPair) {
	order := make([]int, len(scored))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(scored[a].I, scored[b].I); c != 0 {
			return c
		}
		return cmp.Compare(scored[a].J, scored[b].J)
	})
	c := &Candidates{Pairs: make([]Pair, len(order)), Rules: make([]uint32, len(order))}
	out := make([]ScoredPair, len(order))
	for k, o := range order {
		out[k] = scored[o]
		c.Pairs[k] = Pair{I: scored[o].I, J: scored[o].J}
		c.Rules[k] = rules[o]
	}
	return c, out
}
