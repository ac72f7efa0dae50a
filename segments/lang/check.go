package lang

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Kind is what a definition defines.
type Kind int

const (
	KindSegment  Kind = iota // a boolean condition: who is in the audience
	KindComputed             // a scalar value per profile
)

func (k Kind) String() string {
	if k == KindComputed {
		return "computed trait"
	}
	return "segment"
}

// Limits bound what one definition may ask of the engine. Zero fields take
// the defaults (DefaultLimits).
type Limits struct {
	MaxPrimaries   int           // data references: trait, computed, has_id, id_count, in_segment, events chains
	MaxNodes       int           // syntax nodes
	MaxDepth       int           // event chains nested in each other's .where(...)
	MaxRefChain    int           // in_segment / computed references followed transitively
	MaxSourceBytes int           // size of the source text
	MaxWindow      time.Duration // event retention: no window may be longer
	MaxRegexBytes  int           // a matches pattern's length
	MaxLatest      int           // latest(n)'s n
}

// DefaultLimits are the limits issue 13 sets.
func DefaultLimits() Limits {
	return Limits{
		MaxPrimaries:   50,
		MaxNodes:       500,
		MaxDepth:       3,
		MaxRefChain:    10,
		MaxSourceBytes: 16 << 10,
		MaxWindow:      365 * 24 * time.Hour,
		MaxRegexBytes:  1024,
		MaxLatest:      10000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	def := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	def(&l.MaxPrimaries, d.MaxPrimaries)
	def(&l.MaxNodes, d.MaxNodes)
	def(&l.MaxDepth, d.MaxDepth)
	def(&l.MaxRefChain, d.MaxRefChain)
	def(&l.MaxSourceBytes, d.MaxSourceBytes)
	def(&l.MaxRegexBytes, d.MaxRegexBytes)
	def(&l.MaxLatest, d.MaxLatest)
	if l.MaxWindow <= 0 {
		l.MaxWindow = d.MaxWindow
	}
	return l
}

// Ref names a definition: a segment or a computed trait.
type Ref struct {
	Kind Kind
	Key  string
}

// Definition is what the checker needs to know of a saved definition: its
// type (a computed trait's) and the definitions it references directly.
type Definition struct {
	Type Type
	Refs []Ref
}

// Env resolves in_segment(...) and computed(...) references.
type Env interface {
	Lookup(Ref) (Definition, bool)
}

// MapEnv is an Env held in memory.
type MapEnv map[Ref]Definition

func (m MapEnv) Lookup(r Ref) (Definition, bool) {
	d, ok := m[r]
	return d, ok
}

// Options say what is compiled: its kind, its key (to refuse cycles back
// to itself), the limits and the saved definitions it may reference.
type Options struct {
	Kind   Kind
	Key    string
	Limits Limits
	Env    Env
}

// Deps is what a definition reads: the incremental engine re-evaluates it
// when one of these changes.
type Deps struct {
	Events   []string // event names, nested chains' included
	Traits   []string // trait paths as graph flattens them
	IDTypes  []string // has_id / id_count types
	Computed []string
	Segments []string
	// Time is set when the value can change with time alone (now(),
	// days_since, any event chain): the evaluator's Trace gives the next
	// deadline.
	Time bool
}

// Aggregate is one top-level event chain. Key is its canonical text:
// chains with equal keys compute the same value and can share state.
type Aggregate struct {
	Key    string
	Pos    Pos
	Events []string
}

// Program is a checked definition, ready to evaluate.
type Program struct {
	Kind       Kind
	Key        string
	Type       Type
	Root       Node
	Deps       Deps
	Aggregates []Aggregate
	Refs       []Ref // direct references, for the caller's Env
}

// Definition returns what an Env needs to know of p once saved.
func (p *Program) Definition() Definition { return Definition{Type: p.Type, Refs: p.Refs} }

// Compile parses and checks src. Every error is an *Error with a code and
// a position; nothing is saved by a caller until Compile succeeds.
func Compile(src string, o Options) (*Program, error) {
	o.Limits = o.Limits.withDefaults()
	root, err := Parse(src, o.Limits)
	if err != nil {
		return nil, err
	}
	c := &checker{opt: o, sets: map[string]map[string]bool{}}
	prog, cerr := c.run(root)
	if cerr != nil {
		return nil, cerr
	}
	return prog, nil
}

type checker struct {
	opt       Options
	primaries int
	sets      map[string]map[string]bool // deps by category
	refs      []Ref
	refPos    []Pos
	time      bool
	aggs      []Aggregate
}

// scope is where in the tree the checker is.
type scope struct {
	chainDepth int  // enclosing event chains
	inWhere    bool // inside a chain's .where(...): prop() reads its event
}

func (c *checker) run(root Node) (prog *Program, err *Error) {
	defer catch(&err)
	t := c.check(root, scope{})
	switch c.opt.Kind {
	case KindSegment:
		if t != TypeBool {
			hint := "compare it with something, e.g. ... = true or ... > 0"
			if t == typeEvents {
				hint = "end the chain with .exists() or a comparison of .count()"
			}
			c.fail(root.Pos(), CodeType, hint, "a segment must be a boolean condition; this is %s", article(t))
		}
	case KindComputed:
		if t != TypeBool && t != TypeNumber && t != TypeString && t != TypeTimestamp && t != TypeAny {
			hint := ""
			switch t {
			case TypeDuration:
				hint = "use days_since(...) for a number of days"
			case typeEvents:
				hint = "end the chain with a reducer such as .count()"
			}
			c.fail(root.Pos(), CodeType, hint, "a computed trait must be a single value (boolean, number, string or timestamp); this is %s", article(t))
		}
	}
	c.checkRefs()
	prog = &Program{Kind: c.opt.Kind, Key: c.opt.Key, Type: t, Root: root, Aggregates: c.aggs, Refs: c.refs}
	prog.Deps = Deps{
		Events: c.list("events"), Traits: c.list("traits"), IDTypes: c.list("ids"),
		Computed: c.list("computed"), Segments: c.list("segments"), Time: c.time,
	}
	return prog, nil
}

func article(t Type) string {
	switch t {
	case TypeAny:
		return "a value of unknown type"
	case typeEvents:
		return "an event chain without a reducer"
	}
	return "a " + t.String()
}

func (c *checker) fail(pos Pos, code Code, hint, format string, args ...any) {
	panic(bail{errAt(pos, code, hint, format, args...)})
}

func (c *checker) dep(cat, v string) {
	if c.sets[cat] == nil {
		c.sets[cat] = map[string]bool{}
	}
	c.sets[cat][v] = true
}

func (c *checker) list(cat string) []string {
	out := make([]string, 0, len(c.sets[cat]))
	for k := range c.sets[cat] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *checker) primary(pos Pos) {
	c.primaries++
	if c.primaries > c.opt.Limits.MaxPrimaries {
		c.fail(pos, CodeLimit, "split it into definitions joined with in_segment()", "the definition has more than %d data references", c.opt.Limits.MaxPrimaries)
	}
}

// compatible reports whether two operand types can be compared for
// equality: the same scalar type, or one of them known only at runtime.
func compatible(a, b Type) bool {
	if a == typeEvents || b == typeEvents || a == TypeList || b == TypeList {
		return false
	}
	return a == b || a == TypeAny || b == TypeAny
}

func orderable(t Type) bool {
	return t == TypeAny || t == TypeNumber || t == TypeString || t == TypeTimestamp || t == TypeDuration
}

func (c *checker) want(n Node, got Type, wants ...Type) {
	if slices.Contains(wants, got) {
		return
	}
	names := make([]string, len(wants))
	for i, w := range wants {
		names[i] = w.String()
	}
	hint := ""
	if got == typeEvents {
		hint = "end the chain with a reducer such as .exists() or .count()"
	} else if got == TypeAny && wants[0] == TypeBool {
		hint = `compare it: trait("x") = true`
	}
	c.fail(n.Pos(), CodeType, hint, "expected %s, found %s", strings.Join(names, " or "), article(got))
}

func (c *checker) check(n Node, s scope) Type {
	switch n := n.(type) {
	case *Lit:
		return n.Val.Type
	case *ListLit:
		for _, e := range n.Elems {
			t := c.check(e, s)
			if t == TypeList || t == typeEvents {
				c.fail(e.Pos(), CodeType, "", "a list holds single values, not %s", article(t))
			}
		}
		return TypeList
	case *Unary:
		t := c.check(n.X, s)
		if n.Op == "not" {
			c.want(n.X, t, TypeBool)
			return TypeBool
		}
		c.want(n.X, t, TypeNumber, TypeDuration, TypeAny)
		if t == TypeAny {
			return TypeNumber
		}
		return t
	case *Binary:
		return c.binary(n, s)
	case *Between:
		tx, tl, th := c.check(n.X, s), c.check(n.Lo, s), c.check(n.Hi, s)
		for _, p := range []struct {
			n Node
			t Type
		}{{n.X, tx}, {n.Lo, tl}, {n.Hi, th}} {
			if !orderable(p.t) {
				c.fail(p.n.Pos(), CodeType, "", "between needs numbers, strings, timestamps or durations, not %s", article(p.t))
			}
		}
		if !compatible(tx, tl) || !compatible(tx, th) || !compatible(tl, th) {
			c.fail(n.P, CodeType, "", "between mixes %s, %s and %s", tx, tl, th)
		}
		if lo, ok := constant(n.Lo); ok {
			if hi, ok := constant(n.Hi); ok && lo.sameType(hi) && compare(lo, hi) > 0 {
				c.fail(n.Lo.Pos(), CodeBadRange, "write the smaller bound first", "the range %s and %s is reversed", lo, hi)
			}
		}
		return TypeBool
	case *IsMissing:
		if t := c.check(n.X, s); t == typeEvents {
			c.want(n.X, t, TypeAny)
		}
		return TypeBool
	case *ParentProp:
		if !s.inWhere || s.chainDepth < 2 {
			c.fail(n.P, CodeParentOutsideNested, "parent is the event a nested chain's enclosing .where(...) is testing", "parent.prop outside a nested event chain")
		}
		n.path = c.path(n.P, n.Path)
		return TypeAny
	case *Call:
		return c.call(n, s)
	case *Chain:
		return c.chain(n, s)
	}
	c.fail(n.Pos(), CodeSyntax, "", "unexpected expression")
	return TypeAny
}

// constant returns a literal's value, negated numbers and durations
// included, for checks that need it before evaluation.
func constant(n Node) (Value, bool) {
	switch n := n.(type) {
	case *Lit:
		return n.Val, true
	case *Unary:
		if n.Op != "-" {
			return Value{}, false
		}
		v, ok := constant(n.X)
		switch {
		case !ok:
			return Value{}, false
		case v.Type == TypeNumber:
			return numVal(-v.Num), true
		case v.Type == TypeDuration:
			return durVal(-v.Dur), true
		}
	}
	return Value{}, false
}

func (c *checker) binary(n *Binary, s scope) Type {
	tx, ty := c.check(n.X, s), c.check(n.Y, s)
	for _, side := range []struct {
		n Node
		t Type
	}{{n.X, tx}, {n.Y, ty}} {
		if side.t == typeEvents {
			c.fail(side.n.Pos(), CodeType, "end the chain with a reducer such as .exists() or .count()", "an event chain has no value without a reducer")
		}
	}
	switch n.Op {
	case "and", "or":
		c.want(n.X, tx, TypeBool)
		c.want(n.Y, ty, TypeBool)
		return TypeBool
	case "=", "!=":
		if !compatible(tx, ty) {
			c.fail(n.P, CodeType, "values of different types are never equal; convert one with number(...) or timestamp(...)", "cannot compare %s with %s", article(tx), article(ty))
		}
		return TypeBool
	case "<", "<=", ">", ">=":
		if !orderable(tx) || !orderable(ty) || !compatible(tx, ty) {
			c.fail(n.P, CodeType, "", "cannot order %s against %s", article(tx), article(ty))
		}
		return TypeBool
	case "in", "not in":
		if !compatible(tx, TypeAny) {
			c.fail(n.X.Pos(), CodeType, "", "the left side of %s must be a single value, not %s", n.Op, article(tx))
		}
		if ty != TypeList && ty != TypeAny {
			c.fail(n.Y.Pos(), CodeType, "write x in [a, b]", "%s needs a list, found %s", n.Op, article(ty))
		}
		if l, ok := n.Y.(*ListLit); ok {
			for _, e := range l.Elems {
				if v, ok := e.(*Lit); ok && !compatible(tx, v.Val.Type) {
					c.fail(e.Pos(), CodeType, "", "%s can never equal %s", article(tx), v.Val)
				}
			}
		}
		return TypeBool
	case "contains", "starts_with", "ends_with":
		c.want(n.X, tx, TypeString, TypeAny)
		c.want(n.Y, ty, TypeString, TypeAny)
		return TypeBool
	case "matches":
		c.want(n.X, tx, TypeString, TypeAny)
		lit, ok := n.Y.(*Lit)
		if !ok || lit.Val.Type != TypeString {
			c.fail(n.Y.Pos(), CodeBadRegex, `write x matches "^pattern$"`, "matches takes a string literal pattern")
		}
		if len(lit.Val.Str) > c.opt.Limits.MaxRegexBytes {
			c.fail(n.Y.Pos(), CodeBadRegex, "", "the pattern is %d bytes, more than the limit of %d", len(lit.Val.Str), c.opt.Limits.MaxRegexBytes)
		}
		re, err := regexp.Compile(lit.Val.Str)
		if err != nil {
			c.fail(n.Y.Pos(), CodeBadRegex, "patterns use RE2 syntax (no backreferences or lookaround)", "invalid pattern: %v", err)
		}
		n.re = re
		return TypeBool
	}
	// Arithmetic. A value of unknown type counts as a number.
	num := func(t Type) Type {
		if t == TypeAny {
			return TypeNumber
		}
		return t
	}
	a, b := num(tx), num(ty)
	switch {
	case a == TypeNumber && b == TypeNumber:
		return TypeNumber
	case n.Op == "+" && (a == TypeTimestamp && b == TypeDuration || a == TypeDuration && b == TypeTimestamp):
		return TypeTimestamp
	case n.Op == "-" && a == TypeTimestamp && b == TypeDuration:
		return TypeTimestamp
	case n.Op == "-" && a == TypeTimestamp && b == TypeTimestamp:
		return TypeDuration
	case (n.Op == "+" || n.Op == "-") && a == TypeDuration && b == TypeDuration:
		return TypeDuration
	}
	hint := ""
	if tx == TypeAny || ty == TypeAny {
		hint = "convert the value first: timestamp(trait(...)) or number(...)"
	}
	c.fail(n.P, CodeType, hint, "cannot apply %s to %s and %s", n.Op, article(tx), article(ty))
	return TypeAny
}

// function signatures: argument count bounds (max -1: any).
var functions = map[string]struct{ min, max int }{
	"trait": {1, 1}, "computed": {1, 1}, "has_id": {1, 1}, "id_count": {1, 1}, "in_segment": {1, 1},
	"prop": {1, 1}, "lower": {1, 1}, "upper": {1, 1}, "if": {3, 3}, "coalesce": {1, -1},
	"now": {0, 0}, "days_since": {1, 1}, "timestamp": {1, 1}, "number": {1, 1},
}

func (c *checker) stringArg(n *Call) string {
	lit, ok := n.Args[0].(*Lit)
	if !ok || lit.Val.Type != TypeString {
		c.fail(n.Args[0].Pos(), CodeType, fmt.Sprintf(`write %s("name")`, n.Name), "%s takes a string literal", n.Name)
	}
	if lit.Val.Str == "" {
		c.fail(n.Args[0].Pos(), CodeType, "", "%s needs a non-empty name", n.Name)
	}
	return lit.Val.Str
}

func (c *checker) call(n *Call, s scope) Type {
	sig, ok := functions[n.Name]
	if !ok {
		hint := "functions: " + strings.Join(sortedKeys(functions), ", ")
		if reducers[n.Name] != 0 || filters[n.Name] {
			hint = fmt.Sprintf(`%s is a method of an event chain: events("Name").%s(...)`, n.Name, n.Name)
		}
		c.fail(n.P, CodeUnknownFunction, hint, "unknown function %s", n.Name)
	}
	if len(n.Args) < sig.min || sig.max >= 0 && len(n.Args) > sig.max {
		want := fmt.Sprint(sig.min)
		if sig.max < 0 {
			want = fmt.Sprintf("at least %d", sig.min)
		} else if sig.max != sig.min {
			want = fmt.Sprintf("%d to %d", sig.min, sig.max)
		}
		c.fail(n.P, CodeArity, "", "%s takes %s argument(s), got %d", n.Name, want, len(n.Args))
	}
	switch n.Name {
	case "trait":
		c.primary(n.P)
		n.path = c.path(n.Args[0].Pos(), c.stringArg(n))
		n.flat = strings.Join(n.path, ".")
		c.dep("traits", n.flat)
		return TypeAny
	case "prop":
		if !s.inWhere {
			c.fail(n.P, CodePropOutsideWhere, `prop() reads an event's property: use it in events("Name").where(...) or a reducer such as .sum(prop("x"))`, "prop outside .where(...)")
		}
		n.path = c.path(n.Args[0].Pos(), c.stringArg(n))
		return TypeAny
	case "has_id", "id_count":
		c.primary(n.P)
		c.dep("ids", c.stringArg(n))
		if n.Name == "has_id" {
			return TypeBool
		}
		return TypeNumber
	case "in_segment", "computed":
		c.primary(n.P)
		key := c.stringArg(n)
		r := Ref{Kind: KindSegment, Key: key}
		cat := "segments"
		if n.Name == "computed" {
			r.Kind, cat = KindComputed, "computed"
		}
		if r == (Ref{c.opt.Kind, c.opt.Key}) {
			c.fail(n.P, CodeCycle, "", "%s %q refers to itself", r.Kind, key)
		}
		var def Definition
		found := false
		if c.opt.Env != nil {
			def, found = c.opt.Env.Lookup(r)
		}
		if !found {
			c.fail(n.Args[0].Pos(), CodeUnknownReference, "create it first", "no %s named %q", r.Kind, key)
		}
		c.dep(cat, key)
		if !slices.Contains(c.refs, r) {
			c.refs = append(c.refs, r)
			c.refPos = append(c.refPos, n.P)
		}
		if r.Kind == KindSegment {
			return TypeBool
		}
		n.typ = def.Type
		return def.Type
	case "lower", "upper":
		c.want(n.Args[0], c.check(n.Args[0], s), TypeString, TypeAny)
		return TypeString
	case "number":
		c.want(n.Args[0], c.check(n.Args[0], s), TypeString, TypeNumber, TypeAny)
		return TypeNumber
	case "timestamp":
		c.want(n.Args[0], c.check(n.Args[0], s), TypeString, TypeTimestamp, TypeAny)
		return TypeTimestamp
	case "days_since":
		c.time = true
		c.want(n.Args[0], c.check(n.Args[0], s), TypeTimestamp)
		return TypeNumber
	case "now":
		c.time = true
		return TypeTimestamp
	case "if":
		c.want(n.Args[0], c.check(n.Args[0], s), TypeBool)
		return c.unify(n, n.Args[1:], s)
	}
	return c.unify(n, n.Args, s) // coalesce
}

// unify types the branches of if / coalesce: one type, or any when a
// branch is known only at runtime.
func (c *checker) unify(n *Call, args []Node, s scope) Type {
	out := Type(-1)
	for _, a := range args {
		t := c.check(a, s)
		if t == typeEvents || t == TypeList {
			c.fail(a.Pos(), CodeType, "", "%s cannot return %s", n.Name, article(t))
		}
		switch {
		case out == -1:
			out = t
		case t == TypeAny || out == TypeAny:
			out = TypeAny
		case t != out:
			c.fail(a.Pos(), CodeType, "every branch must have one type", "%s mixes %s and %s", n.Name, article(out), article(t))
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// path splits a trait or property path on its unescaped dots: "a\.b" is
// the one key "a.b", "a\\b" the key `a\b`.
func (c *checker) path(pos Pos, s string) []string {
	parts, ok := splitPath(s)
	if !ok {
		c.fail(pos, CodeBadPath, `write "address.city"; escape a dot inside a name as \.`, "path %q has an empty part", s)
	}
	return parts
}

func splitPath(s string) ([]string, bool) {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && (s[i+1] == '.' || s[i+1] == '\\'):
			cur.WriteByte(s[i+1])
			i++
		case s[i] == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		if p == "" {
			return nil, false
		}
	}
	return parts, true
}

// checkRefs refuses reference cycles and chains longer than the limit,
// following the saved definitions this one references.
func (c *checker) checkRefs() {
	var pos Pos // the reference being followed
	self := Ref{c.opt.Kind, c.opt.Key}
	memo := map[Ref]int{}
	onPath := map[Ref]bool{}
	var depth func(r Ref, via []string) int
	depth = func(r Ref, via []string) int {
		if r == self {
			c.fail(pos, CodeCycle, "remove one of the references", "reference cycle: %s", strings.Join(append(via, r.Key), " -> "))
		}
		if d, ok := memo[r]; ok {
			return d
		}
		if onPath[r] {
			c.fail(pos, CodeCycle, "", "saved definitions already form a cycle through %q", r.Key)
		}
		def, ok := c.opt.Env.Lookup(r)
		if !ok {
			return 1
		}
		onPath[r] = true
		d := 0
		for _, next := range def.Refs {
			d = max(d, depth(next, append(via, r.Key)))
		}
		onPath[r] = false
		memo[r] = d + 1
		return d + 1
	}
	for i, r := range c.refs {
		pos = c.refPos[i]
		if d := depth(r, []string{c.opt.Key}); d > c.opt.Limits.MaxRefChain {
			c.fail(pos, CodeLimit, "", "the reference chain through %q is %d long, more than the limit of %d", r.Key, d, c.opt.Limits.MaxRefChain)
		}
	}
}
