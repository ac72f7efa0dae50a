package destinations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	"github.com/idgraph/idgraph/suppression"
)

// DefaultSchedule is the wait before each retry of a failed delivery; a
// record still failing after the last is dead-lettered. It spans about
// three days (75 h 35 min), so a receiver down over a weekend loses
// nothing.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Options configure a Manager.
type Options struct {
	Store Store
	// Segments is where the change records are read, and connected
	// segments checked.
	Segments segments.Store
	Sealer   *Sealer
	Client   *Client
	// Profiles is where forwarders (KindSegment) look up the identifiers
	// a profile is addressed by; without it they cannot be created.
	Profiles graph.Reader
	// Sent keeps what each destination was sent about each profile
	// (sent.go); without it there are no withdrawals, and erasures reach
	// only the destinations connected to the person's segments.
	Sent SentStore
	// Schedule is the wait before each retry (default DefaultSchedule);
	// Jitter spreads each wait by ± that share (default 0.2; negative: 0).
	Schedule []time.Duration
	Jitter   float64
	// Poll is how often a caught-up worker looks for new records, besides
	// being woken (default 250 ms).
	Poll time.Duration
	// Batch is how many change records a worker reads at once (default 500).
	Batch int
	// DisableAfter is how long a destination's head record may fail
	// before the destination is disabled (default DefaultDisableAfter;
	// negative: never).
	DisableAfter time.Duration
	// LeaseTTL is how long a destination's lease lasts unless renewed
	// (default DefaultLeaseTTL): another process takes over a dead one's
	// destinations within about 1.2 of it.
	LeaseTTL time.Duration
	Now      func() time.Time
	Log      *slog.Logger
	// Consent is the one consent check (consent.Checker.CheckID), asked
	// before a profile's entry goes to a destination with a purpose;
	// Purposes are the configured purposes a destination may name. Both
	// nil: destinations take no purpose.
	Consent  func(ctx context.Context, profileID, purpose string, at time.Time) (consent.Decision, error)
	Purposes *consent.Purposes
	// ConsentSweep is how often the people destinations hold are checked
	// for consent that lapsed (an expiry passed) with no new choice to
	// trigger a withdrawal (SweepConsent); 0: never.
	ConsentSweep time.Duration
	// Suppression, when set, is checked before every attempt of a
	// non-exit message, against the profile's identifiers then (with
	// Profiles); nil: nothing is suppressed.
	Suppression *suppression.Lists
	// RequirePurpose withholds every entry of a destination that names no
	// consent purpose (reason no_purpose): a destination nobody mapped to
	// a purpose receives nobody, not everyone.
	RequirePurpose bool
}

// Manager owns the destinations and runs one delivery worker for each,
// so that a slow or dead receiver only ever delays its own deliveries.
type Manager struct {
	o    Options
	wake chan struct{}
	// owner names this Manager in destinations' leases.
	owner string

	mu       sync.Mutex
	workers  map[string]*worker
	observer atomic.Pointer[Observer]
}

// NewManager checks the options and fills in defaults.
func NewManager(o Options) (*Manager, error) {
	if o.Store == nil || o.Segments == nil || o.Sealer == nil || o.Client == nil {
		return nil, fmt.Errorf("destinations: a manager needs a store, the segments store, a sealer and a client")
	}
	if o.Suppression != nil && o.Profiles == nil {
		return nil, fmt.Errorf("destinations: checking suppression lists needs the profile store (Options.Profiles)")
	}
	if o.Schedule == nil {
		o.Schedule = DefaultSchedule
	}
	for i, d := range o.Schedule {
		if d < 0 {
			return nil, fmt.Errorf("destinations: retry %d waits %v: a wait is not negative", i+1, d)
		}
	}
	if o.Jitter == 0 {
		o.Jitter = 0.2
	}
	o.Jitter = min(max(o.Jitter, 0), 1)
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC() }
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Manager{o: o, wake: make(chan struct{}, 1), owner: newOwner(), workers: map[string]*worker{}}, nil
}

// Create stores a new enabled webhook destination connected to the
// segments and returns it with its signing secret, which is shown this
// once.
func (m *Manager) Create(ctx context.Context, name, rawURL string, segmentKeys []string) (*Destination, string, error) {
	secret := NewSecret()
	d, err := m.create(ctx, name, rawURL, segmentKeys, func(d *Destination) { d.SealedSecret = m.o.Sealer.Seal(d.ID, secret) })
	if err != nil {
		return nil, "", err
	}
	return d, secret, nil
}

// create checks and stores a new enabled destination, which fill gives
// its kind and secret.
func (m *Manager) create(ctx context.Context, name, rawURL string, segmentKeys []string, fill func(*Destination)) (*Destination, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if _, err := m.o.Client.opts.CheckURL(rawURL); err != nil {
		return nil, err
	}
	now := m.o.Now()
	d := &Destination{ID: newID(), Name: name, URL: rawURL, Enabled: true, CreatedAt: now, UpdatedAt: now, Segments: map[string]time.Time{}}
	for _, k := range segmentKeys {
		if err := m.checkSegment(ctx, k); err != nil {
			return nil, err
		}
		d.Segments[k] = now
	}
	fill(d)
	if err := m.o.Store.CreateDestination(ctx, d); err != nil {
		return nil, fmt.Errorf("destinations: create: %w", err)
	}
	m.Wake()
	return d, nil
}

// MaxRotationGrace bounds how long a replaced secret keeps signing.
const MaxRotationGrace = 7 * 24 * time.Hour

// RotateSecret gives a destination a new signing secret, shown this once.
// For grace after it, messages carry signatures under both the old and
// the new secret, so the receiver may switch at any time in between; a
// grace of 0 drops the old secret at once.
func (m *Manager) RotateSecret(ctx context.Context, id string, grace time.Duration) (*Destination, string, error) {
	if grace < 0 || grace > MaxRotationGrace {
		return nil, "", graph.FieldErrorf("grace", "a rotation's grace period is 0 to %s, not %s", MaxRotationGrace, grace)
	}
	if cur, err := m.o.Store.Destination(ctx, id); err != nil {
		return nil, "", err
	} else if cur.Kind == KindSegment {
		return nil, "", graph.FieldErrorf("destination", "a forwarder sends with its write key and signs nothing: create it again to change the key")
	}
	secret := NewSecret()
	d, err := m.update(ctx, id, func(d *Destination) {
		d.PreviousSealedSecret, d.PreviousUntil = nil, time.Time{}
		if grace > 0 {
			d.PreviousSealedSecret, d.PreviousUntil = d.SealedSecret, m.o.Now().Add(grace)
		}
		d.SealedSecret = m.o.Sealer.Seal(d.ID, secret)
	})
	if err != nil {
		return nil, "", err
	}
	return d, secret, nil
}

// Redeliver sends a dead-lettered record again now, outside the queue.
// Delivered, it is no longer a dead letter; refused again, the dead letter
// keeps the new answer.
func (m *Manager) Redeliver(ctx context.Context, id string, sequence uint64) (Result, error) {
	d, err := m.o.Store.Destination(ctx, id)
	if err != nil {
		return Result{}, err
	}
	dls, err := m.o.Store.DeadLetters(ctx, id, sequence-1, 1)
	if err != nil {
		return Result{}, fmt.Errorf("destinations: redeliver: %w", err)
	}
	if sequence == 0 || len(dls) == 0 || dls[0].Record.Sequence != sequence {
		return Result{}, graph.Errorf(graph.KindNotFound, "destination %s has no dead letter %d", id, sequence)
	}
	dl := dls[0]
	// A dead letter is checked as a delivery is: an entry of someone
	// suppressed or without consent now stays a dead letter, with why.
	if _, ok, err := m.suppressionOf(ctx, d, &dl.Record); err != nil {
		return Result{}, fmt.Errorf("destinations: redeliver: %w", err)
	} else if ok {
		return Result{Err: "not sent: the profile holds a suppressed identifier"}, nil
	}
	if m.consentGated(d) && carriesProfile(&dl.Record) {
		if reason, err := m.withheld(ctx, d, &dl.Record); err != nil {
			return Result{}, fmt.Errorf("destinations: redeliver: %w", err)
		} else if reason != "" {
			return Result{Err: "not sent: consent for " + d.Purpose + " is " + reason}, nil
		}
	}
	b, err := m.prefetch(ctx, d, []*segments.ChangeRecord{&dl.Record})
	if err != nil {
		return Result{}, fmt.Errorf("destinations: redeliver: %w", err)
	}
	res, sent, err := m.deliver(ctx, d, &dl.Record, b)
	if err == nil && sent {
		m.logAttempt(ctx, &Delivery{Destination: id, Sequence: sequence, Type: MessageType(&dl.Record),
			WebhookID: MessageID(id, sequence), Attempt: dl.Attempts + 1}, res, time.Time{})
	}
	switch {
	case err != nil:
		return Result{}, fmt.Errorf("destinations: redeliver: %w", err)
	case !sent:
		return Result{Err: "not sent: the profile has no user or anonymous ID now"}, nil
	case res.OK():
		if err := m.recordSent(ctx, d, &dl.Record, b); err != nil {
			return Result{}, err
		}
		return res, m.o.Store.DeleteDeadLetter(ctx, id, sequence)
	}
	dl.Attempts++
	dl.LastStatus, dl.LastError, dl.At = res.Status, res.Err, m.o.Now()
	return res, m.o.Store.PutDeadLetter(ctx, dl)
}

// Replay asks the destination's worker to send again every record it
// wants from sequence from on, in order, with their original webhook ids
// (a receiver that kept them drops them as duplicates); health's pending
// shows the progress. A replay never skips ahead: from beyond what was
// sent changes nothing.
func (m *Manager) Replay(ctx context.Context, id string, from uint64) (*Destination, error) {
	if from == 0 {
		return nil, graph.FieldErrorf("fromSequence", "sequences start at 1")
	}
	return m.update(ctx, id, func(d *Destination) { d.ReplayFrom = from })
}

// rewind applies a replay asked for (Destination.ReplayFrom) to the
// cursor, then clears the request unless another came meanwhile. A crash
// between the two replays again: at least once.
func (w *worker) rewind(ctx context.Context, d *Destination, c *Cursor) error {
	if to := d.ReplayFrom - 1; to < c.After {
		c.After, c.Head = to, nil
		if err := w.m.o.Store.PutCursor(ctx, c); err != nil {
			return err
		}
	}
	_, err := w.m.o.Store.UpdateDestination(ctx, d.ID, func(cur *Destination) error {
		if cur.ReplayFrom == d.ReplayFrom {
			cur.ReplayFrom = 0
		}
		return nil
	})
	return err
}

// deliver sends one change record the way the destination's kind wants;
// sent is false when it was not sent (a forwarder's profile that cannot
// be addressed).
func (m *Manager) deliver(ctx context.Context, d *Destination, r *segments.ChangeRecord, b *batchState) (res Result, sent bool, err error) {
	return m.sendAs(ctx, d, r, b, "")
}

// signingKeys opens the secrets a message to d is signed with at now: the
// current one, and the previous one during a rotation's grace period.
func (m *Manager) signingKeys(d *Destination, now time.Time) ([][]byte, error) {
	key, err := m.o.Sealer.Open(d.ID, d.SealedSecret)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{key}
	if d.PreviousSealedSecret != nil && now.Before(d.PreviousUntil) {
		prev, err := m.o.Sealer.Open(d.ID, d.PreviousSealedSecret)
		if err != nil {
			return nil, err
		}
		keys = append(keys, prev)
	}
	return keys, nil
}

// newID returns a destination id: "dst_" and 16 hex digits.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "dst_" + hex.EncodeToString(b)
}

// checkSegment refuses a key that names no saved segment.
func (m *Manager) checkSegment(ctx context.Context, key string) error {
	if err := segments.CheckKey(key); err != nil {
		return graph.FieldErrorf("segment", "%v", err)
	}
	if _, err := m.o.Segments.Definition(ctx, segments.Ref{Kind: lang.KindSegment, Key: key}); err != nil {
		if graph.ErrorKind(err) == graph.KindNotFound {
			return graph.FieldErrorf("segment", "no segment %q", key)
		}
		return err
	}
	return nil
}

// List returns every destination, oldest first.
func (m *Manager) List(ctx context.Context) ([]*Destination, error) {
	return m.o.Store.Destinations(ctx)
}

// Get returns one destination.
func (m *Manager) Get(ctx context.Context, id string) (*Destination, error) {
	return m.o.Store.Destination(ctx, id)
}

// Connect sends the segment's changes from now on to the destination.
func (m *Manager) Connect(ctx context.Context, id, segment string) (*Destination, error) {
	if err := m.checkSegment(ctx, segment); err != nil {
		return nil, err
	}
	return m.updateChecked(ctx, id, func(d *Destination) error {
		if err := refuseSharedKey(d, segment, d.Traits, "segment", "computed trait"); err != nil {
			return err
		}
		d.Segments = connectKey(d.Segments, segment, m.o.Now())
		return nil
	})
}

// refuseSharedKey refuses connecting key (field) to a forwarder that has
// it connected already as the other kind (conns): a segment and a
// computed trait of one key would both set traits.<key> at the receiver.
func refuseSharedKey(d *Destination, key string, conns map[string]time.Time, field, other string) error {
	if _, ok := conns[key]; ok && d.Kind == KindSegment {
		return graph.FieldErrorf(field, "forwarder %s has the %s %q connected: both would set traits.%s at the receiver; give them different keys", d.ID, other, key, key)
	}
	return nil
}

// Disconnect stops sending the segment's changes (those not yet sent
// are dropped).
func (m *Manager) Disconnect(ctx context.Context, id, segment string) (*Destination, error) {
	return m.update(ctx, id, func(d *Destination) { delete(d.Segments, segment) })
}

// SetEnabled starts or stops deliveries; a destination enabled again
// resumes where it stopped, the failed record first.
func (m *Manager) SetEnabled(ctx context.Context, id string, enabled bool) (*Destination, error) {
	return m.update(ctx, id, func(d *Destination) {
		d.Enabled = enabled
		d.DisabledReason = map[bool]string{true: "", false: "disabled by an admin"}[enabled]
	})
}

func (m *Manager) update(ctx context.Context, id string, fn func(*Destination)) (*Destination, error) {
	return m.updateChecked(ctx, id, func(d *Destination) error { fn(d); return nil })
}

// updateChecked is update with a change that may be refused, as the
// destination stored then says: nothing is written.
func (m *Manager) updateChecked(ctx context.Context, id string, fn func(*Destination) error) (*Destination, error) {
	d, err := m.o.Store.UpdateDestination(ctx, id, func(d *Destination) error {
		if err := fn(d); err != nil {
			return err
		}
		d.UpdatedAt = m.o.Now()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("destinations: update %s: %w", id, err)
	}
	m.Wake()
	return d, nil
}

// SetPurpose sets the consent purpose of a destination's deliveries (""
// for none).
func (m *Manager) SetPurpose(ctx context.Context, id, purpose string) (*Destination, error) {
	if purpose != "" {
		if m.o.Consent == nil || m.o.Purposes == nil {
			return nil, graph.FieldErrorf("purpose", "this server checks no consent")
		}
		if err := m.o.Purposes.Require(purpose); err != nil {
			return nil, fmt.Errorf("destinations: set purpose: %w", err)
		}
	}
	return m.update(ctx, id, func(d *Destination) { d.Purpose = purpose })
}

// Cursor returns a destination's delivery state.
func (m *Manager) Cursor(ctx context.Context, id string) (*Cursor, error) {
	return m.o.Store.Cursor(ctx, id)
}

// DeadLetters pages through a destination's dead letters by sequence.
func (m *Manager) DeadLetters(ctx context.Context, id string, after uint64, limit int) ([]*DeadLetter, error) {
	return m.o.Store.DeadLetters(ctx, id, after, limit)
}

// Test sends a destination.ping to the destination now, outside its
// queue, and returns the answer.
func (m *Manager) Test(ctx context.Context, id string) (Result, error) {
	d, err := m.o.Store.Destination(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if d.Kind == KindSegment {
		// An empty batch: the API is reachable and takes the write key.
		writeKey, err := m.o.Sealer.OpenText(d.ID, d.SealedSecret)
		if err != nil {
			return Result{}, err
		}
		return m.o.Client.Forward(ctx, d.URL, writeKey, []byte(`{"batch":[]}`)), nil
	}
	now := m.o.Now()
	keys, err := m.signingKeys(d, now)
	if err != nil {
		return Result{}, err
	}
	body, err := json.Marshal(envelope{Type: TypePing, Timestamp: now, Data: map[string]string{"destination": d.ID}})
	if err != nil {
		return Result{}, err
	}
	return m.o.Client.Send(ctx, d.URL, keys, Message{ID: "ping_" + newID()[4:], At: now, Body: body}), nil
}

// Wake tells the workers that records may be waiting (they look every
// Poll anyway).
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		w.poke()
	}
}

// Run starts a worker for every destination, and for each new one, until
// ctx ends; it returns when every worker has stopped.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if m.o.ConsentSweep > 0 {
		wg.Go(func() { m.sweepConsent(ctx, m.o.ConsentSweep) })
	}
	t := time.NewTicker(4 * m.o.Poll)
	defer t.Stop()
	for {
		ds, err := m.o.Store.Destinations(ctx)
		if err != nil && ctx.Err() == nil {
			m.o.Log.Error("destinations: listing", "err", err)
		}
		m.mu.Lock()
		for _, d := range ds {
			if _, ok := m.workers[d.ID]; !ok {
				w := &worker{m: m, id: d.ID, wake: make(chan struct{}, 1), log: m.o.Log.With("destination", d.ID)}
				m.workers[d.ID] = w
				wg.Go(func() { w.lead(ctx) })
			}
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
	}
}

// Health is a destination's delivery health.
type Health struct {
	// Pending counts the change records after the cursor, up to
	// PendingLimit (PendingCapped: there are more): those not yet
	// delivered, dead-lettered, withheld or passed over as not wanted.
	// A running worker passes the records it does not want as it reads
	// them, so they wait only while it is held back (a retry, a job, a
	// disabled destination, no process running).
	Pending       int
	PendingCapped bool
	// OldestPending is the time of the change of the first record after
	// the cursor.
	OldestPending time.Time
	// PendingRequests counts the withdrawals, erasure notices and
	// catch-ups stored for the destination and not yet sent, up to
	// PendingRequestLimit (PendingRequestsCapped: there are more), and
	// OldestPendingRequest is when the oldest of those was asked.
	PendingRequests       int
	PendingRequestsCapped bool
	OldestPendingRequest  time.Time
	Cursor                Cursor
}

// SuccessRate is the share of attempts that succeeded (nil: none yet).
func (h Health) SuccessRate() *float64 {
	n := h.Cursor.Delivered + h.Cursor.FailedTries
	if n == 0 {
		return nil
	}
	r := float64(h.Cursor.Delivered) / float64(n)
	return &r
}

// PendingLimit bounds the Pending that Health reports.
const PendingLimit = 10000

// PendingRequestLimit bounds the PendingRequests that Health reports:
// each is a row read, and there are none unless requests wait.
const PendingRequestLimit = 1000

// Health reads a destination's cursor, the newest change record's
// sequence number and the first record after the cursor: three reads
// whatever the backlog (and the rows of its pending requests, none
// unless some wait), since a scrape of /metrics asks it of every
// destination. Sequence numbers have no gaps and records are never
// deleted, so the records after the cursor are the difference.
func (m *Manager) Health(ctx context.Context, d *Destination) (Health, error) {
	c, err := m.o.Store.Cursor(ctx, d.ID)
	if err != nil {
		return Health{}, err
	}
	h := Health{Cursor: *c}
	if m.o.Sent != nil {
		rows, err := m.o.Sent.PendingSent(ctx, d.ID, PendingRequestLimit+1)
		if err != nil {
			return Health{}, fmt.Errorf("destinations: health: %w", err)
		}
		h.PendingRequestsCapped = len(rows) > PendingRequestLimit
		rows = rows[:min(len(rows), PendingRequestLimit)]
		h.PendingRequests = len(rows)
		for _, s := range rows {
			if h.OldestPendingRequest.IsZero() || s.Pending.At.Before(h.OldestPendingRequest) {
				h.OldestPendingRequest = s.Pending.At
			}
		}
	}
	last, err := m.o.Segments.LastChange(ctx)
	if err != nil {
		return Health{}, fmt.Errorf("destinations: health: %w", err)
	}
	if last <= c.After {
		return h, nil
	}
	first, err := m.o.Segments.Changes(ctx, c.After, 1)
	if err != nil {
		return Health{}, fmt.Errorf("destinations: health: %w", err)
	}
	if len(first) > 0 {
		h.OldestPending = first[0].Time
	}
	h.Pending = int(min(last-c.After, PendingLimit))
	h.PendingCapped = last-c.After > PendingLimit
	return h, nil
}

// Message types (Standard Webhooks' type field).
const (
	TypeEntered = "segment.entered"
	TypeExited  = "segment.exited"
	// TypeErased is an exit because the person was erased: the receiver
	// deletes what it holds about them (data as segment.exited).
	TypeErased = "profile.erased"
	TypePing   = "destination.ping"
)

// envelope is the Standard Webhooks payload.
type envelope struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// SegmentChange is the data of segment.entered and segment.exited.
// Sequence grows with every change recorded, store-wide: a receiver
// keeps the highest it has applied per (segment, profile) and drops a
// message with a lower one (a retry that crossed a newer change).
type SegmentChange struct {
	Segment  string `json:"segment"`
	Version  int    `json:"version"`
	Profile  string `json:"profile"`
	Reason   string `json:"reason"`
	Sequence uint64 `json:"sequence"`
	// Identifiers are, for an entry, the profile's identifiers under the
	// destination's policy; for an exit, those the destination was sent
	// before. Absent when the destination has no policy and was sent none.
	Identifiers []Identifier `json:"identifiers,omitempty"`
}

// MessageType is a change record's message type.
func MessageType(c *segments.ChangeRecord) string {
	switch {
	case c.Reason == segments.ReasonErased && (c.Direction == segments.Exited || c.IsTrait()):
		return TypeErased
	case c.IsTrait():
		return TypeTraitChanged
	case c.Direction == segments.Exited:
		return TypeExited
	}
	return TypeEntered
}

// Payload returns the message body of a change record.
func Payload(c *segments.ChangeRecord) ([]byte, error) { return payload(c, nil) }

// payload is a change record's body carrying the identifiers.
func payload(c *segments.ChangeRecord, ids []Identifier) ([]byte, error) {
	if c.IsTrait() {
		return traitPayload(c)
	}
	return json.Marshal(envelope{Type: MessageType(c), Timestamp: c.Time.UTC(), Data: SegmentChange{
		Segment: c.Segment, Version: c.Version, Profile: c.Profile, Reason: c.Reason, Sequence: c.Sequence, Identifiers: ids}})
}

// MessageID is a record's webhook-id for a destination: the same on every
// attempt, so receivers can drop duplicates.
func MessageID(destination string, sequence uint64) string {
	return fmt.Sprintf("msg_%s_%d", destination, sequence)
}

// worker delivers one destination's records in sequence order: a record
// is sent only when every earlier wanted one is delivered or
// dead-lettered, so a profile's exit never overtakes its entry.
type worker struct {
	m    *Manager
	id   string
	wake chan struct{}
	log  *slog.Logger
	// epoch is the lease this worker delivers under (lead), written into
	// every cursor it stores so that the store fences it.
	epoch uint64
	// disabled is what the last step saw: while it holds, a step reads the
	// destination alone until it is enabled again, not a page of records
	// each poll.
	disabled bool
	// at is the running resync's computed values at its point in time
	// (traitsync.go).
	at *valuesAt
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) {
	for {
		wait, err := w.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.log.Error("destinations: delivery", "err", err)
			wait = max(wait, w.m.o.Poll)
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// step delivers what it can and returns how long to wait before the next
// step (0: go on at once).
func (w *worker) step(ctx context.Context) (time.Duration, error) {
	o := w.m.o
	if w.disabled {
		d, err := o.Store.Destination(ctx, w.id)
		if err != nil || !d.Enabled {
			return o.Poll, err
		}
		w.disabled = false
	}
	c, err := o.Store.Cursor(ctx, w.id)
	if err != nil {
		return o.Poll, err
	}
	c.Destination, c.Epoch = w.id, w.epoch
	// A record being retried is the first after the cursor: read only it,
	// not a page of records per attempt (a batch reads up to its end).
	limit := o.Batch
	if c.Head != nil && c.Head.Last == 0 && c.Head.Sequence > c.After {
		limit = 1
	}
	recs, err := o.Segments.Changes(ctx, c.After, limit)
	if err != nil {
		return o.Poll, err
	}
	// The destination is read once, after the records: a segment
	// connected before a record was written is then seen connected (read
	// before, the record would be skipped as not wanted). Each read is a
	// round trip on the path of every record (on Neo4j a few ms, far
	// more on a loaded server), so the step makes no other.
	d, err := o.Store.Destination(ctx, w.id)
	if err != nil {
		return o.Poll, err
	}
	if !d.Enabled {
		w.disabled = true
		return o.Poll, nil
	}
	if d.ReplayFrom != 0 {
		// The records were read from the cursor before it moved back:
		// the next step reads them again.
		return 0, w.rewind(ctx, d, c)
	}
	if wait, ran, err := w.runJob(ctx, d); ran || err != nil {
		return wait, err // a job holds the records back until it finishes
	}
	st, err := w.m.prefetch(ctx, d, recs)
	if err != nil {
		return o.Poll, err
	}
	start := c.After
	wait := time.Duration(0)
	if len(recs) < limit {
		wait = o.Poll
	}
	var b *batch // being gathered, when the destination sends batches
	for _, r := range recs {
		if b != nil && b.ends(r) {
			next, err := w.flush(ctx, d, c, b, st)
			if err != nil || next < 0 {
				return o.Poll, err
			}
			b, start = nil, c.After
			if next > 0 {
				wait = next
				break
			}
		}
		if !d.Wants(r) || st.coveredByErasure(d, r) {
			c.After = r.Sequence
			continue
		}
		if drop, err := w.suppressed(ctx, d, c, r); err != nil {
			return o.Poll, err
		} else if drop {
			continue
		}
		// Consent is asked before every attempt, retries included: a
		// revocation during retries stops the entry.
		if w.m.consentGated(d) && carriesProfile(r) {
			reason, err := w.withheld(ctx, d, r)
			if err != nil {
				return o.Poll, err
			}
			if reason != "" {
				if c.Withheld == nil {
					c.Withheld = map[string]int64{}
				}
				c.Withheld[reason]++
				c.After, c.Head = r.Sequence, nil
				// Every drop is logged with its reason, as a suppression is
				// (suppressed): the profile id only, no identifier.
				w.log.Info("destinations: withheld", "reason", reason, "purpose", d.Purpose, "sequence", r.Sequence, "profile", r.Profile)
				continue
			}
		}
		if b != nil {
			b.recs = append(b.recs, r)
			continue
		}
		if c.Head != nil && c.Head.Sequence != r.Sequence {
			c.Head = nil // a record given up on another way (disconnected and connected again)
		}
		if c.Head != nil {
			if due := c.Head.NextAt.Sub(o.Now()); due > 0 {
				wait = due
				break
			}
		}
		if d.Batches() {
			b = newBatch(d, c, r)
			continue
		}
		res, sent, err := w.m.deliver(ctx, d, r, st)
		if err != nil {
			return o.Poll, err
		}
		if !sent {
			c.After = r.Sequence
			c.Skipped++
			w.log.Info("destinations: not forwarded: no user or anonymous ID to address the profile by, or a merge exit its survivor covers", "sequence", r.Sequence, "profile", r.Profile)
			continue
		}
		if ctx.Err() != nil {
			return 0, nil // stopping: the record stays pending
		}
		if res.OK() {
			// The log entry and the sent state are independent writes,
			// made together so that the record waits for one commit, not
			// two in a row (on Neo4j each is a transaction); both land
			// before the cursor moves past the record.
			logged := w.logRecordAttemptAsync(ctx, d, c, r, res)
			err := w.m.recordSent(ctx, d, r, st)
			<-logged
			if err != nil {
				return o.Poll, err
			}
			c.After, c.Head = r.Sequence, nil
			c.Delivered++
			c.LastSuccessAt = o.Now()
			if err := o.Store.PutCursor(ctx, c); err != nil {
				return o.Poll, err
			}
			start = c.After
			continue
		}
		w.logRecordAttempt(ctx, d, c, r, res)
		next, err := w.failed(ctx, c, r, res)
		if err != nil {
			return o.Poll, err
		}
		start = c.After
		if next < 0 {
			return o.Poll, nil // disabled
		}
		if c.Head != nil {
			wait = next
			break
		}
	}
	if b != nil {
		next, err := w.flush(ctx, d, c, b, st)
		if err != nil || next < 0 {
			return o.Poll, err
		}
		start, wait = c.After, max(wait, next)
	}
	if c.After != start {
		if err := o.Store.PutCursor(ctx, c); err != nil {
			return o.Poll, err
		}
	}
	if c.Head == nil {
		retry, hold, err := w.drainPending(ctx, d, c)
		if err != nil || retry < 0 {
			return o.Poll, err
		}
		if hold {
			return max(wait, retry), nil
		}
		if retry > 0 && wait > 0 && retry < wait {
			// The next step is due at the earliest of what waits (0: at
			// once, more records are there): a pending request's retry
			// never holds the records back.
			wait = retry
		}
	}
	return wait, nil
}

// withheld asks the consent check whether the record's profile may enter
// the destination now: "" when it may, else the reason it is withheld. A
// destination with a purpose on a server without the check withholds
// everything (not_granted).
func (w *worker) withheld(ctx context.Context, d *Destination, r *segments.ChangeRecord) (string, error) {
	return w.m.withheld(ctx, d, r)
}

func (m *Manager) withheld(ctx context.Context, d *Destination, r *segments.ChangeRecord) (string, error) {
	o := m.o
	if d.Purpose == "" {
		return ReasonNoPurpose, nil // consentGated: purposes are required
	}
	if o.Consent == nil {
		return consent.ReasonNotGranted, nil
	}
	dec, err := o.Consent(ctx, r.Profile, d.Purpose, o.Now())
	if err != nil {
		return "", err
	}
	return dec.Reason, nil
}

// ReasonNoPurpose withholds an entry of a destination with no consent
// purpose where Options.RequirePurpose asks for one.
const ReasonNoPurpose = "no_purpose"

// consentGated reports whether the destination's entries ask the consent
// check: it names a purpose, or purposes are required (then one naming
// none is withheld everything).
func (m *Manager) consentGated(d *Destination) bool {
	return d.Purpose != "" || m.o.RequirePurpose
}

// failed records a failed attempt: a retry after the schedule's next wait
// (or the receiver's Retry-After when longer), a dead letter after the
// last, or the destination disabled on 410. It returns the wait, -1 when
// the destination was disabled.
func (w *worker) failed(ctx context.Context, c *Cursor, r *segments.ChangeRecord, res Result) (time.Duration, error) {
	o := w.m.o
	now := o.Now()
	h := c.Head
	// stored: the head was written before this attempt (a record's earlier
	// failure, or a batch before its first attempt), synced, so After is
	// durable and only the retry state changes now.
	stored := h != nil
	if h == nil {
		h = &Head{Sequence: r.Sequence, FirstTryAt: now}
		c.Head = h
	}
	h.Attempts++
	h.LastStatus, h.LastError = res.Status, res.Err
	c.FailedTries++
	c.LastError, c.LastErrorAt = res.Err, now
	w.log.Warn("destinations: delivery failed", "sequence", r.Sequence, "attempt", h.Attempts, "status", res.Status, "err", res.Err)
	if off, err := w.disableIfFailingTooLong(ctx, c, now); off || err != nil {
		return -1, err
	}
	if res.Status == http.StatusGone {
		return -1, w.disableGone(ctx, c, now)
	}
	if h.Attempts > len(o.Schedule) {
		// The whole schedule failed: keep the record aside and go on.
		dl := &DeadLetter{Destination: c.Destination, Record: *r, Attempts: h.Attempts, LastStatus: res.Status, LastError: res.Err, At: now}
		if err := o.Store.PutDeadLetter(ctx, dl); err != nil {
			return 0, err
		}
		c.After, c.Head = r.Sequence, nil
		c.DeadLettered++
		w.log.Error("destinations: dead letter", "sequence", r.Sequence, "attempts", dl.Attempts, "status", res.Status)
		return 0, o.Store.PutCursor(ctx, c)
	}
	wait := w.m.retryAfter(h.Attempts, res)
	h.NextAt = now.Add(wait)
	if stored {
		// Not synced (Store.PutRetryState): a crash may lose this write
		// and leave the head as an earlier failure stored it. That is
		// safe, because nothing here has to survive one: the cursor's
		// After is unchanged, so every record after it is still pending
		// and is sent again, under the same webhook-id (at least once);
		// a batch keeps its records and id (Head.Last, stored synced
		// before its first attempt); only the attempt count, the next
		// attempt's time, the last answer and the health counters go
		// back, so the record is retried earlier than the schedule said
		// and a destination failing for days is disabled a little later.
		// A synced write for each of a failing destination's attempts
		// would queue every healthy destination's cursor writes behind
		// its syncs.
		return wait, o.Store.PutRetryState(ctx, c)
	}
	return wait, o.Store.PutCursor(ctx, c)
}

// retryAfter is the wait after a send's attempts-th failure (attempts ≤
// len(Schedule)): the schedule's step, jittered, or the receiver's
// Retry-After when longer. Change records, batches, jobs and pending
// requests all walk it.
func (m *Manager) retryAfter(attempts int, res Result) time.Duration {
	return max(jitter(m.o.Schedule[attempts-1], m.o.Jitter), res.RetryAfter)
}

// jitter spreads d by ± share, so that retries of many destinations
// failing together do not come back together.
func jitter(d time.Duration, share float64) time.Duration {
	if share <= 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + share*(2*mrand.Float64()-1)))
}

// WakeOnChanges wraps the segments store the engine saves through, so
// that a save recording membership changes wakes the workers at once
// rather than at their next poll.
func (m *Manager) WakeOnChanges(s segments.Store) segments.Store { return wakingStore{s, m} }

type wakingStore struct {
	segments.Store
	m *Manager
}

// MembersData keeps the wrapped store's one-statement page of members
// with their data (a members export reads through the engine's store).
func (w wakingStore) MembersData(ctx context.Context, segment, after string, limit int, q graph.DataQuery) ([]string, []*graph.ProfileData, error) {
	return segments.MembersData(ctx, w.Store, segment, after, limit, q)
}

func (w wakingStore) SaveStates(ctx context.Context, saves []segments.Save) ([]*segments.ChangeRecord, error) {
	cs, err := w.Store.SaveStates(ctx, saves)
	if len(cs) > 0 {
		w.m.Wake()
	}
	return cs, err
}
