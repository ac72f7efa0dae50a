package graph_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
)

// TestBrokerSlowSubscriberLearnsItLagged floods a subscriber that reads
// slowly: every change it misses lies in a gap that a ChangeLagged marker
// announces, before the next change it receives.
func TestBrokerSlowSubscriberLearnsItLagged(t *testing.T) {
	b := graph.NewBroker()
	changes, cancel := b.Subscribe("", 8)
	defer cancel()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 20_000
	var got []graph.ProfileChange
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range changes {
			got = append(got, c)
			if len(got)%50 == 0 {
				time.Sleep(time.Millisecond) // a slow reader
			}
		}
	}()
	for i := range n {
		// Change i is stamped t0+i, so a marker names the first change dropped.
		b.Publish([]graph.ProfileChange{{ProfileID: fmt.Sprint("p_", i%7), Kind: graph.ChangeUpdated, At: t0.Add(time.Duration(i))}})
	}
	cancel()
	<-done
	received := map[int]int{} // change → position in got
	var markers []int
	for pos, c := range got {
		if c.Kind == graph.ChangeLagged {
			markers = append(markers, pos)
			continue
		}
		received[int(c.At.Sub(t0))] = pos
	}
	if len(markers) == 0 || int64(len(markers)) != b.Lags() {
		t.Fatalf("%d markers, Lags %d: the flood should have overflowed an 8-slot subscriber", len(markers), b.Lags())
	}
	missing := 0
	prev := -1 // position of the last received change before the gap
	for i := range n {
		if pos, ok := received[i]; ok {
			prev = pos
			continue
		}
		missing++
		next := len(got) // position of the first received change after i
		for j := i + 1; j < n; j++ {
			if pos, ok := received[j]; ok {
				next = pos
				break
			}
		}
		announced := false
		for _, m := range markers {
			announced = announced || m > prev && m < next
		}
		if !announced {
			t.Fatalf("change %d was dropped without a lag marker between positions %d and %d", i, prev, next)
		}
	}
	if missing == 0 {
		t.Fatal("nothing was dropped: the test did not flood the subscriber")
	}
	t.Logf("%d changes, %d dropped, %d markers", n, missing, len(markers))
}

// TestBrokerLaggedSubscriberCatchesUp: after the marker is read, changes
// flow again; a subscriber of one profile hears nothing of others.
func TestBrokerLaggedSubscriberCatchesUp(t *testing.T) {
	b := graph.NewBroker()
	one, cancel := b.Subscribe("p_1", 2)
	defer cancel()
	at := time.Now()
	for range 5 {
		b.Publish([]graph.ProfileChange{{ProfileID: "p_1", Kind: graph.ChangeUpdated, At: at}, {ProfileID: "p_2", Kind: graph.ChangeUpdated, At: at}})
	}
	var kinds []string
	for range 3 {
		c := <-one
		if c.ProfileID != "p_1" {
			t.Fatalf("a subscriber of p_1 got %+v", c)
		}
		kinds = append(kinds, c.Kind)
	}
	if fmt.Sprint(kinds) != "[updated updated lagged]" {
		t.Fatalf("got %v, want two changes and the marker", kinds)
	}
	b.Publish([]graph.ProfileChange{{ProfileID: "p_1", Kind: graph.ChangeMerged, At: at}})
	if c := <-one; c.Kind != graph.ChangeMerged {
		t.Fatalf("after the marker was read: %+v", c)
	}
}

// TestFollowChangesPagesThroughABurst: more changed profiles than one page
// of the feed, all stamped at one instant, plus a change committed late
// with an older stamp, are all announced (Neo4j's change feed).
func TestFollowChangesPagesThroughABurst(t *testing.T) {
	store := backends.OpenNeo4j(t)
	feed := store.(graph.ChangeFeed)
	b := graph.NewBroker()
	changes, cancel := b.Subscribe("", 10_000)
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		graph.FollowChanges(ctx, feed, b, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { stop(); wg.Wait() }()
	write := func(at time.Time, ids ...string) {
		t.Helper()
		var ps []*graph.Profile
		for _, id := range ids {
			ps = append(ps, &graph.Profile{ID: id, CreatedAt: at, UpdatedAt: at, Counts: map[string]int{}})
		}
		if err := store.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error {
			return tx.Apply(ctx, &graph.Changes{Profiles: ps})
		}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // FollowChanges starts from its start time
	now := time.Now().UTC()
	var burst []string
	for i := range 2500 {
		burst = append(burst, fmt.Sprintf("p_burst_%04d", i))
	}
	write(now, burst...)
	want := map[string]bool{}
	for _, id := range burst {
		want[id] = true
	}
	wait := func() {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for len(want) > 0 {
			select {
			case c := <-changes:
				if c.Kind == graph.ChangeLagged {
					t.Fatal("the subscriber lagged; the test wants every change")
				}
				delete(want, c.ProfileID)
			case <-deadline:
				t.Fatalf("%d changes never announced", len(want))
			}
		}
	}
	wait()
	// Stamped before the burst (a slow transaction) but committed after it.
	write(now.Add(-time.Second), "p_late")
	want["p_late"] = true
	wait()
}
