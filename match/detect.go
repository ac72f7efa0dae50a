package match

import (
	"github.com/idgraph/idgraph/internal/names"

	"fmt"
	"strings"
)

// Automatic configuration: infer each column's kind from its name and
// its values, so that an unfamiliar CSV links with no hand-written
// configuration. The name is the strongest hint ("dob", "surname",
// "zip"), but a name is only trusted when the values agree (a "date"
// column that does not parse as dates is treated as text); columns with
// uninformative names are judged on their values alone.

// Detection is what Detect concluded about one column and why.
type Detection struct {
	Column string `json:"column"`
	Kind   Kind   `json:"kind"`
	Reason string `json:"reason"`
}

// nameHints map normalized column-name fragments to kinds, checked in
// order (so "street_number" is a number before it is a street).
var nameHints = []struct {
	kind  Kind
	parts []string
}{
	{KindIgnore, []string{"recid", "recordid", "uuid", "rowid"}},
	{KindID, []string{"socsec", "ssn", "nationalid", "passport", "licence", "license", "taxid", "medicare", "nhs", "insurancenumber"}},
	{KindEmail, []string{"email", "mail"}},
	{KindPhone, []string{"phone", "mobile", "cell", "tel", "fax"}},
	{KindGivenName, []string{"givenname", "given", "firstname", "first", "fname", "forename", "middlename"}},
	{KindSurname, []string{"surname", "lastname", "last", "lname", "familyname", "family"}},
	{KindDate, []string{"dateofbirth", "dob", "birth", "bday", "date"}},
	{KindPostcode, []string{"postcode", "postalcode", "zipcode", "zip", "postal", "plz"}},
	{KindStreetNumber, []string{"streetnumber", "streetno", "housenumber", "houseno", "housenum", "streetnum"}},
	{KindAddress, []string{"address", "street", "addr", "line1", "line2"}},
	{KindCity, []string{"suburb", "city", "town", "locality"}},
	{KindState, []string{"state", "province", "region", "county", "country"}},
	{KindFullName, []string{"fullname", "name"}},
}

// profile holds what a column's values look like.
type profile struct {
	n, distinct                    int
	date, email, digits, phoneLike float64 // shares of non-empty values
	avgLen, avgTokens, streetWords float64
	sameLen                        float64 // share with the most common length
	commonLen                      int
}

var streetWords = map[string]bool{
	"street": true, "st": true, "road": true, "rd": true, "avenue": true, "ave": true, "place": true, "pl": true,
	"crescent": true, "cres": true, "circuit": true, "drive": true, "dr": true, "court": true, "ct": true, "lane": true,
	"ln": true, "way": true, "close": true, "parade": true, "terrace": true, "boulevard": true, "blvd": true,
	"highway": true, "square": true, "grove": true, "strasse": true, "rue": true, "calle": true, "via": true,
}

func profileOf(vals []string) profile {
	var p profile
	seen := map[string]bool{}
	lens := map[int]int{}
	for _, raw := range vals {
		v := strings.TrimSpace(raw)
		if v == "" {
			continue
		}
		p.n++
		seen[strings.ToLower(v)] = true
		if _, _, _, ok := ParseDate(v); ok {
			p.date++
		}
		if at := strings.IndexByte(v, '@'); at > 0 && strings.Contains(v[at:], ".") && !strings.Contains(v, " ") {
			p.email++
		}
		d := digitsOf(v)
		if d == v {
			p.digits++
		}
		if len(d) >= 7 && len(d) <= 15 && strings.Trim(v, "0123456789 +-().") == "" && d != v {
			p.phoneLike++
		}
		n := names.Normalize(v)
		toks := strings.Fields(n)
		p.avgTokens += float64(len(toks))
		p.avgLen += float64(len([]rune(v)))
		lens[len(v)]++
		for _, t := range toks {
			if streetWords[t] {
				p.streetWords++
				break
			}
		}
	}
	p.distinct = len(seen)
	if p.n == 0 {
		return p
	}
	f := float64(p.n)
	p.date /= f
	p.email /= f
	p.digits /= f
	p.phoneLike /= f
	p.avgLen /= f
	p.avgTokens /= f
	p.streetWords /= f
	for l, c := range lens {
		if float64(c)/f > p.sameLen {
			p.sameLen, p.commonLen = float64(c)/f, l
		}
	}
	return p
}

func normColumn(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Detect infers a configuration from a header and sample rows. idColumn,
// if not empty, names the record-ID column (excluded from comparison);
// otherwise a column named like an ID whose values are all distinct is
// taken as the record ID.
func Detect(header []string, rows [][]string, idColumn string) (*Config, []Detection) {
	cfg := &Config{IDColumn: idColumn}
	var dets []Detection
	nrows := len(rows)
	for ci, col := range header {
		vals := make([]string, 0, nrows)
		for _, r := range rows {
			if ci < len(r) {
				vals = append(vals, r[ci])
			}
		}
		kind, reason := detectColumn(col, vals, idColumn)
		if kind == KindIgnore && cfg.IDColumn == "" && strings.Contains(reason, "record id") {
			cfg.IDColumn = col
		}
		dets = append(dets, Detection{Column: col, Kind: kind, Reason: reason})
		if kind != KindIgnore {
			cfg.Fields = append(cfg.Fields, Field{Name: col, Kind: kind})
		}
	}
	pairSwaps(cfg.Fields)
	cfg.Blocking = DefaultBlocking(cfg.Fields)
	return cfg, dets
}

// pairSwaps links given name with surname and the first two address
// lines as swap partners: values typed into the neighbouring field are a
// common entry error.
func pairSwaps(fs []Field) {
	find := func(k Kind, nth int) int {
		for i := range fs {
			if fs[i].Kind == k {
				if nth == 0 {
					return i
				}
				nth--
			}
		}
		return -1
	}
	link := func(a, b int) {
		if a >= 0 && b >= 0 {
			fs[a].Swap, fs[b].Swap = fs[b].Name, fs[a].Name
		}
	}
	link(find(KindGivenName, 0), find(KindSurname, 0))
	link(find(KindAddress, 0), find(KindAddress, 1))
}

func detectColumn(col string, vals []string, idColumn string) (Kind, string) {
	p := profileOf(vals)
	if idColumn != "" && col == idColumn {
		return KindIgnore, "record id (given)"
	}
	if p.n == 0 {
		return KindIgnore, "no values"
	}
	if p.distinct == 1 && len(vals) > 1 {
		return KindIgnore, "one value in every row"
	}
	unique := float64(p.distinct) / float64(p.n)
	name := normColumn(col)
	for _, h := range nameHints {
		for _, part := range h.parts {
			if !strings.Contains(name, part) {
				continue
			}
			if k, why, ok := confirm(h.kind, p, unique, col); ok {
				return k, why
			}
		}
	}
	if (name == "id" || strings.HasSuffix(name, "id") || strings.HasSuffix(name, "key")) && unique == 1 && idColumn == "" {
		return KindIgnore, "record id (named like an id, every value distinct)"
	}
	return byValues(p, unique)
}

// confirm accepts a name hint when the values do not contradict it.
func confirm(k Kind, p profile, unique float64, col string) (Kind, string, bool) {
	hint := fmt.Sprintf("name %q", col)
	switch k {
	case KindIgnore:
		if unique == 1 {
			return k, "record id (" + hint + ", every value distinct)", true
		}
		return "", "", false
	case KindDate:
		return k, hint + fmt.Sprintf(", %.0f%% parse as dates", 100*p.date), p.date >= 0.5
	case KindEmail:
		return k, hint + fmt.Sprintf(", %.0f%% look like emails", 100*p.email), p.email >= 0.5
	case KindPhone:
		return k, hint, p.phoneLike+p.digits >= 0.5
	case KindStreetNumber, KindPostcode:
		return k, hint, p.avgLen <= 10
	}
	return k, hint, true
}

// byValues classifies a column with an uninformative name.
func byValues(p profile, unique float64) (Kind, string) {
	switch {
	case p.email >= 0.8:
		return KindEmail, "values look like emails"
	case p.phoneLike >= 0.6:
		return KindPhone, "values look like phone numbers"
	case p.date >= 0.8:
		return KindDate, "values parse as dates"
	case p.digits >= 0.9 && p.avgLen >= 6 && unique >= 0.5:
		return KindID, "long digit strings, high cardinality"
	case p.digits >= 0.9 && p.sameLen >= 0.9 && p.commonLen >= 4 && p.commonLen <= 6:
		return KindPostcode, "fixed-length digit codes"
	case p.digits >= 0.9 && p.avgLen <= 5:
		return KindStreetNumber, "short numbers"
	case p.streetWords >= 0.3:
		return KindAddress, "values contain street words"
	case p.avgLen <= 4 && p.distinct <= 100:
		return KindState, "short codes, few distinct values"
	case p.avgTokens >= 1.5:
		return KindText, "multi-word text"
	}
	return KindText, "text"
}
