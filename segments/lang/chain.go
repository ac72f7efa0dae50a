package lang

import (
	"fmt"
	"time"
)

// filters are the chain steps that narrow the events; they apply left to
// right, as a pipeline.
var filters = map[string]bool{
	"where": true, "within": true, "between": true, "since": true, "latest": true,
	"after_parent": true, "before_parent": true,
}

// reducers end a chain; the value is the result type.
var reducers = map[string]Type{
	"count": TypeNumber, "exists": TypeBool, "first_at": TypeTimestamp, "last_at": TypeTimestamp,
	"sum": TypeNumber, "avg": TypeNumber, "min": TypeNumber, "max": TypeNumber,
	"first": TypeAny, "last": TypeAny, "mode": TypeAny, "distinct": TypeList, "distinct_count": TypeNumber,
}

// propReducers take prop("name").
var propReducers = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "first": true, "last": true,
	"mode": true, "distinct": true, "distinct_count": true,
}

func (c *checker) chain(n *Chain, s scope) Type {
	c.primary(n.P)
	c.time = true // events count from their timestamp on, so a future-dated one enters later
	depth := s.chainDepth + 1
	if depth > c.opt.Limits.MaxDepth {
		c.fail(n.P, CodeLimit, "", "event chains are nested more than %d deep", c.opt.Limits.MaxDepth)
	}
	n.nested = depth > 1
	if len(n.Args) != 1 {
		c.fail(n.P, CodeArity, `write events("Order Completed")`, "events takes 1 argument (the event name), got %d", len(n.Args))
	}
	lit, ok := n.Args[0].(*Lit)
	if !ok || lit.Val.Type != TypeString || lit.Val.Str == "" {
		c.fail(n.Args[0].Pos(), CodeType, `write events("Order Completed")`, "events takes the event name as a non-empty string literal")
	}
	n.name = lit.Val.Str
	c.dep("events", n.name)
	inner := scope{chainDepth: depth, inWhere: true}
	for i, st := range n.Steps {
		last := i == len(n.Steps)-1
		if rt, ok := reducers[st.Name]; ok {
			if !last {
				c.fail(n.Steps[i+1].P, CodeSyntax, "the reducer ends the chain", "nothing can follow .%s()", st.Name)
			}
			c.reducer(st, inner)
			n.order = evalOrder(n.Steps)
			if s.chainDepth == 0 {
				c.aggs = append(c.aggs, Aggregate{Key: aggregateKey(n), Pos: n.P, Events: c.chainEvents(n)})
				if !readsResults(n) {
					n.shared = c.aggs[len(c.aggs)-1].Key
				}
			}
			return rt
		}
		if !filters[st.Name] {
			c.fail(st.P, CodeUnknownFunction, "methods: where, within, between, since, latest, after_parent, before_parent, then a reducer: count, exists, sum, avg, min, max, first, last, distinct, distinct_count, mode, first_at, last_at", "unknown method .%s", st.Name)
		}
		c.filter(n, st, inner)
	}
	return typeEvents
}

// readsResults reports whether a chain reads other definitions' results
// (in_segment, computed), which change while a Session evaluates the
// definitions in order.
func readsResults(n *Chain) bool {
	found := false
	walk(n, func(x Node) bool {
		if c, ok := x.(*Call); ok && (c.Name == "in_segment" || c.Name == "computed") {
			found = true
		}
		return !found
	})
	return found
}

// chainEvents lists the event names a chain reads, nested chains' included.
func (c *checker) chainEvents(n *Chain) []string {
	seen := map[string]bool{}
	var out []string
	walk(n, func(x Node) bool {
		if ch, ok := x.(*Chain); ok && !seen[ch.name] {
			seen[ch.name] = true
			out = append(out, ch.name)
		}
		return true
	})
	return out
}

func (c *checker) arity(st *Step, min, max int) {
	if len(st.Args) < min || len(st.Args) > max {
		want := fmt.Sprint(min)
		if min != max {
			want = fmt.Sprintf("%d or %d", min, max)
		}
		c.fail(st.P, CodeArity, "", ".%s takes %s argument(s), got %d", st.Name, want, len(st.Args))
	}
}

// window reads a duration literal bounded by the retention; zero is
// allowed only where it means "now" (between's near end).
func (c *checker) window(st *Step, a Node, zeroOK bool) time.Duration {
	v, ok := constant(a)
	if !ok || v.Type != TypeDuration {
		c.fail(a.Pos(), CodeBadWindow, fmt.Sprintf("write .%s(7d); units d, h, m, s", st.Name), ".%s takes a duration literal", st.Name)
	}
	switch {
	case v.Dur < 0 || v.Dur == 0 && !zeroOK:
		c.fail(a.Pos(), CodeBadWindow, "a window is a positive duration", "window %s is not positive", v)
	case v.Dur > c.opt.Limits.MaxWindow:
		c.fail(a.Pos(), CodeBadWindow, "events are kept for "+formatDuration(c.opt.Limits.MaxWindow), "window %s is longer than event retention (%s)", v, formatDuration(c.opt.Limits.MaxWindow))
	}
	return v.Dur
}

func (c *checker) filter(n *Chain, st *Step, s scope) {
	switch st.Name {
	case "where":
		c.arity(st, 1, 1)
		c.want(st.Args[0], c.check(st.Args[0], s), TypeBool)
	case "within":
		c.arity(st, 1, 1)
		st.dur = c.window(st, st.Args[0], false)
	case "between":
		c.arity(st, 2, 2)
		st.dur = c.window(st, st.Args[0], true)
		st.dur2 = c.window(st, st.Args[1], false)
		if st.dur >= st.dur2 {
			c.fail(st.Args[0].Pos(), CodeBadRange, "write .between(near, far): .between(7d, 14d) is 7 to 14 days ago", "the range %s to %s is empty or reversed", formatDuration(st.dur), formatDuration(st.dur2))
		}
	case "since":
		c.arity(st, 1, 1)
		v, ok := st.Args[0].(*Lit)
		if !ok || v.Val.Type != TypeTimestamp {
			c.fail(st.Args[0].Pos(), CodeBadTimestamp, "write .since(@2026-01-01)", ".since takes a timestamp literal")
		}
		st.since = v.Val.Time
	case "latest":
		c.arity(st, 1, 1)
		v, ok := constant(st.Args[0])
		if !ok || v.Type != TypeNumber || v.Num != float64(int(v.Num)) || v.Num < 1 || v.Num > float64(c.opt.Limits.MaxLatest) {
			c.fail(st.Args[0].Pos(), CodeBadRange, "", ".latest takes a whole number from 1 to %d", c.opt.Limits.MaxLatest)
		}
		st.n = int(v.Num)
	case "after_parent", "before_parent":
		if !n.nested {
			c.fail(st.P, CodeParentOutsideNested, "use it on a chain inside another chain's .where(...)", ".%s outside a nested event chain", st.Name)
		}
		c.arity(st, 0, 1)
		if len(st.Args) == 1 {
			st.dur = c.window(st, st.Args[0], false)
			st.hasDur = true
		}
	}
}

func (c *checker) reducer(st *Step, s scope) {
	if !propReducers[st.Name] {
		c.arity(st, 0, 0)
		return
	}
	c.arity(st, 1, 1)
	p, ok := st.Args[0].(*Call)
	if !ok || p.Name != "prop" {
		c.fail(st.Args[0].Pos(), CodeType, fmt.Sprintf(`write .%s(prop("name"))`, st.Name), ".%s takes prop(\"name\")", st.Name)
	}
	c.check(p, s)
	st.prop = p
}

// evalOrder is the order the evaluator applies the steps in. Filters other
// than latest test one event at a time, so within a run of them the order
// does not change the result: time windows (binary searches) go first, so
// that .where(...) tests only the events still in the window.
func evalOrder(steps []*Step) []*Step {
	out := make([]*Step, 0, len(steps))
	var run, wheres []*Step
	flush := func() {
		out = append(append(out, run...), wheres...)
		run, wheres = run[:0], wheres[:0]
	}
	for _, st := range steps {
		switch {
		case st.Name == "where":
			wheres = append(wheres, st)
		case filters[st.Name] && st.Name != "latest":
			run = append(run, st)
		default:
			flush()
			out = append(out, st)
		}
	}
	return out
}
