package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
)

// tryLease takes or renews a lease and checks that the answer names the
// holder.
func tryLease(t *testing.T, s destinations.Store, id, owner string, ttl time.Duration) (*destinations.Lease, bool) {
	t.Helper()
	l, held, err := s.TryLease(context.Background(), id, owner, ttl)
	if err != nil {
		t.Fatalf("TryLease(%s, %s): %v", id, owner, err)
	}
	if l == nil || l.Destination != id || (held && l.Owner != owner) || (!held && l.Owner == owner) {
		t.Fatalf("TryLease(%s, %s): %+v, held %v: the lease must name its holder", id, owner, l, held)
	}
	return l, held
}

// testLeaseFencing: one owner at a time; renewal keeps the epoch; a
// release or an expiry hands the lease on with a higher epoch; a cursor
// written under an older epoch is refused and changes nothing.
func testLeaseFencing(t *testing.T, s destinations.Store) {
	ctx := context.Background()
	const id = "dst_l"
	a, held := tryLease(t, s, id, "a", time.Minute)
	if !held || a.Epoch == 0 {
		t.Fatalf("a free lease: %+v held %v", a, held)
	}
	if b, held := tryLease(t, s, id, "b", time.Minute); held || b.Owner != "a" || b.Epoch != a.Epoch {
		t.Fatalf("b took a's lease: %+v", b)
	}
	if again, held := tryLease(t, s, id, "a", time.Minute); !held || again.Epoch != a.Epoch || again.Expires.Before(a.Expires) {
		t.Fatalf("a's renewal: %+v held %v, want epoch %d and a later expiry", again, held, a.Epoch)
	}
	if err := s.PutCursor(ctx, &destinations.Cursor{Destination: id, After: 5, Epoch: a.Epoch}); err != nil {
		t.Fatalf("the holder's cursor: %v", err)
	}
	// A release by another owner or for another epoch does nothing.
	for _, r := range []struct {
		owner string
		epoch uint64
	}{{"b", a.Epoch}, {"a", a.Epoch + 1}} {
		if err := s.ReleaseLease(ctx, id, r.owner, r.epoch); err != nil {
			t.Fatal(err)
		}
		if _, held := tryLease(t, s, id, "b", time.Minute); held {
			t.Fatalf("a release by %s at epoch %d freed a's lease", r.owner, r.epoch)
		}
	}
	if err := s.ReleaseLease(ctx, id, "a", a.Epoch); err != nil {
		t.Fatal(err)
	}
	b, held := tryLease(t, s, id, "b", time.Minute)
	if !held || b.Epoch <= a.Epoch {
		t.Fatalf("after a's release: %+v held %v, want b at an epoch above %d", b, held, a.Epoch)
	}
	err := s.PutCursor(ctx, &destinations.Cursor{Destination: id, After: 9, Epoch: a.Epoch})
	if graph.ErrorKind(err) != graph.KindConflict {
		t.Fatalf("a cursor under a lost lease: got %v, want a conflict", err)
	}
	if c, err := s.Cursor(ctx, id); err != nil || c.After != 5 {
		t.Fatalf("a fenced write moved the cursor: %+v, %v", c, err)
	}
	if err := s.PutCursor(ctx, &destinations.Cursor{Destination: id, After: 7, Epoch: b.Epoch}); err != nil {
		t.Fatalf("the new holder's cursor: %v", err)
	}
	// Never leased: a fenced write is refused, an unfenced one is not.
	if err := s.PutCursor(ctx, &destinations.Cursor{Destination: "dst_free", After: 1, Epoch: 1}); graph.ErrorKind(err) != graph.KindConflict {
		t.Fatalf("a fenced cursor of a destination never leased: got %v, want a conflict", err)
	}
	if err := s.PutCursor(ctx, &destinations.Cursor{Destination: "dst_free", After: 1}); err != nil {
		t.Fatal(err)
	}
	// An expired lease passes on without a release.
	short, _ := tryLease(t, s, "dst_s", "a", time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if next, held := tryLease(t, s, "dst_s", "b", time.Minute); !held || next.Epoch != short.Epoch+1 {
		t.Fatalf("an expired lease: %+v held %v, want b at epoch %d", next, held, short.Epoch+1)
	}
}

// testLeaseRace: owners racing for a free and then a released lease:
// exactly one wins each round, and the epoch grows by one per hand-over.
func testLeaseRace(t *testing.T, s destinations.Store) {
	const id, owners = "dst_r", 6
	var epoch uint64
	for round := range 3 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []*destinations.Lease
		for i := range owners {
			owner := fmt.Sprintf("o%d_%d", round, i)
			wg.Go(func() {
				l, held, err := s.TryLease(context.Background(), id, owner, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if held {
					mu.Lock()
					winners = append(winners, l)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d owners hold the lease: %v", round, len(winners), winners)
		}
		if winners[0].Epoch != epoch+1 {
			t.Fatalf("round %d: epoch %d, want %d", round, winners[0].Epoch, epoch+1)
		}
		epoch = winners[0].Epoch
		if err := s.ReleaseLease(context.Background(), id, winners[0].Owner, epoch); err != nil {
			t.Fatal(err)
		}
	}
}
