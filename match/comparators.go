package match

import (
	"slices"
	"sort"
	"strings"
)

// value is one field of one record, prepared once so that comparing a
// pair does no parsing or allocation.
type value struct {
	key    string // canonical form; exact level and term frequencies use it; "" = missing
	runes  []rune // key as runes
	flat   []rune // key without spaces ("pridham street" = "pridhamstreet")
	tokens []string
	aux    string // name: nickname group; email: local part; phone: last 7 digits; date: raw digits
	aux2   string // email: domain
	y      int16  // date parts when the date parsed; y == 0 otherwise
	m, d   int8
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
}

var methods = map[string]*method{
	"exact": {
		levels:  []string{"exact", "else"},
		prepare: prepText,
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
		levels:  []string{"exact", "reordered", "close", "far", "else"},
		prepare: prepText,
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
		compare: func(a, b, _, _ *value) int {
			switch {
			case a.key == b.key:
				return 0
			case close1(a, b, 0.92):
				return 1
			case jwAtLeast(a.flat, b.flat, 0.8):
				return 2
			}
			return 3
		},
	},
	"levenshtein": {
		levels:  []string{"exact", "one_edit", "two_edits", "else"},
		prepare: prepText,
		compare: func(a, b, _, _ *value) int {
			if a.key == b.key {
				return 0
			}
			switch damerauLevenshtein(a.flat, b.flat, 2) {
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
		prepare: prepText,
		compare: func(a, b, _, _ *value) int {
			if a.key == b.key {
				return 0
			}
			if damerauLevenshtein(a.flat, b.flat, 1) <= 1 {
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
		levels:  []string{"exact", "typo", "dm_swap", "years_apart", "one_component", "else"},
		prepare: prepDate,
		compare: compareDate,
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
			case damerauLevenshtein(a.runes, b.runes, 1) <= 1:
				return 2
			}
			return 3
		},
	},
}

func prepText(raw string) value {
	k := normalize(raw)
	if k == "" {
		return value{}
	}
	r := []rune(k)
	v := value{key: k, runes: r, flat: r, tokens: strings.Fields(k)}
	if strings.Contains(k, " ") {
		v.flat = []rune(stripSpaces(k))
	}
	return v
}

func prepName(raw string) value {
	v := prepText(raw)
	if len(v.tokens) > 0 {
		v.aux = nicknameGroup(v.tokens[0])
	}
	return v
}

func prepDate(raw string) value {
	if y, m, d, ok := ParseDate(raw); ok {
		k := FormatDate(y, m, d)
		r := []rune(k) // flat shares runes: a key without spaces is its own flat form
		return value{key: k, runes: r, flat: r, y: int16(y), m: int8(m), d: int8(d)}
	}
	// Not a valid date (typos make 19870231): keep its digits, so the
	// typo level can still see that it is one keystroke off.
	k := digitsOf(raw)
	if len(k) < 4 {
		k = normalize(raw)
	}
	if k == "" {
		return value{}
	}
	r := []rune(k)
	return value{key: k, runes: r, flat: r}
}

func prepEmail(raw string) value {
	k := normalizeEmail(raw)
	if k == "" {
		return value{}
	}
	r := []rune(k)
	v := value{key: k, runes: r, flat: r}
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
	r := []rune(k)
	v := value{key: k, runes: r, flat: r}
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
	switch {
	case a.key == b.key:
		return 0
	case a.aux != "" && a.aux == b.aux:
		return 1
	case close1(a, b, 0.92):
		return 2
	case swapped(a, b, pa, pb, 0.92):
		return 3
	case jwAtLeast(a.flat, b.flat, 0.8):
		return 4
	case (len(a.runes) == 1 || len(b.runes) == 1) && a.runes[0] == b.runes[0]:
		return 5
	}
	return 6
}

func compareFullName(a, b, _, _ *value) int {
	if a.key == b.key {
		return 0
	}
	sa, sb := sortedTokens(a.tokens), sortedTokens(b.tokens)
	if sa == sb {
		return 1
	}
	ra, rb := []rune(sa), []rune(sb)
	if close1(a, b, 0.92) || jwAtLeast(ra, rb, 0.92) || tokenSet(a.tokens, b.tokens) >= 0.66 {
		return 2
	}
	if jwAtLeast(a.flat, b.flat, 0.8) || tokenSet(a.tokens, b.tokens) >= 0.5 {
		return 3
	}
	return 4
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
	// The outward code of a UK-style postcode, or all but the last two
	// characters of a one-word code (US ZIP3, Australian 20xx), name the
	// same area.
	pre := func(v *value) string {
		if len(v.tokens) > 1 {
			return v.tokens[0]
		}
		return prefixRunes(v.key, max(2, len(v.runes)-2))
	}
	if len(a.runes) >= 3 && len(b.runes) >= 3 && pre(a) == pre(b) {
		return 2
	}
	return 3
}

func compareDate(a, b, _, _ *value) int {
	if a.key == b.key {
		return 0
	}
	if damerauLevenshtein(a.runes, b.runes, 1) <= 1 {
		return 1
	}
	if a.y == 0 || b.y == 0 { // one is not a valid date: only the string levels apply
		return 5
	}
	switch {
	case a.y == b.y && a.m == b.d && a.d == b.m:
		return 2
	case a.m == b.m && a.d == b.d:
		return 3
	case a.y == b.y && (a.m == b.m || a.d == b.d):
		return 4
	}
	return 5
}

func compareEmail(a, b, _, _ *value) int {
	switch {
	case a.key == b.key:
		return 0
	case a.aux != "" && a.aux == b.aux:
		return 1
	case a.aux2 == b.aux2 && jwAtLeast([]rune(a.aux), []rune(b.aux), 0.9),
		damerauLevenshtein(a.runes, b.runes, 1) <= 1:
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
