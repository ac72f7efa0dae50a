package match

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
)

// CSVReader reads a CSV with a header row one record at a time, so that
// a bulk run never holds the file as a table: at 5,000,000 records the
// rows alone were 1.5 GB.
//
// Fields are trimmed (FEBRL writes ", " between fields). A byte-order
// mark before the header is dropped. A record with fewer fields than the
// header, or with more that are not empty, is an error naming its line:
// it is a field with an unquoted comma or a line break, and reading it
// would shift values into the wrong columns.
type CSVReader struct {
	cr      *csv.Reader
	header  []string
	row     []string
	records int
	max     int
}

// NewCSVReader reads the header; max bounds the records Next returns.
func NewCSVReader(r io.Reader, max int) (*CSVReader, error) {
	br := bufio.NewReader(r)
	// Dropped from the bytes, not the first field: a quoted first column
	// name after a BOM is otherwise a quote in an unquoted field.
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\ufeff")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1 // checked here, to allow trailing empty fields
	// Each record's fields are still fresh strings, which callers may keep;
	// only the slice is reused.
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("match: empty CSV")
	}
	if err != nil {
		return nil, fmt.Errorf("match: CSV header: %w", err)
	}
	c := &CSVReader{cr: cr, max: max}
	for _, h := range header {
		c.header = append(c.header, strings.TrimSpace(h))
	}
	return c, nil
}

// Header is the trimmed header row.
func (c *CSVReader) Header() []string { return c.header }

// Next returns the next record, one trimmed field per header column, or
// io.EOF after the last. The slice is reused by the following call; the
// strings in it are not and may be kept. Whitespace-only lines are
// skipped.
func (c *CSVReader) Next() ([]string, error) {
	for {
		row, err := c.cr.Read()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			// csv.ParseError names the line and column.
			return nil, fmt.Errorf("match: CSV: %w", err)
		}
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		line, _ := c.cr.FieldPos(0)
		if len(row) < len(c.header) {
			return nil, fmt.Errorf("match: CSV line %d: %d fields, the header has %d", line, len(row), len(c.header))
		}
		for i := len(c.header); i < len(row); i++ {
			if strings.TrimSpace(row[i]) != "" {
				return nil, fmt.Errorf("match: CSV line %d: %d fields, the header has %d", line, len(row), len(c.header))
			}
		}
		if c.records == c.max {
			return nil, fmt.Errorf("match: the CSV has more than %d records, the most one batch run takes: raise --max-records "+
				"on a machine with the memory, or load the file with idgraph import and re-score with idgraph match, "+
				"which works a page at a time", c.max)
		}
		c.records++
		c.row = c.row[:0]
		for _, v := range row[:len(c.header)] {
			c.row = append(c.row, strings.TrimSpace(v))
		}
		return c.row, nil
	}
}

// DetectSampleRows is how many records column detection sees in a bulk
// run: enough that every share it measures is exact to far below the
// percent it reports, few enough that the sample costs tens of MB at any
// file size. A file with no more records is detected on all of them.
const DetectSampleRows = 200_000

// CSVSample is a first pass over a CSV: its header, an even sample of
// its records in file order, and how many records it has.
type CSVSample struct {
	Table
	Records int
}

// SampleCSV reads a whole CSV, checking every record, and keeps a
// uniform sample of size records (all of them when there are no more).
// The sample is reservoir-drawn with a fixed seed, so the same file gives
// the same sample, and it is put back in file order, so that a file that
// fits is seen exactly as it is. A sample, not the first records: a file
// sorted by country must not look like one country.
func SampleCSV(r io.Reader, max, size int) (*CSVSample, error) {
	cr, err := NewCSVReader(r, max)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var at []int
	var rows [][]string
	n := 0
	for ; ; n++ {
		row, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		slot := len(rows)
		if slot >= size {
			// Algorithm R: record n replaces a kept one with chance size/(n+1).
			if slot = rng.IntN(n + 1); slot >= size {
				continue
			}
		}
		kept := slices.Clone(row)
		if slot == len(rows) {
			rows, at = append(rows, kept), append(at, n)
		} else {
			rows[slot], at[slot] = kept, n
		}
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return at[a] - at[b] })
	s := &CSVSample{Table: Table{Header: cr.Header(), Rows: make([][]string, len(rows))}, Records: n}
	for k, i := range order {
		s.Rows[k] = rows[i]
	}
	return s, nil
}

// CSVOptions configure LoadCSV.
type CSVOptions struct {
	Config *Config // nil: detect the columns on a sample of the files
	// IDColumn names the record-ID column; "" takes the config's or the
	// detected one, else records are numbered.
	IDColumn string
	// IDFromSample, with a Config naming no ID column and no IDColumn,
	// takes the ID column detection finds in the first file's sample (a
	// saved model applied to a file it was not trained on).
	IDFromSample bool
	// Drop names a column left out of detection and of the dataset, whose
	// values LoadCSV returns instead (eval's truth column).
	Drop       string
	MaxRecords int // per file
	Progress   *Progress
}

// CSVDataset is a dataset loaded by LoadCSV.
type CSVDataset struct {
	Dataset    *Dataset
	Detections []Detection // nil when a Config was given
	Dropped    []string    // Drop's value for each record, nil without Drop
}

// csvBatch is how many records are read ahead while the previous ones
// are interned: a few MB, and enough work to share among the cores.
const csvBatch = 8192

// LoadCSV builds the dataset of one CSV (de-duplication) or two (linkage,
// with the same columns) without holding their rows: each file is read
// once for a sample (SampleCSV) that detection runs on, then again record
// by record into the dataset's interned columns, so the memory is that
// of the distinct values and 4 bytes a field. For files of up to
// DetectSampleRows records this is NewTableDataset on the whole tables.
func LoadCSV(paths []string, opt CSVOptions) (*CSVDataset, error) {
	if len(paths) < 1 || len(paths) > 2 {
		return nil, fmt.Errorf("match: load CSV: %d files, want one or two", len(paths))
	}
	samples := make([]*Table, len(paths))
	counts := make([]int, len(paths))
	var truth [][]string
	opt.Progress.start("reading", "records", 0)
	for i, p := range paths {
		s, err := sampleFile(p, opt.MaxRecords)
		if err != nil {
			return nil, err
		}
		samples[i], counts[i] = &s.Table, s.Records
		opt.Progress.add(s.Records)
	}
	var b *Table
	if len(samples) == 2 {
		b = samples[1]
	}
	if err := checkEvalTables(samples[0], b, counts[0], b != nil && counts[1] == 0); err != nil {
		return nil, err
	}
	header := samples[0].Header
	if opt.Drop != "" {
		for i := range samples {
			var err error
			if samples[i], _, err = splitColumn(samples[i], opt.Drop); err != nil {
				return nil, err
			}
		}
		truth = make([][]string, len(paths))
	}
	out := &CSVDataset{}
	cfg := opt.Config
	if cfg == nil {
		rows := samples[0].Rows
		if len(samples) == 2 {
			rows = append(append([][]string(nil), rows...), samples[1].Rows...)
		}
		cfg, out.Detections = Detect(samples[0].Header, rows, opt.IDColumn)
	}
	idCol := cfg.IDColumn
	if opt.IDColumn != "" {
		idCol = opt.IDColumn
	} else if idCol == "" && opt.IDFromSample {
		detected, _ := Detect(samples[0].Header, samples[0].Rows, "")
		idCol = detected.IDColumn
	}
	samples = nil // no longer needed while the files stream past

	var src []uint8
	n := counts[0]
	if len(paths) == 2 {
		n += counts[1]
		src = linkSource(counts[0], counts[1])
	}
	bld, err := newBuilder(cfg, n, src)
	if err != nil {
		return nil, err
	}
	opt.Progress.start("preparing", "records", int64(n))
	for i, p := range paths {
		if truth != nil {
			truth[i] = make([]string, 0, counts[i])
		}
		drop := slices.Index(header, opt.Drop)
		err := streamFile(p, opt.MaxRecords, counts[i], func(first int, rows [][]string) {
			fs := rowsSource(header, idCol, opt.Drop, func(r int) []string { return rows[r] }, func(r int) int { return first + r })
			bld.add(fs, len(rows))
			if truth != nil {
				for _, r := range rows {
					truth[i] = append(truth[i], strings.Clone(r[drop]))
				}
			}
			opt.Progress.add(len(rows))
		})
		if err != nil {
			return nil, err
		}
	}
	out.Dataset = bld.finish()
	if truth != nil {
		out.Dropped = slices.Concat(truth...)
	}
	return out, nil
}

// sampleFile is SampleCSV on a file.
func sampleFile(path string, max int) (*CSVSample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	defer f.Close()
	s, err := SampleCSV(f, max, DetectSampleRows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// streamFile reads a file's records again, in batches of csvBatch, and
// hands each batch to add with the number of its first record; the next
// batch is read while add works. The file must still hold want records.
func streamFile(path string, max, want int, add func(first int, rows [][]string)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("match: %w", err)
	}
	defer f.Close()
	cr, err := NewCSVReader(f, max)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	batches := make(chan [][]string, 1)
	var rerr error
	go func() {
		defer close(batches)
		batch := make([][]string, 0, csvBatch)
		for n := 0; ; n++ {
			row, err := cr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil && n == want {
				err = fmt.Errorf("match: the file grew while it was read")
			}
			if err != nil {
				rerr = err
				return
			}
			batch = append(batch, slices.Clone(row))
			if len(batch) == csvBatch {
				batches <- batch
				batch = make([][]string, 0, csvBatch)
			}
		}
		if len(batch) > 0 {
			batches <- batch
		}
	}()
	n := 0
	for batch := range batches {
		add(n, batch)
		n += len(batch)
	}
	if rerr != nil {
		return fmt.Errorf("%s: %w", path, rerr)
	}
	if n != want {
		return fmt.Errorf("%s: match: the file shrank while it was read (%d records, then %d)", path, want, n)
	}
	return nil
}
