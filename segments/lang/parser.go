package lang

import "fmt"

// keywords cannot name functions.
var keywords = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "between": true, "is": true, "missing": true,
	"true": true, "false": true, "contains": true, "starts_with": true, "ends_with": true,
	"matches": true, "parent": true,
}

// maxParseDepth bounds the parser's recursion (parentheses, not, unary
// minus) so that no input can exhaust the stack; the node limit bounds
// everything else.
const maxParseDepth = 100

// Parse reads src into a syntax tree, enforcing the source size, the node
// limit and a recursion bound. It does not check types or references.
func Parse(src string, lim Limits) (Node, error) {
	lim = lim.withDefaults()
	if len(src) > lim.MaxSourceBytes {
		return nil, errAt(Pos{1, 1}, CodeLimit, "split it into smaller definitions joined with in_segment()", "the definition is %d bytes, more than the limit of %d", len(src), lim.MaxSourceBytes)
	}
	toks, lerr := lex(src)
	if lerr != nil {
		return nil, lerr
	}
	p := &parser{toks: toks, lim: lim}
	n, err := p.parse()
	if err != nil {
		return nil, err
	}
	return n, nil
}

type parser struct {
	toks  []token
	i     int
	lim   Limits
	nodes int
	depth int
}

// bail carries a parse error up through the recursion; parse recovers it.
type bail struct{ err *Error }

// catch turns a bail panic into *err; any other panic is a bug and goes on.
func catch(err **Error) {
	if r := recover(); r != nil {
		b, ok := r.(bail)
		if !ok {
			panic(r)
		}
		*err = b.err
	}
}

func (p *parser) parse() (n Node, err *Error) {
	defer catch(&err)
	n = p.expr()
	if t := p.peek(); t.kind != tEOF {
		p.fail(t.pos, CodeSyntax, hintAfterExpr(t), "unexpected %s after a complete expression", t.describe())
	}
	return n, nil
}

func hintAfterExpr(t token) string {
	switch t.text {
	case ")", "]":
		return "this closes nothing: remove it or add the opening one"
	case "=":
		return "comparisons do not chain: use and"
	}
	return "join conditions with and / or"
}

func (p *parser) fail(pos Pos, code Code, hint, format string, args ...any) {
	panic(bail{errAt(pos, code, hint, format, args...)})
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isKw(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

// expect consumes the punctuation s or fails, naming what it closes.
func (p *parser) expect(s string, opened *token) token {
	if p.isPunct(s) {
		return p.next()
	}
	t := p.peek()
	hint := ""
	if opened != nil {
		hint = fmt.Sprintf("add %s to close the %s at %s", s, opened.text, opened.pos)
	}
	if t.kind == tEOF {
		p.fail(t.pos, CodeSyntax, hint, "the expression is incomplete: expected %s", s)
	}
	p.fail(t.pos, CodeSyntax, hint, "expected %s, found %s", s, t.describe())
	return token{}
}

// node counts a new node against the limit.
func (p *parser) node(pos Pos) {
	p.nodes++
	if p.nodes > p.lim.MaxNodes {
		p.fail(pos, CodeLimit, "simplify it or split it with in_segment()", "the definition has more than %d syntax nodes", p.lim.MaxNodes)
	}
}

func (p *parser) enter(pos Pos) {
	p.depth++
	if p.depth > maxParseDepth {
		p.fail(pos, CodeLimit, "", "the expression is nested more than %d levels deep", maxParseDepth)
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) expr() Node { return p.or() }

// level parses a left-associative run: next { op next }.
func (p *parser) level(next func() Node, isOp func() bool) Node {
	x := next()
	for isOp() {
		t := p.next()
		y := next()
		p.node(t.pos)
		x = &Binary{P: t.pos, Op: t.text, X: x, Y: y}
	}
	return x
}

func (p *parser) or() Node  { return p.level(p.and, func() bool { return p.isKw("or") }) }
func (p *parser) and() Node { return p.level(p.not, func() bool { return p.isKw("and") }) }

// prefixed parses op x, x parsed by self: not not x, - -x.
func (p *parser) prefixed(op string, self func() Node) Node {
	t := p.next()
	p.enter(t.pos)
	x := self()
	p.leave()
	p.node(t.pos)
	return &Unary{P: t.pos, Op: op, X: x}
}

func (p *parser) not() Node {
	if p.isKw("not") {
		return p.prefixed("not", p.not)
	}
	return p.cmp()
}

var cmpOps = map[string]bool{"=": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}
var wordOps = map[string]bool{"contains": true, "starts_with": true, "ends_with": true, "matches": true}

func (p *parser) cmp() Node {
	x := p.sum()
	t := p.peek()
	switch {
	case t.kind == tPunct && cmpOps[t.text], t.kind == tIdent && (wordOps[t.text] || t.text == "in"):
		p.next()
		y := p.sum()
		p.node(t.pos)
		return &Binary{P: t.pos, Op: t.text, X: x, Y: y}
	case t.kind == tIdent && t.text == "not" && p.toks[p.i+1].kind == tIdent && p.toks[p.i+1].text == "in":
		p.next()
		p.next()
		y := p.sum()
		p.node(t.pos)
		return &Binary{P: t.pos, Op: "not in", X: x, Y: y}
	case t.kind == tIdent && t.text == "between":
		p.next()
		lo := p.sum()
		if !p.isKw("and") {
			n := p.peek()
			p.fail(n.pos, CodeSyntax, "write x between low and high", "expected and in between, found %s", n.describe())
		}
		p.next()
		hi := p.sum()
		p.node(t.pos)
		return &Between{P: t.pos, X: x, Lo: lo, Hi: hi}
	case t.kind == tIdent && t.text == "is":
		p.next()
		neg := false
		if p.isKw("not") {
			p.next()
			neg = true
		}
		if !p.isKw("missing") {
			n := p.peek()
			p.fail(n.pos, CodeSyntax, "write x is missing or x is not missing", "expected missing after is, found %s", n.describe())
		}
		p.next()
		p.node(t.pos)
		return &IsMissing{P: t.pos, X: x, Not: neg}
	}
	return x
}

func (p *parser) sum() Node {
	return p.level(p.prod, func() bool { return p.isPunct("+") || p.isPunct("-") })
}

func (p *parser) prod() Node {
	return p.level(p.unary, func() bool { return p.isPunct("*") || p.isPunct("/") || p.isPunct("%") })
}

func (p *parser) unary() Node {
	if p.isPunct("-") {
		return p.prefixed("-", p.unary)
	}
	x := p.primary()
	if p.isPunct(".") {
		d := p.peek()
		p.fail(d.pos, CodeSyntax, `only events("...") has methods`, "unexpected . after this expression")
	}
	return x
}

func (p *parser) primary() Node {
	t := p.next()
	switch t.kind {
	case tNumber, tString, tDuration, tTimestamp:
		p.node(t.pos)
		return &Lit{P: t.pos, Val: t.value()}
	case tEOF:
		p.fail(t.pos, CodeSyntax, "the expression is incomplete", "unexpected end of input")
	case tPunct:
		switch t.text {
		case "(":
			p.enter(t.pos)
			x := p.expr()
			p.expect(")", &t)
			p.leave()
			return x
		case "[":
			p.enter(t.pos)
			l := &ListLit{P: t.pos}
			if !p.isPunct("]") {
				l.Elems = p.args()
			}
			p.expect("]", &t)
			p.leave()
			p.node(t.pos)
			return l
		}
		p.fail(t.pos, CodeSyntax, "", "unexpected %s", t.describe())
	}
	// An identifier: a literal word, parent.prop(...), or a call.
	switch t.text {
	case "true", "false":
		p.node(t.pos)
		return &Lit{P: t.pos, Val: boolVal(t.text == "true")}
	case "parent":
		p.expect(".", nil)
		m := p.next()
		if m.kind != tIdent || m.text != "prop" {
			p.fail(m.pos, CodeSyntax, `write parent.prop("name")`, "expected prop after parent.")
		}
		open := p.expect("(", nil)
		s := p.next()
		if s.kind != tString {
			p.fail(s.pos, CodeSyntax, `write parent.prop("name")`, "parent.prop takes one string")
		}
		p.expect(")", &open)
		p.node(t.pos)
		return &ParentProp{P: t.pos, Path: s.text}
	case "missing":
		p.fail(t.pos, CodeSyntax, "write x is missing", "missing is not a value")
	}
	if keywords[t.text] {
		p.fail(t.pos, CodeSyntax, "", "unexpected %s", t.describe())
	}
	if !p.isPunct("(") {
		p.fail(p.peek().pos, CodeSyntax, fmt.Sprintf("call it: %s(...); strings use double quotes", t.text), "expected ( after %s", t.text)
	}
	open := p.next()
	var args []Node
	if !p.isPunct(")") {
		p.enter(open.pos)
		args = p.args()
		p.leave()
	}
	p.expect(")", &open)
	p.node(t.pos)
	if t.text != "events" {
		return &Call{P: t.pos, Name: t.text, Args: args}
	}
	c := &Chain{P: t.pos, Args: args}
	for p.isPunct(".") {
		p.next()
		m := p.next()
		if m.kind != tIdent {
			p.fail(m.pos, CodeSyntax, "", "expected a method name after ., found %s", m.describe())
		}
		open := p.expect("(", nil)
		s := &Step{P: m.pos, Name: m.text}
		if !p.isPunct(")") {
			p.enter(open.pos)
			s.Args = p.args()
			p.leave()
		}
		p.expect(")", &open)
		p.node(m.pos)
		c.Steps = append(c.Steps, s)
	}
	return c
}

func (p *parser) args() []Node {
	var out []Node
	for {
		out = append(out, p.expr())
		if !p.isPunct(",") {
			return out
		}
		p.next()
	}
}
