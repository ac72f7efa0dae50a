package match

import (
	"fmt"
	"strconv"
	"strings"
)

var monthNames = map[string]int{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
	"january": 1, "february": 2, "march": 3, "april": 4, "june": 6, "july": 7,
	"august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
}

// ParseDate reads a calendar date in the formats people and systems write
// birthdays in: YYYYMMDD, DDMMYYYY, YYYY-MM-DD (with an optional time
// after T or a space), YYYY/MM/DD, DD/MM/YYYY, DD.MM.YYYY, DD-MM-YYYY,
// MM/DD/YYYY when the day cannot be a month, two-digit years, and month
// names ("5 Jan 1980", "Jan 5, 1980"). Day-first is preferred when both
// readings are valid, as in most of the world; the day/month-swapped
// comparison level absorbs the remaining ambiguity. ok is false for
// anything that is not a real date (e.g. 1999-02-30).
func ParseDate(s string) (y, m, d int, ok bool) {
	s = strings.TrimSpace(strings.ToLower(s))
	if len(s) > 64 {
		return 0, 0, 0, false
	}
	// Drop a time of day: "2001-02-03T04:05:06Z", "2001-02-03 04:05".
	if i := strings.IndexAny(s, "t "); i == 10 && len(s) > 10 && isDigits(s[:4]) {
		s = s[:10]
	}
	if isDigits(s) {
		switch len(s) {
		case 8:
			a, _ := strconv.Atoi(s[:4])
			if a >= 1000 && validDate(a, atoi(s[4:6]), atoi(s[6:8])) {
				return a, atoi(s[4:6]), atoi(s[6:8]), true
			}
			y, m, d = atoi(s[4:8]), atoi(s[2:4]), atoi(s[0:2])
			if validDate(y, m, d) {
				return y, m, d, true
			}
		case 6: // YYMMDD
			y, m, d = expandYear(atoi(s[:2])), atoi(s[2:4]), atoi(s[4:6])
			if validDate(y, m, d) {
				return y, m, d, true
			}
		}
		return 0, 0, 0, false
	}
	parts := strings.FieldsFunc(s, func(r rune) bool {
		return r == '-' || r == '/' || r == '.' || r == ' ' || r == ','
	})
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	// A month name may sit in any position; the other two are day and year.
	for i, p := range parts {
		mn, isName := monthNames[p]
		if !isName {
			continue
		}
		rest := make([]string, 0, 2)
		for j, q := range parts {
			if j != i {
				rest = append(rest, q)
			}
		}
		if !isDigits(rest[0]) || !isDigits(rest[1]) {
			return 0, 0, 0, false
		}
		dd, yy := rest[0], rest[1]
		if len(rest[0]) == 4 {
			dd, yy = rest[1], rest[0]
		}
		y, d = atoi(yy), atoi(dd)
		if len(yy) <= 2 {
			y = expandYear(y)
		}
		if len(dd) > 2 || !validDate(y, mn, d) {
			return 0, 0, 0, false
		}
		return y, mn, d, true
	}
	for _, p := range parts {
		if !isDigits(p) || len(p) > 4 {
			return 0, 0, 0, false
		}
	}
	a, b, c := atoi(parts[0]), atoi(parts[1]), atoi(parts[2])
	switch {
	case len(parts[0]) == 4: // Y-M-D
		y, m, d = a, b, c
		if len(parts[1]) > 2 || len(parts[2]) > 2 {
			return 0, 0, 0, false
		}
	case len(parts[0]) <= 2 && len(parts[1]) <= 2 && (len(parts[2]) == 4 || len(parts[2]) == 2):
		y = c
		if len(parts[2]) == 2 {
			y = expandYear(c)
		}
		m, d = b, a // day first
		if !validDate(y, m, d) {
			m, d = a, b // US order when the first part cannot be a day-first reading
		}
	default:
		return 0, 0, 0, false
	}
	if !validDate(y, m, d) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// FormatDate writes the canonical YYYYMMDD form used as the comparison key.
func FormatDate(y, m, d int) string { return fmt.Sprintf("%04d%02d%02d", y, m, d) }

func expandYear(y int) int {
	// A pivot of 30 suits birthdays: "05" is 2005, "75" is 1975.
	if y < 30 {
		return 2000 + y
	}
	return 1900 + y
}

func validDate(y, m, d int) bool {
	if y < 1000 || y > 2999 || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= daysIn(y, m)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// Date precisions of ParsePartialDate.
const (
	PrecYear  = 1
	PrecMonth = 2
	PrecDay   = 3
)

// ParsePartialDate reads a date known to the day (anything ParseDate
// reads), to the month ("1845-03", "03/1845", "march 1845") or only to
// the year ("1845", "c. 1845", "circa 1845", "1845?"), as historical and
// hand-kept records give them. m and d are 0 when not known.
func ParsePartialDate(s string) (y, m, d, prec int, ok bool) {
	if y, m, d, ok := ParseDate(s); ok {
		return y, m, d, PrecDay, true
	}
	s = strings.TrimSpace(strings.ToLower(s))
	for _, p := range []string{"circa ", "c. ", "c.", "ca. ", "ca ", "about ", "abt "} {
		s = strings.TrimSpace(strings.TrimPrefix(s, p))
	}
	s = strings.TrimSuffix(s, "?")
	if len(s) == 4 && isDigits(s) {
		if y = atoi(s); y >= 1000 && y <= 2999 {
			return y, 0, 0, PrecYear, true
		}
		return 0, 0, 0, 0, false
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '/' || r == '.' || r == ' ' || r == ',' })
	if len(parts) != 2 {
		return 0, 0, 0, 0, false
	}
	ys, ms := parts[0], parts[1]
	if len(ms) == 4 {
		ys, ms = ms, ys
	}
	if len(ys) != 4 || !isDigits(ys) {
		return 0, 0, 0, 0, false
	}
	y = atoi(ys)
	if mn, named := monthNames[ms]; named {
		m = mn
	} else if isDigits(ms) && len(ms) <= 2 {
		m = atoi(ms)
	}
	if y < 1000 || y > 2999 || m < 1 || m > 12 {
		return 0, 0, 0, 0, false
	}
	return y, m, 0, PrecMonth, true
}
