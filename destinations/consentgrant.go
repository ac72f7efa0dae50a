package destinations

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// ReasonConsentGranted is the reason of the entries a catch-up sends: the
// person's consent for the destination's purpose was granted after their
// entry was withheld.
const ReasonConsentGranted = "consent_granted"

// catchUpPages bounds how many pages of change records a catch-up reads
// past the destination's cursor; a worker further behind sends its
// records first and runs the catch-up once it is near the head.
const catchUpPages = 4

// catchUpGuard is how long after it is stored a catch-up asked for
// before its grant is stored waits, unless confirmed sooner.
const catchUpGuard = time.Minute

// catchUps are the catch-ups a batch of consent choices asks for: the
// (live profile, purpose) pairs a grant may take from not allowing
// deliveries to allowing them, with the grants' start times.
type catchUps struct {
	ds   []*Destination
	asks []catchUpAsk
}

type catchUpAsk struct {
	profile, purpose string
	starts           []time.Time // zero: now
}

// guardGrants stores a guard catch-up on every destination with the
// purpose of each grant among recs that may take a person's consent from
// not allowing deliveries to allowing them, before the choices are
// stored; once they are, confirm makes the catch-ups run at the grants'
// start. This survives a kill -9 at any point: killed before the guard is
// stored, the choice was not acknowledged; killed after it and before
// confirm, the guard runs catchUpGuard later, when the choice is stored
// or never will be. A catch-up asks the one consent check again when it
// runs, so one that finds nothing granted (the write failed, or the grant
// is older than a denial, or one side of a conflict) sends nothing. The
// guard waits, so that a worker does not run it before the choice is
// stored and find nothing granted yet.
func (m *Manager) guardGrants(ctx context.Context, store consent.Store, recs []consent.Record) (*catchUps, error) {
	o := m.o
	if o.Consent == nil || o.Profiles == nil || o.Sent == nil {
		return nil, nil
	}
	if !slices.ContainsFunc(recs, func(r consent.Record) bool { return r.Status == consent.Granted }) {
		return nil, nil
	}
	ds, err := o.Store.Destinations(ctx)
	if err != nil {
		return nil, err
	}
	purposes := map[string]bool{}
	for _, d := range ds {
		purposes[d.Purpose] = d.Purpose != ""
	}
	var grants []consent.Record
	for _, r := range recs {
		if r.Status == consent.Granted && purposes[r.Purpose] {
			grants = append(grants, r)
		}
	}
	if len(grants) == 0 {
		return nil, nil
	}
	keys, _ := keysOf(grants)
	// A grant on an identifier whose own choice is a grant already changes
	// no decision: the consent context an SDK sends on every message of a
	// consenting person costs this one read.
	stored, err := store.ConsentOf(ctx, keys)
	if err != nil {
		return nil, err
	}
	now := o.Now()
	own := map[graph.Key][]consent.Record{}
	for _, r := range stored {
		own[r.Key] = append(own[r.Key], r)
	}
	grants = slices.DeleteFunc(grants, func(r consent.Record) bool {
		return consent.Derive(own[r.Key], r.Purpose, now) == consent.StateGranted
	})
	if len(grants) == 0 {
		return nil, nil
	}
	keys, at := keysOf(grants)
	ids, err := o.Profiles.GetIdentifiers(ctx, keys)
	if err != nil {
		return nil, err
	}
	cu := &catchUps{ds: ds}
	index := map[[2]string]int{} // (profile, purpose) → its ask
	for _, r := range grants {
		n := ids[at[r.Key]]
		if n == nil {
			continue // not stitched: no profile, no membership
		}
		person, err := m.person(ctx, n.Profile)
		if graph.ErrorKind(err) == graph.KindNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		start := r.Time
		if !start.After(now) {
			start = time.Time{}
		}
		k := [2]string{person[0], r.Purpose}
		i, ok := index[k]
		if !ok {
			i, index[k] = len(cu.asks), len(cu.asks)
			cu.asks = append(cu.asks, catchUpAsk{profile: person[0], purpose: r.Purpose})
		}
		cu.asks[i].starts = append(cu.asks[i].starts, start)
	}
	asks := cu.asks[:0]
	for _, a := range cu.asks {
		dec, err := o.Consent(ctx, a.profile, a.purpose, now)
		if err != nil {
			return nil, err
		}
		if dec.Allowed {
			continue // nothing is withheld from them now
		}
		if err := m.requestCatchUp(ctx, ds, a.profile, a.purpose, []time.Time{now.Add(catchUpGuard)}); err != nil {
			return nil, err
		}
		asks = append(asks, a)
	}
	cu.asks = asks
	return cu, nil
}

// keysOf returns the records' keys, each once, and where each is.
func keysOf(recs []consent.Record) ([]graph.Key, map[graph.Key]int) {
	var keys []graph.Key
	at := map[graph.Key]int{}
	for _, r := range recs {
		if _, ok := at[r.Key]; !ok {
			at[r.Key] = len(keys)
			keys = append(keys, r.Key)
		}
	}
	return keys, at
}

// confirm makes the guarded catch-ups run at their grants' start, now
// that the choices are stored.
func (cu *catchUps) confirm(ctx context.Context, m *Manager) error {
	if cu == nil {
		return nil
	}
	for _, a := range cu.asks {
		if err := m.requestCatchUp(ctx, cu.ds, a.profile, a.purpose, a.starts); err != nil {
			return err
		}
	}
	return nil
}

// requestCatchUp stores a catch-up of the profile on the destinations with
// the purpose. A pending withdrawal is kept and becomes the catch-up once
// its exits are sent (the grant came after the revocation); a pending
// catch-up takes the new start times (plan); a pending erasure stays.
func (m *Manager) requestCatchUp(ctx context.Context, ds []*Destination, profile, purpose string, starts []time.Time) error {
	after, err := m.lastChange(ctx)
	if err != nil {
		return err
	}
	now := m.o.Now()
	id := newID()[4:]
	for _, d := range ds {
		if d.Purpose != purpose {
			continue
		}
		err := m.o.Sent.UpdateSent(ctx, d.ID, profile, func(cur *Sent) (bool, error) {
			p := cur.Pending
			switch {
			case cur.ProfileGone || p != nil && p.Kind == PendingErase:
				return !cur.empty(), nil
			case p == nil:
				p = &Pending{Kind: PendingCatchUp, ID: id, After: after, At: now, NotBefore: starts[0]}
				cur.Pending = p
			case p.Kind == PendingWithdraw && !p.CatchUp:
				p.CatchUp, p.NotBefore, p.Recheck = true, starts[0], time.Time{}
			}
			p.plan(starts)
			cur.UpdatedAt = now
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	m.Wake()
	return nil
}

// plan makes a catch-up run at the earliest start of its grants, and
// again at the latest when the first run finds consent not granted yet.
func (p *Pending) plan(starts []time.Time) {
	ts := append([]time.Time{p.NotBefore}, starts...)
	if !p.Recheck.IsZero() {
		ts = append(ts, p.Recheck)
	}
	p.NotBefore, p.Recheck = slices.MinFunc(ts, time.Time.Compare), slices.MaxFunc(ts, time.Time.Compare)
	if !p.Recheck.After(p.NotBefore) {
		p.Recheck = time.Time{}
	}
}

// samePending reports two reads of one request, unchanged between them.
func samePending(a, b *Pending) bool {
	return a != nil && b != nil && a.Kind == b.Kind && a.ID == b.ID && a.After == b.After && a.CatchUp == b.CatchUp &&
		a.NotBefore.Equal(b.NotBefore) && a.Recheck.Equal(b.Recheck)
}

// catchUp runs a due catch-up of the row's profile: when the consent
// check allows deliveries now and no suppression list holds the person,
// it sends an entry (reason consent_granted, identifiers by the
// destination's policy) for each connected segment they are a member of
// that the sent state does not hold them in (catchUpEntries), records
// them in the sent state and clears the request. A failed send leaves the
// request for the next step and returns the wait; the resend has the same
// webhook ids (msg_<destination>_catchup_<request>_<profile>_<segment>).
func (w *worker) catchUp(ctx context.Context, d *Destination, c *Cursor, s *Sent) (time.Duration, error) {
	m, o, p := w.m, w.m.o, s.Pending
	now := o.Now()
	allowed := !m.consentGated(d)
	if !allowed {
		reason, err := m.withheld(ctx, d, &segments.ChangeRecord{Profile: s.Profile})
		if err != nil {
			return 0, fmt.Errorf("destinations: catch-up: %w", err)
		}
		allowed = reason == ""
	}
	var recs []*segments.ChangeRecord
	b := &batchState{ids: map[string][]Identifier{}, sent: map[string]*Sent{}, survivor: map[string]string{}}
	if allowed {
		var ready bool
		var err error
		if recs, ready, err = m.catchUpEntries(ctx, d, c.After, s, now); err != nil || !ready {
			return 0, err
		}
		if len(recs) > 0 {
			if match, ok, err := m.suppressionOf(ctx, d, recs[0]); err != nil {
				return 0, err
			} else if ok {
				w.log.Info("destinations: catch-up withheld", "reason", ReasonSuppressed, "scope", match.Scope.Kind, "identifier_type", match.Type, "profile", s.Profile)
				recs = nil
			}
		}
		if b, err = m.prefetch(ctx, d, recs); err != nil {
			return 0, err
		}
		sent := recs[:0]
		for _, r := range recs {
			id := pendingID(d, s) + "_" + r.Segment
			res, ok, err := m.sendAs(ctx, d, r, b, id)
			if err != nil || ctx.Err() != nil {
				return 0, err
			}
			if !ok {
				continue // a forwarder cannot address the profile
			}
			m.logAttempt(ctx, &Delivery{Destination: d.ID, Sequence: r.Sequence, Type: TypeEntered, WebhookID: id, Attempt: 1}, res, time.Time{})
			if !res.OK() {
				w.log.Warn("destinations: catch-up not delivered", "status", res.Status, "err", res.Err)
				return max(o.Poll, retryWait(o.Schedule, res)), nil
			}
			sent = append(sent, r)
		}
		recs = sent
	}
	gone := false
	err := o.Sent.UpdateSent(ctx, d.ID, s.Profile, func(cur *Sent) (bool, error) {
		// The entries are recorded even when a withdrawal or erasure
		// replaced the request meanwhile, so that it takes them out.
		for _, r := range recs {
			if cur.Segments == nil {
				cur.Segments = map[string]Held{}
			}
			cur.Segments[r.Segment] = Held{In: true, Sequence: r.Sequence, Version: r.Version}
			for _, n := range b.identifiers(d, r) {
				if !slices.Contains(cur.Identifiers, n) {
					cur.Identifiers = append(cur.Identifiers, n)
				}
			}
		}
		if samePending(cur.Pending, p) {
			cur.Pending = nil
			if !allowed && p.Recheck.After(now) {
				cur.Pending = &Pending{Kind: PendingCatchUp, ID: p.ID, After: p.After, At: p.At, NotBefore: p.Recheck}
			}
		}
		if len(recs) > 0 && cur.ProfileGone && (cur.Pending == nil || cur.Pending.Kind != PendingErase) {
			// Erased while the entries were in flight (as recordSent).
			cur.MarkErased(fmt.Sprintf("seq%d", recs[0].Sequence), recs[0].Sequence, now)
			gone = true
		}
		cur.UpdatedAt = now
		b.sent[s.Profile] = cur
		return !cur.empty(), nil
	})
	if err != nil {
		return 0, fmt.Errorf("destinations: clear catch-up: %w", err)
	}
	if gone {
		return 0, m.afterErasure(ctx, d, recs[0], b)
	}
	if len(recs) > 0 {
		w.log.Info("destinations: caught up", "profile", s.Profile, "entries", len(recs))
	}
	return 0, nil
}

// catchUpEntries returns the entries a catch-up sends the destination:
// one for each connected segment the profile was a member of when the
// destination's cursor was at after, that its sent state does not hold
// them in. They carry after as their sequence, so every change recorded
// since reaches the destination after them, as a newer one: an exit that
// raced the grant follows its entry, and an entry recorded since is sent
// by the worker alone (the catch-up does not count it). Membership at
// after is the profile's state now, corrected by its change records
// after after: a segment's first record since tells what it was before
// (an exit: a member; an entry: not). ready is false when the worker is
// too far behind to read those records now.
func (m *Manager) catchUpEntries(ctx context.Context, d *Destination, after uint64, s *Sent, now time.Time) (recs []*segments.ChangeRecord, ready bool, err error) {
	o := m.o
	sts, err := o.Segments.States(ctx, []string{s.Profile})
	if err != nil {
		return nil, false, fmt.Errorf("destinations: catch-up: states: %w", err)
	}
	// Read after the states: every change they reflect is at or before it.
	last, err := m.lastChange(ctx)
	if err != nil {
		return nil, false, err
	}
	first := map[string]*segments.ChangeRecord{}
	for from, page := after, 0; from < last; page++ {
		if page == catchUpPages {
			return nil, false, nil
		}
		rs, err := o.Segments.Changes(ctx, from, o.Batch)
		if err != nil {
			return nil, false, fmt.Errorf("destinations: catch-up: changes: %w", err)
		}
		for _, r := range rs {
			if r.Sequence <= last && r.Profile == s.Profile && !r.IsTrait() && first[r.Segment] == nil {
				first[r.Segment] = r
			}
		}
		if len(rs) < o.Batch {
			break
		}
		from = rs[len(rs)-1].Sequence
	}
	var st *segments.ProfileState
	if len(sts) > 0 {
		st = sts[0]
	}
	for _, seg := range d.SegmentKeys() {
		var member bool
		var version int
		if r := first[seg]; r != nil {
			member, version = r.Direction == segments.Exited, r.Version
		} else if st != nil {
			e := st.Entries[segments.RefString(segments.Ref{Kind: lang.KindSegment, Key: seg})]
			member, version = e.Member, e.Version
		}
		if member && !s.Segments[seg].In {
			recs = append(recs, &segments.ChangeRecord{Sequence: after, Segment: seg, Version: version, Profile: s.Profile,
				Direction: segments.Entered, Reason: ReasonConsentGranted, Time: now})
		}
	}
	return recs, true, nil
}
