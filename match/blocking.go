package match

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"
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
	"flat":     func(v *value) string { return string(v.flat) },
	"soundex":  func(v *value) string { return soundex(string(v.flat)) },
	"phonetic": func(v *value) string { return phonetic(v.key) },
	"first3":   func(v *value) string { return prefixRunes(string(v.flat), 3) },
	"initial":  func(v *value) string { return prefixRunes(v.key, 1) },
	"year": func(v *value) string {
		if v.y == 0 {
			return ""
		}
		return strconv.Itoa(int(v.y))
	},
	"last7": func(v *value) string { return v.aux },
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
// pairs. Blocks over the size cap are skipped and reported, which keeps
// the candidate set bounded by about n·cap/2 pairs per rule.
func (d *Dataset) Block() (*Candidates, *BlockingReport) {
	capSize := d.Config.MaxBlockSize
	if capSize <= 0 {
		capSize = DefaultMaxBlockSize
	}
	rep := &BlockingReport{MaxBlockSize: capSize}
	// Pairs are kept sorted and unique, merging in each rule's pairs as it
	// finishes, so memory holds the union plus one rule's pairs rather
	// than every rule's pairs at once.
	var union []entry
	var batch []entry
	emit := func(i, j int32, r int) {
		if !d.comparable(int(i), int(j)) {
			return
		}
		if i > j {
			i, j = j, i
		}
		batch = append(batch, entry{uint64(i)<<32 | uint64(uint32(j)), 1 << uint(r)})
	}
	for r, rule := range d.Config.Blocking {
		st := RuleStats{Rule: rule.label()}
		keys := d.blockKeys(rule)
		batch = batch[:0]
		if rule.Window > 0 {
			idx := make([]int32, 0, len(keys))
			for i, k := range keys {
				if k != "" {
					idx = append(idx, int32(i))
				}
			}
			sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
			for a := range idx {
				for b := a + 1; b < len(idx) && b < a+rule.Window; b++ {
					emit(idx[a], idx[b], r)
				}
			}
			st.Blocks = 1
		} else {
			blocks := map[string][]int32{}
			for i, k := range keys {
				if k != "" {
					blocks[k] = append(blocks[k], int32(i))
				}
			}
			st.Blocks = len(blocks)
			st.Cap = budgetCap(blocks, capSize, d.maxPairsPerRecord()*float64(len(keys)))
			for k, members := range blocks {
				if len(members) > st.Cap {
					st.Oversized++
					st.OversizedRecords += len(members)
					if len(members) > st.LargestSize {
						st.LargestSize, st.LargestOversized = len(members), k
					}
					continue
				}
				for a := 0; a < len(members); a++ {
					for b := a + 1; b < len(members); b++ {
						emit(members[a], members[b], r)
					}
				}
			}
		}
		st.Pairs = len(batch)
		union = mergeEntries(union, batch)
		rep.Rules = append(rep.Rules, st)
	}
	c := &Candidates{Pairs: make([]Pair, len(union)), Rules: make([]uint32, len(union))}
	for i, e := range union {
		c.Pairs[i] = Pair{I: int32(e.key >> 32), J: int32(uint32(e.key))}
		c.Rules[i] = e.rule
	}
	rep.CandidatePairs = len(c.Pairs)
	return c, rep
}

// budgetCap is the largest block size, up to capSize, at which the blocks
// no larger than it give at most budget pairs.
func budgetCap(blocks map[string][]int32, capSize int, budget float64) int {
	count := make([]int, capSize+1) // blocks of each size up to the cap
	for _, m := range blocks {
		if len(m) <= capSize {
			count[len(m)]++
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

type entry struct {
	key  uint64 // I<<32 | J
	rule uint32 // set of rules that produced the pair
}

// mergeEntries sorts batch, folds its duplicates, and merges it into the
// sorted, unique union.
func mergeEntries(union, batch []entry) []entry {
	slices.SortFunc(batch, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	out := make([]entry, 0, len(union)+len(batch))
	i, j := 0, 0
	for i < len(union) || j < len(batch) {
		var e entry
		if j >= len(batch) || (i < len(union) && union[i].key <= batch[j].key) {
			e = union[i]
			i++
		} else {
			e = batch[j]
			j++
		}
		if n := len(out); n > 0 && out[n-1].key == e.key {
			out[n-1].rule |= e.rule
			continue
		}
		out = append(out, e)
	}
	return out
}

// blockKeys computes a rule's key for every record ("" = not blocked).
func (d *Dataset) blockKeys(rule BlockRule) []string {
	idx := make([]int, len(rule.Keys))
	for i, k := range rule.Keys {
		idx[i], _ = d.fieldIndex(k.Field)
	}
	keys := make([]string, len(d.vals))
	parallel(len(d.vals), func(lo, hi int) {
		var b strings.Builder
		for i := lo; i < hi; i++ {
			b.Reset()
			ok := true
			for p, k := range rule.Keys {
				part := transforms[k.transform()](&d.vals[i][idx[p]])
				if part == "" {
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
