package match

import (
	"cmp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Blocking finds the candidate pairs worth scoring. Comparing every pair
// is quadratic; instead each rule puts records with equal keys in a block
// and only pairs within a block are compared. Several rules on different
// fields are unioned so that a pair with a typo in one field is still
// found through another: that is what keeps blocking recall high on
// noisy data.

// KeyPart is one component of a blocking key: a field and a transform.
type KeyPart struct {
	Field     string `json:"field"`
	Transform string `json:"transform,omitempty"` // default "exact"
}

func (k KeyPart) transform() string {
	if k.Transform == "" {
		return "exact"
	}
	return k.Transform
}

// BlockRule is a conjunction of key parts: records whose parts are all
// equal (and non-empty) share a block. With Window > 0 the rule is a
// sorted neighbourhood instead: records are sorted by the key and each is
// paired with the next Window-1, which catches keys that differ only
// near their end.
type BlockRule struct {
	Name   string    `json:"name,omitempty"`
	Keys   []KeyPart `json:"keys"`
	Window int       `json:"window,omitempty"`
}

func (r BlockRule) label() string {
	if r.Name != "" {
		return r.Name
	}
	parts := make([]string, len(r.Keys))
	for i, k := range r.Keys {
		parts[i] = k.transform() + "(" + k.Field + ")"
	}
	s := strings.Join(parts, "+")
	if r.Window > 0 {
		s = "sorted[" + strconv.Itoa(r.Window) + "](" + s + ")"
	}
	return s
}

// transforms turn a prepared value into a key part; "" means no key.
var transforms = map[string]func(v *value) string{
	"exact":    func(v *value) string { return v.key },
	"flat":     func(v *value) string { return v.flatString() },
	"soundex":  func(v *value) string { return soundex(v.flatString()) },
	"phonetic": func(v *value) string { return phonetic(v.key) },
	"first3":   func(v *value) string { return prefixRunes(v.flatString(), 3) },
	"initial":  func(v *value) string { return prefixRunes(v.key, 1) },
	"year": func(v *value) string {
		if v.y == 0 {
			return ""
		}
		return strconv.Itoa(int(v.y))
	},
	"last7": func(v *value) string { return v.aux },
	"area":  func(v *value) string { return postcodeArea(v) },
	"local": func(v *value) string { return v.aux },
	// Of a full name: its given name and surname (prepFullName), not a
	// title or a peerage; else its first and last word.
	"first_soundex": func(v *value) string {
		if v.aux != "" {
			return soundex(v.aux)
		}
		if len(v.tokens) == 0 {
			return ""
		}
		return soundex(v.tokens[0])
	},
	"last_soundex": func(v *value) string {
		if v.aux2 != "" {
			return soundex(v.aux2)
		}
		if len(v.tokens) < 2 {
			return ""
		}
		return soundex(v.tokens[len(v.tokens)-1])
	},
}

// DefaultMaxBlockSize caps a block: a block of n records costs n(n-1)/2
// comparisons, so one common value ("smith", a default postcode, a
// column that is 90% the same) could otherwise swamp the run.
const DefaultMaxBlockSize = 200

// DefaultMaxPairsPerRecord bounds what one equality rule may add: a rule
// whose blocks would give more than this many pairs per record (a key
// that is common for the size of the data, like a first name with a birth
// year in a national file) has its cap lowered until it does not, its
// largest blocks skipped and reported. Small data sets are unaffected.
const DefaultMaxPairsPerRecord = 2.0

// DefaultBlocking derives rules from the kinds of the fields present.
// Each rule pairs a phonetic or exact key with a second, independent
// field, so a typo or a missing value in one field leaves other rules to
// find the pair.
func DefaultBlocking(fields []Field) []BlockRule {
	first := map[Kind]string{}
	var ids []string
	for _, f := range fields {
		if len(f.Minus) > 0 {
			continue // compared on what its parts leave: no key of a name
		}
		if _, ok := first[f.Kind]; !ok {
			first[f.Kind] = f.Name
		}
		if f.Kind == KindID {
			ids = append(ids, f.Name)
		}
	}
	has := func(k Kind) bool { _, ok := first[k]; return ok }
	kp := func(k Kind, t string) KeyPart { return KeyPart{Field: first[k], Transform: t} }
	var rules []BlockRule
	add := func(parts ...KeyPart) { rules = append(rules, BlockRule{Keys: parts}) }
	for _, id := range ids {
		add(KeyPart{Field: id})
	}
	if has(KindEmail) {
		add(kp(KindEmail, "exact"))
		add(kp(KindEmail, "local"))
	}
	if has(KindPhone) {
		add(kp(KindPhone, "last7"))
	}
	if has(KindDate) {
		add(kp(KindDate, "exact"))
	}
	// Person names, given and surname or a full name.
	var given, sur KeyPart
	switch {
	case has(KindSurname):
		sur = kp(KindSurname, "soundex")
		if has(KindGivenName) {
			given = kp(KindGivenName, "soundex")
		}
	case has(KindFullName):
		sur = kp(KindFullName, "last_soundex")
		given = kp(KindFullName, "first_soundex")
	}
	place := []KeyPart{}
	if has(KindPostcode) {
		place = append(place, kp(KindPostcode, "exact"))
	}
	if has(KindCity) {
		place = append(place, kp(KindCity, "phonetic"))
	}
	if sur.Field != "" && given.Field != "" {
		add(given, sur)
	}
	for _, n := range []KeyPart{sur, given} {
		if n.Field == "" {
			continue
		}
		for _, p := range place {
			add(n, p)
		}
		if has(KindDate) {
			add(n, kp(KindDate, "year"))
		}
	}
	if has(KindStreetNumber) {
		for _, p := range append(place, kp(KindAddress, "phonetic")) {
			if p.Field != "" {
				add(kp(KindStreetNumber, "exact"), p)
			}
		}
	}
	if has(KindAddress) {
		for _, p := range place {
			add(kp(KindAddress, "phonetic"), p)
		}
	}
	if has(KindPostcode) && has(KindDate) {
		add(kp(KindPostcode, "exact"), kp(KindDate, "year"))
	}
	// Sorted neighbourhood over the names catches pairs whose names share
	// a beginning but differ in ways the phonetic keys split.
	if sur.Field != "" {
		k := []KeyPart{{Field: sur.Field, Transform: "flat"}}
		if given.Field != "" {
			k = append(k, KeyPart{Field: given.Field, Transform: "flat"})
		}
		rules = append(rules, BlockRule{Keys: k, Window: 4})
	}
	if len(rules) > 32 {
		rules = rules[:32] // candidate pairs record their rules in a 32-bit set
	}
	return rules
}

// Pair is a candidate pair of record indexes, I < J.
type Pair struct{ I, J int32 }

// Candidates are the pairs blocking found and which rules found each.
type Candidates struct {
	Pairs []Pair
	Rules []uint32 // bit r set: rule r produced the pair
}

// RuleStats reports what one rule contributed.
type RuleStats struct {
	Rule   string `json:"rule"`
	Blocks int    `json:"blocks"`
	// Cap is the rule's block-size cap: MaxBlockSize, or lower when the
	// pair budget lowered it.
	Cap              int    `json:"cap"`
	Pairs            int    `json:"pairs"` // pairs this rule produced (before union)
	Oversized        int    `json:"oversized_blocks"`
	OversizedRecords int    `json:"oversized_records"`
	LargestOversized string `json:"largest_oversized,omitempty"`
	LargestSize      int    `json:"largest_oversized_size,omitempty"`
}

// BlockingReport summarizes blocking.
type BlockingReport struct {
	Rules          []RuleStats `json:"rules"`
	CandidatePairs int         `json:"candidate_pairs"`
	MaxBlockSize   int         `json:"max_block_size"`
}

// Block runs the dataset's blocking rules and returns the union of their
// pairs, sorted. Blocks over the size cap are skipped and reported, which
// keeps the candidate set bounded by about n·cap/2 pairs per rule. Bulk
// runs (Run) stream the pairs instead of holding them.
func (d *Dataset) Block() (*Candidates, *BlockingReport) {
	plan := d.planBlocks(nil)
	type found struct {
		key  uint64
		rule uint32
	}
	var mu sync.Mutex
	var all []found
	plan.generate(nil, func() pairSink {
		var local []found
		return pairSink{
			pair: func(i, j int32, rules uint32) {
				local = append(local, found{uint64(i)<<32 | uint64(uint32(j)), rules})
			},
			done: func() {
				mu.Lock()
				all = append(all, local...)
				mu.Unlock()
			},
		}
	})
	slices.SortFunc(all, func(a, b found) int { return cmp.Compare(a.key, b.key) })
	c := &Candidates{Pairs: make([]Pair, len(all)), Rules: make([]uint32, len(all))}
	for i, e := range all {
		c.Pairs[i] = Pair{I: int32(e.key >> 32), J: int32(uint32(e.key))}
		c.Rules[i] = e.rule
	}
	plan.report.CandidatePairs = len(c.Pairs)
	return c, plan.report
}

// blockPlan is blocking without its pairs: for every rule, which block
// each record is in (equality rules) or its rank in the sorted order
// (sorted neighbourhoods). That is 4 bytes per record and rule, and
// enough to tell which rules produce any pair, so each pair can be
// emitted by the first rule that produces it and never stored to be
// de-duplicated.
type blockPlan struct {
	d      *Dataset
	rules  []BlockRule
	at     [][]int32 // [rule][record]: block id, or rank; -1 = no pairs (no key, or an oversized block)
	report *BlockingReport
	// examined is how many pairs generate will look at, duplicates
	// included: the unit of its progress.
	examined int64
}

// planBlocks computes the plan; progress, when not nil, counts the rules,
// refinements included as they are found.
//
// An equality rule's oversized blocks (a common name, a common birth
// year with a town) are not simply dropped: their records are blocked
// again with the rule's key plus a refiner (another field: a town, a
// postcode area, a birth year, ...), each refiner a rule of its own
// reported as "RULE / REFINER", and a refined rule's oversized blocks once
// more, up to the 32 rules a pair's rule set can name. A pair of "john
// smith"s with no birth date is then still found through their town.
func (d *Dataset) planBlocks(progress *Progress) *blockPlan {
	capSize := d.Config.MaxBlockSize
	if capSize <= 0 {
		capSize = DefaultMaxBlockSize
	}
	p := &blockPlan{d: d, rules: slices.Clone(d.Config.Blocking), report: &BlockingReport{MaxBlockSize: capSize}}
	refiners := d.refiners()
	budget := d.maxPairsPerRecord() * float64(d.Len())
	type refinement struct {
		rule     BlockRule
		only     []bool // records in the parent's oversized blocks
		depth    int
		required int // key parts a record must have; the rest only sort (a window refinement)
	}
	var queue []refinement
	queuedEver, counted := 0, len(d.Config.Blocking) // refinements queued; rules in progress's total
	plan := func(rule BlockRule, keys []string, depth int) {
		st := RuleStats{Rule: rule.label()}
		at := make([]int32, len(keys))
		if rule.Window > 0 {
			idx := make([]int32, 0, len(keys))
			for i, k := range keys {
				at[i] = -1
				if k != "" {
					idx = append(idx, int32(i))
				}
			}
			sortByKey(idx, keys)
			for rank, i := range idx {
				at[i] = int32(rank)
			}
			st.Blocks = 1
			for a := range idx {
				p.examined += int64(min(rule.Window-1, len(idx)-1-a))
			}
		} else {
			ids := map[string]int32{}
			var sizes []int32
			for i, k := range keys {
				at[i] = -1
				if k == "" {
					continue
				}
				id, ok := ids[k]
				if !ok {
					id = int32(len(sizes))
					ids[k] = id
					sizes = append(sizes, 0)
				}
				at[i] = id
				sizes[id]++
			}
			st.Blocks = len(sizes)
			st.Cap = budgetCap(sizes, capSize, budget)
			for k, id := range ids {
				n := int(sizes[id])
				if n > st.Cap {
					st.Oversized++
					st.OversizedRecords += n
					if n > st.LargestSize || n == st.LargestSize && k < st.LargestOversized {
						st.LargestSize, st.LargestOversized = n, k
					}
				} else {
					p.examined += int64(n) * int64(n-1) / 2
				}
			}
			var over []bool
			if st.Oversized > 0 && depth < 2 {
				over = make([]bool, len(keys))
			}
			for i, id := range at {
				if id >= 0 && (sizes[id] > int32(st.Cap) || sizes[id] < 2) {
					if over != nil && sizes[id] > int32(st.Cap) {
						over[i] = true
					}
					at[i] = -1
				}
			}
			if over != nil {
				queued := len(queue)
				for _, sortBy := range d.sorters(rule) {
					r := BlockRule{Keys: append(slices.Clone(rule.Keys), sortBy...), Window: oversizedWindow}
					r.Name = rule.label() + " / " + BlockRule{Keys: sortBy, Window: oversizedWindow}.label()
					queue = append(queue, refinement{r, over, depth + 1, len(rule.Keys)})
				}
				for _, ref := range refiners {
					if !slices.ContainsFunc(rule.Keys, func(k KeyPart) bool { return k.Field == ref.Field }) {
						r := BlockRule{Keys: append(slices.Clone(rule.Keys), ref)}
						r.Name = rule.label() + " / " + r.Keys[len(r.Keys)-1:][0].transform() + "(" + ref.Field + ")"
						queue = append(queue, refinement{r, over, depth + 1, len(r.Keys)})
					}
				}
				// Only the first 32 rules run: count no more.
				queuedEver += len(queue) - queued
				want := max(len(d.Config.Blocking), min(32, len(d.Config.Blocking)+queuedEver))
				progress.grow(want - counted)
				counted = want
			}
		}
		p.at = append(p.at, at)
		p.report.Rules = append(p.report.Rules, st)
	}
	for _, rule := range p.rules {
		plan(rule, d.blockKeys(rule), 0)
		progress.add(1)
	}
	for len(queue) > 0 && len(p.rules) < 32 {
		ref := queue[0]
		queue = queue[1:]
		p.rules = append(p.rules, ref.rule)
		plan(ref.rule, d.keysOf(ref.rule, ref.required, ref.only), ref.depth)
		progress.add(1)
	}
	return p
}

// sortByKey orders record indexes by their keys, equal keys by index
// (what a stable sort of ascending indexes gives), as a merge sort over
// the cores: a sorted neighbourhood sorts every record with a key.
func sortByKey(idx []int32, keys []string) {
	byKey := func(a, b int32) int {
		if c := strings.Compare(keys[a], keys[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	var sortRange func(s, tmp []int32, ways int)
	sortRange = func(s, tmp []int32, ways int) {
		if ways < 2 || len(s) < 1<<14 {
			slices.SortFunc(s, byKey)
			return
		}
		mid := len(s) / 2
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sortRange(s[:mid], tmp[:mid], ways/2)
		}()
		sortRange(s[mid:], tmp[mid:], ways-ways/2)
		wg.Wait()
		out := tmp[:0]
		a, b := s[:mid], s[mid:]
		for len(a) > 0 && len(b) > 0 {
			if byKey(b[0], a[0]) < 0 {
				out, b = append(out, b[0]), b[1:]
			} else {
				out, a = append(out, a[0]), a[1:]
			}
		}
		out = append(append(out, a...), b...)
		copy(s, out)
	}
	sortRange(idx, make([]int32, len(idx)), runtime.GOMAXPROCS(0))
}

// refiners are the key parts that split an oversized block, strongest
// first: the person's names, then where they live, then when they were
// born.
func (d *Dataset) refiners() []KeyPart {
	first := map[Kind]string{}
	for _, f := range d.Config.Fields {
		if _, ok := first[f.Kind]; !ok && len(f.Minus) == 0 {
			first[f.Kind] = f.Name
		}
	}
	var out []KeyPart
	add := func(k Kind, t string) {
		if f, ok := first[k]; ok {
			out = append(out, KeyPart{Field: f, Transform: t})
		}
	}
	add(KindGivenName, "soundex")
	add(KindSurname, "soundex")
	if _, ok := first[KindSurname]; !ok {
		add(KindFullName, "first_soundex")
	}
	add(KindDate, "year")
	add(KindCity, "phonetic")
	// An area names about what a town does; with a town as well it still
	// splits the records whose town is missing or spelt another way.
	add(KindPostcode, "area")
	return out
}

// oversizedWindow is the sorted neighbourhood an oversized block gets
// besides its refiners: a block too large to compare whole is often one
// person's many records (a name, a town and a birth year repeated), which
// no refiner splits, and each record compared with its next few, sorted by
// other fields, links them for a bounded cost.
const oversizedWindow = 5

// sorters order an oversized block's records for its sorted
// neighbourhoods: the fields not in the rule's key that best tell people
// apart, in full (two namesakes' records then sort apart, one person's
// together), at most two. When the first order leads with the birth date,
// a second one leaves the date out: records with no date all sort first in
// the first order, away from their own person's dated records, and the
// second brings them together by place.
func (d *Dataset) sorters(rule BlockRule) [][]KeyPart {
	pick := func(kinds ...Kind) []KeyPart {
		var out []KeyPart
		for _, k := range kinds {
			for _, f := range d.Config.Fields {
				if f.Kind != k || len(f.Minus) > 0 || slices.ContainsFunc(rule.Keys, func(p KeyPart) bool { return p.Field == f.Name }) {
					continue
				}
				out = append(out, KeyPart{Field: f.Name, Transform: "flat"})
				break
			}
			if len(out) == 2 {
				break
			}
		}
		return out
	}
	first := pick(KindDate, KindSurname, KindGivenName, KindFullName, KindPostcode, KindCity)
	if len(first) == 0 {
		return nil
	}
	out := [][]KeyPart{first}
	if first[0].Field == d.fieldOfKind(KindDate) {
		if second := pick(KindPostcode, KindCity, KindSurname, KindGivenName); len(second) > 0 {
			out = append(out, second)
		}
	}
	return out
}

// fieldOfKind is the first field of kind k, "" when there is none.
func (d *Dataset) fieldOfKind(k Kind) string {
	for _, f := range d.Config.Fields {
		if f.Kind == k && len(f.Minus) == 0 {
			return f.Name
		}
	}
	return ""
}

// rulesOf is the set of rules that produce the pair i, j.
func (p *blockPlan) rulesOf(i, j int32) uint32 { return p.rulesFrom(0, i, j) }

// rulesFrom is the set of rules from r on that produce the pair i, j.
func (p *blockPlan) rulesFrom(r int, i, j int32) uint32 {
	var set uint32
	for ; r < len(p.at); r++ {
		if p.produces(r, i, j) {
			set |= 1 << uint(r)
		}
	}
	return set
}

// producedBefore says whether a rule before r produces the pair i, j:
// then that rule emitted it. Most pairs found twice are found by the
// first rules, so asking this before the whole set saves most lookups.
func (p *blockPlan) producedBefore(r int, i, j int32) bool {
	for e := 0; e < r; e++ {
		if p.produces(e, i, j) {
			return true
		}
	}
	return false
}

func (p *blockPlan) produces(r int, i, j int32) bool {
	at := p.at[r]
	a, b := at[i], at[j]
	if a < 0 || b < 0 {
		return false
	}
	if w := int32(p.rules[r].Window); w > 0 {
		d := a - b
		return d < w && -d < w
	}
	return a == b
}

// pairSink receives one worker's pairs; done is called once at its end.
type pairSink struct {
	pair func(i, j int32, rules uint32)
	done func()
}

// generate calls a sink per worker with every candidate pair once (I <
// J), with the set of rules that produce it, on every core. It fills the
// report's pair counts; examined, when not nil, counts progress.
func (p *blockPlan) generate(examined *atomic.Int64, newSink func() pairSink) {
	type unit struct {
		r      int
		lo, hi int // members[lo:hi] (a sorted neighbourhood: the pairs starting in lo..hi)
	}
	workers := runtime.GOMAXPROCS(0)
	sinks := make([]pairSink, workers)
	for w := range sinks {
		sinks[w] = newSink()
	}
	for r, rule := range p.rules {
		members, starts := p.members(r)
		units := make(chan unit, 64)
		var produced atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(sink pairSink) {
				defer wg.Done()
				n := int64(0)
				emit := func(i, j int32) {
					if !p.d.comparable(int(i), int(j)) {
						return
					}
					n++
					if i > j {
						i, j = j, i
					}
					if !p.producedBefore(r, i, j) {
						sink.pair(i, j, p.rulesFrom(r, i, j))
					}
				}
				for u := range units {
					look := int64(0)
					if rule.Window > 0 {
						for a := u.lo; a < u.hi; a++ {
							for b := a + 1; b < len(members) && b < a+rule.Window; b++ {
								emit(members[a], members[b])
								look++
							}
						}
					} else {
						for blk := u.lo; blk < u.hi; blk++ {
							m := members[starts[blk]:starts[blk+1]]
							for a := range m {
								for b := a + 1; b < len(m); b++ {
									emit(m[a], m[b])
								}
							}
							look += int64(len(m)) * int64(len(m)-1) / 2
						}
					}
					if examined != nil {
						examined.Add(look)
					}
				}
				produced.Add(n)
			}(sinks[w%len(sinks)])
		}
		// Units of about 20,000 pairs keep the workers evenly loaded.
		if rule.Window > 0 {
			step := max(1, 20_000/rule.Window)
			for lo := 0; lo < len(members); lo += step {
				units <- unit{r, lo, min(lo+step, len(members))}
			}
		} else {
			lo, pairs := 0, 0
			for blk := 0; blk+1 < len(starts); blk++ {
				n := int(starts[blk+1] - starts[blk])
				pairs += n * (n - 1) / 2
				if pairs >= 20_000 {
					units <- unit{r, lo, blk + 1}
					lo, pairs = blk+1, 0
				}
			}
			if lo+1 < len(starts) {
				units <- unit{r, lo, len(starts) - 1}
			}
		}
		close(units)
		wg.Wait()
		p.report.Rules[r].Pairs = int(produced.Load())
	}
	for _, s := range sinks {
		s.done()
	}
}

// members lists rule r's records grouped by block (counting sort):
// block b is members[starts[b]:starts[b+1]]. For a sorted neighbourhood
// it is the records in rank order, starts nil.
func (p *blockPlan) members(r int) (members, starts []int32) {
	at := p.at[r]
	if p.rules[r].Window > 0 {
		n := 0
		for _, a := range at {
			if a >= 0 {
				n++
			}
		}
		members = make([]int32, n)
		for i, a := range at {
			if a >= 0 {
				members[a] = int32(i)
			}
		}
		return members, nil
	}
	blocks := int32(0)
	for _, a := range at {
		blocks = max(blocks, a+1)
	}
	starts = make([]int32, blocks+1)
	for _, a := range at {
		if a >= 0 {
			starts[a+1]++
		}
	}
	for b := 1; b < len(starts); b++ {
		starts[b] += starts[b-1]
	}
	members = make([]int32, starts[blocks])
	fill := slices.Clone(starts[:blocks])
	for i, a := range at {
		if a >= 0 {
			members[fill[a]] = int32(i)
			fill[a]++
		}
	}
	return members, starts
}

// budgetCap is the largest block size, up to capSize, at which the blocks
// no larger than it give at most budget pairs.
func budgetCap(sizes []int32, capSize int, budget float64) int {
	count := make([]int, capSize+1) // blocks of each size up to the cap
	for _, n := range sizes {
		if int(n) <= capSize {
			count[n]++
		}
	}
	pairs := 0.0
	for size := 2; size <= capSize; size++ {
		pairs += float64(count[size]) * float64(size*(size-1)/2)
		if pairs > budget {
			return max(size-1, 2)
		}
	}
	return capSize
}

func (d *Dataset) maxPairsPerRecord() float64 {
	if d.Config.MaxPairsPerRecord > 0 {
		return d.Config.MaxPairsPerRecord
	}
	return DefaultMaxPairsPerRecord
}

// blockKeys computes a rule's key for every record ("" = not blocked).
func (d *Dataset) blockKeys(rule BlockRule) []string { return d.keysOf(rule, len(rule.Keys), nil) }

// keysOf computes a rule's key for every record (of those only marks,
// when not nil: a refinement's) from its first required parts, which
// must all be present, and the rest, which may be missing (they only
// order a sorted neighbourhood).
func (d *Dataset) keysOf(rule BlockRule, required int, only []bool) []string {
	// Each part is computed once per distinct value (soundex of "smith"
	// once, not once per Smith) and shared by the records that hold it.
	idx := make([]int, len(rule.Keys))
	parts := make([][]string, len(rule.Keys))
	for p, k := range rule.Keys {
		idx[p], _ = d.fieldIndex(k.Field)
		dict := &d.dict[idx[p]]
		f := transforms[k.transform()]
		parts[p] = make([]string, dict.len())
		parallel(dict.len(), func(lo, hi int) {
			for v := lo; v < hi; v++ {
				if val := dict.at(uint32(v)); !val.null() {
					parts[p][v] = f(val)
				}
			}
		})
	}
	keys := make([]string, d.Len())
	parallel(d.Len(), func(lo, hi int) {
		var b strings.Builder
		for i := lo; i < hi; i++ {
			if only != nil && !only[i] {
				continue
			}
			if len(parts) == 1 {
				keys[i] = parts[0][d.col[idx[0]][i]]
				continue
			}
			b.Reset()
			ok := true
			for p := range parts {
				part := parts[p][d.col[idx[p]][i]]
				if part == "" && p < required {
					ok = false
					break
				}
				if p > 0 {
					b.WriteByte(0)
				}
				b.WriteString(part)
			}
			if ok {
				keys[i] = b.String()
			}
		}
	})
	return keys
}

// ruleFields lists the comparisons a rule's keys are built from; EM
// leaves them out when it trains on that rule's pairs, because blocking
// made them agree regardless of match status.
func (d *Dataset) ruleFields(rule BlockRule) []int {
	var out []int
	for _, k := range rule.Keys {
		if i, err := d.fieldIndex(k.Field); err == nil && !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}
