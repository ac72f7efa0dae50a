package lang

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

var now0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ev(name string, ago time.Duration, id string, props map[string]any) Event {
	return Event{Name: name, Timestamp: now0.Add(-ago), MessageID: id, Properties: props}
}

func num(s string) json.Number { return json.Number(s) }

const (
	d = 24 * time.Hour
	h = time.Hour
)

// profile is the data most semantics cases read.
func profile() *Snapshot {
	return &Snapshot{
		Traits: map[string]any{
			"age": "40", "score": 7.0, "name": "Ann Lee", "email": "Ann@Corp.io",
			"address.city": "Paris", "a.b": "dotted", "nothing": nil, "tags": []any{"x", "y"},
			"signup": "2026-02-20T00:00:00Z",
		},
		IDCounts: map[string]int{"email": 1, "device_id": 3},
		Segments: map[string]bool{"vip": true},
		Computed: map[string]any{"ltv": 120.0, "tier": "gold"},
		Events: []Event{
			ev("Order", 1*h, "o3", map[string]any{"revenue": num("10"), "sku": "b"}),
			ev("Order", 2*d, "o2", map[string]any{"revenue": "5.5", "sku": "a"}),
			ev("Order", 10*d, "o1", map[string]any{"revenue": "abc", "sku": "b"}),
			ev("Order", 20*d, "o0", map[string]any{"revenue": true, "sku": "a"}),
			ev("Order", 30*d, "o-", map[string]any{"sku": "c", "nested": map[string]any{"k": num("1")}}),
		},
	}
}

type semCase struct {
	rule     string
	src      string
	kind     Kind
	snap     func() *Snapshot
	want     string        // Value.String()
	deadline time.Duration // from now0; 0: none
	skipped  int
}

func runSem(t *testing.T, cases []semCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			p, err := Compile(c.src, Options{Kind: c.kind, Env: testEnv})
			if err != nil {
				t.Fatalf("%s: %v", c.src, err)
			}
			snap := profile
			if c.snap != nil {
				snap = c.snap
			}
			v, tr := Evaluate(p, snap().View(), now0)
			if v.String() != c.want {
				t.Errorf("%s = %s, want %s", c.src, v, c.want)
			}
			var want time.Time
			if c.deadline != 0 {
				want = now0.Add(c.deadline)
			}
			if !tr.Deadline.Equal(want) {
				t.Errorf("%s: deadline %v, want %v", c.src, tr.Deadline, want)
			}
			if tr.Skipped != c.skipped {
				t.Errorf("%s: skipped %d, want %d", c.src, tr.Skipped, c.skipped)
			}
			// Eval agrees with Evaluate.
			r := Eval(p, snap().View(), now0)
			if r.Value.String() != v.String() || !r.Deadline.Equal(tr.Deadline) || r.Skipped != tr.Skipped {
				t.Errorf("%s: Eval %v %v %d, Evaluate %v %v %d", c.src, r.Value, r.Deadline, r.Skipped, v, tr.Deadline, tr.Skipped)
			}
		})
	}
}

func TestSemanticsValues(t *testing.T) {
	C := KindComputed
	runSem(t, []semCase{
		// Missing values: comparisons on a missing operand are false; != is not =.
		{rule: "missing =", src: `trait("height") = 3`, want: "false"},
		{rule: "missing !=", src: `trait("height") != 3`, want: "true"},
		{rule: "missing <", src: `trait("height") < 3`, want: "false"},
		{rule: "missing >=", src: `trait("height") >= 3`, want: "false"},
		{rule: "missing between", src: `trait("height") between 1 and 5`, want: "false"},
		{rule: "missing in", src: `trait("height") in [1, 2]`, want: "false"},
		{rule: "missing not in", src: `trait("height") not in [1, 2]`, want: "true"},
		{rule: "null is missing", src: `trait("nothing") is missing`, want: "true"},
		{rule: "is not missing", src: `trait("score") is not missing`, want: "true"},
		{rule: "missing arithmetic", src: `trait("height") + 1 is missing`, want: "true"},
		{rule: "missing string op", src: `trait("height") contains ""`, want: "false"},
		{rule: "missing in boolean context", src: `not (trait("height") = 1 or in_segment("churned"))`, want: "true"},
		// No implicit coercion.
		{rule: "string vs number", src: `trait("age") > 30`, want: "false"},
		{rule: "string = number", src: `trait("age") = 40`, want: "false"},
		{rule: "string != number", src: `trait("age") != 40`, want: "true"},
		{rule: "explicit number", src: `number(trait("age")) > 30`, want: "true"},
		{rule: "number of non-numeric", src: `number(trait("name")) is missing`, want: "true"},
		{rule: "timestamp of string", src: `timestamp(trait("signup")) < now()`, want: "true"},
		{rule: "string vs timestamp", src: `trait("signup") < now()`, want: "false"},
		// Comparisons and operators.
		{rule: "between inclusive", src: `trait("score") between 7 and 7`, want: "true"},
		{rule: "in list", src: `trait("address.city") in ["Paris", "Lyon"]`, want: "true"},
		{rule: "in trait list", src: `"y" in trait("tags")`, want: "true"},
		{rule: "contains case-sensitive", src: `trait("email") contains "corp"`, want: "false"},
		{rule: "lower", src: `lower(trait("email")) ends_with "@corp.io"`, want: "true"},
		{rule: "upper", src: `upper(trait("name")) starts_with "ANN"`, want: "true"},
		{rule: "matches RE2", src: `trait("email") matches "^[A-Z][a-z]+@"`, want: "true"},
		{rule: "matches partial", src: `trait("email") matches "Corp"`, want: "true"},
		{rule: "arithmetic", src: `trait("score") * 2 + 1 - 3 / 3 % 2`, kind: C, want: "14"},
		{rule: "division by zero", src: `trait("score") / 0`, kind: C, want: "missing"},
		{rule: "modulo by zero", src: `trait("score") % 0`, kind: C, want: "missing"},
		{rule: "timestamp arithmetic", src: `@2026-01-01 + 36h`, kind: C, want: "@2026-01-02T12:00:00Z"},
		{rule: "duration compare", src: `now() - @2026-02-28 > 1d`, want: "true"}, // moving apart: never flips
		{rule: "if", src: `if(has_id("phone"), "sms", "mail")`, kind: C, want: `"mail"`},
		{rule: "coalesce", src: `coalesce(trait("height"), trait("nothing"), computed("tier"))`, kind: C, want: `"gold"`},
		{rule: "coalesce all missing", src: `coalesce(trait("height"))`, kind: C, want: "missing"},
		{rule: "escaped dot", src: `trait("a\.b") = "dotted"`, want: "true"},
		{rule: "nested trait", src: `trait("address.city") = "Paris"`, want: "true"},
		// Profile data.
		{rule: "has_id", src: `has_id("email") and not has_id("phone")`, want: "true"},
		{rule: "id_count", src: `id_count("device_id")`, kind: C, want: "3"},
		{rule: "in_segment", src: `in_segment("vip") and not in_segment("churned")`, want: "true"},
		{rule: "computed", src: `computed("ltv") >= 120`, want: "true"},
		// Definition kinds: a missing condition is not membership; a computed list is missing.
		{rule: "segment of missing boolean", src: `if(trait("height") = 1, true, trait("nothing") = 1)`, want: "false"},
		{rule: "computed list is missing", src: `coalesce(trait("tags"))`, kind: C, want: "missing"},
	})
}

func TestSemanticsEvents(t *testing.T) {
	C := KindComputed
	runSem(t, []semCase{
		// Numeric reducers: numbers and numeric strings count; other
		// present values are skipped and counted; absent ones ignored.
		{rule: "sum", src: `events("Order").sum(prop("revenue"))`, kind: C, want: "15.5", skipped: 2},
		{rule: "avg", src: `events("Order").avg(prop("revenue"))`, kind: C, want: "7.75", skipped: 2},
		{rule: "min", src: `events("Order").min(prop("revenue"))`, kind: C, want: "5.5", skipped: 2},
		{rule: "max", src: `events("Order").max(prop("revenue"))`, kind: C, want: "10", skipped: 2},
		{rule: "sum of none is 0", src: `events("Nothing").sum(prop("revenue"))`, kind: C, want: "0"},
		{rule: "avg of none is missing", src: `events("Nothing").avg(prop("revenue")) is missing`, want: "true"},
		{rule: "count", src: `events("Order").count()`, kind: C, want: "5"},
		{rule: "exists", src: `events("Nothing").exists()`, want: "false"},
		// Tie rules: mode is the most frequent value, ties to the smallest
		// (booleans < numbers < strings); first/last by timestamp, then messageId.
		{rule: "mode tie", src: `events("Order").mode(prop("sku"))`, kind: C, want: `"a"`},
		{rule: "mode clear", src: `events("Order").within(15d).mode(prop("sku"))`, kind: C, want: `"b"`, deadline: 5 * d},
		{rule: "mode across types", src: `events("M").mode(prop("v"))`, kind: C, snap: mixed, want: "false"},
		{rule: "first", src: `events("Order").first(prop("sku"))`, kind: C, want: `"c"`},
		{rule: "last", src: `events("Order").last(prop("sku"))`, kind: C, want: `"b"`},
		{rule: "first tie by messageId", src: `events("T").first(prop("v"))`, kind: C, snap: ties, want: `"from m1"`},
		{rule: "last tie by messageId", src: `events("T").last(prop("v"))`, kind: C, snap: ties, want: `"from m2"`},
		{rule: "first skips absent", src: `events("Order").where(prop("revenue") is not missing).first(prop("revenue"))`, kind: C, want: "true"},
		{rule: "first_at", src: `events("Order").first_at()`, kind: C, want: "@2026-01-30T12:00:00Z"},
		{rule: "last_at", src: `events("Order").last_at()`, kind: C, want: "@2026-03-01T11:00:00Z"},
		{rule: "distinct not in", src: `"z" not in events("Order").distinct(prop("sku"))`, want: "true"},
		{rule: "distinct in", src: `"c" in events("Order").distinct(prop("sku"))`, want: "true"},
		{rule: "distinct_count", src: `events("Order").distinct_count(prop("sku"))`, kind: C, want: "3"},
		{rule: "distinct skips objects", src: `events("Order").distinct_count(prop("nested"))`, kind: C, want: "0", skipped: 1},
		{rule: "nested property", src: `events("Order").where(prop("nested.k") = 1).count()`, kind: C, want: "1"},
		// Pipeline: filters apply left to right.
		{rule: "where then latest", src: `events("Order").where(prop("sku") = "b").latest(1).first_at()`, kind: C, want: "@2026-03-01T11:00:00Z"},
		{rule: "latest then where", src: `events("Order").latest(1).where(prop("sku") = "a").count()`, kind: C, want: "0"},
	})
}

func mixed() *Snapshot {
	return &Snapshot{Events: []Event{
		ev("M", h, "1", map[string]any{"v": "x"}), ev("M", h, "2", map[string]any{"v": num("3")}),
		ev("M", h, "3", map[string]any{"v": false}), ev("M", h, "4", map[string]any{"v": "x"}),
		ev("M", h, "5", map[string]any{"v": num("3")}), ev("M", h, "6", map[string]any{"v": false}),
	}}
}

func ties() *Snapshot {
	return &Snapshot{Events: []Event{
		ev("T", h, "m2", map[string]any{"v": "from m2"}), ev("T", h, "m1", map[string]any{"v": "from m1"}),
	}}
}

func snap(evs ...Event) func() *Snapshot {
	return func() *Snapshot { return &Snapshot{Events: evs} }
}

func at(name, id string, t time.Time, props map[string]any) Event {
	return Event{Name: name, Timestamp: t, MessageID: id, Properties: props}
}

// Windows are half-open on the event timestamp, and every time-dependent
// value reports the next instant it can change.
func TestSemanticsWindows(t *testing.T) {
	C := KindComputed
	s := time.Second
	runSem(t, []semCase{
		{rule: "within: now-d < t <= now", src: `events("W").within(7d).count()`, kind: C,
			snap: snap(ev("W", 7*d, "edge", nil), ev("W", 7*d-s, "in", nil), ev("W", 0, "now", nil)),
			want: "2", deadline: s},
		{rule: "future events count from their timestamp", src: `events("W").count()`, kind: C,
			snap: snap(ev("W", -h, "future", nil), ev("W", 2*d, "old", nil)), want: "1", deadline: h},
		{rule: "between: now-far < t <= now-near", src: `events("W").between(7d, 14d).count()`, kind: C,
			snap: snap(ev("W", 14*d, "far edge", nil), ev("W", 12*d, "in", nil), ev("W", 7*d, "near edge", nil), ev("W", 3*d, "not yet", nil)),
			want: "2", deadline: 2 * d},
		{rule: "between: an event enters at t+near", src: `events("W").between(7d, 14d).exists()`,
			snap: snap(ev("W", 3*d, "not yet", nil)), want: "false", deadline: 4 * d},
		{rule: "since: t >= ts", src: `events("W").since(@2026-02-01).count()`, kind: C,
			snap: snap(at("W", "on", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), nil), at("W", "before", time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC), nil)),
			want: "1"},
		{rule: "after_parent: parent < t <= parent+d", src: `events("P").where(events("C").after_parent(1d).count() = 2).exists()`,
			snap: snap(ev("P", 5*d, "p", nil), ev("C", 5*d, "same instant", nil), ev("C", 4*d, "edge", nil), ev("C", 4*d-s, "late", nil), ev("C", 4*d+12*h, "in", nil)),
			want: "true"},
		{rule: "after_parent without a window", src: `events("P").where(events("C").after_parent().count() = 3).exists()`,
			snap: snap(ev("P", 5*d, "p", nil), ev("C", 5*d, "same instant", nil), ev("C", 4*d, "a", nil), ev("C", 4*d-s, "b", nil), ev("C", h, "c", nil)),
			want: "true"},
		{rule: "before_parent: parent-d <= t < parent", src: `events("P").where(events("C").before_parent(1d).count() = 1).exists()`,
			snap: snap(ev("P", 5*d, "p", nil), ev("C", 5*d, "same instant", nil), ev("C", 6*d, "edge", nil), ev("C", 6*d+s, "early", nil)),
			want: "true"},
		{rule: "parent.prop", src: `events("P").where(events("C").after_parent(1d).where(prop("sku") = parent.prop("sku")).exists()).count()`, kind: C,
			snap: snap(ev("P", 5*d, "p1", map[string]any{"sku": "a"}), ev("P", 3*d, "p2", map[string]any{"sku": "b"}), ev("C", 4*d, "c", map[string]any{"sku": "a"}), ev("C", 2*d, "c2", map[string]any{"sku": "a"})),
			want: "1"},
		{rule: "nested window deadline", src: `events("P").where(events("C").within(1d).exists()).exists()`,
			snap: snap(ev("P", 5*d, "p", nil), ev("C", 2*h, "c", nil)), want: "true", deadline: 22 * h},
		{rule: "days_since floors, changes at the next whole day", src: `days_since(@2026-02-27T18:00:00Z)`, kind: C, want: "1", deadline: 6 * h},
		{rule: "days_since of a future instant", src: `days_since(@2026-03-01T18:00:00Z)`, kind: C, want: "-1", deadline: 6 * h},
		{rule: "days_since of missing", src: `days_since(events("W").last_at()) is missing`, snap: snap(), want: "true"},
		{rule: "now() comparison flips when the window passes", src: `events("W").last_at() > now() - 7d`,
			snap: snap(ev("W", 2*d, "w", nil)), want: "true", deadline: 5 * d},
		{rule: "now() comparison, other side", src: `events("W").last_at() < now() - 7d`,
			snap: snap(ev("W", 2*d, "w", nil)), want: "false", deadline: 5 * d},
		{rule: "now() comparison moving apart", src: `events("W").last_at() < now()`,
			snap: snap(ev("W", 2*d, "w", nil)), want: "true"},
		{rule: "and: a false time-independent side decides", src: `trait("x") = 1 and events("W").within(7d).exists()`,
			snap: snap(ev("W", 2*d, "w", nil)), want: "false"},
		{rule: "or: the true side decides", src: `events("W").within(7d).exists() or events("W").within(1d).exists()`,
			snap: snap(ev("W", 2*d, "w", nil)), want: "true", deadline: 5 * d},
		{rule: "latest then window", src: `events("W").latest(1).within(7d).exists()`,
			snap: snap(ev("W", 2*d, "w2", nil), ev("W", 3*d, "w1", nil)), want: "true", deadline: 5 * d},
		{rule: "window then latest", src: `events("W").within(7d).latest(1).first_at()`, kind: C,
			snap: snap(ev("W", 2*d, "w2", nil), ev("W", 3*d, "w1", nil)), want: "@2026-02-27T12:00:00Z", deadline: 4 * d},
	})
}

func TestTrace(t *testing.T) {
	p, err := Compile(`"b" in events("Order").distinct(prop("sku")) and events("Order").within(3d).sum(prop("revenue")) > 10`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, tr := Evaluate(p, profile().View(), now0)
	if v.String() != "true" || len(tr.Children) != 2 {
		t.Fatalf("%v %+v", v, tr)
	}
	in := tr.Children[0]
	if in.Children[1].Value.String() != `["a", "b", "c"]` || in.Children[1].EventCount != 5 {
		t.Errorf("distinct node: %+v", in.Children[1])
	}
	sum := tr.Children[1].Children[0]
	if sum.Text != `events("Order").within(3d).sum(prop("revenue"))` || sum.Value.String() != "15.5" ||
		sum.EventCount != 2 || sum.Events[0].MessageID != "o2" || !sum.Deadline.Equal(now0.Add(d)) {
		t.Errorf("sum node: %+v", sum)
	}
	if !tr.Deadline.Equal(now0.Add(d)) {
		t.Errorf("root deadline %v", tr.Deadline)
	}
	b, err := json.Marshal(tr)
	if err != nil || !json.Valid(b) {
		t.Fatal(err)
	}
}

func TestSnapshotOf(t *testing.T) {
	p := &graph.Profile{
		Traits: map[string]graph.Trait{"address.city": {Value: "Paris"}},
		Counts: map[string]int{"email": 2},
	}
	evs := []*graph.Event{
		{Type: "track", Name: "Order", MessageID: "m1", Timestamp: now0.Add(-h), Properties: json.RawMessage(`{"revenue": 12345678901234567890, "items": {"n": 2}}`)},
		{Type: "identify", MessageID: "m2", Timestamp: now0},
		{Type: "track", Name: "Order", MessageID: "m3", Timestamp: now0.Add(-2 * h), Properties: json.RawMessage(`null`)},
	}
	s, err := SnapshotOf(p, evs)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile(`trait("address.city") = "Paris" and id_count("email") = 2 and events("Order").where(prop("items.n") = 2).sum(prop("revenue")) > 1e19`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Evaluate(prog, s.View(), now0); !v.Bool || len(s.Events) != 2 {
		t.Fatalf("%v %+v", v, s)
	}
	if _, err := SnapshotOf(p, []*graph.Event{{Type: "track", Properties: json.RawMessage(`[1]`)}}); err == nil {
		t.Fatal("properties that are not an object were accepted")
	}
}

// days_since of a value that moves with the clock.
func TestDaysSinceMoving(t *testing.T) {
	C := KindComputed
	runSem(t, []semCase{
		{rule: "constant", src: `days_since(now() - 3d - 1h)`, kind: C, want: "3"},
		{rule: "twice as fast", src: `days_since(@2026-02-28 - (now() - @2026-03-01))`, kind: C, want: "2", deadline: 12 * h},
	})
}

// TestSessionSharesChains: a session evaluating several programs gives
// each what Eval alone gives, with the view's memberships and computed
// values changing between programs (as the engine updates them): a chain
// reading in_segment or computed is not shared, one that reads only
// events is.
func TestSessionSharesChains(t *testing.T) {
	srcs := []string{
		`events("Order").within(3d).sum(prop("revenue"))`,
		`events("Order").within(72h).sum(prop("revenue"))`, // the same aggregate
		`events("Order").where(in_segment("vip")).count()`,
		`events("Order").where(computed("ltv") > 100).count()`,
		`events("Order").where(prop("sku") = "a").latest(1).count() + events("Order").within(3d).sum(prop("revenue"))`,
	}
	progs := make([]*Program, len(srcs))
	for i, src := range srcs {
		p, err := Compile(src, Options{Kind: KindComputed, Env: testEnv})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		progs[i] = p
	}
	snap := profile()
	sess := NewSession(snap.View(), now0)
	for round := range 3 {
		for i, p := range progs {
			got := sess.Eval(p)
			want := Eval(p, snap.View(), now0)
			if got.Value.String() != want.Value.String() || !got.Deadline.Equal(want.Deadline) || got.Skipped != want.Skipped {
				t.Errorf("round %d, %s: session %+v, alone %+v", round, srcs[i], got, want)
			}
		}
		// What the engine does between definitions.
		snap.Segments["vip"] = round%2 == 1
		snap.Computed["ltv"] = float64(50 + 100*(round%2))
	}
}
