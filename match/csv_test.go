package match

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readAll reads every record of a CSV with CSVReader.
func readAll(t *testing.T, in string, max int) ([]string, [][]string, error) {
	t.Helper()
	cr, err := NewCSVReader(strings.NewReader(in), max)
	if err != nil {
		return nil, nil, err
	}
	var rows [][]string
	for {
		row, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return cr.Header(), rows, nil
		}
		if err != nil {
			return cr.Header(), rows, err
		}
		rows = append(rows, slices.Clone(row))
	}
}

func TestCSVReader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		max    int
		header []string
		rows   [][]string
		err    string // a part of the error; "" for none
	}{
		{name: "trimmed fields", in: "id, name ,dob\n r1 , ann ,1980\n",
			header: []string{"id", "name", "dob"}, rows: [][]string{{"r1", "ann", "1980"}}},
		{name: "header only", in: "id,name\n", header: []string{"id", "name"}},
		{name: "header only, no newline", in: "id,name", header: []string{"id", "name"}},
		{name: "empty file", in: "", err: "empty CSV"},
		{name: "BOM", in: "\ufeffid,name\nr1,ann\n", header: []string{"id", "name"}, rows: [][]string{{"r1", "ann"}}},
		{name: "BOM before a quoted header", in: "\ufeff\"id\",\"name\"\nr1,ann\n",
			header: []string{"id", "name"}, rows: [][]string{{"r1", "ann"}}},
		{name: "quoted comma and line break", in: "id,addr\nr1,\"1 high st, apt 2\nnorth\"\n",
			header: []string{"id", "addr"}, rows: [][]string{{"r1", "1 high st, apt 2\nnorth"}}},
		{name: "blank and whitespace lines skipped", in: "id,name\n\nr1,ann\n   \nr2,bob\n",
			header: []string{"id", "name"}, rows: [][]string{{"r1", "ann"}, {"r2", "bob"}}},
		{name: "trailing empty fields allowed", in: "id,name\nr1,ann,,\n",
			header: []string{"id", "name"}, rows: [][]string{{"r1", "ann"}}},
		{name: "short row", in: "id,name,dob\nr1,ann,1980\nr2,bob\n", err: "line 3: 2 fields, the header has 3"},
		{name: "long row", in: "id,name\nr1,ann\nr2,bob,smith\n", err: "line 3: 3 fields, the header has 2"},
		{name: "long row after a multi-line field", in: "id,name\nr1,\"a\nb\"\nr2,bob,x\n", err: "line 4: 3 fields"},
		{name: "bare quote", in: "id,name\nr1,an\"n\n", err: "line 2, column 6: bare \""},
		{name: "unclosed quote", in: "id,name\nr1,\"ann\nr2,bob\n", err: "line 2"},
		{name: "bad quote in header", in: "id,na\"me\n", err: "CSV header: parse error on line 1"},
		{name: "at the limit", in: "id\n1\n2\n", max: 2, header: []string{"id"}, rows: [][]string{{"1"}, {"2"}}},
		{name: "over the limit", in: "id\n1\n2\n3\n", max: 2, err: "more than 2 records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = 100
			}
			header, rows, err := readAll(t, tc.in, max)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(header, tc.header) {
				t.Errorf("header %q, want %q", header, tc.header)
			}
			if !slices.EqualFunc(rows, tc.rows, slices.Equal) {
				t.Errorf("rows %q, want %q", rows, tc.rows)
			}
		})
	}
}

// A record's strings outlive the next call: LoadCSV keeps them in
// batches while the reader goes on.
func TestCSVReaderRecordsCanBeKept(t *testing.T) {
	cr, err := NewCSVReader(strings.NewReader("a,b\n1,2\n3,4\n"), 10)
	if err != nil {
		t.Fatal(err)
	}
	first, err := cr.Next()
	if err != nil {
		t.Fatal(err)
	}
	a := first[0]
	if _, err := cr.Next(); err != nil {
		t.Fatal(err)
	}
	if a != "1" {
		t.Errorf("kept field changed to %q", a)
	}
}

func TestSampleCSV(t *testing.T) {
	numbered := func(n int) string { // record i has id i
		var b strings.Builder
		b.WriteString("id\n")
		for i := range n {
			b.WriteString(strconv.Itoa(i) + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name    string
		records int
		size    int
		want    int
	}{
		{"fewer records than the sample", 50, 100, 50},
		{"as many", 100, 100, 100},
		{"more", 5000, 100, 100},
		{"none", 0, 100, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := numbered(tc.records)
			s, err := SampleCSV(strings.NewReader(in), 1<<30, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if s.Records != tc.records || len(s.Rows) != tc.want {
				t.Fatalf("%d records, %d sampled; want %d, %d", s.Records, len(s.Rows), tc.records, tc.want)
			}
			ids := make([]int, len(s.Rows))
			for i, r := range s.Rows {
				if ids[i], err = strconv.Atoi(r[0]); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
				t.Errorf("sample not distinct records in file order: %v", ids)
			}
			if tc.records <= tc.size {
				for i, id := range ids {
					if id != i {
						t.Fatalf("a file that fits is not sampled whole: record %d is %d", i, id)
					}
				}
			} else if ids[len(ids)-1] < tc.records/2 {
				t.Errorf("sample ends at record %d of %d: not spread over the file", ids[len(ids)-1], tc.records)
			}
			again, err := SampleCSV(strings.NewReader(in), 1<<30, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(s.Rows, again.Rows, slices.Equal) {
				t.Error("the same file gave another sample")
			}
		})
	}
	if _, err := SampleCSV(strings.NewReader("id,v\n1,2\n3\n"), 10, 10); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("a bad record past the sample: %v", err)
	}
}

// writeCSV writes a table to a file in the test's directory.
func writeCSV(t *testing.T, tab *Table, name string) string {
	t.Helper()
	var b bytes.Buffer
	if err := tab.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameDataset fails unless two datasets hold the same records, values
// (in the same order) and term frequencies.
func sameDataset(t *testing.T, got, want *Dataset) {
	t.Helper()
	if !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Source, want.Source) {
		t.Fatalf("IDs or sources differ: %d and %d records", got.Len(), want.Len())
	}
	if len(got.comps) != len(want.comps) {
		t.Fatalf("%d comparisons, want %d", len(got.comps), len(want.comps))
	}
	for c := range want.comps {
		name := want.comps[c].field.Name
		if got.comps[c].field.Name != name {
			t.Fatalf("comparison %d is %s, want %s", c, got.comps[c].field.Name, name)
		}
		if !slices.Equal(got.col[c], want.col[c]) {
			t.Errorf("%s: record values differ", name)
		}
		if got.dict[c].len() != want.dict[c].len() {
			t.Errorf("%s: %d interned values, want %d", name, got.dict[c].len(), want.dict[c].len())
		}
		for v := uint32(0); int(v) < min(got.dict[c].len(), want.dict[c].len()); v++ {
			if a, b := got.dict[c].at(v), want.dict[c].at(v); a.key != b.key || a.aux != b.aux {
				t.Fatalf("%s: interned value %d is %q, want %q", name, v, a.key, b.key)
			}
		}
		if !slices.Equal(got.tfN[c], want.tfN[c]) || got.tfTotal[c] != want.tfTotal[c] || got.tfAgree[c] != want.tfAgree[c] {
			t.Errorf("%s: term frequencies differ", name)
		}
	}
}

// Streaming a file into the dataset builds what the table did: the same
// values in the same order, over several batches, with fields drawn from
// other columns (the messy shape's Fill and Minus), a dropped truth
// column, numbered records, and two files linked.
func TestLoadCSVEqualsTableDataset(t *testing.T) {
	febrl, _ := Synthesize(SynthOptions{Records: 3*csvBatch + 17, Seed: 3})
	messy, _ := Synthesize(SynthOptions{Records: 2*csvBatch + 5, Seed: 4, Shape: "messy"})
	messy.Header[mCluster] = "person"
	tests := []struct {
		name   string
		tables []*Table
		id     string
		drop   string
	}{
		{name: "febrl, detected id", tables: []*Table{febrl}},
		{name: "febrl, numbered records", tables: []*Table{febrl}, id: "no such column"},
		{name: "messy, truth column dropped", tables: []*Table{messy}, drop: "person"},
		{name: "linked files", tables: []*Table{{Header: febrl.Header, Rows: febrl.Rows[:9000]}, {Header: febrl.Header, Rows: febrl.Rows[9000:]}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			for i, tab := range tc.tables {
				paths = append(paths, writeCSV(t, tab, "f"+strconv.Itoa(i)+".csv"))
			}
			got, err := LoadCSV(paths, CSVOptions{IDColumn: tc.id, Drop: tc.drop, MaxRecords: DefaultMaxRecords})
			if err != nil {
				t.Fatal(err)
			}
			// The table way, as Evaluate does it.
			tabs := slices.Clone(tc.tables)
			var truth []string
			for i := range tabs {
				if tc.drop != "" {
					var vals []string
					if tabs[i], vals, err = splitColumn(tabs[i], tc.drop); err != nil {
						t.Fatal(err)
					}
					truth = append(truth, vals...)
				}
			}
			var rows [][]string
			for _, tab := range tabs {
				rows = append(rows, tab.Rows...)
			}
			cfg, dets := Detect(tabs[0].Header, rows, tc.id)
			idCol := cfg.IDColumn
			if tc.id != "" {
				idCol = tc.id
			}
			var b *Table
			if len(tabs) == 2 {
				b = tabs[1]
			}
			want, err := NewTableDataset(cfg, idCol, tabs[0], b)
			if err != nil {
				t.Fatal(err)
			}
			sameDataset(t, got.Dataset, want)
			if !slices.Equal(got.Detections, dets) {
				t.Errorf("detections\n%v\nwant\n%v", got.Detections, dets)
			}
			if !slices.Equal(got.Dropped, truth) {
				t.Errorf("dropped column: %d values, want %d", len(got.Dropped), len(truth))
			}
		})
	}
}

// EvaluateCSV reports what Evaluate does on the same file.
func TestEvaluateCSVEqualsEvaluate(t *testing.T) {
	tab, _ := Synthesize(SynthOptions{Records: 4000, Seed: 5, Shape: "messy"})
	tab.Header[mCluster] = "person"
	opt := EvalOptions{TruthColumn: "person", Examples: 3}
	want, err := Evaluate(tab, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := EvaluateCSV(writeCSV(t, tab, "messy.csv"), "", DefaultMaxRecords, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got.CandidatePairs != want.CandidatePairs || got.TruePairs != want.TruePairs || got.Pairwise != want.Pairwise ||
		got.Cluster != want.Cluster || got.Model.Version != want.Model.Version || len(got.FalsePositives) != len(want.FalsePositives) {
		t.Errorf("EvaluateCSV %d candidates, %+v, %+v, model %s\nEvaluate    %d candidates, %+v, %+v, model %s",
			got.CandidatePairs, got.Pairwise, got.Cluster, got.Model.Version,
			want.CandidatePairs, want.Pairwise, want.Cluster, want.Model.Version)
	}
}

func TestLoadCSVErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "id,name\n1,ann\n2,bob\n")
	tests := []struct {
		name  string
		paths []string
		opt   CSVOptions
		err   string
	}{
		{"header only", []string{write("header.csv", "id,name\n")}, CSVOptions{}, "no records"},
		{"ragged", []string{write("ragged.csv", "id,name\n1,ann\n2\n")}, CSVOptions{}, "ragged.csv: match: CSV line 3"},
		{"missing file", []string{filepath.Join(dir, "nope.csv")}, CSVOptions{}, "nope.csv"},
		{"different columns", []string{good, write("other.csv", "id,surname\n1,x\n")}, CSVOptions{}, "different columns"},
		{"over the limit", []string{good}, CSVOptions{MaxRecords: 1}, "more than 1 records"},
		{"no truth column", []string{good}, CSVOptions{Drop: "person"}, `truth column "person"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opt.MaxRecords == 0 {
				tc.opt.MaxRecords = 100
			}
			_, err := LoadCSV(tc.paths, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// FuzzCSVReader: any input either fails with an error or gives records
// as wide as the header with trimmed fields, the same as a table and as
// a sample that holds them all.
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{"id,name\n1,ann\n", "\ufeff\"id\",b\n\"x, y\",\"\"\"\"\n", "a\n\n \n1\n", "a,b\n1,2,,\n", "a,b\n1\n", "a\n\"x\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		header, rows, err := readAll(t, in, 1000)
		if err != nil {
			return
		}
		for _, r := range rows {
			if len(r) != len(header) {
				t.Fatalf("record of %d fields under a header of %d", len(r), len(header))
			}
			for _, v := range r {
				if v != strings.TrimSpace(v) {
					t.Fatalf("untrimmed field %q", v)
				}
			}
		}
		tab, err := ReadCSVLimit(strings.NewReader(in), 1000)
		if err != nil || !slices.EqualFunc(tab.Rows, rows, slices.Equal) {
			t.Fatalf("ReadCSV: %v, %d rows; reader %d", err, len(tab.Rows), len(rows))
		}
		s, err := SampleCSV(strings.NewReader(in), 1000, 1000)
		if err != nil || s.Records != len(rows) || !slices.EqualFunc(s.Rows, rows, slices.Equal) {
			t.Fatalf("SampleCSV: %v, %d records", err, s.Records)
		}
	})
}
