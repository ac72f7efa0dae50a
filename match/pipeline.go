package match

// Options tune a whole run: training and clustering.
type Options struct {
	Train   TrainOptions
	Cluster ClusterOptions
	// Model, when set, is used as is instead of training one.
	Model *Model
	// NoHold turns off the household guard (Scorer.Hold).
	NoHold bool
}

// Result is everything a run produced.
type Result struct {
	Model      *Model
	Train      *TrainReport // nil when a model was given
	Blocking   *BlockingReport
	Candidates *Candidates
	Scored     []ScoredPair // one per candidate, same order
	Labels     []int32      // cluster label per record
	Clusters   ClusterReport
	Scorer     *Scorer
}

// Run blocks, trains (unless given a model), scores and clusters.
func Run(ds *Dataset, opt Options) (*Result, error) {
	res := &Result{}
	res.Candidates, res.Blocking = ds.Block()
	g := ds.comparisonVectors(res.Candidates.Pairs)
	res.Model = opt.Model
	if res.Model == nil {
		m, rep, err := Train(ds, res.Candidates, g, opt.Train)
		if err != nil {
			return nil, err
		}
		res.Model, res.Train = m, rep
	}
	sc, err := NewScorer(res.Model, ds)
	if err != nil {
		return nil, err
	}
	sc.Hold = !opt.NoHold
	res.Scorer = sc
	res.Scored = sc.ScoreAll(res.Candidates.Pairs, g)
	res.Labels, res.Clusters = Cluster(ds.Len(), res.Scored, opt.Cluster)
	return res, nil
}
