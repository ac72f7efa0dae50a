package match

import (
	"math"
	"math/rand/v2"
	"testing"
)

// synth draws comparison vectors for pairs from known m, u and λ,
// counted in a histogram as Run counts candidates.
func synth(n int, lambda float64, m, u [][]float64, seed uint64) *vecHist {
	rng := rand.New(rand.NewPCG(seed, 7))
	nc := len(m)
	g := make([]uint8, n*nc)
	draw := func(p []float64) uint8 {
		x := rng.Float64()
		for l := 1; l < len(p); l++ {
			x -= p[l]
			if x < 0 {
				return uint8(l)
			}
		}
		return uint8(len(p) - 1)
	}
	for i := 0; i < n; i++ {
		match := rng.Float64() < lambda
		for c := 0; c < nc; c++ {
			switch {
			case rng.Float64() < 0.05:
				g[i*nc+c] = 0 // missing value
			case match:
				g[i*nc+c] = draw(m[c])
			default:
				g[i*nc+c] = draw(u[c])
			}
		}
	}
	h := newVecHist(nc, 0)
	for i := 0; i < n; i++ {
		h.add(g[i*nc:(i+1)*nc], 0, 1)
	}
	return h.sorted()
}

func TestEMRecoversParameters(t *testing.T) {
	m := [][]float64{
		{0, 0.85, 0.10, 0.05},
		{0, 0.70, 0.20, 0.10},
		{0, 0.90, 0.06, 0.04},
		{0, 0.60, 0.30, 0.10},
		{0, 0.95, 0.05},
	}
	u := [][]float64{
		{0, 0.01, 0.04, 0.95},
		{0, 0.02, 0.08, 0.90},
		{0, 0.001, 0.01, 0.989},
		{0, 0.05, 0.15, 0.80},
		{0, 0.10, 0.90},
	}
	for _, lambda := range []float64{0.05, 0.3, 0.7} {
		h := synth(40000, lambda, m, u, 42)
		start := make([][]float64, len(m))
		for c := range m {
			start[c] = initialM(len(m[c]))
		}
		var opt TrainOptions
		opt.defaults()
		got, run := em(h, h.all, nil, start, u, opt)
		if !run.Converged {
			t.Errorf("λ=%v: EM did not converge in %d iterations", lambda, run.Iterations)
		}
		if math.Abs(run.Lambda-lambda) > 0.02 {
			t.Errorf("λ=%v: estimated λ %.3f", lambda, run.Lambda)
		}
		for c := range m {
			for l := 1; l < len(m[c]); l++ {
				if math.Abs(got[c][l]-m[c][l]) > 0.04 {
					t.Errorf("λ=%v: m[%d][%d] = %.3f, want %.3f", lambda, c, l, got[c][l], m[c][l])
				}
			}
		}
	}
}

// With no matches among the pairs EM must not invent a match class out
// of the non-matches (the degenerate solution a free EM finds).
func TestEMNoMatchesDoesNotCollapse(t *testing.T) {
	u := [][]float64{{0, 0.01, 0.04, 0.95}, {0, 0.02, 0.08, 0.90}, {0, 0.05, 0.95}}
	h := synth(20000, 0, u, u, 3)
	start := make([][]float64, len(u))
	for c := range u {
		start[c] = initialM(len(u[c]))
	}
	var opt TrainOptions
	opt.defaults()
	got, run := em(h, h.all, nil, start, u, opt)
	if run.Lambda > 0.01 {
		t.Errorf("λ = %.4f on data with no matches", run.Lambda)
	}
	for c := range got {
		for l := 2; l < len(got[c]); l++ {
			if got[c][l]/u[c][l] > got[c][l-1]/u[c][l-1]+1e-9 {
				t.Errorf("weights not monotone for field %d: %v", c, got[c])
			}
		}
	}
}

func TestMonotone(t *testing.T) {
	u := []float64{0, 0.01, 0.01, 0.98}
	m := []float64{0, 0.3, 0.6, 0.1} // level 2 out-ranks exact: pooled
	monotone(m, u)
	if m[1]/u[1] < m[2]/u[2]-1e-9 || m[2]/u[2] < m[3]/u[3]-1e-9 {
		t.Errorf("not monotone: %v", m)
	}
	if s := m[1] + m[2] + m[3]; math.Abs(s-1) > 1e-9 {
		t.Errorf("sum %v", s)
	}
	if math.Abs(m[1]-0.45) > 1e-9 {
		t.Errorf("pooled m = %v, want 0.45 each", m[1:3])
	}
}
