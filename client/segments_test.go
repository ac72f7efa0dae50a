package client_test

import (
	"testing"

	"github.com/idgraph/idgraph/client"
)

func TestSameDefinition(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{`has_id("email")`, "  has_id(\"email\")\n", true},
		{`has_id("email") and trait("plan") = "pro"`, "# paying users\nhas_id( \"email\" )\n  and (trait(\"plan\") = \"pro\")", true},
		{`events("Order").within(168h).exists()`, `events("Order").within(7d).exists()`, true},
		{`has_id("email")`, `has_id("phone")`, false},
		{`trait("a") = 1 and trait("b") = 2`, `trait("b") = 2 and trait("a") = 1`, false}, // order can matter (evaluation, explanations)
		{`has_id(`, `has_id(`, true}, // the same text, unparsed
		{`has_id(`, `has_id( `, true},
		{`has_id("email"`, `has_id("email")`, false},
	} {
		if got := client.SameDefinition(c.a, c.b); got != c.same {
			t.Errorf("SameDefinition(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}
