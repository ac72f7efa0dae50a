package lang

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// dump writes a tree without positions, to compare two parses.
func dump(n Node) string {
	var b strings.Builder
	var rec func(Node)
	list := func(ns []Node) {
		for _, x := range ns {
			b.WriteByte(' ')
			rec(x)
		}
	}
	rec = func(n Node) {
		switch n := n.(type) {
		case *Lit:
			fmt.Fprintf(&b, "(lit %d %s)", n.Val.Type, n.Val)
		case *ListLit:
			b.WriteString("(list")
			list(n.Elems)
			b.WriteString(")")
		case *Unary:
			b.WriteString("(" + n.Op + " ")
			rec(n.X)
			b.WriteString(")")
		case *Binary:
			b.WriteString("(" + n.Op + " ")
			rec(n.X)
			b.WriteByte(' ')
			rec(n.Y)
			b.WriteString(")")
		case *Between:
			b.WriteString("(between")
			list([]Node{n.X, n.Lo, n.Hi})
			b.WriteString(")")
		case *IsMissing:
			fmt.Fprintf(&b, "(missing %v ", n.Not)
			rec(n.X)
			b.WriteString(")")
		case *Call:
			b.WriteString("(call " + n.Name)
			list(n.Args)
			b.WriteString(")")
		case *ParentProp:
			fmt.Fprintf(&b, "(parent %q)", n.Path)
		case *Chain:
			b.WriteString("(events")
			list(n.Args)
			for _, s := range n.Steps {
				b.WriteString(" ." + s.Name)
				list(s.Args)
			}
			b.WriteString(")")
		default:
			fmt.Fprintf(&b, "(? %T)", n)
		}
	}
	rec(n)
	return b.String()
}

var parseSeeds = []string{
	`trait("address.city") = "Paris" and not has_id("email")`,
	`events("Order Completed").where(prop("revenue") >= 50).within(30d).count() >= 3`,
	`events("Product Added").where(not events("Order Completed").after_parent(1d).where(prop("sku") = parent.prop("sku")).exists()).exists()`,
	`trait("a\.b") in [1, "x", true, @2026-01-01, 7d] or trait("x") between -1 and 2e3`,
	`coalesce(trait("a"), computed("ltv")) * (2 + -3) % 4 / 5 - now() is not missing`,
	`if(in_segment("vip"), lower(trait("n")), upper("X")) matches "^a.*$"`,
	`events("x").between(7d, 14d).since(@2026-01-01T10:00:00Z).latest(5).mode(prop("p"))`,
	"# comment\n(((1)))\t<= 2 # end",
	`"a\"b\\c\n" contains "\t" and days_since(events("x").last_at()) > 90`,
	`trait("x") not in [] or - - 1 = 1`,
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		n, err := Parse(src, Limits{})
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || le.Line < 1 || le.Column < 1 || le.Code == "" || le.Msg == "" {
				t.Fatalf("%q: bad error %#v", src, err)
			}
			return
		}
		out := Format(n)
		// Canonical text may be longer than the input (spaces around
		// operators), so the reparse allows any size.
		n2, err := Parse(out, Limits{MaxSourceBytes: 1 << 30})
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", src, out, err)
		}
		if dump(n) != dump(n2) {
			t.Fatalf("%q printed as %q: trees differ\n%s\n%s", src, out, dump(n), dump(n2))
		}
		if Format(n2) != out {
			t.Fatalf("printing is not stable: %q then %q", out, Format(n2))
		}
	})
}

func FuzzCheck(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, src string, kind uint8) {
		k := Kind(kind % 2)
		p, err := Compile(src, Options{Kind: k, Key: "me", Env: testEnv})
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || le.Line < 1 || le.Column < 1 || le.Line > strings.Count(src, "\n")+1 || le.Code == "" {
				t.Fatalf("%q: bad error %#v", src, err)
			}
			return
		}
		if k == KindSegment && p.Type != TypeBool {
			t.Fatalf("%q: segment of type %s", src, p.Type)
		}
		// The canonical text compiles to the same program.
		q, err := Compile(Format(p.Root), Options{Kind: k, Key: "me", Env: testEnv, Limits: Limits{MaxSourceBytes: 1 << 30}})
		if err != nil {
			t.Fatalf("%q: canonical %q fails: %v", src, Format(p.Root), err)
		}
		if q.Type != p.Type || fmt.Sprint(q.Deps) != fmt.Sprint(p.Deps) || len(q.Aggregates) != len(p.Aggregates) {
			t.Fatalf("%q: canonical form differs: %v %v", src, q.Deps, p.Deps)
		}
	})
}

// gen builds a definition and a profile from fuzz bytes.
type gen struct {
	b []byte
	i int
}

func (g *gen) pick(n int) int {
	if g.i >= len(g.b) {
		return 0
	}
	g.i++
	return int(g.b[g.i-1]) % n
}

func (g *gen) of(options ...string) string { return options[g.pick(len(options))] }

// boolean writes a boolean expression; where is the chain depth whose
// .where(...) we are in (0: none).
func (g *gen) boolean(depth, where int) string {
	if depth > 3 {
		return g.of("true", `has_id("email")`, `in_segment("vip")`)
	}
	switch g.pick(12) {
	case 0:
		return g.boolean(depth+1, where) + g.of(" and ", " or ") + g.boolean(depth+1, where)
	case 1:
		return "not (" + g.boolean(depth+1, where) + ")"
	case 2:
		return g.number(depth+1, where) + g.of(" = ", " != ", " < ", " <= ", " > ", " >= ") + g.number(depth+1, where)
	case 3:
		return g.chain(depth+1, where) + ".exists()"
	case 4:
		return g.value(where) + g.of(" is missing", " is not missing")
	case 5:
		return g.value(where) + g.of(" in [1, \"a\", true]", ` not in ["b", 2]`, ` contains "a"`, ` matches "^[ab]"`, ` starts_with "a"`)
	case 6:
		return g.number(depth+1, where) + " between " + g.of("0", "-1") + " and " + g.of("3", "10")
	case 7:
		return g.chain(depth+1, where) + ".last_at() " + g.of(">", "<") + " now() - " + g.dur()
	case 8:
		return g.of(`"a"`, `"c"`) + ` in ` + g.chain(depth+1, where) + `.distinct(prop("sku"))`
	case 9:
		return g.value(where) + " = " + g.value(where)
	case 10:
		return `if(` + g.boolean(depth+1, where) + `, ` + g.boolean(depth+1, where) + `, ` + g.boolean(depth+1, where) + `)`
	}
	return g.of(`has_id("email")`, `in_segment("vip")`, `true`, `false`)
}

func (g *gen) value(where int) string {
	opts := []string{`trait("score")`, `trait("name")`, `computed("ltv")`, `trait("nothing")`}
	if where > 0 {
		opts = append(opts, `prop("v")`, `prop("sku")`, `prop("n.k")`)
	}
	if where > 1 {
		opts = append(opts, `parent.prop("sku")`, `parent.prop("v")`)
	}
	return g.of(opts...)
}

func (g *gen) number(depth, where int) string {
	if depth > 3 {
		return g.of("1", "0", "2.5")
	}
	switch g.pick(8) {
	case 0:
		return g.number(depth+1, where) + g.of(" + ", " - ", " * ", " / ", " % ") + g.number(depth+1, where)
	case 1:
		return g.chain(depth+1, where) + g.of(".count()", `.sum(prop("v"))`, `.avg(prop("v"))`, `.min(prop("v"))`, `.max(prop("v"))`, `.distinct_count(prop("sku"))`)
	case 2:
		switch g.pick(3) {
		case 0:
			return "days_since(" + g.of("now() - 3d", "@2026-02-27T18:00:00Z", "@2026-03-01T18:00:00Z", "@2026-02-28 - (now() - @2026-03-01)") + ")"
		}
		return "days_since(" + g.chain(depth+1, where) + g.of(".first_at()", ".last_at()") + ")"
	case 3:
		return g.value(where)
	case 4:
		return g.chain(depth+1, where) + g.of(`.first(prop("v"))`, `.last(prop("v"))`, `.mode(prop("v"))`)
	case 5:
		return `number(` + g.value(where) + `)`
	case 6:
		return `id_count("email")`
	}
	return g.of("1", "0", "-2", "3.5", "1e3")
}

func (g *gen) dur() string { return g.of("1h", "12h", "1d", "3d", "7d", "30m") }

func (g *gen) chain(depth, where int) string {
	var b strings.Builder
	b.WriteString(g.of(`events("A")`, `events("B")`))
	for range g.pick(4) {
		switch g.pick(7) {
		case 0:
			b.WriteString(".within(" + g.dur() + ")")
		case 1:
			b.WriteString(".between(" + g.of("0d", "1h", "1d") + ", " + g.of("2d", "7d") + ")")
		case 2:
			b.WriteString(".since(" + g.of("@2026-02-20", "@2026-02-28T06:00:00Z") + ")")
		case 3:
			b.WriteString(".latest(" + g.of("1", "3") + ")")
		case 4:
			if where < 2 {
				b.WriteString(".where(" + g.boolean(depth+1, where+1) + ")")
			}
		case 5, 6:
			if where > 0 {
				b.WriteString(g.of(".after_parent(", ".before_parent(") + g.of("", "1d", "2h") + ")")
			}
		}
	}
	return b.String()
}

func (g *gen) profile(now time.Time) *Snapshot {
	s := &Snapshot{
		Traits:   map[string]any{},
		IDCounts: map[string]int{"email": g.pick(3)},
		Segments: map[string]bool{"vip": g.pick(2) == 1},
		Computed: map[string]any{},
	}
	vals := []any{nil, json.Number("3"), "4.5", "x", true, 2.0, map[string]any{"k": json.Number("1")}, []any{"a"}, "a", json.Number("-1e2")}
	if v := vals[g.pick(len(vals))]; v != nil {
		s.Traits["score"] = v
	}
	s.Traits["name"] = vals[g.pick(len(vals))]
	if g.pick(2) == 0 {
		s.Computed["ltv"] = vals[g.pick(len(vals))]
	}
	for i := range g.pick(25) {
		props := map[string]any{"v": vals[g.pick(len(vals))], "sku": g.of("a", "b", "c")}
		if g.pick(3) == 0 {
			props["n"] = map[string]any{"k": vals[g.pick(len(vals))]}
		}
		offset := time.Duration(g.pick(24*20)-24*15) * time.Hour // mostly past, some future
		s.Events = append(s.Events, Event{Name: g.of("A", "B"), Timestamp: now.Add(offset), MessageID: fmt.Sprint("m", g.pick(8), i), Properties: props})
	}
	return s
}

func FuzzEvaluate(f *testing.F) {
	for i := range 20 {
		f.Add([]byte(fmt.Sprintf("%d seeded bytes %d %x", i, i*7919, i*104729)), uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		g := &gen{b: data}
		k := Kind(kind % 2)
		var src string
		if k == KindSegment {
			src = g.boolean(0, 0)
		} else {
			src = g.number(0, 0)
		}
		p, err := Compile(src, Options{Kind: k, Env: testEnv})
		if err != nil {
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("%s: %v", src, err)
			}
			return // e.g. a nesting limit: the generator is not exact
		}
		snap := g.profile(now0)
		v, tr := Evaluate(p, snap.View(), now0)
		r := Eval(p, snap.View(), now0)
		if v.String() != r.Value.String() || !tr.Deadline.Equal(r.Deadline) || tr.Skipped != r.Skipped {
			t.Fatalf("%s: Evaluate %v %v, Eval %v %v", src, v, tr.Deadline, r.Value, r.Deadline)
		}
		if k == KindSegment && v.Type != TypeBool {
			t.Fatalf("%s: segment value %v", src, v)
		}
		// Nothing changes before the deadline; with none, nothing ever does.
		later := now0.Add(400 * 24 * time.Hour)
		if !tr.Deadline.IsZero() {
			if !tr.Deadline.After(now0) {
				t.Fatalf("%s: deadline %v not after now", src, tr.Deadline)
			}
			later = now0.Add(tr.Deadline.Sub(now0) - 1)
		}
		if w := Eval(p, snap.View(), later); w.Value.String() != v.String() {
			t.Fatalf("%s: %v at now, %v at %v (deadline %v)", src, v, w.Value, later, tr.Deadline)
		}
	})
}
