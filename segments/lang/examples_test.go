package lang

import (
	"os"
	"strings"
	"testing"
	"time"
)

// ann has bought four times (one revenue sent as a string), and viewed and
// added a product she did not buy three days ago; bob last bought 120
// days ago.
func ann() *Snapshot {
	m := time.Minute
	return &Snapshot{
		Traits:   map[string]any{"email": "Ann@Corp.io", "address.city": "Paris"},
		IDCounts: map[string]int{"email": 1},
		Events: []Event{
			ev("Order Completed", 120*d, "o1", map[string]any{"revenue": num("80"), "sku": "A"}),
			ev("Order Completed", 20*d, "o2", map[string]any{"revenue": num("55"), "sku": "B", "category": "shoes"}),
			ev("Order Completed", 10*d, "o3", map[string]any{"revenue": num("60"), "sku": "C", "category": "shoes"}),
			ev("Order Completed", 2*d, "o4", map[string]any{"revenue": "50", "sku": "D", "category": "hats"}),
			ev("Product Viewed", 3*d, "v1", map[string]any{"sku": "E"}),
			ev("Product Added", 3*d-10*m, "a1", map[string]any{"sku": "E"}),
		},
	}
}

func bob() *Snapshot {
	return &Snapshot{Events: []Event{ev("Order Completed", 120*d, "b1", map[string]any{"revenue": num("20")})}}
}

// Every example in docs/segments.md compiles and evaluates as the doc says.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/segments.md")
	if err != nil {
		t.Fatal(err)
	}
	C := KindComputed
	cases := []semCase{
		{rule: "recency", src: `events("Order Completed").within(30d).exists()`, snap: ann, want: "true", deadline: 10 * d},
		{rule: "frequency", src: `events("Order Completed").within(90d).where(number(prop("revenue")) >= 50).count() >= 3`, snap: ann, want: "true", deadline: 70 * d},
		{rule: "frequency without number()", src: `events("Order Completed").within(90d).where(prop("revenue") >= 50).count()`, kind: C, snap: ann, want: "2", deadline: 70 * d},
		{rule: "monetary value", src: `events("Order Completed").within(90d).sum(prop("revenue"))`, kind: C, snap: ann, want: "165", deadline: 70 * d},
		{rule: "favourite category", src: `events("Order Completed").latest(10).mode(prop("category"))`, kind: C, snap: ann, want: `"shoes"`},
		{rule: "funnel", src: `events("Product Viewed").within(7d).where(
  events("Product Added").after_parent(1h).where(prop("sku") = parent.prop("sku")).exists()
).exists()`, snap: ann, want: "true", deadline: 4 * d},
		{rule: "abandoned cart", src: `events("Product Added").between(1h, 7d).where(
  not events("Order Completed").after_parent().where(prop("sku") = parent.prop("sku")).exists()
).exists()`, snap: ann, want: "true", deadline: 4*d + 10*time.Minute},
		{rule: "lapsed customers (ann)", src: `events("Order Completed").exists() and not events("Order Completed").within(90d).exists()`, snap: ann, want: "false", deadline: 70 * d},
		{rule: "lapsed customers (bob)", src: `events("Order Completed").exists() and not events("Order Completed").within(90d).exists()`, snap: bob, want: "true"},
		{rule: "days since last order", src: `days_since(events("Order Completed").last_at())`, kind: C, snap: bob, want: "120", deadline: d},
		{rule: "profile data", src: `lower(trait("email")) ends_with "@corp.io" and trait("address.city") in ["Paris", "Lyon"]`, snap: ann, want: "true"},
	}
	for _, c := range cases {
		if !strings.Contains(string(doc), c.src) {
			t.Errorf("docs/segments.md lacks the example %s:\n%s", c.rule, c.src)
		}
	}
	runSem(t, cases)
}
