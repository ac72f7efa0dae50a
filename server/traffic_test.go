package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/match"
	"github.com/idgraph/idgraph/server"
	"github.com/idgraph/idgraph/traffic"
)

// The property tests feed idgraph what the traffic generator produces (see
// package traffic) over HTTP, on every backend, and check what must hold
// whatever the stream: no 5xx and no panic, the store's invariants, the
// merge-protection limits, and that batching, concurrency and redelivery
// do not change the profiles. They print precision and recall against the
// generator's truth.

// trafficPeople sizes the large run: about 35 messages a person, so the
// default is a 50,000-message sample. IDGRAPH_TRAFFIC_PEOPLE runs more.
func trafficPeople(t *testing.T, def int) int {
	if v := os.Getenv("IDGRAPH_TRAFFIC_PEOPLE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("IDGRAPH_TRAFFIC_PEOPLE: %v", err)
		}
		return n
	}
	if testing.Short() {
		return def / 10
	}
	return def
}

// stitchingFromEnv applies serve's IDGRAPH_SHARED_LIMITS and
// IDGRAPH_NAME_GUARD, so that the benchmarks' variants (docs/benchmarks.md)
// run the same test.
func stitchingFromEnv(t *testing.T) func(*graph.Stitcher) {
	cfg := graph.DefaultConfig()
	if v, ok := os.LookupEnv("IDGRAPH_SHARED_LIMITS"); ok {
		if err := cfg.ParseSharedLimits(v); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok := os.LookupEnv("IDGRAPH_NAME_GUARD"); ok {
		if err := cfg.ParseNameGuard(v); err != nil {
			t.Fatal(err)
		}
	}
	return func(st *graph.Stitcher) { st.Config = cfg }
}

func withSegmentModel(st *graph.Stitcher) {
	st.Matcher, st.MatchConfig = match.NewGraphMatcher(match.SegmentModel(), true), graph.DefaultMatchConfig()
}

// TestTrafficProperties sends a generated stream in batches, half the CRM
// export before it and half after, then the whole stream again.
func TestTrafficProperties(t *testing.T) {
	people := trafficPeople(t, 1450)
	for _, b := range backends.All() {
		for _, matching := range []bool{true, false} {
			name := b.Name + "/matching-off"
			opts := []func(*graph.Stitcher){stitchingFromEnv(t)}
			if matching {
				name, opts = b.Name+"/matching-on", append(opts, withSegmentModel)
			}
			t.Run(name, func(t *testing.T) {
				n := people
				if !matching {
					n = people / 4 // exact stitching is covered again by the equivalence tests
				}
				o := traffic.Defaults()
				o.People, o.Seed = n, 11
				if v := os.Getenv("IDGRAPH_TRAFFIC_FORM_FILL"); v != "" {
					var err error
					if o.FormFill, err = strconv.ParseFloat(v, 64); err != nil {
						t.Fatalf("IDGRAPH_TRAFFIC_FORM_FILL: %v", err)
					}
				}
				s := traffic.Generate(o)
				f := newFixture(t, b.Open, opts...)
				start := time.Now()
				half := len(s.Records) / 2
				f.importRecords(t, s.Records[:half])
				f.sendBatches(t, s.Messages, 100)
				f.importRecords(t, s.Records[half:])
				t.Logf("%d messages and %d records in %v", len(s.Messages), len(s.Records), time.Since(start).Round(time.Millisecond))
				storetest.CheckInvariants(t, f.store)
				before := f.exportJSON(t)
				checkLimits(t, before, graph.DefaultConfig())
				t.Logf("identifiers: %v", scoreExport(before, s.Owner))
				sc, diag := diagnoseEvents(t, before, s)
				t.Logf("events: %v", sc)
				t.Logf("events' false pairs: %v", diag)

				// Redelivered whole, the stream changes nothing.
				f.sendBatches(t, s.Messages, 250)
				f.importRecords(t, s.Records)
				if after := f.exportJSON(t); !sameJSON(after, before) {
					t.Errorf("redelivering the stream changed the profiles: %d profiles before, %d after", len(before), len(after))
				}
			})
		}
	}
}

// TestTrafficBatchingAndConcurrency: with exact stitching, a stream split
// into other batch sizes, or sent by 8 concurrent clients (each keeping
// the order of the people it sends for), ends with the same profiles as
// one sequential run.
func TestTrafficBatchingAndConcurrency(t *testing.T) {
	o := traffic.Defaults()
	o.People, o.Seed = trafficPeople(t, 150), 5
	s := traffic.Generate(o)
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			var want string
			for _, run := range []struct {
				name           string
				batch, clients int
			}{{"sequential", 1, 1}, {"batches of 37", 37, 1}, {"batches of 250", 250, 1}, {"8 clients", 20, 8}} {
				// A subtest each: the Neo4j backend is one database, held
				// (and emptied) by one test at a time.
				t.Run(run.name, func(t *testing.T) {
					f := newFixture(t, b.Open)
					start := time.Now()
					if run.clients == 1 {
						f.importRecords(t, s.Records)
						f.sendBatches(t, s.Messages, run.batch)
					} else {
						f.sendConcurrently(t, s, run.batch, run.clients)
					}
					t.Logf("%d messages, %d records in %v", len(s.Messages), len(s.Records), time.Since(start).Round(time.Millisecond))
					storetest.CheckInvariants(t, f.store)
					ps := f.exportJSON(t)
					got := partition(ps)
					if want == "" {
						want = got
						t.Logf("identifiers: %v", scoreExport(ps, s.Owner))
						t.Logf("events: %v", scoreEvents(t, ps, s.Messages))
						return
					}
					if got != want {
						t.Errorf("%s ends with other profiles than a sequential run:\n%s", run.name, diffLines(want, got))
					}
				})
			}
		})
	}
}

// sendBatches posts the messages in /v1/batch calls of n, in order; every
// call must be acknowledged.
func (f *fixture) sendBatches(t *testing.T, msgs []traffic.Message, n int) {
	t.Helper()
	for i := 0; i < len(msgs); i += n {
		f.sendBatch(t, msgs[i:min(i+n, len(msgs))])
	}
}

func (f *fixture) sendBatch(t *testing.T, msgs []traffic.Message) {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(`{"batch":[`)
	for i, m := range msgs {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(m.Body)
	}
	buf.WriteString(`]}`)
	if code, body := f.postBytes(t, "/v1/batch", buf.Bytes()); code != http.StatusOK {
		t.Fatalf("batch of %d (first %s): %d %s", len(msgs), msgs[0].Body, code, body)
	}
}

func (f *fixture) importRecords(t *testing.T, recs []traffic.Record) {
	t.Helper()
	for i := 0; i < len(recs); i += server.MaxImportRecords {
		body, err := json.Marshal(map[string]any{"source": "crm", "records": recs[i:min(i+server.MaxImportRecords, len(recs))]})
		if err != nil {
			t.Fatal(err)
		}
		if code, resp := f.postBytes(t, "/v1/import", body); code != http.StatusOK {
			t.Fatalf("import: %d %s", code, resp)
		}
	}
}

func (f *fixture) postBytes(t *testing.T, path string, body []byte) (int, string) {
	t.Helper()
	return f.postWith(t, path, string(body), func(r *http.Request) { r.SetBasicAuth(writeKey, "") })
}

// sendConcurrently routes each message and record to one of the clients
// by the connected component of its identifiers (what stitching could ever
// join), so that each client keeps the order of the people it sends for,
// and runs the clients at once. Order between components is the only
// thing that changes, and exact stitching must not depend on it.
func (f *fixture) sendConcurrently(t *testing.T, s *traffic.Stream, batch, clients int) {
	t.Helper()
	dec := collect.Decoder{Normalizer: graph.NewNormalizer("US")}
	uf := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := uf[x]; ok && p != x {
			r := find(p)
			uf[x] = r
			return r
		}
		uf[x] = x
		return x
	}
	union := func(keys []string) string {
		if len(keys) == 0 {
			return ""
		}
		r := find(keys[0])
		for _, k := range keys[1:] {
			uf[find(k)] = r
		}
		return r
	}
	msgKeys := make([][]string, len(s.Messages))
	for i, m := range s.Messages {
		d, err := dec.DecodeMessage("", m.Body, time.Now(), "", nil)
		if err != nil {
			t.Fatalf("decode %s: %v", m.Body, err)
		}
		for _, k := range d.Observation.Identifiers {
			msgKeys[i] = append(msgKeys[i], k.String())
		}
		if prev := d.Observation.PreviousID; prev != "" { // either type it may take
			msgKeys[i] = append(msgKeys[i], graph.TypeUserID+":"+prev, graph.TypeAnonymousID+":"+prev)
		}
		union(msgKeys[i])
	}
	norm := graph.NewNormalizer("US")
	recKeys := make([][]string, len(s.Records))
	for i, r := range s.Records {
		for typ, v := range r.Identifiers {
			if k, err := norm.Normalize(typ, v); err == nil {
				recKeys[i] = append(recKeys[i], k.String())
			}
		}
		union(recKeys[i])
	}
	client := func(keys []string) int {
		h := fnv.New32a()
		h.Write([]byte(find(keys[0])))
		return int(h.Sum32() % uint32(clients))
	}
	msgs := make([][]traffic.Message, clients)
	for i, m := range s.Messages {
		c := client(msgKeys[i])
		msgs[c] = append(msgs[c], m)
	}
	recs := make([][]traffic.Record, clients)
	for i, r := range s.Records {
		c := client(recKeys[i])
		recs[c] = append(recs[c], r)
	}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			f.importRecords(t, recs[c])
			f.sendBatches(t, msgs[c], batch)
		})
	}
	wg.Wait()
}

func (f *fixture) exportJSON(t *testing.T) []server.ExportedProfile {
	t.Helper()
	ps := f.export(t)
	slices.SortFunc(ps, func(a, b server.ExportedProfile) int { return strings.Compare(a.ID, b.ID) })
	return ps
}

// partition renders the profiles as sorted lines of sorted identifiers:
// equal strings, equal profiles, whatever the profile IDs.
func partition(ps []server.ExportedProfile) string {
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		ids := make([]string, 0, len(p.Identifiers))
		for _, k := range p.Identifiers {
			ids = append(ids, k.String())
		}
		slices.Sort(ids)
		lines = append(lines, strings.Join(ids, " "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("… and %d more lines", len(out)-20))
	}
	return strings.Join(out, "\n")
}

func scoreExport(ps []server.ExportedProfile, owner map[graph.Key]int) traffic.Score {
	profileOf := map[graph.Key]string{}
	for _, p := range ps {
		for _, k := range p.Identifiers {
			profileOf[k] = p.ID
		}
	}
	return traffic.ScorePartition(owner, profileOf)
}

// checkLimits: merge protection keeps every profile, the largest included,
// within the per-type limits, whatever the stream.
func checkLimits(t *testing.T, ps []server.ExportedProfile, cfg graph.Config) {
	t.Helper()
	for _, p := range ps {
		counts := map[string]int{}
		for _, k := range p.Identifiers {
			counts[k.Type]++
		}
		for typ, n := range counts {
			limit, ok := cfg.Limits[typ]
			if !ok {
				limit = graph.DefaultCustomLimit
			}
			if n > limit {
				t.Errorf("profile %s holds %d %s identifiers, over the limit %d", p.ID, n, typ, limit)
			}
		}
	}
}

func sameJSON(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// scoreEvents places each message's event in the profile of its
// highest-priority identifier (see traffic.EventScorer).
func scoreEvents(t *testing.T, ps []server.ExportedProfile, msgs []traffic.Message) traffic.Score {
	t.Helper()
	s, _ := diagnoseEvents(t, ps, &traffic.Stream{Messages: msgs})
	return s
}

// diagnoseEvents scores the events and sorts their false pairs by cause
// (traffic.EventScorer.Diagnose).
func diagnoseEvents(t *testing.T, ps []server.ExportedProfile, s *traffic.Stream) (traffic.Score, traffic.EventDiagnosis) {
	t.Helper()
	profileOf := map[graph.Key]string{}
	for _, p := range ps {
		for _, k := range p.Identifiers {
			profileOf[k] = p.ID
		}
	}
	e := traffic.NewEventScorer(profileOf, graph.DefaultConfig().Priority)
	for _, m := range s.Messages {
		if err := e.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	return e.Score(), e.Diagnose(s.Owner)
}
