package lang

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// EventRef names an event in a trace.
type EventRef struct {
	Name      string    `json:"name"`
	MessageID string    `json:"messageId"`
	Timestamp time.Time `json:"timestamp"`
}

// maxTraceEvents bounds the events a trace node lists; EventCount says how
// many there were.
const maxTraceEvents = 20

// Trace is the evaluated expression tree: why a value is what it is.
type Trace struct {
	Text  string `json:"text"` // canonical (Format)
	Pos   Pos    `json:"pos"`  // a binary operator's own position
	Value Value  `json:"value"`
	// Events are the events that decided an event chain's value (the
	// first maxTraceEvents), EventCount how many there were.
	Events     []EventRef `json:"events,omitempty"`
	EventCount int        `json:"eventCount,omitempty"`
	// Deadline is the earliest instant at which this node's value can
	// change with time alone (no new data); zero when it cannot.
	Deadline time.Time `json:"deadline,omitzero"`
	// Skipped counts property values a reducer skipped: present but not
	// numeric in sum/avg/min/max, or not a single value elsewhere. On the
	// root it is the total for the whole evaluation.
	Skipped  int      `json:"skipped,omitempty"`
	Children []*Trace `json:"children,omitempty"`
}

// Result is an evaluation without its trace: what the incremental engine
// keeps.
type Result struct {
	Value    Value
	Deadline time.Time // zero: the value cannot change with time alone
	Skipped  int       // values skipped by reducers (a metric)
}

// Evaluate computes prog's value for a profile at now, with the evaluated
// tree. It never panics on any data.
func Evaluate(prog *Program, v ProfileView, now time.Time) (Value, *Trace) {
	e := &evaluator{view: v, now: now.UTC(), trace: true, cache: map[string][]*Event{}}
	val, dl, tr := e.eval(prog.Root, nil)
	val = e.final(prog, val)
	tr.Value, tr.Deadline, tr.Skipped = val, dl, e.skipped
	return val, tr
}

// Eval is Evaluate without building the tree.
func Eval(prog *Program, v ProfileView, now time.Time) Result {
	return NewSession(v, now).Eval(prog)
}

// Session evaluates several programs over one view at one instant (Eval
// without the tree), sharing their common work: each event name's events
// are put in order once, and a top-level event chain that several
// programs hold (equal Aggregate keys) and that reads no other
// definition's result is evaluated once. The view's memberships and
// computed values may change between programs (the engine evaluates
// dependencies first); its events and traits may not.
type Session struct {
	view   ProfileView
	now    time.Time
	events map[string][]*Event
	chains map[string]chainResult
}

type chainResult struct {
	v       Value
	dl      time.Time
	skipped int
}

// NewSession starts a session over a view at now.
func NewSession(v ProfileView, now time.Time) *Session {
	return &Session{view: v, now: now.UTC(), events: map[string][]*Event{}, chains: map[string]chainResult{}}
}

// Eval evaluates one program.
func (s *Session) Eval(prog *Program) Result {
	e := &evaluator{view: s.view, now: s.now, cache: s.events, chains: s.chains}
	val, dl, _ := e.eval(prog.Root, nil)
	return Result{Value: e.final(prog, val), Deadline: dl, Skipped: e.skipped}
}

// final applies the definition's kind: a segment is a member only when its
// condition is true (missing counts as false); a computed trait is a
// single value or missing.
func (e *evaluator) final(prog *Program, v Value) Value {
	v.slope = 0
	if prog.Kind == KindSegment {
		return boolVal(v.truthy())
	}
	if !v.isScalar() || v.Type == TypeDuration {
		return Value{}
	}
	return v
}

type evaluator struct {
	view  ProfileView
	now   time.Time
	trace bool
	cache map[string][]*Event
	// chains holds the results of shared chains (Chain.shared), when
	// not tracing (a trace lists each chain's events).
	chains  map[string]chainResult
	skipped int
}

// frame is the event a .where(...) is testing, and the one its enclosing
// chain's .where(...) is testing (parent).
type frame struct {
	ev, parent *Event
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// events returns a name's events in event order, read once per evaluation.
func (e *evaluator) events(name string) []*Event {
	if evs, ok := e.cache[name]; ok {
		return evs
	}
	raw := e.view.Events(name)
	evs := make([]*Event, len(raw))
	for i := range raw {
		evs[i] = &raw[i]
	}
	if !slices.IsSortedFunc(evs, eventOrder) {
		slices.SortFunc(evs, eventOrder)
	}
	e.cache[name] = evs
	return evs
}

// eval returns n's value, the next deadline, and (at the top level, when
// tracing) its trace node.
func (e *evaluator) eval(n Node, f *frame) (Value, time.Time, *Trace) {
	var kids []*Trace
	tracing := e.trace && f == nil
	sub := func(x Node) (Value, time.Time) {
		v, dl, t := e.eval(x, f)
		if tracing {
			kids = append(kids, t)
		}
		return v, dl
	}
	var v Value
	var dl time.Time
	var evs []*Event
	skippedBefore := e.skipped
	switch n := n.(type) {
	case *Lit:
		v = n.Val
	case *ListLit:
		l := make([]Value, 0, len(n.Elems))
		for _, x := range n.Elems {
			xv, xdl := sub(x)
			dl = earliest(dl, xdl)
			xv.slope = 0
			l = append(l, xv)
		}
		v = Value{Type: TypeList, List: l}
	case *Unary:
		xv, xdl := sub(n.X)
		dl = xdl
		v = unary(n.Op, xv)
	case *Binary:
		v, dl = e.binary(n, f, sub)
	case *Between:
		xv, d1 := sub(n.X)
		lo, d2 := sub(n.Lo)
		hi, d3 := sub(n.Hi)
		ge, d4 := compareOp(">=", xv, lo, e.now)
		le, d5 := compareOp("<=", xv, hi, e.now)
		v = boolVal(ge && le)
		for _, d := range []time.Time{d1, d2, d3, d4, d5} {
			dl = earliest(dl, d)
		}
	case *IsMissing:
		xv, xdl := sub(n.X)
		v, dl = boolVal(xv.Missing() != n.Not), xdl
	case *ParentProp:
		if f != nil && f.parent != nil {
			v = e.prop(f.parent.Properties, n.path)
		}
	case *Call:
		v, dl = e.call(n, f, sub)
	case *Chain:
		if r, ok := e.chains[n.shared]; ok && n.shared != "" && f == nil {
			v, dl = r.v, r.dl
			e.skipped += r.skipped
			break
		}
		v, dl, evs = e.chain(n, f)
		if e.chains != nil && n.shared != "" && f == nil {
			e.chains[n.shared] = chainResult{v, dl, e.skipped - skippedBefore}
		}
	}
	if !tracing {
		return v, dl, nil
	}
	t := &Trace{Text: Format(n), Pos: n.Pos(), Value: v, Deadline: dl, Children: kids, Skipped: e.skipped - skippedBefore}
	if _, ok := n.(*Chain); ok {
		t.EventCount = len(evs)
		for _, ev := range evs[:min(len(evs), maxTraceEvents)] {
			t.Events = append(t.Events, EventRef{Name: ev.Name, MessageID: ev.MessageID, Timestamp: ev.Timestamp})
		}
	} else {
		t.Skipped = 0 // a chain's own count; the root gets the total
	}
	return v, dl, t
}

func unary(op string, x Value) Value {
	switch {
	case op == "not":
		return boolVal(!x.truthy())
	case x.Type == TypeNumber:
		return numVal(-x.Num)
	case x.Type == TypeDuration:
		return Value{Type: TypeDuration, Dur: -x.Dur, slope: -x.slope}
	}
	return Value{}
}

func (e *evaluator) binary(n *Binary, f *frame, sub func(Node) (Value, time.Time)) (Value, time.Time) {
	if n.Op == "and" || n.Op == "or" {
		// The value changes only when the operand that decided it does.
		decide := n.Op == "or"
		x, dx := sub(n.X)
		if x.truthy() == decide && !(e.trace && f == nil) {
			return boolVal(decide), dx
		}
		if x.truthy() == decide {
			// Shown in the explanation, but not evaluated as far as the
			// skipped-values count goes, so that Eval and Evaluate agree.
			e.shadow(func() { sub(n.Y) })
			return boolVal(decide), dx
		}
		y, dy := sub(n.Y)
		return boolVal(y.truthy()), earliest(dx, dy)
	}
	x, dx := sub(n.X)
	y, dy := sub(n.Y)
	dl := earliest(dx, dy)
	switch n.Op {
	case "=", "!=", "<", "<=", ">", ">=":
		b, d := compareOp(n.Op, x, y, e.now)
		return boolVal(b), earliest(dl, d)
	case "in", "not in":
		in := false
		if y.Type == TypeList && x.isScalar() {
			for _, el := range y.List {
				if x.Equal(el) {
					in = true
					break
				}
			}
		}
		return boolVal(in == (n.Op == "in")), dl
	case "contains", "starts_with", "ends_with":
		if x.Type != TypeString || y.Type != TypeString {
			return boolVal(false), dl
		}
		switch n.Op {
		case "contains":
			return boolVal(strings.Contains(x.Str, y.Str)), dl
		case "starts_with":
			return boolVal(strings.HasPrefix(x.Str, y.Str)), dl
		}
		return boolVal(strings.HasSuffix(x.Str, y.Str)), dl
	case "matches":
		return boolVal(x.Type == TypeString && n.re != nil && n.re.MatchString(x.Str)), dl
	}
	return arith(n.Op, x, y), dl
}

// compareOp applies a comparison. A missing operand, or operands of
// different types, make every comparison false (and != true). When the
// operands move with the clock it also returns when the result flips.
func compareOp(op string, x, y Value, now time.Time) (bool, time.Time) {
	if op == "!=" {
		b, dl := compareOp("=", x, y, now)
		return !b, dl
	}
	if !x.sameType(y) || !x.isScalar() {
		return false, time.Time{}
	}
	c := compare(x, y)
	var b bool
	switch op {
	case "=":
		b = c == 0
	case "<":
		b = c < 0
	case "<=":
		b = c <= 0
	case ">":
		b = c > 0
	case ">=":
		b = c >= 0
	}
	return b, crossing(x, y, now)
}

// crossing returns when x - y, moving with the clock, next reaches zero,
// the only instants at which a comparison of the two can change.
func crossing(x, y Value, now time.Time) time.Time {
	rel := x.slope - y.slope
	if rel == 0 {
		return time.Time{}
	}
	var diff time.Duration
	switch x.Type {
	case TypeTimestamp:
		diff = x.Time.Sub(y.Time)
	case TypeDuration:
		diff = x.Dur - y.Dur
	default:
		return time.Time{}
	}
	// diff(t) = diff + rel*(t-now) is zero at now - diff/rel.
	if diff == 0 {
		return now.Add(time.Nanosecond)
	}
	if (diff > 0) == (rel > 0) {
		return time.Time{} // moving apart
	}
	step := -diff / time.Duration(rel)
	if step <= 0 {
		step = time.Nanosecond
	}
	return now.Add(step)
}

func arith(op string, x, y Value) Value {
	switch {
	case x.Type == TypeNumber && y.Type == TypeNumber:
		var r float64
		switch op {
		case "+":
			r = x.Num + y.Num
		case "-":
			r = x.Num - y.Num
		case "*":
			r = x.Num * y.Num
		case "/":
			if y.Num == 0 {
				return Value{}
			}
			r = x.Num / y.Num
		case "%":
			if y.Num == 0 {
				return Value{}
			}
			r = math.Mod(x.Num, y.Num)
		}
		if v, ok := numberOK(r); ok {
			return v
		}
	case x.Type == TypeTimestamp && y.Type == TypeDuration && (op == "+" || op == "-"):
		d := y.Dur
		if op == "-" {
			d = -d
		}
		return Value{Type: TypeTimestamp, Time: x.Time.Add(d), slope: x.slope + sign(op)*y.slope}
	case x.Type == TypeDuration && y.Type == TypeTimestamp && op == "+":
		return Value{Type: TypeTimestamp, Time: y.Time.Add(x.Dur), slope: x.slope + y.slope}
	case x.Type == TypeTimestamp && y.Type == TypeTimestamp && op == "-":
		return Value{Type: TypeDuration, Dur: x.Time.Sub(y.Time), slope: x.slope - y.slope}
	case x.Type == TypeDuration && y.Type == TypeDuration && (op == "+" || op == "-"):
		d := y.Dur
		if op == "-" {
			d = -d
		}
		return Value{Type: TypeDuration, Dur: x.Dur + d, slope: x.slope + sign(op)*y.slope}
	}
	return Value{}
}

func sign(op string) int {
	if op == "-" {
		return -1
	}
	return 1
}

func (e *evaluator) call(n *Call, f *frame, sub func(Node) (Value, time.Time)) (Value, time.Time) {
	switch n.Name {
	case "trait":
		x, ok := e.view.Trait(n.flat)
		if !ok {
			return Value{}, time.Time{}
		}
		v, _ := FromAny(x)
		return v, time.Time{}
	case "computed":
		x, ok := e.view.Computed(n.Args[0].(*Lit).Val.Str)
		if !ok {
			return Value{}, time.Time{}
		}
		v, _ := FromAny(x)
		return v, time.Time{}
	case "has_id":
		return boolVal(e.view.IDCount(n.Args[0].(*Lit).Val.Str) > 0), time.Time{}
	case "id_count":
		return numVal(float64(e.view.IDCount(n.Args[0].(*Lit).Val.Str))), time.Time{}
	case "in_segment":
		return boolVal(e.view.InSegment(n.Args[0].(*Lit).Val.Str)), time.Time{}
	case "prop":
		if f == nil || f.ev == nil {
			return Value{}, time.Time{}
		}
		return e.prop(f.ev.Properties, n.path), time.Time{}
	case "now":
		return Value{Type: TypeTimestamp, Time: e.now, slope: 1}, time.Time{}
	case "if":
		c, dc := sub(n.Args[0])
		if e.trace && f == nil {
			// Evaluate both branches so the explanation shows them.
			var a, b Value
			var da, db time.Time
			if c.truthy() {
				a, da = sub(n.Args[1])
				e.shadow(func() { b, db = sub(n.Args[2]) })
				return a, earliest(dc, da)
			}
			e.shadow(func() { a, da = sub(n.Args[1]) })
			b, db = sub(n.Args[2])
			return b, earliest(dc, db)
		}
		pick := n.Args[2]
		if c.truthy() {
			pick = n.Args[1]
		}
		v, dv := sub(pick)
		return v, earliest(dc, dv)
	case "coalesce":
		var dl time.Time
		for _, a := range n.Args {
			v, dv := sub(a)
			dl = earliest(dl, dv)
			if !v.Missing() {
				return v, dl
			}
		}
		return Value{}, dl
	}
	x, dl := sub(n.Args[0])
	switch n.Name {
	case "lower", "upper":
		if x.Type != TypeString {
			return Value{}, dl
		}
		if n.Name == "lower" {
			return strVal(strings.ToLower(x.Str)), dl
		}
		return strVal(strings.ToUpper(x.Str)), dl
	case "number":
		switch {
		case x.Type == TypeNumber:
			x.slope = 0
			return x, dl
		case x.Type == TypeString && isNumericString(x.Str):
			v, _ := FromAny(json.Number(x.Str))
			return v, dl
		}
		return Value{}, dl
	case "timestamp":
		switch x.Type {
		case TypeTimestamp:
			return x, dl
		case TypeString:
			if t, ok := parseTimestamp(x.Str); ok {
				return timeVal(t), dl
			}
		}
		return Value{}, dl
	case "days_since":
		if x.Type != TypeTimestamp {
			return Value{}, dl
		}
		// now - t moves at rate 1 - slope (0 for days_since(now() - 3d)).
		// Whole days, rounded down, in integers: a float loses nanoseconds.
		cur := e.now.Sub(x.Time)
		k := cur / day
		if cur%day != 0 && cur < 0 {
			k--
		}
		rate := time.Duration(1 - x.slope)
		var next time.Time
		switch {
		case rate > 0:
			next = e.now.Add(((k+1)*day - cur + rate - 1) / rate)
		case rate < 0 && cur == k*day:
			next = e.now.Add(time.Nanosecond)
		case rate < 0:
			next = e.now.Add((cur - k*day) / -rate)
		}
		return numVal(float64(k)), earliest(dl, next)
	}
	return Value{}, dl
}

const day = 24 * time.Hour

// shadow evaluates a branch only for the explanation: its skipped values
// do not count.
func (e *evaluator) shadow(fn func()) {
	saved := e.skipped
	fn()
	e.skipped = saved
}

// prop reads a property path from an event's properties.
func (e *evaluator) prop(props map[string]any, path []string) Value {
	var cur any = props
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return Value{}
		}
		if cur, ok = m[p]; !ok {
			return Value{}
		}
	}
	v, ok := FromAny(cur)
	if !ok {
		e.skipped++
		return Value{}
	}
	return v
}

// propRaw reads a property path without converting it.
func propRaw(props map[string]any, path []string) (any, bool) {
	var cur any = props
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// chain evaluates an event chain: the name's events up to now, narrowed
// by each filter in turn, then reduced. It returns the value, the next
// deadline, and the events that decided the value.
func (e *evaluator) chain(n *Chain, f *frame) (Value, time.Time, []*Event) {
	all := e.events(n.name)
	// An event counts from its timestamp on: a future-dated one is not
	// there yet, and enters when its time comes.
	k := sort.Search(len(all), func(i int) bool { return all[i].Timestamp.After(e.now) })
	cur := all[:k]
	var dl time.Time
	if k < len(all) {
		dl = all[k].Timestamp
	}
	var parent *Event
	if f != nil {
		parent = f.ev
	}
	// after returns the index of the first event later than t.
	after := func(t time.Time) int {
		return sort.Search(len(cur), func(i int) bool { return cur[i].Timestamp.After(t) })
	}
	from := func(t time.Time) int {
		return sort.Search(len(cur), func(i int) bool { return !cur[i].Timestamp.Before(t) })
	}
	for _, st := range n.order {
		switch st.Name {
		case "where":
			kept := make([]*Event, 0, len(cur))
			fr := &frame{parent: parent} // one per step: nothing keeps it
			for _, ev := range cur {
				fr.ev = ev
				v, d, _ := e.eval(st.Args[0], fr)
				dl = earliest(dl, d)
				if v.truthy() {
					kept = append(kept, ev)
				}
			}
			cur = kept
		case "within":
			// now - d < t <= now; an event leaves at t + d.
			cur = cur[after(e.now.Add(-st.dur)):]
			if len(cur) > 0 {
				dl = earliest(dl, cur[0].Timestamp.Add(st.dur))
			}
		case "between":
			// now - far < t <= now - near; an event enters at t + near
			// and leaves at t + far.
			i, j := after(e.now.Add(-st.dur2)), after(e.now.Add(-st.dur))
			if j < len(cur) {
				dl = earliest(dl, cur[j].Timestamp.Add(st.dur))
			}
			cur = cur[i:j]
			if len(cur) > 0 {
				dl = earliest(dl, cur[0].Timestamp.Add(st.dur2))
			}
		case "since":
			cur = cur[from(st.since):]
		case "latest":
			cur = cur[max(0, len(cur)-st.n):]
		case "after_parent":
			if parent == nil {
				cur = nil
				break
			}
			// parent < t <= parent + d
			end := len(cur)
			if st.hasDur {
				end = after(parent.Timestamp.Add(st.dur))
			}
			cur = cur[min(after(parent.Timestamp), end):end]
		case "before_parent":
			if parent == nil {
				cur = nil
				break
			}
			// parent - d <= t < parent
			start := 0
			if st.hasDur {
				start = from(parent.Timestamp.Add(-st.dur))
			}
			end := from(parent.Timestamp)
			cur = cur[min(start, end):end]
		default:
			v, decided := e.reduce(st, cur)
			return v, dl, decided
		}
	}
	return Value{}, dl, cur
}
