package destinations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
)

func TestCheckIdentifierPolicy(t *testing.T) {
	many := make([]string, destinations.MaxPolicyTypes+1)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	for _, c := range []struct {
		name  string
		p     destinations.IdentifierPolicy
		field string // "" : valid
	}{
		{"valid", destinations.IdentifierPolicy{Types: []string{"email", "user_id"}, Mode: "all"}, ""},
		{"first", destinations.IdentifierPolicy{Types: []string{"phone"}, Mode: "first"}, ""},
		{"no types", destinations.IdentifierPolicy{Mode: "all"}, "types"},
		{"too many types", destinations.IdentifierPolicy{Types: many, Mode: "all"}, "types"},
		{"malformed type", destinations.IdentifierPolicy{Types: []string{"email", "E Mail!"}, Mode: "all"}, "types"},
		{"empty type", destinations.IdentifierPolicy{Types: []string{""}, Mode: "all"}, "types"},
		{"repeated type", destinations.IdentifierPolicy{Types: []string{"email", "email"}, Mode: "all"}, "types"},
		{"bad mode", destinations.IdentifierPolicy{Types: []string{"email"}, Mode: "some"}, "mode"},
		{"mode in capitals", destinations.IdentifierPolicy{Types: []string{"email"}, Mode: "ALL"}, "mode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := destinations.CheckIdentifierPolicy(c.p)
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if graph.ErrorKind(err) != graph.KindInvalid || !strings.HasPrefix(graph.ErrorMessage(err), c.field+": ") {
				t.Fatalf("got %v, want invalid input naming %s", err, c.field)
			}
		})
	}
}

// Apply follows the policy's type order; all sends every identifier of a
// type by value, first the one seen earliest (ties by value), whatever
// joined later.
func TestIdentifierPolicyApply(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := func(typ, v string, seen int) *graph.Identifier {
		return &graph.Identifier{Key: graph.Key{Type: typ, Value: v}, FirstSeen: t0.Add(time.Duration(seen) * time.Hour)}
	}
	ids := []*graph.Identifier{id("email", "b@x.io", 1), id("email", "a@x.io", 3), id("email", "c@x.io", 1),
		id("user_id", "u1", 2), id("phone", "+14155550134", 0)}
	for _, c := range []struct {
		p    *destinations.IdentifierPolicy
		want string
	}{
		{nil, "[]"},
		{&destinations.IdentifierPolicy{Types: []string{"user_id", "email"}, Mode: "all"}, "[{user_id u1} {email a@x.io} {email b@x.io} {email c@x.io}]"},
		{&destinations.IdentifierPolicy{Types: []string{"email", "user_id"}, Mode: "first"}, "[{email b@x.io} {user_id u1}]"},
		{&destinations.IdentifierPolicy{Types: []string{"anonymous_id"}, Mode: "first"}, "[]"},
	} {
		if got := fmt.Sprint(c.p.Apply(ids)); got != c.want {
			t.Errorf("%+v: got %s, want %s", c.p, got, c.want)
		}
	}
}

// A destination without a policy gets the payload it got before policies.
func TestPayloadWithoutPolicyUnchanged(t *testing.T) {
	r := &segments.ChangeRecord{Sequence: 7, Segment: "vip", Version: 2, Profile: "p_1", Direction: segments.Entered, Reason: "data",
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	body, err := destinations.Payload(r)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"type":"segment.entered","timestamp":"2026-01-01T00:00:00Z","data":{"segment":"vip","version":2,"profile":"p_1","reason":"data","sequence":7}}`
	if string(body) != want {
		t.Fatalf("payload %s, want %s", body, want)
	}
}

func TestWithdrawAndPolicyBadInput(t *testing.T) {
	ctx := context.Background()
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := newFixtureOn(t, s, func(o *destinations.Options) { o.Sent, o.Profiles = s.SentState(), s })
	r := newReceiver(t, ok)
	d := f.connect(t, r, "vip")
	for _, reason := range []string{"", "two words", strings.Repeat("x", 65), "tab\t"} {
		if _, err := f.m.Withdraw(ctx, "p_1", reason); graph.ErrorKind(err) != graph.KindInvalid || !strings.HasPrefix(graph.ErrorMessage(err), "reason: ") {
			t.Errorf("Withdraw(reason %q): %v, want invalid reason", reason, err)
		}
	}
	if _, err := f.m.Withdraw(ctx, "p_nosuch", destinations.ReasonSuppressed); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("Withdraw of an unknown profile: %v, want not_found", err)
	}
	if _, err := f.m.SetIdentifierPolicy(ctx, d.ID, &destinations.IdentifierPolicy{Mode: "all"}); graph.ErrorKind(err) != graph.KindInvalid {
		t.Errorf("an empty policy: %v", err)
	}
	if _, err := f.m.SetIdentifierPolicy(ctx, "dst_nosuch", &destinations.IdentifierPolicy{Types: []string{"email"}, Mode: "all"}); graph.ErrorKind(err) != graph.KindNotFound {
		t.Errorf("an unknown destination: %v", err)
	}
	got, err := f.m.Get(ctx, d.ID)
	if err != nil || got.Identifiers != nil {
		t.Fatalf("a refused policy was stored: %+v %v", got, err)
	}
	// A server that cannot read profiles refuses a policy.
	g := newFixture(t)
	d2 := g.connect(t, newReceiver(t, ok), "vip")
	if _, err := g.m.SetIdentifierPolicy(ctx, d2.ID, &destinations.IdentifierPolicy{Types: []string{"email"}, Mode: "all"}); graph.ErrorKind(err) != graph.KindInvalid {
		t.Errorf("a policy without profiles: %v", err)
	}
}
