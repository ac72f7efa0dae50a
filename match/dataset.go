package match

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// comparison is one configured field bound to its comparator. Its levels
// are "null" (index 0, weight 0: a missing value is no evidence either
// way) followed by the method's levels, less "swapped" when the field has
// no partner.
type comparison struct {
	field   Field
	method  *method
	partner int      // index of the swap partner field, -1 if none
	levels  []string // "null" + the levels this comparison can produce
	remap   []uint8  // method level index -> comparison level index
	tf      bool
}

func newComparison(f Field, partner int) *comparison {
	m := methods[f.method()]
	c := &comparison{field: f, method: m, partner: partner, levels: []string{"null"}, tf: f.useTF()}
	c.remap = make([]uint8, len(m.levels))
	for i, l := range m.levels {
		if l == "swapped" && partner < 0 {
			c.remap[i] = uint8(len(c.levels)) // never produced; keep the index valid
			continue
		}
		c.remap[i] = uint8(len(c.levels))
		c.levels = append(c.levels, l)
	}
	// "swapped" without a partner maps onto the next level, which is
	// harmless because compare cannot return it without partner values.
	for i := range c.remap {
		if int(c.remap[i]) >= len(c.levels) {
			c.remap[i] = uint8(len(c.levels) - 1)
		}
	}
	return c
}

// exactLevel is the index of the "exact" level (always the first after null).
const exactLevel = 1

// Dataset is a set of records prepared for blocking, training and
// scoring. In link mode every record carries the file it came from and
// only pairs across files are candidates.
type Dataset struct {
	Config *Config
	IDs    []string
	Source []uint8 // link mode: 0 or 1 per record; nil when de-duplicating
	comps  []*comparison
	// Prepared values are interned per comparison: col[c][i] indexes
	// dict[c], whose entry 0 is the missing value. People share names,
	// places and birth dates, so a million records hold about a fifth as
	// many distinct values as fields, and a record costs 4 bytes a field
	// beyond them (a value struct per field was 2.3 KB a record).
	col  [][]uint32
	dict []values
	// Term frequencies: tfN[c][v] is how many records hold the key of
	// dict[c][v] (values that differ in raw form can share a key),
	// tfTotal[c] the records with a value, tfAgree[c] Σ n(n-1) over the
	// distinct keys.
	tfN     [][]int32
	tfTotal []int
	tfAgree []float64
}

// NewDataset prepares records for de-duplication.
func NewDataset(cfg *Config, recs []Record) (*Dataset, error) {
	return newDataset(cfg, len(recs), recordSource(recs), nil)
}

// NewLinkDataset prepares two files for linkage: only pairs with one
// record from each are compared.
func NewLinkDataset(cfg *Config, a, b []Record) (*Dataset, error) {
	all := make([]Record, 0, len(a)+len(b))
	all = append(all, a...)
	all = append(all, b...)
	return newDataset(cfg, len(all), recordSource(all), linkSource(len(a), len(b)))
}

// fieldSource reads record i's ID and raw field values; it lets a
// dataset be built from records or straight from a table's rows.
type fieldSource struct {
	id    func(i int) string
	field func(i int, name string) string // "" = missing
}

func recordSource(recs []Record) fieldSource {
	return fieldSource{
		id:    func(i int) string { return recs[i].ID },
		field: func(i int, name string) string { return recs[i].Fields[name] },
	}
}

func linkSource(a, b int) []uint8 {
	src := make([]uint8, a+b)
	for i := a; i < len(src); i++ {
		src[i] = 1
	}
	return src
}

func newDataset(cfg *Config, n int, fs fieldSource, src []uint8) (*Dataset, error) {
	b, err := newBuilder(cfg, n, src)
	if err != nil {
		return nil, err
	}
	b.add(fs, n)
	return b.finish(), nil
}

// builder interns records' values as they come, a batch at a time, so
// that a dataset can be built from a CSV streamed past once (CSVDataset)
// as well as from rows in memory. Values get their indexes in record
// order whichever way the records come, so both build the same dataset.
type builder struct {
	d    *Dataset
	next int                 // records added so far
	seen []map[string]uint32 // per comparison: raw value -> index in dict
	// count[c][v] is how many records hold dict[c][v]; term frequencies
	// are summed from it by key at the end, rather than by hashing every
	// record's key.
	count [][]int32
}

// newBuilder prepares for n records.
func newBuilder(cfg *Config, n int, src []uint8) (*builder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Blocking) == 0 {
		cfg.Blocking = DefaultBlocking(cfg.Fields)
	}
	d := &Dataset{Config: cfg, Source: src, IDs: make([]string, n)}
	index := map[string]int{}
	for i, f := range cfg.Fields {
		index[f.Name] = i
	}
	for _, f := range cfg.Fields {
		p := -1
		if f.Swap != "" {
			p = index[f.Swap]
		}
		d.comps = append(d.comps, newComparison(f, p))
	}
	b := &builder{d: d, seen: make([]map[string]uint32, len(d.comps)), count: make([][]int32, len(d.comps))}
	d.col = make([][]uint32, len(d.comps))
	d.dict = make([]values, len(d.comps))
	for c := range d.comps {
		d.col[c] = make([]uint32, n)
		d.dict[c].add(value{})
		b.seen[c] = map[string]uint32{"": 0}
		b.count[c] = []int32{0}
	}
	return b, nil
}

// add interns records 0 … rows-1 of fs as the builder's next records,
// one comparison per core.
func (b *builder) add(fs fieldSource, rows int) {
	d, first := b.d, b.next
	if first+rows > len(d.IDs) {
		panic(fmt.Sprintf("match: builder for %d records given %d", len(d.IDs), first+rows))
	}
	b.next += rows
	parallel(rows, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			// A clone, so that an ID cut from a CSV line does not keep the line.
			d.IDs[first+i] = strings.Clone(fs.id(i))
		}
	})
	eachParallel(len(d.comps), func(c int) {
		cmp, seen, col, dict, count := d.comps[c], b.seen[c], d.col[c][first:], &d.dict[c], b.count[c]
		for i := 0; i < rows; i++ {
			// The value compared may draw on the record's other fields
			// (Fill, Minus), so it is interned after rawValue, not before.
			raw := d.Config.rawValue(cmp.field, func(name string) string { return fs.field(i, name) })
			id, ok := seen[raw]
			if !ok {
				raw = strings.Clone(raw)
				if v := cmp.method.prepare(raw); !v.null() {
					id = uint32(dict.len())
					dict.add(v)
					count = append(count, 0)
				}
				seen[raw] = id
			}
			col[i] = id
			count[id]++
		}
		b.count[c] = count
	})
}

// finish computes the term frequencies and returns the dataset.
func (b *builder) finish() *Dataset {
	d := b.d
	if b.next != len(d.IDs) {
		panic(fmt.Sprintf("match: builder for %d records given %d", len(d.IDs), b.next))
	}
	// The raw values' maps are the largest thing built besides the
	// values: let them go before building more.
	b.seen = nil
	d.tfN = make([][]int32, len(d.comps))
	d.tfTotal = make([]int, len(d.comps))
	d.tfAgree = make([]float64, len(d.comps))
	eachParallel(len(d.comps), func(c int) {
		dict, count := &d.dict[c], b.count[c]
		// Values that differ in raw form can share a key.
		byKey := map[string]int32{}
		total := 0
		for v := 1; v < dict.len(); v++ {
			byKey[dict.at(uint32(v)).key] += count[v]
			total += int(count[v])
		}
		tfN := make([]int32, dict.len())
		for v := 1; v < dict.len(); v++ {
			tfN[v] = byKey[dict.at(uint32(v)).key]
		}
		agree := 0.0
		for _, n := range byKey {
			agree += float64(n) * float64(n-1)
		}
		d.tfN[c], d.tfTotal[c], d.tfAgree[c] = tfN, total, agree
	})
	b.seen, b.count = nil, nil
	return d
}

// val is record i's prepared value of comparison c.
func (d *Dataset) val(i, c int) *value { return d.dict[c].at(d.col[c][i]) }

// values are one comparison's interned values, in fixed-size pages: a
// slice that grows copies itself, holding the old and the new at once,
// and its spare room stays (at 5,000,000 records the largest column has
// millions of 128-byte values).
type values struct {
	pages [][]value
	n     int
}

const valuePageBits = 14 // 16,384 values, 2 MB a page

func (vs *values) at(i uint32) *value {
	return &vs.pages[i>>valuePageBits][i&(1<<valuePageBits-1)]
}

func (vs *values) len() int { return vs.n }

// add appends a value. The first page grows as appends grow a slice, so
// the small datasets of incremental matching (a batch's records) take a
// few hundred bytes a column, not 2 MB; later pages are made whole.
// Values are held by index while a dataset is built, never by pointer,
// so the first page may move as it grows.
func (vs *values) add(v value) {
	switch {
	case len(vs.pages) == 0:
		vs.pages = append(vs.pages, make([]value, 0, 4))
	case vs.n>>valuePageBits == len(vs.pages):
		vs.pages = append(vs.pages, make([]value, 0, 1<<valuePageBits))
	}
	p := &vs.pages[len(vs.pages)-1]
	*p = append(*p, v)
	vs.n++
}

// Len is the number of records.
func (d *Dataset) Len() int { return len(d.IDs) }

// Link reports whether the dataset links two files.
func (d *Dataset) Link() bool { return d.Source != nil }

// TotalPairs is the number of pairs that could be compared without blocking.
func (d *Dataset) TotalPairs() float64 {
	n := float64(len(d.IDs))
	if d.Link() {
		a := 0.0
		for _, s := range d.Source {
			if s == 0 {
				a++
			}
		}
		return a * (n - a)
	}
	return n * (n - 1) / 2
}

func (d *Dataset) comparable(i, j int) bool {
	if i == j {
		return false
	}
	return d.Source == nil || d.Source[i] != d.Source[j]
}

// levelsInto writes the comparison level of every field for records i, j.
func (d *Dataset) levelsInto(i, j int, out []uint8) {
	for c, cmp := range d.comps {
		ia, ib := d.col[c][i], d.col[c][j]
		if ia == 0 || ib == 0 {
			out[c] = 0
			continue
		}
		va, vb := d.dict[c].at(ia), d.dict[c].at(ib)
		if ia == ib && (cmp.method.inexact == nil || !cmp.method.inexact(va)) { // one interned value: equal keys
			out[c] = cmp.remap[0]
			continue
		}
		var pa, pb *value
		if cmp.partner >= 0 {
			pa, pb = d.val(i, cmp.partner), d.val(j, cmp.partner)
		}
		out[c] = cmp.remap[cmp.method.compare(va, vb, pa, pb)]
	}
}

// comparisonVectors computes the levels of every pair, in parallel.
func (d *Dataset) comparisonVectors(pairs []Pair) []uint8 {
	nc := len(d.comps)
	g := make([]uint8, len(pairs)*nc)
	parallel(len(pairs), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			d.levelsInto(int(pairs[p].I), int(pairs[p].J), g[p*nc:(p+1)*nc])
		}
	})
	return g
}

// tf is the share of non-missing values of comparison c equal to the
// key of its value v.
func (d *Dataset) tf(c int, v uint32) float64 {
	if d.tfTotal[c] == 0 {
		return 1
	}
	n := d.tfN[c][v]
	if n < 1 {
		n = 1
	}
	return float64(n) / float64(d.tfTotal[c])
}

// eachParallel calls f(0) … f(n-1) over the available cores.
func eachParallel(n int, f func(i int)) {
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(n, runtime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// parallel splits [0,n) into chunks over the available cores.
func parallel(n int, f func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < 2048 || workers == 1 {
		f(0, n)
		return
	}
	chunk := (n + workers*4 - 1) / (workers * 4)
	var wg sync.WaitGroup
	next := make(chan int, workers*4+1)
	for lo := 0; lo < n; lo += chunk {
		next <- lo
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				f(lo, min(lo+chunk, n))
			}
		}()
	}
	wg.Wait()
}

func (d *Dataset) fieldIndex(name string) (int, error) {
	for i, c := range d.comps {
		if c.field.Name == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("match: no field %q", name)
}
