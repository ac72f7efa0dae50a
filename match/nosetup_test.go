package match_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/match"
	"github.com/idgraph/idgraph/server"
)

// serveNoSetup starts a server as `idgraph serve` does with no flags: the
// built-in Segment model, the trainer, default limits. Each call is a
// fresh process's view of the store (a restart).
func serveNoSetup(t *testing.T, s graph.Store) (url string, tr *match.Trainer) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := graph.NewStitcher(s, graph.DefaultConfig())
	st.MatchConfig = graph.DefaultMatchConfig()
	tr = &match.Trainer{Store: s, Stitcher: st, Log: log, Hold: true, Base: match.SegmentModel(), Ignore: []string{server.CollectSource}}
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Store: s, Stitcher: st, Normalizer: graph.NewNormalizer("US"), Trainer: tr,
		Keys: server.Keys{Write: []string{"wk"}, Read: []string{"rk"}, Steward: []string{"sk"}}, Log: log})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		if n := srv.Panics(); n > 0 {
			t.Errorf("%d requests panicked", n)
		}
	})
	return hs.URL, tr
}

// exportScores exports the profiles over HTTP and scores the record pairs
// that share a profile against FEBRL's truth.
func exportScores(t *testing.T, url string) (precision, recall float64) {
	t.Helper()
	var buf bytes.Buffer
	if err := client.New(url, "rk").ExportProfiles(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	var profiles [][]graph.Key
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var p server.ExportedProfile
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, p.Identifiers)
	}
	return clusterPairScores(t, profiles)
}

// TestNoSetup imports FEBRL1 into a server started with no set-up (no
// train, no --model, no --limits), runs `idgraph match` and exports the
// profiles, on every backend: the server detects the columns, trains a
// model, keeps it across a restart, and trains anew on --train.
func TestNoSetup(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := b.Open(t)
			url, _ := serveNoSetup(t, s)
			f, err := os.Open("../testdata/febrl/dataset1.csv")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := client.New(url, "wk").Import(ctx, f, client.ImportOptions{Source: "crm", Identifiers: []string{"rec_id"}}); err != nil {
				t.Fatal(err)
			}
			sum, err := client.New(url, "sk").Match(ctx, client.MatchOptions{PageSize: 200})
			if err != nil {
				t.Fatal(err)
			}
			d := sum.Matching
			if d == nil || !d.Trained || d.Origin != "trained" || d.Records != 1000 || len(d.Sources) != 1 || d.Sources[0].Source != "crm" {
				t.Fatalf("decision = %+v, want a model trained on crm's 1,000 records", d)
			}
			fields := map[string]string{}
			for _, c := range d.Sources[0].Columns {
				fields[c.Column] = c.Field
			}
			for col, want := range map[string]string{"given_name": "firstName", "surname": "lastName", "date_of_birth": "birthday", "postcode": "address.postalCode", "soc_sec_id": "soc_sec_id"} {
				if fields[col] != want {
					t.Errorf("column %s compared as %q, want %q", col, fields[col], want)
				}
			}
			if !slices.Contains(d.RecordIDTypes, "rec_id") || d.RecordIDLimit != graph.DefaultRecordIDLimit {
				t.Errorf("record-ID types %v limit %d, want rec_id at %d", d.RecordIDTypes, d.RecordIDLimit, graph.DefaultRecordIDLimit)
			}
			// GraphQL shows the same decision to a read key.
			var gql struct {
				Data struct {
					Matching struct {
						Model, Origin string
						Records       int
						Blocking      []string
						RecordIDTypes []string `json:"recordIdTypes"`
						Sources       []struct {
							Source  string
							Columns []struct {
								Column, Kind string
								Field        *string
							}
						}
					}
				}
			}
			q := `{matching{model origin records blocking recordIdTypes sources{source columns{column kind field}}}}`
			if err := client.New(url, "rk").PostBearer(ctx, "/graphql", map[string]string{"query": q}, &gql); err != nil {
				t.Fatal(err)
			}
			if m := gql.Data.Matching; m.Model != d.Model || m.Origin != "trained" || m.Records != 1000 || len(m.Blocking) == 0 ||
				len(m.Sources) != 1 || len(m.Sources[0].Columns) != len(d.Sources[0].Columns) || !slices.Contains(m.RecordIDTypes, "rec_id") {
				t.Errorf("GraphQL matching = %+v, want the decision %s", m, d.Model)
			}
			p, r := exportScores(t, url)
			t.Logf("no set-up, FEBRL1 through import + match + export: precision %.4f recall %.4f, model %s", p, r, d.Model)
			if p < 0.999 || r < 0.99 {
				t.Errorf("precision %.4f recall %.4f, want ≥ 0.999 and ≥ 0.99", p, r)
			}

			// A restart keeps the model: a second run trains nothing.
			url2, tr := serveNoSetup(t, s)
			if got := tr.Decision(); got.Model != d.Model || got.Origin != "trained" || !slices.Contains(got.RecordIDTypes, "rec_id") {
				t.Errorf("after a restart the server uses %s (%s, record-ID types %v), want %s", got.Model, got.Origin, got.RecordIDTypes, d.Model)
			}
			again, err := client.New(url2, "sk").Match(ctx, client.MatchOptions{PageSize: 500})
			if err != nil {
				t.Fatal(err)
			}
			if again.Matching.Trained || again.Matching.Model != d.Model {
				t.Errorf("second run: trained %v model %s, want the stored %s", again.Matching.Trained, again.Matching.Model, d.Model)
			}
			// The same records give the same version; a record more gives
			// a new one, and --train takes it.
			extra := "rec_id,given_name,surname,date_of_birth\nextra-1,ada,lovelace,18151210\n"
			if _, err := client.New(url2, "wk").Import(ctx, strings.NewReader(extra), client.ImportOptions{Source: "crm", Identifiers: []string{"rec_id"}}); err != nil {
				t.Fatal(err)
			}
			forced, err := client.New(url2, "sk").Match(ctx, client.MatchOptions{PageSize: 500, Train: true})
			if err != nil {
				t.Fatal(err)
			}
			if !forced.Matching.Trained || forced.Matching.Model == d.Model || forced.Matching.Records != 1001 {
				t.Errorf("--train: trained %v model %s on %d records, want a new model on 1,001", forced.Matching.Trained, forced.Matching.Model, forced.Matching.Records)
			}
			if p2, r2 := exportScores(t, url2); p2 < 0.999 || r2 < 0.99 {
				t.Errorf("after --train: precision %.4f recall %.4f", p2, r2)
			}
		})
	}
}

// TestNoSetupUnusable: a source whose columns cannot tell people apart
// (an ID and free text) fails with a clear message, not a 500.
func TestNoSetupUnusable(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			url, _ := serveNoSetup(t, b.Open(t))
			csv := "ticket_id,account_number,notes\n"
			for i := range 50 {
				csv += "t" + strconv.Itoa(i) + "," + strconv.Itoa(7_000_000+i*37) + ",customer called about the invoice number " + strconv.Itoa(i) + " again\n"
			}
			if _, err := client.New(url, "wk").Import(ctx, strings.NewReader(csv), client.ImportOptions{Source: "tickets", Identifiers: []string{"ticket_id"}}); err != nil {
				t.Fatal(err)
			}
			_, err := client.New(url, "sk").Match(ctx, client.MatchOptions{})
			var se *client.StatusError
			if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(err.Error(), `source "tickets"`) || !strings.Contains(err.Error(), "no column that tells people apart") {
				t.Fatalf("match on unusable columns: %v, want 400 naming the source and why", err)
			}
		})
	}
}

// TestNoSetupMessyAsGoodAsBulk: messy person records (titles, redundant
// name columns, approximate dates, namesakes) imported with no set-up step
// and linked by `idgraph match` end in profiles as good as `idgraph eval`'s
// clusters of the same file, on every backend. Incremental matching alone
// chains records whole-set clustering keeps apart (cluster F1 0.64 against
// 0.83 at 20,000 records); the bulk pass gives the graph eval's clusters.
func TestNoSetupMessyAsGoodAsBulk(t *testing.T) {
	tab, _ := match.Synthesize(match.SynthOptions{Records: 3000, Seed: 7, Shape: "messy"})
	// The truth column goes, and the record ID is named as FEBRL's.
	idCol, truthCol := slices.Index(tab.Header, "unique_id"), slices.Index(tab.Header, "cluster")
	if idCol < 0 || truthCol < 0 {
		t.Fatalf("messy header %v has no unique_id or cluster", tab.Header)
	}
	strip := func(row []string) []string { return slices.Delete(slices.Clone(row), truthCol, truthCol+1) }
	in := &match.Table{Header: strip(tab.Header)}
	in.Header[slices.Index(in.Header, "unique_id")] = "rec_id"
	for _, r := range tab.Rows {
		in.Rows = append(in.Rows, strip(r))
	}
	var csv bytes.Buffer
	if err := in.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}

	// Bulk, as `idgraph eval` runs the file.
	cfg, _ := match.Detect(in.Header, in.Rows, "rec_id")
	ds, err := match.NewDataset(cfg, in.Records("rec_id"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := match.Run(ds, match.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clusters := map[int32][]graph.Key{}
	for i, l := range res.Labels {
		clusters[l] = append(clusters[l], graph.Key{Type: "rec_id", Value: ds.IDs[i]})
	}
	bp, br := clusterPairScores(t, slices.Collect(maps.Values(clusters)))
	bulkF1 := 2 * bp * br / (bp + br)

	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			url, _ := serveNoSetup(t, b.Open(t))
			if _, err := client.New(url, "wk").Import(ctx, bytes.NewReader(csv.Bytes()), client.ImportOptions{Source: "crm", Identifiers: []string{"rec_id"}}); err != nil {
				t.Fatal(err)
			}
			sum, err := client.New(url, "sk").Match(ctx, client.MatchOptions{PageSize: 200})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Bulk == nil || sum.Bulk.Records != len(in.Rows) || sum.Bulk.Joins == 0 {
				t.Fatalf("bulk report %+v, want every one of the %d records linked in one pass", sum.Bulk, len(in.Rows))
			}
			p, r := exportScores(t, url)
			f1 := 2 * p * r / (p + r)
			t.Logf("messy %d records: bulk P/R/F1 %.4f/%.4f/%.4f, through the graph %.4f/%.4f/%.4f (%d candidates, %d joined, %d held, %d merges)",
				len(in.Rows), bp, br, bulkF1, p, r, f1, sum.Bulk.Candidates, sum.Bulk.Joins, sum.Bulk.Held, sum.Merges)
			if f1 < bulkF1-0.01 || p < bp-0.01 {
				t.Errorf("through the graph F1 %.4f precision %.4f, want within 0.01 of bulk's %.4f and %.4f", f1, p, bulkF1, bp)
			}
			// A second run finds the same clusters: nothing more to merge.
			again, err := client.New(url, "sk").Match(ctx, client.MatchOptions{PageSize: 200})
			if err != nil {
				t.Fatal(err)
			}
			if again.Merges != 0 {
				t.Errorf("a second run merged %d more profiles, want 0", again.Merges)
			}
			// Records imported after the run are matched incrementally:
			// they find the profiles the bulk pass left (filed under the
			// model's blocking keys), so a copy of a record joins it.
			copies := &match.Table{Header: in.Header}
			idAt := slices.Index(in.Header, "rec_id")
			for i := 0; i < len(in.Rows); i += 30 {
				row := slices.Clone(in.Rows[i])
				row[idAt] += "-copy"
				copies.Rows = append(copies.Rows, row)
			}
			var buf bytes.Buffer
			if err := copies.WriteCSV(&buf); err != nil {
				t.Fatal(err)
			}
			if _, err := client.New(url, "wk").Import(ctx, &buf, client.ImportOptions{Source: "crm", Identifiers: []string{"rec_id"}}); err != nil {
				t.Fatal(err)
			}
			joined := 0
			for _, row := range copies.Rows {
				orig := strings.TrimSuffix(row[idAt], "-copy")
				if profileOf(t, url, graph.Key{Type: "rec_id", Value: row[idAt]}) == profileOf(t, url, graph.Key{Type: "rec_id", Value: orig}) {
					joined++
				}
			}
			if joined < len(copies.Rows)*9/10 {
				t.Errorf("%d of %d exact copies imported after the run joined their record's profile, want ≥ 90%% (an exact copy of a record with too few fields to match is not joined)", joined, len(copies.Rows))
			}
		})
	}
}

// profileOf looks up the ID of the profile holding the identifier.
func profileOf(t *testing.T, url string, k graph.Key) string {
	t.Helper()
	var out struct {
		Data struct {
			Lookup *struct{ ID string }
		}
	}
	q := `query($type: String!, $value: String!) { lookup(type: $type, value: $value) { id } }`
	if err := client.New(url, "rk").PostBearer(context.Background(), "/graphql", map[string]any{"query": q, "variables": map[string]string{"type": k.Type, "value": k.Value}}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Data.Lookup == nil {
		t.Fatalf("no profile holds %s", k)
	}
	return out.Data.Lookup.ID
}
