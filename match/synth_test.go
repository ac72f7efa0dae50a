package match

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestSynthesizeShapeAndEngine(t *testing.T) {
	tab, st := Synthesize(SynthOptions{Records: 2000, Seed: 7})
	if strings.Join(tab.Header, ",") != strings.Join(SynthHeader, ",") || len(SynthHeader) != 12 {
		t.Fatalf("header %v", tab.Header)
	}
	if len(tab.Rows) != 2000 || st.Records != 2000 || st.People != 1000 || st.Duplicates != 1000 {
		t.Fatalf("rows %d, stats %+v", len(tab.Rows), st)
	}

	// Truth groups from the IDs, as idgraph eval reads them.
	idRe := regexp.MustCompile(`^rec-(\d+)-(org|dup-\d+)$`)
	group := map[string]int{}
	orgs := map[string]bool{}
	ids := map[string]bool{}
	for _, row := range tab.Rows {
		if len(row) != 12 {
			t.Fatalf("row has %d fields", len(row))
		}
		m := idRe.FindStringSubmatch(row[0])
		if m == nil || ids[row[0]] {
			t.Fatalf("bad or repeated id %q", row[0])
		}
		ids[row[0]] = true
		group[m[1]]++
		if m[2] == "org" {
			orgs[m[1]] = true
		}
	}
	pairs := 0
	for p, n := range group {
		if !orgs[p] {
			t.Fatalf("person %s has duplicates but no original", p)
		}
		pairs += n * (n - 1) / 2
	}
	if len(orgs) != 1000 || pairs != st.TruePairs {
		t.Fatalf("%d originals, %d true pairs, stats say %d", len(orgs), pairs, st.TruePairs)
	}
	if st.Households < 100 || st.CommonName < 10 {
		t.Fatalf("too few hard negatives: %+v", st)
	}
	// Hard negatives are really there: different people at one address
	// with one surname, and several people called john smith.
	home := map[string]map[string]bool{}
	johns := map[string]bool{}
	for _, row := range tab.Rows {
		p := idRe.FindStringSubmatch(row[0])[1]
		if strings.HasSuffix(row[0], "-org") && row[2] != "" && row[3] != "" && row[4] != "" && row[6] != "" {
			k := row[2] + "|" + row[3] + "|" + row[4] + "|" + row[6]
			if home[k] == nil {
				home[k] = map[string]bool{}
			}
			home[k][p] = true
		}
		if row[1] == "john" && row[2] == "smith" {
			johns[p] = true
		}
	}
	shared := 0
	for _, ps := range home {
		if len(ps) > 1 {
			shared++
		}
	}
	if shared < 50 || len(johns) < 2 {
		t.Fatalf("%d shared households, %d john smiths", shared, len(johns))
	}

	// Deterministic, and survives a CSV round trip.
	var a, b bytes.Buffer
	if err := tab.WriteCSV(&a); err != nil {
		t.Fatal(err)
	}
	tab2, _ := Synthesize(SynthOptions{Records: 2000, Seed: 7})
	if err := tab2.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed gave different data")
	}
	tab3, _ := Synthesize(SynthOptions{Records: 2000, Seed: 8})
	if strings.Join(tab3.Rows[0], ",") == strings.Join(tab.Rows[0], ",") {
		t.Fatal("another seed gave the same data")
	}
	read, err := ReadCSV(&a)
	if err != nil || len(read.Rows) != 2000 {
		t.Fatalf("read back: %v", err)
	}

	// The engine, as idgraph eval runs it. Floors are conservative: the
	// noisy set is much harder than FEBRL (households, shared landlines).
	rep, err := Evaluate(read, nil, EvalOptions{TruthPattern: `rec-(\d+)-`})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("blocking recall %.4f, pairwise P %.4f R %.4f F1 %.4f, cluster F1 %.4f",
		rep.BlockingRecall, rep.Pairwise.Precision, rep.Pairwise.Recall, rep.Pairwise.F1, rep.Cluster.F1)
	if rep.TruePairs != st.TruePairs {
		t.Fatalf("eval found %d true pairs, generator made %d", rep.TruePairs, st.TruePairs)
	}
	if rep.BlockingRecall < 0.98 || rep.Pairwise.Recall < 0.85 || rep.Pairwise.F1 < 0.75 || rep.Cluster.F1 < 0.7 {
		t.Fatalf("engine below floor on synthetic data: %+v / %+v", rep.Pairwise, rep.Cluster)
	}
}
