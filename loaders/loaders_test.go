package loaders

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
)

// TestCacheNeverStaleAfterBurst ingests bursts of trait changes while
// readers fill the profile cache, with a cache subscription so small that
// the broker drops changes for it. Once the burst is over, every profile
// the cache serves is the store's.
func TestCacheNeverStaleAfterBurst(t *testing.T) {
	for _, be := range backends.All() {
		t.Run(be.Name, func(t *testing.T) {
			store := be.Open(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			broker := graph.NewBroker()
			cache := newCache(ctx, 1000, broker, 1)
			st := graph.NewStitcher(store, graph.DefaultConfig())
			st.Broker = broker
			const people = 20
			t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			ids := make([]string, people)
			for p := range people {
				o := &graph.Observation{MessageID: fmt.Sprint("seed-", p), Source: "test", Time: t0,
					Identifiers: []graph.Key{{Type: "user_id", Value: fmt.Sprint("u", p)}}, Event: graph.Event{Type: "identify"}}
				if _, err := st.Ingest(ctx, []*graph.Observation{o}); err != nil {
					t.Fatal(err)
				}
				n, err := store.Identifier(ctx, o.Identifiers[0])
				if err != nil {
					t.Fatal(err)
				}
				ids[p] = n.Profile
			}
			msg := 0
			for round := 0; cache.Purges.Load() == 0 || round < 2; round++ {
				if round == 20 {
					t.Fatal("20 bursts never overflowed a one-slot subscription")
				}
				burst(t, ctx, st, cache, store, ids, t0, &msg)
			}
			deadline := time.Now().Add(10 * time.Second)
			for _, id := range ids {
				for {
					fresh, err := store.GetProfiles(ctx, []string{id})
					if err != nil {
						t.Fatal(err)
					}
					cached, err := New(store, cache).CachedProfile(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					a, _ := json.Marshal(fresh[0])
					b, _ := json.Marshal(cached)
					if string(a) == string(b) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after the burst the cache serves\n%s\nthe store has\n%s", b, a)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			t.Logf("%d messages, %d purges, %d hits", msg, cache.Purges.Load(), cache.Hits.Load())
		})
	}
}

// burst runs four writers, each sending batches that change every
// profile's traits, and four readers loading through the cache.
func burst(t *testing.T, ctx context.Context, st *graph.Stitcher, cache *Cache, store graph.Store, ids []string, t0 time.Time, msg *int) {
	var mu sync.Mutex
	next := func() int { mu.Lock(); defer mu.Unlock(); *msg++; return *msg }
	done := make(chan struct{})
	var readers, writers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				l := New(store, cache)
				if _, err := l.Profile.LoadAll(ctx, ids); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for range 5 {
				var batch []*graph.Observation
				for p := range ids {
					m := next()
					batch = append(batch, &graph.Observation{MessageID: fmt.Sprint("m-", m), Source: "test", Time: t0.Add(time.Duration(m) * time.Second),
						Identifiers: []graph.Key{{Type: "user_id", Value: fmt.Sprint("u", p)}}, Traits: map[string]any{"n": m}, Event: graph.Event{Type: "identify"}})
				}
				if _, err := st.Ingest(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
}
