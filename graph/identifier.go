package graph

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Built-in identifier types. Any other well-formed name is a custom type.
const (
	TypeEmail         = "email"
	TypePhone         = "phone"
	TypeUserID        = "user_id"
	TypeAnonymousID   = "anonymous_id"
	TypeDeviceID      = "device_id"
	TypeAdvertisingID = "advertising_id"
	TypeCRMID         = "crm_id"
)

// MaxValueLen bounds an identifier's value in bytes; longer values are
// rejected rather than truncated, since a truncated ID could join strangers.
const MaxValueLen = 512

var typeNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Key names one identifier: its type and its normalised value.
type Key struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func (k Key) String() string { return k.Type + ":" + k.Value }

// Less orders keys; every lock is taken in this order to avoid deadlocks.
func (k Key) Less(o Key) bool {
	if k.Type != o.Type {
		return k.Type < o.Type
	}
	return k.Value < o.Value
}

// Compare orders keys like Less, for slices.SortFunc.
func (k Key) Compare(o Key) int {
	switch {
	case k.Less(o):
		return -1
	case o.Less(k):
		return 1
	}
	return 0
}

// IsStrong reports whether the type names one person on its own; hub
// detection counts how many distinct strong identifiers a value is seen with.
func IsStrong(typ string) bool { return typ == TypeUserID || typ == TypeCRMID }

// Identifier is a node of the identity graph.
type Identifier struct {
	Key
	// Profile is the profile the identifier joined; it may since have been
	// absorbed into another (see Profile.MergedInto).
	Profile   string    `json:"profile"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Sources   []string  `json:"sources"`
	// Strong counts the distinct strong identifiers seen with this one.
	Strong int `json:"strong"`
	// Users counts the people seen with this one (SharedLimits): distinct
	// user IDs, and forms the name guard held from its profile.
	Users int  `json:"users,omitempty"`
	Hub   bool `json:"hub,omitempty"`
}

// RejectedValue is an identifier value that was refused, with the reason.
type RejectedValue struct {
	Field  string `json:"field"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// Normalizer turns raw identifier values into keys, or says why it cannot.
type Normalizer struct {
	// Region is the default region for phone numbers without a country code.
	Region    string
	Blocklist *Blocklist
}

// NewNormalizer returns a normaliser with the default block list.
func NewNormalizer(region string) *Normalizer {
	if region == "" {
		region = "US"
	}
	return &Normalizer{Region: strings.ToUpper(region), Blocklist: DefaultBlocklist()}
}

// ErrPlaceholder marks a value that is well formed but on the block list.
var ErrPlaceholder = Errorf(KindInvalid, "placeholder value")

// ValidateType checks that typ is a usable identifier type name.
func ValidateType(typ string) error {
	if !typeNamePattern.MatchString(typ) {
		return Errorf(KindInvalid, "identifier type %q must match %s", typ, typeNamePattern)
	}
	return nil
}

// Normalize returns the key for a raw value of the given type. Errors are of
// kind invalid and say why; placeholders wrap ErrPlaceholder.
func (n *Normalizer) Normalize(typ, raw string) (Key, error) {
	if err := ValidateType(typ); err != nil {
		return Key{}, err
	}
	if !utf8.ValidString(raw) {
		return Key{}, Errorf(KindInvalid, "%s is not valid UTF-8", typ)
	}
	v := strings.TrimSpace(raw)
	if v == "" {
		return Key{}, Errorf(KindInvalid, "%s is empty", typ)
	}
	if len(v) > MaxValueLen {
		return Key{}, Errorf(KindInvalid, "%s is longer than %d bytes", typ, MaxValueLen)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return Key{}, Errorf(KindInvalid, "%s contains control characters", typ)
	}
	var err error
	switch typ {
	case TypeEmail:
		v, err = normalizeEmail(v)
	case TypePhone:
		v, err = n.normalizePhone(v)
	}
	if err != nil {
		return Key{}, err
	}
	k := Key{Type: typ, Value: v}
	if n.Blocklist != nil && n.Blocklist.Blocks(k) {
		return Key{}, &Error{Kind: KindInvalid, Msg: fmt.Sprintf("%s %q is a placeholder value", typ, v), Err: ErrPlaceholder}
	}
	return k, nil
}

func normalizeEmail(v string) (string, error) {
	v = strings.ToLower(v)
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 || strings.Count(v, "@") != 1 {
		return "", Errorf(KindInvalid, "email %q is not an address", v)
	}
	local, domain := v[:at], v[at+1:]
	if len(local) > 64 || len(v) > 254 || strings.ContainsAny(v, " \t<>()[],;:\"\\") {
		return "", Errorf(KindInvalid, "email %q is not an address", v)
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", Errorf(KindInvalid, "email %q has no valid domain", v)
	}
	return v, nil
}

func (n *Normalizer) normalizePhone(v string) (string, error) {
	num, err := phonenumbers.Parse(v, n.Region)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return "", Errorf(KindInvalid, "phone %q is not a phone number", v)
	}
	national := fmt.Sprint(num.GetNationalNumber())
	if strings.Count(national, national[:1]) == len(national) {
		return "", &Error{Kind: KindInvalid, Msg: fmt.Sprintf("phone %q is a placeholder value", v), Err: ErrPlaceholder}
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// Blocklist holds placeholder values that must never join profiles: exact
// values (for any type, compared after normalisation) and patterns.
type Blocklist struct {
	exact    map[string]bool
	patterns []*regexp.Regexp
}

// DefaultBlocklist returns the values seen most often in the wild where a
// form or an SDK had nothing real to send.
func DefaultBlocklist() *Blocklist {
	b := &Blocklist{exact: map[string]bool{}}
	for _, v := range []string{
		"test@test.com", "test@example.com", "email@email.com", "a@a.com", "none@none.com",
		"null", "nil", "none", "undefined", "n/a", "na", "anonymous", "unknown", "guest",
		"0", "-1", "[object object]", "nan", "false", "true", "00000000-0000-0000-0000-000000000000",
	} {
		b.exact[v] = true
	}
	for _, p := range []string{
		`^no-?reply@`, `^do-?not-?reply@`, `@example\.(com|org|net)$`, `^test@`,
		`^0+$`,
	} {
		b.patterns = append(b.patterns, regexp.MustCompile(p))
	}
	return b
}

// Add puts an entry on the list: "re:PATTERN" adds a regular expression,
// anything else an exact value (compared case-insensitively).
func (b *Blocklist) Add(entry string) error {
	if p, ok := strings.CutPrefix(entry, "re:"); ok {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("blocklist: %w", err)
		}
		b.patterns = append(b.patterns, re)
		return nil
	}
	b.exact[strings.ToLower(strings.TrimSpace(entry))] = true
	return nil
}

// Blocks reports whether the key is a placeholder.
func (b *Blocklist) Blocks(k Key) bool {
	v := strings.ToLower(k.Value)
	if b.exact[v] || repeatedChar(v, 6) {
		return true
	}
	for _, re := range b.patterns {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

// repeatedChar reports whether v is one character repeated at least n times
// ("xxxxxx", "111111"): what people type to get past a required field.
func repeatedChar(v string, n int) bool {
	if len(v) < n {
		return false
	}
	return strings.Count(v, v[:1]) == len(v)
}
