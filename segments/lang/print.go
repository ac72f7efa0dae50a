package lang

import "strings"

// Format prints a syntax tree back as source in canonical form: single
// spaces, the fewest parentheses, durations in their largest whole unit,
// timestamps in UTC. Parsing the output gives the same tree, and equal
// aggregates print the same (their sharing key).
func Format(n Node) string {
	var b strings.Builder
	printNode(&b, n, 0, false)
	return b.String()
}

// aggregateKey prints a checked chain with its filters in evaluation order
// (evalOrder), so that chains differing only in the order of filters that
// commute (.where(..).within(7d) and .within(7d).where(..)) share a key.
func aggregateKey(n *Chain) string {
	var b strings.Builder
	printNode(&b, n, 0, true)
	return b.String()
}

const (
	precOr = iota + 1
	precAnd
	precNot
	precCmp
	precSum
	precProd
	precUnary
	precPrimary
)

func prec(n Node) int {
	switch n := n.(type) {
	case *Binary:
		switch n.Op {
		case "or":
			return precOr
		case "and":
			return precAnd
		case "+", "-":
			return precSum
		case "*", "/", "%":
			return precProd
		}
		return precCmp
	case *Between, *IsMissing:
		return precCmp
	case *Unary:
		if n.Op == "not" {
			return precNot
		}
		return precUnary
	}
	return precPrimary
}

// printNode prints n, in parentheses when its precedence is below min.
func printNode(b *strings.Builder, n Node, min int, key bool) {
	if prec(n) < min {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch n := n.(type) {
	case *Lit:
		b.WriteString(n.Val.String())
	case *ListLit:
		b.WriteByte('[')
		printArgs(b, n.Elems, key)
		b.WriteByte(']')
	case *Unary:
		if n.Op == "not" {
			b.WriteString("not ")
			printNode(b, n.X, precNot, key)
		} else {
			b.WriteString("-")
			printNode(b, n.X, precUnary, key)
		}
	case *Binary:
		p := prec(n)
		left, right := p, p+1 // left-associative
		if p == precCmp {
			left = p + 1 // comparisons do not chain
		}
		printNode(b, n.X, left, key)
		b.WriteString(" " + n.Op + " ")
		printNode(b, n.Y, right, key)
	case *Between:
		printNode(b, n.X, precSum, key)
		b.WriteString(" between ")
		printNode(b, n.Lo, precSum, key)
		b.WriteString(" and ")
		printNode(b, n.Hi, precSum, key)
	case *IsMissing:
		printNode(b, n.X, precSum, key)
		if n.Not {
			b.WriteString(" is not missing")
		} else {
			b.WriteString(" is missing")
		}
	case *Call:
		b.WriteString(n.Name + "(")
		printArgs(b, n.Args, key)
		b.WriteByte(')')
	case *ParentProp:
		b.WriteString("parent.prop(" + quoteLit(n.Path) + ")")
	case *Chain:
		b.WriteString("events(")
		printArgs(b, n.Args, key)
		b.WriteByte(')')
		steps := n.Steps
		if key && n.order != nil {
			steps = n.order
		}
		for _, s := range steps {
			b.WriteString("." + s.Name + "(")
			printArgs(b, s.Args, key)
			b.WriteByte(')')
		}
	}
}

func printArgs(b *strings.Builder, args []Node, key bool) {
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		printNode(b, a, 0, key)
	}
}
