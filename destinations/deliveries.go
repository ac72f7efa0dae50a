package destinations

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/segments"
)

// Delivery is one attempt to deliver a message, in the destination's
// bounded log of recent attempts.
type Delivery struct {
	Destination string `json:"destination"`
	// N is the entry's place in the destination's log, from 1 (given by
	// AppendDelivery): the log pages by it.
	N uint64 `json:"n"`
	// Sequence is the change record's (a resync's: the newest record when
	// it started).
	Sequence  uint64        `json:"sequence,omitempty"`
	Type      string        `json:"type"`
	WebhookID string        `json:"webhookId"`
	Status    int           `json:"status,omitempty"` // 0: no answer
	Error     string        `json:"error,omitempty"`
	Attempt   int           `json:"attempt"`
	Duration  time.Duration `json:"duration"`
	At        time.Time     `json:"at"`
	// Job is the job that sent it, if one did.
	Job string `json:"job,omitempty"`
}

// DeliveryLogSize is how many attempts a destination's log keeps.
const DeliveryLogSize = 1000

// Deliveries pages through a destination's recent attempts, newest first:
// those before the entry before (0: from the newest).
func (m *Manager) Deliveries(ctx context.Context, id string, before uint64, limit int) ([]*Delivery, error) {
	if _, err := m.o.Store.Destination(ctx, id); err != nil {
		return nil, err
	}
	ds, err := m.o.Store.Deliveries(ctx, id, before, limit)
	if err != nil {
		return nil, fmt.Errorf("destinations: deliveries: %w", err)
	}
	return ds, nil
}

// Observer is told of deliveries and of destinations disabled for failing
// too long (the server's Prometheus metrics).
type Observer interface {
	// Delivered: a change record reached the receiver (2xx), latency after
	// it was recorded.
	Delivered(destination string, latency time.Duration)
	// DisabledForFailing: the destination was disabled, its head record
	// having failed for longer than Options.DisableAfter.
	DisabledForFailing(destination string)
}

// SetObserver sets the observer of deliveries (nil: none).
func (m *Manager) SetObserver(o Observer) { m.observer.Store(&o) }

func (m *Manager) observe() Observer {
	if o := m.observer.Load(); o != nil {
		return *o
	}
	return nil
}

// logRecordAttempt logs an attempt to deliver a change record by the
// worker: the attempt number is the head's next.
func (w *worker) logRecordAttempt(ctx context.Context, d *Destination, c *Cursor, r *segments.ChangeRecord, res Result) {
	<-w.logRecordAttemptAsync(ctx, d, c, r, res)
}

// logRecordAttemptAsync is logRecordAttempt in a goroutine: the returned
// channel is closed once the entry is written (or its failure logged).
func (w *worker) logRecordAttemptAsync(ctx context.Context, d *Destination, c *Cursor, r *segments.ChangeRecord, res Result) <-chan struct{} {
	attempt := 1
	if c.Head != nil && c.Head.Sequence == r.Sequence {
		attempt = c.Head.Attempts + 1
	}
	dl := &Delivery{Destination: d.ID, Sequence: r.Sequence, Type: MessageType(r), WebhookID: MessageID(d.ID, r.Sequence), Attempt: attempt}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.m.logAttempt(ctx, dl, res, r.Time)
	}()
	return done
}

// logAttempt completes an attempt with its answer and adds it to the log.
// The log is for people: a failure to write it is logged, not returned,
// so it never holds a delivery back. recorded is the record's time, for
// the latency of a success (zero: not a change record's first send).
func (m *Manager) logAttempt(ctx context.Context, dl *Delivery, res Result, recorded time.Time) {
	now := m.o.Now()
	dl.Status, dl.Error, dl.Duration, dl.At = res.Status, res.Err, res.Duration, now
	if err := m.o.Store.AppendDelivery(ctx, dl, DeliveryLogSize); err != nil && ctx.Err() == nil {
		m.o.Log.Error("destinations: delivery log", "destination", dl.Destination, "err", err)
	}
	if o := m.observe(); o != nil && res.OK() && !recorded.IsZero() {
		o.Delivered(dl.Destination, now.Sub(recorded))
	}
}

// DefaultDisableAfter is how long a destination's head record may keep
// failing before the destination is disabled.
const DefaultDisableAfter = 72 * time.Hour

// disableIfFailingTooLong disables the destination when its head record
// has failed continuously for longer than Options.DisableAfter (default
// DefaultDisableAfter; negative: never), with a log event and the
// observer told. It reports whether it did.
func (w *worker) disableIfFailingTooLong(ctx context.Context, c *Cursor, now time.Time) (bool, error) {
	if c.Head == nil || !w.failingTooLong(c.Head.FirstTryAt, now) {
		return false, nil
	}
	reason := fmt.Sprintf("failing since %s (record %d, %d attempts): longer than %s",
		c.Head.FirstTryAt.UTC().Format(time.RFC3339), c.Head.Sequence, c.Head.Attempts, w.disableAfter())
	return true, w.disableForFailing(ctx, c, reason, now, "sequence", c.Head.Sequence, "since", c.Head.FirstTryAt, "attempts", c.Head.Attempts)
}

func (w *worker) disableAfter() time.Duration { return cmp.Or(w.m.o.DisableAfter, DefaultDisableAfter) }

// failingTooLong reports a send failing continuously since since for
// longer than Options.DisableAfter (never when it is negative).
func (w *worker) failingTooLong(since, now time.Time) bool {
	limit := w.disableAfter()
	return limit >= 0 && now.Sub(since) > limit
}

// disableForFailing disables the destination, failing for too long (a
// change record or a pending request: the reason says which), with a
// log event (attrs added) and the observer told. The cursor is written
// first: its retry state and counters are durable with the decision.
func (w *worker) disableForFailing(ctx context.Context, c *Cursor, reason string, now time.Time, attrs ...any) error {
	if err := w.m.o.Store.PutCursor(ctx, c); err != nil {
		return err
	}
	if _, err := w.m.o.Store.UpdateDestination(ctx, c.Destination, func(d *Destination) error {
		d.Enabled, d.DisabledReason, d.UpdatedAt = false, reason, now
		return nil
	}); err != nil {
		return err
	}
	w.log.Warn("destinations: disabled: failing for too long", append([]any{"reason", reason, "limit", w.disableAfter()}, attrs...)...)
	if o := w.m.observe(); o != nil {
		o.DisabledForFailing(c.Destination)
	}
	return nil
}

// disableGone disables the destination whose receiver answered 410 Gone
// (to a change record or a pending request), the cursor written first.
func (w *worker) disableGone(ctx context.Context, c *Cursor, now time.Time) error {
	if err := w.m.o.Store.PutCursor(ctx, c); err != nil {
		return err
	}
	_, err := w.m.o.Store.UpdateDestination(ctx, c.Destination, func(d *Destination) error {
		d.Enabled, d.DisabledReason, d.UpdatedAt = false, "the receiver answered 410 Gone", now
		return nil
	})
	w.log.Warn("destinations: disabled: the receiver answered 410 Gone")
	return err
}
