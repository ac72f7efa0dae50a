// Package matchtest holds what tests of matching through the graph share:
// FEBRL files, a model trained on them, records as an import sends them,
// and a rematch of every profile.
package matchtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/match"
)

// FEBRL reads testdata/febrl/<file> (dataset1.csv …).
func FEBRL(tb testing.TB, file string) *match.Table {
	tb.Helper()
	_, here, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(here), "../../testdata/febrl", file))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	t, err := match.ReadCSV(f)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// Train trains a model on the table, its columns detected (idgraph train).
func Train(tb testing.TB, table *match.Table) *match.Model {
	tb.Helper()
	cfg, _ := match.Detect(table.Header, table.Rows, "")
	ds, err := match.NewDataset(cfg, table.Records(cfg.IDColumn))
	if err != nil {
		tb.Fatal(err)
	}
	res, err := match.Run(ds, match.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return res.Model
}

// Observations turns records into what an import sends: the record ID as
// a rec_id identifier, the other non-empty columns as traits, one second
// apart.
func Observations(recs []match.Record) []*graph.Observation {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*graph.Observation, len(recs))
	for i, r := range recs {
		traits := map[string]any{}
		for k, v := range r.Fields {
			if k != "rec_id" && v != "" {
				traits[k] = v
			}
		}
		out[i] = &graph.Observation{MessageID: r.ID, Source: "crm", Time: at.Add(time.Duration(i) * time.Second),
			Identifiers: []graph.Key{{Type: "rec_id", Value: r.ID}}, Traits: traits, Event: graph.Event{Type: "record"}}
	}
	return out
}

// Ingest stitches the observations in batches of the given size.
func Ingest(tb testing.TB, st *graph.Stitcher, obs []*graph.Observation, batch int) {
	tb.Helper()
	for i := 0; i < len(obs); i += batch {
		if _, err := st.Ingest(context.Background(), obs[i:min(i+batch, len(obs))]); err != nil {
			tb.Fatal(err)
		}
	}
}

// RematchAll re-scores every live profile, 200 per call in ID order (what
// `idgraph match` does).
func RematchAll(tb testing.TB, st *graph.Stitcher, s graph.Store) {
	tb.Helper()
	ctx := context.Background()
	for after := ""; ; {
		ps, err := s.Profiles(ctx, after, 200)
		if err != nil {
			tb.Fatal(err)
		}
		if len(ps) == 0 {
			return
		}
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		if _, err := st.Rematch(ctx, ids); err != nil {
			tb.Fatal(err)
		}
		after = ids[len(ids)-1]
	}
}
