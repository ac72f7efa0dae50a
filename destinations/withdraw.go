package destinations

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
)

// ReasonConsentRevoked is the withdrawal reason of a consent revocation
// (ReasonSuppressed that of a suppression list entry).
const ReasonConsentRevoked = "consent_revoked"

// ErasedNotice is the data of the profile.erased message an erasure sends
// once to every destination that was sent the person: the segments it
// held them in and every identifier it was sent, so it can find and
// delete them although idgraph no longer knows them.
type ErasedNotice struct {
	Profile     string       `json:"profile"`
	Reason      string       `json:"reason"`
	Segments    []string     `json:"segments"`
	Identifiers []Identifier `json:"identifiers,omitempty"`
	Sequence    uint64       `json:"sequence"`
}

// checkReason refuses an empty, long or unprintable withdrawal reason (it
// goes into messages as it is).
func checkReason(reason string) error {
	if reason == "" || len(reason) > 64 || strings.IndexFunc(reason, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) >= 0 {
		return graph.FieldErrorf("reason", "a reason is 1 to 64 printable characters without spaces")
	}
	return nil
}

// Withdraw takes the person out of every destination that holds them: it
// stores a withdrawal on each such destination's sent state, and the
// destination's worker sends a segment.exited (with reason, and the
// identifiers the destination was sent) for every segment it holds them
// in, after whatever was recorded before. The request is durable when
// Withdraw returns. It returns how many destinations will be sent exits.
func (m *Manager) Withdraw(ctx context.Context, profile, reason string) (int, error) {
	return m.withdraw(ctx, profile, reason, func(*Destination) bool { return true })
}

// withdraw stores a withdrawal for the destinations that want it.
func (m *Manager) withdraw(ctx context.Context, profile, reason string, wants func(*Destination) bool) (int, error) {
	if err := checkReason(reason); err != nil {
		return 0, err
	}
	if m.o.Sent == nil {
		return 0, fmt.Errorf("destinations: withdraw: this store keeps no sent state")
	}
	profiles, err := m.person(ctx, profile)
	if err != nil {
		return 0, fmt.Errorf("destinations: withdraw: %w", err)
	}
	ds, err := m.o.Store.Destinations(ctx)
	if err != nil {
		return 0, fmt.Errorf("destinations: withdraw: %w", err)
	}
	// The watermark is read before the rows are written: every record up
	// to it is delivered before the exits, and one delivered meanwhile
	// lands on a row that already carries the request (a row is written
	// even for a destination that holds nobody yet, for that reason).
	after, err := m.o.Segments.LastChange(ctx)
	if err != nil {
		return 0, fmt.Errorf("destinations: withdraw: %w", err)
	}
	now := m.o.Now()
	id := newID()[4:]
	holding := 0
	for _, d := range ds {
		if !wants(d) {
			continue
		}
		held := false
		for _, p := range profiles {
			err := m.o.Sent.UpdateSent(ctx, d.ID, p, func(cur *Sent) (bool, error) {
				held = held || len(cur.HeldSegments()) > 0
				if q := cur.Pending; q == nil || q.Kind == PendingWithdraw || q.Kind == PendingCatchUp {
					next := &Pending{Kind: PendingWithdraw, ID: id, Reason: reason, After: after, At: now}
					if q != nil && (q.Kind == PendingCatchUp || q.CatchUp) {
						// A catch-up asked before runs after the exits; it
						// asks consent and suppression lists again then.
						next.CatchUp, next.NotBefore, next.Recheck = true, q.NotBefore, q.Recheck
					}
					cur.Pending, cur.UpdatedAt = next, now
				}
				return true, nil
			})
			if err != nil {
				return 0, fmt.Errorf("destinations: withdraw: %w", err)
			}
		}
		if held {
			holding++
		}
	}
	m.o.Log.Info("destinations: withdrawal stored", "profile", profile, "reason", reason, "destinations", holding)
	m.Wake()
	return holding, nil
}

// person returns the profile's person: its live profile and every profile
// it absorbed (a destination may hold any of them). A profile not stored
// is not_found (an erased one's destinations hear of the erasure).
func (m *Manager) person(ctx context.Context, id string) ([]string, error) {
	if m.o.Profiles == nil {
		return []string{id}, nil
	}
	p, err := m.o.Profiles.Profile(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.MergedInto != "" {
		if p, err = m.o.Profiles.Profile(ctx, p.MergedInto); err != nil {
			return nil, err
		}
	}
	return append([]string{p.ID}, p.Absorbed...), nil
}

// drainPending sends the withdrawals and erasures stored for the
// destination whose records before them are all delivered (After ≤ the
// cursor), then clears them. A failed send stays pending with its retry
// state on its row (pendingFailed) and the others go on: one profile's
// request waiting for its retry holds back neither another's nor the
// change records (each row is one (destination, profile) pair, and a
// request is sent only once every record before it was, so an exit
// never precedes its entry). A crash between the send and the clear
// sends it again with the same webhook ids. It returns how long until
// the earliest retry due (0: none; -1: the destination was disabled),
// and hold when a catch-up failed: it has no retry state of its own, so
// the worker waits that long before its next step.
func (w *worker) drainPending(ctx context.Context, d *Destination, c *Cursor) (wait time.Duration, hold bool, err error) {
	o := w.m.o
	if o.Sent == nil {
		return 0, false, nil
	}
	rows, err := o.Sent.PendingSent(ctx, d.ID, o.Batch)
	if err != nil {
		return 0, false, fmt.Errorf("destinations: pending: %w", err)
	}
	due := func(next time.Duration) {
		if next > 0 && (wait == 0 || next < wait) {
			wait = next
		}
	}
	failures := c.FailedTries
	defer func() {
		// The counters of the failures: not synced, as a change record's
		// retry state (the row holds what must survive a crash).
		if c.FailedTries != failures && err == nil {
			err = o.Store.PutRetryState(ctx, c)
		}
	}()
	for _, s := range rows {
		p := s.Pending
		if p.After > c.After || p.Kind == PendingCatchUp && p.NotBefore.After(o.Now()) {
			continue
		}
		if p.Kind == PendingCatchUp {
			if retry, err := w.catchUp(ctx, d, c, s); err != nil || retry > 0 || ctx.Err() != nil {
				return retry, retry > 0, err
			}
			continue
		}
		if next := p.NextAt.Sub(o.Now()); next > 0 {
			due(next)
			continue
		}
		res, sent, err := w.m.sendPending(ctx, d, s)
		if err != nil || ctx.Err() != nil {
			return 0, false, err
		}
		if !res.OK() && sent > 0 {
			next, err := w.pendingFailed(ctx, c, s, res)
			if err != nil || next < 0 {
				return next, false, err
			}
			due(next)
			continue
		}
		err = o.Sent.UpdateSent(ctx, d.ID, s.Profile, func(cur *Sent) (bool, error) {
			if cur.Pending == nil || cur.Pending.ID != p.ID || cur.Pending.Kind != p.Kind {
				return true, nil // replaced meanwhile: the newer request goes next
			}
			if p.Kind == PendingErase {
				return false, nil
			}
			for _, k := range cur.withdrawn(p) {
				cur.Segments[k] = Held{Sequence: p.After, Version: cur.Segments[k].Version}
			}
			cur.Pending, cur.GivenUp = afterWithdrawal(cur.Pending), nil
			cur.UpdatedAt = o.Now()
			return !cur.empty(), nil
		})
		if err != nil {
			return 0, false, fmt.Errorf("destinations: clear pending: %w", err)
		}
		if sent > 0 {
			w.log.Info("destinations: sent", "kind", p.Kind, "profile", s.Profile, "messages", sent)
		}
	}
	return wait, false, nil
}

// afterWithdrawal is what is pending once a withdrawal is done with (sent
// or given up on): the catch-up it carries, when consent was granted
// after the revocation (maybe while the exits were sent), else nothing.
func afterWithdrawal(q *Pending) *Pending {
	if !q.CatchUp {
		return nil
	}
	return &Pending{Kind: PendingCatchUp, ID: q.ID, After: q.After, At: q.At, NotBefore: q.NotBefore, Recheck: q.Recheck}
}

// pendingFailed records a failed send of a withdrawal or an erasure on
// its row, as failed does a change record's on the cursor, along the
// same schedule: a retry after the schedule's next wait (or Retry-After
// when longer), the destination disabled on 410 or once the request has
// failed for longer than Options.DisableAfter, and after the last step a
// dead letter. A withdrawal given up on stays on its row as GivenUp (the
// destination still holds the person, as far as idgraph knows: a later
// withdrawal or erasure sends the exits again); an erasure given up on
// removes the row, as a sent one does, since keeping an erased person's
// identifiers for a retry nobody schedules is what an erasure forbids. It
// returns the wait, -1 when the destination was disabled.
func (w *worker) pendingFailed(ctx context.Context, c *Cursor, s *Sent, res Result) (time.Duration, error) {
	o := w.m.o
	now := o.Now()
	p := *s.Pending
	if p.Attempts == 0 {
		p.FirstTryAt = now
	}
	p.Attempts++
	p.LastStatus, p.LastError, p.NextAt = res.Status, res.Err, time.Time{}
	c.FailedTries++
	c.LastError, c.LastErrorAt = res.Err, now
	w.log.Warn("destinations: withdrawal or erasure not delivered", "kind", p.Kind, "profile", s.Profile,
		"attempt", p.Attempts, "status", res.Status, "err", res.Err)
	tooLong, gone := w.failingTooLong(p.FirstTryAt, now), res.Status == http.StatusGone
	giveUp := !tooLong && !gone && p.Attempts > len(o.Schedule)
	var wait time.Duration
	if !tooLong && !gone && !giveUp {
		wait = w.m.retryAfter(p.Attempts, res)
		p.NextAt = now.Add(wait)
	}
	// Synced, unlike a change record's retry state: nothing else keeps
	// the attempt count of a request across a restart.
	err := o.Sent.UpdateSent(ctx, c.Destination, s.Profile, func(cur *Sent) (bool, error) {
		if cur.Pending == nil || cur.Pending.ID != p.ID || cur.Pending.Kind != p.Kind {
			giveUp = false
			return true, nil // replaced meanwhile: the newer request starts afresh
		}
		if !giveUp {
			cur.Pending = &p
			return true, nil
		}
		cur.UpdatedAt = now
		if p.Kind == PendingErase {
			return false, nil
		}
		dead := p
		cur.Pending, cur.GivenUp = afterWithdrawal(&p), &dead
		return true, nil
	})
	if err != nil {
		return 0, fmt.Errorf("destinations: pending retry state: %w", err)
	}
	switch {
	case tooLong:
		reason := fmt.Sprintf("failing since %s (%s of a profile, %d attempts): longer than %s",
			p.FirstTryAt.UTC().Format(time.RFC3339), p.Kind, p.Attempts, w.disableAfter())
		return -1, w.disableForFailing(ctx, c, reason, now, "kind", p.Kind, "profile", s.Profile, "since", p.FirstTryAt, "attempts", p.Attempts)
	case gone:
		return -1, w.disableGone(ctx, c, now)
	case giveUp:
		c.DeadLettered++
		w.log.Error("destinations: dead letter", "kind", p.Kind, "profile", s.Profile, "attempts", p.Attempts, "status", res.Status)
	}
	return wait, nil
}

// retryWait is how long to wait after a failed catch-up: the first step
// of the schedule, or the receiver's Retry-After when longer.
func retryWait(schedule []time.Duration, res Result) time.Duration {
	var wait time.Duration
	if len(schedule) > 0 {
		wait = schedule[0]
	}
	return max(wait, res.RetryAfter)
}

// sendPending sends a Sent's pending request the way the destination's
// kind wants, and returns the last answer (a failed one stops it) and how
// many messages went.
func (m *Manager) sendPending(ctx context.Context, d *Destination, s *Sent) (res Result, sent int, err error) {
	now := m.o.Now()
	if d.Kind == KindSegment {
		body, err := pendingForward(d, s, now)
		if err != nil || body == nil {
			return Result{}, 0, err
		}
		writeKey, err := m.o.Sealer.OpenText(d.ID, d.SealedSecret)
		if err != nil {
			return Result{}, 0, err
		}
		return m.o.Client.Forward(ctx, d.URL, writeKey, body), 1, nil
	}
	msgs, err := pendingMessages(d, s)
	if err != nil {
		return Result{}, 0, err
	}
	keys, err := m.signingKeys(d, now)
	if err != nil {
		return Result{}, 0, err
	}
	for _, msg := range msgs {
		msg.At = now
		if res = m.o.Client.Send(ctx, d.URL, keys, msg); !res.OK() {
			return res, sent + 1, nil
		}
		sent++
	}
	return res, sent, nil
}

// pendingID is the id a pending request's messages derive theirs from.
func pendingID(d *Destination, s *Sent) string {
	return fmt.Sprintf("msg_%s_%s_%s_%s", d.ID, s.Pending.Kind, s.Pending.ID, s.Profile)
}

// pendingMessages are the messages of a Sent's pending request: one
// profile.erased, or a segment.exited per segment held.
func pendingMessages(d *Destination, s *Sent) ([]Message, error) {
	p := s.Pending
	if p.Kind == PendingErase {
		segs := s.HeldSegments()
		if segs == nil {
			segs = []string{}
		}
		body, err := json.Marshal(envelope{Type: TypeErased, Timestamp: p.At.UTC(), Data: ErasedNotice{
			Profile: s.Profile, Reason: p.Reason, Segments: segs, Identifiers: s.Identifiers, Sequence: p.After}})
		if err != nil {
			return nil, err
		}
		return []Message{{ID: pendingID(d, s), Body: body}}, nil
	}
	var out []Message
	for _, k := range s.withdrawn(p) {
		body, err := json.Marshal(envelope{Type: TypeExited, Timestamp: p.At.UTC(), Data: SegmentChange{
			Segment: k, Version: s.Segments[k].Version, Profile: s.Profile, Reason: p.Reason, Sequence: p.After,
			Identifiers: s.Identifiers}})
		if err != nil {
			return nil, err
		}
		out = append(out, Message{ID: pendingID(d, s) + "_" + k, Body: body})
	}
	return out, nil
}

// pendingForward is a Sent's pending request as one Segment batch: an
// exit (identify with traits.<segment> false and Audience Exited) for
// every segment it takes the person out of, and for an erasure every
// segment held and, in one identify, traits.<trait> null for every
// computed trait whose value was sent (Segment's API has no erasure
// message), addressed by the identifiers sent before. A withdrawal
// leaves computed values as they are, as it does a webhook's. It is nil
// when there is nothing to send.
func pendingForward(d *Destination, s *Sent, now time.Time) ([]byte, error) {
	p := s.Pending
	segs, traits := s.HeldSegments(), s.HeldTraits()
	if p.Kind != PendingErase {
		segs, traits = s.withdrawn(p), nil
	}
	userID, anonymousID := address(s.Identifiers)
	if len(segs) == 0 && len(traits) == 0 || userID == "" && anonymousID == "" {
		return nil, nil
	}
	var msgs []segmentMessage
	for _, k := range segs {
		props := map[string]any{"audience_key": k, "audience_version": s.Segments[k].Version, "reason": p.Reason,
			"sequence": p.After, "idgraph_profile": s.Profile}
		msgs = append(msgs, audienceMessages(pendingID(d, s)+"_"+k, userID, anonymousID, k, false, props, p.At)...)
	}
	if len(traits) > 0 {
		cleared := map[string]any{}
		for _, k := range traits {
			cleared[k] = nil
		}
		msgs = append(msgs, identify(pendingID(d, s)+"_traits_identify", userID, anonymousID, cleared, p.At))
	}
	return marshalBatch(msgs, now)
}

// WithdrawOnRevocation wraps the consent store every consent choice is
// recorded through (ingest's message contexts and recordConsent): when a
// choice that is not a grant takes a profile's consent for its purpose
// from allowing deliveries to not allowing them, the person is withdrawn
// from the destinations with that purpose; a grant for someone whose
// consent does not allow deliveries stores a catch-up on them, which
// sends the entries withheld meanwhile (consentgrant.go). Both are stored
// before AppendConsent returns, so before the choice is acknowledged. A
// denial repeated on every message of someone already denied, or a grant
// on every message of someone granted, writes nothing.
func (m *Manager) WithdrawOnRevocation(s consent.Store) consent.Store {
	return withdrawingConsent{s, m}
}

type withdrawingConsent struct {
	consent.Store
	m *Manager
}

func (w withdrawingConsent) AppendConsent(ctx context.Context, recs []consent.Record) error {
	before, err := w.m.allowedNow(ctx, recs)
	if err != nil {
		return fmt.Errorf("destinations: consent before a revocation: %w", err)
	}
	grants, err := w.m.guardGrants(ctx, w.Store, recs)
	if err != nil {
		return fmt.Errorf("destinations: catch-up before a grant: %w", err)
	}
	if err := w.Store.AppendConsent(ctx, recs); err != nil {
		return err
	}
	if err := grants.confirm(ctx, w.m); err != nil {
		return fmt.Errorf("destinations: catch-up after a grant: %w", err)
	}
	for _, a := range before {
		dec, err := w.m.o.Consent(ctx, a.profile, a.purpose, w.m.o.Now())
		if err != nil {
			return fmt.Errorf("destinations: withdraw after a revocation: %w", err)
		}
		if dec.Allowed {
			continue
		}
		if _, err := w.m.withdraw(ctx, a.profile, ReasonConsentRevoked, func(d *Destination) bool { return d.Purpose == a.purpose }); err != nil {
			return fmt.Errorf("destinations: withdraw after a revocation: %w", err)
		}
	}
	return nil
}

// allowance is a live profile whose consent for a purpose allows
// deliveries.
type allowance struct{ profile, purpose string }

// allowedNow returns the (live profile, purpose) pairs that the choices
// among recs that are not grants concern and whose consent allows
// deliveries now, before they are stored.
func (m *Manager) allowedNow(ctx context.Context, recs []consent.Record) ([]allowance, error) {
	if m.o.Consent == nil || m.o.Profiles == nil || m.o.Sent == nil {
		return nil, nil
	}
	seen := map[allowance]bool{}
	var out []allowance
	for _, r := range recs {
		if r.Status == consent.Granted {
			continue
		}
		ids, err := m.o.Profiles.GetIdentifiers(ctx, []graph.Key{r.Key})
		if err != nil {
			return nil, err
		}
		if ids[0] == nil {
			continue
		}
		person, err := m.person(ctx, ids[0].Profile)
		if err != nil {
			return nil, err
		}
		a := allowance{profile: person[0], purpose: r.Purpose}
		if seen[a] {
			continue
		}
		seen[a] = true
		dec, err := m.o.Consent(ctx, a.profile, a.purpose, m.o.Now())
		if err != nil {
			return nil, err
		}
		if dec.Allowed {
			out = append(out, a)
		}
	}
	return out, nil
}

// SentState returns what the destination was sent about a profile (nil
// when nothing).
func (m *Manager) SentState(ctx context.Context, id, profile string) (*Sent, error) {
	if m.o.Sent == nil {
		return nil, nil
	}
	got, err := m.o.Sent.SentOf(ctx, id, []string{profile})
	if err != nil {
		return nil, err
	}
	return got[profile], nil
}
