package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	json "github.com/segmentio/encoding/json"
)

// TraitValues must give what decoding the whole map gives, for random
// traits: nested objects and arrays, escaped and non-Latin paths, strings
// holding JSON, numbers, nulls; and an error for malformed JSON.
func TestTraitValuesMatchesFullDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"plan", "address.city", "näme", `quo"te`, "a\\b", "<tag>", "x", "value", "source"}
	values := []any{"pro", 3, -2.5, nil, true, []any{"a", 1.0, []any{}}, map[string]any{"value": "inner", "plan": 1.0},
		`{"plan":{"value":"fake"}}`, "line\nbreak \u2028", ""}
	for round := range 500 {
		traits := map[string]Trait{}
		for range rng.IntN(6) {
			traits[names[rng.IntN(len(names))]] = Trait{Value: values[rng.IntN(len(values))], Source: "s", Time: time.Unix(int64(round), 0)}
		}
		raw, err := json.Marshal(traits)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for range rng.IntN(4) {
			paths = append(paths, names[rng.IntN(len(names))])
		}
		got, err := TraitValues(raw, paths)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var whole map[string]Trait
		if err := json.Unmarshal(raw, &whole); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{}
		for _, p := range paths {
			if tr, ok := whole[p]; ok {
				want[p] = tr.Value
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("TraitValues(%s, %q) = %v, want %v", raw, paths, got, want)
		}
	}
	if got, err := TraitValues([]byte("null"), []string{"plan"}); got != nil || err != nil {
		t.Errorf("TraitValues(null) = %v, %v", got, err)
	}
	for _, bad := range []string{`[1]`, `{"plan":{"value":}}`, `{"plan":{"value":"x"`, `{"plan":[}`, `{"plan"`} {
		if _, err := TraitValues([]byte(bad), []string{"plan"}); err == nil {
			t.Errorf("TraitValues(%s): no error", bad)
		}
	}
}
