package destinations

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// IdentityChanged asks the consent check again about the people a merge,
// split or steward undo changed (profiles, live or absorbed), since their
// consent can change without a new choice: a merge brings in an
// identifier with a newer grant, a split gives a side back its own. For
// each purpose of a destination: allowed now, a catch-up is stored (it
// sends only the entries the sent state does not hold, so a person
// already delivered gets nothing twice); not allowed and held by a
// destination with the purpose, the person is withdrawn, reason
// consent_revoked, as a revocation does.
func (m *Manager) IdentityChanged(ctx context.Context, profiles []string) error {
	o := m.o
	if o.Consent == nil || o.Profiles == nil || o.Sent == nil {
		return nil
	}
	ds, err := o.Store.Destinations(ctx)
	if err != nil {
		return fmt.Errorf("destinations: identity change: %w", err)
	}
	var purposes []string
	for _, d := range ds {
		if d.Purpose != "" && !slices.Contains(purposes, d.Purpose) {
			purposes = append(purposes, d.Purpose)
		}
	}
	if len(purposes) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, id := range profiles {
		person, err := m.person(ctx, id)
		if graph.ErrorKind(err) == graph.KindNotFound {
			continue // erased meanwhile: its destinations hear of that
		}
		if err != nil {
			return fmt.Errorf("destinations: identity change: %w", err)
		}
		if seen[person[0]] {
			continue
		}
		seen[person[0]] = true
		for _, purpose := range purposes {
			if err := m.reconsider(ctx, ds, person, purpose); err != nil {
				return fmt.Errorf("destinations: identity change: %w", err)
			}
		}
	}
	return nil
}

// reconsider stores a catch-up or a withdrawal of the person for the
// purpose, by the consent check now.
func (m *Manager) reconsider(ctx context.Context, ds []*Destination, person []string, purpose string) error {
	dec, err := m.o.Consent(ctx, person[0], purpose, m.o.Now())
	if err != nil {
		return err
	}
	if dec.Allowed {
		return m.requestCatchUp(ctx, ds, person[0], purpose, []time.Time{{}})
	}
	for _, d := range ds {
		if d.Purpose != purpose {
			continue
		}
		rows, err := m.o.Sent.SentOf(ctx, d.ID, person)
		if err != nil {
			return err
		}
		for _, s := range rows {
			if len(s.HeldSegments()) > 0 {
				_, err := m.withdraw(ctx, person[0], ReasonConsentRevoked, func(d *Destination) bool { return d.Purpose == purpose })
				return err
			}
		}
	}
	return nil
}

// FollowIdentity runs IdentityChanged for the merges and splits the
// broker publishes, until ctx ends. The broker is not durable: a change
// missed (a lag, a crash between the stitch and this) is not caught up
// here; a revocation missed is still found by the consent sweep, a grant
// missed waits for a resync or the person's next choice.
func (m *Manager) FollowIdentity(ctx context.Context, b *graph.Broker) {
	changes, cancel := b.Subscribe("", 1024)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			if c.Kind != graph.ChangeMerged && c.Kind != graph.ChangeSplit {
				continue
			}
			if err := m.IdentityChanged(ctx, []string{c.ProfileID}); err != nil && ctx.Err() == nil {
				m.o.Log.Error("destinations: consent after an identity change", "profile", c.ProfileID, slog.Any("err", err))
			}
		}
	}
}
