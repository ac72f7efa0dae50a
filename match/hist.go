package match

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// vecHist counts candidate pairs by comparison vector and set of rules
// that found them. EM, the seed pairs and the prior see a pair only
// through these, and pairs repeat a few hundred thousand combinations at
// most, so training reads this table instead of every pair: its cost and
// memory stop growing with the candidates, and EM uses all of them
// rather than a sample.
type vecHist struct {
	nc    int
	index map[string]int32 // vector and rule set → entry
	vecs  []uint8          // per entry, nc levels
	rules []uint32         // per entry
	all   []float64        // pairs per entry
	// rulePairs and pairs are the pairs per rule, and in all.
	rulePairs []int
	pairs     int
}

func newVecHist(nc, rules int) *vecHist {
	return &vecHist{nc: nc, index: map[string]int32{}, rulePairs: make([]int, rules)}
}

func (h *vecHist) vec(k int) []uint8 { return h.vecs[k*h.nc : (k+1)*h.nc] }

// add counts n pairs of vector lv found by the rules in the set.
func (h *vecHist) add(lv []uint8, rules uint32, n float64) {
	var kb [64]byte
	key := binary.LittleEndian.AppendUint32(append(kb[:0], lv...), rules)
	k, ok := h.index[string(key)]
	if !ok {
		k = int32(len(h.all))
		h.index[string(key)] = k
		h.vecs = append(h.vecs, lv...)
		h.rules = append(h.rules, rules)
		h.all = append(h.all, 0)
	}
	h.all[k] += n
	h.pairs += int(n)
	for r := range h.rulePairs {
		if rules&(1<<uint(r)) != 0 {
			h.rulePairs[r] += int(n)
		}
	}
}

// rule is the count of each entry's pairs that rule r found.
func (h *vecHist) rule(r int) []float64 {
	out := make([]float64, len(h.all))
	for k, n := range h.all {
		if h.rules[k]&(1<<uint(r)) != 0 {
			out[k] = n
		}
	}
	return out
}

// merge adds o's counts into h.
func (h *vecHist) merge(o *vecHist) {
	for k, n := range o.all {
		h.add(o.vec(k), o.rules[k], n)
	}
}

// sorted returns h with its entries in a fixed order, so that sums over
// it do not depend on the order the pairs came in (workers race).
func (h *vecHist) sorted() *vecHist {
	order := make([]int, len(h.all))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := bytes.Compare(h.vec(a), h.vec(b)); c != 0 {
			return c
		}
		return cmp.Compare(h.rules[a], h.rules[b])
	})
	out := newVecHist(h.nc, len(h.rulePairs))
	for _, k := range order {
		out.add(h.vec(k), h.rules[k], h.all[k])
	}
	return out
}

// candidateHist counts materialized candidates by comparison vector.
func candidateHist(ds *Dataset, cands *Candidates) *vecHist {
	nc := len(ds.comps)
	g := ds.comparisonVectors(cands.Pairs)
	h := newVecHist(nc, len(ds.Config.Blocking))
	for p := range cands.Pairs {
		h.add(g[p*nc:(p+1)*nc], cands.Rules[p], 1)
	}
	return h.sorted()
}
