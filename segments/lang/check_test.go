package lang

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// testEnv holds saved definitions: segments vip and churned, computed
// traits ltv (number) and tier (string).
var testEnv = MapEnv{
	{KindSegment, "vip"}:      {Type: TypeBool},
	{KindSegment, "churned"}:  {Type: TypeBool, Refs: []Ref{{KindSegment, "vip"}}},
	{KindComputed, "ltv"}:     {Type: TypeNumber},
	{KindComputed, "tier"}:    {Type: TypeString},
	{KindSegment, "uses_new"}: {Type: TypeBool, Refs: []Ref{{KindSegment, "new"}}},
}

func compileErr(t *testing.T, src string, o Options) *Error {
	t.Helper()
	_, err := Compile(src, o)
	if err == nil {
		t.Fatalf("%s: compiled, want an error", src)
	}
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("%s: error %v is not a *lang.Error", src, err)
	}
	return le
}

// Every bad input of issue 13 gets its code and position.
func TestBadInput(t *testing.T) {
	seg, comp := KindSegment, KindComputed
	cases := []struct {
		name      string
		src       string
		kind      Kind
		code      Code
		line, col int
	}{
		{"empty", ``, seg, CodeSyntax, 1, 1},
		{"truncated call", `trait("a"`, seg, CodeSyntax, 1, 10},
		{"truncated chain", `events("x").where(`, seg, CodeSyntax, 1, 19},
		{"truncated operator", `trait("a") =`, seg, CodeSyntax, 1, 13},
		{"unbalanced open", "(has_id(\"email\")\n and true", seg, CodeSyntax, 2, 10},
		{"unbalanced close", `has_id("email"))`, seg, CodeSyntax, 1, 16},
		{"unbalanced bracket", `trait("a") in [1, 2`, seg, CodeSyntax, 1, 20},
		{"unterminated string", `trait("a) = 1`, seg, CodeSyntax, 1, 7},
		{"single quotes", `trait('a') = 1`, seg, CodeSyntax, 1, 7},
		{"symbolic and", `true && false`, seg, CodeSyntax, 1, 6},
		{"chained comparison", `1 < 2 < 3`, seg, CodeSyntax, 1, 7},
		{"bad duration unit", `events("x").within(7y).exists()`, seg, CodeSyntax, 1, 20},
		{"fractional duration", `events("x").within(1.5d).exists()`, seg, CodeSyntax, 1, 20},
		{"method on trait", `trait("a").lower() = "x"`, seg, CodeSyntax, 1, 11},
		{"after reducer", `events("x").count().exists()`, seg, CodeSyntax, 1, 21},
		{"missing as value", `trait("a") = missing`, seg, CodeSyntax, 1, 14},
		{"invalid utf8", "trait(\"\xff\") = 1", seg, CodeSyntax, 1, 1},
		{"unknown function", `lenght(trait("a")) > 1`, seg, CodeUnknownFunction, 1, 1},
		{"reducer as function", `count() > 1`, seg, CodeUnknownFunction, 1, 1},
		{"unknown method", "events(\"x\")\n  .witin(7d).exists()", seg, CodeUnknownFunction, 2, 4},
		{"arity trait", `trait("a", "b") = 1`, seg, CodeArity, 1, 1},
		{"arity if", `if(true, 1) = 1`, seg, CodeArity, 1, 1},
		{"arity events", `events().exists()`, seg, CodeArity, 1, 1},
		{"arity reducer", `events("x").count(prop("a")) > 1`, seg, CodeArity, 1, 13},
		{"arity between", `events("x").between(7d).exists()`, seg, CodeArity, 1, 13},
		{"prop outside where", `prop("revenue") > 50`, seg, CodePropOutsideWhere, 1, 1},
		{"prop in window arg", `events("x").within(7d).exists() and prop("a") = 1`, seg, CodePropOutsideWhere, 1, 37},
		{"parent top level", `parent.prop("sku") = "a"`, seg, CodeParentOutsideNested, 1, 1},
		{"parent in outer where", `events("x").where(parent.prop("sku") = "a").exists()`, seg, CodeParentOutsideNested, 1, 19},
		{"after_parent top level", `events("x").after_parent(1d).exists()`, seg, CodeParentOutsideNested, 1, 13},
		{"segment not boolean", `events("x").count()`, seg, CodeType, 1, 1},
		{"segment unknown type", `trait("vip")`, seg, CodeType, 1, 1},
		{"chain without reducer", `events("x").within(7d)`, seg, CodeType, 1, 1},
		{"chain in comparison", `events("x") = 1`, seg, CodeType, 1, 1},
		{"computed list", `events("x").distinct(prop("sku"))`, comp, CodeType, 1, 1},
		{"computed duration", `now() - @2026-01-01`, comp, CodeType, 1, 7},
		{"number vs string", `events("x").count() = "3"`, seg, CodeType, 1, 21},
		{"bool ordered", `true < false`, seg, CodeType, 1, 6},
		{"and of number", `1 and true`, seg, CodeType, 1, 1},
		{"if branches", `if(true, 1, "a") = 1`, seg, CodeType, 1, 13},
		{"in scalar", `trait("a") in 5`, seg, CodeType, 1, 15},
		{"in never equal", `events("x").count() in [1, "2"]`, seg, CodeType, 1, 28},
		{"reducer arg", `events("x").sum(5) > 1`, seg, CodeType, 1, 17},
		{"events name", `events(trait("a")).exists()`, seg, CodeType, 1, 8},
		{"days_since string", `days_since(trait("signup")) > 3`, seg, CodeType, 1, 12},
		{"timestamp plus number", `now() + 1 > now()`, seg, CodeType, 1, 7},
		{"zero window", `events("x").within(0d).exists()`, seg, CodeBadWindow, 1, 20},
		{"negative window", `events("x").within(-7d).exists()`, seg, CodeBadWindow, 1, 20},
		{"huge window", `events("x").within(400d).exists()`, seg, CodeBadWindow, 1, 20},
		{"overflowing duration", `events("x").within(99999999999999d).exists()`, seg, CodeBadWindow, 1, 20},
		{"window not a duration", `events("x").within(7).exists()`, seg, CodeBadWindow, 1, 20},
		{"reversed between", `events("x").between(14d, 7d).exists()`, seg, CodeBadRange, 1, 21},
		{"empty between", `events("x").between(7d, 7d).exists()`, seg, CodeBadRange, 1, 21},
		{"reversed value range", `trait("age") between 65 and 18`, seg, CodeBadRange, 1, 22},
		{"latest zero", `events("x").latest(0).exists()`, seg, CodeBadRange, 1, 20},
		{"latest fraction", `events("x").latest(1.5).exists()`, seg, CodeBadRange, 1, 20},
		{"bad date", `events("x").since(@2026-02-30).exists()`, seg, CodeBadTimestamp, 1, 19},
		{"bad month", `now() > @2026-13-01`, seg, CodeBadTimestamp, 1, 9},
		{"bad instant", `now() > @2026-01-01T25:00:00Z`, seg, CodeBadTimestamp, 1, 9},
		{"since not timestamp", `events("x").since("2026-01-01").exists()`, seg, CodeBadTimestamp, 1, 19},
		{"invalid regex", `trait("email") matches "a(b"`, seg, CodeBadRegex, 1, 24},
		{"backreference", `trait("email") matches "(a)\\1"`, seg, CodeBadRegex, 1, 24},
		{"oversized regex", `trait("email") matches "` + strings.Repeat("a", 1025) + `"`, seg, CodeBadRegex, 1, 24},
		{"regex not literal", `trait("email") matches trait("p")`, seg, CodeBadRegex, 1, 24},
		{"empty path part", `trait("address..city") = 1`, seg, CodeBadPath, 1, 7},
		{"trailing dot", `trait("address.") = 1`, seg, CodeBadPath, 1, 7},
		{"unknown segment", `in_segment("nope")`, seg, CodeUnknownReference, 1, 12},
		{"unknown computed", `computed("nope") > 1`, seg, CodeUnknownReference, 1, 10},
		{"self reference", `in_segment("me")`, seg, CodeCycle, 1, 1},
		{"cycle", `in_segment("uses_new")`, seg, CodeCycle, 1, 1},
		{"nesting too deep", `events("a").where(events("b").where(events("c").where(events("d").exists()).exists()).exists()).exists()`, seg, CodeLimit, 1, 55},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "me"
			if c.name == "cycle" {
				key = "new"
			}
			e := compileErr(t, c.src, Options{Kind: c.kind, Key: key, Env: testEnv})
			if e.Code != c.code || e.Line != c.line || e.Column != c.col {
				t.Errorf("%s:\n got %s\nwant %d:%d %s", c.src, e, c.line, c.col, c.code)
			}
			if e.Msg == "" {
				t.Errorf("no message")
			}
			if graph.ErrorKind(e) != graph.KindInvalid || !strings.Contains(graph.ErrorMessage(e), string(c.code)) {
				t.Errorf("as graph error: %s %q", graph.ErrorKind(e), graph.ErrorMessage(e))
			}
		})
	}
}

// Each limit passes exactly at its value and fails one past it.
func TestLimitBoundaries(t *testing.T) {
	joined := func(n int, term, sep string) string {
		return strings.TrimSuffix(strings.Repeat(term+sep, n), sep)
	}
	// nodes: not (1 < 1 + ... + 1) with k ones on the right is 2k+2 nodes.
	sum := func(k int) string { return "1 < " + joined(k, "1", " + ") }
	nested := func(depth int) string {
		src := `events("e").exists()`
		for range depth - 1 {
			src = `events("e").where(` + src + `).exists()`
		}
		return src
	}
	// A chain of n segments: s1 references s2 ... sn.
	chainEnv := func(n int) MapEnv {
		env := MapEnv{}
		for i := 1; i <= n; i++ {
			var refs []Ref
			if i < n {
				refs = []Ref{{KindSegment, fmt.Sprintf("s%d", i+1)}}
			}
			env[Ref{KindSegment, fmt.Sprintf("s%d", i)}] = Definition{Type: TypeBool, Refs: refs}
		}
		return env
	}
	pad := func(src string, size int) string { return src + strings.Repeat(" ", size-len(src)) }
	cases := []struct {
		name     string
		ok, over string
		env      Env
		overEnv  Env
	}{
		{"primaries", joined(50, `has_id("email")`, " and "), joined(51, `has_id("email")`, " and "), nil, nil},
		{"nodes", "not (" + sum(249) + ")", sum(250), nil, nil},
		{"nesting depth", nested(3), nested(4), nil, nil},
		{"reference chain", `in_segment("s1")`, `in_segment("s1")`, chainEnv(10), chainEnv(11)},
		{"source size", pad("true", 16<<10), pad("true", 16<<10+1), nil, nil},
		{"window", `events("e").within(365d).exists()`, `events("e").within(525601m).exists()`, nil, nil},
		{"between window", `events("e").between(1d, 365d).exists()`, `events("e").between(1d, 8761h).exists()`, nil, nil},
		{"after_parent window", `events("e").where(events("f").after_parent(365d).exists()).exists()`, `events("e").where(events("f").after_parent(8761h).exists()).exists()`, nil, nil},
		{"regex size", `trait("a") matches "` + strings.Repeat("a", 1024) + `"`, `trait("a") matches "` + strings.Repeat("a", 1025) + `"`, nil, nil},
		{"latest", `events("e").latest(10000).exists()`, `events("e").latest(10001).exists()`, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.overEnv == nil {
				c.overEnv = c.env
			}
			if _, err := Compile(c.ok, Options{Kind: KindSegment, Key: "me", Env: c.env}); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			e := compileErr(t, c.over, Options{Kind: KindSegment, Key: "me", Env: c.overEnv})
			if e.Code != CodeLimit && e.Code != CodeBadWindow && e.Code != CodeBadRegex && e.Code != CodeBadRange {
				t.Fatalf("one past the limit: %v", e)
			}
		})
	}
	// Configured limits replace the defaults.
	lim := Limits{MaxPrimaries: 2, MaxWindow: 7 * 24 * time.Hour}
	if _, err := Compile(`has_id("a") and has_id("b")`, Options{Limits: lim}); err != nil {
		t.Fatal(err)
	}
	if e := compileErr(t, `has_id("a") and has_id("b") and has_id("c")`, Options{Limits: lim}); e.Code != CodeLimit || e.Column != 33 {
		t.Fatalf("configured primaries: %v", e)
	}
	if e := compileErr(t, `events("e").within(8d).exists()`, Options{Limits: lim}); e.Code != CodeBadWindow {
		t.Fatalf("configured retention: %v", e)
	}
}

// Non-Latin names and escaped dots are accepted and read the right data.
func TestNamesAndPaths(t *testing.T) {
	cases := []struct {
		src  string
		path []string
		flat string
	}{
		{`trait("address.city") = "x"`, []string{"address", "city"}, "address.city"},
		{`trait("адрес.город") = "x"`, []string{"адрес", "город"}, "адрес.город"},
		{`trait("住所") = "x"`, []string{"住所"}, "住所"},
		{`trait("a\.b") = "x"`, []string{"a.b"}, "a.b"},
		{`trait("a\\.b") = "x"`, []string{"a.b"}, "a.b"},
		{`trait("a\\\\b") = "x"`, []string{`a\b`}, `a\b`},
		{`trait("v1\.2.notes") = "x"`, []string{"v1.2", "notes"}, "v1.2.notes"},
	}
	for _, c := range cases {
		p, err := Compile(c.src, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		call := p.Root.(*Binary).X.(*Call)
		if !slices.Equal(call.path, c.path) || call.flat != c.flat {
			t.Errorf("%s: path %q flat %q, want %q %q", c.src, call.path, call.flat, c.path, c.flat)
		}
	}
	// Event names and property paths in any script; the column counts characters.
	p, err := Compile(`events("Заказ оформлен").where(prop("商品.价格") > 5).exists()`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Deps.Events[0] != "Заказ оформлен" {
		t.Fatalf("deps %v", p.Deps)
	}
	if e := compileErr(t, `events("Заказ").zzz()`, Options{}); e.Column != 17 {
		t.Fatalf("column after Cyrillic: %v", e)
	}
}

func TestDepsAndAggregates(t *testing.T) {
	src := `events("Order Completed").within(30d).sum(prop("revenue")) > computed("ltv")
	  and (in_segment("vip") or has_id("email") or id_count("device_id") > 2)
	  and trait("address.city") = "Paris"
	  and events("Product Added").where(not events("Order Completed").after_parent(1d).exists()).exists()
	  and events("Order Completed").within(30d).sum(prop("revenue")) < 1000`
	p, err := Compile(src, Options{Kind: KindSegment, Key: "big", Env: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := Deps{
		Events: []string{"Order Completed", "Product Added"}, Traits: []string{"address.city"},
		IDTypes: []string{"device_id", "email"}, Computed: []string{"ltv"}, Segments: []string{"vip"}, Time: true,
	}
	if fmt.Sprint(p.Deps) != fmt.Sprint(want) {
		t.Errorf("deps %+v\nwant %+v", p.Deps, want)
	}
	var keys []string
	for _, a := range p.Aggregates {
		keys = append(keys, a.Key)
	}
	wantKeys := []string{
		`events("Order Completed").within(30d).sum(prop("revenue"))`,
		`events("Product Added").where(not events("Order Completed").after_parent(1d).exists()).exists()`,
		`events("Order Completed").within(30d).sum(prop("revenue"))`,
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("aggregate keys\n%q\nwant\n%q", keys, wantKeys)
	}
	if !slices.Equal(p.Aggregates[1].Events, []string{"Product Added", "Order Completed"}) {
		t.Errorf("nested aggregate events %v", p.Aggregates[1].Events)
	}
	// Equal aggregates written differently share one key.
	q, err := Compile("events( \"Order Completed\" )\n.within(720h)\n.sum(prop(\"revenue\")) > 1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Aggregates[0].Key != wantKeys[0] {
		t.Errorf("canonical key %q", q.Aggregates[0].Key)
	}
	// Filters that commute share a key; latest does not commute.
	keyOf := func(src string) string {
		t.Helper()
		p, err := Compile(src, Options{Kind: KindComputed})
		if err != nil {
			t.Fatal(err)
		}
		return p.Aggregates[0].Key
	}
	a := keyOf(`events("x").where(prop("a") = 1).within(7d).where(events("y").where(prop("b") = 2).since(@2026-01-01).exists()).exists()`)
	b := keyOf(`events("x").within(7d).where(prop("a") = 1).where(events("y").since(@2026-01-01).where(prop("b") = 2).exists()).exists()`)
	if a != b || a != `events("x").within(7d).where(prop("a") = 1).where(events("y").since(@2026-01-01).where(prop("b") = 2).exists()).exists()` {
		t.Errorf("commuting filters: %q and %q", a, b)
	}
	if keyOf(`events("x").where(prop("a") = 1).latest(3).count()`) == keyOf(`events("x").latest(3).where(prop("a") = 1).count()`) {
		t.Error("latest reordered")
	}
	if !slices.Equal(p.Refs, []Ref{{KindComputed, "ltv"}, {KindSegment, "vip"}}) {
		t.Errorf("refs %v", p.Refs)
	}
	// Trait-only definitions do not depend on time.
	r, err := Compile(`trait("plan") = "pro"`, Options{})
	if err != nil || r.Deps.Time {
		t.Errorf("trait-only: %v %+v", err, r)
	}
}

// A computed trait takes its referenced definition's type.
func TestComputedTypes(t *testing.T) {
	for src, want := range map[string]Type{
		`computed("ltv") * 2`:                    TypeNumber,
		`coalesce(computed("tier"), "none")`:     TypeString,
		`events("x").last_at()`:                  TypeTimestamp,
		`events("x").mode(prop("sku"))`:          TypeAny,
		`if(has_id("email"), 1, trait("score"))`: TypeAny,
		`days_since(events("x").last_at())`:      TypeNumber,
		`events("x").exists()`:                   TypeBool,
	} {
		p, err := Compile(src, Options{Kind: KindComputed, Env: testEnv})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if p.Type != want {
			t.Errorf("%s: type %s, want %s", src, p.Type, want)
		}
	}
	if e := compileErr(t, `computed("tier") > 3`, Options{Env: testEnv}); e.Code != CodeType {
		t.Errorf("string computed vs number: %v", e)
	}
}

// Saved programs describe themselves to the Env: a later edit that would
// close a loop is refused.
func TestCycleThroughSavedPrograms(t *testing.T) {
	env := MapEnv{}
	save := func(kind Kind, key, src string) error {
		p, err := Compile(src, Options{Kind: kind, Key: key, Env: env})
		if err == nil {
			env[Ref{kind, key}] = p.Definition()
		}
		return err
	}
	if err := save(KindSegment, "a", `has_id("email")`); err != nil {
		t.Fatal(err)
	}
	if err := save(KindComputed, "score", `if(in_segment("a"), 1, 0)`); err != nil {
		t.Fatal(err)
	}
	if err := save(KindSegment, "b", `computed("score") > 0`); err != nil {
		t.Fatal(err)
	}
	err := save(KindSegment, "a", `in_segment("b") or has_id("email")`)
	var le *Error
	if !errors.As(err, &le) || le.Code != CodeCycle || le.Column != 1 || !strings.Contains(le.Msg, "a -> b -> score -> a") {
		t.Fatalf("edit closing a loop: %v", err)
	}
}
