package match

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/idgraph/idgraph/internal/names"
)

// The messy shape: person records as they come out of a historical or
// crowd-sourced catalogue rather than a registration form. Names have
// several tokens, titles ("sir", "rev"), suffixes ("jr") and peerages
// ("1st baron clifford of chudleigh"); they appear in a full-name column
// beside first-name and surname columns and a first_and_surname column
// that repeats them; the order is swapped ("chudleigh, thomas") or the
// given name cut to an initial; birth dates are known to the day, the
// month or only the year, or are a few days or a year off; places and
// postcodes are noisy; many fields are missing. Hard negatives are
// namesakes who share a common name, a birth year and a town, and
// fathers and sons with the same name and place.

// MessyHeader is the header of the messy shape. cluster repeats the
// person part of unique_id (the truth, as such files often carry it).
var MessyHeader = []string{"unique_id", "cluster", "full_name", "first_and_surname", "first_name", "surname",
	"dob", "birth_place", "postcode", "gender", "occupation"}

const (
	mID = iota
	mCluster
	mFull
	mFirstSur
	mFirst
	mSur
	mDOB
	mPlace
	mPostcode
	mGender
	mOccupation
)

type messyPerson struct {
	given, surname string
	middles        []string
	female         bool
	title, suffix  string
	peerage        string // "1st baron clifford of chudleigh"
	y, m, d        int
	prec           int // 3 day, 2 month, 1 year: how precisely the birth date is known
	town           int
	postcode       string
	occupations    []string
}

type messyTown struct{ name, county, outward string }

type messyGen struct {
	*synthGen
	towns              []messyTown
	townCum            []float64
	maleCum, femaleCum []float64
	occCum             []float64
	surnameCum         []float64
}

// synthesizeMessy builds the messy shape (SynthOptions.Shape "messy").
func synthesizeMessy(opt SynthOptions) (*Table, SynthStats) {
	if opt.Namesakes == 0 {
		opt.Namesakes = 0.06
	}
	if opt.CommonName == 0 {
		opt.CommonName = 0.03
	}
	n := max(opt.Records, 1)
	r := rand.New(rand.NewPCG(opt.Seed, 0x3e55))
	g := &messyGen{synthGen: &synthGen{r: r}}
	g.init()

	orgs := (n + 1) / 2
	count := personCounts(r, orgs, n-orgs)
	st := SynthStats{Records: n, People: orgs, Duplicates: n - orgs}
	t := &Table{Header: append([]string(nil), MessyHeader...), Rows: make([][]string, 0, n)}
	people := make([]messyPerson, 0, orgs)
	for i := range orgs {
		p := g.person()
		switch x := r.Float64(); {
		case len(people) > 0 && x < opt.Namesakes:
			// A namesake: same name, birth year and town, another person
			// (other day and month, middle names, occupation, postcode).
			h := people[r.IntN(len(people))]
			p.given, p.surname, p.female, p.y, p.town = h.given, h.surname, h.female, h.y, h.town
			p.postcode = g.postcodeIn(p.town)
			st.Namesakes++
		case len(people) > 0 && x < opt.Namesakes*1.5:
			// Father and son (or mother and daughter): same name and town,
			// a generation apart, the peerage passed on.
			h := people[r.IntN(len(people))]
			p.given, p.surname, p.female, p.town, p.postcode = h.given, h.surname, h.female, h.town, h.postcode
			p.y = h.y + 22 + r.IntN(14)
			p.d = min(p.d, daysIn(p.y, p.m))
			if h.peerage != "" {
				p.peerage = nextPeerage(h.peerage)
				p.title = h.title
			}
			st.Namesakes++
		case x < opt.Namesakes*1.5+opt.CommonName:
			c := messyCommonNames[r.IntN(len(messyCommonNames))]
			p.given, p.surname, p.female = c[0], c[1], c[0] == "mary" || c[0] == "elizabeth"
			st.CommonName++
		}
		people = append(people, p)
		t.Rows = append(t.Rows, g.render(fmt.Sprintf("rec-%d-org", i), i, &p, false))
		k := int(count[i])
		for j := range k {
			t.Rows = append(t.Rows, g.render(fmt.Sprintf("rec-%d-dup-%d", i, j), i, &p, true))
		}
		st.TruePairs += (k + 1) * k / 2
	}
	r.Shuffle(len(t.Rows), func(i, j int) { t.Rows[i], t.Rows[j] = t.Rows[j], t.Rows[i] })
	return t, st
}

// personCounts spreads dups duplicates over orgs people, skewed: most
// have 0-2, a few many.
func personCounts(r *rand.Rand, orgs, dups int) []int32 {
	count := make([]int32, orgs)
	for range dups {
		p := r.IntN(orgs)
		if r.Float64() < 0.3 {
			p = r.IntN(max(1, orgs/4))
		}
		count[p]++
	}
	return count
}

func (g *messyGen) init() {
	g.synthGen.init()
	g.maleCum = zipfCum(len(messyMale), 1.0)
	g.femaleCum = zipfCum(len(messyFemale), 1.0)
	g.occCum = zipfCum(len(messyOccupations), 1.1)
	g.surnameCum = zipfCum(len(messySurnames), 0.9)
	counties := strings.Fields(`devon kent essex surrey sussex yorkshire lancashire norfolk suffolk cornwall somerset
		dorset hampshire cheshire derbyshire durham lincolnshire shropshire middlesex berkshire fife perthshire
		ayrshire galloway antrim down cork kerry galway glamorgan pembrokeshire gwynedd`)
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		out := string(rune('a'+g.r.IntN(26))) + string(rune('a'+g.r.IntN(26)))
		if g.r.IntN(3) == 0 {
			out = out[:1]
		}
		out += fmt.Sprint(1 + g.r.IntN(30))
		g.towns = append(g.towns, messyTown{name, counties[g.r.IntN(len(counties))], out})
	}
	for _, t := range messyRealTowns {
		add(t)
	}
	for len(g.towns) < 2500 {
		add(g.word(1+g.r.IntN(2)) + []string{"ton", "ham", "bury", "ford", "by", "wick", "chester", "field", "stow", "mouth", ""}[g.r.IntN(11)])
	}
	// Real towns lead (london is far the commonest birthplace); the
	// invented ones are the long tail.
	g.townCum = zipfCum(len(g.towns), 1.0)
}

func (g *messyGen) postcodeIn(town int) string {
	return fmt.Sprintf("%s %d%c%c", g.towns[town].outward, g.r.IntN(10), 'a'+rune(g.r.IntN(26)), 'a'+rune(g.r.IntN(26)))
}

func (g *messyGen) givenFor(female bool) string {
	if female {
		return messyFemale[pickCum(g.r, g.femaleCum)]
	}
	return messyMale[pickCum(g.r, g.maleCum)]
}

func (g *messyGen) person() messyPerson {
	r := g.r
	p := messyPerson{female: r.Float64() < 0.2}
	p.given = g.givenFor(p.female)
	if r.Float64() < 0.65 {
		p.surname = messySurnames[pickCum(r, g.surnameCum)]
	} else {
		p.surname = g.surnameName()
	}
	for k := pickW(r, []float64{0.55, 0.33, 0.12}); k > 0; k-- {
		p.middles = append(p.middles, g.givenFor(p.female))
	}
	switch x := r.Float64(); {
	case x < 0.10:
		if p.female {
			p.title = []string{"lady", "dame", "mrs", "miss"}[r.IntN(4)]
		} else {
			p.title = []string{"sir", "rev", "dr", "captain", "colonel", "general", "admiral", "lord"}[r.IntN(8)]
		}
	case x < 0.14 && !p.female:
		p.suffix = []string{"jr", "sr", "ii", "iii"}[r.IntN(4)]
	}
	p.town = pickCum(r, g.townCum)
	if r.Float64() < 0.06 {
		rank := []string{"baron", "baron", "earl", "viscount", "baronet", "duke", "marquess"}[r.IntN(7)]
		if p.female {
			rank = []string{"baroness", "countess", "duchess"}[r.IntN(3)]
		}
		p.peerage = fmt.Sprintf("%s %s %s", ordinal(1+pickW(r, []float64{0.5, 0.25, 0.12, 0.07, 0.06})), rank, p.surname)
		if r.IntN(2) == 0 {
			p.peerage += " of " + g.towns[g.r.IntN(len(g.towns))].name
		}
		if !p.female {
			p.title = "lord"
		}
	}
	p.y = 1500 + int(490*(1-r.Float64()*r.Float64())) // skewed towards recent centuries
	p.m = 1 + r.IntN(12)
	p.d = 1 + r.IntN(daysIn(p.y, p.m))
	p.prec = 3 - pickW(r, []float64{0.85, 0.05, 0.10})
	p.postcode = g.postcodeIn(p.town)
	for k := 1 + pickW(r, []float64{0.7, 0.3}); k > 0; k-- {
		p.occupations = append(p.occupations, messyOccupations[pickCum(r, g.occCum)])
	}
	return p
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "1st"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return fmt.Sprintf("%dth", n)
}

// nextPeerage turns "1st baron x" into "2nd baron x".
func nextPeerage(p string) string {
	var n int
	var rest string
	if _, err := fmt.Sscanf(p, "%d", &n); err != nil {
		return p
	}
	if i := strings.IndexByte(p, ' '); i > 0 {
		rest = p[i:]
	}
	return ordinal(n+1) + rest
}

// render writes one record of person p: the original (noisy false) is
// complete and clean apart from some missing fields; a duplicate has the
// full range of messiness.
func (g *messyGen) render(id string, person int, p *messyPerson, noisy bool) []string {
	r := g.r
	chance := func(x float64) bool { return noisy && r.Float64() < x }
	given, surname := p.given, p.surname
	if chance(0.10) { // nickname, or the full name for a nickname
		if d := g.diminutive[given]; len(d) > 0 {
			given = d[r.IntN(len(d))]
		} else if full, ok := names.Nicknames[given]; ok {
			given = full
		}
	}
	if chance(0.08) {
		given = g.typo(given, 1)
	}
	if chance(0.08) {
		surname = g.typo(surname, 1)
	}
	initial := chance(0.08)
	if initial {
		given = given[:1]
	}

	// Full name: [title] given [middles] surname [suffix][, peerage].
	title, suffix, peerage, middles := p.title, p.suffix, p.peerage, p.middles
	if noisy {
		if r.Float64() < 0.4 {
			title = ""
		}
		if r.Float64() < 0.4 {
			peerage = ""
		}
		if r.Float64() < 0.4 {
			middles = nil
		} else if len(middles) > 0 && r.Float64() < 0.3 {
			middles = []string{middles[0][:1]}
		}
	}
	first := []string{given}
	first = append(first, middles...)
	var full string
	switch x := r.Float64(); {
	case noisy && x < 0.07: // "surname, given middle"
		full = surname + ", " + strings.Join(first, " ")
	case noisy && x < 0.12: // "surname given"
		full = surname + " " + strings.Join(first, " ")
	default:
		full = strings.Join(first, " ") + " " + surname
		if initial && r.IntN(2) == 0 {
			full = given + ". " + strings.Join(append(append([]string(nil), middles...), surname), " ")
		}
	}
	if title != "" {
		full = title + " " + full
	}
	if suffix != "" && !chance(0.3) {
		full += " " + suffix
	}
	if peerage != "" {
		full += ", " + peerage
	}
	if chance(0.05) { // a typo of its own: the columns were keyed separately
		full = g.typo(full, 1)
	}
	firstCol := given
	if len(middles) > 0 && chance(0.05) {
		firstCol = given + " " + middles[0]
	}

	row := make([]string, len(MessyHeader))
	row[mID] = id
	row[mCluster] = fmt.Sprintf("rec-%d", person)
	row[mFull] = full
	row[mFirstSur] = given + " " + surname
	row[mFirst] = firstCol
	row[mSur] = surname
	row[mDOB] = g.messyDate(p, noisy)
	row[mPlace] = g.messyPlace(p, noisy)
	row[mPostcode] = g.messyPostcode(p, noisy)
	row[mGender] = "male"
	if p.female {
		row[mGender] = "female"
	}
	row[mOccupation] = p.occupations[r.IntN(len(p.occupations))]
	// Missing values: many, more on duplicates; the name columns less.
	for c := mFull; c < len(row); c++ {
		miss := 0.10
		if noisy {
			miss = 0.20 + 0.20*r.Float64()
		}
		if c == mFull || c == mFirstSur {
			miss /= 2
		}
		if c == mGender || c == mOccupation {
			miss += 0.15
		}
		if r.Float64() < miss {
			row[c] = ""
		}
	}
	return row
}

// messyDate writes the birth date at the precision known, or a degraded
// one: year only ("1845", or Wikidata's "1845-01-01"), year and month,
// or a few days, a month or a year off.
func (g *messyGen) messyDate(p *messyPerson, noisy bool) string {
	r := g.r
	y, m, d, prec := p.y, p.m, p.d, p.prec
	if noisy {
		switch x := r.Float64(); {
		case x < 0.12: // off by a bit
			switch r.IntN(3) {
			case 0:
				d = min(max(d+[]int{-3, -2, -1, 1, 2, 3}[r.IntN(6)], 1), daysIn(y, m))
			case 1:
				m = min(max(m+[]int{-1, 1}[r.IntN(2)], 1), 12)
				d = min(d, daysIn(y, m))
			default:
				y += []int{-1, 1}[r.IntN(2)]
				d = min(d, daysIn(y, m))
			}
		case x < 0.22:
			prec = min(prec, 1)
		case x < 0.27:
			prec = min(prec, 2)
		}
	}
	switch prec {
	case 1:
		if r.IntN(2) == 0 {
			return fmt.Sprintf("%04d-01-01", y)
		}
		return fmt.Sprintf("%04d", y)
	case 2:
		return fmt.Sprintf("%04d-%02d", y, m)
	}
	if noisy && r.Float64() < 0.05 {
		return fmt.Sprintf("%02d/%02d/%04d", d, m, y)
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

func (g *messyGen) messyPlace(p *messyPerson, noisy bool) string {
	r := g.r
	t := g.towns[p.town]
	if !noisy {
		return t.name
	}
	switch x := r.Float64(); {
	case x < 0.08:
		return t.county
	case x < 0.14:
		return t.name + ", " + t.county
	case x < 0.18:
		return t.name + ", england"
	case x < 0.26:
		return g.typo(t.name, 1)
	}
	return t.name
}

func (g *messyGen) messyPostcode(p *messyPerson, noisy bool) string {
	r := g.r
	if !noisy {
		return p.postcode
	}
	switch x := r.Float64(); {
	case x < 0.25: // same district, another street
		return g.postcodeIn(p.town)
	case x < 0.33:
		return g.typo(p.postcode, 1)
	case x < 0.38:
		return strings.ReplaceAll(strings.ToUpper(p.postcode), " ", "")
	case x < 0.43: // another town altogether
		return g.postcodeIn(g.r.IntN(len(g.towns)))
	}
	return p.postcode
}

var messyCommonNames = [][2]string{{"john", "smith"}, {"william", "jones"}, {"thomas", "brown"}, {"mary", "smith"},
	{"john", "williams"}, {"elizabeth", "taylor"}, {"george", "wilson"}}

// Given names of historical records, most frequent first; many are in
// the nickname table, so the nickname noise applies.
var messyMale = strings.Fields(`john william thomas george james charles henry richard robert edward joseph
	francis samuel frederick arthur alexander david peter walter hugh patrick michael albert alfred ernest
	philip stephen benjamin daniel matthew andrew christopher edmund nicholas anthony herbert harold lewis
	ralph roger gilbert humphrey lawrence leonard owen evan rhys archibald duncan angus malcolm neil
	cornelius jacob isaac abraham nathaniel jonathan timothy gregory simon adam martin oliver jasper
	augustus horace cecil percy reginald basil claude rupert lionel howard stanley sidney victor`)

var messyFemale = strings.Fields(`mary elizabeth anne margaret jane catherine sarah ellen alice emily charlotte
	frances harriet louisa caroline isabella eleanor agnes florence edith maud beatrice dorothy helen
	grace susan martha lucy rose victoria clara ada violet marian`)

var messySurnames = strings.Fields(`smith jones williams brown taylor davies wilson evans thomas johnson roberts
	walker wright robinson thompson white hughes edwards green hall wood harris lewis martin jackson clarke
	clark turner hill scott cooper morris ward moore king watson baker harrison morgan patel young allen
	mitchell james anderson phillips lee bell parker davis campbell stewart murray macdonald fraser
	cameron grant gordon hamilton douglas howard percy cavendish russell stanley spencer herbert
	courtenay clifford grey neville seymour talbot montagu bentinck fitzroy somerset villiers`)

var messyOccupations = strings.Fields(`politician priest soldier writer painter lawyer judge physician merchant
	poet diplomat military_officer naval_officer landowner architect engineer composer actor journalist
	historian botanist mathematician bishop banker teacher farmer sculptor explorer inventor chemist
	astronomer philosopher novelist publisher printer organist surgeon`)

var messyRealTowns = strings.Fields(`london edinburgh dublin manchester liverpool bristol glasgow birmingham york
	bath oxford cambridge norwich exeter plymouth leeds sheffield newcastle aberdeen dundee cork belfast
	canterbury winchester salisbury chester durham lincoln nottingham leicester coventry worcester
	gloucester hereford shrewsbury derby hull portsmouth southampton brighton cardiff swansea limerick
	galway perth stirling inverness carlisle lancaster preston bolton halifax wakefield ipswich colchester`)
