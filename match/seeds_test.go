package match

import (
	"math"
	"testing"
)

// On person data with one strong field (a birth date) and no ID or email,
// the two-personal-field seeds never form; the wider rule (the whole name,
// the birth date, a postcode: two facts) must still make disagreement
// count, or namesakes who share name and town are merged.
func TestSeedFactsMessy(t *testing.T) {
	tab, _ := Synthesize(SynthOptions{Records: 8000, Seed: 4, Shape: "messy"})
	rep, err := Evaluate(tab, nil, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	weight := func(field, level string) float64 {
		for _, c := range rep.Model.Comparisons {
			if c.Field != field {
				continue
			}
			for _, l := range c.Levels {
				if l.Name == level {
					return math.Log2(l.M / l.U)
				}
			}
		}
		t.Fatalf("no level %s.%s", field, level)
		return 0
	}
	// Before the wider rule: dob else -0.4, first_name else -1.0, gender else -1.8.
	for _, fl := range [][2]string{{"dob", "else"}, {"first_name", "else"}, {"surname", "else"}, {"gender", "else"}} {
		if w := weight(fl[0], fl[1]); w > -2 {
			t.Errorf("%s %s weighs %.1f bits: disagreement barely counts", fl[0], fl[1], w)
		}
	}
}

func TestSeedFactsRule(t *testing.T) {
	ds := &Dataset{}
	for _, k := range []Kind{KindGivenName, KindSurname, KindDate, KindPostcode, KindAddress, KindCity} {
		ds.comps = append(ds.comps, &comparison{field: Field{Name: string(k), Kind: k}})
	}
	u := [][]float64{{0, 0.02}, {0, 0.005}, {0, 0.001}, {0, 0.002}, {0, 0.003}, {0, 0.05}}
	sf := newSeedFacts(ds, u)
	const x, n = exactLevel, 2 // exact, not
	for _, tc := range []struct {
		lv   []uint8
		c    int
		want bool
	}{
		{[]uint8{x, x, n, x, n, n}, 2, true},  // name + postcode: a seed for the date
		{[]uint8{x, x, x, n, n, n}, 3, true},  // name + date: for the postcode
		{[]uint8{x, x, n, n, n, x}, 2, false}, // name + a common city: city is not strong
		{[]uint8{n, x, n, x, x, n}, 0, false}, // surname + postcode + street: a household
		{[]uint8{x, x, x, n, n, n}, 0, false}, // the name does not choose its own sample
		{[]uint8{n, n, x, x, n, n}, 0, true},  // date + postcode: for the given name
		{[]uint8{x, n, n, x, n, n}, 2, false}, // half a name is not the name
	} {
		if got := sf.seed(tc.lv, tc.c); got != tc.want {
			t.Errorf("seed(%v, %d) = %v, want %v", tc.lv, tc.c, got, tc.want)
		}
	}
}
