package collect_test

import (
	"context"
	"encoding/json"
	"flag"
	"testing"
	"time"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/match"
)

// FuzzIngestReadBack feeds a batch body through the decoder, stitches every
// message it accepts into a real store (matching on, as `serve` runs) and
// reads everything back: profiles, identifiers, edges, timelines, the
// export's JSON. Nothing the decoder accepts may make a write or a read
// fail with an internal error, or panic. `go test -fuzz` runs it on the
// embedded store; a plain `go test` runs the seed corpus
// (testdata/fuzz/FuzzIngestReadBack) on every backend.
func FuzzIngestReadBack(f *testing.F) {
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	now := time.Now().UTC()
	model := match.SegmentModel()
	f.Fuzz(func(t *testing.T, body []byte) {
		var b collect.Batch
		if err := collect.Unmarshal(body, &b, ""); err != nil {
			wantClientError(t, "batch", err)
			return
		}
		d := &collect.Decoder{Normalizer: graph.NewNormalizer("US"), Source: "fuzz"}
		var obs []*graph.Observation
		for _, raw := range b.Batch[:min(len(b.Batch), 20)] {
			got, err := d.DecodeMessage("", raw, now, b.SentAt, b.Context)
			if err != nil {
				wantClientError(t, "message", err)
				continue
			}
			obs = append(obs, got.Observation)
		}
		all := backends.All()
		if fuzzing {
			all = all[:1] // the embedded store: fast enough to fuzz
		}
		for _, be := range all {
			s := be.Open(t)
			st := graph.NewStitcher(s, graph.DefaultConfig())
			st.Matcher, st.MatchConfig = match.NewGraphMatcher(model, true), graph.DefaultMatchConfig()
			for _, o := range obs {
				// One call each, so later messages read what earlier ones stored.
				if _, err := st.Ingest(context.Background(), []*graph.Observation{o}); err != nil {
					wantClientError(t, be.Name+": ingest", err)
				}
			}
			readBack(t, s)
			storetest.CheckInvariants(t, s)
		}
	})
}

// wantClientError fails on an error that is not the caller's fault.
func wantClientError(t *testing.T, what string, err error) {
	t.Helper()
	if k := graph.ErrorKind(err); k != graph.KindInvalid && k != graph.KindTooLarge {
		t.Fatalf("%s: %v (%s), want a refusal naming the input", what, err, k)
	}
}

// readBack reads every live profile as the API and the export do.
func readBack(t *testing.T, s graph.Store) {
	t.Helper()
	ctx := context.Background()
	for after := ""; ; {
		ps, err := s.Profiles(ctx, after, 100)
		if err != nil {
			t.Fatalf("profiles after %q: %v", after, err)
		}
		if len(ps) == 0 {
			return
		}
		for _, p := range ps {
			ids, err := graph.ProfileIdentifiers(ctx, s, p)
			if err != nil {
				t.Fatalf("identifiers of %s: %v", p.ID, err)
			}
			keys := make([]graph.Key, len(ids))
			for i, n := range ids {
				keys[i] = n.Key
			}
			evs, err := graph.Timeline(ctx, s, keys, nil, 1000)
			if err != nil {
				t.Fatalf("timeline of %s: %v", p.ID, err)
			}
			edges, err := s.EdgesOf(ctx, keys)
			if err != nil {
				t.Fatalf("edges of %s: %v", p.ID, err)
			}
			// encoding/json refuses what a client could not read back
			// (years past 9999, invalid raw JSON).
			if _, err := json.Marshal(map[string]any{"profile": p, "traits": graph.NestTraits(p.Traits), "identifiers": ids, "events": evs, "edges": edges}); err != nil {
				t.Fatalf("export of %s: %v", p.ID, err)
			}
		}
		after = ps[len(ps)-1].ID
	}
}
