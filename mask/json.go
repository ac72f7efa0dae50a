package mask

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// JSON masks a JSON document (traits, event properties or context, an
// audit entry's snapshots, a score's explanation): every value under a
// personal key, whatever its depth or shape; the value of an identifier
// object ({"type", "value"}) by its type; the values a comparison compared
// ({"field", "a", "b"}) by the field; and, in every other string, what
// looks like an email, phone number or IP address (Scrub). key is the
// document's own key, if any (a trait's path).
func (r *Rules) JSON(data []byte, key string) ([]byte, error) {
	return r.document(data, key, r.KindOfKey("", key))
}

// JSONAs masks every string and long number of a JSON document as kind,
// whatever its keys (a value whose meaning only its producer knows).
func (r *Rules) JSONAs(data []byte, kind Kind) ([]byte, error) {
	return r.document(data, "", kind)
}

func (r *Rules) document(data []byte, key string, kind Kind) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 || string(bytes.TrimSpace(data)) == "null" {
		return data, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("mask: json: %w", err)
	}
	return json.Marshal(r.walk(v, "", key, kind))
}

// walk masks v, found under key in an object under parent; kind is set
// when an enclosing key made everything below it personal.
func (r *Rules) walk(v any, parent, key string, kind Kind) any {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["type"].(string); ok {
			if val, ok := x["value"].(string); ok {
				if k := r.KindOfIdentifier(t); k != None || kind != None {
					x["value"] = Value(or(k, kind), val)
				}
			}
		}
		var fieldKind Kind
		if f, ok := x["field"].(string); ok {
			// Compared values are personal by nature: unknown fields too.
			fieldKind = or(r.KindOfKey("", f), Other)
		}
		for k, c := range x {
			switch {
			case (k == "a" || k == "b") && fieldKind != None:
				x[k] = r.walk(c, key, k, or(kind, fieldKind))
			case k == "value" && x["type"] != nil:
				if _, done := c.(string); done {
					continue
				}
				x[k] = r.walk(c, key, k, kind)
			default:
				x[k] = r.walk(c, key, k, or(kind, r.KindOfKey(key, k)))
			}
		}
		return x
	case []any:
		for i, c := range x {
			x[i] = r.walk(c, parent, key, kind)
		}
		return x
	case string:
		if kind != None {
			return Value(kind, x)
		}
		return Scrub(x)
	case json.Number:
		// Counts and small numbers stay; a phone or date written as a
		// number does not.
		if kind != None && len(strings.TrimLeft(x.String(), "-")) >= 4 {
			return Value(kind, x.String())
		}
		return x
	}
	return v
}

func or(k, def Kind) Kind {
	if k != None {
		return k
	}
	return def
}

var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	phoneRe = regexp.MustCompile(`\+?\(?\d[\d ().-]{5,}\d`)
	ipv4Re  = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	dateRe  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)
)

// Scrub masks what looks like an email, a phone number or an IPv4 address
// in free text: an error message, a steward's note, a string no key
// classifies. Digits inside a longer word (p_01H8…, an ID) and dates are
// left alone.
func Scrub(s string) string {
	s = emailRe.ReplaceAllStringFunc(s, maskEmail)
	s = ipv4Re.ReplaceAllStringFunc(s, maskIP)
	var b strings.Builder
	last := 0
	for _, m := range phoneRe.FindAllStringIndex(s, -1) {
		i, j := m[0], m[1]
		if (i > 0 && isWord(s[i-1])) || (j < len(s) && isWord(s[j])) || dateRe.MatchString(s[i:j]) || digitCount(s[i:j]) < 7 {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(maskPhone(s[i:j]))
		last = j
	}
	b.WriteString(s[last:])
	return b.String()
}

func isWord(c byte) bool {
	return c == '_' || c == '*' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func digitCount(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}
