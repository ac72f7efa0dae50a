// Package mask hides personal data from support agents while leaving
// enough for an agent to confirm a customer's details with them on the
// phone: a***@c***.io, +1******0134, initials, a birthday's year. It
// depends only on the standard library so that the API and the console
// share it (docs/security.md, "Masking").
package mask

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is how a value is masked.
type Kind string

// The kinds of personal data. None is not personal.
const (
	None     Kind = ""
	Email    Kind = "email"
	Phone    Kind = "phone"
	Name     Kind = "name"
	Address  Kind = "address"
	Birthday Kind = "birthday"
	IP       Kind = "ip"
	Device   Kind = "device"
	// Other is any other personal value: its first character and ***.
	Other Kind = "other"
)

// Kinds are the kinds a configured key may name.
var Kinds = []Kind{Email, Phone, Name, Address, Birthday, IP, Device, Other}

// stars stands for what is hidden; it never says how long it was.
const stars = "***"

// Value masks s as kind.
func Value(kind Kind, s string) string {
	switch kind {
	case None:
		return s
	case Email:
		return maskEmail(s)
	case Phone:
		return maskPhone(s)
	case Name:
		return maskName(s)
	case Birthday:
		return maskBirthday(s)
	case IP:
		return maskIP(s)
	case Device:
		return maskDevice(s)
	}
	return maskOther(s)
}

// maskEmail keeps the first character of the local part and of the
// domain, and the top-level domain: ann@corp.io → a***@c***.io.
func maskEmail(s string) string {
	local, domain, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok || local == "" || domain == "" {
		return maskOther(s)
	}
	tld := ""
	if i := strings.LastIndexByte(domain, '.'); i > 0 && i < len(domain)-1 {
		tld = domain[i:]
		domain = domain[:i]
	}
	return first(local) + stars + "@" + first(domain) + stars + tld
}

// maskPhone keeps a leading + and the first digit (the country code's
// start) and the last four digits: +14155550134 → +1******0134. A number
// of fewer than eight digits keeps its last two.
func maskPhone(s string) string {
	var digits []rune
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits = append(digits, r)
		}
	}
	if len(digits) < 4 {
		return stars
	}
	keepHead, keepTail := 1, 4
	if len(digits) < 8 {
		keepHead, keepTail = 0, 2
	}
	head := ""
	if strings.HasPrefix(strings.TrimSpace(s), "+") {
		head = "+"
	}
	head += string(digits[:keepHead])
	return head + strings.Repeat("*", len(digits)-keepHead-keepTail) + string(digits[len(digits)-keepTail:])
}

// maskName keeps initials: Ann Lee → A. L.
func maskName(s string) string {
	var parts []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '-' || r == ',' }) {
		if r, _ := utf8.DecodeRuneInString(w); unicode.IsLetter(r) {
			parts = append(parts, string(unicode.ToUpper(r))+".")
		}
	}
	if len(parts) == 0 {
		return stars
	}
	return strings.Join(parts, " ")
}

var yearRe = regexp.MustCompile(`\b(1[89]\d\d|20\d\d)\b`)

// maskBirthday keeps the year: 1987-04-12 → 1987-**-**.
func maskBirthday(s string) string {
	if y := yearRe.FindString(s); y != "" {
		return y + "-**-**"
	}
	return stars
}

// maskIP keeps the first part: 203.0.113.7 → 203.*.*.*, 2001:db8::1 → 2001:*.
func maskIP(s string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	switch {
	case err != nil:
		return maskOther(s)
	case a.Is4():
		return fmt.Sprintf("%d.*.*.*", a.As4()[0])
	}
	head, _, _ := strings.Cut(a.String(), ":")
	return head + ":*"
}

// maskDevice keeps the last four characters of a device or advertising ID.
func maskDevice(s string) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) < 12 {
		return stars
	}
	return stars + string(r[len(r)-4:])
}

func maskOther(s string) string {
	if strings.TrimSpace(s) == "" {
		return s
	}
	return first(strings.TrimSpace(s)) + stars
}

func first(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	return string(r)
}

// Rules say which keys (of traits, event properties and context) and which
// identifier types hold personal data.
type Rules struct {
	keys map[string]Kind // by normalised key
}

// defaultKeys are the personal keys of Segment's spec and common variants,
// normalised (lower case, without _ - . and spaces).
var defaultKeys = map[string]Kind{
	"email": Email, "emailaddress": Email, "emails": Email,
	"phone": Phone, "phonenumber": Phone, "mobile": Phone, "mobilephone": Phone, "phones": Phone, "fax": Phone,
	"name": Name, "names": Name, "firstname": Name, "lastname": Name, "fullname": Name, "givenname": Name,
	"familyname": Name, "surname": Name, "middlename": Name, "maidenname": Name,
	"address": Address, "street": Address, "street1": Address, "street2": Address, "addressline1": Address,
	"addressline2": Address, "postalcode": Address, "postcode": Address, "zip": Address, "zipcode": Address,
	"location": Address, "latitude": Address, "longitude": Address,
	"birthday": Birthday, "birthdate": Birthday, "dateofbirth": Birthday, "dob": Birthday,
	"ip": IP, "ipaddress": IP,
	"deviceid": Device, "advertisingid": Device, "idfa": Device, "idfv": Device, "gaid": Device, "adid": Device,
	"devicetoken": Device, "pushtoken": Device,
}

// deviceKeys are personal under a "device" object (Segment's context.device).
var deviceKeys = map[string]Kind{"id": Device, "advertisingid": Device, "token": Device, "name": Name}

// notPersonalParents hold a "name" that names a thing, not a person
// (context.library.name, context.os.name, …).
var notPersonalParents = map[string]bool{"library": true, "os": true, "app": true, "campaign": true,
	"page": true, "screen": true, "network": true, "browser": true, "useragentdata": true, "brands": true}

// identifierKinds are the built-in identifier types that are personal;
// user, anonymous and CRM IDs are what agents look customers up by.
var identifierKinds = map[string]Kind{"email": Email, "phone": Phone, "device_id": Device, "advertising_id": Device, "ip": IP}

// NewRules returns the default rules plus the configured keys: "key" (its
// kind Other) or "key=kind" (e.g. "anniversary=birthday"). A key is
// matched as a trait, property or context key anywhere in a document and
// as an identifier type.
func NewRules(extra []string) (*Rules, error) {
	r := &Rules{keys: map[string]Kind{}}
	for k, v := range defaultKeys {
		r.keys[k] = v
	}
	for _, e := range extra {
		key, kind, _ := strings.Cut(strings.TrimSpace(e), "=")
		if normKey(key) == "" {
			return nil, fmt.Errorf("mask: personal key %q is empty", e)
		}
		k := Other
		if kind != "" {
			k = Kind(strings.ToLower(kind))
			if !validKind(k) {
				return nil, fmt.Errorf("mask: personal key %q: kind %q is not one of %v", e, kind, Kinds)
			}
		}
		r.keys[normKey(key)] = k
	}
	return r, nil
}

// Default are the rules without configured keys.
var Default, _ = NewRules(nil)

func validKind(k Kind) bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// Keys lists the personal keys, normalised, sorted (for documentation and tests).
func (r *Rules) Keys() []string {
	out := make([]string, 0, len(r.keys))
	for k := range r.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func normKey(k string) string {
	return strings.Map(func(c rune) rune {
		switch c {
		case '_', '-', '.', ' ':
			return -1
		}
		return unicode.ToLower(c)
	}, k)
}

// KindOfKey is the kind of a value under key, inside an object under parent
// ("" at the top).
func (r *Rules) KindOfKey(parent, key string) Kind {
	p, k := normKey(parent), normKey(key)
	if p == "device" {
		if kind, ok := deviceKeys[k]; ok {
			return kind
		}
	}
	if k == "name" && notPersonalParents[p] {
		return None
	}
	// A dotted path (address.city) is personal when any part is.
	for _, part := range strings.Split(key, ".") {
		if kind := r.keys[normKey(part)]; kind != None {
			return kind
		}
	}
	return r.keys[k]
}

// KindOfIdentifier is the kind of an identifier type's values.
func (r *Rules) KindOfIdentifier(typ string) Kind {
	if k, ok := identifierKinds[strings.ToLower(typ)]; ok {
		return k
	}
	return r.keys[normKey(typ)]
}

// Identifier masks an identifier's value by its type.
func (r *Rules) Identifier(typ, value string) string {
	return Value(r.KindOfIdentifier(typ), value)
}
