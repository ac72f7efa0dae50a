package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// TestCacheFollowsOtherProcesses runs two servers on one Neo4j, each with
// its own broker and profile cache, as two processes would: a trait
// changed through one is seen through the other once its change feed
// catches up, although the other had the profile cached.
func TestCacheFollowsOtherProcesses(t *testing.T) {
	store := backends.OpenNeo4j(t)
	feed, ok := store.(graph.ChangeFeed)
	if !ok {
		t.Fatal("the Neo4j store has no change feed")
	}
	start := func() *fixture {
		broker := graph.NewBroker()
		st := graph.NewStitcher(store, graph.DefaultConfig())
		st.Broker = broker
		srv := server.New(server.Config{Store: store, Stitcher: st, Normalizer: graph.NewNormalizer("US"), Broker: broker,
			Keys: server.Keys{Write: []string{writeKey}, Read: []string{readKey}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			graph.FollowChanges(ctx, feed, broker, 100*time.Millisecond, slog.Default())
		}()
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(func() { hs.Close(); cancel(); <-done; srv.Close() })
		return &fixture{url: hs.URL, store: store}
	}
	a, b := start(), start()
	a.send(t, "/v1/identify", `{"userId":"mp-1","traits":{"plan":"free"},"messageId":"mp1"}`)
	q := `{lookup(type:"user_id", value:"mp-1"){traits}}`
	if got := get(b.must(t, q, nil), "lookup.traits.plan"); got != "free" {
		t.Fatalf("b sees plan %v", got)
	}
	a.send(t, "/v1/identify", `{"userId":"mp-1","traits":{"plan":"pro"},"messageId":"mp2"}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get(b.must(t, q, nil), "lookup.traits.plan")
		if got == "pro" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still serves plan %v from its cache", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
