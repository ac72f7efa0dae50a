package destinations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Lease says which process runs a destination's worker: several `serve
// --segments` processes on one store each run a Manager, and only the
// holder of a destination's lease delivers its records, so each is sent
// once, not once per process.
type Lease struct {
	Destination string    `json:"destination"`
	Owner       string    `json:"owner"`
	Epoch       uint64    `json:"epoch"`
	Expires     time.Time `json:"expires"`
}

// NextLease is the lease-taking rule every backend applies, under its own
// lock and with its own clock: owner takes a lease that is free, expired
// or already its own (a renewal), for ttl from now. Epoch, the fencing
// token, grows each time the lease passes to another owner, so a cursor
// written under an older epoch is refused (PutCursor). held is false, and
// cur returned unchanged, when another owner holds it.
func NextLease(cur *Lease, destination, owner string, now time.Time, ttl time.Duration) (next *Lease, held bool) {
	switch {
	case cur == nil:
		return &Lease{Destination: destination, Owner: owner, Epoch: 1, Expires: now.Add(ttl)}, true
	case cur.Owner == owner:
		return &Lease{Destination: destination, Owner: owner, Epoch: cur.Epoch, Expires: now.Add(ttl)}, true
	case !now.Before(cur.Expires):
		return &Lease{Destination: destination, Owner: owner, Epoch: cur.Epoch + 1, Expires: now.Add(ttl)}, true
	}
	return cur, false
}

// Fenced checks a cursor write against the destination's current lease
// (nil: never leased): a cursor carrying an epoch is written only while
// that epoch is the lease's, so a process that lost its lease (paused,
// partitioned, slow) cannot move the cursor its successor now owns. A
// cursor without an epoch (written outside a worker) is not fenced.
func Fenced(c *Cursor, cur *Lease) error {
	if c.Epoch == 0 || (cur != nil && cur.Epoch == c.Epoch) {
		return nil
	}
	held := uint64(0)
	if cur != nil {
		held = cur.Epoch
	}
	return graph.Errorf(graph.KindConflict, "destination %s: the cursor was written under lease epoch %d, the lease is at %d: another process delivers it now",
		c.Destination, c.Epoch, held)
}

// DefaultLeaseTTL is how long a lease lasts unless renewed: a process that
// dies is replaced within about this long. Workers renew at a third of it.
const DefaultLeaseTTL = 5 * time.Second

// newOwner names this Manager as a lease owner: host, process and a
// random part (two Managers in one process are two owners).
func newOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// lead runs the worker's deliveries while this Manager holds the
// destination's lease, and stands by otherwise, trying to take it every
// fifth of its time to live (at most a second, so that a lease released
// by a process stopping passes on at once): a holder that dies is
// replaced within about 1.2 leases. A renewal goroutine keeps the lease while deliveries run
// (a send to a hanging receiver may outlast a lease) and stops them when
// it is lost; a cursor write after the loss is refused anyway (Fenced).
func (w *worker) lead(ctx context.Context) {
	o := w.m.o
	for ctx.Err() == nil {
		l, ok, err := o.Store.TryLease(ctx, w.id, w.m.owner, o.LeaseTTL)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.Error("destinations: lease", "err", err)
		case ok:
			w.log.Info("destinations: lease taken", "epoch", l.Epoch)
			w.epoch = l.Epoch
			lctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); w.keep(lctx, cancel, l.Epoch) }()
			w.run(lctx)
			cancel()
			<-done
			w.release(l.Epoch)
			w.epoch = 0
			continue
		}
		t := time.NewTimer(min(o.LeaseTTL/5, time.Second))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// keep renews the lease every third of its time to live until ctx ends,
// and cancels the deliveries when another owner has it, or when renewals
// have failed until it would have expired.
func (w *worker) keep(ctx context.Context, cancel context.CancelFunc, epoch uint64) {
	o := w.m.o
	t := time.NewTicker(o.LeaseTTL / 3)
	defer t.Stop()
	held := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l, ok, err := o.Store.TryLease(ctx, w.id, w.m.owner, o.LeaseTTL)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.log.Warn("destinations: renewing the lease", "err", err)
			if time.Since(held) < o.LeaseTTL {
				continue
			}
		case ok && l.Epoch == epoch:
			held = time.Now()
			continue
		default:
			w.log.Info("destinations: lease lost", "holder", l.Owner, "epoch", l.Epoch)
		}
		cancel()
		return
	}
}

// release gives the lease up when the worker stops, so that another
// process takes over at once rather than when the lease expires.
func (w *worker) release(epoch uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.m.o.Store.ReleaseLease(ctx, w.id, w.m.owner, epoch); err != nil {
		w.log.Warn("destinations: releasing the lease", "err", err)
	}
}

// String describes the lease for logs and test failures.
func (l *Lease) String() string {
	return fmt.Sprintf("%s held by %s at epoch %d until %s", l.Destination, l.Owner, l.Epoch, l.Expires.Format(time.RFC3339Nano))
}
