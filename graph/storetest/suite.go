package storetest

import (
	"maps"
	"slices"
	"testing"

	"github.com/idgraph/idgraph/graph"
)

// RunCases runs each contract test of a store that a graph store also
// keeps, by name in order, on a fresh backend: open gives an empty graph
// store, of the store under test (S: it, or the stores a test needs).
func RunCases[S any](t *testing.T, open Opener, of func(t *testing.T, g graph.Store) S, cases map[string]func(t *testing.T, s S)) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		t.Run(name, func(t *testing.T) { cases[name](t, of(t, open(t))) })
	}
}

// As returns g as a B (a backend interface such as segments.Backend),
// failing the test when g does not implement it.
func As[B any](t *testing.T, g graph.Store) B {
	t.Helper()
	b, ok := g.(B)
	if !ok {
		t.Fatalf("%T does not implement %T", g, (*B)(nil))
	}
	return b
}
