package match

import "testing"

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
