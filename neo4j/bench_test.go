package neo4j

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
)

// BenchmarkIngest stitches batches of 500 observations, as the HTTP batch
// endpoint would: each person sends four messages from two anonymous IDs,
// half of them with user_id and email, and every tenth message comes from
// a returning person stored earlier. Run with -benchtime=Nx (N batches).
func BenchmarkIngest(b *testing.B) {
	s := openTest(b)
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 500
	n := 0
	for b.Loop() {
		obs := make([]*graph.Observation, batch)
		for i := range obs {
			p := n / 4
			if n%10 == 9 {
				p = rng.IntN(p + 1)
			}
			o := &graph.Observation{MessageID: fmt.Sprint("bench-", n), Source: "web",
				Time:        t0.Add(time.Duration(n) * time.Millisecond),
				Identifiers: []graph.Key{{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%d-%d", p, n%2)}}}
			if n%2 == 0 {
				o.Identifiers = append(o.Identifiers,
					graph.Key{Type: graph.TypeUserID, Value: fmt.Sprint("user-", p)},
					graph.Key{Type: graph.TypeEmail, Value: fmt.Sprintf("p%d@example.org", p)})
			}
			obs[i] = o
			n++
		}
		if _, err := st.Ingest(ctx, obs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// searchGraph builds, through Apply, a graph of people with four
// identifiers each (user ID, email, two anonymous IDs) and a name drawn
// from 40 first and 40 last names, and an event per anonymous ID seen
// with the user ID too; the first person's user ID is a hot one with hot
// events of its own. It returns the first person's keys.
func searchGraph(b testing.TB, s *Store, people, hot int) []graph.Key {
	b.Helper()
	first := strings.Fields("Ada Ann Anna Ben Bob Carl Cleo Dan Dora Eve Ezra Finn Gus Hana Ida Ivan Jo Joan Joe John " +
		"Jon Jonas Kai Lea Leo Max Mia Nia Noa Otto Pia Raj Sam Sara Tom Uma Vic Wes Yan Zoe")
	last := strings.Fields("Smith Smithers Jones Johnson Brown Taylor Wilson Davies Evans Thomas Roberts Walker " +
		"Wright Robinson Thompson White Hughes Edwards Green Hall Wood Harris Lewis Martin Jackson Clarke Clark " +
		"Turner Hill Scott Cooper Morris Ward Moore King Watson Baker Harrison Morgan Patel")
	at := t0
	var keys []graph.Key
	const batch = 1000
	for from := 0; from < people; from += batch {
		var c graph.Changes
		for p := from; p < min(from+batch, people); p++ {
			id := fmt.Sprintf("p_%08d", p)
			ks := []graph.Key{
				{Type: graph.TypeUserID, Value: fmt.Sprint("user-", p)},
				{Type: graph.TypeEmail, Value: fmt.Sprintf("%s.%s%d@example.org", strings.ToLower(first[p%40]), strings.ToLower(last[p/40%40]), p)},
				{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%08x-0", p*2654435761%(1<<32))},
				{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%08x-1", p*2654435761%(1<<32))},
			}
			if p == 0 {
				keys = ks
			}
			c.Profiles = append(c.Profiles, &graph.Profile{ID: id, CreatedAt: at, UpdatedAt: at,
				Counts: map[string]int{"user_id": 1, "email": 1, "anonymous_id": 2},
				Traits: map[string]graph.Trait{"name": {Value: first[p%40] + " " + last[p/40%40], Source: "crm", Time: at}}})
			for _, k := range ks {
				c.Identifiers = append(c.Identifiers, &graph.Identifier{Key: k, Profile: id, FirstSeen: at, LastSeen: at, Sources: []string{"web"}})
			}
			for j, k := range ks[2:] {
				at = at.Add(time.Second)
				c.Events = append(c.Events, benchEvent(fmt.Sprintf("e-%d-%d", p, j), at, ks[0], k))
			}
		}
		apply(b, s, &c)
	}
	for from := 0; from < hot; from += batch {
		var c graph.Changes
		for n := from; n < min(from+batch, hot); n++ {
			at = at.Add(time.Second)
			c.Events = append(c.Events, benchEvent(fmt.Sprint("hot-", n), at, keys[0]))
		}
		apply(b, s, &c)
	}
	return keys
}

func benchEvent(msg string, at time.Time, keys ...graph.Key) *graph.Event {
	id, _ := graph.NewID("ev", at)
	return &graph.Event{ID: id, MessageID: msg, Type: "track", Name: "Viewed", Source: "web",
		Timestamp: at, ReceivedAt: at, Identifiers: keys}
}

func apply(b testing.TB, s *Store, c *graph.Changes) {
	b.Helper()
	err := s.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error { return tx.Apply(ctx, c) })
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReads times Search and Timelines on 25,000 people (100,000
// identifiers, 70,000 events, 20,000 of them on one user ID).
func BenchmarkReads(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	start := time.Now()
	keys := searchGraph(b, s, 25000, 20000)
	b.Logf("graph built in %v", time.Since(start).Round(time.Millisecond))
	for _, prefix := range []string{"jo", "john", "smith", "anon-1", "user-1234", "user-12345", "zzz"} {
		b.Run("Search/"+prefix, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Search(ctx, prefix, 20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	hot := []graph.Key{keys[0]}
	first, err := graph.Timeline(ctx, s, hot, nil, 50)
	if err != nil || len(first) != 50 {
		b.Fatalf("hot timeline: %d events, %v", len(first), err)
	}
	deep := &graph.EventCursor{Timestamp: first[0].Timestamp.Add(-10000 * time.Second), ID: "ev_"}
	profiles := make([]graph.TimelineQuery, 20)
	for i := range profiles {
		profiles[i] = graph.TimelineQuery{Limit: 20, Keys: []graph.Key{
			{Type: graph.TypeUserID, Value: fmt.Sprint("user-", 1000+i)},
			{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%08x-0", (1000+i)*2654435761%(1<<32))},
		}}
	}
	for _, bc := range []struct {
		name string
		qs   []graph.TimelineQuery
	}{
		{"HotFirstPage", []graph.TimelineQuery{{Keys: hot, Limit: 50}}},
		{"HotDeepPage", []graph.TimelineQuery{{Keys: hot, After: deep, Limit: 50}}},
		{"Profile", []graph.TimelineQuery{{Keys: keys, Limit: 50}}},
		{"20Profiles", profiles},
	} {
		b.Run("Timelines/"+bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Timelines(ctx, bc.qs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSteward: see the embedded store's.
func BenchmarkSteward(b *testing.B) {
	storetest.BenchStewardOps(b, openTest(b), 1000)
}

// BenchmarkReviewQueue: see the embedded store's.
func BenchmarkReviewQueue(b *testing.B) {
	storetest.BenchReviewQueue(b, openTest(b), 100_000)
}
