package destinations

import (
	"context"
	"fmt"

	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/suppression"
)

// ReasonSuppressed is the Cursor.Withheld reason of a message dropped
// because its profile holds an identifier on a suppression list.
const ReasonSuppressed = "suppressed"

// suppressed drops a record, other than an exit, whose profile holds an
// identifier suppressed for the destination: listed globally, for the
// destination, or for its channel. It is asked before every attempt,
// retries included, and reads the profile's identifiers as they are then,
// following merges, so an entry added while a message waits, or an
// identifier a merge brought in, stops it. Exits always go: they remove
// the person downstream. The drop is counted in c.Withheld and logged
// with the scope and identifier type, never the value or its hash.
func (w *worker) suppressed(ctx context.Context, d *Destination, c *Cursor, r *segments.ChangeRecord) (bool, error) {
	m, ok, err := w.m.suppressionOf(ctx, d, r)
	if err != nil || !ok {
		return false, err
	}
	if c.Withheld == nil {
		c.Withheld = map[string]int64{}
	}
	c.Withheld[ReasonSuppressed]++
	c.After, c.Head = r.Sequence, nil
	w.log.Info("destinations: withheld", "reason", ReasonSuppressed, "scope", m.Scope.Kind, "identifier_type", m.Type,
		"sequence", r.Sequence, "profile", r.Profile)
	return true, nil
}

// suppressionOf finds the list entry, if any, that withholds a record
// other than an exit from the destination, by the profile's identifiers
// now.
func (m *Manager) suppressionOf(ctx context.Context, d *Destination, r *segments.ChangeRecord) (suppression.Match, bool, error) {
	o := m.o
	if o.Suppression == nil || r.Direction == segments.Exited {
		return suppression.Match{}, false, nil
	}
	keys, err := suppression.LiveIdentifiers(ctx, o.Profiles, r.Profile)
	if err != nil {
		return suppression.Match{}, false, fmt.Errorf("destinations: suppression: %w", err)
	}
	return o.Suppression.Check(ctx, keys, d.ID, d.Channel)
}

// SetChannel sets the channel a destination's deliveries go through (""
// for none), which channel-scoped suppression lists apply to.
func (m *Manager) SetChannel(ctx context.Context, id, channel string) (*Destination, error) {
	if channel != "" {
		if err := suppression.CheckChannel(channel); err != nil {
			return nil, err
		}
	}
	return m.update(ctx, id, func(d *Destination) { d.Channel = channel })
}

// WithdrawSuppressed takes profiles just suppressed out of the
// destinations the entry's scope covers (every destination, one, or those
// of a channel) that hold them: their workers send segment.exited with
// reason "suppressed" (Withdraw). It returns how many withdrawals were
// stored.
func (m *Manager) WithdrawSuppressed(ctx context.Context, profiles []string, scope suppression.Scope) (int, error) {
	if m.o.Sent == nil {
		return 0, nil // no record of who holds whom: nothing to withdraw
	}
	covers := func(d *Destination) bool {
		switch scope.Kind {
		case suppression.Destination:
			return d.ID == scope.Target
		case suppression.Channel:
			return d.Channel != "" && d.Channel == scope.Target
		}
		return true
	}
	n := 0
	for _, p := range profiles {
		k, err := m.withdraw(ctx, p, ReasonSuppressed, covers)
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
