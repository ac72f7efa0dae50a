package match

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// Unsupervised training, in three steps, none of which reads labels:
//
//  1. u (how often non-matches fall in each level) from the data itself:
//     the exact level exactly, from value frequencies; the other levels
//     from random pairs, which are almost all non-matches.
//  2. m (how often matches fall in each level) by expectation-maximisation
//     over all blocked pairs (counted by comparison vector, see vecHist), one run per blocking rule with the rule's own
//     fields left out (blocking made them agree for matches and
//     non-matches alike), u held fixed. Fixing u is the main guard against
//     the degenerate solutions a free EM falls into (e.g. "matches" that
//     are just people in the same postcode). m is also kept off zero and
//     monotone across the ordered levels.
//  3. the prior λ from a deterministic rule (pairs that agree exactly on
//     several strong fields), scaled by that rule's estimated recall.

// TrainOptions tune training; zero values take defaults.
type TrainOptions struct {
	USamples     int     // random pairs for u (default 300,000)
	MaxIter      int     // default 100
	Tolerance    float64 // convergence: largest change in any m (default 1e-5)
	Seed         uint64
	MinStrongAgr int // deterministic rule: exact agreements on strong fields (default: half of them, at least 2)
}

func (o *TrainOptions) defaults() {
	if o.USamples <= 0 {
		o.USamples = 300_000
	}
	if o.MaxIter <= 0 {
		o.MaxIter = 100
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 1e-5
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// EMRun reports one EM run.
type EMRun struct {
	Rule       string   `json:"rule"`
	Pairs      int      `json:"pairs"`
	Masked     []string `json:"masked"`
	Iterations int      `json:"iterations"`
	Converged  bool     `json:"converged"`
	Lambda     float64  `json:"lambda"` // share of the rule's pairs that are matches
	Used       bool     `json:"used"`
}

// TrainReport says how the model was estimated.
type TrainReport struct {
	USampled            int     `json:"u_sampled_pairs"`
	Runs                []EMRun `json:"em_runs"`
	DeterministicPairs  int     `json:"deterministic_pairs"`
	DeterministicRecall float64 `json:"deterministic_recall"`
	Prior               float64 `json:"prior"`
	ExpectedMatches     float64 `json:"expected_matches"`
	// Seeded lists the fields whose m came from seed pairs (seedM).
	Seeded []string `json:"seeded,omitempty"`
}

// Train estimates a model from unlabelled data and its candidate pairs.
func Train(ds *Dataset, cands *Candidates, opt TrainOptions) (*Model, *TrainReport, error) {
	return trainHist(ds, candidateHist(ds, cands), opt)
}

// trainHist is Train from the candidates' comparison vectors, counted.
func trainHist(ds *Dataset, h *vecHist, opt TrainOptions) (*Model, *TrainReport, error) {
	opt.defaults()
	if ds.Len() < 2 {
		return nil, nil, fmt.Errorf("match: need at least two records to train")
	}
	rep := &TrainReport{}
	nc := len(ds.comps)
	u, sampled := estimateU(ds, opt)
	rep.USampled = sampled

	// Start m from a generic shape: most matches agree exactly, fewer fall
	// in each weaker level. EM moves it from there.
	m := make([][]float64, nc)
	for c, cmp := range ds.comps {
		m[c] = initialM(len(cmp.levels))
	}

	// EM on all candidates first (no fields masked) gives a starting point
	// and a fallback for a field that every rule blocks on.
	mAll, run := em(h, h.all, nil, m, u, opt)
	run.Rule = "all candidates"
	rep.Runs = append(rep.Runs, run)

	// Per-rule EM, combined weighting each run by its expected matches.
	sum := make([][]float64, nc)
	wsum := make([]float64, nc)
	for c := range sum {
		sum[c] = make([]float64, len(m[c]))
	}
	for r, rule := range ds.Config.Blocking {
		if rule.Window > 0 {
			continue // a sorted neighbourhood does not force any field to agree exactly, but nor is it a clean sample
		}
		if h.rulePairs[r] < 50 {
			continue
		}
		masked := ds.ruleFields(rule)
		mr, run := em(h, h.rule(r), masked, mAll, u, opt)
		run.Rule = rule.label()
		for _, c := range masked {
			run.Masked = append(run.Masked, ds.comps[c].field.Name)
		}
		expected := run.Lambda * float64(run.Pairs)
		// A run that finds almost no matches has nothing to say about m.
		if expected >= 10 && run.Lambda < 0.999 {
			run.Used = true
			for c := 0; c < nc; c++ {
				if slices.Contains(masked, c) {
					continue
				}
				for l := range mr[c] {
					sum[c][l] += expected * mr[c][l]
				}
				wsum[c] += expected
			}
		}
		rep.Runs = append(rep.Runs, run)
	}
	for c := 0; c < nc; c++ {
		if wsum[c] == 0 {
			m[c] = mAll[c]
			continue
		}
		for l := range sum[c] {
			m[c][l] = sum[c][l] / wsum[c]
		}
		monotone(m[c], u[c])
	}
	rep.Seeded = seedM(ds, h, m, u)

	model := &Model{Trained: "unsupervised", Config: *ds.Config}
	for c, cmp := range ds.comps {
		cm := ComparisonModel{Field: cmp.field.Name, Method: cmp.field.method(), TF: cmp.tf}
		for l := 1; l < len(cmp.levels); l++ {
			cm.Levels = append(cm.Levels, Level{Name: cmp.levels[l], M: m[c][l], U: u[c][l]})
		}
		model.Comparisons = append(model.Comparisons, cm)
	}
	model.Prior = 0.5 // placeholder for the posterior pass below
	estimatePrior(ds, h, model, opt, rep)
	model.Seal()
	return model, rep, nil
}

// minSeeds is how many seed pairs a field needs before seedM replaces its
// EM estimate.
const minSeeds = 1000

// seedM re-estimates m from seed pairs where the data allow it. EM's
// "match" class drifts on large, noisy data: blocked candidates are full
// of family members and neighbours who share surname and address, and EM
// takes part of them for matches, so disagreeing on a birth date or an ID
// ends up weighing almost nothing. Two records that agree exactly on two
// personal fields that random pairs almost never share (birth date,
// national ID, email) are the same person nearly always, families
// included; m of each field is counted over the seeds chosen by the
// other fields, so a field never selects its own sample. It returns the
// fields it re-estimated.
func seedM(ds *Dataset, h *vecHist, m, u [][]float64) []string {
	var strong []int
	for c, cmp := range ds.comps {
		if personalKind(cmp.field.Kind) && u[c][exactLevel] < 0.01 {
			strong = append(strong, c)
		}
	}
	sf := newSeedFacts(ds, u)
	var seeded []string
	for c, cmp := range ds.comps {
		cnt := make([]float64, len(m[c]))
		seeds := 0.0
		for k, n := range h.all {
			lv := h.vec(k)
			agree := 0
			for _, s := range strong {
				if s != c && lv[s] == exactLevel {
					agree++
				}
			}
			if agree >= 2 && lv[c] != 0 {
				cnt[lv[c]] += n
				seeds += n
			}
		}
		if seeds < minSeeds {
			// Too few pairs share two strong personal fields (a file with
			// one birth date and names): count over pairs that agree on
			// two independent facts, the name among them (seedFacts).
			clear(cnt)
			seeds = 0
			for k, n := range h.all {
				if lv := h.vec(k); lv[c] != 0 && sf.seed(lv, c) {
					cnt[lv[c]] += n
					seeds += n
				}
			}
		}
		if seeds < minSeeds/2 { // a few hundred wide seeds still beat a drifted EM
			continue
		}
		for l := 1; l < len(cnt); l++ {
			cnt[l] += 0.5
		}
		normalizeLevels(cnt)
		monotone(cnt, u[c])
		m[c] = cnt
		seeded = append(seeded, cmp.field.Name)
	}
	return seeded
}

func initialM(levels int) []float64 {
	m := make([]float64, levels) // index 0 is null and stays 0
	w := 0.7
	for l := 1; l < levels; l++ {
		m[l] = w
		w *= 0.4
	}
	normalizeLevels(m)
	return m
}

// em estimates m over pairs counted by comparison vector (count[k]
// pairs have vector k of h), with u fixed and the masked comparisons
// ignored. It returns the new m (masked fields copied from start) and a
// report.
func em(h *vecHist, count []float64, masked []int, start, u [][]float64, opt TrainOptions) ([][]float64, EMRun) {
	nc := h.nc
	m := make([][]float64, nc)
	for c := range m {
		m[c] = slices.Clone(start[c])
	}
	use := make([]bool, nc)
	for c := range use {
		use[c] = !slices.Contains(masked, c)
	}
	pairs := 0.0
	for _, n := range count {
		pairs += n
	}
	run := EMRun{Pairs: int(pairs)}
	lambda := 0.1
	acc := make([][]float64, nc)
	for c := range acc {
		acc[c] = make([]float64, len(m[c]))
	}
	for it := 1; it <= opt.MaxIter; it++ {
		run.Iterations = it
		// Log-likelihood ratio per level, recomputed once per iteration.
		lr := make([][]float64, nc)
		for c := range lr {
			lr[c] = make([]float64, len(m[c]))
			for l := 1; l < len(m[c]); l++ {
				lr[c][l] = math.Log(m[c][l] / u[c][l])
			}
		}
		for c := range acc {
			clear(acc[c])
		}
		sumP := 0.0
		prior := math.Log(lambda / (1 - lambda))
		for k, n := range count {
			if n == 0 {
				continue
			}
			lv := h.vec(k)
			s := prior
			for c, l := range lv {
				if use[c] {
					s += lr[c][l]
				}
			}
			post := n / (1 + math.Exp(-s))
			sumP += post
			for c, l := range lv {
				if use[c] && l > 0 {
					acc[c][l] += post
				}
			}
		}
		lambda = math.Min(math.Max(sumP/pairs, 1e-6), 0.999)
		delta := 0.0
		for c := 0; c < nc; c++ {
			if !use[c] {
				continue
			}
			tot := 0.0
			for l := 1; l < len(acc[c]); l++ {
				tot += acc[c][l]
			}
			if tot <= 0 {
				continue // field never present among matches: keep its m
			}
			nm := make([]float64, len(m[c]))
			for l := 1; l < len(nm); l++ {
				// A small pseudo-count keeps every level possible for matches,
				// so no single observation can make a weight -∞.
				nm[l] = (acc[c][l] + 0.01) / (tot + 0.01*float64(len(nm)-1))
			}
			monotone(nm, u[c])
			for l := 1; l < len(nm); l++ {
				delta = math.Max(delta, math.Abs(nm[l]-m[c][l]))
			}
			m[c] = nm
		}
		if delta < opt.Tolerance {
			run.Converged = true
			break
		}
	}
	run.Lambda = lambda
	return m, run
}

// monotone makes the weights log(m/u) non-increasing along the level
// order (stronger levels never weigh less than weaker ones) by pooling
// adjacent violators: a level estimated from a handful of pairs cannot
// then outrank exact agreement. Pooling keeps Σm = 1.
func monotone(m, u []float64) {
	type block struct {
		m, u float64
		n    int
	}
	var bs []block
	for l := 1; l < len(m); l++ {
		bs = append(bs, block{m[l], u[l], 1})
		for len(bs) > 1 {
			a, b := bs[len(bs)-2], bs[len(bs)-1]
			if a.m/a.u >= b.m/b.u {
				break
			}
			bs = bs[:len(bs)-2]
			bs = append(bs, block{a.m + b.m, a.u + b.u, a.n + b.n})
		}
	}
	l := 1
	for _, b := range bs {
		r := b.m / b.u
		for k := 0; k < b.n; k++ {
			m[l] = math.Max(r*u[l], 1e-9)
			l++
		}
	}
	normalizeLevels(m)
}

func normalizeLevels(p []float64) {
	s := 0.0
	for l := 1; l < len(p); l++ {
		s += p[l]
	}
	if s <= 0 {
		return
	}
	for l := 1; l < len(p); l++ {
		p[l] /= s
	}
}

// estimateU returns u per comparison and level (index 0 unused).
func estimateU(ds *Dataset, opt TrainOptions) ([][]float64, int) {
	nc := len(ds.comps)
	n := ds.Len()
	counts := make([][]float64, nc)
	for c, cmp := range ds.comps {
		counts[c] = make([]float64, len(cmp.levels))
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
	var firstB []int
	if ds.Link() {
		for i, s := range ds.Source {
			if s == 1 {
				firstB = append(firstB, i)
			}
		}
	}
	total := ds.TotalPairs()
	var pairs []Pair
	if total <= float64(opt.USamples) { // small data: every pair
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				if ds.comparable(i, j) {
					pairs = append(pairs, Pair{int32(i), int32(j)})
				}
			}
		}
	} else {
		pairs = make([]Pair, opt.USamples)
		nA := n - len(firstB)
		for s := range pairs {
			var i, j int
			if ds.Link() {
				i, j = rng.IntN(nA), firstB[rng.IntN(len(firstB))]
			} else {
				i, j = rng.IntN(n), rng.IntN(n-1)
				if j >= i {
					j++
				}
			}
			pairs[s] = Pair{int32(i), int32(j)}
		}
	}
	samples := len(pairs)
	var mu sync.Mutex
	parallel(len(pairs), func(lo, hi int) {
		local := make([][]float64, nc)
		for c := range local {
			local[c] = make([]float64, len(counts[c]))
		}
		lv := make([]uint8, nc)
		for p := lo; p < hi; p++ {
			ds.levelsInto(int(pairs[p].I), int(pairs[p].J), lv)
			for c, l := range lv {
				local[c][l]++
			}
		}
		mu.Lock()
		for c := range local {
			for l, v := range local[c] {
				counts[c][l] += v
			}
		}
		mu.Unlock()
	})
	u := make([][]float64, nc)
	for c := range ds.comps {
		L := len(counts[c])
		u[c] = make([]float64, L)
		uExact := exactU(ds, c)
		rest := 0.0
		for l := exactLevel + 1; l < L; l++ {
			rest += counts[c][l]
		}
		// A level never seen among the sampled pairs is rare, not
		// impossible: a pseudo-count of half a pair keeps its weight finite.
		const alpha = 0.5
		for l := exactLevel + 1; l < L; l++ {
			u[c][l] = (1 - uExact) * (counts[c][l] + alpha) / (rest + alpha*float64(L-2))
		}
		u[c][exactLevel] = uExact
	}
	return u, samples
}

// exactU is the exact chance that two random records with the field
// present agree on it: Σ_v n_v(n_v-1) / N(N-1), or across files
// Σ_v a_v b_v / (A·B). It is floored at one pair in all.
func exactU(ds *Dataset, c int) float64 {
	if ds.Link() {
		ca, cb := map[string]float64{}, map[string]float64{}
		var na, nb float64
		for i := 0; i < ds.Len(); i++ {
			k := ds.val(i, c).key
			if k == "" {
				continue
			}
			if ds.Source[i] == 0 {
				ca[k]++
				na++
			} else {
				cb[k]++
				nb++
			}
		}
		if na == 0 || nb == 0 {
			return 0.5
		}
		agree := 0.0
		for k, a := range ca {
			agree += a * cb[k]
		}
		return math.Min(math.Max(agree, 0.5)/(na*nb), 0.999)
	}
	agree, nn := ds.tfAgree[c], float64(ds.tfTotal[c])
	if nn < 2 {
		return 0.5
	}
	return math.Min(math.Max(agree, 1)/(nn*(nn-1)), 0.999)
}

// estimatePrior sets model.Prior from a deterministic rule: pairs that
// agree exactly on at least k strong fields (fields where random pairs
// agree less than 1% of the time) are taken as matches. Their count,
// divided by the share of all expected matches they make up (the rule's
// recall, estimated from the model's posteriors over the candidates),
// estimates the number of matching pairs; over all pairs, λ.
func estimatePrior(ds *Dataset, h *vecHist, model *Model, opt TrainOptions, rep *TrainReport) {
	nc := len(ds.comps)
	var strong []int
	for c, cm := range model.Comparisons {
		if cm.Levels[0].U < 0.01 {
			strong = append(strong, c)
		}
	}
	k := opt.MinStrongAgr
	if k <= 0 {
		k = max(2, (len(strong)+1)/2)
	}
	w := make([][]float64, nc)
	for c, cm := range model.Comparisons {
		w[c] = make([]float64, len(cm.Levels)+1)
		for l, lv := range cm.Levels {
			w[c][l+1] = lv.Weight()
		}
	}
	det := make([]bool, len(h.all))
	nDet := 0.0
	for p, n := range h.all {
		lv := h.vec(p)
		agree := 0
		for _, c := range strong {
			if lv[c] == exactLevel {
				agree++
			}
		}
		if agree >= k && len(strong) > 0 {
			det[p] = true
			nDet += n
		}
	}
	// Posterior match probabilities of the candidates, with λ among
	// candidates found by a fixed-point iteration (m and u held).
	lambda := 0.1
	var sumP, sumDet float64
	for it := 0; it < 50; it++ {
		prior := math.Log2(lambda / (1 - lambda))
		sumP, sumDet = 0, 0
		for p, n := range h.all {
			s := prior
			for c, l := range h.vec(p) {
				s += w[c][l]
			}
			post := n * prob(s)
			sumP += post
			if det[p] {
				sumDet += post
			}
		}
		nl := math.Min(math.Max(sumP/float64(max(1, h.pairs)), 1e-9), 0.999)
		if math.Abs(nl-lambda) < 1e-7 {
			lambda = nl
			break
		}
		lambda = nl
	}
	rep.ExpectedMatches = sumP
	rep.DeterministicPairs = int(nDet)
	total := ds.TotalPairs()
	expected := sumP
	if nDet > 0 && sumP > 0 {
		recall := math.Min(math.Max(sumDet/sumP, 0.2), 1)
		rep.DeterministicRecall = recall
		expected = nDet / recall
	}
	model.Prior = math.Min(math.Max(expected/total, 1/total), 0.5)
	rep.Prior = model.Prior
}

// TrainLabelled estimates a model from pairs known to match or not: m
// from the matches' levels, u from random pairs (or from the non-matches
// when there are enough), and the prior from the unsupervised rule.
func TrainLabelled(ds *Dataset, cands *Candidates, matches, nonMatches []Pair, opt TrainOptions) (*Model, *TrainReport, error) {
	opt.defaults()
	if len(matches) == 0 {
		return nil, nil, fmt.Errorf("match: no labelled matches")
	}
	nc := len(ds.comps)
	u, sampled := estimateU(ds, opt)
	count := func(pairs []Pair) [][]float64 {
		cnt := make([][]float64, nc)
		for c, cmp := range ds.comps {
			cnt[c] = make([]float64, len(cmp.levels))
		}
		lv := make([]uint8, nc)
		for _, p := range pairs {
			ds.levelsInto(int(p.I), int(p.J), lv)
			for c, l := range lv {
				cnt[c][l]++
			}
		}
		return cnt
	}
	toDist := func(cnt []float64) []float64 {
		d := make([]float64, len(cnt))
		for l := 1; l < len(cnt); l++ {
			d[l] = cnt[l] + 0.5
		}
		normalizeLevels(d)
		return d
	}
	mc := count(matches)
	if len(nonMatches) >= 1000 {
		uc := count(nonMatches)
		for c := range u {
			ue := u[c][exactLevel]
			u[c] = toDist(uc[c])
			u[c][exactLevel] = math.Min(u[c][exactLevel], math.Max(ue, 1e-9))
			normalizeLevels(u[c])
		}
	}
	model := &Model{Trained: "labelled", Config: *ds.Config, Prior: 0.5}
	for c, cmp := range ds.comps {
		m := toDist(mc[c])
		monotone(m, u[c])
		cm := ComparisonModel{Field: cmp.field.Name, Method: cmp.field.method(), TF: cmp.tf}
		for l := 1; l < len(cmp.levels); l++ {
			cm.Levels = append(cm.Levels, Level{Name: cmp.levels[l], M: m[l], U: u[c][l]})
		}
		model.Comparisons = append(model.Comparisons, cm)
	}
	rep := &TrainReport{USampled: sampled}
	estimatePrior(ds, candidateHist(ds, cands), model, opt, rep)
	model.Seal()
	return model, rep, nil
}
