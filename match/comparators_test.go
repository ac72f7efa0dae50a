package match

import (
	"slices"
	"testing"

	"github.com/idgraph/idgraph/internal/names"
)

// TestJWAtLeast: the bounded test agrees with the full similarity on
// every pair of the synthetic given names (and a few of other scripts),
// at thresholds around those the comparators use.
func TestJWAtLeast(t *testing.T) {
	words := append(slices.Clone(synthGiven[:60]), "marhta", "иванов", "иванова", "王小明", "dicksonx")
	for _, a := range words {
		for _, b := range words {
			ra, rb := []rune(a), []rune(b)
			for _, th := range []float64{0.8, 0.85, 0.9, 0.92, 0.95} {
				if got, want := jwAtLeast(ra, rb, th), names.JaroWinkler(ra, rb) >= th; got != want {
					t.Errorf("jwAtLeast(%q, %q, %.2f) = %v, JaroWinkler says %v", a, b, th, got, want)
				}
			}
		}
	}
}

func TestDamerauLevenshtein(t *testing.T) {
	tests := []struct {
		a, b  string
		limit int
		want  int
	}{
		{"smith", "smith", 2, 0},
		{"smith", "smtih", 2, 1}, // transposition
		{"smith", "smyth", 2, 1},
		{"smith", "smiths", 2, 1},
		{"smith", "sith", 2, 1},
		{"smith", "jones", 2, 3}, // over the limit: limit+1
		{"", "ab", 2, 2},
		{"ab", "", 1, 2},
		{"müller", "muller", 1, 1},
		{"19870231", "19870213", 1, 1},
		{"abcdef", "badcfe", 5, 3},
	}
	for _, tt := range tests {
		if got := damerauLevenshtein([]rune(tt.a), []rune(tt.b), tt.limit); got != tt.want {
			t.Errorf("dl(%q, %q, %d) = %d, want %d", tt.a, tt.b, tt.limit, got, tt.want)
		}
	}
}

func TestSoundexPhonetic(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"robert", "R163"}, {"rupert", "R163"}, {"ashcraft", "A261"}, {"tymczak", "T522"}, {"pfister", "P236"},
		{"", ""}, {"иван", "ива"},
	} {
		if got := soundex(tt.in); got != tt.want {
			t.Errorf("soundex(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if phonetic("philips") != phonetic("filips") || phonetic("knight") != phonetic("night") {
		t.Errorf("phonetic keys differ for sound-alikes: %q %q %q %q", phonetic("philips"), phonetic("filips"), phonetic("knight"), phonetic("night"))
	}
}

// level runs a method on two raw values (and optional partner values)
// and returns the level name, "null" when either is missing.
func level(t *testing.T, method, a, b string, partners ...string) string {
	t.Helper()
	m := methods[method]
	va, vb := m.prepare(a), m.prepare(b)
	if va.null() || vb.null() {
		return "null"
	}
	var pa, pb *value
	if len(partners) == 2 {
		x, y := m.prepare(partners[0]), m.prepare(partners[1])
		pa, pb = &x, &y
	}
	return m.levels[m.compare(&va, &vb, pa, pb)]
}

func TestComparators(t *testing.T) {
	tests := []struct {
		method, a, b string
		partners     []string
		want         string
	}{
		// names
		{"name", "John", "john", nil, "exact"},
		{"name", "José", "Jose", nil, "exact"},
		{"name", "bob", "Robert", nil, "nickname"},
		{"name", "bill", "will", nil, "nickname"},
		{"name", "jonathon", "jonathan", nil, "close"},
		{"name", "elki", "elk i", nil, "close"},
		{"name", "J", "john", nil, "initial"},
		{"name", "t", "m", nil, "else"}, // one edit apart, but initials of different names
		{"name", "madeline", "mason", []string{"masno", "madeline"}, "swapped"},
		{"name", "smith", "jones", nil, "else"},
		{"name", "", "smith", nil, "null"},
		{"name", "  ", "smith", nil, "null"},
		{"name", "Иванов", "иванов", nil, "exact"},
		{"name", "Иванов", "Иванова", nil, "close"},
		{"name", "王小明", "李小龙", nil, "else"},
		{"name", "douglas-hamilton", "hamilton", nil, "close"}, // one part of a double-barrelled name
		{"name", "anne", "Mary Anne", nil, "close"},
		{"name", "ann mary", "mary ann", nil, "close"},
		{"name", "hamilton", "douglas-hamiltons", nil, "else"}, // a part is a whole word, not a prefix
		// full names
		{"fullname", "John Smith", "john smith", nil, "exact"},
		{"fullname", "Smith, John", "John Smith", nil, "reordered"},
		{"fullname", "John Smith", "Jon Smith", nil, "close"},
		{"fullname", "John Smith", "Mary Jones", nil, "else"},
		{"fullname", "Sir Thomas Clifford, 1st Baron Clifford of Chudleigh", "clifford, thomas", nil, "name"},
		{"fullname", "Rev. Thomas H. Clifford Jr", "thomas clifford", nil, "name"},
		{"fullname", "t. clifford", "Thomas Henry Clifford, 2nd Baron Clifford", nil, "initial"},
		{"fullname", "tom clifford", "Sir Thomas Henry Clifford", nil, "close"}, // nickname, same surname
		{"fullname", "thomas clifford", "thomas williams", nil, "else"},
		// dates
		{"date", "1980-05-17", "17/05/1980", nil, "exact"},
		{"date", "19800517", "1980-05-17", nil, "exact"},
		{"date", "19800517", "19800518", nil, "typo"},
		{"date", "1980-05-17", "1980-07-15", nil, "same_year"}, // namesakes born one year
		{"date", "1980-05-17", "1981-07-15", nil, "else"},
		{"date", "1950-05-17", "1980-07-15", nil, "generation"}, // a father and his son
		{"date", "1950-05-17", "1980", nil, "generation"},
		{"date", "1966-05-17", "1980-07-15", nil, "else"},
		{"date", "1980-05-17", "1980", nil, "year"},             // known to the year only
		{"date", "1980", "c. 1980", nil, "year"},                // never exact: both known to the year only
		{"date", "1980-05-17", "1980-05", nil, "one_component"}, // known to the month
		{"date", "1980-05", "1980-06", nil, "else"},
		{"date", "1980-05-17", "1979", nil, "else"},
		{"date", "1980-01-01", "1980-06-30", nil, "year"}, // 1 January: a year-precision placeholder
		{"date", "1980-05-12", "1980-12-05", nil, "dm_swap"},
		{"date", "1980-05-17", "1975-05-17", nil, "years_apart"},
		{"date", "1980-05-17", "1980-11-17", nil, "one_component"},
		{"date", "1991-04-05", "1991-05-06", nil, "one_component"}, // month and day each one off
		{"date", "1991-12-30", "1991-11-26", nil, "one_component"}, // 34 days
		{"date", "1991-04-05", "1991-05-11", nil, "same_year"},     // 36 days
		{"date", "19870231", "19870231", nil, "exact"},             // invalid but identical
		{"date", "19870231", "19870213", nil, "typo"},              // invalid, one transposition away
		{"date", "not a date", "1980-01-01", nil, "else"},
		{"date", "", "1980-01-01", nil, "null"},
		// postcodes and numbers
		{"postcode", "4881", "4818", nil, "one_edit"},
		{"postcode", "2000", "2077", nil, "prefix"},
		{"postcode", "SW1A 1AA", "SW1A 2BB", nil, "prefix"},
		{"postcode", "EB83IC", "eb8 3bs", nil, "prefix"}, // a UK postcode without its space
		{"postcode", "eb83ic", "eb84ic", nil, "one_edit"},
		{"postcode", "eb83ic", "ec9 4ab", nil, "else"},
		{"postcode", "2000", "3000", nil, "one_edit"},
		{"postcode", "2000", "5999", nil, "else"},
		{"number", "12", "21", nil, "one_edit"},
		{"levenshtein", "6988048", "6988084", nil, "one_edit"},
		{"levenshtein", "6988048", "6908084", nil, "two_edits"},
		// email and phone
		{"email", "Ann.Lee@Example.com", "ann.lee@example.com", nil, "exact"},
		{"email", "ann.lee@example.com", "ann.lee@work.org", nil, "local_part"},
		{"email", "ann.lee+shop@example.com", "ann.lee@other.com", nil, "local_part"},
		{"email", "ann.lee@example.com", "ann.le@example.com", nil, "close"},
		{"email", "ann@example.com", "bob@example.com", nil, "else"},
		{"phone", "+61 2 9999 1234", "61299991234", nil, "exact"},
		{"phone", "+61 2 9999 1234", "(02) 9999 1234", nil, "last7"},
		{"phone", "0299991234", "0299991243", nil, "one_edit"},
		{"phone", "123", "0299991234", nil, "null"}, // too short to be a phone
		// text
		{"text", "pridham street", "pridhamstreet", nil, "close"},
		{"text", "pridham street", "pridham tstreet", nil, "close"},
		{"text", "unit 5 high street north", "high street north", nil, "tokens"},
		{"text", "oliver street", "forbes street", nil, "else"},
		{"jaro", "granville", "gran ville", nil, "close"},
		{"place", "Wutbury, England", "wutbury", nil, "exact"}, // the town first, what it is in after
		{"place", "york, yorkshire", "yorke", nil, "close"},
		{"place", "york", "somerset", nil, "else"},
		{"place", ", england", "york", nil, "else"},
		{"exact", "NSW", "nsw", nil, "exact"},
		{"exact", "nsw", "vic", nil, "else"},
	}
	for _, tt := range tests {
		if got := level(t, tt.method, tt.a, tt.b, tt.partners...); got != tt.want {
			t.Errorf("%s(%q, %q) = %s, want %s", tt.method, tt.a, tt.b, got, tt.want)
		}
		// Levels must not depend on argument order.
		var rp []string
		if tt.partners != nil {
			rp = []string{tt.partners[1], tt.partners[0]}
		}
		if got := level(t, tt.method, tt.b, tt.a, rp...); got != tt.want {
			t.Errorf("%s(%q, %q) reversed = %s, want %s", tt.method, tt.b, tt.a, got, tt.want)
		}
	}
}

// Every method's first level must be "exact" and its last "else": the
// scorer's TF adjustment and EM's monotonicity rely on that order.
func TestMethodLevelOrder(t *testing.T) {
	for name, m := range methods {
		if m.levels[0] != "exact" || m.levels[len(m.levels)-1] != "else" {
			t.Errorf("method %s levels %v: want exact first and else last", name, m.levels)
		}
	}
}
