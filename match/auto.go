package match

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Training with no set-up step: the server detects each imported source's
// columns from its stored records and trains a model for them. Detected
// kinds are renamed to canonical fields, Segment's reserved trait names
// (a given-name column becomes firstName, a postcode address.postalCode),
// so that one model compares a CRM record with a profile built from
// identify calls, and a fact held under two names counts once.

// canonicalFields names the field each kind is compared as. The first
// column of a kind takes it; a second column of the same kind (a second
// address line) keeps its own name. IDs and free text keep theirs: a
// national ID in one system is not another system's.
var canonicalFields = map[Kind]string{
	KindGivenName:    "firstName",
	KindSurname:      "lastName",
	KindFullName:     "name",
	KindEmail:        "email",
	KindPhone:        "phone",
	KindDate:         "birthday",
	KindAddress:      "address.street",
	KindCity:         "address.city",
	KindPostcode:     "address.postalCode",
	KindState:        "address.state",
	KindStreetNumber: "address.streetNumber",
}

// personalKinds are the kinds that can tell one person from another on
// their own; a source with none of them cannot be matched.
var personalKinds = []Kind{KindGivenName, KindSurname, KindFullName, KindEmail, KindPhone, KindDate}

// MaxAutoRecords bounds the records one automatic training reads (about
// 0.8 GB of memory; a run needs about 8 GB per million records).
const MaxAutoRecords = 100_000

// ColumnDecision is what detection made of one column of a source.
type ColumnDecision struct {
	Column string `json:"column"`
	Kind   Kind   `json:"kind"`
	// Field is the canonical field the column is compared as; empty when
	// it is not compared (an ignored column).
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// SourceDecision is what the server decided for one source.
type SourceDecision struct {
	Source  string           `json:"source"`
	Records int              `json:"records"`
	Columns []ColumnDecision `json:"columns"`
	// Unusable says why the source's records are not matched ("" when
	// they are).
	Unusable string `json:"unusable,omitempty"`
}

// AutoModel is a model trained with no set-up step, with what led to it.
type AutoModel struct {
	Model     *Model           `json:"model"`
	TrainedAt time.Time        `json:"trainedAt"`
	Records   int              `json:"records"`
	Sources   []SourceDecision `json:"sources"`
	// Frequencies are the stored records' term frequencies, for
	// incremental scoring; refreshed by every bulk pass.
	Frequencies *TermFrequencies `json:"frequencies,omitempty"`
}

// Rename maps each source column to the canonical field it is compared
// as (GraphMatcher.Rename). When two sources use one column name for
// different fields, the source first in name order wins.
func (a *AutoModel) Rename() map[string]string {
	out := map[string]string{}
	for _, s := range a.Sources {
		if s.Unusable != "" {
			continue
		}
		for _, c := range s.Columns {
			if _, taken := out[c.Column]; !taken && c.Field != "" && c.Field != c.Column {
				out[c.Column] = c.Field
			}
		}
	}
	return out
}

// Covers reports whether the model was trained for the source with
// exactly these columns.
func (a *AutoModel) Covers(source string, columns []string) bool {
	for _, s := range a.Sources {
		if s.Source != source {
			continue
		}
		have := make([]string, len(s.Columns))
		for i, c := range s.Columns {
			have[i] = c.Column
		}
		return slices.Equal(have, columns)
	}
	return false
}

// UnusableError says that no source has columns to match people on.
type UnusableError struct{ Sources []SourceDecision }

func (e *UnusableError) Error() string {
	var parts []string
	for _, s := range e.Sources {
		parts = append(parts, fmt.Sprintf("source %q: %s", s.Source, s.Unusable))
	}
	return "match: nothing to train on: " + strings.Join(parts, "; ")
}

// TrainAuto detects the columns of each source's records (trait path →
// value) and trains one unsupervised model over their canonical fields.
// Sources are trained together, so a field shared by two sources is one
// comparison. A source with no column that tells people apart (only IDs
// and free text) is left out and reported; when none is left,
// TrainAuto returns an *UnusableError.
func TrainAuto(sources map[string][]map[string]string, now time.Time) (*AutoModel, error) {
	names := make([]string, 0, len(sources))
	for s := range sources {
		names = append(names, s)
	}
	slices.Sort(names)
	a := &AutoModel{TrainedAt: now.UTC()}
	var unusable []SourceDecision
	kinds := map[string]Kind{}
	var fields []Field
	var recs []Record
	data := sha256.New()
	for _, src := range names {
		rows := sources[src]
		header := Columns(rows)
		table := make([][]string, len(rows))
		for i, r := range rows {
			table[i] = make([]string, len(header))
			for j, h := range header {
				table[i][j] = r[h]
			}
		}
		// The same records in another order are the same training data
		// (the store lists them by profile, and merges change profiles).
		order := make([]int, len(rows))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(i, j int) int { return slices.Compare(table[i], table[j]) })
		sortedRows, sortedTable := make([]map[string]string, len(rows)), make([][]string, len(rows))
		for k, i := range order {
			sortedRows[k], sortedTable[k] = rows[i], table[i]
		}
		rows, table = sortedRows, sortedTable
		// Detection sees no ID column: identifiers are imported as
		// identifiers, not traits, and an ID-like trait is ignored or
		// compared as an ID by its values.
		detected, dets := Detect(header, table, "")
		d := SourceDecision{Source: src, Records: len(rows)}
		used := map[Kind]bool{}
		rename := map[string]string{}
		personal := false
		for _, det := range dets {
			c := ColumnDecision{Column: det.Column, Kind: det.Kind, Reason: det.Reason}
			if det.Kind != KindIgnore {
				c.Field = det.Column
				if f, ok := canonicalFields[det.Kind]; ok && !used[det.Kind] {
					c.Field = f
				}
				used[det.Kind] = true
				if k, ok := kinds[c.Field]; ok && k != det.Kind {
					// Another source holds a field of this name with
					// another kind: keep the two apart.
					c.Field = src + ":" + det.Column
				}
				rename[det.Column] = c.Field
				personal = personal || slices.Contains(personalKinds, det.Kind)
			}
			d.Columns = append(d.Columns, c)
		}
		if !personal {
			d.Unusable = "no column that tells people apart (a name, email, phone or birth date); detected " + describeColumns(d.Columns)
			unusable = append(unusable, d)
			a.Sources = append(a.Sources, d)
			continue
		}
		a.Sources = append(a.Sources, d)
		// Detection's relations between columns (a full name compared on
		// what its parts leave, parts filled from it) hold under the
		// canonical names too; the first source to define a field wins.
		carry := map[string]bool{} // columns read for filling only
		for _, f := range detected.Fields {
			f = renameField(f, rename)
			for _, c := range f.FillAlso {
				carry[c] = true
			}
			if _, ok := kinds[f.Name]; !ok {
				kinds[f.Name] = f.Kind
				fields = append(fields, f)
			}
		}
		fmt.Fprintf(data, "%s\x00%v\x00", src, header)
		for i, r := range rows {
			f := make(map[string]string, len(rename)+len(carry))
			for col, field := range rename {
				if v := r[col]; v != "" {
					f[field] = v
				}
			}
			for col := range carry {
				if v := r[col]; v != "" && f[col] == "" {
					f[col] = v
				}
			}
			recs = append(recs, Record{ID: fmt.Sprintf("%s/%d", src, i), Fields: f})
			b, _ := json.Marshal(table[i])
			data.Write(b)
		}
	}
	if len(recs) == 0 {
		return nil, &UnusableError{Sources: unusable}
	}
	fields = dropDangling(fields)
	pairSwaps(fields)
	cfg := &Config{Fields: fields, Blocking: DefaultBlocking(fields)}
	ds, err := NewDataset(cfg, recs)
	if err != nil {
		return nil, fmt.Errorf("match: auto: %w", err)
	}
	// Streamed, as a bulk run trains: the candidates are counted into a
	// histogram, never held.
	res, err := Run(ds, Options{TrainOnly: true})
	if err != nil {
		return nil, fmt.Errorf("match: auto: %w", err)
	}
	m := res.Model
	// The version covers the sources, their columns and the training
	// data, not the parameters alone.
	m.Data = "auto " + strings.Join(names, ",") + " sha256:" + hex.EncodeToString(data.Sum(nil)[:8])
	m.Seal()
	a.Model, a.Records, a.Frequencies = m, len(recs), ds.Frequencies()
	return a, nil
}

// renameField gives a detected field its canonical name, and the fields
// it refers to theirs. A column it fills from that is not compared keeps
// its own name: records carry it beside the compared fields.
func renameField(f Field, rename map[string]string) Field {
	to := func(col string) string {
		if n, ok := rename[col]; ok {
			return n
		}
		return col
	}
	f.Name = to(f.Name)
	if f.Swap != "" {
		f.Swap = to(f.Swap)
	}
	if f.Fill != "" {
		f.Fill = to(f.Fill)
	}
	f.FillAlso = slices.Clone(f.FillAlso)
	for i, c := range f.FillAlso {
		f.FillAlso[i] = to(c)
	}
	f.Minus = slices.Clone(f.Minus)
	for i, c := range f.Minus {
		f.Minus[i] = to(c)
	}
	return f
}

// dropDangling removes references to fields another source defined
// differently (the first source's field won, and its relations may name
// columns this model does not compare), so the config validates.
func dropDangling(fields []Field) []Field {
	names := map[string]bool{}
	for _, f := range fields {
		names[f.Name] = true
	}
	for i := range fields {
		f := &fields[i]
		f.Swap = "" // pairSwaps links the canonical pairs again
		if !names[f.Fill] || f.Fill == f.Name {
			f.Fill = ""
		}
		f.Minus = slices.DeleteFunc(f.Minus, func(o string) bool { return !names[o] || o == f.Name })
		if len(f.Minus) == 0 {
			f.Minus = nil
		}
		f.FillAlso = slices.DeleteFunc(f.FillAlso, func(c string) bool { return c == f.Name })
		if len(f.FillAlso) == 0 {
			f.FillAlso = nil
		}
	}
	return fields
}

// Columns returns the sorted union of the records' keys.
func Columns(rows []map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		for k := range r {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

func describeColumns(cs []ColumnDecision) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s (%s)", c.Column, c.Kind)
	}
	if len(parts) == 0 {
		return "no columns"
	}
	return strings.Join(parts, ", ")
}

// BlockingRules describes the model's blocking rules.
func (m *Model) BlockingRules() []string {
	out := make([]string, len(m.Config.Blocking))
	for i, r := range m.Config.Blocking {
		out[i] = r.label()
	}
	return out
}
