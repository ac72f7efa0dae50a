package match

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// renamed returns the messy shape's rows under another header.
func renamed(header []string, n int) ([]string, [][]string) {
	tab, _ := Synthesize(SynthOptions{Records: n, Seed: 11, Shape: "messy"})
	return header, tab.Rows
}

// Detection sorts person-name columns out by their values and by how they
// sit in one another, whatever the headers say.
func TestDetectPersonColumns(t *testing.T) {
	type want struct {
		kind     Kind
		fill     string
		fillAlso []string
		minus    []string
	}
	messy := map[string]want{
		"unique_id": {kind: KindIgnore}, "cluster": {kind: KindIgnore},
		"full_name":         {kind: KindFullName, minus: []string{"first_name", "surname"}},
		"first_and_surname": {kind: KindIgnore},
		"first_name":        {kind: KindGivenName, fill: "full_name", fillAlso: []string{"first_and_surname"}},
		"surname":           {kind: KindSurname, fill: "full_name", fillAlso: []string{"first_and_surname"}},
		"dob":               {kind: KindDate}, "birth_place": {kind: KindCity}, "postcode": {kind: KindPostcode},
		"gender": {kind: KindCategory}, "occupation": {kind: KindText},
	}
	cases := []struct {
		name   string
		header []string
		id     string
		want   map[string]want
	}{
		{"as written", MessyHeader, "", messy},
		{
			// Each name column under another name column's header.
			"misleading headers",
			[]string{"unique_id", "cluster", "surname", "given_name", "last_name", "first_name", "notes", "birth_place", "ref", "flag", "occupation"},
			"",
			map[string]want{
				"unique_id": {kind: KindIgnore}, "cluster": {kind: KindIgnore},
				"surname":    {kind: KindFullName, minus: []string{"last_name", "first_name"}},
				"given_name": {kind: KindIgnore},
				"last_name":  {kind: KindGivenName, fill: "surname", fillAlso: []string{"given_name"}},
				"first_name": {kind: KindSurname, fill: "surname", fillAlso: []string{"given_name"}},
				"notes":      {kind: KindDate}, "birth_place": {kind: KindCity}, "ref": {kind: KindPostcode},
				"flag": {kind: KindCategory}, "occupation": {kind: KindText},
			},
		},
		{
			"meaningless headers",
			[]string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10"},
			"c0",
			map[string]want{
				"c0": {kind: KindIgnore}, "c1": {kind: KindIgnore},
				"c2": {kind: KindFullName, minus: []string{"c4", "c5"}},
				"c3": {kind: KindIgnore},
				"c4": {kind: KindGivenName, fill: "c2", fillAlso: []string{"c3"}}, "c5": {kind: KindSurname, fill: "c2", fillAlso: []string{"c3"}},
				"c6": {kind: KindDate}, "c7": {kind: KindText}, "c8": {kind: KindPostcode},
				"c9": {kind: KindCategory}, "c10": {kind: KindText},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			header, rows := renamed(tc.header, 3000)
			cfg, dets := Detect(header, rows, tc.id)
			fields := map[string]Field{}
			for _, f := range cfg.Fields {
				fields[f.Name] = f
			}
			for _, d := range dets {
				w := tc.want[d.Column]
				f := fields[d.Column]
				if d.Kind != w.kind || f.Fill != w.fill || !slices.Equal(f.FillAlso, w.fillAlso) || !slices.Equal(f.Minus, w.minus) {
					t.Errorf("%s: %s fill %q %v minus %v (%s), want %s fill %q %v minus %v", d.Column, d.Kind, f.Fill, f.FillAlso, f.Minus, d.Reason, w.kind, w.fill, w.fillAlso, w.minus)
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// A record whose name parts and full name are empty takes its parts from
// the column dropped for repeating them, and from nothing else.
func TestFillFromRepeatingColumn(t *testing.T) {
	header, rows := renamed(MessyHeader, 3000)
	cfg, _ := Detect(header, rows, "")
	row := map[string]string{"first_and_surname": "josqeph fisher", "occupation": "priest"}
	get := func(name string) string { return row[name] }
	want := map[string]string{"first_name": "josqeph", "surname": "fisher", "full_name": "", "occupation": "priest"}
	for _, f := range cfg.Fields {
		if w, ok := want[f.Name]; ok {
			if got := cfg.rawValue(f, get); got != w {
				t.Errorf("%s = %q, want %q", f.Name, got, w)
			}
		}
	}
}

// Without a full name, given names and surnames are told apart by how
// many values are known given names, not by the header.
func TestDetectGivenAndSurnameByValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	given := []string{"john", "mary", "william", "sarah", "thomas", "emily", "george", "anna", "peter", "lucy", "kenji", "olga",
		"zebedee", "ottoline", "ignatius", "perpetua", "hamish", "wilhelmina", "ezekiel", "araminta", "cuthbert", "philippa", "mustafa", "ingeborg"}
	var rows [][]string
	for i := range 400 {
		sur := fmt.Sprintf("%s%s", []string{"hol", "bar", "wen", "tor", "mak", "fel"}[r.IntN(6)], []string{"ton", "ley", "berg", "ski", "ford", "ez"}[r.IntN(6)])
		rows = append(rows, []string{fmt.Sprint(i), sur, given[r.IntN(len(given))]})
	}
	for _, header := range [][]string{{"id", "first", "last"}, {"id", "given_name", "family_name"}, {"id", "surname", "forename"}} {
		_, dets := Detect(header, rows, "")
		if dets[1].Kind != KindSurname || dets[2].Kind != KindGivenName {
			t.Errorf("%v: %s (%s), %s (%s); want surname, given name", header, dets[1].Kind, dets[1].Reason, dets[2].Kind, dets[2].Reason)
		}
	}
}

// Values beat a header that names the wrong kind.
func TestDetectValuesBeatHeaders(t *testing.T) {
	var rows [][]string
	for i := range 200 {
		rows = append(rows, []string{
			fmt.Sprintf("user%d@example.org", i),
			fmt.Sprintf("%04d-%02d-%02d", 1900+i%90, 1+i%12, 1+i%28),
			[]string{"1845", "1901-03", "1799-12-30"}[i%3],
			fmt.Sprintf("%c%c%d %d%c%c", 'a'+i%26, 'b'+i%20, 1+i%20, i%10, 'a'+i%26, 'z'-i%26),
		})
	}
	_, dets := Detect([]string{"city", "surname", "born", "col"}, rows, "")
	want := []Kind{KindEmail, KindDate, KindDate, KindPostcode}
	for i, d := range dets {
		if d.Kind != want[i] {
			t.Errorf("%s: %s (%s), want %s", d.Column, d.Kind, d.Reason, want[i])
		}
	}
}

func TestNameParts(t *testing.T) {
	for _, tt := range []struct{ in, given, surname string }{
		{"Sir Thomas Clifford, 1st Baron Clifford of Chudleigh", "thomas", "clifford"},
		{"clifford, thomas henry", "thomas", "clifford"},
		{"Rev. John H. Smith Jr", "john", "smith"},
		{"t. clifford", "t", "clifford"},
		{"madonna", "madonna", ""},
		{"lord", "", ""},
		{"", "", ""},
	} {
		g, s := nameParts(tt.in)
		if g != tt.given || s != tt.surname {
			t.Errorf("nameParts(%q) = %q, %q; want %q, %q", tt.in, g, s, tt.given, tt.surname)
		}
	}
	cfg := &Config{Fields: []Field{
		{Name: "full", Kind: KindFullName, Minus: []string{"first", "last"}},
		{Name: "first", Kind: KindGivenName, Fill: "full"},
		{Name: "last", Kind: KindSurname, Fill: "full"},
	}}
	rec := map[string]string{"full": "Sir Thomas Henry Clifford, 1st Baron Clifford", "last": "Clifford"}
	want := map[int]string{0: "sir henry 1st baron clifford", 1: "thomas", 2: "Clifford"}
	for f, w := range want {
		if got := cfg.rawValue(cfg.Fields[f], func(n string) string { return rec[n] }); got != w {
			t.Errorf("%s: %q, want %q", cfg.Fields[f].Name, got, w)
		}
	}
	// The compact dataset compares the same values, built from records
	// or straight from a table's rows.
	recDS, err := NewDataset(cfg, []Record{{ID: "a", Fields: rec}})
	if err != nil {
		t.Fatal(err)
	}
	tabDS, err := NewTableDataset(cfg, "id", &Table{Header: []string{"id", "full", "first", "last"},
		Rows: [][]string{{"a", rec["full"], "", rec["last"]}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for f, w := range want {
		wk := recDS.comps[f].method.prepare(w).key
		for name, ds := range map[string]*Dataset{"records": recDS, "table": tabDS} {
			if got := ds.val(0, f).key; got != wk {
				t.Errorf("%s dataset, %s: %q, want %q", name, cfg.Fields[f].Name, got, wk)
			}
		}
	}
}

// A common first name, repeated in every name column, is one fact: alone
// it never reaches accept.
func TestCommonFirstNameAloneIsNotAMatch(t *testing.T) {
	tab, _ := Synthesize(SynthOptions{Records: 4000, Seed: 5, Shape: "messy"})
	blank := func(id string, set map[int]string) []string {
		row := make([]string, len(MessyHeader))
		row[mID] = id
		for c, v := range set {
			row[c] = v
		}
		return row
	}
	n := len(tab.Rows)
	tab.Rows = append(tab.Rows,
		blank("x-1", map[int]string{mFull: "john", mFirstSur: "john", mFirst: "john"}),
		blank("x-2", map[int]string{mFull: "John", mFirstSur: "John", mFirst: "john"}),
		blank("x-3", map[int]string{mFull: "john smith", mFirstSur: "john smith", mFirst: "john", mSur: "smith", mGender: "male"}),
		blank("x-4", map[int]string{mFull: "john wilson", mFirstSur: "john wilson", mFirst: "john", mSur: "wilson", mGender: "male"}),
	)
	ds, res := runDetected(t, tab)
	for _, p := range [][2]int{{n, n + 1}, {n + 2, n + 3}, {n, n + 2}} {
		sp := res.Scorer.Score(p[0], p[1])
		if sp.Accepted(0.95) || sp.Prob > 0.5 {
			e := res.Scorer.Explain(p[0], p[1])
			t.Errorf("%s ~ %s: p %.4f, accepted on a first name: %+v", ds.IDs[p[0]], ds.IDs[p[1]], sp.Prob, e.Fields)
		}
	}
}

// A middle-name column inside the full name leaves it too, and a date
// held in three columns is three small categories, not street numbers.
func TestDetectMiddleNameAndDateParts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	given := []string{"john", "mary", "william", "sarah", "thomas", "emily", "george", "anna", "peter", "lucy", "henry", "alice"}
	var rows [][]string
	for i := range 300 {
		g, m := given[r.IntN(len(given))], given[r.IntN(len(given))]
		s := fmt.Sprintf("%s%s", []string{"hol", "bar", "wen", "tor"}[r.IntN(4)], []string{"ton", "ley", "berg", "ford"}[r.IntN(4)])
		rows = append(rows, []string{fmt.Sprint(i), g + " " + m + " " + s, g, m, s,
			fmt.Sprint(1 + r.IntN(28)), fmt.Sprint(1 + r.IntN(12)), fmt.Sprint(1800 + r.IntN(150))})
	}
	header := []string{"id", "name", "given", "middle_name", "family", "birth_day", "birth_month", "birth_year"}
	cfg, dets := Detect(header, rows, "")
	want := []Kind{KindIgnore, KindFullName, KindGivenName, KindGivenName, KindSurname, KindCategory, KindCategory, KindDate}
	for i, d := range dets {
		if d.Kind != want[i] {
			t.Errorf("%s: %s (%s), want %s", d.Column, d.Kind, d.Reason, want[i])
		}
	}
	if f, _ := cfg.field("name"); !slices.Equal(f.Minus, []string{"given", "middle_name", "family"}) {
		t.Errorf("full name minus %v", f.Minus)
	}
}

// A title typed into the given-name column is no given name: the field
// is filled from the full name instead, and titles that are also given
// names stay.
func TestGivenNameTitleOnly(t *testing.T) {
	cfg := &Config{Fields: []Field{
		{Name: "full_name", Kind: KindFullName},
		{Name: "first_name", Kind: KindGivenName, Fill: "full_name"},
		{Name: "surname", Kind: KindSurname},
	}}
	tests := []struct{ first, full, want string }{
		{"lieutenant", "lieutenant alfred douglas-hamilton", "alfred"},
		{"Rev.", "rev thomas clifford", "thomas"},
		{"earl", "earl grey", "earl"}, // a given name as well as a title
		{"sir", "", ""},
		{"alfred", "lieutenant alfred douglas-hamilton", "alfred"},
	}
	for _, tt := range tests {
		row := map[string]string{"first_name": tt.first, "full_name": tt.full}
		got := cfg.rawValue(cfg.Fields[1], func(name string) string { return row[name] })
		if got != tt.want {
			t.Errorf("first name %q, full name %q: got %q, want %q", tt.first, tt.full, got, tt.want)
		}
	}
}
