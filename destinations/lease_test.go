package destinations_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
)

// cutStore is a process's view of the store whose lease calls can be cut
// off (a process paused or partitioned from the database): its other
// writes still go through, so its cursor writes meet the fence.
type cutStore struct {
	destinations.Store
	cut   atomic.Bool
	holds atomic.Bool // the last lease call held the lease
}

var errCut = errors.New("cut off from the database")

func (c *cutStore) TryLease(ctx context.Context, id, owner string, ttl time.Duration) (*destinations.Lease, bool, error) {
	if c.cut.Load() {
		return nil, false, errCut
	}
	l, held, err := c.Store.TryLease(ctx, id, owner, ttl)
	c.holds.Store(held && err == nil)
	return l, held, err
}

func (c *cutStore) ReleaseLease(ctx context.Context, id, owner string, epoch uint64) error {
	if c.cut.Load() {
		return errCut
	}
	return c.Store.ReleaseLease(ctx, id, owner, epoch)
}

// countByID counts the requests per webhook-id.
func countByID(rs []received) map[string]int {
	n := map[string]int{}
	for _, r := range rs {
		n[r.id]++
	}
	return n
}

// TestLeaseOneManagerDelivers: two managers (two serve processes) on one
// store deliver each record once, not once each; when the holder is cut
// off from the store without releasing its lease, the other takes over
// after the lease expires and every record still arrives, duplicates only
// under their webhook-id, and the cursor reaches the end and stays there
// (the cut-off holder's late cursor writes are fenced). Then a holder
// that stops hands over at once.
func TestLeaseOneManagerDelivers(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			store := graphtest.As[destinations.Backend](t, b.Open(t)).Destinations()
			fd := &feed{}
			const ttl = 400 * time.Millisecond
			views := []*cutStore{{Store: store}, {Store: store}}
			var ms []*destinations.Manager
			var stops []func()
			for _, v := range views {
				m, stop := startManager(t, v, fd, func(o *destinations.Options) { o.LeaseTTL = ttl })
				ms, stops = append(ms, m), append(stops, stop)
			}
			r := newReceiver(t, ok)
			d, secret, err := ms[0].Create(context.Background(), "shared", r.srv.URL+"/hook", []string{"vip"})
			if err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			r.secret = secret
			r.mu.Unlock()
			cursorAt := func(want uint64) func() bool {
				return func() bool { c, err := store.Cursor(context.Background(), d.ID); return err == nil && c.After == want }
			}
			add := func(n int) {
				for i := range n {
					fd.add("vip", "p"+string(rune('a'+i%26)), segments.Entered)
				}
				for _, m := range ms {
					m.Wake()
				}
			}

			add(30)
			eventually(t, "30 deliveries", cursorAt(30))
			for id, n := range countByID(r.requests()) {
				if n != 1 {
					t.Fatalf("two managers on one store: %s delivered %d times", id, n)
				}
			}
			if views[0].holds.Load() == views[1].holds.Load() {
				t.Fatalf("both or neither manager holds the lease (%v)", views[0].holds.Load())
			}
			holder, other := 0, 1
			if views[1].holds.Load() {
				holder, other = 1, 0
			}

			views[holder].cut.Store(true)
			cutAt := time.Now()
			add(30)
			eventually(t, "the other manager taking over", views[other].holds.Load)
			t.Logf("%s: taken over %v after the holder was cut off (lease %v)", b.Name, time.Since(cutAt).Round(time.Millisecond), ttl)
			eventually(t, "60 deliveries", cursorAt(60))
			ids := countByID(r.requests())
			if len(ids) != 60 {
				t.Fatalf("%d distinct messages delivered, want 60", len(ids))
			}
			dups := 0
			for _, n := range ids {
				dups += n - 1
			}
			t.Logf("%s: %d duplicates (same webhook-id) around the takeover", b.Name, dups)

			// The cut-off manager stops (its process ends); the survivor
			// delivers on, and the cursor never moves back.
			stops[holder]()
			add(10)
			eventually(t, "70 deliveries", cursorAt(70))
			if c, _ := store.Cursor(context.Background(), d.ID); c.After != 70 {
				t.Fatalf("cursor %d after 70 deliveries", c.After)
			}

			// A holder that stops releases its lease: a new manager takes
			// over at once rather than after the lease.
			views[holder].cut.Store(false)
			third := &cutStore{Store: store}
			m3, _ := startManager(t, third, fd, func(o *destinations.Options) { o.LeaseTTL = time.Hour })
			stops[other]()
			add(5)
			m3.Wake()
			eventually(t, "75 deliveries by a third manager", cursorAt(75))
		})
	}
}
