package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/server"
)

// ImportOptions configure an import.
type ImportOptions struct {
	Source string
	// Identifiers are the columns (or JSON keys) holding identifiers; each
	// column's name is its identifier type. Every other column is a trait.
	Identifiers []string
	// JSONL reads one JSON object per line instead of CSV.
	JSONL bool
	// BatchSize is the number of records per request (at most 1,000).
	BatchSize int
	// Progress, when set, receives a progress line after each batch.
	Progress io.Writer
}

// ImportSummary is what an import did.
type ImportSummary struct {
	Read       int
	Stored     int
	Duplicates int
	Rejected   []server.RecordProblem
	Skipped    []server.RecordProblem
}

// Import reads records from r and sends them in batches. A bad row is
// reported with its line number and never stops the import.
func (c *Client) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*ImportSummary, error) {
	if opts.Source == "" {
		return nil, errors.New("import: a source name is required")
	}
	if len(opts.Identifiers) == 0 {
		return nil, errors.New("import: name at least one identifier column")
	}
	if opts.BatchSize <= 0 || opts.BatchSize > server.MaxImportRecords {
		opts.BatchSize = 500
	}
	sum := &ImportSummary{}
	var batch []server.Record
	batchBytes := 0
	start := time.Now()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var resp server.ImportResponse
		if err := c.PostWrite(ctx, "/v1/import", server.ImportRequest{Source: opts.Source, Records: batch}, &resp); err != nil {
			return fmt.Errorf("import: batch ending at line %d: %w", batch[len(batch)-1].Line, err)
		}
		sum.Stored += resp.Stored
		sum.Duplicates += resp.Duplicates
		sum.Rejected = append(sum.Rejected, resp.Rejected...)
		sum.Skipped = append(sum.Skipped, resp.Skipped...)
		batch, batchBytes = batch[:0], 0
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "\r%s %d read, %d stored, %d rejected, %.0f records/s ",
				bar(sum.Read, sum.Stored+sum.Duplicates+len(sum.Rejected)), sum.Read, sum.Stored, len(sum.Rejected),
				float64(sum.Read)/time.Since(start).Seconds())
		}
		return nil
	}
	emit := func(rec server.Record, size int) error {
		sum.Read++
		batch = append(batch, rec)
		batchBytes += size
		if len(batch) >= opts.BatchSize || batchBytes > server.MaxImportBytes/2 {
			return flush()
		}
		return nil
	}
	reject := func(line int, reason string) {
		sum.Read++
		sum.Rejected = append(sum.Rejected, server.RecordProblem{Line: line, Reason: reason})
	}
	var err error
	if opts.JSONL {
		err = readJSONL(r, opts.Identifiers, emit, reject)
	} else {
		err = readCSV(r, opts.Identifiers, emit, reject)
	}
	if err == nil {
		err = flush()
	}
	if opts.Progress != nil {
		fmt.Fprintln(opts.Progress)
	}
	return sum, err
}

func bar(total, done int) string {
	const width = 20
	filled := width
	if total > 0 {
		filled = width * done / total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

func readCSV(r io.Reader, idCols []string, emit func(server.Record, int) error, reject func(int, string)) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("import: reading the header: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	for _, c := range idCols {
		if !slices.Contains(header, c) {
			return fmt.Errorf("import: identifier column %q is not in the header %v", c, header)
		}
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			reject(pe.StartLine, pe.Err.Error())
			continue
		}
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(row) != len(header) {
			reject(line, fmt.Sprintf("has %d fields, the header has %d", len(row), len(header)))
			continue
		}
		rec := server.Record{Line: line, Identifiers: map[string]string{}, Traits: map[string]any{}}
		size := 0
		for i, v := range row {
			size += len(v) + len(header[i])
			if slices.Contains(idCols, header[i]) {
				rec.Identifiers[header[i]] = v
			} else if v = strings.TrimSpace(v); v != "" {
				setPath(rec.Traits, header[i], v)
			}
		}
		if err := emit(rec, size); err != nil {
			return err
		}
	}
}

func readJSONL(r io.Reader, idCols []string, emit func(server.Record, int) error, reject func(int, string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			reject(line, "invalid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
			continue
		}
		rec := server.Record{Line: line, Identifiers: map[string]string{}, Traits: map[string]any{}}
		bad := ""
		for k, v := range obj {
			if !slices.Contains(idCols, k) {
				setPath(rec.Traits, k, v)
				continue
			}
			switch x := v.(type) {
			case string:
				rec.Identifiers[k] = x
			case json.Number:
				rec.Identifiers[k] = x.String()
			case nil:
			default:
				bad = fmt.Sprintf("identifier %q must be a string or a number", k)
			}
		}
		if bad != "" {
			reject(line, bad)
			continue
		}
		if err := emit(rec, len(text)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("import: line %d: %w", line+1, err)
	}
	return nil
}

// setPath sets a dotted name (address.city) as nested objects.
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}
