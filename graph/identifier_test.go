package graph_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/idgraph/idgraph/graph"
)

func TestNormalize(t *testing.T) {
	n := graph.NewNormalizer("US")
	cases := []struct {
		typ, raw, want, err string
	}{
		{"email", "  Ann.Lee@Corp.IO ", "ann.lee@corp.io", ""},
		{"email", "ann", "", "not an address"},
		{"email", "a@b@c.io", "", "not an address"},
		{"email", "ann@localhost", "", "no valid domain"},
		{"email", "test@test.com", "", "placeholder"},
		{"email", "NoReply@shop.io", "", "placeholder"},
		{"email", "x@example.com", "", "placeholder"},
		{"phone", "(415) 555-0134", "+14155550134", ""},
		{"phone", "+44 20 7946 0958", "+442079460958", ""},
		{"phone", "call me", "", "not a phone number"},
		{"phone", "000-000-0000", "", "placeholder"},
		{"phone", "(222) 222-2222", "", "placeholder"},
		{"user_id", " u-1 ", "u-1", ""},
		{"user_id", "", "", "empty"},
		{"user_id", "   ", "", "empty"},
		{"user_id", "undefined", "", "placeholder"},
		{"user_id", "NULL", "", "placeholder"},
		{"anonymous_id", "0", "", "placeholder"},
		{"anonymous_id", "-1", "", "placeholder"},
		{"device_id", "aaaaaaaa", "", "placeholder"},
		{"device_id", "d\x00x", "", "control characters"},
		{"device_id", "\xff", "", "not valid UTF-8"},
		{"device_id", strings.Repeat("d", graph.MaxValueLen+1), "", "longer than"},
		{"crm_id", "C-001", "C-001", ""},
		{"loyalty_card", "L-77", "L-77", ""},
		{"Bad Type", "x", "", "must match"},
	}
	for _, c := range cases {
		t.Run(c.typ+"/"+c.raw, func(t *testing.T) {
			k, err := n.Normalize(c.typ, c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Normalize(%q, %q) = %v, %v; want error containing %q", c.typ, c.raw, k, err, c.err)
				}
				if graph.ErrorKind(err) != graph.KindInvalid {
					t.Errorf("error kind = %s, want invalid", graph.ErrorKind(err))
				}
				if c.err == "placeholder" && !errors.Is(err, graph.ErrPlaceholder) {
					t.Errorf("placeholder error does not wrap ErrPlaceholder")
				}
				return
			}
			if err != nil || k.Value != c.want || k.Type != c.typ {
				t.Fatalf("Normalize(%q, %q) = %v, %v; want %s", c.typ, c.raw, k, err, c.want)
			}
		})
	}
}

func TestBlocklistAdd(t *testing.T) {
	b := graph.DefaultBlocklist()
	if err := b.Add("re:^qa-.*@corp\\.io$"); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("Shared-Kiosk"); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("re:("); err == nil {
		t.Error("a broken pattern was accepted")
	}
	for v, want := range map[string]bool{"qa-7@corp.io": true, "shared-kiosk": true, "ann@corp.io": false} {
		if got := b.Blocks(graph.Key{Type: "email", Value: v}); got != want {
			t.Errorf("Blocks(%q) = %v, want %v", v, got, want)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"ann@corp.io", "(415) 555-0134", "+442079460958", "  x  ", "\xff", "0", "a@b"} {
		f.Add("email", s)
		f.Add("phone", s)
		f.Add("user_id", s)
	}
	n := graph.NewNormalizer("US")
	f.Fuzz(func(t *testing.T, typ, raw string) {
		k, err := n.Normalize(typ, raw)
		if err != nil {
			if graph.ErrorKind(err) != graph.KindInvalid {
				t.Fatalf("error of kind %s: %v", graph.ErrorKind(err), err)
			}
			return
		}
		if k.Value == "" || len(k.Value) > graph.MaxValueLen || !utf8.ValidString(k.Value) || k.Value != strings.TrimSpace(k.Value) {
			t.Fatalf("Normalize(%q, %q) = %q: not a clean value", typ, raw, k.Value)
		}
		// Normalising is idempotent: a stored value normalises to itself.
		again, err := n.Normalize(k.Type, k.Value)
		if err != nil || again != k {
			t.Fatalf("Normalize(%q) = %q, %v; not idempotent for %q", k.Value, again.Value, err, raw)
		}
	})
}

func TestConfigFlags(t *testing.T) {
	cfg := graph.DefaultConfig()
	if err := cfg.ParseLimits("email=3, loyalty_id=2"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ParsePriority("crm_id,user_id"); err != nil {
		t.Fatal(err)
	}
	if cfg.Limits["email"] != 3 || cfg.Limits["loyalty_id"] != 2 || cfg.Priority[0] != "crm_id" {
		t.Errorf("config = %+v", cfg)
	}
	for _, bad := range []string{"email", "email=0", "Email=2", "email=x"} {
		if err := cfg.ParseLimits(bad); err == nil {
			t.Errorf("ParseLimits(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"user_id,user_id", "user id"} {
		if err := cfg.ParsePriority(bad); err == nil {
			t.Errorf("ParsePriority(%q) accepted", bad)
		}
	}
}
