package resolver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/loaders"
	"github.com/idgraph/idgraph/resolver"
	"github.com/idgraph/idgraph/schema"
)

// subscriptionFixture opens the backend's store with a broker and a
// stitcher that publishes to it, and a context that ends with the test.
func subscriptionFixture(t *testing.T, be backends.Backend) (context.Context, graph.Store, *graph.Broker, *graph.Stitcher) {
	t.Helper()
	store := be.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	broker := graph.NewBroker()
	st := graph.NewStitcher(store, graph.DefaultConfig())
	st.Broker = broker
	return ctx, store, broker, st
}

// TestSubscriptionThatLaggedLearnsOfMerge: a client that does not read
// while its profile changes more often than the subscription buffers, and
// is then merged away, still gets the absorption, naming the survivor, as
// its last message.
func TestSubscriptionThatLaggedLearnsOfMerge(t *testing.T) {
	for _, be := range backends.All() {
		t.Run(be.Name, func(t *testing.T) {
			ctx, store, broker, st := subscriptionFixture(t, be)
			t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			ingest := func(msg string, at time.Time, ids ...graph.Key) {
				t.Helper()
				o := &graph.Observation{MessageID: msg, Source: "test", Time: at, Identifiers: ids, Event: graph.Event{Type: "track", Name: "Clicked"}}
				if _, err := st.Ingest(ctx, []*graph.Observation{o}); err != nil {
					t.Fatal(err)
				}
			}
			anon, user := graph.Key{Type: "anonymous_id", Value: "a-old"}, graph.Key{Type: "user_id", Value: "u-lag"}
			ingest("m-anon", t0, anon) // the older profile: it survives the merge
			ingest("m-user", t0, user)
			n, err := store.Identifier(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			out := subscribe(ctx, t, store, broker, n.Profile)
			for i := range 100 { // more than the subscription's 64 slots
				ingest(fmt.Sprint("m-", i), t0.Add(time.Duration(i+1)*time.Second), user)
			}
			ingest("m-merge", t0.Add(time.Hour), user, anon)
			if broker.Lags() == 0 {
				t.Fatal("the subscription never lagged: the test did not flood it")
			}
			var last *schema.ProfileChange
			for msg := range out {
				last = msg
			}
			survivor, err := store.Identifier(ctx, anon)
			if err != nil {
				t.Fatal(err)
			}
			if last == nil || last.Kind != schema.ChangeKindAbsorbed || last.MergedInto == nil || *last.MergedInto != survivor.Profile ||
				last.Profile == nil || last.Profile.ID != survivor.Profile {
				t.Fatalf("last message %+v, want the absorption into %s", last, survivor.Profile)
			}
		})
	}
}

// TestSubscriptionHearsASplit: a steward's split reaches the subscription
// of the profile split as SPLIT (a kind every graph change maps to), and
// the broker names the profile the identifiers moved to as split too, so
// followers of either side read it again.
func TestSubscriptionHearsASplit(t *testing.T) {
	for _, be := range backends.All() {
		t.Run(be.Name, func(t *testing.T) {
			ctx, store, broker, st := subscriptionFixture(t, be)
			anon, user := graph.Key{Type: "anonymous_id", Value: "a-split"}, graph.Key{Type: "user_id", Value: "u-split"}
			o := &graph.Observation{MessageID: "m-both", Source: "test", Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
				Identifiers: []graph.Key{anon, user}, Event: graph.Event{Type: "identify"}}
			if _, err := st.Ingest(ctx, []*graph.Observation{o}); err != nil {
				t.Fatal(err)
			}
			n, err := store.Identifier(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			all, stop := broker.Subscribe("", 16)
			defer stop()
			out := subscribe(ctx, t, store, broker, n.Profile)
			if _, err := st.Split(ctx, "steward", n.Profile, []graph.Key{anon}, "shared tablet"); err != nil {
				t.Fatal(err)
			}
			moved, err := store.Identifier(ctx, anon)
			if err != nil {
				t.Fatal(err)
			}
			if moved.Profile == n.Profile {
				t.Fatal("the split moved nothing")
			}
			select {
			case msg := <-out:
				if msg.Kind != schema.ChangeKindSplit || msg.ProfileID != n.Profile {
					t.Errorf("the subscription heard %+v, want SPLIT of %s", msg, n.Profile)
				}
			case <-ctx.Done():
				t.Fatal("the subscription heard nothing of the split")
			}
			kinds := map[string]string{}
			for len(kinds) < 2 {
				select {
				case c := <-all:
					kinds[c.ProfileID] = c.Kind
				case <-ctx.Done():
					t.Fatalf("the broker published %v", kinds)
				}
			}
			if kinds[n.Profile] != graph.ChangeSplit || kinds[moved.Profile] != graph.ChangeSplit {
				t.Errorf("the broker published %v, want both sides split", kinds)
			}
		})
	}
}

// subscribe starts a profileChanged subscription to a profile, through a
// request's loaders as a GraphQL request would.
func subscribe(ctx context.Context, t *testing.T, store graph.Store, broker *graph.Broker, profile string) <-chan *schema.ProfileChange {
	t.Helper()
	cache := loaders.NewCache(ctx, 100, broker)
	var reqCtx context.Context
	loaders.Middleware(store, cache, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { reqCtx = r.Context() })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "POST", "/graphql", nil))
	r := &resolver.Resolver{Reader: store, Broker: broker, MaxPage: 100}
	out, err := r.Subscription().ProfileChanged(reqCtx, profile)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
