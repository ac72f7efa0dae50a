package mask

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestValue(t *testing.T) {
	for _, c := range []struct {
		kind    Kind
		in, out string
	}{
		{Email, "ann@corp.io", "a***@c***.io"},
		{Email, "Ann.Lee+x@mail.example.co.uk", "A***@m***.uk"},
		{Email, "not-an-email", "n***"},
		{Phone, "+14155550134", "+1******0134"},
		{Phone, "(415) 555-0134", "4*****0134"},
		{Phone, "12345", "***45"},
		{Phone, "12", "***"},
		{Name, "Ann Lee", "A. L."},
		{Name, "élodie de-la cruz", "É. D. L. C."},
		{Name, "  ", "***"},
		{Birthday, "1987-04-12", "1987-**-**"},
		{Birthday, "12/04/1987", "1987-**-**"},
		{Birthday, "April", "***"},
		{IP, "203.0.113.7", "203.*.*.*"},
		{IP, "2001:db8::1", "2001:*"},
		{Device, "6D92078A-8246-4BA4-AE5B-76104861E7DC", "***E7DC"},
		{Device, "short", "***"},
		{Address, "1 Main St", "1***"},
		{None, "Acme", "Acme"},
	} {
		if got := Value(c.kind, c.in); got != c.out {
			t.Errorf("Value(%s, %q) = %q, want %q", c.kind, c.in, got, c.out)
		}
	}
}

func TestScrub(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"no identifier email:ann@corp.io", "no identifier email:a***@c***.io"},
		{"call +1 415 555 0134 now", "call +1******0134 now"},
		{"from 203.0.113.7", "from 203.*.*.*"},
		{"profile p_0123456789 at 2026-12-02T03:10:22Z", "profile p_0123456789 at 2026-12-02T03:10:22Z"},
		{"order 12345", "order 12345"},
	} {
		if got := Scrub(c.in); got != c.out {
			t.Errorf("Scrub(%q) = %q, want %q", c.in, got, c.out)
		}
	}
}

func TestJSON(t *testing.T) {
	in := `{"email":"ann@corp.io","name":"Ann Lee","plan":"pro","age":41,
		"address":{"street":"1 Main St","city":"Springfield"},
		"context":{"ip":"203.0.113.7","library":{"name":"analytics.js"},"device":{"id":"6D92078A-8246-4BA4-AE5B-76104861E7DC","name":"Ann's phone"},
		  "traits":{"phone":4155550134}},
		"keys":[{"type":"email","value":"bob@x.org"},{"type":"user_id","value":"u-42"}],
		"fields":[{"field":"dob","a":"1987-04-12","b":"1987-04-21"},{"field":"colour","a":"red","b":"blue"}],
		"note":"she wrote from carl@y.com"}`
	out, err := Default.JSON([]byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"ann@corp.io", "Ann Lee", "1 Main St", "Springfield", "203.0.113.7", "6D92078A", "Ann's",
		"4155550134", "bob@x.org", "04-12", "04-21", "red", "carl@y.com"} {
		if strings.Contains(string(out), raw) {
			t.Errorf("%q is in the masked document: %s", raw, out)
		}
	}
	for _, kept := range []string{`"plan":"pro"`, `"age":41`, `"name":"analytics.js"`, `"value":"u-42"`, `"a***@c***.io"`, `"A. L."`, `"1987-**-**"`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("%s is not in the masked document: %s", kept, out)
		}
	}
}

// TestConfiguredKeysProperty: any trait key configured as personal is
// masked wherever it sits (top level, nested, in context.traits, in a list,
// as an identifier type), whatever the case and separators it is written
// with, and the 64-character marker it holds never survives.
func TestConfiguredKeysProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	const letters = "abcdefghijklmnopqrstuvwxyz"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	for i := range 500 {
		key := word(3+rng.IntN(8)) + []string{"", "_", "-"}[rng.IntN(3)] + word(2+rng.IntN(5))
		kind := Kinds[rng.IntN(len(Kinds))]
		spec := key
		if rng.IntN(2) == 0 {
			spec += "=" + string(kind)
		} else {
			kind = Other
		}
		r, err := NewRules([]string{spec})
		if err != nil {
			t.Fatal(err)
		}
		marker := "M" + word(63)
		written := key
		if rng.IntN(2) == 0 {
			written = strings.ToUpper(key)
		}
		var doc any
		switch rng.IntN(4) {
		case 0:
			doc = map[string]any{written: marker}
		case 1:
			doc = map[string]any{"a": map[string]any{"b": map[string]any{written: marker}}}
		case 2:
			doc = map[string]any{"context": map[string]any{"traits": map[string]any{written: []any{marker, marker}}}}
		default:
			doc = []any{map[string]any{"type": key, "value": marker}}
		}
		data, _ := json.Marshal(doc)
		out, err := r.JSON(data, "")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), marker[1:]) {
			t.Fatalf("case %d: key %q (%s) written %q: marker survives in %s", i, key, kind, written, out)
		}
		if got := r.Identifier(key, marker); strings.Contains(got, marker[1:]) {
			t.Fatalf("case %d: identifier type %q: %q", i, key, got)
		}
	}
}

func TestNewRulesRefusesBadKinds(t *testing.T) {
	for _, spec := range []string{"", "=email", "x=secret"} {
		if _, err := NewRules([]string{spec}); err == nil {
			t.Errorf("NewRules(%q) took it", spec)
		}
	}
}
