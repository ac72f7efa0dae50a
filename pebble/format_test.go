package pebble

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current code")

// goldenFile holds every record of a small store written by a format
// version: later versions must read it (keep the file when the format
// changes, and add the new version's).
func goldenFile(version int) string { return fmt.Sprintf("testdata/format-v%d.records", version) }

var golden = goldenFile(FormatVersion)

const goldenSecret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// goldenChanges is a small graph touching every kind of record: a live
// profile that absorbed another, a third profile held apart by a
// cannot-link, confirmed, pending and rejected edges, a hub, events, a
// merge, blocking keys and an audit entry. Times and IDs are fixed.
func goldenChanges() *graph.Changes {
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	anon, user := graph.Key{Type: "anonymous_id", Value: "a-1"}, graph.Key{Type: "user_id", Value: "u-1"}
	mail, user2 := graph.Key{Type: "email", Value: "ann@corp.io"}, graph.Key{Type: "user_id", Value: "u-2"}
	phone := graph.Key{Type: "phone", Value: "+14155550134"}
	ident := func(k graph.Key, profile string, first time.Duration, strong int, hub bool) *graph.Identifier {
		return &graph.Identifier{Key: k, Profile: profile, FirstSeen: at(first), LastSeen: at(time.Hour), Sources: []string{"segment"}, Strong: strong, Hub: hub}
	}
	edge := func(a, b graph.Key, score float64, kind, status string) *graph.Edge {
		p := graph.Pair(a, b)
		return &graph.Edge{A: p[0], B: p[1], Score: score, Kind: kind, Status: status,
			Evidence: graph.Evidence{Sources: []string{"segment"}, Count: 2, FirstSeen: at(time.Minute), LastSeen: at(time.Hour)}}
	}
	pending := edge(user, user2, 0.8, graph.KindProbabilistic, graph.StatusPending)
	pending.Reason, pending.Model, pending.Explanation, pending.Impact = graph.ReasonReview, "test-1", json.RawMessage(`{"name":0.9}`), 2
	rejected := edge(mail, phone, 0.7, graph.KindProbabilistic, graph.StatusRejected)
	rejected.Decision = &graph.Decision{Actor: "steward:ann", At: at(3 * time.Hour), Action: "reject", Note: "different people", Entry: "au_1"}
	rejectedPair := graph.Pair(mail, phone)
	trait := func(v any, d time.Duration) graph.Trait { return graph.Trait{Value: v, Source: "segment", Time: at(d)} }
	return &graph.Changes{
		Identifiers: []*graph.Identifier{ident(anon, "p_2", time.Minute, 0, false), ident(user, "p_1", 0, 1, false),
			ident(mail, "p_1", 0, 0, false), ident(user2, "p_3", 30*time.Minute, 1, false), ident(phone, "p_3", 30*time.Minute, 0, true)},
		Edges: []*graph.Edge{edge(anon, user, 1, graph.KindExact, graph.StatusAccepted), edge(mail, user, 1, graph.KindExact, graph.StatusAccepted),
			edge(phone, user2, 1, graph.KindExact, graph.StatusAccepted), pending, rejected},
		Profiles: []*graph.Profile{
			{ID: "p_1", CreatedAt: t0, UpdatedAt: at(3 * time.Hour), Absorbed: []string{"p_2"}, Anchor: user,
				Counts:     map[string]int{"anonymous_id": 1, "email": 1, "user_id": 1},
				Traits:     map[string]graph.Trait{"name": trait("Ann Lee", time.Hour), "email": trait("Ann@Corp.io", time.Hour), "visits": trait(3.0, time.Hour)},
				CannotLink: []string{"p_3"}},
			{ID: "p_2", CreatedAt: at(time.Minute), UpdatedAt: at(time.Hour), MergedInto: "p_1", Anchor: anon,
				Counts: map[string]int{"anonymous_id": 1}, Traits: map[string]graph.Trait{}},
			{ID: "p_3", CreatedAt: at(30 * time.Minute), UpdatedAt: at(3 * time.Hour), Anchor: user2,
				Counts: map[string]int{"phone": 1, "user_id": 1}, Traits: map[string]graph.Trait{"name": trait("Bo Stone", 30*time.Minute)}, CannotLink: []string{"p_1"}},
		},
		Merges: []*graph.MergeEvent{{ID: "mg_1", At: at(time.Hour), MessageID: "m-3", Source: "segment", Survivor: "p_1", Absorbed: "p_2",
			Edge: graph.Pair(anon, user), SurvivorSize: 2, AbsorbedSize: 1}},
		Hubs: []*graph.HubMarking{{ID: "h_1", At: at(2 * time.Hour), Key: phone, Strong: 3, Limit: 2, MessageID: "m-9"}},
		Events: []*graph.Event{
			{ID: "ev_1", MessageID: "m-1", Type: "identify", Source: "segment", Timestamp: at(time.Minute), ReceivedAt: at(time.Minute + 2*time.Second),
				Identifiers: []graph.Key{anon}, Traits: json.RawMessage(`{"name":"Ann Lee"}`)},
			{ID: "ev_2", MessageID: "m-2", Type: "track", Name: "Clicked", Source: "segment", Timestamp: at(time.Hour), ReceivedAt: at(time.Hour),
				Identifiers: []graph.Key{user, anon}, Properties: json.RawMessage(`{"plan":"pro"}`), Context: json.RawMessage(`{"ip":"192.0.2.1"}`)},
		},
		Blocks: []graph.BlockEntry{{Profile: "p_1", Keys: []string{"name:annlee", "email:ann@corp.io"}}, {Profile: "p_3", Keys: []string{"name:bostone"}}},
		Audit: []*graph.AuditEntry{{ID: "au_1", At: at(3 * time.Hour), Actor: "steward:ann", Action: "reject", Note: "different people",
			Edge: &rejectedPair, Profiles: []string{"p_1", "p_3"},
			Before: []graph.ProfileSnapshot{{ID: "p_1", Counts: map[string]int{"user_id": 1}, Names: []string{"Ann Lee"}}},
			After:  []graph.ProfileSnapshot{{ID: "p_1", Counts: map[string]int{"user_id": 1}, Names: []string{"Ann Lee"}}},
			Edges:  []*graph.Edge{rejected}}},
	}
}

// buildGolden writes goldenChanges into a new store with the fixed secret.
func buildGolden(t *testing.T) *Store {
	t.Helper()
	s, err := open(t.TempDir(), goldenSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, goldenChanges())
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// dump lists every record, one per line: the key and the value, quoted.
func dump(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.scan(nil, func(k, v []byte) error {
		buf.WriteString(strconv.Quote(string(k)) + " " + strconv.Quote(string(v)) + "\n")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGoldenWrite: this version writes exactly the golden records. A
// failure means the on-disk format changed (a JSON tag of a domain type,
// a key layout): bump FormatVersion with a migration, or undo the change.
// Regenerate with -update only for a new version's own golden file.
func TestGoldenWrite(t *testing.T) {
	got := dump(t, buildGolden(t))
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("the records differ from %s (format version %d) at line %d:\nwrote  %s\ngolden %s", golden, FormatVersion, i+1, g, w)
			}
		}
	}
}

// TestGoldenRead: a store made of each version's golden records (as an
// older idgraph wrote them) reads back exactly as the store this version
// builds.
func TestGoldenRead(t *testing.T) {
	for v := 1; v <= FormatVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { testGoldenRead(t, goldenFile(v)) })
	}
}

// openGolden opens a store made of a golden file's records (migrating
// it).
func openGolden(t *testing.T, golden string) *Store {
	t.Helper()
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	db := rawDB(t, dir)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		k, v, err := unquotePair(sc.Text())
		if err != nil {
			t.Fatalf("%s:%d: %v", golden, n, err)
		}
		if err := db.Set(k, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testGoldenRead(t *testing.T, golden string) {
	old := openGolden(t, golden)
	got, want := readAll(t, old), readAll(t, buildGolden(t))
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("%s from the golden records:\n%s\nfrom this version's store:\n%s", name, g, w)
		}
	}
	// Spelled out, so that the comparison cannot pass on two empty stores.
	p, err := old.Profile(context.Background(), "p_2")
	if err != nil || p == nil || p.MergedInto != "p_1" {
		t.Fatalf("p_2 = %+v, %v; want it merged into p_1", p, err)
	}
	if p, err = old.Profile(context.Background(), "p_1"); err != nil || p.Traits["name"].Value != "Ann Lee" || p.Anchor.Value != "u-1" || len(p.CannotLink) != 1 {
		t.Fatalf("p_1 = %+v, %v", p, err)
	}
	n, err := old.Identifier(context.Background(), graph.Key{Type: "email", Value: "ann@corp.io"})
	if err != nil || n == nil || n.Profile != "p_1" {
		t.Fatalf("email identifier = %+v, %v", n, err)
	}
}

func unquotePair(line string) (k, v []byte, err error) {
	kq, err := strconv.QuotedPrefix(line)
	if err != nil {
		return nil, nil, err
	}
	ks, _ := strconv.Unquote(kq)
	vs, err := strconv.Unquote(strings.TrimPrefix(line[len(kq):], " "))
	return []byte(ks), []byte(vs), err
}

// readAll reads everything through the store's read API, as JSON by name.
func readAll(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	c := goldenChanges()
	var keys []graph.Key
	for _, n := range c.Identifiers {
		keys = append(keys, n.Key)
	}
	out := map[string]string{}
	put := func(name string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, _ := json.Marshal(v)
		out[name] = string(data)
	}
	ps, err := s.Profiles(ctx, "", 100)
	put("profiles", ps, err)
	all, err := s.GetProfiles(ctx, []string{"p_1", "p_2", "p_3"})
	put("get profiles", all, err)
	ids, err := s.IdentifiersOf(ctx, ps)
	put("identifiers of", ids, err)
	// The data column (format version 3; written by the migration from
	// older versions).
	dq := graph.DataQuery{Traits: []string{"name", "visits", "none"}, Keys: true, Counts: true}
	data, err := s.ProfilesData(ctx, []string{"p_1", "p_2", "p_3", "p_missing"}, dq)
	put("profiles data", data, err)
	data, err = s.ScanProfilesData(ctx, "", 100, dq)
	put("scan profiles data", data, err)
	idents, err := s.GetIdentifiers(ctx, keys)
	put("identifiers", idents, err)
	edges, err := s.EdgesOf(ctx, keys)
	put("edges", edges, err)
	tl, err := s.Timelines(ctx, []graph.TimelineQuery{{Keys: keys, Limit: 10}})
	put("timelines", tl, err)
	for _, id := range []string{"p_1", "p_2", "p_3"} {
		ms, err := s.Merges(ctx, id)
		put("merges of "+id, ms, err)
	}
	m, err := s.MergeEvent(ctx, "mg_1")
	put("merge", m, err)
	hubs, err := s.Hubs(ctx)
	put("hubs", hubs, err)
	a, err := s.AuditEntry(ctx, "au_1")
	put("audit entry", a, err)
	log, err := s.AuditLog(ctx, graph.AuditQuery{Profile: "p_3", Limit: 10})
	put("audit log", log, err)
	q, err := s.ReviewQueue(ctx, "", 10)
	put("review queue", q, err)
	for _, prefix := range []string{"ann", "bo", "+1415", "u-"} {
		hits, err := s.Search(ctx, prefix, 10)
		put("search "+prefix, hits, err)
	}
	count, err := s.CountProfiles(ctx)
	put("count", count, err)
	err = s.Update(ctx, func(ctx context.Context, tx graph.Tx) error {
		cands, err := tx.Candidates(ctx, []string{"name:annlee", "email:ann@corp.io", "name:bostone"}, 10)
		put("candidates", cands, err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rawDB(t *testing.T, dir string) *cpebble.DB {
	t.Helper()
	db, err := cpebble.Open(filepath.Join(dir, "graph"), &cpebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestFormatVersion: a new store records its version; a store from before
// versions were recorded opens as version 1 (and is stamped); a newer
// version is refused with both versions named.
func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error {
		return tx.Apply(ctx, goldenChanges())
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	setVersion := func(v string) {
		db := rawDB(t, dir)
		defer db.Close()
		got, closer, err := db.Get(formatKey)
		if err != nil {
			t.Fatalf("format version: %v", err)
		}
		if string(got) != strconv.Itoa(FormatVersion) {
			t.Errorf("format version %q, want %d", got, FormatVersion)
		}
		closer.Close()
		if v == "" {
			err = db.Delete(formatKey, cpebble.Sync)
		} else {
			err = db.Set(formatKey, []byte(v), cpebble.Sync)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	setVersion("") // as written before versions were recorded
	s, err = Open(dir)
	if err != nil {
		t.Fatalf("a store without a format version: %v", err)
	}
	if p, err := s.Profile(context.Background(), "p_1"); err != nil || p == nil || p.Traits["name"].Value != "Ann Lee" {
		t.Fatalf("p_1 = %+v, %v", p, err)
	}
	s.Close()
	newer := FormatVersion + 1
	setVersion(strconv.Itoa(newer))
	_, err = Open(dir)
	if !errors.Is(err, graph.ErrStoreFormat) || !strings.Contains(err.Error(), fmt.Sprintf("format version %d", newer)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("version %d", FormatVersion)) {
		t.Fatalf("opening a version %d store: %v; want ErrFormat naming versions %d and %d", newer, err, newer, FormatVersion)
	}
	t.Log(err)
	setVersionRaw(t, dir, "x")
	if _, err = Open(dir); !errors.Is(err, graph.ErrStoreFormat) || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("opening a store of version %q: %v", "x", err)
	}
}

func setVersionRaw(t *testing.T, dir, v string) {
	db := rawDB(t, dir)
	defer db.Close()
	if err := db.Set(formatKey, []byte(v), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
}
