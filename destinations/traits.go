package destinations

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// TypeTraitChanged is a computed trait's new value for a profile.
const TypeTraitChanged = "trait.changed"

// TraitChange is the data of trait.changed: the computed trait's value
// before and after (JSON scalars: a boolean, a number, a string, or a
// timestamp as an RFC 3339 string; null when missing). Sequence orders
// the changes as for segments: a receiver keeps the highest it applied
// per (trait, profile) and drops a lower one.
type TraitChange struct {
	Trait    string `json:"trait"`
	Version  int    `json:"version"`
	Profile  string `json:"profile"`
	Previous any    `json:"previous"`
	Value    any    `json:"value"`
	Reason   string `json:"reason"`
	Sequence uint64 `json:"sequence"`
}

// traitPayload is the message body of a computed trait's change record:
// trait.changed, or profile.erased (with the value missing) when the
// person was erased.
func traitPayload(c *segments.ChangeRecord) ([]byte, error) {
	return json.Marshal(envelope{Type: MessageType(c), Timestamp: c.Time.UTC(), Data: TraitChange{
		Trait: c.Trait, Version: c.Version, Profile: c.Profile, Previous: c.Previous.Interface(), Value: c.Value.Interface(),
		Reason: c.Reason, Sequence: c.Sequence}})
}

// carriesProfile reports whether a record carries the profile to the
// destination (so needs its consent for the destination's purpose, and a
// forwarder addresses it by the identifiers now): an entry, or a computed
// value (a value going missing is sent always, as an exit is, to whom
// the destination was told of).
func carriesProfile(c *segments.ChangeRecord) bool {
	return c.Direction == segments.Entered || c.IsTrait() && c.Value != nil
}

// TraitKeys returns the connected computed traits, sorted (never nil).
func (d *Destination) TraitKeys() []string {
	return slices.AppendSeq([]string{}, slices.Values(slices.Sorted(maps.Keys(d.Traits))))
}

// ConnectTrait sends the computed trait's value changes from now on to
// the destination: a webhook's as trait.changed messages, a forwarder's
// as identify calls setting traits.<trait> (forward.go; a forwarder
// refuses a trait of a segment's key).
func (m *Manager) ConnectTrait(ctx context.Context, id, trait string) (*Destination, error) {
	if err := segments.CheckKey(trait); err != nil {
		return nil, graph.FieldErrorf("trait", "%v", err)
	}
	if _, err := m.o.Segments.Definition(ctx, segments.Ref{Kind: lang.KindComputed, Key: trait}); graph.ErrorKind(err) == graph.KindNotFound {
		return nil, graph.FieldErrorf("trait", "no computed trait %q", trait)
	} else if err != nil {
		return nil, err
	}
	return m.updateChecked(ctx, id, func(d *Destination) error {
		if err := refuseSharedKey(d, trait, d.Segments, "trait", "segment"); err != nil {
			return err
		}
		d.Traits = connectKey(d.Traits, trait, m.o.Now())
		return nil
	})
}

// connectKey connects a segment or trait at now; one connected already
// keeps its time (changes since then are wanted).
func connectKey(conns map[string]time.Time, key string, now time.Time) map[string]time.Time {
	if conns == nil {
		conns = map[string]time.Time{}
	}
	if _, ok := conns[key]; !ok {
		conns[key] = now
	}
	return conns
}

// DisconnectTrait stops sending the computed trait's changes (those not
// yet sent are dropped).
func (m *Manager) DisconnectTrait(ctx context.Context, id, trait string) (*Destination, error) {
	return m.update(ctx, id, func(d *Destination) { delete(d.Traits, trait) })
}
