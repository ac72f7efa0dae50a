package match

import (
	"cmp"
	"slices"
)

// Clustering joins records into entities: connected components over the
// pairs scored at or above the accept threshold. Plain connected
// components chain: one wrong edge between two clusters merges them
// whole. Pairs the scorer holds for review (the household guard, see
// Scorer.held) are no edges. Two more guards stop chaining, and a merge they block is reported (the
// graph will send it to review):
//
//   - two clusters of two or more records join only if enough of the
//     pairs between them are accepted edges (MinLinkDensity), counting,
//     with Score, the pairs blocking did not compare as they score when
//     compared, so a single weak edge cannot weld two people's records
//     together;
//   - no cluster grows past MaxSize;
//   - with Contradictions, a join where at least one side has two or
//     more records is refused when as many of the pairs between the two
//     sides contradict (Contradicts: two records whose birth dates no
//     typo would put so far apart, nothing but their names making a
//     match) as are accepted edges. A namesake's record can link to the
//     one record of a person whose date is missing or only a year, and
//     through it to the person's dated records that contradict it;
//     counting against the links, not vetoing, lets a person's many
//     records absorb one with a wrong date.
//
// Edges are taken strongest first, so the clusters the guards compare
// are built from the most certain evidence.

// ClusterOptions tune clustering; zero values take defaults.
type ClusterOptions struct {
	Threshold      float64 // accept: minimum probability of an edge (default 0.95)
	MaxSize        int     // largest cluster (default 100)
	MinLinkDensity float64 // share of cross pairs that must be edges to join two clusters of 2+ (default 0.3)
	// Score, when set, scores any two records: a join the candidate
	// pairs' link density refuses is decided again on every cross pair's
	// score (supported), at most MaxSize²/4 comparisons a refused join.
	Score func(i, j int32) ScoredPair
	// Contradictions turns on the contradiction check above (off by
	// default: it costs Splink's historical set 0.0003 of cluster F1 and
	// gains the messy generator 0.019, docs/matching.md).
	Contradictions bool
	// Contradicts scores any two records and says whether they
	// contradict each other (Scorer.ScoreContradicts); without it the
	// check is off.
	Contradicts func(i, j int32) (ScoredPair, bool)
}

func (o *ClusterOptions) defaults() {
	if o.Threshold <= 0 {
		o.Threshold = 0.95
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 100
	}
	if o.MinLinkDensity <= 0 {
		o.MinLinkDensity = 0.3
	}
}

// ClusterReport summarizes clustering.
type ClusterReport struct {
	Edges               int `json:"edges"`                          // pairs at or above the threshold, not held
	Held                int `json:"held"`                           // pairs at or above the threshold held by the household or namesake guard
	Clusters            int `json:"clusters"`                       // including singletons
	Largest             int `json:"largest"`                        // records in the largest cluster
	BlockedWeak         int `json:"blocked_weak"`                   // merges refused for too few links
	BlockedSize         int `json:"blocked_size"`                   // merges refused for the size cap
	BlockedContradicted int `json:"blocked_contradicted,omitempty"` // merges refused for records that contradict each other
}

// Cluster assigns each of n records a cluster label (the label is the
// smallest record index in the cluster).
func Cluster(n int, pairs []ScoredPair, opt ClusterOptions) ([]int32, ClusterReport) {
	opt.defaults()
	var rep ClusterReport
	edges := make([]ScoredPair, 0)
	for _, p := range pairs {
		if p.Prob >= opt.Threshold {
			if p.Held {
				rep.Held++
				continue
			}
			edges = append(edges, p)
		}
	}
	rep.Edges = len(edges)
	slices.SortFunc(edges, func(a, b ScoredPair) int {
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		if c := cmp.Compare(a.I, b.I); c != 0 {
			return c
		}
		return cmp.Compare(a.J, b.J)
	})
	// Adjacency of accepted edges, to count links between clusters.
	adj := make(map[int32][]int32, len(edges))
	for _, e := range edges {
		adj[e.I] = append(adj[e.I], e.J)
		adj[e.J] = append(adj[e.J], e.I)
	}
	parent := make([]int32, n)
	members := make(map[int32][]int32)
	for i := range parent {
		parent[i] = int32(i)
	}
	var find func(int32) int32
	find = func(x int32) int32 {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	mem := func(r int32) []int32 {
		if m, ok := members[r]; ok {
			return m
		}
		return []int32{r}
	}
	for _, e := range edges {
		a, b := find(e.I), find(e.J)
		if a == b {
			continue
		}
		ma, mb := mem(a), mem(b)
		if len(ma)+len(mb) > opt.MaxSize {
			rep.BlockedSize++
			continue
		}
		if (len(ma) >= 2 || len(mb) >= 2) && contradicted(ma, mb, opt) {
			rep.BlockedContradicted++
			continue
		}
		if len(ma) >= 2 && len(mb) >= 2 {
			small, other := ma, b
			if len(mb) < len(ma) {
				small, other = mb, a
			}
			links := 0
			for _, x := range small {
				for _, y := range adj[x] {
					if find(y) == other {
						links++
					}
				}
			}
			if float64(links) < opt.MinLinkDensity*float64(len(ma)*len(mb)) && !supported(ma, mb, opt) {
				rep.BlockedWeak++
				continue
			}
		}
		// Union by size keeps find cheap.
		if len(ma) < len(mb) {
			a, b, ma, mb = b, a, mb, ma
		}
		parent[b] = a
		members[a] = append(ma, mb...)
		delete(members, b)
	}
	labels := make([]int32, n)
	minIdx := map[int32]int32{}
	for i := int32(0); i < int32(n); i++ {
		r := find(i)
		if _, ok := minIdx[r]; !ok {
			minIdx[r] = i
			rep.Clusters++
		}
		labels[i] = minIdx[r]
	}
	for _, m := range members {
		rep.Largest = max(rep.Largest, len(m))
	}
	if n > 0 {
		rep.Largest = max(rep.Largest, 1)
	}
	return labels, rep
}

// supported applies the link density to every pair between two clusters,
// each compared directly: blocking compares only some of them, so two
// parts of one person (each found through other keys, as one person's
// many records are) can share few candidate pairs, while most of their
// pairs would be accepted edges if compared.
func supported(ma, mb []int32, opt ClusterOptions) bool {
	if opt.Score == nil {
		return false
	}
	links := 0
	for _, x := range ma {
		for _, y := range mb {
			if p := opt.Score(x, y); p.Accepted(opt.Threshold) {
				links++
			}
		}
	}
	return float64(links) >= opt.MinLinkDensity*float64(len(ma)*len(mb))
}

// contradicted says whether at least as many pairs between two clusters
// contradict each other as are accepted edges, every pair compared
// directly.
func contradicted(ma, mb []int32, opt ClusterOptions) bool {
	if !opt.Contradictions || opt.Contradicts == nil {
		return false
	}
	against, links := 0, 0
	for _, x := range ma {
		for _, y := range mb {
			p, c := opt.Contradicts(x, y)
			if c {
				against++
			} else if p.Accepted(opt.Threshold) {
				links++
			}
		}
	}
	return against > 0 && against >= links
}
