package match

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/idgraph/idgraph/internal/names"
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
	// Before given and surname: "fullname" contains "lname".
	{KindFullName, []string{"fullname", "completename", "displayname", "personname"}},
	{KindGivenName, []string{"givenname", "given", "firstname", "first", "fname", "forename", "middlename"}},
	{KindSurname, []string{"surname", "lastname", "last", "lname", "familyname", "family"}},
	{KindDate, []string{"dateofbirth", "dob", "birth", "bday", "date", "born", "year"}},
	{KindPostcode, []string{"postcode", "postalcode", "zipcode", "zip", "postal", "plz"}},
	{KindStreetNumber, []string{"streetnumber", "streetno", "housenumber", "houseno", "housenum", "streetnum"}},
	{KindAddress, []string{"address", "street", "addr", "line1", "line2"}},
	{KindCity, []string{"suburb", "city", "town", "locality", "place", "hometown", "residence", "village"}},
	{KindState, []string{"state", "province", "region", "county", "country"}},
	{KindCategory, []string{"gender", "sex", "month", "day"}}, // "birth_day": a part of a date held apart
	{KindFullName, []string{"name"}},
}

// profile holds what a column's values look like.
type profile struct {
	n, distinct                    int
	date, email, digits, phoneLike float64 // shares of non-empty values
	partialDate                    float64 // known to the year or month only
	alpha, code                    float64 // letters only (no digits); letter-and-digit codes (UK postcodes)
	multi, lex                     float64 // two or more name words; first name word a known given name
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
		} else if _, _, _, _, ok := ParsePartialDate(v); ok {
			p.partialDate++
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
		if d == "" {
			p.alpha++
		} else if postcodeLike(v, d) {
			p.code++
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
		if d == "" {
			if w := personWords(v); len(w) > 0 {
				if len(w) > 1 {
					p.multi++
				}
				if knownGiven(w[0]) {
					p.lex++
				}
			}
		}
	}
	p.distinct = len(seen)
	if p.n == 0 {
		return p
	}
	f := float64(p.n)
	for _, x := range []*float64{&p.date, &p.partialDate, &p.email, &p.digits, &p.phoneLike, &p.alpha, &p.code,
		&p.multi, &p.lex, &p.avgLen, &p.avgTokens, &p.streetWords} {
		*x /= f
	}
	for l, c := range lens {
		if float64(c)/f > p.sameLen {
			p.sameLen, p.commonLen = float64(c)/f, l
		}
	}
	return p
}

// postcodeLike: a short code of letters and digits in one or two parts
// that begins with a letter ("tq13 8df", "SW1A1AA", "K1A 0B1").
func postcodeLike(v, digits string) bool {
	f := strings.Fields(v)
	flat := strings.Join(f, "")
	if len(f) > 2 || len(flat) < 5 || len(flat) > 8 || len(digits) == len(flat) || len(digits) < 2 {
		return false
	}
	c := flat[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false
	}
	for i := 0; i < len(flat); i++ {
		c := flat[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// headerWords are whole column names that the fragments above would miss
// or misread: other languages' ("nom" is inside "prenom", "nome" inside
// "cognome"), and short words.
var headerWords = map[string]Kind{
	"nom": KindSurname, "nomdefamille": KindSurname, "prenom": KindGivenName, "prenoms": KindGivenName,
	"nome": KindGivenName, "cognome": KindSurname, "nombre": KindGivenName, "nombres": KindGivenName,
	"apellido": KindSurname, "apellidos": KindSurname, "sobrenome": KindSurname, "primeironome": KindGivenName,
	"vorname": KindGivenName, "nachname": KindSurname, "familienname": KindSurname,
	"voornaam": KindGivenName, "achternaam": KindSurname, "fornavn": KindGivenName, "efternavn": KindSurname,
	"etternavn": KindSurname, "fornamn": KindGivenName, "efternamn": KindSurname, "imie": KindGivenName, "nazwisko": KindSurname,
	"geburtsdatum": KindDate, "geburtstag": KindDate, "datedenaissance": KindDate, "fechadenacimiento": KindDate,
	"datadinascita": KindDate, "datadenascimento": KindDate, "geboortedatum": KindDate, "nascimento": KindDate,
	"ort": KindCity, "stadt": KindCity, "wohnort": KindCity, "ville": KindCity, "commune": KindCity, "ciudad": KindCity,
	"localidad": KindCity, "municipio": KindCity, "citta": KindCity, "comune": KindCity, "cidade": KindCity,
	"plaats": KindCity, "woonplaats": KindCity, "by": KindCity, "miasto": KindCity,
	"codepostal": KindPostcode, "cp": KindPostcode, "codigopostal": KindPostcode, "cap": KindPostcode, "postleitzahl": KindPostcode,
	"strasse": KindAddress, "strase": KindAddress, "adresse": KindAddress, "rue": KindAddress, "calle": KindAddress,
	"direccion": KindAddress, "domicilio": KindAddress, "indirizzo": KindAddress, "via": KindAddress, "endereco": KindAddress,
	"straat": KindAddress, "ulica": KindAddress,
	"telefon": KindPhone, "telephone": KindPhone, "telefono": KindPhone, "handy": KindPhone, "portable": KindPhone,
	"movil": KindPhone, "celular": KindPhone, "cellulare": KindPhone, "telefoon": KindPhone,
	"courriel": KindEmail, "correo": KindEmail, "correoelectronico": KindEmail,
	"geschlecht": KindCategory, "sexe": KindCategory, "sexo": KindCategory, "sesso": KindCategory, "genre": KindCategory,
	"age": KindCategory, "alter": KindCategory, "edad": KindCategory, "eta": KindCategory, "idade": KindCategory,
}

func normColumn(s string) string {
	var b strings.Builder
	for _, r := range names.Normalize(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// column is one column under detection.
type column struct {
	name     string
	vals     []string
	p        profile
	kind     Kind
	reason   string
	hinted   bool // the kind came from the column's name (confirmed by values)
	fill     string
	fillAlso []string  // ignored columns repeating this one: values to fill from
	repeats  []*column // the columns this ignored one repeats
	minus    []string
	middleOf string // a middle-name column inside this full-name column
}

// Detect infers a configuration from a header and sample rows. idColumn,
// if not empty, names the record-ID column (excluded from comparison);
// otherwise a column named like an ID whose values are all distinct is
// taken as the record ID.
//
// Each column is first judged alone (name hint confirmed by values, or
// values alone). Then the columns are judged together: a column that
// repeats the record ID's prefix is ignored; person-name columns are
// sorted into full names, given names and surnames by their values and
// by how they sit inside one another (a first name is the first word of
// the full name in the same row); a column that only repeats others
// (first_and_surname = first_name + surname) is dropped; a full name
// beside its parts is compared on what they leave (Field.Minus) and the
// parts are filled from it when missing (Field.Fill).
func Detect(header []string, rows [][]string, idColumn string) (*Config, []Detection) {
	cfg := &Config{IDColumn: idColumn}
	nrows := len(rows)
	cols := make([]*column, len(header))
	// Profiling a column reads all its sampled values (200,000 in a large
	// file): one column per core.
	eachParallel(len(header), func(ci int) {
		vals := make([]string, 0, nrows)
		for _, r := range rows {
			v := ""
			if ci < len(r) {
				v = r[ci]
			}
			vals = append(vals, v)
		}
		cols[ci] = &column{name: header[ci], vals: vals, p: profileOf(vals)}
	})
	for _, c := range cols {
		col := c.name
		c.kind, c.reason, c.hinted = detectColumn(col, c.p, idColumn)
		if c.kind == KindIgnore && cfg.IDColumn == "" && strings.Contains(c.reason, "record id") {
			cfg.IDColumn = col
		}
	}
	ignoreIDDerived(cols, cfg.IDColumn)
	resolveNames(cols)
	// A record whose name parts are empty may still have its name in a
	// column dropped for repeating them.
	for _, x := range cols {
		for _, r := range x.repeats {
			if r.kind == KindGivenName || r.kind == KindSurname {
				r.fillAlso = append(r.fillAlso, x.name)
			}
		}
	}
	var dets []Detection
	for _, c := range cols {
		dets = append(dets, Detection{Column: c.name, Kind: c.kind, Reason: c.reason})
		if c.kind != KindIgnore {
			cfg.Fields = append(cfg.Fields, Field{Name: c.name, Kind: c.kind, Fill: c.fill, FillAlso: c.fillAlso, Minus: c.minus})
		}
	}
	pairSwaps(cfg.Fields)
	cfg.Blocking = DefaultBlocking(cfg.Fields)
	return cfg, dets
}

// ignoreIDDerived drops columns whose values are the leading part of the
// record ID ("Q42" beside "Q42-3"): a grouping key of the system that
// wrote the file, not evidence about the person, and, when it is the
// truth of a labelled file, a leak.
func ignoreIDDerived(cols []*column, idColumn string) {
	var id *column
	for _, c := range cols {
		if c.name == idColumn {
			id = c
		}
	}
	if id == nil {
		return
	}
	for _, c := range cols {
		if c == id || c.kind == KindIgnore {
			continue
		}
		n, pre := 0, 0
		for r, v := range c.vals {
			v = strings.TrimSpace(v)
			if v == "" || r >= len(id.vals) {
				continue
			}
			n++
			if full := id.vals[r]; len(full) > len(v) && strings.HasPrefix(full, v) && !isAlnum(full[len(v)]) {
				pre++
			}
		}
		if n >= 10 && float64(pre) >= 0.9*float64(n) {
			c.kind, c.reason = KindIgnore, fmt.Sprintf("leading part of the record id %q (not evidence)", idColumn)
		}
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
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

func nameKind(k Kind) bool { return k == KindGivenName || k == KindSurname || k == KindFullName }

// detectColumn judges one column alone: its name when the values do not
// contradict it, else its values. hinted says the name decided.
func detectColumn(col string, p profile, idColumn string) (Kind, string, bool) {
	if idColumn != "" && col == idColumn {
		return KindIgnore, "record id (given)", false
	}
	if p.n == 0 {
		return KindIgnore, "no values", false
	}
	if p.distinct == 1 && p.n > 1 {
		return KindIgnore, "one value in every row", false
	}
	unique := float64(p.distinct) / float64(p.n)
	name := normColumn(col)
	if k, ok := headerWords[name]; ok {
		if nameKind(k) && p.alpha >= 0.8 {
			return k, fmt.Sprintf("name %q", col), true
		}
		if k, why, ok := confirm(k, p, unique, col); ok && !nameKind(k) {
			return k, why, true
		}
	}
	var nameHits []Kind
	for _, h := range nameHints {
		for _, part := range h.parts {
			if !strings.Contains(name, part) {
				continue
			}
			if nameKind(h.kind) {
				// Name columns are sorted out together, by their values
				// (resolveNames); here it is enough that they hold words.
				if p.alpha < 0.8 {
					break
				}
				if h.kind == KindFullName && len(nameHits) == 0 {
					return KindFullName, fmt.Sprintf("name %q", col), true
				}
				if h.kind != KindFullName && !slices.Contains(nameHits, h.kind) {
					nameHits = append(nameHits, h.kind)
				}
				break
			}
			if len(nameHits) > 0 {
				break
			}
			if k, why, ok := confirm(h.kind, p, unique, col); ok {
				return k, why, true
			}
		}
	}
	switch len(nameHits) {
	case 0:
	case 1:
		return nameHits[0], fmt.Sprintf("name %q", col), true
	default: // "first_and_surname": several name words in the header
		return KindFullName, fmt.Sprintf("name %q (several name words)", col), true
	}
	if (name == "id" || strings.HasSuffix(name, "id") || strings.HasSuffix(name, "key")) && unique == 1 && idColumn == "" {
		return KindIgnore, "record id (named like an id, every value distinct)", false
	}
	k, why := byValues(p, unique)
	return k, why, false
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
		d := p.date + p.partialDate
		why := hint + fmt.Sprintf(", %.0f%% parse as dates", 100*d)
		if p.partialDate > 0.01 {
			why += fmt.Sprintf(" (%.0f%% to the year or month only)", 100*p.partialDate)
		}
		return k, why, d >= 0.5
	case KindEmail:
		return k, hint + fmt.Sprintf(", %.0f%% look like emails", 100*p.email), p.email >= 0.5
	case KindPhone:
		return k, hint, p.phoneLike+p.digits >= 0.5
	case KindStreetNumber, KindPostcode:
		return k, hint, p.avgLen <= 10
	case KindCity, KindState:
		return k, hint, p.alpha >= 0.7
	case KindCategory:
		return k, hint + fmt.Sprintf(", %d distinct values", p.distinct), p.distinct <= 40
	}
	return k, hint, true
}

// byValues classifies a column with an uninformative name.
func byValues(p profile, unique float64) (Kind, string) {
	switch {
	case p.email >= 0.8:
		return KindEmail, "values look like emails"
	// Dates before phones: "1980-05-17" has a phone number's digits.
	case p.date >= 0.8:
		return KindDate, "values parse as dates"
	case p.date+p.partialDate >= 0.9 && p.date >= 0.3:
		// Some full dates among years and months. A column of bare years
		// needs its name to say so: by value it is a 4-digit code.
		return KindDate, fmt.Sprintf("values parse as dates, %.0f%% known to the year or month only", 100*p.partialDate)
	case p.phoneLike >= 0.6:
		return KindPhone, "values look like phone numbers"
	case p.digits >= 0.9 && p.avgLen >= 6 && unique >= 0.5:
		return KindID, "long digit strings, high cardinality"
	case p.digits >= 0.9 && p.sameLen >= 0.9 && p.commonLen >= 4 && p.commonLen <= 6:
		return KindPostcode, "fixed-length digit codes"
	case p.code >= 0.8:
		return KindPostcode, "letter-and-digit codes (postcodes)"
	case p.digits >= 0.99 && unique == 1 && p.n >= 50:
		// every value distinct: a row number, not a fact about a person
		// (a person's duplicates would share a real identifier's value)
		return KindIgnore, "numbers, every value distinct (a row number)"
	case p.digits >= 0.9 && p.avgLen <= 5:
		return KindStreetNumber, "short numbers"
	case p.streetWords >= 0.3:
		return KindAddress, "values contain street words"
	case p.avgLen <= 4 && p.distinct <= 100:
		return KindState, "short codes, few distinct values"
	case p.distinct <= 20 && p.n >= 50:
		return KindCategory, fmt.Sprintf("%d distinct values", p.distinct)
	case p.avgTokens >= 1.5:
		return KindText, "multi-word text"
	}
	return KindText, "text"
}

// resolveNames sorts the person-name columns out by their values: which
// hold full names, given names or surnames, which only repeat others,
// and how they contain one another. A column takes part when its name
// says it holds a name, or when its values do (words, most of them
// starting with a known given name), or when it sits inside a name
// column row by row.
func resolveNames(cols []*column) {
	var names []*column
	for _, c := range cols {
		switch {
		case nameKind(c.kind):
		case c.kind == KindText && c.p.alpha >= 0.9 && c.p.lex >= 0.3:
			c.kind, c.reason = KindGivenName, fmt.Sprintf("words, %.0f%% begin with a known given name", 100*c.p.lex)
		default:
			continue
		}
		names = append(names, c)
	}
	// Unnamed word columns found inside a name column (a surname column
	// under a meaningless header) join too.
	for _, c := range cols {
		if c.kind != KindText || c.p.alpha < 0.9 || c.p.multi >= 0.5 {
			continue
		}
		for _, f := range names {
			if f.p.multi >= 0.5 {
				if in, _, _ := containment(f, c); in >= 0.7 {
					c.kind, c.reason = KindSurname, fmt.Sprintf("words found inside %q", f.name)
					names = append(names, c)
					break
				}
			}
		}
	}
	if len(names) == 0 {
		return
	}

	// A column that is two others joined, or the same as another, adds
	// nothing: counting it would count one fact twice.
	for _, x := range names {
		if x.kind == KindIgnore {
			continue
		}
		for _, a := range names {
			if a == x || a.kind == KindIgnore {
				continue
			}
			if share, n := rowShare(x, a, nil); n >= 20 && share >= 0.95 {
				x.kind, x.reason = KindIgnore, fmt.Sprintf("repeats %q (%.0f%% of rows)", a.name, 100*share)
				x.repeats = []*column{a}
				break
			}
			for _, b := range names {
				if b == x || b == a || b.kind == KindIgnore {
					continue
				}
				if share, n := rowShare(x, a, b); n >= 20 && share >= 0.85 {
					x.kind, x.reason = KindIgnore, fmt.Sprintf("repeats %q + %q (%.0f%% of rows): counted once, through them", a.name, b.name, 100*share)
					x.repeats = []*column{a, b}
					break
				}
			}
			if x.kind == KindIgnore {
				break
			}
		}
	}

	var full, single []*column
	for _, c := range names {
		switch {
		case c.kind == KindIgnore:
		case c.p.multi >= 0.5:
			if c.kind != KindFullName {
				c.reason = fmt.Sprintf("%s; values are full names (%.0f%% two or more name words)", c.reason, 100*c.p.multi)
			}
			c.kind = KindFullName
			full = append(full, c)
		default:
			single = append(single, c)
		}
	}
	// The widest full name is the container the others sit in.
	sort.SliceStable(full, func(i, j int) bool { return full[i].p.avgTokens > full[j].p.avgTokens })

	// Given or surname: by where the word sits in the full name of the
	// same row (a given name first, a surname last), else by how many
	// values are known given names, else by the column's name.
	var undecided []*column
	var parts []*column
	for _, s := range single {
		decided := false
		for _, f := range full {
			in, first, last := containment(f, s)
			if in < 0.6 {
				continue
			}
			if first < 0.3 && last < 0.3 {
				// Inside but neither first nor last: a middle name. Its
				// words leave the full name, so they count once.
				s.reason = fmt.Sprintf("%s; inside %q in %.0f%% of rows, neither first nor last", s.reason, f.name, 100*in)
				s.fill = "" // no word of the full name to take it from
				parts = append(parts, s)
				s.middleOf = f.name
				decided = true
				break
			}
			if first > last {
				s.kind = KindGivenName
				s.reason = fmt.Sprintf("the first word of %q in %.0f%% of rows", f.name, 100*first)
			} else {
				s.kind = KindSurname
				s.reason = fmt.Sprintf("the last word of %q in %.0f%% of rows", f.name, 100*last)
			}
			s.fill = f.name
			parts = append(parts, s)
			decided = true
			break
		}
		if !decided {
			undecided = append(undecided, s)
		}
	}
	if len(undecided) >= 2 {
		sort.SliceStable(undecided, func(i, j int) bool { return undecided[i].p.lex > undecided[j].p.lex })
		if hi, lo := undecided[0], undecided[len(undecided)-1]; hi.p.lex-lo.p.lex >= 0.2 {
			for i, s := range undecided {
				k, what := KindSurname, "fewer"
				if i == 0 {
					k, what = KindGivenName, "the most"
				}
				if s.kind != k {
					s.reason = fmt.Sprintf("%s; values say %s: %s known given names (%.0f%%)", s.reason, k, what, 100*s.p.lex)
				}
				s.kind = k
			}
			undecided = nil
		}
	}
	// Alone, a column whose values are mostly known given names is one,
	// whatever its header. Few known given names is weak evidence the
	// other way (names of other languages are not in the list), so a
	// header saying "given name" stands.
	for _, s := range undecided {
		if s.p.lex >= 0.5 && s.kind != KindGivenName {
			s.kind, s.reason = KindGivenName, fmt.Sprintf("%s; %.0f%% of values are known given names", s.reason, 100*s.p.lex)
		}
	}

	// A full name beside its parts is compared on what they leave.
	if len(full) > 0 {
		f := full[0]
		for _, s := range parts {
			if s.fill == f.name || s.middleOf == f.name {
				f.minus = append(f.minus, s.name)
			}
		}
		for _, o := range full[1:] {
			if in, _, _ := containment(f, o); in >= 0.7 && len(f.minus) == 0 {
				f.minus = append(f.minus, o.name)
			}
		}
		if len(f.minus) > 0 {
			f.reason = fmt.Sprintf("%s; contains %s: compared on the words they leave", f.reason, strings.Join(quoteAll(f.minus), " and "))
		}
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// rowShare is the share of rows, among those where x, a (and b) all have
// values, in which x equals a (or a and b joined by a space), normalized;
// n is how many such rows there are.
func rowShare(x, a, b *column) (float64, int) {
	n, eq := 0, 0
	for r := range x.vals {
		xv, av := names.Normalize(x.vals[r]), names.Normalize(a.vals[r])
		if xv == "" || av == "" {
			continue
		}
		want := av
		if b != nil {
			bv := names.Normalize(b.vals[r])
			if bv == "" {
				continue
			}
			want = av + " " + bv
		}
		n++
		if xv == want {
			eq++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(eq) / float64(n), n
}

// containment says how s sits inside the full name f, over the rows
// where both have values: the share in which s's first word is one of
// f's name words, and the shares in which it is the first and the last.
func containment(f, s *column) (in, first, last float64) {
	n, hit, fi, la := 0, 0, 0, 0
	for r := range f.vals {
		sv := strings.Fields(names.Normalize(s.vals[r]))
		if len(sv) == 0 || strings.TrimSpace(f.vals[r]) == "" {
			continue
		}
		w := personWords(f.vals[r])
		if len(w) == 0 {
			continue
		}
		n++
		i := slices.Index(w, sv[0])
		if i < 0 {
			continue
		}
		hit++
		if len(w) > 1 && i == 0 {
			fi++
		}
		if len(w) > 1 && i == len(w)-1 {
			la++
		}
	}
	if n < 20 {
		return 0, 0, 0
	}
	return float64(hit) / float64(n), float64(fi) / float64(n), float64(la) / float64(n)
}
