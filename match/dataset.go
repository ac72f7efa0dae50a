package match

import (
	"fmt"
	"runtime"
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
	vals   [][]value // [record][comparison]
	// term frequencies of each comparison's exact keys
	tfCount []map[string]int32
	tfTotal []int
}

// NewDataset prepares records for de-duplication.
func NewDataset(cfg *Config, recs []Record) (*Dataset, error) {
	return newDataset(cfg, recs, nil)
}

// NewLinkDataset prepares two files for linkage: only pairs with one
// record from each are compared.
func NewLinkDataset(cfg *Config, a, b []Record) (*Dataset, error) {
	all := make([]Record, 0, len(a)+len(b))
	all = append(all, a...)
	all = append(all, b...)
	src := make([]uint8, len(all))
	for i := len(a); i < len(all); i++ {
		src[i] = 1
	}
	return newDataset(cfg, all, src)
}

func newDataset(cfg *Config, recs []Record, src []uint8) (*Dataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Blocking) == 0 {
		cfg.Blocking = DefaultBlocking(cfg.Fields)
	}
	d := &Dataset{Config: cfg, Source: src, IDs: make([]string, len(recs))}
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
	d.vals = make([][]value, len(recs))
	parallel(len(recs), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d.IDs[i] = recs[i].ID
			vs := make([]value, len(d.comps))
			for c, cmp := range d.comps {
				if raw := cfg.rawValue(cmp.field, recs[i].Fields); raw != "" {
					vs[c] = cmp.method.prepare(raw)
				}
			}
			d.vals[i] = vs
		}
	})
	d.tfCount = make([]map[string]int32, len(d.comps))
	d.tfTotal = make([]int, len(d.comps))
	for c := range d.comps {
		counts := map[string]int32{}
		for i := range d.vals {
			if k := d.vals[i][c].key; k != "" {
				counts[k]++
				d.tfTotal[c]++
			}
		}
		d.tfCount[c] = counts
	}
	return d, nil
}

// Len is the number of records.
func (d *Dataset) Len() int { return len(d.vals) }

// Link reports whether the dataset links two files.
func (d *Dataset) Link() bool { return d.Source != nil }

// TotalPairs is the number of pairs that could be compared without blocking.
func (d *Dataset) TotalPairs() float64 {
	n := float64(len(d.vals))
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
	a, b := d.vals[i], d.vals[j]
	for c, cmp := range d.comps {
		va, vb := &a[c], &b[c]
		if va.null() || vb.null() {
			out[c] = 0
			continue
		}
		var pa, pb *value
		if cmp.partner >= 0 {
			pa, pb = &a[cmp.partner], &b[cmp.partner]
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

// tf is the share of non-missing values of comparison c equal to key.
func (d *Dataset) tf(c int, key string) float64 {
	if d.tfTotal[c] == 0 {
		return 1
	}
	n := d.tfCount[c][key]
	if n < 1 {
		n = 1
	}
	return float64(n) / float64(d.tfTotal[c])
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
