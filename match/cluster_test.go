package match

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestClusterGuards(t *testing.T) {
	strong := func(i, j int32) ScoredPair { return ScoredPair{I: i, J: j, Weight: 30, Prob: 1} }
	weak := func(i, j int32) ScoredPair { return ScoredPair{I: i, J: j, Weight: 5, Prob: 0.97} }
	below := func(i, j int32) ScoredPair { return ScoredPair{I: i, J: j, Weight: 0, Prob: 0.5} }
	tests := []struct {
		name     string
		n        int
		pairs    []ScoredPair
		opt      ClusterOptions
		clusters int
		weak     int
		size     int
	}{
		{"below threshold is no edge", 2, []ScoredPair{below(0, 1)}, ClusterOptions{}, 2, 0, 0},
		{"chain of strong edges", 4, []ScoredPair{strong(0, 1), strong(1, 2), strong(2, 3)}, ClusterOptions{}, 1, 0, 0},
		{
			// two triangles joined by one weak edge stay apart
			"one weak edge between two clusters", 6,
			[]ScoredPair{strong(0, 1), strong(1, 2), strong(0, 2), strong(3, 4), strong(4, 5), strong(3, 5), weak(2, 3)},
			ClusterOptions{}, 2, 1, 0,
		},
		{
			// many links between them: one entity seen twice
			"densely linked clusters merge", 4,
			[]ScoredPair{strong(0, 1), strong(2, 3), weak(0, 2), weak(1, 3), weak(0, 3)},
			ClusterOptions{}, 1, 0, 0,
		},
		{"size cap", 5, []ScoredPair{strong(0, 1), strong(1, 2), strong(2, 3), strong(3, 4)}, ClusterOptions{MaxSize: 3}, 2, 0, 1},
		{
			// blocking compared one cross pair, but compared directly
			// every pair between the triangles is a match: one person
			"sparse candidates, all cross pairs match", 6,
			[]ScoredPair{strong(0, 1), strong(1, 2), strong(0, 2), strong(3, 4), strong(4, 5), strong(3, 5), weak(2, 3)},
			ClusterOptions{Score: func(i, j int32) ScoredPair { return strong(i, j) }}, 1, 0, 0,
		},
		{
			// compared directly the others disagree: two people
			"sparse candidates, cross pairs disagree", 6,
			[]ScoredPair{strong(0, 1), strong(1, 2), strong(0, 2), strong(3, 4), strong(4, 5), strong(3, 5), weak(2, 3)},
			ClusterOptions{Score: func(i, j int32) ScoredPair {
				if i == 2 && j == 3 {
					return weak(i, j)
				}
				return below(i, j)
			}}, 2, 1, 0,
		},
		{
			// held pairs (a household) are no support
			"cross pairs held", 4,
			[]ScoredPair{strong(0, 1), strong(2, 3), weak(1, 2)},
			ClusterOptions{Score: func(i, j int32) ScoredPair {
				p := strong(i, j)
				p.Held = !(i == 1 && j == 2)
				return p
			}}, 2, 1, 0,
		},
	}
	for _, tt := range tests {
		labels, rep := Cluster(tt.n, tt.pairs, tt.opt)
		if rep.Clusters != tt.clusters || rep.BlockedWeak != tt.weak || rep.BlockedSize != tt.size {
			t.Errorf("%s: %+v labels %v, want %d clusters, %d weak, %d size", tt.name, rep, labels, tt.clusters, tt.weak, tt.size)
		}
		for i, l := range labels {
			if l > int32(i) || labels[l] != l {
				t.Errorf("%s: label %d of record %d is not its cluster's smallest index", tt.name, l, i)
			}
		}
	}
}

// contradictions builds a Contradicts callback: the listed pairs
// contradict each other, the others score as strong or below.
func contradictions(t *testing.T, against [][2]int32, links [][2]int32) func(i, j int32) (ScoredPair, bool) {
	t.Helper()
	has := func(set [][2]int32, i, j int32) bool {
		for _, p := range set {
			if p == [2]int32{i, j} || p == [2]int32{j, i} {
				return true
			}
		}
		return false
	}
	return func(i, j int32) (ScoredPair, bool) {
		switch {
		case has(against, i, j):
			return ScoredPair{I: i, J: j, Weight: 8, Prob: 0.996, Held: true}, true
		case has(links, i, j):
			return ScoredPair{I: i, J: j, Weight: 30, Prob: 1}, false
		}
		return ScoredPair{I: i, J: j, Weight: 0, Prob: 0.5}, false
	}
}

func TestClusterContradictions(t *testing.T) {
	strong := func(i, j int32) ScoredPair { return ScoredPair{I: i, J: j, Weight: 30, Prob: 1} }
	// 0 and 1 are one person with full dates; 2 has only a year and
	// links to 1 and to 3, a namesake whose full date contradicts 0's.
	chain := []ScoredPair{strong(0, 1), strong(1, 2), {I: 2, J: 3, Weight: 20, Prob: 1}}
	tests := []struct {
		name           string
		n              int
		pairs          []ScoredPair
		on             bool
		against, links [][2]int32
		clusters       int
		refused        int
	}{
		{"off: the namesake chains in", 4, chain, false, [][2]int32{{0, 3}, {1, 3}}, [][2]int32{{0, 1}, {1, 2}, {2, 3}}, 1, 0},
		{"on: contradicted by both dated records", 4, chain, true, [][2]int32{{0, 3}, {1, 3}}, [][2]int32{{0, 1}, {1, 2}, {2, 3}}, 2, 1},
		{"on: one contradiction, one link: refused", 3, []ScoredPair{strong(0, 1), strong(1, 2)}, true, [][2]int32{{0, 2}}, [][2]int32{{0, 1}, {1, 2}}, 2, 1},
		{"on: one contradiction outvoted by two links", 4, []ScoredPair{strong(0, 1), strong(0, 2), strong(2, 3)}, true,
			[][2]int32{{1, 3}}, [][2]int32{{0, 1}, {0, 2}, {1, 2}, {0, 3}, {2, 3}}, 1, 0},
		{"on: nothing contradicts", 3, []ScoredPair{strong(0, 1), strong(1, 2)}, true, nil, [][2]int32{{0, 1}, {1, 2}}, 1, 0},
		{"on: two singletons are not checked", 2, []ScoredPair{strong(0, 1)}, true, [][2]int32{{0, 1}}, nil, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := ClusterOptions{Contradictions: tt.on, Contradicts: contradictions(t, tt.against, tt.links)}
			_, rep := Cluster(tt.n, tt.pairs, opt)
			if rep.Clusters != tt.clusters || rep.BlockedContradicted != tt.refused {
				t.Errorf("%+v, want %d clusters, %d refused for contradictions", rep, tt.clusters, tt.refused)
			}
		})
	}
}

// TestClusterContradictionsProperty: on random graphs the check only
// refuses merges: every cluster stays inside one connected component of
// the accepted edges, and with nothing contradicting the labels are
// those of the check turned off.
func TestClusterContradictionsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 12))
	for trial := range 300 {
		n := 2 + rng.IntN(12)
		var pairs []ScoredPair
		var against, links [][2]int32
		for i := int32(0); i < int32(n); i++ {
			for j := i + 1; j < int32(n); j++ {
				switch r := rng.IntN(10); {
				case r < 3:
					pairs = append(pairs, ScoredPair{I: i, J: j, Weight: float64(5 + rng.IntN(30)), Prob: 1})
					links = append(links, [2]int32{i, j})
				case r < 5:
					against = append(against, [2]int32{i, j})
				}
			}
		}
		on, _ := Cluster(n, pairs, ClusterOptions{Contradictions: true, Contradicts: contradictions(t, against, links)})
		comp := components(n, pairs)
		for i := range on {
			for j := range on {
				if on[i] == on[j] && comp[i] != comp[j] {
					t.Fatalf("trial %d: %d and %d clustered without a path of edges", trial, i, j)
				}
			}
		}
		plain := ClusterOptions{Contradicts: contradictions(t, nil, links)}
		off, _ := Cluster(n, pairs, plain)
		plain.Contradictions = true
		none, _ := Cluster(n, pairs, plain)
		if !slices.Equal(off, none) {
			t.Fatalf("trial %d: with nothing contradicting, labels %v, want %v", trial, none, off)
		}
	}
}

// components labels the connected components of the pairs' graph.
func components(n int, pairs []ScoredPair) []int {
	comp := make([]int, n)
	for i := range comp {
		comp[i] = i
	}
	for changed := true; changed; {
		changed = false
		for _, p := range pairs {
			if a, b := comp[p.I], comp[p.J]; a != b {
				comp[p.I], comp[p.J] = min(a, b), min(a, b)
				changed = true
			}
		}
	}
	return comp
}
