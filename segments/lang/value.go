package lang

import (
	"cmp"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type is a static type, and the kind of a runtime Value.
type Type int

const (
	// TypeAny is a value whose type is known only when evaluated (a
	// trait, a property); as a Value's kind it means missing.
	TypeAny Type = iota
	TypeBool
	TypeNumber
	TypeString
	TypeTimestamp
	TypeDuration
	TypeList
	typeEvents // events(...) without its reducer: no value yet
)

func (t Type) String() string {
	switch t {
	case TypeBool:
		return "boolean"
	case TypeNumber:
		return "number"
	case TypeString:
		return "string"
	case TypeTimestamp:
		return "timestamp"
	case TypeDuration:
		return "duration"
	case TypeList:
		return "list"
	case typeEvents:
		return "event chain"
	}
	return "any"
}

// Value is a runtime value. The zero Value is missing.
type Value struct {
	Type Type
	Bool bool
	Num  float64
	Str  string
	Time time.Time
	Dur  time.Duration
	List []Value

	// slope is how the value moves with the clock (now() is +1, now() - x
	// is +1, x - now() is -1): comparisons use it to find when they flip.
	slope int
}

// Missing reports whether v is the missing value.
func (v Value) Missing() bool { return v.Type == TypeAny }

func boolVal(b bool) Value             { return Value{Type: TypeBool, Bool: b} }
func numVal(f float64) Value           { return Value{Type: TypeNumber, Num: f} }
func strVal(s string) Value            { return Value{Type: TypeString, Str: s} }
func timeVal(t time.Time) Value        { return Value{Type: TypeTimestamp, Time: t} }
func durVal(d time.Duration) Value     { return Value{Type: TypeDuration, Dur: d} }
func (v Value) truthy() bool           { return v.Type == TypeBool && v.Bool }
func (v Value) isScalar() bool         { return v.Type >= TypeBool && v.Type <= TypeDuration }
func numberOK(f float64) (Value, bool) { return numVal(f), !math.IsNaN(f) && !math.IsInf(f, 0) }
func (v Value) sameType(w Value) bool  { return v.Type == w.Type && v.Type != TypeAny }
func (v Value) Equal(w Value) bool     { return v.sameType(w) && v.isScalar() && compare(v, w) == 0 }
func isNumericString(s string) bool {
	return s != "" && (isDigit(s[0]) || s[0] == '-') && json.Valid([]byte(s)) && strings.TrimSpace(s) == s
}

// compare orders two values of one orderable type (or two booleans:
// false < true): -1, 0 or 1.
func compare(a, b Value) int {
	switch a.Type {
	case TypeBool:
		switch {
		case a.Bool == b.Bool:
			return 0
		case !a.Bool:
			return -1
		}
		return 1
	case TypeNumber:
		return cmp.Compare(a.Num, b.Num)
	case TypeString:
		return strings.Compare(a.Str, b.Str)
	case TypeTimestamp:
		return a.Time.Compare(b.Time)
	case TypeDuration:
		return cmp.Compare(a.Dur, b.Dur)
	}
	return 0
}

// totalCompare orders values of any scalar types: by type (boolean,
// number, string, timestamp, duration), then by value. It is the order
// of distinct(...) and of mode(...)'s tie rule.
func totalCompare(a, b Value) int {
	if a.Type != b.Type {
		if a.Type < b.Type {
			return -1
		}
		return 1
	}
	return compare(a, b)
}

// FromAny converts a decoded JSON value (a trait, a property) to a Value.
// It reports false for a value that is present but not usable as a scalar
// or list of scalars (an object, a NaN): such values are skipped.
func FromAny(x any) (Value, bool) {
	switch x := x.(type) {
	case nil:
		return Value{}, true
	case bool:
		return boolVal(x), true
	case string:
		return strVal(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return Value{}, false
		}
		return numberOK(f)
	case float64:
		return numberOK(x)
	case float32:
		return numberOK(float64(x))
	case int:
		return numVal(float64(x)), true
	case int64:
		return numVal(float64(x)), true
	case int32:
		return numVal(float64(x)), true
	case uint64:
		return numVal(float64(x)), true
	case time.Time:
		return timeVal(x.UTC()), true
	case time.Duration:
		return durVal(x), true
	case []any:
		l := make([]Value, 0, len(x))
		for _, e := range x {
			v, ok := FromAny(e)
			if !ok || !v.isScalar() {
				return Value{}, false
			}
			l = append(l, v)
		}
		return Value{Type: TypeList, List: l}, true
	}
	return Value{}, false
}

// Interface returns v as a Go value for storage: bool, float64, string,
// time.Time, time.Duration, []any, or nil when missing.
func (v Value) Interface() any {
	switch v.Type {
	case TypeBool:
		return v.Bool
	case TypeNumber:
		return v.Num
	case TypeString:
		return v.Str
	case TypeTimestamp:
		return v.Time
	case TypeDuration:
		return v.Dur
	case TypeList:
		out := make([]any, len(v.List))
		for i, e := range v.List {
			out[i] = e.Interface()
		}
		return out
	}
	return nil
}

// String renders v in the language's own syntax (missing as "missing").
func (v Value) String() string {
	switch v.Type {
	case TypeBool:
		return strconv.FormatBool(v.Bool)
	case TypeNumber:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case TypeString:
		return quoteLit(v.Str)
	case TypeTimestamp:
		return formatTimestamp(v.Time)
	case TypeDuration:
		return formatDuration(v.Dur)
	case TypeList:
		var b strings.Builder
		b.WriteByte('[')
		for i, e := range v.List {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(e.String())
		}
		b.WriteByte(']')
		return b.String()
	}
	return "missing"
}

// quoteLit writes s as a string literal the lexer reads back to s.
func quoteLit(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func formatTimestamp(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return "@" + t.Format(time.DateOnly)
	}
	return "@" + t.Format(time.RFC3339Nano)
}

// formatDuration writes d in the largest unit that divides it.
func formatDuration(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		s    string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.s
		}
	}
	// Sub-second durations come only from arithmetic; print seconds' worth
	// rounded down so the text stays in the language.
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// MarshalJSON writes v as JSON: null when missing, a duration as its
// literal ("7d"), a timestamp in RFC 3339.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.Type == TypeDuration {
		return json.Marshal(formatDuration(v.Dur))
	}
	return json.Marshal(v.Interface())
}
