package destinations

import (
	"context"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/tick"
)

// ReasonConsentExpired is the withdrawal reason of a consent choice whose
// expiry passed (consent.Record.Expires).
const ReasonConsentExpired = "consent_expired"

// SweepConsent withdraws, from the destinations with a purpose, the people
// a destination's sent state holds in a segment whose consent for its
// purpose no longer allows deliveries. A choice whose expiry passes
// changes the decision without any new record, so no AppendConsent sees
// it (WithdrawOnRevocation covers the rest): the sweep pages through what
// each destination was told and asks the one consent check of each
// person held. Rows with a pending withdrawal or erasure are left to it;
// a pending catch-up (which may wait for a grant dated in the future) is
// run after the withdrawal. It returns how many withdrawals were stored.
func (m *Manager) SweepConsent(ctx context.Context) (int, error) {
	o := m.o
	if o.Sent == nil || o.Consent == nil {
		return 0, nil
	}
	ds, err := o.Store.Destinations(ctx)
	if err != nil {
		return 0, fmt.Errorf("destinations: consent sweep: %w", err)
	}
	n := 0
	for _, d := range ds {
		if d.Purpose == "" {
			continue
		}
		for after := ""; ; {
			rows, err := o.Sent.SentPage(ctx, d.ID, after, o.Batch)
			if err != nil {
				return n, fmt.Errorf("destinations: consent sweep: %w", err)
			}
			for _, s := range rows {
				k, err := m.sweepRow(ctx, d.Purpose, s)
				if err != nil {
					return n, err
				}
				n += k
			}
			if len(rows) < o.Batch {
				break
			}
			after = rows[len(rows)-1].Profile
		}
	}
	return n, nil
}

// sweepRow withdraws the person of one row from the destinations with the
// purpose when the row holds them and their consent no longer allows it.
func (m *Manager) sweepRow(ctx context.Context, purpose string, s *Sent) (int, error) {
	if s.Pending != nil && s.Pending.Kind != PendingCatchUp || len(s.HeldSegments()) == 0 {
		return 0, nil
	}
	dec, err := m.o.Consent(ctx, s.Profile, purpose, m.o.Now())
	if err != nil {
		return 0, fmt.Errorf("destinations: consent sweep: %w", err)
	}
	if dec.Allowed {
		return 0, nil
	}
	reason := ReasonConsentRevoked
	if dec.Reason == consent.ReasonExpired {
		reason = ReasonConsentExpired
	}
	k, err := m.withdraw(ctx, s.Profile, reason, func(d *Destination) bool { return d.Purpose == purpose })
	if graph.ErrorKind(err) == graph.KindNotFound {
		return 0, nil // erased meanwhile: the erasure reaches the destination
	}
	if err != nil {
		return 0, fmt.Errorf("destinations: consent sweep: %w", err)
	}
	m.o.Log.Info("destinations: consent sweep withdrew", "profile", s.Profile, "purpose", purpose, "reason", reason)
	return k, nil
}

// sweepConsent runs SweepConsent every interval until ctx ends.
func (m *Manager) sweepConsent(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, func(ctx context.Context) {
		if _, err := m.SweepConsent(ctx); err != nil && ctx.Err() == nil {
			m.o.Log.Error("destinations: consent sweep", "err", err)
		}
	})
}
