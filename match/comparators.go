package match

import (
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/idgraph/idgraph/internal/names"
)

// value is one field of one record, prepared once so that comparing a
// pair does no parsing and little allocation.
type value struct {
	key    string // canonical form; exact level and term frequencies use it; "" = missing
	flat   []rune // key without spaces ("pridham street" = "pridhamstreet"); nil when slim
	tokens []string
	aux    string // name: nickname group; email: local part; phone: last 7 digits; date: raw digits
	aux2   string // email: domain
	y      int16  // date parts when the date parsed; y == 0 otherwise
	m, d   int8
	// slim values (phones, emails, dates, IDs, numbers: columns with
	// millions of distinct values at scale, compared on their key) keep
	// no runes or tokens; flatRunes derives the runes when a pair needs
	// them. A rune slice is 24 bytes and 4 a character: 100 bytes of a
	// phone's 150, and a gigabyte at 5,000,000 records.
	slim uint8
}

// How a slim value's flat form derives from its key.
const (
	notSlim    = iota
	slimKey    // the key's runes as they are (phone, email, date)
	slimSpaced // the key's runes without spaces (prepText's flat)
)

// flatRunes is v.flat, or a slim value's, decoded into buf (give it a
// stack array: [32]rune covers nearly every key without allocating).
func (v *value) flatRunes(buf []rune) []rune {
	if v.slim == notSlim {
		return v.flat
	}
	for _, r := range v.key {
		if r != ' ' || v.slim == slimKey {
			buf = append(buf, r)
		}
	}
	return buf
}

// flatString is the flat form as a string, for blocking keys.
func (v *value) flatString() string {
	switch v.slim {
	case slimKey:
		return v.key
	case slimSpaced:
		return stripSpaces(v.key)
	}
	return string(v.flat)
}

// slimDL is damerauLevenshtein on two values' flat forms.
func slimDL(a, b *value, limit int) int {
	var ba, bb [32]rune
	return damerauLevenshtein(a.flatRunes(ba[:0]), b.flatRunes(bb[:0]), limit)
}

func (v *value) null() bool { return v.key == "" }

// method is a comparator: how to prepare a raw value and the ordered
// levels a pair of values can fall into, strongest evidence first. The
// "null" level (either side missing) is added by the comparison and is
// not part of a method's list. Order matters: the first level whose test
// passes wins, and EM keeps the weights of the levels non-increasing in
// this order.
type method struct {
	levels  []string
	prepare func(raw string) value
	// compare returns an index into levels. pa and pb are the partner
	// field's values for the "swapped" level, nil when there is none.
	compare func(a, b, pa, pb *value) int
	// inexact, when set, says a value does not agree exactly even with
	// itself (a date known only to the year or month); levelsInto then
	// compares equal values instead of calling them exact.
	inexact func(v *value) bool
}

var methods = map[string]*method{
	"exact": {
		levels:  []string{"exact", "else"},
		prepare: prepSlim,
		compare: func(a, b, _, _ *value) int {
			if a.key == b.key {
				return 0
			}
			return 1
		},
	},
	"name": {
		levels:  []string{"exact", "nickname", "close", "swapped", "far", "initial", "else"},
		prepare: prepName,
		compare: compareName,
	},
	"fullname": {
		levels:  []string{"exact", "reordered", "name", "close", "initial", "far", "else"},
		prepare: prepFullName,
		compare: compareFullName,
	},
	"text": {
		levels:  []string{"exact", "close", "tokens", "swapped", "far", "else"},
		prepare: prepText,
		compare: compareText,
	},
	"jaro": {
		levels:  []string{"exact", "close", "far", "else"},
		prepare: prepText,
		compare: compareJaro,
	},
	// A place is compared on its first part: "wutbury, england" and
	// "york, yorkshire" name the town first and what it is in after.
	"place": {
		levels: []string{"exact", "close", "far", "else"},
		prepare: func(raw string) value {
			if i := strings.IndexByte(raw, ','); i > 0 {
				raw = raw[:i]
			}
			return prepText(raw)
		},
		compare: compareJaro,
	},
	"levenshtein": {
		levels:  []string{"exact", "one_edit", "two_edits", "else"},
		prepare: prepSlim,
		compare: func(a, b, _, _ *value) int {
			if a.key == b.key {
				return 0
			}
			switch slimDL(a, b, 2) {
			case 0, 1:
				return 1
			case 2:
				return 2
			}
			return 3
		},
	},
	"number": {
		levels:  []string{"exact", "one_edit", "else"},
		prepare: prepSlim,
		compare: func(a, b, _, _ *value) int {
			if a.key == b.key {
				return 0
			}
			if slimDL(a, b, 1) <= 1 {
				return 1
			}
			return 2
		},
	},
	"postcode": {
		levels:  []string{"exact", "one_edit", "prefix", "else"},
		prepare: prepText,
		compare: comparePostcode,
	},
	"date": {
		levels:  []string{"exact", "typo", "dm_swap", "years_apart", "one_component", "year", "same_year", "generation", "else"},
		prepare: prepDate,
		compare: compareDate,
		inexact: func(v *value) bool { return v.y != 0 && v.d == 0 },
	},
	"email": {
		levels:  []string{"exact", "local_part", "close", "else"},
		prepare: prepEmail,
		compare: compareEmail,
	},
	"phone": {
		levels:  []string{"exact", "last7", "one_edit", "else"},
		prepare: prepPhone,
		compare: func(a, b, _, _ *value) int {
			switch {
			case a.key == b.key:
				return 0
			case a.aux != "" && a.aux == b.aux:
				return 1
			case slimDL(a, b, 1) <= 1:
				return 2
			}
			return 3
		},
	},
}

func prepText(raw string) value {
	k := names.Normalize(raw)
	if k == "" {
		return value{}
	}
	return value{key: k, flat: []rune(stripSpaces(k)), tokens: strings.Fields(k)}
}

// prepSlim is prepText for a method that compares the key and its flat
// form only.
func prepSlim(raw string) value {
	k := names.Normalize(raw)
	if k == "" {
		return value{}
	}
	return value{key: k, slim: slimSpaced}
}

func prepName(raw string) value {
	v := prepText(raw)
	if len(v.tokens) > 0 {
		v.aux = names.NicknameGroup(v.tokens[0])
	}
	return v
}

func prepDate(raw string) value {
	if y, m, d, prec, ok := ParsePartialDate(raw); ok {
		k := FormatDate(y, m, d)
		switch prec { // a date known to the year or month keeps only what is known
		case PrecYear:
			k = k[:4]
		case PrecMonth:
			k = k[:6]
		}
		return value{key: k, slim: slimKey, y: int16(y), m: int8(m), d: int8(d)}
	}
	// Not a valid date (typos make 19870231): keep its digits, so the
	// typo level can still see that it is one keystroke off.
	k := digitsOf(raw)
	if len(k) < 4 {
		k = names.Normalize(raw)
	}
	if k == "" {
		return value{}
	}
	return value{key: k, slim: slimKey}
}

func prepEmail(raw string) value {
	k := normalizeEmail(raw)
	if k == "" {
		return value{}
	}
	v := value{key: k, slim: slimKey}
	if at := strings.LastIndexByte(k, '@'); at > 0 {
		local := k[:at]
		if plus := strings.IndexByte(local, '+'); plus > 0 { // sub-addressing names the same mailbox
			local = local[:plus]
		}
		v.aux, v.aux2 = local, k[at+1:]
	} else {
		v.aux = k
	}
	return v
}

func prepPhone(raw string) value {
	k := digitsOf(raw)
	if len(k) < 5 { // too short to be a phone number; treat as missing
		return value{}
	}
	v := value{key: k, slim: slimKey}
	if len(k) >= 7 {
		v.aux = k[len(k)-7:]
	}
	return v
}

// close1 is "one typo or very similar": equal without spaces, within one
// edit, or Jaro-Winkler at least jw.
func close1(a, b *value, jw float64) bool {
	if slices.Equal(a.flat, b.flat) {
		return true
	}
	if damerauLevenshtein(a.flat, b.flat, 1) <= 1 {
		return true
	}
	return jwAtLeast(a.flat, b.flat, jw)
}

// swapped reports whether the two records hold each other's values in
// this field and its partner (given name typed as surname and back).
func swapped(a, b, pa, pb *value, jw float64) bool {
	if pa == nil || pb == nil {
		return false
	}
	ab := !pb.null() && close1(a, pb, jw) // A's value is B's partner value
	ba := !pa.null() && close1(pa, b, jw) // A's partner value is B's value
	return (ab && (ba || pa.null())) || (ba && pb.null())
}

func compareName(a, b, pa, pb *value) int {
	initial := len(a.flat) == 1 || len(b.flat) == 1 // a one-rune key is its flat form
	switch {
	case a.key == b.key:
		return 0
	case a.aux != "" && a.aux == b.aux:
		return 1
	case !initial && (close1(a, b, 0.92) || partOf(a.tokens, b.tokens)): // "t" and "m" are one edit apart, and nothing alike
		return 2
	case swapped(a, b, pa, pb, 0.92):
		return 3
	case jwAtLeast(a.flat, b.flat, 0.8):
		return 4
	case initial && a.flat[0] == b.flat[0]:
		return 5
	}
	return 6
}

// partOf reports whether every word of one name is a word of the other:
// "hamilton" of "douglas-hamilton", "ann mary" of "mary ann".
func partOf(a, b []string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	for _, w := range a {
		if !slices.Contains(b, w) {
			return false
		}
	}
	return len(a) > 0
}

// prepFullName keeps the given name and surname found in a full name
// (aux, aux2), titles, suffixes and peerages left out.
func prepFullName(raw string) value {
	v := prepText(raw)
	if !v.null() {
		v.aux, v.aux2 = nameParts(raw)
	}
	return v
}

func compareFullName(a, b, _, _ *value) int {
	const exact, reordered, name, closeL, initial, far, other = 0, 1, 2, 3, 4, 5, 6
	if a.key == b.key {
		return exact
	}
	sa, sb := sortedTokens(a.tokens), sortedTokens(b.tokens)
	if sa == sb {
		return reordered
	}
	// "sir thomas clifford, 1st baron clifford" and "clifford, thomas":
	// the same given name and surname around other words.
	bothParts := a.aux != "" && a.aux2 != "" && b.aux != "" && b.aux2 != ""
	if bothParts && a.aux == b.aux && a.aux2 == b.aux2 {
		return name
	}
	ra, rb := []rune(sa), []rune(sb)
	if close1(a, b, 0.92) || jwAtLeast(ra, rb, 0.92) || tokenSet(a.tokens, b.tokens) >= 0.66 {
		return closeL
	}
	if bothParts {
		ga, gb := []rune(a.aux), []rune(b.aux)
		pa, pb := &value{flat: []rune(a.aux2)}, &value{flat: []rune(b.aux2)}
		sameSurname := a.aux2 == b.aux2 || close1(pa, pb, 0.92)
		if sameSurname && (len(ga) == 1 || len(gb) == 1) && ga[0] == gb[0] {
			return initial
		}
		if sameSurname && (names.NicknameGroup(a.aux) != "" && names.NicknameGroup(a.aux) == names.NicknameGroup(b.aux) ||
			close1(&value{flat: ga}, &value{flat: gb}, 0.92)) {
			return closeL
		}
	}
	if jwAtLeast(a.flat, b.flat, 0.8) || tokenSet(a.tokens, b.tokens) >= 0.5 {
		return far
	}
	return other
}

func sortedTokens(t []string) string {
	s := append([]string(nil), t...)
	sort.Strings(s)
	return strings.Join(s, "")
}

func compareText(a, b, pa, pb *value) int {
	switch {
	case a.key == b.key:
		return 0
	case slices.Equal(a.flat, b.flat) || damerauLevenshtein(a.flat, b.flat, textEdits(a, b)) <= textEdits(a, b) || jwAtLeast(a.flat, b.flat, 0.95):
		return 1
	case tokenSet(a.tokens, b.tokens) >= 0.5:
		return 2
	case swapped(a, b, pa, pb, 0.92):
		return 3
	case jwAtLeast(a.flat, b.flat, 0.85):
		return 4
	}
	return 5
}

func comparePostcode(a, b, _, _ *value) int {
	if a.key == b.key {
		return 0
	}
	if damerauLevenshtein(a.flat, b.flat, 1) <= 1 {
		return 1
	}
	if utf8.RuneCountInString(a.key) >= 3 && utf8.RuneCountInString(b.key) >= 3 && postcodeArea(a) == postcodeArea(b) {
		return 2
	}
	return 3
}

// postcodeArea is the part of a postcode that names an area: the outward
// code of a UK-style postcode (written with or without its space), or
// all but the last two characters of a one-word code (US ZIP3,
// Australian 20xx).
func postcodeArea(v *value) string {
	if len(v.tokens) > 1 {
		return v.tokens[0]
	}
	if ukInward(v.flat) { // one word: its flat form is its key
		return string(v.flat[:len(v.flat)-3])
	}
	return prefixRunes(v.key, max(2, utf8.RuneCountInString(v.key)-2))
}

// ukInward says whether a one-word code ends in a UK inward code (digit,
// letter, letter) after an outward code of 2 to 4 characters starting
// with a letter: "eb83ic" is "eb8 3ic".
func ukInward(r []rune) bool {
	n := len(r)
	if n < 5 || n > 7 || !unicode.IsLetter(r[0]) {
		return false
	}
	return unicode.IsDigit(r[n-3]) && unicode.IsLetter(r[n-2]) && unicode.IsLetter(r[n-1])
}

func compareDate(a, b, _, _ *value) int {
	const oneComponent, year, sameYear, generation, other = 4, 5, 6, 7, 8
	// A date known only to the year or month agrees at most as far as it
	// is known: never exactly, and the same year alone is its own, weaker
	// level (namesakes born the same year are common in old records).
	generationApart := a.y != 0 && b.y != 0 && (a.y-b.y >= 15 || b.y-a.y >= 15)
	if (a.y != 0 && a.d == 0) || (b.y != 0 && b.d == 0) {
		switch {
		case generationApart:
			return generation
		case a.y != b.y:
			return other
		case a.m != 0 && a.m == b.m:
			return oneComponent
		case a.m == 0 || b.m == 0:
			return year
		}
		return other
	}
	if a.key == b.key {
		return 0
	}
	if slimDL(a, b, 1) <= 1 {
		return 1
	}
	if a.y == 0 || b.y == 0 { // one is not a valid date: only the string levels apply
		return other
	}
	switch {
	case a.y == b.y && a.m == b.d && a.d == b.m:
		return 2
	case a.m == b.m && a.d == b.d:
		return 3
	case a.y == b.y && (a.m == b.m || a.d == b.d || nearDays(a, b, 35)):
		// one component agreeing, or a month and a day each a little off
		// ("1991-04-05" and "1991-05-06"): a mistyped date, as often as a
		// namesake's
		return oneComponent
	case a.y == b.y && (a.m == 1 && a.d == 1 || b.m == 1 && b.d == 1):
		// 1 January often stands for "some day that year" (catalogues
		// store a year-precision date as YYYY-01-01). Two full dates of
		// one year that differ in month and day disagree: namesakes are
		// born the same year.
		return year
	case a.y == b.y:
		return sameYear
	case generationApart:
		// A father and his son of one name: no typo makes this.
		return generation
	}
	return other
}

// nearDays reports whether two full dates of one year are at most n days
// apart.
func nearDays(a, b *value, n int) bool {
	da := time.Date(int(a.y), time.Month(a.m), int(a.d), 0, 0, 0, 0, time.UTC)
	db := time.Date(int(b.y), time.Month(b.m), int(b.d), 0, 0, 0, 0, time.UTC)
	d := da.Sub(db)
	return d <= time.Duration(n)*24*time.Hour && d >= -time.Duration(n)*24*time.Hour
}

func compareJaro(a, b, _, _ *value) int {
	switch {
	case a.key == b.key:
		return 0
	case close1(a, b, 0.92):
		return 1
	case jwAtLeast(a.flat, b.flat, 0.8):
		return 2
	}
	return 3
}

func compareEmail(a, b, _, _ *value) int {
	switch {
	case a.key == b.key:
		return 0
	case a.aux != "" && a.aux == b.aux:
		return 1
	case a.aux2 == b.aux2 && jwAtLeast([]rune(a.aux), []rune(b.aux), 0.9),
		slimDL(a, b, 1) <= 1:
		return 2
	}
	return 3
}

// textEdits allows two typos in longer text but one in short text, where
// two edits can turn one word into an unrelated one.
func textEdits(a, b *value) int {
	if min(len(a.flat), len(b.flat)) < 8 {
		return 1
	}
	return 2
}
