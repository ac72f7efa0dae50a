package destinations

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

// MaxBatchSize bounds Destination.BatchSize.
const MaxBatchSize = 100

// TypeBatch is the type of a request carrying several messages.
const TypeBatch = "batch"

// Batches reports whether the destination sends several records per
// request: a webhook's batch message, or a forwarder's Segment batch call
// carrying several changes' messages.
func (d *Destination) Batches() bool { return d.BatchSize > 1 }

// SetBatchSize sets how many records a request carries at most (1: one
// per request, as by default). A batch being retried is sent whole again
// first.
func (m *Manager) SetBatchSize(ctx context.Context, id string, size int) (*Destination, error) {
	if size < 1 || size > MaxBatchSize {
		return nil, graph.FieldErrorf("batchSize", "a batch size is 1 to %d, not %d", MaxBatchSize, size)
	}
	return m.update(ctx, id, func(d *Destination) { d.BatchSize = size })
}

// BatchID is a batch's webhook-id: it names the destination and the
// batch's first and last sequences, which are stored before the first
// attempt, so every retry and every send after a restart keeps it.
func BatchID(destination string, first, last uint64) string {
	return fmt.Sprintf("msg_%s_%d_%d", destination, first, last)
}

// BatchPayload is the body of a batch: {"type": "batch", "timestamp":
// the newest change's time, "data": [each record's message, as sent
// alone]}. It is the same on every attempt.
func BatchPayload(recs []*segments.ChangeRecord) ([]byte, error) {
	return batchPayload(recs, func(*segments.ChangeRecord) []Identifier { return nil })
}

// batchPayload is BatchPayload with each message's identifiers (the
// destination's policy, or those sent before).
func batchPayload(recs []*segments.ChangeRecord, ids func(*segments.ChangeRecord) []Identifier) ([]byte, error) {
	data := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		body, err := payload(r, ids(r))
		if err != nil {
			return nil, err
		}
		data[i] = body
	}
	return json.Marshal(envelope{Type: TypeBatch, Timestamp: recs[len(recs)-1].Time.UTC(), Data: data})
}

// batch is the records a worker gathers into one request.
type batch struct {
	recs []*segments.ChangeRecord
	size int
	// head is the retry state of this batch when it is being retried, and
	// head.Last the batch's stored end.
	head *Head
}

// newBatch starts a batch at r, the first wanted record after the cursor:
// a retry of the batch stored in the cursor's head, or a new one.
func newBatch(d *Destination, c *Cursor, r *segments.ChangeRecord) *batch {
	b := &batch{recs: []*segments.ChangeRecord{r}, size: d.BatchSize}
	if c.Head != nil && c.Head.Sequence == r.Sequence && c.Head.Last != 0 {
		b.head = c.Head
	}
	return b
}

// ends reports that r does not belong to the batch: it is full, or r lies
// beyond the end of the batch being retried.
func (b *batch) ends(r *segments.ChangeRecord) bool {
	return len(b.recs) >= b.size || (b.head != nil && r.Sequence > b.head.Last)
}

// flush sends the batch, signed once, and applies the answer to the whole
// batch as deliver's to one record: delivered, it moves the cursor past
// it; failed, it is retried whole (or disabled on 410, or each record
// dead-lettered after the schedule). It returns the wait before the
// retry (0: go on; -1: disabled).
func (w *worker) flush(ctx context.Context, d *Destination, c *Cursor, b *batch, st *batchState) (time.Duration, error) {
	o := w.m.o
	first, last := b.recs[0], b.recs[len(b.recs)-1]
	// Records skipped while gathering may have moved the cursor beyond
	// the batch's start in memory: it stays before the batch until the
	// batch is settled.
	skipped := c.After
	c.After = first.Sequence - 1
	if b.head == nil {
		b.head = &Head{Sequence: first.Sequence, Last: last.Sequence, FirstTryAt: o.Now()}
		c.Head = b.head
		if err := o.Store.PutCursor(ctx, c); err != nil {
			return 0, err
		}
	}
	c.Head = b.head
	now := o.Now()
	id := BatchID(d.ID, first.Sequence, b.head.Last)
	res, sent, err := w.m.sendBatch(ctx, d, b.recs, st, id, now)
	if err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, ctx.Err() // stopping: the batch stays pending
	}
	if len(sent) > 0 {
		w.m.logAttempt(ctx, &Delivery{Destination: d.ID, Sequence: first.Sequence, Type: TypeBatch, WebhookID: id, Attempt: b.head.Attempts + 1},
			res, last.Time)
	}
	if len(sent) == 0 || res.OK() {
		for _, r := range sent {
			if err := w.m.recordSent(ctx, d, r, st); err != nil {
				return 0, err
			}
		}
		c.After, c.Head = max(skipped, last.Sequence), nil
		c.Delivered += int64(len(sent))
		c.Skipped += int64(len(b.recs) - len(sent))
		if len(sent) > 0 {
			c.LastSuccessAt = o.Now()
		}
		return 0, o.Store.PutCursor(ctx, c)
	}
	next, err := w.failed(ctx, c, first, res)
	if err != nil || next < 0 || c.Head != nil {
		return next, err
	}
	// The schedule ran out: failed dead-lettered the first record; the
	// others follow it.
	for _, r := range b.recs[1:] {
		dl := &DeadLetter{Destination: c.Destination, Record: *r, Attempts: b.head.Attempts, LastStatus: res.Status, LastError: res.Err, At: now}
		if err := o.Store.PutDeadLetter(ctx, dl); err != nil {
			return 0, err
		}
		c.DeadLettered++
	}
	c.After = max(skipped, last.Sequence)
	return 0, o.Store.PutCursor(ctx, c)
}

// sendBatch sends a batch's records in one request the way the
// destination's kind wants, and returns the answer and the records sent:
// a webhook's every record, signed once under id; a forwarder's those it
// can address (none: no request was made).
func (m *Manager) sendBatch(ctx context.Context, d *Destination, recs []*segments.ChangeRecord, st *batchState, id string, now time.Time) (Result, []*segments.ChangeRecord, error) {
	if d.Kind == KindSegment {
		return m.forwardRecords(ctx, d, recs, st, now, func(r *segments.ChangeRecord) string { return MessageID(d.ID, r.Sequence) })
	}
	keys, err := m.signingKeys(d, now)
	if err != nil {
		return Result{}, nil, err
	}
	body, err := batchPayload(recs, func(r *segments.ChangeRecord) []Identifier { return st.identifiers(d, r) })
	if err != nil {
		return Result{}, nil, err
	}
	return m.o.Client.Send(ctx, d.URL, keys, Message{ID: id, At: now, Body: body}), recs, nil
}
