package match

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/internal/names"
)

// The messy shape carries each kind of messiness at a sane rate, keeps
// its truth, and is deterministic.
func TestSynthesizeMessyShape(t *testing.T) {
	const n = 6000
	tab, st := Synthesize(SynthOptions{Records: n, Seed: 3, Shape: "messy"})
	if strings.Join(tab.Header, ",") != strings.Join(MessyHeader, ",") || len(tab.Rows) != n {
		t.Fatalf("header %v, %d rows", tab.Header, len(tab.Rows))
	}
	idRe := regexp.MustCompile(`^(rec-\d+)-(org|dup-\d+)$`)
	group := map[string]int{}
	var orgs, dups [][]string
	for _, row := range tab.Rows {
		m := idRe.FindStringSubmatch(row[mID])
		if m == nil || row[mCluster] != m[1] {
			t.Fatalf("id %q, cluster %q", row[mID], row[mCluster])
		}
		group[m[1]]++
		if m[2] == "org" {
			orgs = append(orgs, row)
		} else {
			dups = append(dups, row)
		}
	}
	pairs := 0
	for _, k := range group {
		pairs += k * (k - 1) / 2
	}
	if pairs != st.TruePairs || len(orgs) != st.People {
		t.Fatalf("%d true pairs, %d people; stats %+v", pairs, len(orgs), st)
	}

	// share counts rows where cond holds among rows where have holds.
	share := func(rows [][]string, have, cond func(r []string) bool) float64 {
		h, c := 0, 0
		for _, r := range rows {
			if have(r) {
				h++
				if cond(r) {
					c++
				}
			}
		}
		if h == 0 {
			return 0
		}
		return float64(c) / float64(h)
	}
	present := func(cols ...int) func(r []string) bool {
		return func(r []string) bool {
			for _, c := range cols {
				if r[c] == "" {
					return false
				}
			}
			return true
		}
	}
	all := tab.Rows
	words := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, w := range strings.Fields(names.Normalize(s)) {
			m[w] = true
		}
		return m
	}
	titled := regexp.MustCompile(`^(sir|lord|lady|dame|rev|dr|captain|colonel|general|admiral|mrs|miss) `)
	peer := regexp.MustCompile(`, \d+(st|nd|rd|th) (baron|earl|viscount|baronet|duke|marquess|baroness|countess|duchess) `)
	checks := []struct {
		what   string
		got    float64
		lo, hi float64
	}{
		{"full names with a title", share(all, present(mFull), func(r []string) bool { return titled.MatchString(r[mFull]) }), 0.03, 0.2},
		{"full names with a peerage", share(all, present(mFull), func(r []string) bool { return peer.MatchString(r[mFull]) }), 0.01, 0.1},
		{"duplicates' full names surname first", share(dups, present(mFull, mSur, mFirst), func(r []string) bool {
			return r[mSur] != r[mFirst] && strings.HasPrefix(r[mFull], r[mSur]+" ") || strings.HasPrefix(r[mFull], r[mSur]+", ")
		}), 0.04, 0.2},
		{"duplicates' given names as an initial", share(dups, present(mFirst), func(r []string) bool { return len(r[mFirst]) == 1 }), 0.03, 0.15},
		{"full names with more than two words", share(all, present(mFull), func(r []string) bool { return len(strings.Fields(r[mFull])) > 2 }), 0.3, 0.8},
		// Redundant columns: first_and_surname repeats first_name and
		// surname; the full name contains them.
		{"first_and_surname = first_name + surname", share(all, present(mFirstSur, mFirst, mSur), func(r []string) bool {
			return r[mFirstSur] == r[mFirst]+" "+r[mSur]
		}), 0.9, 1},
		{"full name contains first name and surname", share(all, present(mFull, mFirst, mSur), func(r []string) bool {
			w := words(r[mFull])
			return w[names.Normalize(r[mSur])] && w[strings.Fields(names.Normalize(r[mFirst]))[0]]
		}), 0.85, 1},
		{"year-only dates", share(all, present(mDOB), func(r []string) bool { return len(r[mDOB]) == 4 || strings.HasSuffix(r[mDOB], "-01-01") }), 0.06, 0.25},
		{"year-month dates", share(all, present(mDOB), func(r []string) bool { return len(r[mDOB]) == 7 }), 0.01, 0.1},
		{"places with a county or country", share(dups, present(mPlace), func(r []string) bool { return strings.Contains(r[mPlace], ", ") }), 0.05, 0.2},
		{"postcodes written another way", share(dups, present(mPostcode), func(r []string) bool { return !strings.Contains(r[mPostcode], " ") }), 0.02, 0.12},
		{"missing given names (duplicates)", share(dups, func([]string) bool { return true }, func(r []string) bool { return r[mFirst] == "" }), 0.15, 0.45},
		{"missing dates (duplicates)", share(dups, func([]string) bool { return true }, func(r []string) bool { return r[mDOB] == "" }), 0.15, 0.45},
		{"missing occupations", share(all, func([]string) bool { return true }, func(r []string) bool { return r[mOccupation] == "" }), 0.2, 0.6},
	}
	for _, c := range checks {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("%s: %.3f, want %.2f–%.2f", c.what, c.got, c.lo, c.hi)
		}
	}

	// Dates of one person disagree a little: off by a bit or degraded.
	date := map[string]string{}
	for _, r := range orgs {
		date[r[mCluster]] = r[mDOB]
	}
	off := share(dups, func(r []string) bool { return len(r[mDOB]) == 10 && len(date[r[mCluster]]) == 10 },
		func(r []string) bool { return r[mDOB] != date[r[mCluster]] && r[mDOB][:4] == date[r[mCluster]][:4] })
	if off < 0.03 || off > 0.2 {
		t.Errorf("same-year dates off by days or a month: %.3f", off)
	}

	// Hard negatives: namesakes share a name, a birth year and a town;
	// common names are common.
	if float64(st.Namesakes) < 0.05*float64(st.People) || st.CommonName < 50 {
		t.Errorf("namesakes %d, common names %d of %d people", st.Namesakes, st.CommonName, st.People)
	}
	who := map[string]map[string]bool{}
	names := map[string]int{}
	for _, r := range orgs {
		if r[mFirst] != "" && r[mSur] != "" {
			names[r[mFirst]+" "+r[mSur]]++
		}
		if r[mFirst] == "" || r[mSur] == "" || len(r[mDOB]) < 4 || r[mPlace] == "" {
			continue
		}
		k := strings.Join([]string{r[mFirst], r[mSur], r[mDOB][:4], r[mPlace]}, "|")
		if who[k] == nil {
			who[k] = map[string]bool{}
		}
		who[k][r[mCluster]] = true
	}
	shared := 0
	for _, ps := range who {
		if len(ps) > 1 {
			shared++
		}
	}
	top := 0
	for _, c := range names {
		top = max(top, c)
	}
	if shared < 30 || top < 20 {
		t.Errorf("%d name+year+town groups with several people, commonest name %d people", shared, top)
	}

	// Deterministic for a seed; another seed differs.
	var a, b bytes.Buffer
	if err := tab.WriteCSV(&a); err != nil {
		t.Fatal(err)
	}
	again, _ := Synthesize(SynthOptions{Records: n, Seed: 3, Shape: "messy"})
	if err := again.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed gave different data")
	}
	other, _ := Synthesize(SynthOptions{Records: n, Seed: 4, Shape: "messy"})
	if strings.Join(other.Rows[0], ",") == strings.Join(tab.Rows[0], ",") {
		t.Fatal("another seed gave the same data")
	}
}
