package lang

import (
	"regexp"
	"time"
)

// Node is an expression in the syntax tree. Every node knows where it
// starts in the source, so that errors and explanations point at it.
type Node interface {
	Pos() Pos
}

// Lit is a literal: number, string, boolean, duration or timestamp.
type Lit struct {
	P   Pos
	Val Value
}

// ListLit is [a, b, ...], the right side of in.
type ListLit struct {
	P     Pos
	Elems []Node
}

// Unary is -x or not x.
type Unary struct {
	P  Pos
	Op string
	X  Node
}

// Binary is x op y (P is the operator's position): and, or, a comparison, arithmetic, in, not in,
// contains, starts_with, ends_with or matches.
type Binary struct {
	P    Pos
	Op   string
	X, Y Node

	re *regexp.Regexp // matches: compiled once by the checker
}

// Between is x between lo and hi (both ends included).
type Between struct {
	P         Pos
	X, Lo, Hi Node
}

// IsMissing is x is missing, or x is not missing (Not).
type IsMissing struct {
	P   Pos
	X   Node
	Not bool
}

// Call is a function call: trait("a.b"), if(c, a, b), now(), ...
type Call struct {
	P    Pos
	Name string
	Args []Node

	typ  Type     // computed(): the referenced definition's type
	path []string // trait() and prop(): the parsed path
	flat string   // trait(): the path as graph flattens it
}

// ParentProp is parent.prop("x"): a property of the event that the
// enclosing .where(...) is testing, read from inside a nested chain.
type ParentProp struct {
	P    Pos
	Path string

	path []string
}

// Chain is events("Name") followed by its steps, the last a reducer.
type Chain struct {
	P     Pos
	Args  []Node // events(...)'s arguments: one string, the event name
	Steps []*Step

	name   string
	nested bool
	order  []*Step // evaluation order (evalOrder) // inside another chain's .where(...): parent is defined
	// shared is the aggregate key of a top-level chain whose value
	// depends only on the events and the time (no in_segment or computed
	// inside): a Session evaluates it once for every program holding it.
	shared string
}

// Step is one .method(args) of a chain.
type Step struct {
	P    Pos
	Name string
	Args []Node

	dur    time.Duration // within, after_parent, before_parent; between's near end
	dur2   time.Duration // between's far end
	since  time.Time
	n      int
	hasDur bool // after_parent()/before_parent() with a window
	prop   *Call
}

func (n *Lit) Pos() Pos        { return n.P }
func (n *ListLit) Pos() Pos    { return n.P }
func (n *Unary) Pos() Pos      { return n.P }
func (n *Binary) Pos() Pos     { return n.P }
func (n *Between) Pos() Pos    { return n.P }
func (n *IsMissing) Pos() Pos  { return n.P }
func (n *Call) Pos() Pos       { return n.P }
func (n *ParentProp) Pos() Pos { return n.P }
func (n *Chain) Pos() Pos      { return n.P }

// walk calls fn on n and every node below it (steps' arguments included),
// depth first; fn returning false skips a node's children.
func walk(n Node, fn func(Node) bool) {
	if n == nil || !fn(n) {
		return
	}
	switch n := n.(type) {
	case *ListLit:
		for _, e := range n.Elems {
			walk(e, fn)
		}
	case *Unary:
		walk(n.X, fn)
	case *Binary:
		walk(n.X, fn)
		walk(n.Y, fn)
	case *Between:
		walk(n.X, fn)
		walk(n.Lo, fn)
		walk(n.Hi, fn)
	case *IsMissing:
		walk(n.X, fn)
	case *Call:
		for _, a := range n.Args {
			walk(a, fn)
		}
	case *Chain:
		for _, a := range n.Args {
			walk(a, fn)
		}
		for _, s := range n.Steps {
			for _, a := range s.Args {
				walk(a, fn)
			}
		}
	}
}
