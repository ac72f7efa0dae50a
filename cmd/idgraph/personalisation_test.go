package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestPersonalisationFlags: serve's allow-list flags, "*" for all, empty
// for none, a key allowing itself; anything else names the flag.
func TestPersonalisationFlags(t *testing.T) {
	p, err := personalisation("*", "", " plan, address ,")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.Segments, p.ComputedTraits, p.Traits); got != "[*] [] [plan address]" {
		t.Errorf("parsed %s", got)
	}
	for _, c := range []struct{ segs, computed, traits, flag string }{
		{"vip*", "*", "", "personalisation-segments"},
		{"*", "a b", "", "personalisation-computed-traits"},
		{"*", "*", "plan,*x", "personalisation-traits"},
	} {
		if _, err := personalisation(c.segs, c.computed, c.traits); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v, want an error naming --%s", c, err, c.flag)
		}
	}
}
