package match

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestMessyErrorBreakdown is a diagnostic run on demand
// (IDGRAPH_BREAKDOWN=20000 go test -run TestMessyErrorBreakdown -v ./match):
// it runs the engine on the messy shape, sorts every cluster-level error
// into a class (what an oracle over the fields could or could not have
// told apart, what blocking missed, which comparison lost the pair) and
// estimates the ceiling that any matcher has on this generator.
func TestMessyErrorBreakdown(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("IDGRAPH_BREAKDOWN"))
	if n <= 0 {
		t.Skip("set IDGRAPH_BREAKDOWN=records to run the error breakdown")
	}
	seed := uint64(1)
	if s, err := strconv.ParseUint(os.Getenv("IDGRAPH_BREAKDOWN_SEED"), 10, 64); err == nil {
		seed = s
	}
	tbl, _ := Synthesize(SynthOptions{Records: n, Seed: seed, Shape: "messy"})
	cfg, _ := Detect(tbl.Header, tbl.Rows, "unique_id")
	ds, err := NewTableDataset(cfg, "unique_id", tbl, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	scored := map[Pair]ScoredPair{}
	res, err := Run(ds, Options{Observe: func(c []ScoredPair) {
		mu.Lock()
		for _, p := range c {
			scored[orderedPair(p.I, p.J)] = p
		}
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	bd := newBreakdown(tbl, ds.IDs)
	fmt.Print(bd.report(res, scored))
}

// bdRecord is one record's fields as an oracle compares them.
type bdRecord struct {
	entity                 string
	given, surname         string
	full                   string
	y, m, d, prec          int // prec 0: no date
	place, postcode        string
	gender, occupation     string
	titled, comma, initial bool
	middles                []string
}

type breakdown struct {
	rows   [][]string
	recs   []bdRecord
	byName map[string][]int32 // given+surname -> records
}

func newBreakdown(tbl *Table, ids []string) *breakdown {
	col := map[string]int{}
	for i, h := range tbl.Header {
		col[h] = i
	}
	// Rows are in dataset order (one table, no drop column).
	bd := &breakdown{rows: tbl.Rows, recs: make([]bdRecord, len(tbl.Rows)), byName: map[string][]int32{}}
	for i, row := range tbl.Rows {
		get := func(c string) string { return strings.TrimSpace(strings.ToLower(row[col[c]])) }
		r := bdRecord{entity: row[col["cluster"]], given: get("first_name"), surname: get("surname"), full: get("full_name")}
		if fs := strings.Fields(get("first_and_surname")); len(fs) > 0 {
			if r.given == "" {
				r.given = fs[0]
			}
			if r.surname == "" {
				r.surname = fs[len(fs)-1]
			}
		}
		if y, m, d, prec, ok := ParsePartialDate(get("dob")); ok {
			r.y, r.m, r.d, r.prec = y, m, d, prec
			if m == 1 && d == 1 {
				r.prec = PrecYear // the generator writes a year alone as 1 January too
			}
		}
		// Middle names: the full name's words that are not the given name,
		// the surname or a title.
		for _, w := range nameOnly(personWords(r.full)) {
			if w != r.given && w != r.surname && len([]rune(w)) > 1 {
				r.middles = append(r.middles, w)
			}
		}
		slices.Sort(r.middles)
		r.place, _, _ = strings.Cut(get("birth_place"), ",")
		r.postcode = strings.ReplaceAll(get("postcode"), " ", "")
		r.gender, r.occupation = get("gender"), get("occupation")
		r.comma = strings.Contains(r.full, ",")
		r.initial = len([]rune(r.given)) == 1
		for _, w := range strings.Fields(r.full) {
			if nameTitles[w] || strings.Contains(r.full, " of ") {
				r.titled = true
			}
		}
		bd.recs[i] = r
		if r.given != "" && r.surname != "" && !r.initial {
			k := r.given + " " + r.surname
			bd.byName[k] = append(bd.byName[k], int32(i))
		}
		_ = ids
	}
	return bd
}

// agree returns the non-name fields both records have and that agree
// (dates at the coarser precision), and whether none of the shared ones
// disagree.
func (bd *breakdown) agree(i, j int32) (agree []string, compatible bool) {
	a, b := &bd.recs[i], &bd.recs[j]
	compatible = true
	field := func(name, x, y string) {
		if x == "" || y == "" {
			return
		}
		if x == y {
			agree = append(agree, name)
		} else {
			compatible = false
		}
	}
	if a.prec > 0 && b.prec > 0 {
		p := min(a.prec, b.prec)
		if a.y == b.y && (p < 2 || a.m == b.m) && (p < 3 || a.d == b.d) {
			agree = append(agree, "dob")
		} else {
			compatible = false
		}
	}
	if len(a.middles) > 0 && len(b.middles) > 0 {
		switch {
		case slices.Equal(a.middles, b.middles):
			agree = append(agree, "middle")
		case !subset(a.middles, b.middles) && !subset(b.middles, a.middles):
			compatible = false
		}
	}
	field("place", a.place, b.place)
	field("postcode", a.postcode, b.postcode)
	field("gender", a.gender, b.gender)
	field("occupation", a.occupation, b.occupation)
	return agree, compatible
}

func (bd *breakdown) sameName(i, j int32) bool {
	a, b := &bd.recs[i], &bd.recs[j]
	return a.given != "" && a.given == b.given && a.surname != "" && a.surname == b.surname
}

// inseparable says whether true pair (i, j) has the same exact name and
// a record k of another person, of that name, compatible with i or with j on
// every field they share and agreeing on at least every field the
// pair agrees on: an oracle reading only the fields cannot prefer j to k.
func (bd *breakdown) inseparable(i, j int32) bool {
	if !bd.sameName(i, j) {
		return false
	}
	ag, _ := bd.agree(i, j)
	for _, x := range [2]int32{i, j} {
		for _, k := range bd.byName[bd.recs[x].given+" "+bd.recs[x].surname] {
			if bd.recs[k].entity == bd.recs[x].entity {
				continue
			}
			agk, ok := bd.agree(x, k)
			if ok && subset(ag, agk) {
				return true
			}
		}
	}
	return false
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func orderedPair(i, j int32) Pair {
	if i > j {
		i, j = j, i
	}
	return Pair{I: i, J: j}
}

type counter struct {
	keys []string
	n    map[string]int
}

func (c *counter) add(k string) {
	if c.n == nil {
		c.n = map[string]int{}
	}
	if _, ok := c.n[k]; !ok {
		c.keys = append(c.keys, k)
	}
	c.n[k]++
}

func (c *counter) format(b *strings.Builder, total int) {
	slices.SortFunc(c.keys, func(x, y string) int { return c.n[y] - c.n[x] })
	for _, k := range c.keys {
		fmt.Fprintf(b, "  %-58s %6d  %5.1f%%\n", k, c.n[k], 100*float64(c.n[k])/float64(max(total, 1)))
	}
}

func (bd *breakdown) report(res *Result, scored map[Pair]ScoredPair) string {
	var b strings.Builder
	members := map[string][]int32{}
	for i, r := range bd.recs {
		members[r.entity] = append(members[r.entity], int32(i))
	}
	clusters := map[int32][]int32{}
	for i, l := range res.Labels {
		clusters[l] = append(clusters[l], int32(i))
	}
	common := func(i int32) bool {
		r := &bd.recs[i]
		return len(bd.byName[r.given+" "+r.surname]) >= 20
	}

	// Ceiling: true pairs an oracle over the fields cannot tell from a
	// namesake.
	truePairs, insep := 0, 0
	for _, m := range members {
		for x := range m {
			for y := x + 1; y < len(m); y++ {
				truePairs++
				if bd.inseparable(m[x], m[y]) {
					insep++
				}
			}
		}
	}
	// Different people that no field tells apart (same name, every shared
	// field compatible) and that blocking compares.
	indist := 0
	for p := range scored {
		if bd.recs[p.I].entity != bd.recs[p.J].entity && bd.sameName(p.I, p.J) {
			if _, ok := bd.agree(p.I, p.J); ok {
				indist++
			}
		}
	}
	fmt.Fprintf(&b, "true pairs %d; inseparable from a namesake by an oracle over the fields: %d (%.1f%%): recall ceiling %.4f\n",
		truePairs, insep, 100*float64(insep)/float64(truePairs), 1-float64(insep)/float64(truePairs))
	fmt.Fprintf(&b, "compared pairs of different people with one name and no disagreeing field: %d\n", indist)

	for _, x := range bd.extras() {
		fmt.Fprintf(&b, "%-16s", x.name)
		fmt.Fprint(&b, bd.bayes(res, scored, truePairs, common, x.f))
	}

	var fn, fp counter
	nfn, nfp := 0, 0
	for _, m := range members {
		for x := range m {
			for y := x + 1; y < len(m); y++ {
				i, j := m[x], m[y]
				if res.Labels[i] == res.Labels[j] {
					continue
				}
				nfn++
				c := bd.classifyFN(res, scored, i, j, common)
				fn.add(c)
				if showClass(c) && fn.n[c] <= 12 {
					fmt.Fprintf(&b, "%s\n  %q\n  %q\n", c, tblRow(bd, i), tblRow(bd, j))
				}
			}
		}
	}
	for _, c := range clusters {
		for x := range c {
			for y := x + 1; y < len(c); y++ {
				i, j := c[x], c[y]
				if bd.recs[i].entity == bd.recs[j].entity {
					continue
				}
				nfp++
				c := bd.classifyFP(scored, i, j, common)
				fp.add(c)
				if showClass(c) && fp.n[c] <= 12 {
					fmt.Fprintf(&b, "%s\n  %q\n  %q\n", c, tblRow(bd, i), tblRow(bd, j))
				}
			}
		}
	}
	found := 0
	for p := range scored {
		if bd.recs[p.I].entity == bd.recs[p.J].entity {
			found++
		}
	}
	tp := truePairs - nfn
	fmt.Fprintf(&b, "blocking recall %.4f; candidates %d; cluster precision %.4f recall %.4f F1 %.4f\n",
		float64(found)/float64(truePairs), len(scored), float64(tp)/float64(tp+nfp), float64(tp)/float64(truePairs),
		2*float64(tp)/float64(2*tp+nfp+nfn))
	fmt.Fprintf(&b, "false negatives (cluster pairs) %d:\n", nfn)
	fn.format(&b, nfn)
	fmt.Fprintf(&b, "false positives (cluster pairs) %d:\n", nfp)
	fp.format(&b, nfp)
	return b.String()
}

func (bd *breakdown) classifyFP(scored map[Pair]ScoredPair, i, j int32, common func(int32) bool) string {
	p, ok := scored[orderedPair(i, j)]
	how := "direct"
	if !ok || !p.Accepted(0.95) {
		how = "chained"
	}
	a, b := &bd.recs[i], &bd.recs[j]
	ag, compat := bd.agree(i, j)
	switch {
	case !bd.sameName(i, j):
		return how + ": other names"
	case compat && len(ag) == 0:
		return how + ": one name, no other field shared"
	case compat:
		return how + ": one name, every shared field agrees (oracle cannot split)"
	case a.prec == 0 || b.prec == 0 || a.prec == 1 || b.prec == 1:
		return how + ": namesake/father-son, date missing or year only"
	case a.y != b.y:
		return how + ": namesake/father-son, dates of other years"
	default:
		return how + ": namesake, dates of one year"
	}
}

func (bd *breakdown) classifyFN(res *Result, scored map[Pair]ScoredPair, i, j int32, common func(int32) bool) string {
	a, b := &bd.recs[i], &bd.recs[j]
	p, ok := scored[orderedPair(i, j)]
	if !ok {
		switch {
		case (a.prec == 0 || b.prec == 0) && (common(i) || common(j)):
			return "not compared: a date missing, common name"
		case a.prec == 0 || b.prec == 0:
			return "not compared: a date missing"
		case common(i) || common(j):
			return "not compared: common name"
		default:
			return "not compared: other"
		}
	}
	_ = p
	if bd.inseparable(i, j) {
		return "compared: inseparable from a namesake (oracle)"
	}
	e := res.Scorer.Explain(int(i), int(j))
	if e.Held != "" && p.Prob >= 0.95 {
		return "compared: held by guard (" + strings.Fields(e.Held)[0] + ")"
	}
	ag, _ := bd.agree(i, j)
	if len(ag) == 0 {
		if common(i) || common(j) {
			return "compared: common name, no other field shared"
		}
		return "compared: name only, no other field shared"
	}
	// The field that cost the most.
	worst, ww := "", 0.0
	for _, f := range e.Fields {
		if w := f.Weight + f.TF; w < ww {
			worst, ww = f.Field, w
		}
	}
	switch worst {
	case "":
		if p.Accepted(0.95) {
			return "compared: accepted, not joined (cluster guard)"
		}
		return "compared: weak evidence (nothing against)"
	case "first_name", "surname", "full_name":
		switch {
		case a.comma != b.comma || a.given == b.surname || a.surname == b.given:
			return "comparator: name order swap"
		case a.initial || b.initial:
			return "comparator: initial"
		case a.titled != b.titled:
			return "comparator: title/peerage"
		case worst == "full_name":
			return "comparator: full name (middle names)"
		case a.given != b.given && a.given != "" && b.given != "" && a.given[0] != b.given[0]:
			return "comparator: nickname"
		default:
			return "comparator: name typo"
		}
	case "dob":
		if a.prec != b.prec {
			return "comparator: date precision"
		}
		return "data: date off (days, month or year)"
	case "birth_place":
		return "comparator: place variant"
	case "postcode":
		return "comparator: postcode variant"
	default:
		return "data: " + worst + " differs"
	}
}

func tblRow(bd *breakdown, i int32) string { return strings.Join(bd.rows[i], ",") }

// showClass says whether IDGRAPH_BREAKDOWN_SHOW (classes separated by
// "|") asks for examples of class c.
func showClass(c string) bool {
	for _, s := range strings.Split(os.Getenv("IDGRAPH_BREAKDOWN_SHOW"), "|") {
		if s != "" && strings.Contains(c, s) {
			return true
		}
	}
	return false
}

// bayes is the best any pair classifier can do with the engine's own
// comparisons: compared pairs grouped by their comparison vector (every
// field's level, and whether the name is common), each group accepted
// when most of its pairs are true. It needs no independence between
// fields, so it bounds what better training of these comparisons could
// reach.
func (bd *breakdown) bayes(res *Result, scored map[Pair]ScoredPair, truePairs int, common func(int32) bool, extra func(i, j int32) string) string {
	type tally struct{ yes, no int }
	groups := map[string]*tally{}
	var key strings.Builder
	for p := range scored {
		e := res.Scorer.Explain(int(p.I), int(p.J))
		key.Reset()
		for _, f := range e.Fields {
			key.WriteString(f.Level)
			key.WriteByte(',')
		}
		if common(p.I) || common(p.J) {
			key.WriteString("common")
		}
		key.WriteString(extra(p.I, p.J))
		g := groups[key.String()]
		if g == nil {
			g = &tally{}
			groups[key.String()] = g
		}
		if bd.recs[p.I].entity == bd.recs[p.J].entity {
			g.yes++
		} else {
			g.no++
		}
	}
	tp, fp, found := 0, 0, 0
	for _, g := range groups {
		found += g.yes
		if g.yes > g.no {
			tp += g.yes
			fp += g.no
		}
	}
	p, r := float64(tp)/float64(tp+fp), float64(tp)/float64(truePairs)
	rc := float64(tp) / float64(found)
	return fmt.Sprintf("Bayes-optimal on the comparison vectors (%d vectors): pairwise precision %.4f recall %.4f F1 %.4f; recall of compared pairs %.4f (F1 %.4f with perfect blocking)\n",
		len(groups), p, r, 2*p*r/(p+r), rc, 2*p*rc/(p+rc))
}

type extra struct {
	name string
	f    func(i, j int32) string
}

// extras are facts the comparisons do not carry, each added alone to the
// comparison vector to see how much it would lift the Bayes bound.
func (bd *breakdown) extras() []extra {
	return []extra{
		{"(none)", func(i, j int32) string { return "" }},
		{"middle names", func(i, j int32) string {
			a, b := &bd.recs[i], &bd.recs[j]
			switch {
			case len(a.middles) == 0 || len(b.middles) == 0:
				return ""
			case slices.Equal(a.middles, b.middles):
				return "m="
			case subset(a.middles, b.middles) || subset(b.middles, a.middles):
				return "m<"
			}
			return "m!"
		}},
		{"date precision", func(i, j int32) string {
			return fmt.Sprint(bd.recs[i].prec, bd.recs[j].prec)
		}},
		{"name count", func(i, j int32) string {
			r := &bd.recs[i]
			n := len(bd.byName[r.given+" "+r.surname])
			return fmt.Sprint(bitsLen(n))
		}},
		// A control: a fact that says nothing, in four values. What it
		// adds is how much a larger vector overfits the bound by itself.
		{"control (noise)", func(i, j int32) string { return fmt.Sprint((i*31 + j*17) % 4) }},
		{"full postcode", func(i, j int32) string {
			a, b := &bd.recs[i], &bd.recs[j]
			return fmt.Sprint(a.postcode != "" && a.postcode == b.postcode)
		}},
	}
}

func bitsLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}
