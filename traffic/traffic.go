// Package traffic generates the Segment calls and CRM records that a CDP
// receives from real people, with the truth (who sent what) kept aside: the
// project's adversary. People use several browsers and apps, share family
// tablets and library computers, type placeholders and the same junk
// values as strangers, write phones and emails in several formats, change
// emails, alias IDs, come back on new devices; CRM exports hold typo'd
// duplicates with no identifier in common; SDKs deliver late, out of order,
// twice and in bursts. The same options and seed give the same stream.
package traffic

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Options shape a stream. Zero fields take the defaults of Defaults.
type Options struct {
	People int
	Seed   uint64
	// Start is the time of the first session; the stream spans 30 days.
	Start time.Time
	// Household is the share of people who live with others and share a
	// family tablet (and a TV app).
	Household float64
	// Library is the share of people who sign in once on a public computer.
	Library float64
	// Junk is the share of people who type a placeholder or junk value.
	Junk float64
	// CRM is the share of people with a CRM record; CRMDuplicate the share
	// of those with a second, typo'd record sharing no identifier.
	CRM, CRMDuplicate float64
	// Late is the share of messages delivered hours late (offline apps);
	// Redeliver the share delivered twice (SDK retries).
	Late, Redeliver float64
	// Burst is the share of sessions with a burst of track calls.
	Burst float64
	// FormFill is the share of sessions on a shared device, by someone not
	// signed in there, that submit a form with their email (an identify the
	// SDK sends with whoever did sign in).
	FormFill float64
}

// Defaults returns the options a stream is generated with unless told.
func Defaults() Options {
	return Options{People: 1000, Seed: 1, Start: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC),
		Household: 0.3, Library: 0.03, Junk: 0.06, CRM: 0.4, CRMDuplicate: 0.3, Late: 0.03, Redeliver: 0.03, Burst: 0.05, FormFill: 0.25}
}

// Message is one Segment call as an SDK sends it.
type Message struct {
	// Body is the message's JSON, with its "type", "messageId", "timestamp"
	// and "sentAt".
	Body json.RawMessage
	// Person is who sent it (the truth).
	Person int
	// SendAt orders the stream; a redelivery has its original's messageId.
	SendAt time.Time
	// Redelivery marks a second delivery of an earlier message.
	Redelivery bool
	// Foreign marks a message that carries another person's user ID (sent
	// from a device someone else signed into): no identity graph can
	// place it right, so event scores leave it out.
	Foreign bool
}

// Record is one CRM row, in the form of /v1/import's records.
type Record struct {
	Line        int               `json:"line"`
	Identifiers map[string]string `json:"identifiers"`
	Traits      map[string]any    `json:"traits"`
	Person      int               `json:"-"`
}

// Stream is what a generator produced.
type Stream struct {
	Options  Options
	Messages []Message
	Records  []Record
	// Owner is the truth: the person each identifier belongs to, as
	// idgraph normalises it. Identifiers that belong to several people
	// (family tablets, library computers, junk values) are not in it: no
	// profile can be right about them, so scoring leaves them out.
	Owner map[graph.Key]int
	Stats Stats
}

// Stats counts what the stream holds, for the reader of a report.
type Stats struct {
	People, Messages, Redeliveries, Late, Bursts, Records, CRMDuplicates int
	Households, SharedDevices, LibraryLogins, JunkValues, EmailChanges   int
	Aliases, NewDeviceLogins, SharedDeviceForms                          int
}

type device struct {
	anon, id, adID string
	app            bool
	shared         bool
	// user is the userId the SDK on this device sends (set by identify,
	// kept until the app is reset: a family tablet stays signed in).
	user string
}

type person struct {
	id            int
	first, last   string
	birthday      string
	emails        []string // the current one last
	phone         string   // ten digits
	userID        string   // "" for people who never register
	devices       []*device
	home          []*device // shared with the household
	junkEmail     string
	junkPhone     string
	identifiedOn  map[*device]bool
	emailChangeAt int // session index at which the email changes (-1 never)
}

type gen struct {
	o       Options
	r       *rand.Rand
	seq     int
	out     *Stream
	library []*device
	norm    *graph.Normalizer
	shared  map[graph.Key]bool
}

// Generate builds a stream.
func Generate(o Options) *Stream {
	d := Defaults()
	if o.People <= 0 {
		o.People = d.People
	}
	if o.Start.IsZero() {
		o.Start = d.Start
	}
	g := &gen{o: o, r: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		out: &Stream{Options: o, Owner: map[graph.Key]int{}}, norm: graph.NewNormalizer("US"), shared: map[graph.Key]bool{}}
	people := g.people()
	for _, p := range people {
		g.sessions(p)
		g.crm(p)
	}
	g.deliver()
	for k := range g.shared {
		delete(g.out.Owner, k)
	}
	s := g.out
	s.Stats.People = len(people)
	s.Stats.Messages = len(s.Messages)
	s.Stats.Records = len(s.Records)
	return s
}

func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.r.IntN(16)]
	}
	return string(b)
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) newDevice(app bool) *device {
	d := &device{anon: g.uuid(), app: app}
	if app {
		d.id = strings.ToUpper(g.uuid())
		if g.chance(0.5) {
			d.adID = strings.ToUpper(g.uuid())
		}
	}
	return d
}

func (g *gen) uuid() string {
	return g.hex(8) + "-" + g.hex(4) + "-4" + g.hex(3) + "-a" + g.hex(3) + "-" + g.hex(12)
}

func (g *gen) people() []*person {
	n := g.o.People
	libraries := max(1, n/300)
	for range libraries {
		d := g.newDevice(false)
		d.shared = true
		g.share(d)
		g.library = append(g.library, d)
	}
	var out []*person
	for len(out) < n {
		size := 1
		if g.chance(g.o.Household) {
			size = 2 + g.r.IntN(3)
		}
		size = min(size, n-len(out))
		last := pick(g.r, surnames)
		var home []*device
		if size > 1 {
			g.out.Stats.Households++
			tablet := g.newDevice(g.chance(0.5))
			tablet.shared = true
			home = append(home, tablet)
			if g.chance(0.4) {
				tv := g.newDevice(true)
				tv.shared = true
				home = append(home, tv)
			}
			for _, d := range home {
				g.out.Stats.SharedDevices++
				g.share(d)
			}
		}
		for k := range size {
			p := g.person(len(out), last, k > 0)
			p.home = home
			out = append(out, p)
		}
	}
	return out
}

func (g *gen) person(id int, last string, household bool) *person {
	p := &person{id: id, first: pick(g.r, givenNames), last: last, identifiedOn: map[*device]bool{}, emailChangeAt: -1}
	if !household && g.chance(0.7) {
		p.last = pick(g.r, surnames) // most single people: a surname of their own choice of the list
	}
	p.birthday = fmt.Sprintf("%d-%02d-%02d", 1945+g.r.IntN(60), 1+g.r.IntN(12), 1+g.r.IntN(28))
	p.phone = pick(g.r, areaCodes) + fmt.Sprintf("%d%06d", 2+g.r.IntN(8), g.r.IntN(1000000))
	p.emails = []string{g.email(p)}
	if g.chance(0.12) {
		p.emails = append(p.emails, g.email(p))
		g.out.Stats.EmailChanges++
	}
	if g.chance(0.8) {
		p.userID = "u-" + g.hex(10)
	}
	for range 1 + g.r.IntN(2) {
		p.devices = append(p.devices, g.newDevice(false))
	}
	for range g.r.IntN(3) {
		p.devices = append(p.devices, g.newDevice(true))
	}
	if g.chance(g.o.Junk) {
		g.out.Stats.JunkValues++
		if g.chance(0.6) {
			p.junkEmail = pick(g.r, junkEmails)
			g.mark(graph.TypeEmail, p.junkEmail, -1)
		} else {
			p.junkPhone = pick(g.r, junkPhones)
			g.mark(graph.TypePhone, p.junkPhone, -1)
		}
	}
	g.mark(graph.TypePhone, p.phone, id)
	for _, e := range p.emails {
		g.mark(graph.TypeEmail, e, id)
	}
	if p.userID != "" {
		g.mark(graph.TypeUserID, p.userID, id)
	}
	for _, d := range p.devices {
		g.markDevice(d, id)
	}
	return p
}

// mark records who an identifier belongs to (-1: several people), as
// idgraph normalises it; values it refuses are no identifiers at all.
func (g *gen) mark(typ, raw string, person int) {
	k, err := g.norm.Normalize(typ, raw)
	if err != nil {
		return
	}
	if person < 0 {
		g.shared[k] = true
		return
	}
	if owner, ok := g.out.Owner[k]; ok && owner != person {
		g.shared[k] = true // two people drew one value
	}
	g.out.Owner[k] = person
}

func (g *gen) markDevice(d *device, person int) {
	g.mark(graph.TypeAnonymousID, d.anon, person)
	if d.id != "" {
		g.mark(graph.TypeDeviceID, d.id, person)
	}
	if d.adID != "" {
		g.mark(graph.TypeAdvertisingID, d.adID, person)
	}
}

func (g *gen) share(d *device) { g.markDevice(d, -1) }

func (g *gen) email(p *person) string {
	local := strings.ToLower(p.first)
	switch g.r.IntN(4) {
	case 0:
		local += "." + strings.ToLower(p.last)
	case 1:
		local = local[:1] + strings.ToLower(p.last)
	case 2:
		local += fmt.Sprint(g.r.IntN(100))
	}
	// A suffix makes the address the person's own: two John Smiths are two
	// mailboxes.
	return local + "." + g.hex(4) + "@" + pick(g.r, domains)
}

// sessions writes a person's visits over 30 days.
func (g *gen) sessions(p *person) {
	n := 2 + g.r.IntN(8)
	if len(p.emails) > 1 {
		p.emailChangeAt = n / 2
	}
	library := g.chance(g.o.Library)
	t := g.o.Start.Add(time.Duration(g.r.Int64N(int64(24 * time.Hour))))
	for i := range n {
		t = t.Add(time.Duration(g.r.Int64N(int64(30*24*time.Hour) / int64(n))))
		d := p.devices[g.r.IntN(len(p.devices))]
		switch {
		case library && i == n/2:
			d = g.library[g.r.IntN(len(g.library))]
		case len(p.home) > 0 && g.chance(0.35):
			d = p.home[g.r.IntN(len(p.home))]
		}
		g.session(p, d, i, t)
	}
}

func (g *gen) session(p *person, d *device, i int, t time.Time) {
	email := p.emails[0]
	if p.emailChangeAt >= 0 && i >= p.emailChangeAt {
		email = p.emails[len(p.emails)-1]
	}
	step := func() time.Time {
		t = t.Add(time.Duration(5+g.r.IntN(120)) * time.Second)
		return t
	}
	events := 1 + g.r.IntN(5)
	login := -1
	if p.userID != "" && d.user != p.userID {
		switch {
		case d.shared && g.library != nil && slices.Contains(g.library, d):
			login = g.r.IntN(events) // people sign in at the library to do anything
			g.out.Stats.LibraryLogins++
		case d.shared:
			if g.chance(0.5) {
				login = g.r.IntN(events)
			}
		case !p.identifiedOn[d] && g.chance(0.6):
			login = g.r.IntN(events)
		}
	}
	form := -1
	if d.shared && d.user != p.userID && login < 0 && g.chance(g.o.FormFill) {
		form = g.r.IntN(events) // a newsletter form on someone else's tablet
	}
	for k := range events {
		if k == form {
			g.formFill(p, d, email, step())
		}
		if k == login {
			g.identify(p, d, email, step())
			if !d.shared && len(p.identifiedOn) > 1 {
				g.out.Stats.NewDeviceLogins++
			}
		}
		if g.chance(g.o.Burst / float64(events)) {
			g.out.Stats.Bursts++
			for range 20 + g.r.IntN(60) {
				t = t.Add(time.Duration(g.r.IntN(300)) * time.Millisecond)
				g.event(p, d, "track", t)
			}
		}
		typ := "page"
		if d.app {
			typ = "screen"
		}
		if g.chance(0.4) {
			typ = "track"
		}
		g.event(p, d, typ, step())
	}
	if d.shared && slices.Contains(g.library, d) && d.user == p.userID && g.chance(0.5) {
		d.user = "" // signed out; the anonymous ID stays
	}
}

func (g *gen) identify(p *person, d *device, email string, t time.Time) {
	traits := map[string]any{"firstName": p.first, "lastName": p.last}
	switch {
	case p.junkEmail != "" && g.chance(0.7):
		traits["email"] = g.emailFormat(p.junkEmail)
	case g.chance(0.85):
		traits["email"] = g.emailFormat(email)
	}
	switch {
	case p.junkPhone != "" && g.chance(0.7):
		traits["phone"] = p.junkPhone
	case g.chance(0.5):
		traits["phone"] = g.phoneFormat(p.phone)
	}
	if g.chance(0.3) {
		traits["birthday"] = p.birthday
	}
	if g.chance(0.2) {
		delete(traits, "lastName")
		traits["name"] = p.first + " " + p.last
		delete(traits, "firstName")
	}
	m := g.base("identify", d, t)
	m["userId"] = p.userID
	m["traits"] = traits
	g.emit(p, m, t)
	previous := d.user
	d.user = p.userID
	p.identifiedOn[d] = true
	if !d.app && !d.shared && previous == "" && g.chance(0.15) {
		g.out.Stats.Aliases++
		a := g.base("alias", nil, t.Add(time.Second))
		a["previousId"] = d.anon
		a["userId"] = p.userID
		g.emit(p, a, t.Add(time.Second))
	}
}

// formFill is an identify without a user ID: a form typed into a shared
// device, which the SDK sends with whoever signed in there last. The
// evidence says the form's email belongs to that user; it does not.
func (g *gen) formFill(p *person, d *device, email string, t time.Time) {
	g.out.Stats.SharedDeviceForms++
	m := g.base("identify", d, t)
	if d.user != "" {
		m["userId"] = d.user
	}
	traits := map[string]any{"email": g.emailFormat(email), "firstName": p.first}
	if g.chance(0.3) {
		traits["phone"] = g.phoneFormat(p.phone)
	}
	m["traits"] = traits
	g.emit(p, m, t)
}

func (g *gen) event(p *person, d *device, typ string, t time.Time) {
	m := g.base(typ, d, t)
	if d.user != "" {
		m["userId"] = d.user
	}
	switch typ {
	case "track":
		m["event"] = pick(g.r, eventNames)
		m["properties"] = map[string]any{"value": g.r.IntN(200)}
	default:
		m["name"] = pick(g.r, pageNames)
	}
	g.emit(p, m, t)
}

func (g *gen) base(typ string, d *device, t time.Time) map[string]any {
	g.seq++
	m := map[string]any{"type": typ, "messageId": fmt.Sprintf("msg-%d-%s", g.seq, g.hex(6)), "timestamp": t.Format(time.RFC3339Nano)}
	if d != nil {
		m["anonymousId"] = d.anon
		if d.app {
			dev := map[string]any{"id": d.id, "type": "ios"}
			if d.adID != "" {
				dev["advertisingId"] = d.adID
			}
			m["context"] = map[string]any{"device": dev, "library": map[string]any{"name": "analytics-ios", "version": "4.1.8"}}
		} else {
			m["context"] = map[string]any{"library": map[string]any{"name": "analytics.js", "version": "next-1.84.3"},
				"userAgent": "Mozilla/5.0"}
		}
	}
	return m
}

// emit queues a message; most are sent within seconds, some hours late
// (an app offline), some twice (a retry after a lost answer).
func (g *gen) emit(p *person, m map[string]any, t time.Time) {
	send := t.Add(time.Duration(200+g.r.IntN(3000)) * time.Millisecond)
	if g.chance(g.o.Late) {
		send = t.Add(time.Duration(1+g.r.IntN(48)) * time.Hour)
		g.out.Stats.Late++
	}
	m["sentAt"] = send.Format(time.RFC3339Nano)
	body, err := json.Marshal(m)
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	uid, _ := m["userId"].(string)
	foreign := uid != "" && uid != p.userID
	g.out.Messages = append(g.out.Messages, Message{Body: body, Person: p.id, SendAt: send, Foreign: foreign})
	if g.chance(g.o.Redeliver) {
		g.out.Stats.Redeliveries++
		g.out.Messages = append(g.out.Messages, Message{Body: body, Person: p.id, SendAt: send.Add(time.Duration(1+g.r.IntN(600)) * time.Second), Redelivery: true, Foreign: foreign})
	}
}

func (g *gen) crm(p *person) {
	if !g.chance(g.o.CRM) {
		return
	}
	rec := Record{Person: p.id, Identifiers: map[string]string{"crm_id": fmt.Sprintf("C-%07d", g.r.IntN(10_000_000))},
		Traits: map[string]any{"firstName": p.first, "lastName": p.last, "birthday": p.birthday}}
	if g.chance(0.8) {
		rec.Identifiers["email"] = g.emailFormat(p.emails[g.r.IntN(len(p.emails))])
	}
	if g.chance(0.6) {
		rec.Identifiers["phone"] = g.phoneFormat(p.phone)
	}
	g.mark(graph.TypeCRMID, rec.Identifiers["crm_id"], p.id)
	g.addRecord(rec)
	if g.chance(g.o.CRMDuplicate) {
		g.out.Stats.CRMDuplicates++
		dup := Record{Person: p.id, Identifiers: map[string]string{"crm_id": fmt.Sprintf("C-%07d", g.r.IntN(10_000_000))},
			Traits: map[string]any{"firstName": typo(g.r, p.first), "lastName": p.last, "birthday": p.birthday}}
		if g.chance(0.5) {
			dup.Traits["firstName"], dup.Traits["lastName"] = p.first, typo(g.r, p.last)
		}
		g.mark(graph.TypeCRMID, dup.Identifiers["crm_id"], p.id)
		g.addRecord(dup)
	}
}

func (g *gen) addRecord(r Record) {
	r.Line = len(g.out.Records) + 2 // after a CSV header, as import reports lines
	g.out.Records = append(g.out.Records, r)
}

// deliver orders the stream by send time (ties in generation order).
func (g *gen) deliver() {
	slices.SortStableFunc(g.out.Messages, func(a, b Message) int { return a.SendAt.Compare(b.SendAt) })
}

func (g *gen) emailFormat(e string) string {
	switch g.r.IntN(6) {
	case 0:
		return strings.ToUpper(e[:1]) + e[1:]
	case 1:
		return " " + e + " "
	case 2:
		return strings.ToUpper(e)
	}
	return e
}

func (g *gen) phoneFormat(p string) string {
	if len(p) != 10 {
		return p
	}
	a, b, c := p[:3], p[3:6], p[6:]
	switch g.r.IntN(7) {
	case 0:
		return "(" + a + ") " + b + "-" + c
	case 1:
		return a + "." + b + "." + c
	case 2:
		return a + "-" + b + "-" + c
	case 3:
		return "+1 " + a + " " + b + " " + c
	case 4:
		return "1" + p
	case 5:
		return "+1" + p
	}
	return p
}

// typo makes one keyboard slip: a swap, a drop or a doubled letter.
func typo(r *rand.Rand, s string) string {
	if len(s) < 3 {
		return s
	}
	i := 1 + r.IntN(len(s)-2)
	switch r.IntN(3) {
	case 0:
		return s[:i] + s[i+1:i+2] + s[i:i+1] + s[i+2:]
	case 1:
		return s[:i] + s[i+1:]
	}
	return s[:i] + s[i:i+1] + s[i:]
}

// pick draws from a list, favouring its head (names are Zipf-like).
func pick(r *rand.Rand, xs []string) string {
	i := int(float64(len(xs)) * r.Float64() * r.Float64())
	return xs[i]
}

var (
	givenNames = []string{"James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
		"William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Maria", "Karen", "Steven", "Nancy",
		"Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Ashley", "Paul", "Emily", "Andrew", "Donna",
		"Joshua", "Michelle", "Kevin", "Carol", "Brian", "Amanda", "George", "Melissa", "Timothy", "Deborah", "Ronald",
		"Stephanie", "Jason", "Rebecca", "Edward", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Amy", "Gary",
		"Kathleen", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Brenda", "Larry", "Emma", "Justin", "Anna"}
	surnames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
		"Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
		"Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
		"Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
		"Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers"}
	areaCodes  = []string{"312", "415", "646", "713", "206", "305", "617", "404", "503", "702", "214", "602", "303", "612"}
	domains    = []string{"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com", "proton.me", "comcast.net"}
	junkEmails = []string{"none@none.com", "test@test.com", "noemail@noemail.com", "asdf@asdf.com", "no@email.com", "na@na.com", "x@x.com"}
	junkPhones = []string{"0000000000", "1234567890", "5555555555", "(999) 999-9999", "000-000-0000"}
	eventNames = []string{"Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Order Completed", "Signed In", "Video Played"}
	pageNames  = []string{"Home", "Pricing", "Product", "Cart", "Checkout", "Account", "Search", "Blog"}
)

func sortedKeys(m map[graph.Key]int) []graph.Key {
	ks := make([]graph.Key, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, graph.Key.Compare)
	return ks
}
