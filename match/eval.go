package match

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Table is a CSV file: a header and rows.
type Table struct {
	Header []string
	Rows   [][]string
}

// DefaultMaxRecords bounds a batch run (eval, train): a run holds every
// record's values in memory (the file itself is streamed, and candidate
// pairs past the pair budget go to disk), so a larger file gets a clear
// error instead of running the machine out of memory.
const DefaultMaxRecords = 10_000_000

// ReadCSV reads a CSV with a header row, at most DefaultMaxRecords rows.
func ReadCSV(r io.Reader) (*Table, error) { return ReadCSVLimit(r, DefaultMaxRecords) }

// ReadCSVLimit reads a CSV with a header row and at most max rows into
// memory, as CSVReader reads it.
func ReadCSVLimit(r io.Reader, max int) (*Table, error) {
	cr, err := NewCSVReader(r, max)
	if err != nil {
		return nil, err
	}
	t := &Table{Header: cr.Header()}
	for {
		row, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		t.Rows = append(t.Rows, slices.Clone(row))
	}
}

// NewTableDataset prepares a table's rows for de-duplication, or with b
// not nil two tables' rows for linkage, as NewDataset and NewLinkDataset
// do with Records but without a map per row. The record ID comes from
// idColumn, or the row number when there is none.
func NewTableDataset(cfg *Config, idColumn string, a, b *Table) (*Dataset, error) {
	if b == nil {
		return newDataset(cfg, len(a.Rows), tablesSource(idColumn, a), nil)
	}
	return newDataset(cfg, len(a.Rows)+len(b.Rows), tablesSource(idColumn, a, b), linkSource(len(a.Rows), len(b.Rows)))
}

// tablesSource reads the rows of one table, or of two one after the
// other, without making a Record (a map) of each.
func tablesSource(idColumn string, ts ...*Table) fieldSource {
	row := func(i int) []string {
		for _, t := range ts[:len(ts)-1] {
			if i < len(t.Rows) {
				return t.Rows[i]
			}
			i -= len(t.Rows)
		}
		return ts[len(ts)-1].Rows[i]
	}
	// Numbered within its own file, as Records numbers rows.
	number := func(i int) int {
		for _, t := range ts[:len(ts)-1] {
			if i >= len(t.Rows) {
				i -= len(t.Rows)
			}
		}
		return i
	}
	return rowsSource(ts[0].Header, idColumn, "", row, number)
}

// rowsSource reads rows laid out as header says. The record ID comes
// from idColumn, or is "row-" and the row's number in its file (from 0)
// plus one when there is none. The column named drop, if any, is not a
// field (eval's truth column).
func rowsSource(header []string, idColumn, drop string, row func(i int) []string, number func(i int) int) fieldSource {
	col := map[string]int{}
	idc := -1
	for i, h := range header {
		if drop != "" && h == drop {
			continue
		}
		col[h] = i
		if h == idColumn {
			idc = i
		}
	}
	return fieldSource{
		id: func(i int) string {
			if idc < 0 {
				return fmt.Sprintf("row-%d", number(i)+1)
			}
			return row(i)[idc]
		},
		field: func(i int, name string) string {
			c, ok := col[name]
			if !ok || c == idc {
				return ""
			}
			return row(i)[c]
		},
	}
}

// Records turns rows into records; the ID comes from idColumn, or the
// row number when there is none.
func (t *Table) Records(idColumn string) []Record {
	idc := -1
	for i, h := range t.Header {
		if h == idColumn {
			idc = i
		}
	}
	recs := make([]Record, len(t.Rows))
	for r, row := range t.Rows {
		f := make(map[string]string, len(t.Header))
		for i, h := range t.Header {
			if i != idc && row[i] != "" {
				f[h] = row[i]
			}
		}
		id := fmt.Sprintf("row-%d", r+1)
		if idc >= 0 {
			id = row[idc]
		}
		recs[r] = Record{ID: id, Fields: f}
	}
	return recs
}

// EvalOptions configure an evaluation run.
type EvalOptions struct {
	IDColumn     string // default: detected
	TruthPattern string // regexp; its first group (or whole match) names the entity
	// TruthColumn, when set, names a column that holds the entity instead
	// (records with equal values are the same); it is removed before
	// detection, so it cannot leak into the model.
	TruthColumn string
	Config      *Config
	Options
	Examples int // how many false positives and negatives to explain
}

// Metrics are pairwise precision, recall and F1.
type Metrics struct {
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// PairMetrics scores tp right pairs among predicted against truth true pairs.
func PairMetrics(tp, predicted, truth int) Metrics {
	m := Metrics{TP: tp, FP: predicted - tp, FN: truth - tp}
	if predicted > 0 {
		m.Precision = float64(tp) / float64(predicted)
	}
	if truth > 0 {
		m.Recall = float64(tp) / float64(truth)
	}
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	return m
}

// EvalReport is the outcome of Evaluate.
type EvalReport struct {
	Records        int  `json:"records"`
	Link           bool `json:"link"`
	TruePairs      int  `json:"true_pairs"`
	CandidatePairs int  `json:"candidate_pairs"`
	// CandidatesPerRecord is candidate pairs over records: what blocking
	// costs, reported beside what it finds (BlockingRecall).
	CandidatesPerRecord float64         `json:"candidates_per_record"`
	BlockingRecall      float64         `json:"blocking_recall"`
	Pairwise            Metrics         `json:"pairwise"`
	Cluster             Metrics         `json:"cluster"`
	Threshold           float64         `json:"threshold"`
	Detections          []Detection     `json:"detections"`
	Blocking            *BlockingReport `json:"blocking"`
	Train               *TrainReport    `json:"train,omitempty"`
	Clusters            ClusterReport   `json:"clusters"`
	Model               *Model          `json:"model"`
	Elapsed             time.Duration   `json:"elapsed"`
	FalsePositives      []Explanation   `json:"false_positives,omitempty"`
	FalseNegatives      []Explanation   `json:"false_negatives,omitempty"`
	Missed              int             `json:"missed_by_blocking"`
}

// Evaluate runs the whole engine on labelled data and measures it. The
// labels (from record IDs via TruthPattern) are used only for measuring,
// never for training. b, when not nil, is a second file to link with a:
// only pairs across the files then count.
func Evaluate(a, b *Table, opt EvalOptions) (*EvalReport, error) {
	start := time.Now()
	truthRe, err := regexp.Compile(opt.TruthPattern)
	if err != nil {
		return nil, fmt.Errorf("match: truth pattern: %w", err)
	}
	if err := checkEvalTables(a, b, len(a.Rows), b != nil && len(b.Rows) == 0); err != nil {
		return nil, err
	}
	var truth []string
	if opt.TruthColumn != "" {
		var ta, tb []string
		if a, ta, err = splitColumn(a, opt.TruthColumn); err != nil {
			return nil, err
		}
		if b != nil {
			if b, tb, err = splitColumn(b, opt.TruthColumn); err != nil {
				return nil, err
			}
		}
		truth = append(ta, tb...)
	}
	rep := &EvalReport{Link: b != nil}
	cfg := opt.Config
	if cfg == nil {
		rows := a.Rows
		if b != nil {
			rows = append(append([][]string(nil), a.Rows...), b.Rows...)
		}
		cfg, rep.Detections = Detect(a.Header, rows, opt.IDColumn)
	}
	idCol := cfg.IDColumn
	if opt.IDColumn != "" {
		idCol = opt.IDColumn
	}
	opt.Progress.start("preparing", "", 0)
	ds, err := NewTableDataset(cfg, idCol, a, b)
	if err != nil {
		return nil, err
	}
	return evaluate(ds, truth, truthRe, rep, opt, start)
}

// checkEvalTables refuses what cannot be evaluated: two files with
// different columns, or a file with no records (a records, bEmpty).
func checkEvalTables(a, b *Table, aRecords int, bEmpty bool) error {
	if b != nil && strings.Join(a.Header, ",") != strings.Join(b.Header, ",") {
		return fmt.Errorf("match: the two files have different columns")
	}
	if aRecords == 0 || bEmpty {
		return fmt.Errorf("match: no records to evaluate")
	}
	return nil
}

// EvaluateCSV is Evaluate on CSV files (b "" to de-duplicate a alone)
// without holding them: each is read once for a sample that detection
// runs on, then again streaming its records into the dataset
// (LoadCSV). The results are Evaluate's on the same files whenever
// detection finds the same columns on the sample, and exactly Evaluate's
// for files of up to DetectSampleRows records.
func EvaluateCSV(a, b string, maxRecords int, opt EvalOptions) (*EvalReport, error) {
	start := time.Now()
	truthRe, err := regexp.Compile(opt.TruthPattern)
	if err != nil {
		return nil, fmt.Errorf("match: truth pattern: %w", err)
	}
	paths := []string{a}
	if b != "" {
		paths = append(paths, b)
	}
	// A saved model's config names the columns it was trained on, but the
	// ID column is the file's own.
	loaded, err := LoadCSV(paths, CSVOptions{Config: opt.Config, IDColumn: opt.IDColumn, IDFromSample: opt.Model != nil,
		Drop: opt.TruthColumn, MaxRecords: maxRecords, Progress: opt.Progress})
	if err != nil {
		return nil, err
	}
	rep := &EvalReport{Link: b != "", Detections: loaded.Detections}
	return evaluate(loaded.Dataset, loaded.Dropped, truthRe, rep, opt, start)
}

// evaluate runs the engine on a prepared dataset and measures it against
// the truth: truth[i] names record i's entity when truth is not nil,
// else truthRe's first group on its ID.
func evaluate(ds *Dataset, truth []string, truthRe *regexp.Regexp, rep *EvalReport, opt EvalOptions, start time.Time) (*EvalReport, error) {
	rep.Records = ds.Len()
	rep.Threshold = opt.Cluster.Threshold
	if rep.Threshold <= 0 {
		rep.Threshold = 0.95
	}

	// Truth: entity per record, numbered.
	entity := make([]int32, ds.Len())
	names := map[string]int32{}
	for i, id := range ds.IDs {
		name := "\x00" + id // unmatched IDs are their own entity
		if truth != nil {
			if truth[i] != "" {
				name = truth[i]
			}
		} else if m := truthRe.FindStringSubmatch(id); m != nil {
			name = m[len(m)-1]
			if len(m) > 1 {
				name = m[1]
			}
		}
		e, ok := names[name]
		if !ok {
			e = int32(len(names))
			names[name] = e
		}
		entity[i] = e
	}
	names = nil
	rep.TruePairs = impliedPairs(ds, entity, nil)

	// The candidates stream past once: count them, and keep the wrong
	// ones for examples (the first by record index, as a sorted run
	// would give them).
	var mu sync.Mutex
	found, tp, pred := 0, 0, 0
	var fps, fns []Pair
	opt.Options.Observe = func(chunk []ScoredPair) {
		f, t, pr := 0, 0, 0
		var fp, fn []Pair
		for _, p := range chunk {
			same := entity[p.I] == entity[p.J]
			if same {
				f++
			}
			if p.Accepted(rep.Threshold) {
				pr++
				if same {
					t++
				} else if opt.Examples > 0 {
					fp = append(fp, Pair{p.I, p.J})
				}
			} else if same && opt.Examples > 0 {
				fn = append(fn, Pair{p.I, p.J})
			}
		}
		mu.Lock()
		found, tp, pred = found+f, tp+t, pred+pr
		fps, fns = append(fps, fp...), append(fns, fn...)
		mu.Unlock()
	}
	res, err := Run(ds, opt.Options)
	if err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(start)
	rep.Model, rep.Train, rep.Blocking, rep.Clusters = res.Model, res.Train, res.Blocking, res.Clusters
	rep.CandidatePairs = res.Blocking.CandidatePairs
	rep.CandidatesPerRecord = float64(rep.CandidatePairs) / float64(max(1, rep.Records))
	explain := func(pairs []Pair) []Explanation {
		slices.SortFunc(pairs, func(a, b Pair) int {
			if c := cmp.Compare(a.I, b.I); c != 0 {
				return c
			}
			return cmp.Compare(a.J, b.J)
		})
		var out []Explanation
		for _, p := range pairs[:min(len(pairs), opt.Examples)] {
			out = append(out, res.Scorer.Explain(int(p.I), int(p.J)))
		}
		return out
	}
	rep.FalsePositives, rep.FalseNegatives = explain(fps), explain(fns)
	rep.Missed = rep.TruePairs - found
	if rep.TruePairs > 0 {
		rep.BlockingRecall = float64(found) / float64(rep.TruePairs)
	}
	rep.Pairwise = PairMetrics(tp, pred, rep.TruePairs)

	// Cluster level: every pair inside a predicted cluster is a predicted
	// link; it is right when both records are the same entity.
	predicted := impliedPairs(ds, nil, res.Labels)
	clusterTP := impliedPairs(ds, entity, res.Labels)
	rep.Cluster = PairMetrics(clusterTP, predicted, rep.TruePairs)
	return rep, nil
}

// splitColumn returns the table without the named column, and that
// column's values.
func splitColumn(t *Table, name string) (*Table, []string, error) {
	c := slices.Index(t.Header, name)
	if c < 0 {
		return nil, nil, fmt.Errorf("match: truth column %q is not in the CSV (columns: %s)", name, strings.Join(t.Header, ", "))
	}
	out := &Table{Header: slices.Delete(slices.Clone(t.Header), c, c+1), Rows: make([][]string, len(t.Rows))}
	vals := make([]string, len(t.Rows))
	for r, row := range t.Rows {
		vals[r] = row[c]
		out.Rows[r] = slices.Delete(slices.Clone(row), c, c+1)
	}
	return out, vals, nil
}

// impliedPairs counts pairs of records that share a group: an entity
// (labels nil), a cluster (entity nil), or both. In link mode only pairs
// across the two files count.
func impliedPairs(ds *Dataset, entity []int32, labels []int32) int {
	type key struct {
		e int32
		l int32
	}
	counts := map[key][2]int{}
	for i := 0; i < ds.Len(); i++ {
		var k key
		if entity != nil {
			k.e = entity[i]
		}
		if labels != nil {
			k.l = labels[i]
		}
		c := counts[k]
		s := 0
		if ds.Link() {
			s = int(ds.Source[i])
		}
		c[s]++
		counts[k] = c
	}
	total := 0
	for _, c := range counts {
		if ds.Link() {
			total += c[0] * c[1]
		} else {
			total += c[0] * (c[0] - 1) / 2
		}
	}
	return total
}

// FormatEval writes a human-readable report.
func FormatEval(w io.Writer, r *EvalReport, verbose bool) {
	fmt.Fprintf(w, "records             %d\n", r.Records)
	if verbose {
		fmt.Fprintln(w, "columns:")
		for _, d := range r.Detections {
			fmt.Fprintf(w, "  %-16s %-14s %s\n", d.Column, d.Kind, d.Reason)
		}
		fmt.Fprintln(w, "blocking rules:")
		for _, s := range r.Blocking.Rules {
			over := ""
			if s.Oversized > 0 {
				over = fmt.Sprintf("  (cap %d: %d oversized blocks skipped, %d records; largest %q: %d)", s.Cap, s.Oversized, s.OversizedRecords, s.LargestOversized, s.LargestSize)
			}
			fmt.Fprintf(w, "  %-48s %8d pairs%s\n", s.Rule, s.Pairs, over)
		}
		fmt.Fprintf(w, "model %s (%s), prior λ=%.3g\n", r.Model.Version, r.Model.Trained, r.Model.Prior)
		for _, c := range r.Model.Comparisons {
			parts := make([]string, len(c.Levels))
			for i, l := range c.Levels {
				parts[i] = fmt.Sprintf("%s %+.1f", l.Name, l.Weight())
			}
			fmt.Fprintf(w, "  %-16s %s\n", c.Field, strings.Join(parts, ", "))
		}
		if r.Train != nil {
			fmt.Fprintf(w, "training: %d u-sample pairs, %d deterministic pairs (recall %.3f), %.0f expected matches among candidates\n",
				r.Train.USampled, r.Train.DeterministicPairs, r.Train.DeterministicRecall, r.Train.ExpectedMatches)
			for _, run := range r.Train.Runs {
				fmt.Fprintf(w, "  EM %-44s pairs %7d  iter %3d  λ %.3f  used %v\n", run.Rule, run.Pairs, run.Iterations, run.Lambda, run.Used)
			}
		}
		fmt.Fprintf(w, "clusters: %d, largest %d; pairs held by the household and namesake guards: %d; merges refused: %d weak, %d size, %d contradicted\n",
			r.Clusters.Clusters, r.Clusters.Largest, r.Clusters.Held, r.Clusters.BlockedWeak, r.Clusters.BlockedSize, r.Clusters.BlockedContradicted)
	}
	var oversized int
	for _, s := range r.Blocking.Rules {
		oversized += s.Oversized
	}
	fmt.Fprintf(w, "true pairs          %d\n", r.TruePairs)
	fmt.Fprintf(w, "candidate pairs     %d (%.1f per record; %d oversized blocks skipped, cap %d)\n",
		r.CandidatePairs, r.CandidatesPerRecord, oversized, r.Blocking.MaxBlockSize)
	fmt.Fprintf(w, "blocking recall     %.4f (%d true pairs never compared)\n", r.BlockingRecall, r.Missed)
	fmt.Fprintf(w, "pairwise  ≥ %.2f    precision %.4f  recall %.4f  F1 %.4f  (tp %d, fp %d, fn %d)\n",
		r.Threshold, r.Pairwise.Precision, r.Pairwise.Recall, r.Pairwise.F1, r.Pairwise.TP, r.Pairwise.FP, r.Pairwise.FN)
	fmt.Fprintf(w, "cluster pairwise    precision %.4f  recall %.4f  F1 %.4f  (tp %d, fp %d, fn %d)\n",
		r.Cluster.Precision, r.Cluster.Recall, r.Cluster.F1, r.Cluster.TP, r.Cluster.FP, r.Cluster.FN)
	fmt.Fprintf(w, "model               %s\n", r.Model.Version)
	fmt.Fprintf(w, "time                %.2fs\n", r.Elapsed.Seconds())
	if verbose {
		show := func(title string, es []Explanation) {
			sort.Slice(es, func(i, j int) bool { return es[i].Weight > es[j].Weight })
			for _, e := range es {
				fmt.Fprintf(w, "%s %s ~ %s: weight %.1f, p %.4f\n", title, e.A, e.B, e.Weight, e.Probability)
				if e.Held != "" {
					fmt.Fprintf(w, "    held: %s\n", e.Held)
				}
				for _, f := range e.Fields {
					fmt.Fprintf(w, "    %-14s %-24q %-24q %-12s %+.1f", f.Field, f.A, f.B, f.Level, f.Weight)
					if f.TF != 0 {
						fmt.Fprintf(w, " tf %+.1f", f.TF)
					}
					fmt.Fprintln(w)
				}
			}
		}
		show("FP", r.FalsePositives)
		show("FN", r.FalseNegatives)
	}
}
