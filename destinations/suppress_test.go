package destinations_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/suppression"
)

// suppStore is a graph store with everything a suppressed delivery reads.
type suppStore interface {
	graph.Store
	destinations.Backend
	destinations.SentBackend
	suppression.Backend
	consent.Backend
}

// suppBackends are the backends the suppression tests run on: an
// in-memory Pebble (deliveries write their cursor synced, and a disk
// makes the 100,000-profile run slow for nothing) and the test Neo4j.
func suppBackends() []struct {
	name string
	open func(t *testing.T) suppStore
} {
	return []struct {
		name string
		open func(t *testing.T) suppStore
	}{
		{"embedded", func(t *testing.T) suppStore {
			s, err := pebble.OpenMem()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"neo4j", func(t *testing.T) suppStore { return backends.OpenNeo4j(t).(suppStore) }},
	}
}

func newLists(s suppStore) *suppression.Lists {
	return &suppression.Lists{Store: s.SuppressionLists(), Hasher: erase.NewHasher([]byte("test-pepper-0123456789abcdef")),
		Norm: graph.NewNormalizer("US")}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// populate ingests n profiles, the i-th with user_id u<i> and email
// e<i>@mail.idgraph.dev, and returns their ids.
func populate(t *testing.T, s graph.Store, n int) []string {
	t.Helper()
	ctx := context.Background()
	st := graph.NewStitcher(s, graph.DefaultConfig())
	ids := make([]string, n)
	const batch = 500
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		obs := make([]*graph.Observation, 0, hi-lo)
		keys := make([]graph.Key, 0, hi-lo)
		for i := lo; i < hi; i++ {
			u := graph.Key{Type: graph.TypeUserID, Value: fmt.Sprintf("u%06d", i)}
			obs = append(obs, &graph.Observation{MessageID: u.Value, Time: t0, Event: graph.Event{Type: "identify"},
				Identifiers: []graph.Key{u, {Type: graph.TypeEmail, Value: fmt.Sprintf("e%06d@mail.idgraph.dev", i)}}})
			keys = append(keys, u)
		}
		if _, err := st.Ingest(ctx, obs); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetIdentifiers(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range got {
			ids[lo+i] = n.Profile
		}
	}
	return ids
}

// ingest sends one identify carrying keys.
func ingest(t *testing.T, st *graph.Stitcher, keys ...graph.Key) {
	t.Helper()
	if _, err := st.Ingest(context.Background(), []*graph.Observation{{MessageID: fmt.Sprint(keys), Time: t0,
		Identifiers: keys, Event: graph.Event{Type: "identify"}}}); err != nil {
		t.Fatal(err)
	}
}

func profileOf(t *testing.T, s graph.Store, k graph.Key) string {
	t.Helper()
	n, err := s.Identifier(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return n.Profile
}

func mustSuppress(t *testing.T, l *suppression.Lists, sc suppression.Scope, in ...suppression.Input) {
	t.Helper()
	if _, err := l.Add(context.Background(), sc, in); err != nil {
		t.Fatal(err)
	}
}

// Entries and other non-exit messages are dropped when the profile holds,
// at delivery, an identifier listed globally, for the destination or for
// its channel, including one a merge brought in; lists of another channel
// or destination do not apply; exits go.
func TestSuppressionScopesAndMerges(t *testing.T) {
	for _, b := range suppBackends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t)
			lists := newLists(s)
			st := graph.NewStitcher(s, graph.DefaultConfig())
			uid := func(v string) graph.Key { return graph.Key{Type: graph.TypeUserID, Value: v} }
			ingest(t, st, uid("ann"), graph.Key{Type: graph.TypeEmail, Value: "ann@mail.idgraph.dev"})
			ingest(t, st, uid("bob"), graph.Key{Type: graph.TypePhone, Value: "+14155550123"})
			ingest(t, st, uid("cat"), graph.Key{Type: graph.TypeDeviceID, Value: "dev-cat"})
			ingest(t, st, uid("dan"), graph.Key{Type: graph.TypeEmail, Value: "dan@mail.idgraph.dev"})
			ingest(t, st, uid("eve"), graph.Key{Type: graph.TypeEmail, Value: "eve@mail.idgraph.dev"})
			ingest(t, st, uid("fay"))
			ingest(t, st, graph.Key{Type: graph.TypeEmail, Value: "gus@mail.idgraph.dev"})
			p := map[string]string{}
			for _, u := range []string{"ann", "bob", "cat", "dan", "eve", "fay"} {
				p[u] = profileOf(t, s, uid(u))
			}
			p["gus"] = profileOf(t, s, graph.Key{Type: graph.TypeEmail, Value: "gus@mail.idgraph.dev"})

			f := newFixtureOn(t, s, func(o *destinations.Options) { o.Suppression, o.Profiles = lists, s })
			r := newReceiver(t, ok)
			d := f.connect(t, r, "vip")
			if _, err := f.m.SetChannel(ctx, d.ID, "E-mail"); graph.ErrorKind(err) != graph.KindInvalid || !fieldIs(err, "channel") {
				t.Fatalf("a malformed channel: %v", err)
			}
			if d, err := f.m.SetChannel(ctx, d.ID, "email"); err != nil || d.Channel != "email" {
				t.Fatalf("SetChannel = %+v, %v", d, err)
			}
			mustSuppress(t, lists, suppression.Scope{Kind: suppression.Global}, suppression.Input{Type: "email", Value: " ANN@mail.idgraph.dev"},
				suppression.Input{Type: "email", Value: "gus@mail.idgraph.dev"})
			mustSuppress(t, lists, suppression.Scope{Kind: suppression.Destination, Target: d.ID}, suppression.Input{Type: "phone", Value: "(415) 555-0123"})
			mustSuppress(t, lists, suppression.Scope{Kind: suppression.Channel, Target: "email"}, suppression.Input{Type: "device_id", Value: "dev-cat"})
			mustSuppress(t, lists, suppression.Scope{Kind: suppression.Channel, Target: "sms"}, suppression.Input{Type: "email", Value: "dan@mail.idgraph.dev"})
			mustSuppress(t, lists, suppression.Scope{Kind: suppression.Destination, Target: "dst_0000000000000000"}, suppression.Input{Type: "email", Value: "eve@mail.idgraph.dev"})
			// fay meets gus's suppressed email: the merged profile is suppressed.
			ingest(t, st, uid("fay"), graph.Key{Type: graph.TypeEmail, Value: "gus@mail.idgraph.dev"})

			for _, u := range []string{"ann", "bob", "cat", "dan", "eve", "fay", "gus"} {
				f.feed.add("vip", p[u], segments.Entered)
			}
			f.feed.add("vip", p["ann"], segments.Exited)
			last := f.feed.addFor("vip", p["fay"], segments.Exited, segments.ReasonErased)
			eventually(t, "the cursor passes every record", func() bool {
				c, err := f.m.Cursor(ctx, d.ID)
				return err == nil && c.After == last
			})
			var got []string
			for _, m := range r.requests() {
				got = append(got, m.msg.Type+" "+m.msg.Data.Profile)
			}
			want := []string{"segment.entered " + p["dan"], "segment.entered " + p["eve"], "segment.exited " + p["ann"], "profile.erased " + p["fay"]}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
			c, _ := f.m.Cursor(ctx, d.ID)
			if c.Withheld[destinations.ReasonSuppressed] != 5 || c.Delivered != 4 {
				t.Fatalf("cursor = %+v: want 5 suppressed (ann, bob, cat, fay, gus), 4 delivered", c)
			}
		})
	}
}

func fieldIs(err error, field string) bool {
	var ge *graph.Error
	return errors.As(err, &ge) && ge.Field == field
}

// The figure: of n profiles, 5% suppressed through their email
// (not the user ID that addresses them) and 10% without consent for the
// destination's purpose get no delivery at all; everyone else gets
// exactly one. n is 10,000 on the embedded store (100,000 with
// IDGRAPH_FULL_FIGURES=1; docs/benchmarks.md) and 1,000 on Neo4j;
// IDGRAPH_SUPPRESSION_PROFILES=n sets it on both (a multiple of 20).
func TestSuppressionAndConsentFigure(t *testing.T) {
	for _, b := range suppBackends() {
		t.Run(b.name, func(t *testing.T) {
			n := 1000
			if b.name == "embedded" {
				n = 10000
				if os.Getenv("IDGRAPH_FULL_FIGURES") == "1" {
					n = 100000
				}
			}
			if v := os.Getenv("IDGRAPH_SUPPRESSION_PROFILES"); v != "" {
				var err error
				if n, err = strconv.Atoi(v); err != nil || n <= 0 || n%20 != 0 {
					t.Fatalf("IDGRAPH_SUPPRESSION_PROFILES=%q: a positive multiple of 20", v)
				}
			}
			ctx := context.Background()
			s := b.open(t)
			start := time.Now()
			ids := populate(t, s, n)
			lists := newLists(s)
			var listed []suppression.Input
			var grants []consent.Record
			for i := range n {
				switch {
				case i%20 == 0: // 5%
					listed = append(listed, suppression.Input{Type: "email", Value: fmt.Sprintf("E%06d@Mail.Idgraph.dev", i)})
				case i%10 == 1: // 10%: no consent record
					continue
				}
				k := graph.Key{Type: graph.TypeUserID, Value: fmt.Sprintf("u%06d", i)}
				grants = append(grants, consent.Record{ID: k.Value, Key: k, Purpose: "analytics", Status: consent.Granted, Time: t0, Source: "test"})
			}
			for lo := 0; lo < len(listed); lo += suppression.MaxEntries {
				mustSuppress(t, lists, suppression.Scope{Kind: suppression.Global}, listed[lo:min(lo+suppression.MaxEntries, len(listed))]...)
			}
			for lo := 0; lo < len(grants); lo += 5000 {
				if err := s.Consent().AppendConsent(ctx, grants[lo:min(lo+5000, len(grants))]); err != nil {
					t.Fatal(err)
				}
			}
			setup := time.Since(start)
			purposes, _ := consent.NewPurposes(nil, nil)
			chk := &consent.Checker{Store: s.Consent(), Reader: s, Purposes: purposes}
			f := newFixtureOn(t, s, func(o *destinations.Options) {
				o.Consent, o.Purposes, o.Suppression, o.Profiles = chk.CheckID, purposes, lists, s
				o.Log = slog.New(slog.DiscardHandler) // a line per drop
			})
			r := newReceiver(t, ok)
			d := f.connect(t, r, "vip")
			if _, err := f.m.SetPurpose(ctx, d.ID, "analytics"); err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			var last uint64
			for _, id := range ids {
				last = f.feed.add("vip", id, segments.Entered)
			}
			waitFor(t, 10*time.Minute, func() bool {
				c, err := f.m.Cursor(ctx, d.ID)
				return err == nil && c.After == last
			})
			took := time.Since(start)
			got := map[string]int{}
			for _, m := range r.requests() {
				got[m.msg.Data.Profile]++
			}
			for i, id := range ids {
				want := 1
				if i%20 == 0 || i%10 == 1 {
					want = 0
				}
				if got[id] != want {
					t.Fatalf("profile %d was sent %d entries, want %d", i, got[id], want)
				}
			}
			c, _ := f.m.Cursor(ctx, d.ID)
			if c.Withheld[destinations.ReasonSuppressed] != int64(n/20) || c.Withheld[consent.ReasonNotGranted] != int64(n/10) ||
				c.Delivered != int64(n-n/20-n/10) || len(r.requests()) != n-n/20-n/10 {
				t.Fatalf("cursor = %+v, %d requests; want %d suppressed, %d not granted, %d delivered", c, len(r.requests()), n/20, n/10, n-n/20-n/10)
			}
			t.Logf("%s: %d profiles (set up in %v): %d delivered, %d suppressed, %d without consent, in %v (%.0f records/s)",
				b.name, n, setup.Round(time.Millisecond), c.Delivered, c.Withheld[destinations.ReasonSuppressed],
				c.Withheld[consent.ReasonNotGranted], took.Round(time.Millisecond), float64(n)/took.Seconds())
		})
	}
}

// A suppression added while 1,000 deliveries wait behind a slow receiver
// applies to the waiting ones at their attempt: at most the one attempt
// already under way when the add returns reaches the receiver. The time
// from the add to the last affected delivery is printed (-v).
func TestSuppressionAppliesToQueuedDeliveries(t *testing.T) {
	for _, b := range suppBackends() {
		t.Run(b.name, func(t *testing.T) {
			const n = 1000
			ctx := context.Background()
			s := b.open(t)
			ids := populate(t, s, n)
			lists := newLists(s)
			f := newFixtureOn(t, s, func(o *destinations.Options) {
				o.Suppression, o.Profiles, o.Log = lists, s, slog.New(slog.DiscardHandler)
			})
			r := newReceiver(t, func(int, http.ResponseWriter) { time.Sleep(3 * time.Millisecond) })
			d := f.connect(t, r, "vip")
			var last uint64
			for _, id := range ids {
				last = f.feed.add("vip", id, segments.Entered)
			}
			eventually(t, "deliveries under way", func() bool { return len(r.requests()) >= 50 })
			// Suppress every tenth profile: 10 of them are behind the first 50.
			var in []suppression.Input
			affected := map[string]bool{}
			for i := 0; i < n; i += 10 {
				in = append(in, suppression.Input{Type: "email", Value: fmt.Sprintf("e%06d@mail.idgraph.dev", i)})
				affected[ids[i]] = true
			}
			mustSuppress(t, lists, suppression.Scope{Kind: suppression.Global}, in...)
			added := time.Now()
			firstDrop := f.awaitDrops(t, d.ID, destinations.ReasonSuppressed, added, last)
			var lastAffected time.Time
			after, before := 0, 0
			for _, m := range r.requests() {
				if !affected[m.msg.Data.Profile] {
					continue
				}
				if m.at.After(added) {
					after++
				} else {
					before++
				}
				lastAffected = m.at
			}
			if after > 1 {
				t.Fatalf("%d deliveries of suppressed profiles reached the receiver after the add (at most the one under way may)", after)
			}
			c, _ := f.m.Cursor(ctx, d.ID)
			if got := c.Withheld[destinations.ReasonSuppressed]; got != int64(n/10-before-after) {
				t.Fatalf("withheld %d, want %d (%d affected sent before the add, %d after)", got, n/10-before-after, before, after)
			}
			lag := "none after the add"
			if after == 1 {
				lag = lastAffected.Sub(added).String()
			}
			t.Logf("%s: %d affected of %d queued withheld; first drop %v after the add (its cursor write seen); last affected delivery after the add: %s",
				b.name, c.Withheld[destinations.ReasonSuppressed], n, firstDrop.Round(time.Millisecond), lag)
		})
	}
}

// awaitDrops waits for the destination's first entry withheld for reason,
// returns how long after since it came, then waits for the cursor to pass
// the record last.
func (f *fixture) awaitDrops(t *testing.T, id, reason string, since time.Time, last uint64) time.Duration {
	t.Helper()
	ctx := context.Background()
	waitFor(t, time.Minute, func() bool {
		c, err := f.m.Cursor(ctx, id)
		return err == nil && c.Withheld[reason] > 0
	})
	took := time.Since(since)
	waitFor(t, 5*time.Minute, func() bool {
		c, err := f.m.Cursor(ctx, id)
		return err == nil && c.After == last
	})
	return took
}

// waitFor polls cond until it holds or limit passes (a figure run takes
// minutes; eventually's bound is for unit tests).
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not done after %v", limit)
		}
	}
}
