package match_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/match"
	"github.com/idgraph/idgraph/server"
)

// TestMatchingInTheGraph trains on FEBRL1, then ingests its records one
// batch at a time with the model inside stitching, on every backend: the
// profiles it ends with must be FEBRL1's people, as a bulk run finds them.
func TestMatchingInTheGraph(t *testing.T) {
	model := trainFEBRL1(t)
	f, err := os.Open("../testdata/febrl/dataset1.csv")
	if err != nil {
		t.Fatal(err)
	}
	table, err := match.ReadCSV(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	recs := table.Records("rec_id")
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			st := graph.NewStitcher(s, graph.DefaultConfig())
			st.Matcher, st.MatchConfig = match.NewGraphMatcher(model, true), graph.DefaultMatchConfig()
			for i := 0; i < len(recs); i += 250 {
				var batch []*graph.Observation
				for _, r := range recs[i:min(i+250, len(recs))] {
					traits := map[string]any{}
					for k, v := range r.Fields {
						if k != "rec_id" && v != "" {
							traits[k] = v
						}
					}
					batch = append(batch, &graph.Observation{MessageID: r.ID, Source: "febrl", Time: time.Now(),
						Identifiers: []graph.Key{{Type: "rec_id", Value: r.ID}}, Traits: traits, Event: graph.Event{Type: "record"}})
				}
				if _, err := st.Ingest(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
			}
			p, r := pairScores(t, s)
			if p < 0.999 || r < 0.99 {
				t.Errorf("in-graph cluster pairs: precision %.4f recall %.4f, want ≥ 0.999 and ≥ 0.99", p, r)
			}
			t.Logf("in-graph cluster pairs: precision %.4f recall %.4f", p, r)
		})
	}
}

var entityRE = regexp.MustCompile(`^rec-(\d+)-`)

// pairScores compares the pairs of records that share a profile with the
// pairs that share a FEBRL entity.
func pairScores(t *testing.T, s graph.Store) (precision, recall float64) {
	t.Helper()
	ctx := context.Background()
	var profiles [][]graph.Key
	after := ""
	for {
		ps, err := s.Profiles(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			break
		}
		lists, err := s.IdentifiersOf(ctx, ps)
		if err != nil {
			t.Fatal(err)
		}
		for _, ids := range lists {
			keys := make([]graph.Key, len(ids))
			for i, n := range ids {
				keys[i] = n.Key
			}
			profiles = append(profiles, keys)
		}
		after = ps[len(ps)-1].ID
	}
	return clusterPairScores(t, profiles)
}

// clusterPairScores scores profiles (each its identifiers) against
// FEBRL's truth: the pairs of rec_id records that share a profile against
// the pairs that share an entity.
func clusterPairScores(t *testing.T, profiles [][]graph.Key) (precision, recall float64) {
	t.Helper()
	byEntity := map[string]int{}
	tp, predicted := 0, 0
	for _, keys := range profiles {
		count := map[string]int{}
		n := 0
		for _, k := range keys {
			if m := entityRE.FindStringSubmatch(k.Value); k.Type == "rec_id" && m != nil {
				count[m[1]]++
				byEntity[m[1]]++
				n++
			}
		}
		predicted += n * (n - 1) / 2
		for _, c := range count {
			tp += c * (c - 1) / 2
		}
	}
	truth := 0
	for _, c := range byEntity {
		truth += c * (c - 1) / 2
	}
	if predicted == 0 || truth == 0 {
		t.Fatalf("no pairs: predicted %d, truth %d", predicted, truth)
	}
	return float64(tp) / float64(predicted), float64(tp) / float64(truth)
}

// TestBulkRematch imports FEBRL1 with matching off, then re-scores every
// profile through POST /v1/match (the `idgraph match` client), on every
// backend.
func TestBulkRematch(t *testing.T) {
	model := trainFEBRL1(t)
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			serve := func(m graph.Matcher) string {
				st := graph.NewStitcher(s, graph.DefaultConfig())
				st.Matcher, st.MatchConfig = m, graph.DefaultMatchConfig()
				srv := server.New(server.Config{Store: s, Stitcher: st, Normalizer: graph.NewNormalizer("US"),
					Keys: server.Keys{Write: []string{"wk"}, Read: []string{"rk"}, Steward: []string{"sk"}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
				hs := httptest.NewServer(srv.Handler())
				t.Cleanup(func() {
					hs.Close()
					srv.Close()
					if n := srv.Panics(); n > 0 {
						t.Errorf("%d requests panicked", n)
					}
				})
				return hs.URL
			}
			f, err := os.Open("../testdata/febrl/dataset1.csv")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx := context.Background()
			plain := client.New(serve(nil), "wk")
			if _, err := plain.Import(ctx, f, client.ImportOptions{Source: "febrl", Identifiers: []string{"rec_id"}}); err != nil {
				t.Fatal(err)
			}
			var se *client.StatusError
			if _, err := client.New(plain.Server, "sk").Match(ctx, client.MatchOptions{}); !errors.As(err, &se) || se.Code != http.StatusConflict {
				t.Errorf("match without a model: %v, want 409", err)
			}
			matching := client.New(serve(match.NewGraphMatcher(model, true)), "sk")
			// A dry run plans the merges and changes nothing.
			var plan strings.Builder
			dry, err := matching.Match(ctx, client.MatchOptions{PageSize: 100, DryRun: true, Plan: &plan})
			if err != nil {
				t.Fatal(err)
			}
			if planned := strings.Count(plan.String(), "merge\t"); dry.Merges < 490 || planned != dry.Merges {
				t.Errorf("dry run: %d merges, %d planned lines", dry.Merges, planned)
			}
			if n := len(storetest.Partition(t, s)); n != 1000 {
				t.Errorf("after a dry run there are %d profiles, want the 1,000 imported", n)
			}
			resume := t.TempDir() + "/cursor"
			sum, err := matching.Match(ctx, client.MatchOptions{PageSize: 100, ResumeFile: resume})
			if err != nil {
				t.Fatal(err)
			}
			// The dry run filed every profile in the blocking index, so early
			// pages already absorb profiles of later ones: fewer are left to list.
			if sum.Processed < 500 || sum.Merges < 490 {
				t.Errorf("summary = %+v, want 500 or more profiles re-scored and about 500 merges", sum)
			}
			if _, err := os.Stat(resume); !os.IsNotExist(err) {
				t.Errorf("the resume file is left after a finished run (%v)", err)
			}
			p, r := pairScores(t, s)
			if p < 0.999 || r < 0.99 {
				t.Errorf("after bulk matching: precision %.4f recall %.4f", p, r)
			}
		})
	}
}

func trainFEBRL1(t *testing.T) *match.Model {
	t.Helper()
	f, err := os.Open("../testdata/febrl/dataset1.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := match.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := match.Detect(table.Header, table.Rows, "rec_id")
	ds, err := match.NewDataset(cfg, table.Records("rec_id"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := match.Run(ds, match.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Model
}
