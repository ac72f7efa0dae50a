package match

import (
	"github.com/idgraph/idgraph/internal/names"

	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// SynthHeader is the header of a synthetic data set: FEBRL's columns
// (without address_2) plus email and phone.
var SynthHeader = []string{"rec_id", "given_name", "surname", "street_number", "address_1",
	"suburb", "postcode", "state", "date_of_birth", "soc_sec_id", "email", "phone"}

// SynthOptions configure Synthesize.
type SynthOptions struct {
	Records int    // total records (originals + duplicates)
	Seed    uint64 // same seed, same data
	// Rates of the hard negatives among people (defaults 0.15 and 0.03):
	// a household member shares surname, address and landline with an
	// earlier person; a common-name person is one of a few "john smith"s.
	Household  float64
	CommonName float64
	// Shape is "febrl" (default: FEBRL's columns) or "messy" (MessyHeader:
	// multi-token names with titles, redundant name columns, approximate
	// dates, many missing fields; see synth_messy.go).
	Shape string
	// Namesakes (messy shape, default 0.06) is the share of people who
	// take an earlier person's name, birth year and town.
	Namesakes float64
}

// SynthShapes lists the shapes Synthesize writes.
var SynthShapes = []string{"febrl", "messy"}

// SynthStats describes what Synthesize made.
type SynthStats struct {
	Records    int `json:"records"`
	People     int `json:"people"`     // originals
	Duplicates int `json:"duplicates"` // records rec-P-dup-K
	Households int `json:"households"` // people who share surname and address with another person
	CommonName int `json:"common_name"`
	Namesakes  int `json:"namesakes,omitempty"` // messy shape: namesakes and parent/child pairs
	TruePairs  int `json:"true_pairs"`          // pairs of records of the same person
}

type synthPerson struct {
	given, surname, number, street, suburb, postcode, state string
	y, m, d                                                 int
	ssn, email, phone                                       string
}

// Synthesize generates a FEBRL-like labelled data set with realistic noise:
// about Records/2 people, each with an original (rec-P-org) and zero or
// more duplicates (rec-P-dup-K) carrying typos, nicknames, swapped names,
// missing values, other date, phone and email formats, day/month swaps and
// moves; plus hard negatives: household members (same surname, address
// and phone, other given name, birthday, ID and email) and many people
// with a handful of very common names. Rows are shuffled. It uses only
// the seed, so the output is deterministic.
func Synthesize(opt SynthOptions) (*Table, SynthStats) {
	if opt.Shape == "messy" {
		return synthesizeMessy(opt)
	}
	if opt.Household == 0 {
		opt.Household = 0.15
	}
	if opt.CommonName == 0 {
		opt.CommonName = 0.03
	}
	n := opt.Records
	if n < 1 {
		n = 1
	}
	r := rand.New(rand.NewPCG(opt.Seed, 0x5717e))
	g := &synthGen{r: r}
	g.init()

	orgs := (n + 1) / 2
	dups := n - orgs
	count := personCounts(r, orgs, dups)
	st := SynthStats{Records: n, People: orgs, Duplicates: dups}
	t := &Table{Header: append([]string(nil), SynthHeader...), Rows: make([][]string, 0, n)}
	people := make([]synthPerson, 0, orgs)
	usedSSN := make(map[string]bool, orgs)
	for i := range orgs {
		p := g.person()
		switch {
		case len(people) > 0 && r.Float64() < opt.Household:
			h := people[r.IntN(len(people))]
			p.surname, p.number, p.street, p.suburb, p.postcode, p.state =
				h.surname, h.number, h.street, h.suburb, h.postcode, h.state
			if r.Float64() < 0.5 { // a shared landline; else their own mobile
				p.phone = h.phone
			}
			if r.Float64() < 0.05 { // a twin: same birthday too
				p.y, p.m, p.d = h.y, h.m, h.d
			} else if r.Float64() < 0.5 { // parent or child
				p.y = h.y + []int{-32, -28, -25, 25, 28, 31}[r.IntN(6)]
				p.y = min(max(p.y, 1920), 2006)
				p.d = min(p.d, daysIn(p.y, p.m))
			}
			for p.given == h.given || names.NicknameGroup(p.given) != "" && names.NicknameGroup(p.given) == names.NicknameGroup(h.given) {
				p.given = g.givenName()
			}
			p.email = g.email(p.given, p.surname)
			st.Households++
		case r.Float64() < opt.CommonName:
			c := synthCommonNames[r.IntN(len(synthCommonNames))]
			p.given, p.surname = c[0], c[1]
			p.email = g.email(p.given, p.surname)
			st.CommonName++
		}
		for usedSSN[p.ssn] {
			p.ssn = fmt.Sprintf("%07d", 1000000+r.IntN(9000000))
		}
		usedSSN[p.ssn] = true
		people = append(people, p)
		t.Rows = append(t.Rows, g.original(i, &p))
		k := int(count[i])
		for j := range k {
			t.Rows = append(t.Rows, g.duplicate(i, j, &p))
		}
		st.TruePairs += (k + 1) * k / 2
	}
	r.Shuffle(len(t.Rows), func(i, j int) { t.Rows[i], t.Rows[j] = t.Rows[j], t.Rows[i] })
	return t, st
}

// WriteCSV writes the table with its header.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Header); err != nil {
		return err
	}
	for _, row := range t.Rows {
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

type synthGen struct {
	r          *rand.Rand
	given      []string
	givenCum   []float64
	surCum     []float64
	diminutive map[string][]string // group name -> nicknames
	suburbs    []synthSuburb
	streetBase []string
}

type synthSuburb struct{ name, postcode, state string }

func (g *synthGen) init() {
	g.given = synthGiven
	g.givenCum = zipfCum(len(synthGiven), 0.9)
	g.surCum = zipfCum(len(synthSurnames), 1.0)
	g.diminutive = map[string][]string{}
	for nick, grp := range names.Nicknames {
		g.diminutive[grp] = append(g.diminutive[grp], nick)
	}
	for _, v := range g.diminutive {
		sort.Strings(v) // map order is random; the output must not be
	}
	// Suburbs: invented names, each with one postcode and state, like an
	// Australian gazetteer; postcodes cluster by state.
	states := []string{"nsw", "vic", "qld", "wa", "sa", "tas", "act", "nt"}
	stateW := []float64{0.32, 0.26, 0.20, 0.10, 0.07, 0.02, 0.02, 0.01}
	base := []int{2000, 3000, 4000, 6000, 5000, 7000, 2600, 800}
	seen := map[string]bool{}
	for len(g.suburbs) < 3000 {
		name := g.word(2)
		if g.r.Float64() < 0.15 {
			name += " " + []string{"heights", "park", "hill", "vale", "beach", "east", "west", "north", "south"}[g.r.IntN(9)]
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		s := pickW(g.r, stateW)
		pc := fmt.Sprintf("%04d", base[s]+g.r.IntN(900))
		g.suburbs = append(g.suburbs, synthSuburb{name, pc, states[s]})
	}
	for len(g.streetBase) < 4000 {
		g.streetBase = append(g.streetBase, g.word(1+g.r.IntN(2)))
	}
}

func zipfCum(n int, s float64) []float64 {
	c := make([]float64, n)
	tot := 0.0
	for i := range n {
		tot += 1 / math.Pow(float64(i+1), s)
		c[i] = tot
	}
	for i := range c {
		c[i] /= tot
	}
	return c
}

func pickCum(r *rand.Rand, cum []float64) int {
	return sort.SearchFloat64s(cum, r.Float64()*cum[len(cum)-1])
}

func pickW(r *rand.Rand, w []float64) int {
	x := r.Float64()
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

var synthOnsets = []string{"b", "br", "c", "ch", "cl", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r", "s", "st", "t", "th", "tr", "w", "wh", "y", "bl", "cr", "sh", "v"}
var synthVowels = []string{"a", "e", "i", "o", "u", "ai", "ea", "ee", "ou", "oo", "ie", "ay"}
var synthCodas = []string{"", "n", "r", "l", "m", "s", "t", "nd", "rd", "rt", "ll", "ck", "ng", "ns", "x", "ff", "th", "rn", "ld"}

func (g *synthGen) word(syl int) string {
	var b strings.Builder
	for range syl {
		b.WriteString(synthOnsets[g.r.IntN(len(synthOnsets))])
		b.WriteString(synthVowels[g.r.IntN(len(synthVowels))])
		if g.r.IntN(2) == 0 {
			b.WriteString(synthCodas[g.r.IntN(len(synthCodas))])
		}
	}
	return b.String()
}

func (g *synthGen) givenName() string { return g.given[pickCum(g.r, g.givenCum)] }

func (g *synthGen) surnameName() string {
	// Real surnames (Zipf) for 60%, invented ones for the long tail.
	if g.r.Float64() < 0.6 {
		return synthSurnames[pickCum(g.r, g.surCum)]
	}
	return g.word(1+g.r.IntN(2)) + []string{"", "", "son", "ton", "ley", "er", "s", "ford", "well", "man"}[g.r.IntN(10)]
}

func (g *synthGen) email(given, surname string) string {
	local := given + "." + surname
	switch g.r.IntN(5) {
	case 0:
		local = given[:1] + surname
	case 1:
		local = given + surname + fmt.Sprint(g.r.IntN(100))
	case 2:
		local = surname + "." + given
	}
	local = strings.ReplaceAll(local, " ", "")
	dom := []string{"gmail.com", "gmail.com", "yahoo.com.au", "hotmail.com", "bigpond.com", "outlook.com", "optusnet.com.au", "icloud.com"}[g.r.IntN(8)]
	return local + "@" + dom
}

func (g *synthGen) person() synthPerson {
	s := g.suburbs[g.r.IntN(len(g.suburbs))]
	p := synthPerson{
		given:    g.givenName(),
		surname:  g.surnameName(),
		number:   fmt.Sprint(1 + g.r.IntN(300)),
		street:   g.streetBase[g.r.IntN(len(g.streetBase))] + " " + synthStreetTypes[pickW(g.r, synthStreetTypeW)],
		suburb:   s.name,
		postcode: s.postcode,
		state:    s.state,
		y:        1930 + g.r.IntN(76),
		m:        1 + g.r.IntN(12),
		ssn:      fmt.Sprintf("%07d", 1000000+g.r.IntN(9000000)),
		phone:    fmt.Sprintf("0%d %04d %04d", []int{2, 3, 4, 7, 8}[g.r.IntN(5)], g.r.IntN(10000), g.r.IntN(10000)),
	}
	p.d = 1 + g.r.IntN(daysIn(p.y, p.m))
	p.email = g.email(p.given, p.surname)
	return p
}

func (g *synthGen) original(i int, p *synthPerson) []string {
	row := []string{fmt.Sprintf("rec-%d-org", i), p.given, p.surname, p.number, p.street, p.suburb,
		p.postcode, p.state, FormatDate(p.y, p.m, p.d), p.ssn, p.email, p.phone}
	for c := 1; c < len(row); c++ {
		if g.r.Float64() < 0.03 { // originals are not complete either
			row[c] = ""
		}
	}
	return row
}

const (
	sGiven = 1 + iota
	sSurname
	sNumber
	sStreet
	sSuburb
	sPostcode
	sState
	sDOB
	sSSN
	sEmail
	sPhone
)

func (g *synthGen) duplicate(i, k int, p *synthPerson) []string {
	r := g.r
	q := *p
	if r.Float64() < 0.10 { // moved: new address, same person
		s := g.suburbs[r.IntN(len(g.suburbs))]
		q.number = fmt.Sprint(1 + r.IntN(300))
		q.street = g.streetBase[r.IntN(len(g.streetBase))] + " " + synthStreetTypes[pickW(r, synthStreetTypeW)]
		q.suburb, q.postcode, q.state = s.name, s.postcode, s.state
		if r.Float64() < 0.5 {
			q.phone = fmt.Sprintf("04%02d %03d %03d", r.IntN(100), r.IntN(1000), r.IntN(1000)) // new mobile
		}
	}
	if r.Float64() < 0.15 { // nickname, or the full name for a nickname
		if d := g.diminutive[q.given]; len(d) > 0 {
			q.given = d[r.IntN(len(d))]
		} else if full, ok := names.Nicknames[q.given]; ok {
			q.given = full
		}
	}
	row := []string{fmt.Sprintf("rec-%d-dup-%d", i, k), q.given, q.surname, q.number, q.street, q.suburb,
		q.postcode, q.state, g.dateVariant(q.y, q.m, q.d), q.ssn, g.emailVariant(q.email), g.phoneVariant(q.phone)}
	// Typos: 1-2 edits on a few text fields, digit slips on numbers.
	for _, c := range []int{sGiven, sSurname, sStreet, sSuburb} {
		if r.Float64() < 0.2 {
			row[c] = g.typo(row[c], 1+r.IntN(2))
		}
	}
	for _, c := range []int{sNumber, sPostcode, sSSN, sPhone} {
		if r.Float64() < 0.06 {
			row[c] = g.digitSlip(row[c])
		}
	}
	if r.Float64() < 0.05 {
		row[sStreet] = strings.ReplaceAll(row[sStreet], " ", "") // "pridhamstreet"
	}
	if r.Float64() < 0.05 { // given name and surname typed into each other's fields
		row[sGiven], row[sSurname] = row[sSurname], row[sGiven]
	}
	// Missing values: 10-20% per field.
	for c := 1; c < len(row); c++ {
		if r.Float64() < 0.10+0.10*r.Float64() {
			row[c] = ""
		}
	}
	return row
}

func (g *synthGen) dateVariant(y, m, d int) string {
	r := g.r
	if r.Float64() < 0.08 && d <= 12 && d != m { // day and month exchanged
		m, d = d, m
	}
	if r.Float64() < 0.05 { // a digit slip in the year or day
		if r.IntN(2) == 0 && y > 1931 && y < 1996 {
			y += []int{-1, 1, -10, 10}[r.IntN(4)]
		} else if d < 19 && d+10 <= daysIn(y, m) {
			d += 10
		}
	}
	months := []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	switch r.IntN(8) {
	case 0, 1, 2:
		return fmt.Sprintf("%04d%02d%02d", y, m, d)
	case 3:
		return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	case 4:
		return fmt.Sprintf("%02d/%02d/%04d", d, m, y)
	case 5:
		return fmt.Sprintf("%d.%d.%d", d, m, y)
	case 6:
		return fmt.Sprintf("%d %s %d", d, months[(m+11)%12], y)
	default: // US order: read right only when the day cannot be a month
		return fmt.Sprintf("%02d/%02d/%04d", m, d, y)
	}
}

func (g *synthGen) emailVariant(e string) string {
	r := g.r
	at := strings.IndexByte(e, '@')
	if at < 0 {
		return e
	}
	switch x := r.Float64(); {
	case x < 0.15:
		return strings.ToUpper(e[:1]) + e[1:at] + "@" + strings.ToUpper(e[at+1:])
	case x < 0.25:
		return e[:at] + "+" + []string{"shop", "news", "promo", "2019"}[r.IntN(4)] + e[at:]
	case x < 0.32: // same mailbox at another provider
		return e[:at] + "@" + []string{"gmail.com", "hotmail.com", "yahoo.com"}[r.IntN(3)]
	case x < 0.36: // a new address altogether
		return g.email(g.givenName(), e[:1])
	}
	return e
}

func (g *synthGen) phoneVariant(p string) string {
	d := digitsOf(p)
	if len(d) != 10 {
		return p
	}
	switch g.r.IntN(6) {
	case 0:
		return d
	case 1:
		return "+61 " + d[1:2] + " " + d[2:6] + " " + d[6:]
	case 2:
		return "(" + d[:2] + ") " + d[2:6] + "-" + d[6:]
	case 3:
		return d[:4] + "-" + d[4:7] + "-" + d[7:]
	}
	return p
}

const synthKeyboard = "qwertyuiopasdfghjklzxcvbnm"

func (g *synthGen) typo(s string, edits int) string {
	b := []byte(s)
	for range edits {
		if len(b) < 2 {
			break
		}
		i := g.r.IntN(len(b))
		switch g.r.IntN(4) {
		case 0: // substitute with a keyboard neighbour
			j := strings.IndexByte(synthKeyboard, b[i])
			if j < 0 {
				j = g.r.IntN(len(synthKeyboard))
			}
			j += []int{-1, 1}[g.r.IntN(2)]
			if j < 0 || j >= len(synthKeyboard) {
				j = g.r.IntN(len(synthKeyboard))
			}
			b[i] = synthKeyboard[j]
		case 1: // delete
			b = append(b[:i], b[i+1:]...)
		case 2: // insert
			b = append(b[:i], append([]byte{synthKeyboard[g.r.IntN(len(synthKeyboard))]}, b[i:]...)...)
		default: // transpose
			if i+1 < len(b) {
				b[i], b[i+1] = b[i+1], b[i]
			}
		}
	}
	return string(b)
}

func (g *synthGen) digitSlip(s string) string {
	idx := []int{}
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return s
	}
	b := []byte(s)
	i := idx[g.r.IntN(len(idx))]
	b[i] = byte('0' + (int(b[i]-'0')+1+g.r.IntN(9))%10)
	return string(b)
}

var synthStreetTypes = []string{"street", "road", "avenue", "place", "crescent", "drive", "close", "court", "circuit", "parade", "way", "lane"}
var synthStreetTypeW = []float64{0.35, 0.15, 0.10, 0.10, 0.07, 0.07, 0.04, 0.04, 0.03, 0.02, 0.02, 0.01}

var synthCommonNames = [][2]string{{"john", "smith"}, {"david", "smith"}, {"michael", "smith"}, {"john", "jones"},
	{"david", "jones"}, {"mary", "smith"}, {"sarah", "brown"}, {"james", "wilson"}, {"peter", "taylor"}, {"jennifer", "williams"}}

// Given names, most frequent first; many are nickname groups, so the
// nickname noise applies.
var synthGiven = strings.Fields(`john david michael peter james robert william mary sarah jennifer
thomas daniel matthew andrew christopher joshua benjamin samuel jessica elizabeth
emily olivia charlotte ruby chloe sophie emma lily grace hannah lucy jack liam noah oliver
ethan lachlan jacob harrison alexander ryan nicholas luke dylan jayden cooper max riley
isabel margaret patricia susan deborah barbara catherine katherine rebecca amanda
stephen richard charles edward anthony kenneth timothy ronald donald gregory frederick
raymond lawrence leonard walter henry joseph nathan zachary victoria christine helen
abigail angela pamela sandra judith dorothy valerie frances philip douglas gerald jeffrey
stuart sidney theodore terence geoffrey joanne josephine emmanuel gabriel mitchell
brooke tahlia madison jasmine zoe mia ella ava isla amelia georgia holly jade kayla
bailey blake caleb connor declan ellie harvey hayden jordan kai lara logan mason
nathaniel paige savannah scott shannon tyler zara aaron adam brendan brian bruce carl
craig darren dean derek glenn graham ian jason keith kevin kym leanne lisa melissa
michelle natalie nicole rachel renee sharon simon tania tracey troy wayne`)

// Surnames, most frequent first (Australia).
var synthSurnames = strings.Fields(`smith jones williams brown wilson taylor johnson white martin anderson
thompson nguyen thomas walker harris lee ryan robinson kelly king davis wright evans roberts
green hall wood jackson clarke patel khan lewis james phillips mitchell campbell murphy
cook hill young scott turner edwards bell stewart morris baker collins harrison ward
wang li chen zhang liu singh kaur tran pham le hughes morgan cooper parker allen
mcdonald oconnor obrien murray watson ross kennedy graham reid mason hoseason pridham
mccarthy fraser duncan hamilton gray webb russell simpson chapman marshall wallace hunt
bennett carter cox richardson lloyd barnes fisher sutherland hayes knight dixon matthews
palmer mills warren elliott lawson burns grant jenkins shaw holmes fletcher rogers
gordon hart hudson cameron gibson black porter payne spencer stevens dawson hopkins
ellis wells armstrong ferguson riley pearce francis peters arnold lynch byrne doyle
walsh quinn moore rossi russo ferrari romano colombo ricci costa papadopoulos nikolaidis
kowalski novak schmidt muller fischer weber wagner becker hoffmann kim park choi`)
