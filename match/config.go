package match

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/idgraph/idgraph/internal/names"
)

// Record is one row to match: an identifier and named fields (CSV columns
// or Segment traits such as "address.city").
type Record struct {
	ID     string
	Fields map[string]string
}

// Kind is what a field holds; it decides the default comparison, whether
// term-frequency adjustment applies, and which blocking keys it offers.
type Kind string

const (
	KindGivenName    Kind = "given_name"
	KindSurname      Kind = "surname"
	KindFullName     Kind = "full_name"
	KindDate         Kind = "date"
	KindPostcode     Kind = "postcode"
	KindEmail        Kind = "email"
	KindPhone        Kind = "phone"
	KindStreetNumber Kind = "street_number"
	KindAddress      Kind = "address"
	KindCity         Kind = "city"
	KindState        Kind = "state"
	KindID           Kind = "id"
	KindText         Kind = "text"
	// KindCategory is a low-value column with few distinct values (gender,
	// a status): compared exactly, no term frequencies, no blocking.
	KindCategory Kind = "category"
	KindIgnore   Kind = "ignore"
)

// Field names one field and how to compare it. Method defaults from Kind.
type Field struct {
	Name   string `json:"name"`
	Kind   Kind   `json:"kind"`
	Method string `json:"method,omitempty"`
	// Swap names a partner field whose values are often entered in this
	// field's place (given name ↔ surname, address line 1 ↔ 2); the
	// comparison then has a "swapped" level.
	Swap string `json:"swap,omitempty"`
	// TF turns on term-frequency adjustment of the exact level.
	TF *bool `json:"tf,omitempty"`
	// Fill names a full-name field to take this field's value from when
	// the record has none: its first name word for a given name, its last
	// for a surname (titles, suffixes and peerages left out).
	Fill string `json:"fill,omitempty"`
	// FillAlso names more columns to fill from, in order, when Fill gives
	// nothing; they need not be compared fields: a first-and-surname
	// column dropped for repeating the parts still carries the name of a
	// record whose parts are empty.
	FillAlso []string `json:"fill_also,omitempty"`
	// Minus names fields whose words are taken out of this one before it
	// is compared: a full name beside first-name and surname columns is
	// compared on what they leave (titles, middle names, peerages), so
	// that agreeing on a first name counts once, not once per column.
	Minus []string `json:"minus,omitempty"`
}

// Config is the hand-writable description of a data set: which fields to
// compare and how, and which blocking rules find candidate pairs. An
// empty Blocking gets rules derived from the field kinds.
type Config struct {
	IDColumn     string      `json:"id_column,omitempty"`
	Fields       []Field     `json:"fields"`
	Blocking     []BlockRule `json:"blocking,omitempty"`
	MaxBlockSize int         `json:"max_block_size,omitempty"`
	// MaxPairsPerRecord is each equality rule's pair budget (default
	// DefaultMaxPairsPerRecord).
	MaxPairsPerRecord float64 `json:"max_pairs_per_record,omitempty"`
}

// defaultMethod is the comparison used for a kind when the config names none.
func defaultMethod(k Kind) string {
	switch k {
	case KindGivenName, KindSurname:
		return "name"
	case KindFullName:
		return "fullname"
	case KindDate:
		return "date"
	case KindPostcode:
		return "postcode"
	case KindEmail:
		return "email"
	case KindPhone:
		return "phone"
	case KindStreetNumber:
		return "number"
	case KindAddress, KindText:
		return "text"
	case KindCity:
		return "place"
	case KindState, KindCategory:
		return "exact"
	case KindID:
		return "levenshtein"
	}
	return "exact"
}

// useTF says whether exact agreement on a value should be weighted by how
// rare the value is. It pays for names and places; for dates and IDs the
// values are near-uniform, and for low-cardinality fields like state it
// mostly adds noise.
func (f Field) useTF() bool {
	if f.TF != nil {
		return *f.TF
	}
	switch f.Kind {
	case KindGivenName, KindSurname, KindFullName, KindCity, KindAddress, KindPostcode:
		return true
	}
	return false
}

func (f Field) method() string {
	if f.Method != "" {
		return f.Method
	}
	return defaultMethod(f.Kind)
}

// Validate checks that every method and swap partner exists.
func (c *Config) Validate() error {
	names := map[string]bool{}
	for _, f := range c.Fields {
		if f.Name == "" {
			return fmt.Errorf("match: a field has no name")
		}
		if names[f.Name] {
			return fmt.Errorf("match: field %q listed twice", f.Name)
		}
		names[f.Name] = true
		if _, ok := methods[f.method()]; !ok {
			return fmt.Errorf("match: field %q: unknown method %q", f.Name, f.method())
		}
	}
	for _, f := range c.Fields {
		if f.Swap != "" && !names[f.Swap] {
			return fmt.Errorf("match: field %q swaps with unknown field %q", f.Name, f.Swap)
		}
		if f.Fill != "" && (!names[f.Fill] || f.Fill == f.Name) {
			return fmt.Errorf("match: field %q fills from unknown field %q", f.Name, f.Fill)
		}
		if slices.Contains(f.FillAlso, f.Name) || slices.Contains(f.FillAlso, "") {
			return fmt.Errorf("match: field %q fills from itself or from a column with no name", f.Name)
		}
		if (f.Fill != "" || len(f.FillAlso) > 0) && f.Kind != KindGivenName && f.Kind != KindSurname {
			return fmt.Errorf("match: field %q: fill applies to given names and surnames, not %s", f.Name, f.Kind)
		}
		for _, o := range f.Minus {
			if !names[o] || o == f.Name {
				return fmt.Errorf("match: field %q subtracts unknown field %q", f.Name, o)
			}
			if of, _ := c.field(o); len(of.Minus) > 0 {
				return fmt.Errorf("match: field %q subtracts %q, which itself subtracts fields", f.Name, o)
			}
		}
	}
	for _, r := range c.Blocking {
		for _, k := range r.Keys {
			if !names[k.Field] {
				return fmt.Errorf("match: blocking rule %q uses unknown field %q", r.Name, k.Field)
			}
			if _, ok := transforms[k.transform()]; !ok {
				return fmt.Errorf("match: blocking rule %q: unknown transform %q", r.Name, k.Transform)
			}
		}
	}
	if len(c.Fields) == 0 {
		return fmt.Errorf("match: no fields to compare")
	}
	return nil
}

// ReadConfig loads a JSON config file.
func ReadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeConfig(f)
}

// DecodeConfig parses a JSON config, rejecting unknown keys so typos show.
func DecodeConfig(r io.Reader) (*Config, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("match: config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// rawValue is the value field f compares for a record: its own column,
// filled from a full name when empty (Fill), less the words of other
// fields (Minus).
// get reads one of the record's raw fields by name ("" = missing).
func (c *Config) rawValue(f Field, get func(name string) string) string {
	raw := strings.TrimSpace(get(f.Name))
	if f.Kind == KindGivenName && onlyTitles(raw) {
		raw = "" // "lieutenant" typed as a first name is none: fill it
	}
	if raw == "" && (f.Fill != "" || len(f.FillAlso) > 0) {
		for _, from := range append([]string{f.Fill}, f.FillAlso...) {
			if from == "" {
				continue
			}
			given, surname := nameParts(get(from))
			if raw = surname; f.Kind == KindGivenName {
				raw = given
			}
			if raw != "" {
				break
			}
		}
	}
	if len(f.Minus) == 0 || raw == "" {
		return raw
	}
	var take []string
	for _, o := range f.Minus {
		if of, ok := c.field(o); ok {
			take = append(take, strings.Fields(names.Normalize(c.rawValue(of, get)))...)
		}
	}
	return minusWords(names.Normalize(raw), take)
}

func (c *Config) field(name string) (Field, bool) {
	for _, f := range c.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}
