package match

import "testing"

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		y, m, d int
		ok      bool
	}{
		{"19800517", 1980, 5, 17, true},
		{"17051980", 1980, 5, 17, true},
		{"1980-05-17", 1980, 5, 17, true},
		{"1980/5/7", 1980, 5, 7, true},
		{"1980-05-17T10:22:00Z", 1980, 5, 17, true},
		{"1980-05-17 10:22", 1980, 5, 17, true},
		{"17/05/1980", 1980, 5, 17, true},
		{"17.05.1980", 1980, 5, 17, true},
		{"17-05-1980", 1980, 5, 17, true},
		{"05/17/1980", 1980, 5, 17, true}, // US order when day-first is impossible
		{"05/06/1980", 1980, 6, 5, true},  // ambiguous: day first
		{"17/05/80", 1980, 5, 17, true},
		{"17/05/05", 2005, 5, 17, true},
		{"800517", 1980, 5, 17, true},
		{"17 May 1980", 1980, 5, 17, true},
		{"May 17, 1980", 1980, 5, 17, true},
		{"17-sep-1980", 1980, 9, 17, true},
		{"2000-02-29", 2000, 2, 29, true},
		{"1900-02-29", 0, 0, 0, false}, // not a leap year
		{"1987-02-31", 0, 0, 0, false},
		{"19870231", 0, 0, 0, false},
		{"1987-13-01", 0, 0, 0, false},
		{"00/00/0000", 0, 0, 0, false},
		{"", 0, 0, 0, false},
		{"yesterday", 0, 0, 0, false},
		{"1987", 0, 0, 0, false},
		{"1-2-3-4", 0, 0, 0, false},
		{"١٩٨٠-٠٥-١٧", 0, 0, 0, false}, // non-ASCII digits are not read as a date
	}
	for _, tt := range tests {
		y, m, d, ok := ParseDate(tt.in)
		if ok != tt.ok || y != tt.y || m != tt.m || d != tt.d {
			t.Errorf("ParseDate(%q) = %d-%d-%d %v, want %d-%d-%d %v", tt.in, y, m, d, ok, tt.y, tt.m, tt.d, tt.ok)
		}
	}
}

// FuzzParseDate checks that any input parses without panicking, that
// what parses is a real date, and that the canonical form reads back the
// same. Run with: go test -fuzz FuzzParseDate ./match/
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"19800517", "1980-05-17", "17/05/1980", "05/17/1980", "17 May 1980", "2000-02-29T00:00:00Z", "31.12.99", "", "0/0/0", "May 5, 1980"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		y, m, d, ok := ParseDate(s)
		if !ok {
			return
		}
		if !validDate(y, m, d) {
			t.Fatalf("ParseDate(%q) = %d-%d-%d, not a valid date", s, y, m, d)
		}
		canon := FormatDate(y, m, d)
		y2, m2, d2, ok2 := ParseDate(canon)
		if !ok2 || y2 != y || m2 != m || d2 != d {
			t.Fatalf("ParseDate(%q) = %s, which reads back as %d-%d-%d %v", s, canon, y2, m2, d2, ok2)
		}
		v := prepDate(s)
		if v.key != canon {
			t.Fatalf("prepDate(%q).key = %q, want %q", s, v.key, canon)
		}
	})
}

func TestParsePartialDate(t *testing.T) {
	tests := []struct {
		in            string
		y, m, d, prec int
		ok            bool
	}{
		{"1980-05-17", 1980, 5, 17, PrecDay, true},
		{"1845", 1845, 0, 0, PrecYear, true},
		{"c. 1845", 1845, 0, 0, PrecYear, true},
		{"circa 1845", 1845, 0, 0, PrecYear, true},
		{"1845?", 1845, 0, 0, PrecYear, true},
		{"1845-03", 1845, 3, 0, PrecMonth, true},
		{"03/1845", 1845, 3, 0, PrecMonth, true},
		{"March 1845", 1845, 3, 0, PrecMonth, true},
		{"1845-13", 0, 0, 0, 0, false},
		{"0999", 0, 0, 0, 0, false},
		{"12345", 0, 0, 0, 0, false},
		{"45-03", 0, 0, 0, 0, false},
		{"london", 0, 0, 0, 0, false},
		{"", 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		y, m, d, prec, ok := ParsePartialDate(tt.in)
		if ok != tt.ok || y != tt.y || m != tt.m || d != tt.d || prec != tt.prec {
			t.Errorf("ParsePartialDate(%q) = %d %d %d prec %d %v, want %d %d %d prec %d %v", tt.in, y, m, d, prec, ok, tt.y, tt.m, tt.d, tt.prec, tt.ok)
		}
	}
}

// Records sharing one date known only to the year or month share one
// interned value, yet do not agree exactly: the dataset compares them
// rather than take equal values for the exact level.
func TestPartialDatesInternedNotExact(t *testing.T) {
	cfg := &Config{Fields: []Field{{Name: "dob", Kind: KindDate}}}
	recs := []Record{
		{ID: "a", Fields: map[string]string{"dob": "1845"}},
		{ID: "b", Fields: map[string]string{"dob": "1845"}},
		{ID: "c", Fields: map[string]string{"dob": "1845-03"}},
		{ID: "d", Fields: map[string]string{"dob": "1845-03"}},
		{ID: "e", Fields: map[string]string{"dob": "1845-03-17"}},
		{ID: "f", Fields: map[string]string{"dob": "1845-03-17"}},
	}
	ds, err := NewDataset(cfg, recs)
	if err != nil {
		t.Fatal(err)
	}
	lv := make([]uint8, 1)
	for _, tt := range []struct {
		i, j int
		want string
	}{{0, 1, "year"}, {2, 3, "one_component"}, {4, 5, "exact"}} {
		if ds.col[0][tt.i] != ds.col[0][tt.j] {
			t.Fatalf("%s and %s: not one interned value", recs[tt.i].ID, recs[tt.j].ID)
		}
		ds.levelsInto(tt.i, tt.j, lv)
		if got := ds.comps[0].levels[lv[0]]; got != tt.want {
			t.Errorf("%s ~ %s: %s, want %s", recs[tt.i].Fields["dob"], recs[tt.j].Fields["dob"], got, tt.want)
		}
	}
}
